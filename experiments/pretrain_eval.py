"""Does a pretrained head help the online tracker? Heads and online settings
side by side on the same sequences and seeds, OTB one-pass evaluation.

    python -m experiments.pretrain_eval --head=/tmp/pretrain/head.npz \
        --sequences=../shared/data/otb/Diving,../shared/data/vot/ball1 \
        --seeds=0,1,2 --out=/tmp/pretrain_eval.json \
        [--variants=random,pretrained] [--variant_specs=specs.json]

A variant is a head plus TrackerConfig overrides. Built in: ``random``
(``jtrack.init_params(config, key, head="random")``: ImageNet backbone,
random fc4/fc5/fc6) and ``pretrained`` (the ``--head`` file through
``jtrack.pretrain.load_params``: its fc4/fc5 and mean fc6). ``--variant_specs`` names more,
as a JSON object ``{"name": {"head": "random" | "pretrained" | "shipped",
"config": {field: value}}}`` (``shipped``: the weights in the package).
The tracker's own key is ``fold_in(key(seed), 1)`` for every variant.
Scores with ``jtrack.eval.otb.ope_metrics``. Results are saved after every
run (atomically) and finished runs are skipped on rerun. Prints a markdown
table: per sequence, mean ± std AUC over seeds.
"""

from __future__ import annotations

from absl import app, flags, logging

from jtrack.cache import define_flags as define_cache_flags, enable_from_flags
from jtrack.eval.compare import evaluate, load_specs, read_sequences, table

FLAGS = flags.FLAGS
flags.DEFINE_string("head", None, "Pretrained head (.npz from experiments.pretrain); needed "
                    "by 'pretrained' variants.")
flags.DEFINE_list("sequences", None, "REQUIRED. Sequence folders (OTB/VOT/GOT-10k/LaSOT).")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds.")
flags.DEFINE_list("variants", ["random", "pretrained"], "Variants to compare.")
flags.DEFINE_string("variant_specs", None, "JSON file naming more variants (see above).")
flags.DEFINE_multi_string("config_override", [], "TrackerConfig field=value for every "
                          "variant (JSON value), e.g. the pretrained network's geometry.")
flags.DEFINE_integer("max_frames", None, "Truncate sequences (quick runs).")
flags.DEFINE_string("out", None, "REQUIRED. Results JSON (resumed if it exists).")
define_cache_flags(FLAGS)


def main(argv):
    del argv
    logging.set_verbosity(logging.WARNING)
    enable_from_flags(FLAGS)
    if not FLAGS.sequences or not FLAGS.out:
        raise app.UsageError("--sequences and --out are required")
    from jtrack.config import load_config

    specs = load_specs(FLAGS.variant_specs, FLAGS.variants)
    results = evaluate(read_sequences(FLAGS.sequences, FLAGS.max_frames), specs,
                       [int(s) for s in FLAGS.seeds], FLAGS.head, FLAGS.out,
                       load_config(None, FLAGS.config_override))
    print(table(results, list(specs)))


if __name__ == "__main__":
    app.run(main)
