"""Ablations and baselines: every design choice of the tracker, measured on
real sequences next to OpenCV's classic trackers, into one table and plot.

    python -m experiments.ablate \
        [--datasets=otb:../shared/data/otb,vot:../shared/data/vot] \
        [--variants=full,no_bbreg,opencv_kcf] [--seeds=0,1,2] [--max_frames=100] \
        [--results_dir=docs/ablation/runs] [--doc=docs/results.md]

Each variant (:data:`jtrack.eval.ablation.VARIANTS`) runs through the
evaluation runner into ``RESULTS_DIR/<variant>/<dataset>/seed_<k>/``
(resumable: rerun the same command to finish an interrupted run; parallel
over local devices). Every dataset is run with the one-pass (OPE) protocol,
VOT folders too. The classic baselines are deterministic and run with the
first seed only. The command then pools all sequences, writes the table,
``success.png``/``precision.png`` with every variant, and ``--doc``.
"""

from __future__ import annotations

import json
import os
import platform
import re
import sys
import time

from absl import app, flags, logging

from jtrack.cache import define_flags as define_cache_flags, enable_from_flags
from jtrack.data import load_dataset
from jtrack.eval import ablation
from jtrack.eval.runner import RunSpec, run_experiment, seed_dir, is_done, write_json

FLAGS = flags.FLAGS
flags.DEFINE_list("datasets", ["otb:../shared/data/otb", "vot:../shared/data/vot"],
                  "kind:root pairs; each is scored with the OPE protocol.")
flags.DEFINE_list("variants", None, "Only these variants (default all), in this order.")
flags.DEFINE_list("seeds", ["0", "1", "2"], "Seeds of the stochastic (jtrack) variants.")
flags.DEFINE_list("sequences", None, "Only these sequences (any dataset).")
flags.DEFINE_integer("max_frames", None, "Truncate sequences (quick runs).")
flags.DEFINE_multi_string("config_override", [],
                          "field=value applied to the base TrackerConfig of every variant.")
flags.DEFINE_string("results_dir", "docs/ablation/runs", "Runner result folders.")
flags.DEFINE_string("plots_dir", "docs/ablation", "Folder for success.png / precision.png.")
flags.DEFINE_string("doc", "docs/results.md", "Markdown report to (re)write; '' = none.")
define_cache_flags(FLAGS)
flags.DEFINE_integer("max_workers", None, "Cap on parallel workers (default: one per device).")
flags.DEFINE_bool("progress", False, "Show progress bars.")
flags.DEFINE_integer("processes", 1, "Run the variants in this many processes (each "
                     "compiles its own configs: compilation is mostly single-threaded).")

# Flags forwarded to the worker processes of --processes.
_FORWARD = ("datasets", "seeds", "sequences", "max_frames", "config_override", "results_dir",
            "compilation_cache", "compilation_cache_dir", "max_workers")

READING_START, READING_END = "<!-- reading:start -->", "<!-- reading:end -->"


def parse_datasets(items) -> list[tuple[str, str, str]]:
    """``kind:root`` -> (label, kind, root); the label is the kind (plus a
    counter when a kind repeats)."""
    out, seen = [], {}
    for item in items:
        kind, sep, root = item.partition(":")
        if not sep or not kind or not root:
            raise ValueError(f"--datasets expects kind:root, got {item!r}")
        seen[kind] = seen.get(kind, 0) + 1
        out.append((kind if seen[kind] == 1 else f"{kind}{seen[kind]}", kind, root))
    return out


def make_tracker(variant: ablation.Variant, base):
    if variant.baseline is not None:
        from jtrack.eval.baselines import BASELINES

        return BASELINES[variant.baseline]()
    from jtrack.eval.trackers import jtrack_tracker

    return jtrack_tracker(variant.config(base), name=variant.name, head=variant.head)


def warm_up(tracker, sequences, seed: int) -> float:
    """Compile ``init``/``step`` (once per config, plus the cheap crop per
    frame size) before timing, so frames/s measures tracking, not XLA.
    Returns the seconds spent."""
    import jax
    import numpy as np

    t0 = time.perf_counter()
    shapes = set()
    # Under the runner's default-device context: jit caches are keyed on it.
    with jax.default_device(jax.local_devices()[0]):
        for seq in sequences:
            frames = seq.iter_frames()
            f0 = next(frames)
            if f0.shape in shapes:
                continue
            shapes.add(f0.shape)
            state = tracker.init(f0, np.asarray(seq.init_box, np.float32), seed)
            for _ in range(2):
                state, box, _ = tracker.step(state, next(frames))
            np.asarray(box)
    return time.perf_counter() - t0


