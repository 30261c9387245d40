"""VOT supervised (reset-based) protocol: accuracy, robustness, EAO.

Protocol (VOT2015-2019 baseline experiment, legacy vot-toolkit):

* the tracker is initialized on frame 0 with the ground truth;
* a **failure** is a frame whose prediction has IoU 0 with the (present)
  ground truth; the tracker is re-initialized ``skip = 5`` frames later
  (on the next frame with ground truth, if that one has none);
* **accuracy**: mean IoU over tracked frames, excluding the ``burnin = 10``
  frames starting at each (re)initialization and frames without GT;
* **robustness**: the number of failures;
* **EAO**: per run, split the per-frame overlaps into fragments starting at
  each (re)initialization. A fragment that ends in a failure is padded with
  zeros to every length; a fragment that reaches the end of the sequence is
  only usable for lengths it covers. ``Phi(Ns)`` is the (weighted) mean,
  over fragments usable at ``Ns``, of the mean overlap of frames
  ``2..Ns`` of the fragment (the initialization frame is skipped);
  failures, skipped frames and frames without GT count as 0 overlap;
  ``Phi(1) = 1``. EAO is the mean of ``Phi`` over ``[lo, hi]``.

The VOT challenges fix ``[lo, hi]`` from a kernel density estimate of their
sequence lengths (VOT2015: 108-371, VOT2016-2018: 100-356, VOT2019:
46-291, see :data:`EAO_RANGES`). With a handful of short sequences that
estimate is meaningless, so :func:`default_eao_range` uses ``[2, longest
sequence]``: the whole curve the data supports. The range used is always
reported next to the score.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Sequence as Seq

import numpy as np

from jtrack.data.frames import BadFrame
from jtrack.eval import geometry
from jtrack.eval.trackers import Tracker

SKIPPED, INIT, FAILURE, TRACKED = 0, 1, 2, 3
EAO_RANGES = {"vot2015": (108, 371), "vot2016": (100, 356), "vot2017": (100, 356),
              "vot2018": (100, 356), "vot2019": (46, 291)}


@dataclasses.dataclass(frozen=True, eq=False)
class SupervisedRun:
    """One supervised run of one sequence.

    Attributes:
      boxes: ``(T, 4)`` predictions; the GT box on init frames, NaN on
        skipped frames.
      codes: ``(T,) int8``: SKIPPED, INIT, FAILURE or TRACKED.
      overlaps: ``(T,)`` IoU on TRACKED/FAILURE frames with GT, else NaN.
      scores: ``(T,)`` tracker confidence, NaN where not tracked.
      times: ``(T,)`` seconds per frame, 0 where skipped.
    """

    boxes: np.ndarray
    codes: np.ndarray
    overlaps: np.ndarray
    scores: np.ndarray
    times: np.ndarray

    @property
    def failures(self) -> int:
        return int(np.sum(self.codes == FAILURE))

    @property
    def init_frames(self) -> np.ndarray:
        return np.flatnonzero(self.codes == INIT)


def _loop(gt: np.ndarray, skip: int, frames, init_fn, step_fn) -> SupervisedRun:
    import time

    gt = np.asarray(gt, np.float64).reshape(-1, 4)
    n = len(gt)
    valid = geometry.valid_gt(gt)
    boxes = np.full((n, 4), np.nan)
    codes = np.full(n, SKIPPED, np.int8)
    overlaps = np.full(n, np.nan)
    scores = np.full(n, np.nan)
    times = np.zeros(n)
    tracking, next_init = False, 0
    for t, frame in zip(range(n), frames):
        if not tracking:
            # re-init needs a GT box, and a frame that could be read
            if t < next_init or not valid[t] or isinstance(frame, BadFrame):
                continue
            t0 = time.perf_counter()
            init_fn(t, frame, gt[t])
            times[t] = time.perf_counter() - t0
            boxes[t], codes[t], tracking = gt[t], INIT, True
            continue
        t0 = time.perf_counter()
        box, score = step_fn(t, frame)
        times[t] = time.perf_counter() - t0
        boxes[t], scores[t] = box, score
        codes[t] = TRACKED
        if valid[t]:
            overlaps[t] = geometry.iou(boxes[t], gt[t])[0]
            if overlaps[t] <= 0.0:
                codes[t], tracking, next_init = FAILURE, False, t + skip
    return SupervisedRun(boxes, codes, overlaps, scores, times)


def run_supervised(tracker: Tracker, frames: Iterable[np.ndarray], gt: np.ndarray, *,
                   seed: int = 0, skip: int = 5) -> SupervisedRun:
    """Drive ``tracker`` through the VOT supervised protocol.

    Args:
      tracker: step-wise tracker (:class:`jtrack.eval.trackers.Tracker`).
      frames: the sequence's frames in order, ``(H, W, 3) uint8`` (an
        iterator is fine: frames are consumed once, skipped ones unused);
        a :class:`~jtrack.data.BadFrame` is not tracked (a NaN box).
      gt: ``(T, 4)`` xywh 0-based ground truth, NaN rows where absent.
      seed: passed to every (re)initialization.
      skip: frames between a failure and the re-initialization.
    """
    holder = {}

    def init_fn(t, frame, box):
        holder["s"] = tracker.init(frame, np.asarray(box, np.float32), seed)

    def step_fn(t, frame):
        if isinstance(frame, BadFrame):  # skipped: not stepped, a NaN box (a miss)
            return np.full(4, np.nan), np.nan
        holder["s"], box, score = tracker.step(holder.pop("s"), frame)
        return np.asarray(box, np.float64), float(score)

    return _loop(gt, skip, frames, init_fn, step_fn)


def replay_supervised(boxes: np.ndarray, gt: np.ndarray, *, skip: int = 5) -> SupervisedRun:
    """Recover a supervised run from its saved per-frame boxes (a result
    file): replays the protocol with a tracker that returns ``boxes[t]``."""
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    return _loop(gt, skip, itertools.repeat(None),
                 lambda t, f, b: None, lambda t, f: (boxes[t], np.nan))


def accuracy(run: SupervisedRun, burnin: int = 10) -> float:
    """Mean IoU over tracked frames outside the burn-in after each
    (re)initialization (the init frame is the first of the ``burnin``)."""
    n = len(run.codes)
    mask = np.isfinite(run.overlaps) & (run.codes == TRACKED)
    for t0 in run.init_frames:
        mask[t0:min(t0 + burnin, n)] = False
    return float(np.mean(run.overlaps[mask])) if mask.any() else float("nan")


def ar_metrics(run: SupervisedRun, burnin: int = 10) -> dict[str, float]:
    """``accuracy``, ``failures`` (robustness) and ``n_frames``."""
    return {"accuracy": accuracy(run, burnin), "failures": run.failures,
            "n_frames": int(len(run.codes))}


def eao_fragments(run: SupervisedRun, max_length: int) -> tuple[np.ndarray, np.ndarray]:
    """Fragments of one run for EAO.

    Returns:
      ``(F, max_length)`` per-frame overlaps of each fragment (0 where the
      tracker failed/skipped or GT is missing; padded with 0 after a
      failure, NaN after the end of the sequence) and ``(F,)`` bool
      "ended in failure".
    """
    ov = np.nan_to_num(np.where(run.codes == TRACKED, run.overlaps, 0.0), nan=0.0)
    starts = list(run.init_frames) + [len(ov)]
    frags, failed = [], []
    for a, b in zip(starts[:-1], starts[1:]):
        seg = ov[a:b][:max_length]
        fail = bool(np.any(run.codes[a:b] == FAILURE))
        # after a failure the run "would have" scored 0; after the end of
        # the sequence it is unknown
        row = np.full(max_length, 0.0 if fail else np.nan)
        row[:len(seg)] = seg
        frags.append(row)
        failed.append(fail)
    if not frags:
        return np.zeros((0, max_length)), np.zeros(0, bool)
    return np.stack(frags), np.asarray(failed)


def eao_curve(runs: Seq[SupervisedRun], max_length: int | None = None,
              weights: Seq[float] | None = None) -> np.ndarray:
    """Expected average overlap ``Phi(Ns)`` for ``Ns = 1..max_length``.

    Args:
      runs: supervised runs (one per sequence and repetition).
      max_length: longest ``Ns`` (default: the longest run).
      weights: per-run weight (e.g. ``1/repetitions`` of its sequence);
        default 1 each.
    Returns:
      ``(max_length,)`` curve, index ``Ns - 1``; NaN where no fragment is
      usable.
    """
    if max_length is None:
        max_length = max(len(r.codes) for r in runs)
    weights = np.ones(len(runs)) if weights is None else np.asarray(weights, np.float64)
    frags, w = [], []
    for r, wr in zip(runs, weights):
        f, _ = eao_fragments(r, max_length)
        frags.append(f)
        w.extend([wr] * len(f))
    if not frags or not w:
        return np.full(max_length, np.nan)
    f, w = np.concatenate(frags), np.asarray(w)
    # mean of frames 2..Ns (index 1..Ns-1) for every Ns at once
    csum = np.cumsum(np.nan_to_num(f[:, 1:], nan=0.0), axis=1)
    ns = np.arange(2, max_length + 1)
    means = csum / (ns - 1)[None, :]
    usable = np.isfinite(f[:, 1:])
    wsum = np.sum(w[:, None] * usable, axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        phi = np.sum(np.where(usable, means * w[:, None], 0.0), axis=0) / wsum
    phi = np.where(wsum > 0, phi, np.nan)
    return np.concatenate([[1.0], phi])


def default_eao_range(lengths: Seq[int]) -> tuple[int, int]:
    """``[2, longest sequence]`` (see the module docstring)."""
    return 2, max(2, int(max(lengths)))


def eao(curve: np.ndarray, lo: int, hi: int) -> float:
    """Mean of ``Phi(Ns)`` over ``lo <= Ns <= hi`` (1-based lengths)."""
    seg = np.asarray(curve)[lo - 1:hi]
    return float(np.nanmean(seg)) if np.isfinite(seg).any() else float("nan")
