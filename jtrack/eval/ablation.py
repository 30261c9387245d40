"""Ablation study: named tracker variants and the aggregation of their runs.

A :class:`Variant` is either a set of :class:`~jtrack.config.TrackerConfig`
overrides applied to a base config (jtrack with one design choice changed)
or a classic baseline tracker from :data:`jtrack.eval.baselines.BASELINES`.
Runs go through :mod:`jtrack.eval.runner` (one result folder per variant and
dataset, ``seed_<k>/`` per seed), so every number here can be re-scored from
the runner's result files with :func:`jtrack.eval.scoring.score_folder`.

Aggregation pools every sequence of every dataset: per seed, the OTB curves
are the mean of the per-sequence curves (each sequence counts once), and the
table reports mean ± std over seeds of the AUC, precision@20 px and frames/s.
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Iterable, Mapping, Sequence as Seq
from typing import Any

import numpy as np

from jtrack.config import PRETRAINED_LAYER_LR, TrackerConfig
from jtrack.eval import otb, scoring


@dataclasses.dataclass(frozen=True)
class Variant:
    """One row of the ablation table.

    Attributes:
      name: short identifier (folder name, table row).
      description: what differs from the full tracker.
      overrides: ``(field, value)`` pairs applied to the base TrackerConfig.
      baseline: a ``BASELINES`` key: run that tracker instead of jtrack.
      head: ``jtrack.init_params``'s head: ``"random"`` or ``"pretrained"``
        (the shipped one).
      cost: rough run time relative to the full tracker, for scheduling
        (slowest first) when no measured time of an earlier run exists.
    """

    name: str
    description: str
    overrides: tuple[tuple[str, Any], ...] = ()
    baseline: str | None = None
    cost: float = 1.0
    head: str = "random"

    @property
    def stochastic(self) -> bool:
        """jtrack's runs depend on the seed; the classic baselines do not."""
        return self.baseline is None

    def config(self, base: TrackerConfig | None = None) -> TrackerConfig:
        """The variant's TrackerConfig (validated); baselines have none."""
        if self.baseline is not None:
            raise ValueError(f"variant {self.name!r} is the baseline {self.baseline!r}, "
                             "not a jtrack config")
        base = TrackerConfig() if base is None else base
        return base.replace(**dict(self.overrides))


_ONE_LR = (("fc4", 1.0), ("fc5", 1.0), ("fc6", 1.0))

