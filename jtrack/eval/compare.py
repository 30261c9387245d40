"""Tracker variants side by side: heads and online settings on the same
sequences and seeds, OTB one-pass evaluation, resumable.

A variant is a head plus TrackerConfig overrides, ``{"head": "random" |
"pretrained" | "shipped", "config": {field: value}}``: ``random`` is
``jtrack.init_params(config, key, head="random")`` (ImageNet backbone, random
fc4/fc5/fc6), ``pretrained`` a head file from ``experiments.pretrain``
(:func:`jtrack.pretrain.load_params`; its mean fc6, or a random one with
``"fc6": "random"``), ``shipped`` the head in the package. Used by
``experiments.pretrain_eval`` and ``experiments.pretrain_cv``.
"""

from __future__ import annotations

import json
import os

BUILTIN = {"random": {"head": "random", "config": {}},
           "pretrained": {"head": "pretrained", "config": {}}}


def load_specs(path: str | None, names) -> dict:
    """{name: {'head', 'config'}} of the variants ``names``: built-ins plus
    those of the JSON file ``path``. Raises ValueError naming an unknown one."""
    specs = dict(BUILTIN)
    if path:
        with open(path, encoding="utf-8") as f:
            specs.update(json.load(f))
    unknown = [n for n in names if n not in specs]
    if unknown:
        raise ValueError(f"unknown variants {unknown}; known: {sorted(specs)}")
    out = {}
    for n in names:
        s = {"config": {}, **specs[n]}
        if s["head"] not in ("random", "pretrained", "shipped"):
            raise ValueError(f"variant {n}: head must be random, pretrained or shipped, "
                             f"got {s['head']!r}")
        out[n] = s
    return out


def variant_config(base, spec: dict):
    """TrackerConfig of a variant: ``base`` with the variant's fields."""
    from jtrack.config import with_fields

    return with_fields(base, spec["config"])


def variant_params(config, spec: dict, head_path: str | None, key):
    import jtrack
    from jtrack.pretrain import load_params

    if spec["head"] == "pretrained":
        if not head_path:
            raise ValueError("a 'pretrained' variant needs --head")
        return load_params(head_path, config, key, spec.get("fc6", "file"))
    return jtrack.init_params(config, key, head="random" if spec["head"] == "random"
                              else "pretrained")


def evaluate(sequences, specs: dict, seeds, head_path: str | None, out: str,
             base, tag: str = "") -> dict:
    """Track every (sequence, seed, variant) not yet in ``out`` (JSON, rewritten
    atomically after each run) and return all results. ``sequences`` are
    :class:`jtrack.data.Sequence`, ``base`` the TrackerConfig every variant
    starts from; each sequence's frames are decoded once and
    kept in memory while its runs go. Keys are ``[tag/]sequence/seed/variant``."""
    import jax
    import numpy as np

    from jtrack.data import atomic_write_text
    from jtrack.eval.otb import ope_metrics
    from jtrack.tracking import track_sequence

    results = {}
    if os.path.exists(out):
        with open(out, encoding="utf-8") as f:
            results = json.load(f)
    prefix = f"{tag}/" if tag else ""
    for seq in sequences:
        todo = [(seed, v) for seed in seeds for v in specs
                if f"{prefix}{seq.name}/{seed}/{v}" not in results]
        if not todo:
            continue
        frames = list(seq.iter_frames())
        for seed, v in todo:
            config = variant_config(base, specs[v])
            key = jax.random.key(seed)
            params = variant_params(config, specs[v], head_path, key)
            boxes, _, times = track_sequence(config, params, frames, seq.init_box,
                                             jax.random.fold_in(key, 1))
            m = ope_metrics(boxes, seq.gt)
            name = f"{prefix}{seq.name}/{seed}/{v}"
            results[name] = {"sequence": seq.name, "seed": seed, "variant": v,
                             "fold": tag, "auc": float(m["auc"]),
                             "precision20": float(m["precision_20"]),
                             "mean_iou": float(m["mean_iou"]), "frames": len(seq),
                             "mean_frame_s": float(np.mean(times[1:])),
                             "first_frame_s": float(times[0])}
            print(f"{name}: AUC {results[name]['auc']:.3f}  "
                  f"{results[name]['mean_frame_s'] * 1000:.0f} ms/frame", flush=True)
            atomic_write_text(out, json.dumps(results, indent=1))
        del frames
    return results


def table(results: dict, variants) -> str:
    """Markdown table: sequence x variant, mean ± std AUC over seeds; the
    ``mean`` row averages sequences per seed first (each sequence counts once)."""
    import numpy as np
    rs = [r for r in results.values() if r["variant"] in variants]
    seqs = sorted({r["sequence"] for r in rs})
    lines = ["| sequence | " + " | ".join(f"{v} AUC" for v in variants) + " | seeds |",
             "|---" * (len(variants) + 2) + "|"]
    rows = {s: {v: [r["auc"] for r in rs if r["sequence"] == s and r["variant"] == v]
                for v in variants} for s in seqs}
    rows["mean"] = {v: [float(np.mean([r["auc"] for r in rs
                                       if r["variant"] == v and r["seed"] == k]))
                        for k in sorted({r["seed"] for r in rs if r["variant"] == v})]
                    for v in variants}
    for s, per in rows.items():
        n = min(len(a) for a in per.values())
        cells = [f"{np.mean(a):.3f} ± {np.std(a):.3f}" if a else "-" for a in per.values()]
        lines.append(f"| {s} | " + " | ".join(cells) + f" | {n} |")
    return "\n".join(lines)


def read_sequences(folders, max_frames=None) -> list:
    """Sequences of sequence folders or dataset roots (layout auto-detected)."""
    from jtrack.data import load_dataset, read_sequence, sequence_kind

    out = []
    for folder in folders:
        kind = sequence_kind(folder)
        seqs = read_sequence(kind, folder) if kind else load_dataset("auto", folder)
        out += [s.truncated(max_frames) if max_frames else s for s in seqs]
    return out
