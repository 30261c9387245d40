"""Leave-domains-out validation of a pretraining (or meta-training) recipe and
its online settings.

    python -m experiments.pretrain_cv --roots=../shared/data/train --synthetic=0 \
        --steps=400 --lr=0.005 --out_dir=/tmp/cv/frozen \
        --variants=random,pretrained [--variant_specs=experiments/configs/online_pretrained.json] \
        [--seeds=0,1,2]

For each fold (``--folds``: domain names joined by ``+``, folds separated by
``;``; the default splits the 12 domains of ``../shared/data/train`` into 3
folds of 4, both Jogging targets in one fold since they share a video), it
pretrains on every other domain with the recipe given by
``experiments.pretrain``'s flags (``<out_dir>/fold_<k>/``: checkpoints,
``log.jsonl``, ``log.png``, ``head.npz``), then tracks each held-out domain
full length with every variant and seed (:mod:`jtrack.eval.compare`). With
``--meta`` the folds are meta-trained instead, with ``experiments.meta_train``'s
flags (``<out_dir>/fold_<k>/meta_head.npz``; its variants load it as
``"head": "pretrained"`` with ``iters_init`` = ``--inner_steps``). All
domains are prepared once and shared by the folds. Rerunning resumes: finished
pretraining and finished tracking runs are kept. Results go to
``<out_dir>/results.json``; a markdown table per fold and over all folds is
printed and written to ``<out_dir>/table.md``.
"""

from __future__ import annotations

import os

from absl import app, flags, logging

from experiments import meta_train, pretrain
from jtrack.eval.compare import evaluate, load_specs, read_sequences, table

FLAGS = flags.FLAGS
DEFAULT_FOLDS = ("Jogging-1+Jogging-2+MountainBike6+wakeboard7;"
                 "S1301+Couple+Surfing06+wakeboard10;"
                 "boat1+wakeboard3+MotorRolling+building5")
flags.DEFINE_string("folds", DEFAULT_FOLDS, "Held-out domains per fold: names joined by "
                    "'+', folds separated by ';'.")
flags.DEFINE_list("only_folds", None, "Run only these fold indices (default: all).")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Tracking seeds.")
flags.DEFINE_list("variants", ["random", "pretrained"], "Variants to compare.")
flags.DEFINE_string("variant_specs", None, "JSON file naming more variants "
                    "(jtrack.eval.compare).")
flags.DEFINE_string("out_dir", None, "REQUIRED. Output folder (resumed if it exists).")
flags.DEFINE_integer("eval_frames", None, "Truncate the tracked sequences (quick runs).")
flags.DEFINE_bool("meta", False, "Meta-train the folds (experiments.meta_train's flags).")


def parse_folds(text: str) -> list[list[str]]:
    folds = [[n.strip() for n in f.split("+") if n.strip()] for f in text.split(";")]
    folds = [f for f in folds if f]
    if not folds:
        raise app.UsageError("--folds is empty")
    return folds


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    from jtrack.cache import enable_from_flags
    enable_from_flags(FLAGS)  # the cache flags come with experiments.pretrain's

    from jtrack.data import atomic_write_text
    from jtrack.pretrain import apply_exclude

    if not FLAGS.out_dir:
        raise app.UsageError("--out_dir is required")
    folds = parse_folds(FLAGS.folds)
    specs = load_specs(FLAGS.variant_specs, FLAGS.variants)
    if FLAGS.meta and FLAGS.start == "shipped":
        raise app.UsageError("--start=shipped: the shipped head was pretrained on every "
                             "domain, the held-out ones included")
    recipe = meta_train if FLAGS.meta else pretrain
    config = recipe.make_config()
    base = pretrain.make_config().tracker  # the network; variants set the rest
    sources = pretrain.sources_from_flags(FLAGS.exclude or [])
    names = [n for n, _ in sources]
    for k, fold in enumerate(folds):
        missing = set(fold) - set(names)
        if missing:
            raise app.UsageError(f"fold {k}: {sorted(missing)} not among the domains {names}")
    domains = recipe.prepare(config, sources, FLAGS.progress)
    seqs = {s.name: s for s in read_sequences(FLAGS.roots, FLAGS.eval_frames)}
    results_path = os.path.join(FLAGS.out_dir, "results.json")
    results = {}
    for k, fold in enumerate(folds):
        if FLAGS.only_folds and str(k) not in FLAGS.only_folds:
            continue
        fold_dir = os.path.join(FLAGS.out_dir, f"fold_{k}")
        head = os.path.join(fold_dir, "meta_head.npz" if FLAGS.meta else "head.npz")
        keep, _ = apply_exclude([d.name for d in domains], fold)
        if not os.path.exists(head):
            print(f"fold {k}: {'meta-training' if FLAGS.meta else 'pretraining'} on {len(keep)} domains, holding out {fold}")
            recipe.train(config, [domains[i] for i in keep], os.path.join(fold_dir, "ckpt"),
                         head, fold, FLAGS.progress)
        results = evaluate([seqs[n] for n in fold], specs, [int(s) for s in FLAGS.seeds],
                           head, results_path, base, tag=f"fold_{k}")
    lines = []
    for k in range(len(folds)):
        part = {n: r for n, r in results.items() if r["fold"] == f"fold_{k}"}
        if part:
            lines += [f"### fold {k}: held out {', '.join(folds[k])}", "",
                      table(part, list(specs)), ""]
    lines += ["### all folds", "", table(results, list(specs)), ""]
    text = "\n".join(lines)
    atomic_write_text(os.path.join(FLAGS.out_dir, "table.md"), text)
    print(text)


if __name__ == "__main__":
    app.run(main)