# The full tracker first (the reference every Δ is taken against), then one
# design choice changed at a time, then the classic trackers.
VARIANTS: tuple[Variant, ...] = (
    Variant("full", "full tracker (defaults: EfficientNet-Lite0, 3x region, 256 candidates)"),
    Variant("pretrained", "the shipped head pretrained on 12 real domains, fc4/fc5 trained "
            "online at 0.1x (default: random head, MDNet's rates)",
            (("layer_lr", PRETRAINED_LAYER_LR),), head="pretrained"),
    Variant("pretrained_mdnet_rates", "the shipped pretrained head trained online at "
            "MDNet's rates (fc4/fc5 at 1x)", head="pretrained"),
    Variant("first_frame_at_once", "the first frame's 50 iterations over 5,000 negatives "
            "on the first frame, as py-MDNet (default: 20 there, 30 over the next frames, "
            "2,000 negatives)", (("iters_init_first", 50), ("n_neg_init", 5000)), cost=1.2),
    Variant("update_at_once", "every training step on the frame that asks for it: the online "
            "updates' 15 iterations and all 50 first-frame ones, as py-MDNet (default: 3 per "
            "frame over the next frames)", (("iters_per_frame", 0),)),
    Variant("mdnet_head", "MDNet's head and update: fc4/fc5 512 wide, 1024 negatives "
            "scored for mining, updates at once (default: 256, 256, 3 iterations per frame)",
            (("hidden", 512), ("batch_neg_cand", 1024), ("iters_per_frame", 0)), cost=2.0),
    Variant("no_online_update", "head trained on the first frame only",
            (("online_update", False),)),
    Variant("random_negatives", "no hard negative mining: random negatives",
            (("hard_negative_mining", False),)),
    Variant("one_lr", "one learning rate for fc4-6 (default: fc6 at 10x)",
            (("layer_lr", _ONE_LR),)),
    Variant("no_outlier_reject", "top-5 averaged without rejecting outlier boxes",
            (("outlier_reject", False),)),
    Variant("reextract_negatives", "stored negatives re-pooled from the current frame "
            "at each update (default: kept)", (("reextract_negatives", True),)),
    Variant("first_frame_x10", "older samples trusted more: first-frame positives "
            "weighted 10x (default: uniform)", (("first_frame_weight", 10.0),)),
    Variant("hold_on_failure", "a lost target keeps its previous box (default: moves to "
            "the top-5 mean, as py-MDNet)", (("hold_on_failure", True),)),
    Variant("region_2x", "search region 2x the box (default 3x)", (("region_scale", 2.0),)),
    Variant("region_4x", "search region 4x the box (default 3x)", (("region_scale", 4.0),)),
    Variant("cand_64", "64 candidates (default 256)", (("n_candidates", 64),)),
    Variant("cand_1024", "1024 candidates (default 256)", (("n_candidates", 1024),)),
    Variant("vggm_random", "VGG-M conv1-3 with random weights (default: ImageNet "
            "EfficientNet-Lite0)", (("backbone", "vggm"),), cost=6.0),
    Variant("no_bbreg", "no bounding-box regression", (("bbreg", False),)),
    Variant("bbreg_feedback", "regressed box also tracked: next search and samples "
            "centred on it (default: output only, as py-MDNet)", (("bbreg_feedback", True),)),
    Variant("no_lost_aspect", "re-detection keeps the box shape, as py-MDNet (default: "
            "also tries w/h ratios x 2^U(-1,1))", (("lost_aspect", 1.0),)),
    Variant("opencv_csrt", "OpenCV CSRT (classic baseline)", baseline="csrt",
            cost=0.05),
    Variant("opencv_kcf", "OpenCV KCF (classic baseline)", baseline="kcf",
            cost=0.05),
    Variant("opencv_mil", "OpenCV MIL (classic baseline)", baseline="mil",
            cost=0.05),
)
REFERENCE = "full"


def select(names: Iterable[str] | None = None,
           variants: Seq[Variant] = VARIANTS) -> list[Variant]:
    """The variants named (in the given order), or all; unknown names raise."""
    by_name = {v.name: v for v in variants}
    if names is None:
        return list(variants)
    names = list(names)
    unknown = [n for n in names if n not in by_name]
    if unknown:
        raise ValueError(f"unknown variants {unknown}; known: {sorted(by_name)}")
    return [by_name[n] for n in names]


def slowest_first(variants: Seq[Variant], measured: Mapping[str, float] | None = None,
                  ) -> list[Variant]:
    """The variants ordered by expected run time, longest first (stable).

    ``measured`` maps variant names to seconds of an earlier run; variants
    without one are estimated from :attr:`Variant.cost` scaled by the median
    measured time per unit of cost (or compared by ``cost`` alone). Handing
    the longest job out first to whichever worker is free keeps a few slow
    variants from finishing last on one worker.
    """
    measured = dict(measured or {})
    per_unit = [measured[v.name] / v.cost for v in variants if v.name in measured and v.cost > 0]
    unit = float(np.median(per_unit)) if per_unit else 1.0

    def expected(v: Variant) -> float:
        return measured.get(v.name, v.cost * unit)
    return sorted(variants, key=expected, reverse=True)


# ----------------------------------------------------------------------------
# aggregation


def score_seed(folders: Seq[tuple[str, Seq]]) -> dict:
    """Pool one seed's result folders (``(folder, sequences)`` per dataset).

    Returns ``curves`` (success/precision: mean of per-sequence curves),
    ``auc``, ``precision_20``, ``fps`` (all frames / all seconds, init
    included), ``sequences`` (name -> its own metrics) and ``missing``.
    """
    curves, per_seq, missing = [], {}, []
    frames, seconds = 0, 0.0
    for folder, sequences in folders:
        s = scoring.score_folder(folder, sequences, "ope")
        missing += s["missing"]
        preds = scoring.load_predictions(folder, sequences)
        for seq in sequences:
            if seq.name not in preds:
                continue
            curves.append(otb.ope_curves(preds[seq.name], seq.gt))
            m = s["sequences"][seq.name]
            per_seq[seq.name] = m
            if m.get("fps"):
                frames, seconds = frames + len(seq), seconds + len(seq) / m["fps"]
    out: dict = {"sequences": per_seq, "missing": missing}
    if curves:
        mc = otb.mean_curves(curves)
        out["curves"] = {k: mc[k] for k in ("success", "precision")}
        out.update({k: otb.summarize_curves(mc)[k] for k in ("auc", "precision_20")})
    out["fps"] = frames / seconds if seconds > 0 else float("nan")
    return out


