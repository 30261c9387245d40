"""A plain stateful wrapper for people who do not want to thread state.

    tracker = jtrack.StatefulTracker()          # or StatefulTracker(config, params)
    box = tracker.init(frame0, (x, y, w, h))     # (4,) float32 xywh, 0-based
    for frame in frames:
        box = tracker.update(frame)              # tracker.score: target probability

It holds one :class:`jtrack.TrackerState` and calls the pure
:func:`jtrack.init` / :func:`jtrack.step`; the state stays reachable as
``tracker.state`` (e.g. to checkpoint it).
"""

from __future__ import annotations

import jax
import numpy as np

from jtrack import tracker as T
from jtrack.config import TrackerConfig


class StatefulTracker:
    """One target. ``init(frame, box)`` then ``update(frame)`` per frame.

    Args:
      config: a :class:`TrackerConfig` (default: ``TrackerConfig()``).
      params: ``{'backbone', 'head'}`` from :func:`jtrack.init_params`
        (default: made from ``seed``). Several trackers may share one params
        pytree: the state ``init`` returns holds its own buffers, so the
        donation in ``step`` never invalidates ``params`` (tests/test_adapters.py).
      seed: PRNG seed for the params (when not given) and for sampling.
    """

    def __init__(self, config: TrackerConfig | None = None, params: dict | None = None,
                 seed: int = 0):
        self.config = TrackerConfig() if config is None else config
        if not isinstance(self.config, TrackerConfig):
            raise TypeError(f"config must be a jtrack.TrackerConfig, got "
                            f"{type(self.config).__name__}")
        self.seed = int(seed)
        self.params = (T.init_params(self.config, T.seed_key(self.seed))
                       if params is None else params)
        self.state: T.TrackerState | None = None
        self.output: T.TrackOutput | None = None  # last step's full output
        self.box: np.ndarray | None = None
        self.score: float = float("nan")
        self.frame_index = -1

    def init(self, frame, box, key: jax.Array | None = None) -> np.ndarray:
        """Start tracking ``box`` ((4,) xywh, 0-based) in ``frame`` ((H, W, 3)
        uint8). Returns the (clipped) start box. ``key`` defaults to one
        derived from ``seed`` (as the evaluation runner does)."""
        if key is None:
            key = jax.random.fold_in(jax.random.key(self.seed), 1)
        self.state = T.init(self.config, self.params, frame, np.asarray(box, np.float32), key)
        self.output = None
        self.box = np.asarray(self.state.box)
        self.score = 1.0
        self.frame_index = 0
        return self.box

    def update(self, frame) -> np.ndarray:
        """Track one more frame; returns the (4,) float32 xywh box and sets
        ``self.score`` (mean target probability of the top candidates)."""
        if self.state is None:
            raise RuntimeError("StatefulTracker.update called before init(frame, box)")
        self.state, self.output = T.step(self.config, self.state, frame)
        self.box = np.asarray(self.output.box)
        self.score = float(self.output.score)
        self.frame_index += 1
        return self.box


def target_keys(seed: int, n: int) -> jax.Array:
    """``(n,)`` keys, target ``k`` gets ``fold_in(key(seed), 1 + k)``: target
    0 samples as a :class:`StatefulTracker` with ``seed`` does."""
    from jtrack.multi import fold_in_each

    return fold_in_each(T.seed_key(seed), np.arange(1, n + 1))


def track_targets(config: TrackerConfig, params: dict, frames, init_boxes,
                  seed: int = 0):
    """Track several targets through ``frames`` in one batched pass per frame
    (:func:`jtrack.init_many` / :func:`jtrack.step_many`: one jitted call,
    shared ``params['backbone']``, a head per target). Target ``k`` samples
    with ``fold_in(key(seed), 1 + k)``, the key a :class:`StatefulTracker`
    with ``seed`` uses for target 0, so one target gives the single-target
    tracker's boxes.

    Args:
      frames: iterable of (H, W, 3) uint8 frames (read lazily).
      init_boxes: (K, 4) xywh 0-based boxes on the first frame.
    Yields:
      ``(index, frame, boxes (K, 4) float32, scores (K,) float32)`` per frame;
      on the first frame the boxes are the (clipped) start boxes, scores 1.
    Raises:
      ValueError naming the target whose start box is invalid.
    """
    from jtrack import multi

    init_boxes = np.asarray(init_boxes, np.float32).reshape(-1, 4)
    n = len(init_boxes)
    if n == 0:
        raise ValueError("track_targets needs at least one start box")
    state = None
    for i, frame in enumerate(frames):
        if i == 0:
            state = multi.init_many(config, params, frame, init_boxes, target_keys(seed, n))
            boxes, scores = np.asarray(state.boxes[:n]), np.ones(n, np.float32)
        else:
            state, out = multi.step_many(config, state, frame)
            boxes, scores = np.asarray(out.box[:n]), np.asarray(out.score[:n])
        yield i, frame, boxes.astype(np.float32), scores.astype(np.float32)
