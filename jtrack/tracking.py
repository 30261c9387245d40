"""Run the tracker over a whole sequence (host-side loop, timing, logging).

This is an edge of the library: it touches the clock and may print. The pure
functions it drives live in :mod:`jtrack.tracker`.
"""

from __future__ import annotations

import time
from typing import Callable, Iterable

import jax
import numpy as np

from jtrack import tracker
from jtrack.config import TrackerConfig


def iou_np(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Element-wise IoU of (..., 4) xywh numpy boxes; NaN ground truth gives NaN."""
    x1 = np.maximum(a[..., 0], b[..., 0])
    y1 = np.maximum(a[..., 1], b[..., 1])
    x2 = np.minimum(a[..., 0] + a[..., 2], b[..., 0] + b[..., 2])
    y2 = np.minimum(a[..., 1] + a[..., 3], b[..., 1] + b[..., 3])
    inter = np.clip(x2 - x1, 0, None) * np.clip(y2 - y1, 0, None)
    union = a[..., 2] * a[..., 3] + b[..., 2] * b[..., 3] - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def format_line(frame: int, score: float, cost: float, iou: float | None = None) -> str:
    """``frame 41  IoU 0.63  prob 0.85  cost 0.408s`` (IoU only when known)."""
    iou_part = f"  IoU {iou:.2f}" if iou is not None and np.isfinite(iou) else ""
    return f"frame {frame}{iou_part}  prob {score:.2f}  cost {cost:.3f}s"


def track_sequence(config: TrackerConfig, params: dict, frames: Iterable,
                   init_box, key, gt: np.ndarray | None = None,
                   log: Callable[[str], None] | None = None,
                   on_frame: Callable[[int, np.ndarray, float], None] | None = None,
                   on_update: Callable[[int, dict], None] | None = None):
    """Track ``init_box`` through ``frames`` (an iterable of (H, W, 3) uint8).

    Args:
      gt: optional (T, 4) xywh ground truth, only used for the log line.
      log: called with one line per frame (e.g. ``print``), or None.
      on_frame: called as ``on_frame(index, box, score)`` after every frame.
      on_update: with ``gt``, called as ``on_update(index, metrics)`` after
        every online update with the classifier's PR / RR / TopK accuracy
        (:func:`jtrack.eval.research.classifier_metrics`; costs one extra
        backbone pass per update, untimed); the log line shows them too.
    Returns:
      boxes (T, 4) float32 xywh (row 0 is ``init_box``), scores (T,) float32
      (1 on the first frame), times (T,) float64 seconds per frame
      (including the first frame's training).
    """
    boxes, scores, times = [], [], []
    state = None
    for i, frame in enumerate(frames):
        t0 = time.perf_counter()
        if state is None:
            state = tracker.init(config, params, frame, init_box, key)
            jax.block_until_ready(state)
            box, score = np.asarray(state.box), 1.0
        else:
            state, out = tracker.step(config, state, frame)
            box = np.asarray(out.box)  # blocks until the frame is done
            score = float(out.score)
        cost = time.perf_counter() - t0
        research = None
        if (on_update is not None and gt is not None and i < len(gt) and i > 0
                and bool(out.updated) and np.all(np.isfinite(gt[i]))):
            from jtrack.eval.research import classifier_metrics
            research = classifier_metrics(config, state, frame, gt[i], jax.random.fold_in(tracker._as_key(key), i))
            on_update(i, research)
        boxes.append(box)
        scores.append(score)
        times.append(cost)
        if log is not None:
            iou = float(iou_np(box, gt[i])) if gt is not None and i < len(gt) else None
            line = format_line(i, score, cost, iou)
            if research is not None:
                line += "  update: " + "  ".join(f"{k} {v:.2f}" for k, v in research.items())
            log(line)
        if on_frame is not None:
            on_frame(i, box, score)
    if state is None:
        raise ValueError("track_sequence got no frames")
    return (np.stack(boxes).astype(np.float32), np.asarray(scores, np.float32),
            np.asarray(times, np.float64))
