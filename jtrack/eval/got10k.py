"""GOT-10k metrics: average overlap (AO) and success rates SR@0.5, SR@0.75.

As the GOT-10k toolkit: the first frame (the initialization) and frames
where the target is absent or fully covered (``cover == 0``) are excluded;
the dataset AO/SR pool the frames of all sequences (long sequences weigh
more), unlike OTB's per-sequence mean.
"""

from __future__ import annotations

from collections.abc import Sequence as Seq

import numpy as np

from jtrack.eval import geometry


def scored_ious(pred: np.ndarray, gt: np.ndarray, cover: np.ndarray | None = None) -> np.ndarray:
    """``(T, 4)`` pred/gt (+ optional ``(T,)`` cover) -> IoUs of scored frames."""
    pred = np.asarray(pred, np.float64).reshape(-1, 4)
    gt = np.asarray(gt, np.float64).reshape(-1, 4)
    ok = geometry.valid_gt(gt)
    ok[0] = False  # the initialization frame is given, not tracked
    if cover is not None:
        ok &= np.asarray(cover) > 0
    return geometry.iou(pred[ok], gt[ok])


def ao_sr(ious: np.ndarray) -> dict[str, float]:
    """IoUs -> ``ao`` (mean), ``sr_50`` and ``sr_75`` (fraction with IoU > t)."""
    ious = np.asarray(ious, np.float64)
    if ious.size == 0:
        return {"ao": float("nan"), "sr_50": float("nan"), "sr_75": float("nan")}
    return {"ao": float(ious.mean()), "sr_50": float(np.mean(ious > 0.5)),
            "sr_75": float(np.mean(ious > 0.75))}


def pooled_ao_sr(per_sequence_ious: Seq[np.ndarray]) -> dict[str, float]:
    """Dataset AO/SR over the frames of all sequences pooled."""
    if not per_sequence_ious:
        return ao_sr(np.zeros(0))
    return ao_sr(np.concatenate([np.asarray(i, np.float64) for i in per_sequence_ious]))
