"""OTB one-pass evaluation (OPE): success, precision, normalized precision.

Definitions follow the official OTB toolkit (Wu et al., perfPlot.m):

* success curve: fraction of frames with IoU **>** t, for the 21 thresholds
  ``t = 0, 0.05, ..., 1``; AUC is the **mean** of those 21 values (this is
  the "AUC" printed in OTB plots' legends);
* precision curve: fraction of frames with center error **<=** t pixels,
  ``t = 0..50``; precision@20 is its value at 20 px;
* dataset curves are means of per-sequence curves (each sequence counts
  once, whatever its length), so the dataset AUC is the mean per-sequence AUC.

Normalized precision (TrackingNet): same as precision on the center error
normalized by GT size, thresholds ``0, 0.01, ..., 0.5``; reported both at
0.2 (``norm_precision``, as pytracking/LaSOT tables) and as the mean over the
curve (``norm_precision_auc``, the TrackingNet paper's area).

Frames whose ground truth is missing (NaN, absent target) are excluded —
the official MATLAB toolkit would count them as failures, but the modern
toolkits (GOT-10k, LaSOT, pytracking) exclude them and OTB itself has none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence as Seq

import numpy as np

from jtrack.eval import geometry

IOU_THRESHOLDS = np.linspace(0.0, 1.0, 21)
PIXEL_THRESHOLDS = np.arange(0, 51, dtype=np.float64)
NORM_THRESHOLDS = np.linspace(0.0, 0.5, 51)


def success_curve(ious: np.ndarray, thresholds: np.ndarray = IOU_THRESHOLDS) -> np.ndarray:
    """``(T,)`` IoUs -> ``(len(thresholds),)`` fraction of frames with IoU > t."""
    ious = np.asarray(ious, dtype=np.float64)
    if ious.size == 0:
        return np.full(len(thresholds), np.nan)
    return np.mean(ious[None, :] > thresholds[:, None], axis=1)


def precision_curve(errors: np.ndarray, thresholds: np.ndarray = PIXEL_THRESHOLDS) -> np.ndarray:
    """``(T,)`` center errors -> fraction of frames with error <= t."""
    errors = np.asarray(errors, dtype=np.float64)
    if errors.size == 0:
        return np.full(len(thresholds), np.nan)
    return np.mean(errors[None, :] <= thresholds[:, None], axis=1)


def auc(curve: np.ndarray) -> float:
    """OTB "AUC": the mean of the success curve over its thresholds."""
    return float(np.mean(curve))


def ope_curves(pred: np.ndarray, gt: np.ndarray) -> dict[str, np.ndarray]:
    """Per-frame errors and curves of one sequence.

    Args:
      pred: ``(T, 4)`` xywh predictions (NaN rows = no prediction, a miss).
      gt: ``(T, 4)`` xywh ground truth (NaN rows = excluded frames).
    Returns:
      dict with ``success (21,)``, ``precision (51,)``,
      ``norm_precision (51,)`` curves and ``ious (n,)`` of scored frames.
    """
    pred = np.asarray(pred, np.float64).reshape(-1, 4)
    gt = np.asarray(gt, np.float64).reshape(-1, 4)
    if len(pred) != len(gt):
        raise ValueError(f"{len(pred)} predicted boxes for {len(gt)} ground-truth rows")
    ok = geometry.valid_gt(gt)
    p, g = pred[ok], gt[ok]
    ious = geometry.iou(p, g)
    return {
        "ious": ious,
        "success": success_curve(ious),
        "precision": precision_curve(geometry.center_error(p, g)),
        "norm_precision": precision_curve(geometry.normalized_center_error(p, g),
                                          NORM_THRESHOLDS),
    }


def summarize_curves(curves: Mapping[str, np.ndarray]) -> dict[str, float]:
    """Scalar OPE metrics from (per-sequence or averaged) curves."""
    return {
        "auc": auc(curves["success"]),
        "success_50": float(curves["success"][10]),       # IoU > 0.5
        "precision_20": float(curves["precision"][20]),   # 20 px
        "norm_precision": float(curves["norm_precision"][20]),  # 0.2
        "norm_precision_auc": float(np.mean(curves["norm_precision"])),
    }


def ope_metrics(pred: np.ndarray, gt: np.ndarray) -> dict[str, float]:
    """One sequence's scalar OPE metrics (plus ``mean_iou`` and ``n_frames``
    scored)."""
    c = ope_curves(pred, gt)
    out = summarize_curves(c)
    out["mean_iou"] = float(np.mean(c["ious"])) if c["ious"].size else float("nan")
    out["n_frames"] = int(c["ious"].size)
    return out


def mean_curves(per_sequence: Seq[Mapping[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Dataset curves: the mean of per-sequence curves (OTB toolkit)."""
    keys = ("success", "precision", "norm_precision")
    return {k: np.nanmean(np.stack([c[k] for c in per_sequence]), axis=0) for k in keys}


def attribute_breakdown(preds: Mapping[str, np.ndarray], sequences) -> dict[str, dict]:
    """OPE metrics per attribute.

    Sequence-level tags (``Sequence.attributes``, OTB ``IV``, ``OCC``...):
    mean of the curves of the sequences that have the tag, as OTB's
    attribute plots. Per-frame bool flags (VOT tags, LaSOT
    ``full_occlusion``): curves over the pooled flagged frames. The
    ``absent`` flag is skipped (those frames are never scored).

    Args:
      preds: sequence name -> ``(T, 4)`` predictions.
      sequences: the :class:`jtrack.data.Sequence` objects scored.
    Returns:
      attribute -> dict of :func:`summarize_curves` metrics plus
      ``n_sequences`` (tags) or ``n_frames`` (flags).
    """
    by_tag: dict[str, list] = {}
    by_flag: dict[str, tuple[list, list]] = {}
    for s in sequences:
        if s.name not in preds:
            continue
        pred = np.asarray(preds[s.name], np.float64)
        for tag in s.attributes:
            by_tag.setdefault(tag, []).append(ope_curves(pred, s.gt))
        for key, flag in s.flags.items():
            if key == "absent" or flag.dtype != np.bool_ or not flag.any():
                continue
            p, g = by_flag.setdefault(key, ([], []))
            p.append(pred[flag])
            g.append(np.asarray(s.gt, np.float64)[flag])
    out = {}
    for tag, cs in sorted(by_tag.items()):
        out[tag] = {**summarize_curves(mean_curves(cs)), "n_sequences": len(cs)}
    for key, (p, g) in sorted(by_flag.items()):
        c = ope_curves(np.concatenate(p), np.concatenate(g))
        if c["ious"].size:
            out[key] = {**summarize_curves(c), "n_frames": int(c["ious"].size)}
    return out