def run_variant(variant, base, datasets, seeds, names, max_frames) -> dict:
    """Run (resumably) and score one variant over every dataset."""
    t0 = time.perf_counter()
    tracker = make_tracker(variant, base)
    seeds = tuple(seeds) if variant.stochastic else tuple(seeds[:1])
    folders = {s: [] for s in seeds}
    info = {"warmup_s": 0.0, "errors": []}
    ran = False
    for label, kind, root, sequences in datasets:
        spec = RunSpec(dataset=kind, root=root,
                       results_dir=ablation.variant_dir(FLAGS.results_dir, variant, label),
                       seeds=seeds, sequences=tuple(s.name for s in sequences),
                       max_frames=max_frames, protocol="ope", max_workers=FLAGS.max_workers,
                       progress=FLAGS.progress, plots=False)
        pending = any(not is_done(seed_dir(spec, s), q) for s in seeds for q in sequences)
        ran = ran or pending
        if pending and variant.stochastic:
            info["warmup_s"] += warm_up(tracker, sequences, seeds[0])
        try:
            run_experiment(spec, tracker)
        except RuntimeError as e:  # finished sequences are scored; report the rest
            logging.error("%s on %s: %s", variant.name, label, e)
            info["errors"].append(str(e))
        for s in seeds:
            folders[s].append((seed_dir(spec, s), sequences))
    timing = _timing_path(variant)
    info["wall_s"] = time.perf_counter() - t0
    if ran:  # keep the time of the run that tracked (a resumed run only scores)
        write_json(timing, {k: info[k] for k in ("wall_s", "warmup_s")})
    elif os.path.isfile(timing):
        with open(timing, encoding="utf-8") as f:
            info.update(json.load(f))
    summary = ablation.summarize({s: ablation.score_seed(f) for s, f in folders.items()})
    summary.update(info)
    return summary


def _timing_path(variant) -> str:
    """Where a variant's last tracking run records its wall time."""
    return os.path.join(FLAGS.results_dir, variant.name, "timing.json")


def _measured_wall_s(variants) -> dict[str, float]:
    """Wall time of each variant's last run that tracked (its timing.json)."""
    out = {}
    for v in variants:
        try:
            with open(_timing_path(v), encoding="utf-8") as f:
                out[v.name] = float(json.load(f)["wall_s"])
        except (OSError, ValueError, KeyError, TypeError):
            pass
    return out


def run_in_processes(variants, n: int, launch=None) -> list[str]:
    """Run each variant in its own worker process of this command, at most
    ``n`` at a time, slowest first (measured times of an earlier run, else
    :attr:`Variant.cost`): a free worker always takes the longest job left,
    so one slow variant does not finish last on a busy worker. Workers write
    the same result folders as a single process; failures are logged and left
    for the scoring pass to report. ``launch(argv) -> returncode`` runs one
    worker (a subprocess by default). Returns the variant names in start order.
    """
    import subprocess
    import threading
    from concurrent.futures import ThreadPoolExecutor

    args = []
    for name in _FORWARD:
        value = FLAGS[name].value
        if value is None:
            continue
        if isinstance(value, list) and name == "config_override":
            args += [f"--config_override={v}" for v in value]
        elif isinstance(value, list):
            args.append(f"--{name}={','.join(map(str, value))}")
        else:
            args.append(f"--{name}={value}")
    launch = subprocess.call if launch is None else launch
    ordered = ablation.slowest_first(variants, _measured_wall_s(variants))
    started, lock = [], threading.Lock()

    def work(v):
        with lock:
            started.append(v.name)
        argv = [sys.executable, "-m", "experiments.ablate", "--doc=", "--plots_dir=",
                "--processes=1", f"--variants={v.name}"] + args
        rc = launch(argv)
        if rc != 0:
            logging.error("worker process for %s exited with %s", v.name, rc)

    # The pool's queue is FIFO: variants start in the order given.
    with ThreadPoolExecutor(max_workers=max(1, n)) as pool:
        list(pool.map(work, ordered))
    return started


def _machine() -> str:
    import jax

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            m = re.search(r"model name\s*:\s*(.+)", f.read())
            cpu = m.group(1).strip() if m else cpu
    except OSError:
        pass
    devs = ", ".join(sorted({d.platform for d in jax.devices()}))
    load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    return (f"{os.cpu_count()} CPU cores ({cpu}), jax {jax.__version__} on {devs}, "
            f"Python {platform.python_version()}; load average (1/5/15 min) {load} "
            "when the run ended (the machine is shared: frames/s and wall time "
            "follow its load)")


def _opencv_version() -> str:
    try:
        import cv2
        return cv2.__version__
    except ImportError:
        return "not installed"


def _keep_reading(path: str) -> str:
    """The hand-written reading of an existing doc, kept across regenerations."""
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            text = f.read()
        if READING_START in text and READING_END in text:
            return text.split(READING_START, 1)[1].split(READING_END, 1)[0].strip("\n")
    return "(No reading written yet: compare each row's ΔAUC with the seed noise.)"


