"""Success/precision plots and a table comparing result folders.

    python -m experiments.plot --results=jtrack:/tmp/res,MDNet:/path/MDNet_OTB \
        --dataset=otb --root=../shared/data/otb --out=/tmp/plots

Folders hold OTB-format result files (``<seq>.txt`` or
``<Tracker>_<seq>.txt``, any separators, dataset GT convention), so other
trackers' published results compare directly with jtrack's. Only
sequences every folder has results for are compared.
"""

from __future__ import annotations

import os

from absl import app, flags

from jtrack.data import KINDS, load_dataset
from jtrack.eval import scoring
from jtrack.eval.plots import plot_ope
from jtrack.eval.runner import write_json
from jtrack.data.results import atomic_write_text

FLAGS = flags.FLAGS
flags.DEFINE_list("results", None, "name:DIR pairs.")
flags.DEFINE_enum("dataset", "otb", list(KINDS) + ["auto"], "Benchmark layout of --root.")
flags.DEFINE_string("root", None, "Dataset root folder.")
flags.DEFINE_string("out", None, "Output folder for PNGs and tables.")
flags.DEFINE_list("sequences", None, "Only these sequences.")
flags.mark_flags_as_required(["results", "root", "out"])


def parse_results(items: list[str]) -> dict[str, str]:
    out = {}
    for item in items:
        name, sep, folder = item.partition(":")
        if not sep or not name or not folder:
            raise ValueError(f"--results expects name:DIR, got {item!r}")
        if not os.path.isdir(folder):
            raise FileNotFoundError(f"result folder not found: {folder}")
        out[name] = folder
    return out


def compare(folders: dict[str, str], sequences, out_dir: str, title: str = "OPE") -> dict:
    """Score every folder on the sequences they all cover; write
    ``success.png``, ``precision.png``, ``comparison.md`` and ``.json``."""
    have = {n: {s.name for s in sequences if scoring.find_result_file(d, s.name)}
            for n, d in folders.items()}
    common = [s for s in sequences if all(s.name in h for h in have.values())]
    if not common:
        raise ValueError("no sequence has results in every folder: "
                         + ", ".join(f"{n}: {len(h)}" for n, h in have.items()))
    summaries = {n: scoring.score_folder(d, common, "ope") for n, d in folders.items()}
    plot_ope({n: s["curves"] for n, s in summaries.items()}, out_dir, title)
    cols = ("auc", "precision_20", "norm_precision", "success_50")
    lines = ["| tracker | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols)]
    for n, s in sorted(summaries.items(), key=lambda kv: -kv[1]["mean"]["auc"]):
        lines.append(f"| {n} | " + " | ".join(f"{s['mean'][c]:.3f}" for c in cols) + " |")
    table = "\n".join(lines) + f"\n\n{len(common)} sequences: " + \
        ", ".join(s.name for s in common) + "\n"
    atomic_write_text(os.path.join(out_dir, "comparison.md"), table)
    result = {"sequences": [s.name for s in common],
              "trackers": {n: {"mean": s["mean"], "per_sequence": s["sequences"],
                               "curves": s["curves"]} for n, s in summaries.items()},
              "table_md": table}
    write_json(os.path.join(out_dir, "comparison.json"), result)
    return result


def main(argv):
    del argv
    folders = parse_results(FLAGS.results)
    sequences = load_dataset(FLAGS.dataset, FLAGS.root, FLAGS.sequences)
    result = compare(folders, sequences, FLAGS.out, title=FLAGS.dataset.upper())
    print(result["table_md"])
    print(f"plots: {os.path.join(os.path.abspath(FLAGS.out), 'success.png')}, precision.png")


if __name__ == "__main__":
    app.run(main)
