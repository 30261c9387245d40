"""Per-frame box errors for scoring, in float64 numpy.

Benchmark scoring runs once per result file, outside jit, and must match the
official toolkits to the last digit, so it uses float64 numpy rather than
the float32 ``jtrack.boxes`` used inside the tracker.

A missing prediction (NaN row) scores as a miss: IoU 0, infinite center
error. Frames whose *ground truth* is missing are the caller's to exclude
(see :func:`valid_gt`).
"""

from __future__ import annotations

import numpy as np


def _as_boxes(b) -> np.ndarray:
    return np.asarray(b, dtype=np.float64).reshape(-1, 4)


def valid_gt(gt) -> np.ndarray:
    """``(T, 4)`` -> ``(T,) bool``: finite with positive size (scorable)."""
    g = _as_boxes(gt)
    return np.all(np.isfinite(g), axis=1) & (g[:, 2] > 0) & (g[:, 3] > 0)


def iou(pred, gt) -> np.ndarray:
    """``(T, 4)`` x ``(T, 4)`` xywh -> ``(T,)`` IoU in [0, 1]; NaN boxes -> 0."""
    a, b = _as_boxes(pred), _as_boxes(gt)
    iw = np.minimum(a[:, 0] + a[:, 2], b[:, 0] + b[:, 2]) - np.maximum(a[:, 0], b[:, 0])
    ih = np.minimum(a[:, 1] + a[:, 3], b[:, 1] + b[:, 3]) - np.maximum(a[:, 1], b[:, 1])
    inter = np.maximum(iw, 0.0) * np.maximum(ih, 0.0)
    union = np.maximum(a[:, 2], 0) * np.maximum(a[:, 3], 0) + \
        np.maximum(b[:, 2], 0) * np.maximum(b[:, 3], 0) - inter
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(union > 0, inter / union, 0.0)
    return np.nan_to_num(out, nan=0.0)


def center_error(pred, gt) -> np.ndarray:
    """``(T,)`` Euclidean distance between box centers in pixels; NaN -> inf."""
    a, b = _as_boxes(pred), _as_boxes(gt)
    d = (a[:, :2] + a[:, 2:] / 2) - (b[:, :2] + b[:, 2:] / 2)
    out = np.sqrt(np.sum(d * d, axis=1))
    return np.where(np.isfinite(out), out, np.inf)


def normalized_center_error(pred, gt) -> np.ndarray:
    """``(T,)`` center distance with x scaled by 1/GT width and y by 1/GT
    height (TrackingNet), so it is comparable across target sizes."""
    a, b = _as_boxes(pred), _as_boxes(gt)
    d = ((a[:, :2] + a[:, 2:] / 2) - (b[:, :2] + b[:, 2:] / 2)) / b[:, 2:]
    out = np.sqrt(np.sum(d * d, axis=1))
    return np.where(np.isfinite(out), out, np.inf)
