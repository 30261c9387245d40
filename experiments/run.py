"""Run a tracker over a benchmark, resumably, and score it.

    python -m experiments.run --dataset=otb --root=../shared/data/otb \
        --results_dir=/tmp/res [--tracker_config=cfg.json] \
        [--config_override=iters_update=10 ...] [--seeds=0,1,2] \
        [--sequences=Diving,Crossing] [--max_frames=50]

Rerunning the same command skips finished sequences. See
:mod:`jtrack.eval.runner` for the results layout.
"""

from __future__ import annotations

import os
import sys

from absl import app, flags

from jtrack.cache import define_flags as define_cache_flags, enable_from_flags
from jtrack.config import load_config
from jtrack.data import KINDS
from jtrack.distributed import define_flags as define_distributed_flags, initialize_from_flags
from jtrack.eval.runner import RunSpec, SequencesFailed, run_experiment, write_json

FLAGS = flags.FLAGS
flags.DEFINE_enum("dataset", "otb", list(KINDS) + ["auto"], "Benchmark layout of --root.")
flags.DEFINE_string("root", None, "Dataset root folder.")
flags.DEFINE_string("results_dir", None, "Output folder (resumed if it exists).")
flags.DEFINE_string("tracker", "jtrack", "'jtrack' or a baseline: 'static'.")
flags.DEFINE_string("tracker_config", None, "JSON file of TrackerConfig fields.")
flags.DEFINE_multi_string("config_override", [], "TrackerConfig field=value (JSON value).")
flags.DEFINE_string("head", "random", "jtrack's initial head: random, the shipped "
                    "pretrained one (pair it with --config_override='layer_lr=[[\"fc4\",0.1],"
                    "[\"fc5\",0.1],[\"fc6\",10]]'), or a head file (.npz) from "
                    "experiments.pretrain / experiments.meta_train (a meta head needs its "
                    "iters_init); recorded in experiment.json.")
flags.register_validator("head", lambda v: v in ("random", "pretrained") or v.endswith(".npz"),
                         "--head must be random, pretrained or a .npz head file")
flags.DEFINE_list("seeds", ["0"], "Seeds; several -> seed_<k>/ subfolders, mean ± std.")
flags.DEFINE_list("sequences", None, "Only these sequences.")
flags.DEFINE_integer("max_frames", None, "Truncate sequences (quick runs).")
flags.DEFINE_enum("protocol", None, ["ope", "supervised"],
                  "Default: supervised for VOT, ope otherwise.")
flags.DEFINE_integer("max_workers", None, "Cap on parallel workers (default: one per device).")
flags.DEFINE_list("eao_range", None, "lo,hi sequence lengths for EAO.")
flags.DEFINE_bool("progress", True, "Show progress bars.")
flags.mark_flags_as_required(["root", "results_dir"])
define_cache_flags(FLAGS)
define_distributed_flags(FLAGS)  # several processes (hosts) sharing one results folder

_OUR_FLAGS = ("dataset", "root", "results_dir", "tracker", "tracker_config", "head",
              "config_override", "seeds", "sequences", "max_frames", "protocol",
              "max_workers", "eao_range", "progress")


def make_tracker(name: str, config_path, overrides, head="random"):
    from jtrack.eval.baselines import BASELINES

    if name in BASELINES:
        return BASELINES[name]()
    if name != "jtrack":
        raise ValueError(f"unknown tracker {name!r}; expected 'jtrack' or {sorted(BASELINES)}")
    from jtrack.eval.trackers import jtrack_tracker

    return jtrack_tracker(load_config(config_path, overrides), head=head)


def main(argv):
    del argv
    try:
        index, count = initialize_from_flags(FLAGS)
    except ValueError as e:
        raise app.UsageError(str(e)) from e
    enable_from_flags(FLAGS)
    tracker = make_tracker(FLAGS.tracker, FLAGS.tracker_config, FLAGS.config_override,
                           FLAGS.head)
    spec = RunSpec(
        dataset=FLAGS.dataset, root=FLAGS.root, results_dir=FLAGS.results_dir,
        seeds=tuple(int(s) for s in FLAGS.seeds),
        sequences=tuple(FLAGS.sequences) if FLAGS.sequences else None,
        max_frames=FLAGS.max_frames, protocol=FLAGS.protocol,
        max_workers=FLAGS.max_workers, progress=FLAGS.progress,
        eao_range=tuple(int(v) for v in FLAGS.eao_range) if FLAGS.eao_range else None,
        process_index=index, process_count=count)
    os.makedirs(spec.results_dir, exist_ok=True)
    if index == 0:
        write_json(os.path.join(spec.results_dir, "flags.json"),
                   {k: FLAGS[k].value for k in _OUR_FLAGS})
    try:
        summary, failure = run_experiment(spec, tracker), None
    except SequencesFailed as e:  # the others are scored: show them, then fail
        summary, failure = e.summary, e
    print(summary["table_md"])
    if summary.get("skipped_frames"):
        print(f"skipped {summary['skipped_frames']} unreadable frame(s) (not tracked, "
              "counted as misses; see <sequence>_skipped.txt)")
    print(f"results: {os.path.abspath(spec.results_dir)} "
          f"({summary.get('skipped_done', 0)} sequence run(s) already done)")
    if failure is not None:
        print(f"error: {failure}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    app.run(main)
