"""OTB-style success and precision plots (matplotlib, Agg: no display)."""

from __future__ import annotations

import io
import os
from collections.abc import Mapping

import numpy as np

from jtrack.data.results import atomic_write_bytes
from jtrack.eval.otb import IOU_THRESHOLDS, PIXEL_THRESHOLDS


def plot_ope(curves: Mapping[str, Mapping[str, np.ndarray]], out_dir: str,
             title: str = "OPE", prefix: str = "") -> list[str]:
    """Write ``success.png`` and ``precision.png`` comparing trackers.

    Args:
      curves: tracker name -> ``{"success": (21,), "precision": (51,)}``
        dataset curves (:func:`jtrack.eval.otb.mean_curves`).
      out_dir: output folder.
      prefix: file-name prefix (``<prefix>success.png``).
    Returns:
      the two PNG paths. Legends are sorted best first and show AUC /
      precision@20 px, as the OTB toolkit's plots.
    """
    plt = _pyplot()
    os.makedirs(out_dir, exist_ok=True)
    paths = []
    specs = [("success", IOU_THRESHOLDS, "Overlap threshold", "Success rate",
              lambda c: float(np.mean(c)), "Success plots of " + title),
             ("precision", PIXEL_THRESHOLDS, "Location error threshold (px)", "Precision",
              lambda c: float(c[20]), "Precision plots of " + title)]
    for key, xs, xlabel, ylabel, score, ttl in specs:
        many = len(curves) > 8  # ablations: bigger figure, styles cycle past 10 colours
        fig, ax = plt.subplots(figsize=(7, 5.5) if many else (5, 4), dpi=100)
        ranked = sorted(curves.items(), key=lambda kv: -score(np.asarray(kv[1][key])))
        for i, (name, c) in enumerate(ranked):
            ax.plot(xs, np.asarray(c[key]), ("-", "--", ":")[(i // 10) % 3],
                    label=f"{name} [{score(np.asarray(c[key])):.3f}]")
        ax.set(xlabel=xlabel, ylabel=ylabel, title=ttl, xlim=(xs[0], xs[-1]), ylim=(0, 1))
        ax.grid(alpha=0.3)
        ax.legend(loc="lower left" if key == "success" else "lower right",
                  fontsize=7 if many else 8)
        path = os.path.join(out_dir, prefix + key + ".png")
        _save(plt, fig, path)
        paths.append(path)
    return paths


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt
    return plt


def _save(plt, fig, path: str) -> None:
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    atomic_write_bytes(path, buf.getvalue())


def plot_training_log(log_path: str, png_path: str) -> str:
    """Training curves of a pretraining ``log.jsonl`` (one record per epoch:
    ``{'step', 'train': {metric: v}, 'held': {metric: v}}``): one panel per
    metric, training and held-out frames. Returns ``png_path``."""
    import json

    with open(log_path, encoding="utf-8") as f:
        recs = [json.loads(line) for line in f if line.strip()]
    if not recs:
        raise ValueError(f"{log_path}: no records to plot")
    plt = _pyplot()
    metrics = list(recs[0]["train"])
    fig, axes = plt.subplots(1, len(metrics), figsize=(3.2 * len(metrics), 3), dpi=100)
    steps = [r["step"] for r in recs]
    for ax, m in zip(np.atleast_1d(axes), metrics):
        for part, style in (("train", "-"), ("held", "--")):
            ax.plot(steps, [r.get(part, {}).get(m, np.nan) for r in recs], style,
                    label=part)
        ax.set(title=m, xlabel="step")
        ax.grid(alpha=0.3)
        if not m.startswith("loss"):
            ax.set_ylim(0, 1.02)
    np.atleast_1d(axes)[0].legend(fontsize=8)
    fig.tight_layout()
    _save(plt, fig, png_path)
    return png_path
