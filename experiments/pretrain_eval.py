"""Does a pretrained fc4/fc5 help the online tracker? Random vs pretrained
head, same sequences, same seeds, OTB one-pass evaluation.

    python -m experiments.pretrain_eval --head=/tmp/pretrain/head.npz \
        --sequences=../shared/data/otb/Diving,../shared/data/vot/ball1 \
        --seeds=0,1,2 --out=/tmp/pretrain_eval.json

For every (sequence, seed) it tracks twice with :func:`jtrack.tracking.track_sequence`:
``random`` = ``jtrack.init_params(config, key(seed))`` (ImageNet backbone +
random fc4/fc5/fc6) and ``pretrained`` = ``jtrack.pretrain.load_params(head,
config, key(seed))`` (same backbone, fc4/fc5 from the file, random fc6);
the tracker's own key is ``fold_in(key(seed), 1)`` in both. Scores with
``jtrack.eval.otb.ope_metrics`` (success AUC, precision@20). Results are
saved after every run (atomically) and finished runs are skipped on rerun.
Prints a markdown table: per sequence, mean ± std AUC over seeds.
"""

from __future__ import annotations

import json
import os

from absl import app, flags, logging

FLAGS = flags.FLAGS
flags.DEFINE_string("head", None, "REQUIRED. Pretrained head (.npz from experiments.pretrain).")
flags.DEFINE_list("sequences", None, "REQUIRED. Sequence folders (OTB/VOT/GOT-10k/LaSOT).")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds.")
flags.DEFINE_list("variants", ["random", "pretrained"], "Heads to compare.")
flags.DEFINE_integer("max_frames", None, "Truncate sequences (quick runs).")
flags.DEFINE_integer("iters_init", None, "TrackerConfig.iters_init (first-frame SGD steps; "
                     "default: the config's). Fewer steps lean more on the initial head.")
flags.DEFINE_string("out", None, "REQUIRED. Results JSON (resumed if it exists).")
flags.mark_flags_as_required(["head", "sequences", "out"])


def table(results: dict, variants) -> str:
    """Markdown table: sequence x variant, mean ± std AUC (n seeds)."""
    import numpy as np
    seqs = sorted({r["sequence"] for r in results.values()})
    lines = ["| sequence | " + " | ".join(f"{v} AUC" for v in variants) + " | seeds |",
             "|---" * (len(variants) + 2) + "|"]
    rows = {s: {v: [r["auc"] for r in results.values()
                    if r["sequence"] == s and r["variant"] == v] for v in variants}
            for s in seqs}
    rows["mean"] = {v: [float(np.mean([r["auc"] for r in results.values()
                                       if r["variant"] == v and r["seed"] == k]))
                        for k in sorted({r["seed"] for r in results.values()})]
                    for v in variants}
    for s, per in rows.items():
        n = min(len(a) for a in per.values())
        cells = [f"{np.mean(a):.3f} ± {np.std(a):.3f}" if a else "-" for a in per.values()]
        lines.append(f"| {s} | " + " | ".join(cells) + f" | {n} |")
    return "\n".join(lines)


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    import jax
    import numpy as np

    import jtrack
    from jtrack.data import atomic_write_text, read_sequence, sequence_kind
    from jtrack.eval.otb import ope_metrics
    from jtrack.pretrain import load_params
    from jtrack.tracking import track_sequence

    config = jtrack.TrackerConfig()
    if FLAGS.iters_init is not None:
        config = config.replace(iters_init=FLAGS.iters_init)
    print(f"tracker config: backbone {config.backbone}, iters_init {config.iters_init}")
    results = {}
    if os.path.exists(FLAGS.out):
        with open(FLAGS.out, encoding="utf-8") as f:
            results = json.load(f)
    for folder in FLAGS.sequences:
        kind = sequence_kind(folder)
        if kind is None:
            raise app.UsageError(f"{folder}: not a sequence folder")
        for seq in read_sequence(kind, folder):
            if FLAGS.max_frames:
                seq = seq.truncated(FLAGS.max_frames)
            for seed in map(int, FLAGS.seeds):
                for variant in FLAGS.variants:
                    name = f"{seq.name}/{seed}/{variant}"
                    if name in results:
                        continue
                    key = jax.random.key(seed)
                    params = (jtrack.init_params(config, key) if variant == "random"
                              else load_params(FLAGS.head, config, key))
                    boxes, _, times = track_sequence(
                        config, params, seq.iter_frames(), seq.init_box,
                        jax.random.fold_in(key, 1))
                    m = ope_metrics(boxes, seq.gt)
                    results[name] = {"sequence": seq.name, "seed": seed, "variant": variant,
                                     "auc": float(m["auc"]),
                                     "precision20": float(m["precision_20"]),
                                     "mean_iou": float(m["mean_iou"]),
                                     "frames": len(seq),
                                     "mean_frame_s": float(np.mean(times[1:]))}
                    print(f"{name}: AUC {results[name]['auc']:.3f}  "
                          f"{results[name]['mean_frame_s'] * 1000:.0f} ms/frame", flush=True)
                    atomic_write_text(FLAGS.out, json.dumps(results, indent=1))
    print(table(results, FLAGS.variants))


if __name__ == "__main__":
    app.run(main)
