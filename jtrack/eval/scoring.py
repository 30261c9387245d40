"""Scoring result folders (jtrack's or other trackers') against a dataset.

A result folder holds one ``<sequence>.txt`` per sequence in the dataset's
GT convention (see :mod:`jtrack.data.results`); other trackers' OTB results
named ``<Tracker>_<sequence>.txt`` or with different case are found too.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence as Seq

import numpy as np

from jtrack.data.results import read_boxes, read_times
from jtrack.eval import got10k, otb, vot

OPE_COLUMNS = ("auc", "precision_20", "norm_precision", "success_50")
GOT_COLUMNS = ("ao", "sr_50", "sr_75")
VOT_COLUMNS = ("accuracy", "failures")
COLUMN_ORDER = ("auc", "precision_20", "norm_precision", "norm_precision_auc", "success_50",
                 "mean_iou", "ao", "sr_50", "sr_75", "accuracy", "failures", "eao", "fps")


def default_protocol(kind: str) -> str:
    """Each benchmark's own protocol: supervised for VOT, one-pass otherwise."""
    return "supervised" if kind == "vot" else "ope"


def find_result_file(folder: str, name: str) -> str | None:
    """``<name>.txt``, else case-insensitive or ``<anything>_<name>.txt``."""
    exact = os.path.join(folder, name + ".txt")
    if os.path.isfile(exact):
        return exact
    if not os.path.isdir(folder):
        return None
    low = name.lower() + ".txt"
    for n in sorted(os.listdir(folder)):
        nl = n.lower()
        if nl == low or (nl.endswith("_" + low) and not nl.endswith("_time.txt")):
            return os.path.join(folder, n)
    return None


def _fix_length(boxes: np.ndarray, n: int, path: str) -> np.ndarray:
    """Other trackers' files are sometimes one row short or long (OTB
    results of sequences whose images outnumber GT rows): cut or NaN-pad."""
    if len(boxes) >= n:
        return boxes[:n]
    out = np.full((n, 4), np.nan)
    out[:len(boxes)] = boxes
    return out


def load_predictions(folder: str, sequences) -> dict[str, np.ndarray]:
    """Sequence name -> ``(T, 4)`` 0-based predictions, for sequences with a
    result file in ``folder``."""
    out = {}
    for s in sequences:
        path = find_result_file(folder, s.name)
        if path is not None:
            out[s.name] = _fix_length(read_boxes(path, s.one_based), len(s), path)
    return out


def _times(folder: str, name: str) -> np.ndarray | None:
    path = os.path.join(folder, name + "_time.txt")
    return read_times(path) if os.path.isfile(path) else None


def _nanmean(vals) -> float:
    vals = [v for v in vals if v is not None and not (isinstance(v, float) and math.isnan(v))]
    return float(np.mean(vals)) if vals else float("nan")


def score_folder(folder: str, sequences: Seq, protocol: str = "ope", *,
                 eao_range: tuple[int, int] | None = None) -> dict:
    """Score every sequence with a result file in ``folder``.

    Returns a JSON-able dict: ``sequences`` (name -> metrics), ``mean``
    (dataset metrics), ``curves`` (OPE dataset curves as lists),
    ``attributes`` (OPE per-attribute breakdown), ``missing`` (names
    without results) and, for the supervised protocol, ``eao`` and the
    ``eao_range`` used.
    """
    preds = load_predictions(folder, sequences)
    scored = [s for s in sequences if s.name in preds]
    per_seq: dict[str, dict] = {}
    total_frames, total_time = 0, 0.0
    for s in scored:
        t = _times(folder, s.name)
        per_seq[s.name] = {}
        if t is not None and t.sum() > 0:
            per_seq[s.name]["fps"] = float(len(t) / t.sum())
            total_frames, total_time = total_frames + len(t), total_time + float(t.sum())
    out: dict = {"protocol": protocol, "missing": [s.name for s in sequences
                                                    if s.name not in preds]}
    if protocol == "ope":
        curves = []
        for s in scored:
            c = otb.ope_curves(preds[s.name], s.gt)
            curves.append(c)
            m = per_seq[s.name]
            m.update(otb.summarize_curves(c))
            m["mean_iou"] = float(np.mean(c["ious"])) if c["ious"].size else float("nan")
            if s.dataset == "got10k":
                m.update(got10k.ao_sr(got10k.scored_ious(preds[s.name], s.gt,
                                                         s.flags.get("cover"))))
        mean = {}
        if curves:
            dc = otb.mean_curves(curves)
            mean.update(otb.summarize_curves(dc))
            out["curves"] = {k: v.tolist() for k, v in dc.items()}
        if any(s.dataset == "got10k" for s in scored):
            mean.update(got10k.pooled_ao_sr([got10k.scored_ious(preds[s.name], s.gt,
                                                                s.flags.get("cover"))
                                             for s in scored]))
        out["attributes"] = otb.attribute_breakdown(preds, scored)
    elif protocol == "supervised":
        runs = []
        for s in scored:
            r = vot.replay_supervised(preds[s.name], s.gt)
            runs.append(r)
            per_seq[s.name].update(vot.ar_metrics(r))
        mean = {"accuracy": _nanmean([m["accuracy"] for m in per_seq.values()]),
                "failures": float(sum(m["failures"] for m in per_seq.values()))}
        if runs:
            lo, hi = eao_range or vot.default_eao_range([len(s) for s in scored])
            curve = vot.eao_curve(runs, max_length=hi)
            mean["eao"] = vot.eao(curve, lo, hi)
            out["eao_range"] = [lo, hi]
            out["eao_curve"] = curve.tolist()
    else:
        raise ValueError(f"unknown protocol {protocol!r}; expected 'ope' or 'supervised'")
    if total_time > 0:
        mean["fps"] = total_frames / total_time
    out["sequences"] = per_seq
    out["mean"] = mean
    return out


def markdown_table(summary: dict, title: str | None = None) -> str:
    """Per-sequence rows plus a mean row, as a markdown table."""
    seqs = summary["sequences"]
    seen = {k for m in list(seqs.values()) + [summary["mean"]] for k in m} - {"n_frames"}
    cols = [c for c in COLUMN_ORDER if c in seen] + sorted(seen - set(COLUMN_ORDER))
    lines = [f"### {title}", ""] if title else []
    lines.append("| sequence | " + " | ".join(cols) + " |")
    lines.append("|---|" + "---|" * len(cols))

    def fmt(v):
        if v is None or (isinstance(v, float) and math.isnan(v)):
            return "-"
        return f"{v:.3f}" if isinstance(v, float) else str(v)

    for name, m in list(seqs.items()) + [("**mean**", summary["mean"])]:
        lines.append(f"| {name} | " + " | ".join(fmt(m.get(c)) for c in cols) + " |")
    for k in ("eao", ):
        if k in summary["mean"] and "eao_range" in summary:
            lo, hi = summary["eao_range"]
            lines.append(f"\nEAO {fmt(summary['mean'][k])} over sequence lengths {lo}-{hi}.")
    return "\n".join(lines) + "\n"
