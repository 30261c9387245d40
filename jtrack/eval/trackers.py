"""The step-wise tracker interface the protocols and the runner drive.

A protocol needs to (re)initialize a tracker on any frame (VOT re-inits
after failures) and to time each frame, so trackers are a pair of callables
rather than a whole-sequence function. Boxes are ``(4,)`` xywh 0-based.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable
from typing import Any

import numpy as np

InitFn = Callable[[np.ndarray, np.ndarray, int], Any]
StepFn = Callable[[Any, np.ndarray], tuple[Any, np.ndarray, float]]


@dataclasses.dataclass(frozen=True)
class Tracker:
    """``init(frame (H,W,3) uint8, box (4,) xywh, seed) -> state`` and
    ``step(state, frame) -> (state, box (4,), score)``. ``step`` may consume
    ``state`` (jtrack donates it): callers never reuse an old state."""

    init: InitFn
    step: StepFn
    name: str = "tracker"
    config: dict = dataclasses.field(default_factory=dict)  # recorded with results


def jtrack_tracker(config=None, params=None, name: str = "jtrack",
                   head: str = "random") -> Tracker:
    """The jtrack tracker behind the :class:`Tracker` interface.

    Uses ``jtrack.init_params(config, key(seed), head=head)`` unless
    ``params`` is given (the weights are recorded in
    ``Tracker.config['weights']``), ``jtrack.init(config, params, frame, box, key)`` and
    ``jtrack.step(config, state, frame) -> (state, out)`` with ``out.box``
    and ``out.score``. Arrays are created on the current default device, so a
    runner worker inside ``jax.default_device(d)`` tracks on ``d``.
    """
    import jax
    import jtrack

    from jtrack.weights import shipped

    config = jtrack.TrackerConfig() if config is None else config
    cache: dict = {}
    lock = threading.Lock()

    def get_params(seed: int):
        if params is not None:
            return params
        dev = jax.config.jax_default_device
        with lock:  # one params pytree per (seed, device), made once
            key = (seed, str(dev))
            if key not in cache:
                cache[key] = jtrack.init_params(config, jax.random.key(seed), head=head)
            return cache[key]

    def init(frame, box, seed):
        key = jax.random.fold_in(jax.random.key(seed), 1)
        return jtrack.init(config, get_params(seed), frame,
                           np.asarray(box, np.float32), key)

    def step(state, frame):
        state, out = jtrack.step(config, state, frame)
        return state, np.asarray(out.box), float(out.score)

    weights = {"head": "given params"} if params is not None else shipped.describe(head)
    return Tracker(init=init, step=step, name=name,
                   config={**dataclasses.asdict(config), "weights": weights})