def render_doc(table: str, rows, datasets, n_frames, wall_s, resumed, command) -> str:
    rel = os.path.relpath(FLAGS.plots_dir, os.path.dirname(FLAGS.doc) or ".")
    seeds = ",".join(FLAGS.seeds)
    data = ", ".join(f"`{root}` ({kind}: " + ", ".join(
        f"{s.name} {len(s)}" for s in seqs) + ")" for _, kind, root, seqs in datasets)
    ref = next((s for v, s in rows if v.name == ablation.REFERENCE), None)
    noise = (f"The full tracker's AUC varies by ± {ref['std']['auc']:.3f} (std) over seeds "
             "alone." if ref else "")
    return f"""# Ablations and baselines

Every design choice of the tracker switched off or changed one at a time,
next to OpenCV's classic CSRT, KCF and MIL trackers, on the real sequences
in `../shared/data`. Generated by `experiments/ablate.py`; rerunning the
command below rewrites this page (except the reading) and the plots.

## Setup

- **Data:** {data} frames (one-pass evaluation from the ground-truth box on
  frame 1, VOT too; {n_frames} frames per seed and variant).
- **Seeds:** {seeds} for every jtrack variant (seed = head initialisation
  and all sampling); the OpenCV trackers are deterministic and run once.
- **Machine:** {_machine()}; no GPU. OpenCV {_opencv_version()}.
- **Metrics:** success AUC (mean of the success curve over IoU thresholds
  0-1) and precision at 20 px, both from the mean of the per-sequence
  curves (each sequence counts once), then mean ± std over seeds; fps =
  all frames / all seconds including the first-frame training, after a
  compile warm-up (compile time is not counted).
- **Verdict:** "better"/"worse" when |ΔAUC| to the full tracker exceeds 2x
  the larger of the two seed stds, else "within noise". {noise}

Command (wall time **{wall_s / 60:.1f} min** on this machine, {resumed}):

```bash
{command}
```

## Table

{table}
Per-sequence columns are mean AUC over seeds. Result files (boxes and
per-frame times, the runner's format) are under
`{FLAGS.results_dir}/<variant>/<dataset>/seed_<k>/`; re-score any of them with
`jtrack.eval.scoring.score_folder` or `python -m experiments.plot`.

![success plot]({rel}/success.png) ![precision plot]({rel}/precision.png)

## Reading

{READING_START}
{_keep_reading(FLAGS.doc)}
{READING_END}
"""


def main(argv):
    del argv
    t_start = time.perf_counter()
    cache_dir = enable_from_flags(FLAGS)
    from jtrack.config import load_config

    base = load_config(None, FLAGS.config_override)
    variants = ablation.select(FLAGS.variants)
    datasets = []
    for label, kind, root in parse_datasets(FLAGS.datasets):
        seqs = load_dataset(kind, root)
        if FLAGS.sequences:
            seqs = [s for s in seqs if s.name in FLAGS.sequences]
        if FLAGS.max_frames:
            seqs = [s.truncated(FLAGS.max_frames) for s in seqs]
        if seqs:
            datasets.append((label, kind, root, seqs))
    if not datasets:
        raise ValueError("no sequence selected")
    seeds = [int(s) for s in FLAGS.seeds]
    # Whether the wall time below is a cold, from-scratch run.
    fresh = not _nonempty(FLAGS.results_dir) and not _nonempty(cache_dir)
    if FLAGS.processes > 1:
        run_in_processes(variants, FLAGS.processes)
    rows = []  # with --processes everything is done by now: this only scores
    for v in variants:
        s = run_variant(v, base, datasets, seeds, FLAGS.sequences, FLAGS.max_frames)
        rows.append((v, s))
        logging.info("%-20s AUC %.3f ± %.3f  P@20 %.3f  fps %.1f  (%.0f s, warm-up %.0f s)",
                     v.name, s["mean"]["auc"], s["std"]["auc"], s["mean"]["precision_20"],
                     s["mean"]["fps"], s["wall_s"], s["warmup_s"])
    table = ablation.markdown_table(rows)
    print(table)
    os.makedirs(FLAGS.results_dir, exist_ok=True)
    write_json(os.path.join(FLAGS.results_dir, "ablation.json"),
               {v.name: {k: s[k] for k in ("seeds", "mean", "std", "per_seed", "sequence_auc",
                                           "missing", "wall_s", "warmup_s", "errors")}
                | {"description": v.description, "overrides": v.overrides,
                   "baseline": v.baseline} for v, s in rows})
    from jtrack.eval.plots import plot_ope

    if FLAGS.plots_dir:
        plot_ope({v.name: s["curves"] for v, s in rows if "curves" in s}, FLAGS.plots_dir,
                 title="OTB+VOT sequences")
    wall_s = time.perf_counter() - t_start
    if FLAGS.doc:
        from jtrack.data.results import atomic_write_text

        n_frames = sum(len(s) for *_, seqs in datasets for s in seqs)
        command = " ".join(["python -m experiments.ablate"] + sys.argv[1:])
        resumed = ("started from an empty results folder and a cold compilation cache"
                   if fresh else
                   "partly resumed: see the per-variant times in ablation.json")
        atomic_write_text(FLAGS.doc, render_doc(table, rows, datasets, n_frames, wall_s,
                                                resumed, command.strip()))
    print(f"wall time {wall_s:.0f} s; table in {FLAGS.doc or '-'}, plots in {FLAGS.plots_dir}")


def _nonempty(folder: str) -> bool:
    return bool(folder) and os.path.isdir(folder) and bool(os.listdir(folder))


if __name__ == "__main__":
    app.run(main)