def _mean_std(vals: Seq[float]) -> tuple[float, float]:
    v = np.asarray([x for x in vals if x is not None and math.isfinite(x)], np.float64)
    return (float(v.mean()), float(v.std())) if v.size else (float("nan"), float("nan"))


METRICS = ("auc", "precision_20", "fps")


def summarize(per_seed: Mapping[int, dict]) -> dict:
    """Mean ± std over seeds of :func:`score_seed` results, mean curves and
    per-sequence mean AUC."""
    seeds = sorted(per_seed)
    out: dict = {"seeds": seeds, "mean": {}, "std": {},
                 "per_seed": {s: {k: per_seed[s].get(k) for k in METRICS} for s in seeds}}
    for k in METRICS:
        out["mean"][k], out["std"][k] = _mean_std([per_seed[s].get(k) for s in seeds])
    with_curves = [per_seed[s]["curves"] for s in seeds if "curves" in per_seed[s]]
    if with_curves:
        out["curves"] = {k: np.mean([c[k] for c in with_curves], axis=0)
                         for k in ("success", "precision")}
    names = sorted({n for s in seeds for n in per_seed[s]["sequences"]})
    out["sequence_auc"] = {n: _mean_std([per_seed[s]["sequences"][n].get("auc")
                                         for s in seeds if n in per_seed[s]["sequences"]])[0]
                           for n in names}
    out["missing"] = sorted({m for s in seeds for m in per_seed[s]["missing"]})
    return out


def verdict(row: dict, ref: dict, k: float = 2.0) -> str:
    """'better' / 'worse' when the AUC difference to the reference exceeds
    ``k`` times the larger of the two seed stds, else 'within noise'. A crude
    rule for 3 seeds; a single-seed row is judged against the reference's
    std alone."""
    d = row["mean"]["auc"] - ref["mean"]["auc"]
    noise = max(row["std"]["auc"], ref["std"]["auc"])
    if not math.isfinite(d):
        return "-"
    if abs(d) <= k * noise:
        return "within noise"
    return "better" if d > 0 else "worse"


def markdown_table(rows: Seq[tuple[Variant, dict]], reference: str = REFERENCE) -> str:
    """One row per variant: mean ± std AUC, precision@20, frames/s, ΔAUC
    against ``reference``, the verdict, and each sequence's mean AUC."""
    ref = next((s for v, s in rows if v.name == reference), None)
    seqs = sorted({n for _, s in rows for n in s["sequence_auc"]})
    head = ["variant", "what changes", "seeds", "AUC", "P@20", "fps", "ΔAUC", "vs full"]
    lines = ["| " + " | ".join(head + [f"AUC {n}" for n in seqs]) + " |",
             "|" + "---|" * (len(head) + len(seqs))]

    def pm(s, k, digits=3):
        m, sd = s["mean"][k], s["std"][k]
        if not math.isfinite(m):
            return "-"
        return f"{m:.{digits}f} ± {sd:.{digits}f}" if len(s["seeds"]) > 1 else f"{m:.{digits}f}"

    for v, s in rows:
        if ref is not None and v.name != reference:
            delta = f"{s['mean']['auc'] - ref['mean']['auc']:+.3f}"
            judged = verdict(s, ref)
        else:
            delta, judged = "", "reference" if ref is not None else ""
        per = [f"{s['sequence_auc'][n]:.3f}" if n in s["sequence_auc"] else "-"
               for n in seqs]
        cells = [f"`{v.name}`", v.description, str(len(s["seeds"])), pm(s, "auc"),
                 pm(s, "precision_20"), pm(s, "fps", 1), delta, judged] + per
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def variant_dir(results_dir: str, variant: Variant, dataset_label: str) -> str:
    """``RESULTS_DIR/<variant>/<dataset>``: one runner results folder."""
    return os.path.join(results_dir, variant.name, dataset_label)
