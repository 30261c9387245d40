"""The GOT-10k toolkit's own OTB experiment with jtrack as its tracker.

got10k's ``ExperimentOTB`` runs ``jtrack.adapters.got10k.JTrackGot10k`` over
OTB-layout sequences on disk (no download: the sequences are registered as
a got10k "version" of their own), writes its result files and its report;
then jtrack scores the very boxes got10k recorded
(:func:`jtrack.eval.scoring.score_folder`), and the two success AUCs are
printed side by side per sequence.

  python -m experiments.got10k_otb --root=../shared/data/otb --out=/tmp/got10k

Needs the ``got10k`` extra (``pip install -e ".[got10k]"``).
"""

from __future__ import annotations

import json
import os

from absl import app, flags

from jtrack.cache import define_flags as define_cache_flags, enable_from_flags

FLAGS = flags.FLAGS
flags.DEFINE_string("root", None, "Folder of OTB-layout sequences (<name>/img, "
                    "<name>/groundtruth_rect.txt).")
flags.DEFINE_string("out", None, "Output folder: got10k's results/ and reports/, "
                    "and got10k_vs_jtrack.json.")
flags.DEFINE_list("sequences", None, "Only these sequences (default: every one under --root).")
flags.DEFINE_integer("seed", 0, "jtrack's seed (JTrackGot10k).")
flags.DEFINE_bool("one_based", True, "OTB boxes are 1-based: convert to jtrack's 0-based "
                  "pixels and back (as jtrack's own runner reads them).")
flags.mark_flags_as_required(["root", "out"])
define_cache_flags(FLAGS)

VERSION = "jtrack"  # the got10k OTB "version" naming the sequences under --root


def _sequence_names(root: str, only: list[str] | None) -> list[str]:
    names = sorted(n for n in os.listdir(root)
                   if os.path.isfile(os.path.join(root, n, "groundtruth_rect.txt")))
    if only:
        missing = sorted(set(only) - set(names))
        if missing:
            raise app.UsageError(f"--sequences: not under {root}: {', '.join(missing)}")
        names = [n for n in names if n in only]
    if not names:
        raise app.UsageError(f"no OTB sequence (<name>/groundtruth_rect.txt) under {root}")
    return names


def main(argv):
    del argv
    try:
        from got10k.datasets.otb import OTB
        from got10k.experiments import ExperimentOTB

        from jtrack.adapters.got10k import JTrackGot10k
    except ImportError as e:
        raise app.UsageError(f"{e} (pip install -e '.[got10k]')") from e
    from jtrack.data import atomic_write_text, read_otb
    from jtrack.eval.scoring import score_folder

    enable_from_flags(FLAGS)
    root = os.path.abspath(FLAGS.root)
    names = _sequence_names(root, FLAGS.sequences)
    # got10k knows OTB2013/2015 by name; a version of our own lists ours.
    OTB._OTB__version_dict[VERSION] = names
    exp = ExperimentOTB(root, version=VERSION, result_dir=os.path.join(FLAGS.out, "results"),
                        report_dir=os.path.join(FLAGS.out, "reports"))
    tracker = JTrackGot10k(seed=FLAGS.seed, one_based=FLAGS.one_based)
    exp.run(tracker)
    report = exp.report([tracker.name])[tracker.name]

    sequences = [s for n in names for s in read_otb(os.path.join(root, n))]
    ours = score_folder(os.path.join(exp.result_dir, tracker.name), sequences)
    rows = {n: {"got10k_success_score": float(report["seq_wise"][n]["success_score"]),
                "jtrack_auc": ours["sequences"][n]["auc"]} for n in names}
    overall = {"got10k_success_score": float(report["overall"]["success_score"]),
               "jtrack_auc": ours["mean"]["auc"]}
    print("| sequence | got10k success score | jtrack AUC (same boxes) | difference |")
    print("|---|---|---|---|")
    for n, r in [*rows.items(), ("**mean**", overall)]:
        d = r["jtrack_auc"] - r["got10k_success_score"]
        print(f"| {n} | {r['got10k_success_score']:.4f} | {r['jtrack_auc']:.4f} | {d:+.4f} |")
    path = os.path.join(FLAGS.out, "got10k_vs_jtrack.json")
    atomic_write_text(path, json.dumps({"sequences": rows, "overall": overall,
                                        "seed": FLAGS.seed, "root": root}, indent=1))
    print("wrote", path)


if __name__ == "__main__":
    app.run(main)
