"""Experiment runner: track every sequence of a dataset, resumably, in
parallel across local devices, then score and tabulate.

Results layout (one seed)::

    RESULTS_DIR/<sequence>.txt        x,y,w,h per frame, dataset GT convention
    RESULTS_DIR/<sequence>_time.txt   seconds per frame
    RESULTS_DIR/<sequence>_skipped.txt  frames that could not be read (only if any):
                                        ``<0-based frame>\t<reason>`` per line
    RESULTS_DIR/summary.json          per-sequence and mean metrics
    RESULTS_DIR/table.md              the same as a markdown table
    RESULTS_DIR/experiment.json       dataset, protocol, tracker config
    RESULTS_DIR/success.png, precision.png   (OPE)

Several seeds: ``RESULTS_DIR/seed_<k>/`` holds the above per seed and the
top-level ``summary.json``/``table.md`` give mean ± std over seeds.

A frame that cannot be read or decoded is skipped, not fatal: the tracker is
not stepped on it, its row in ``<sequence>.txt`` is ``nan,nan,nan,nan`` (a
miss for the metrics), it is listed in ``<sequence>_skipped.txt`` and counted
in ``summary.json`` (``skipped_frames``). A sequence that cannot be read at
all (frame 0 unreadable, a missing video) fails alone: the others still run,
``summary.json`` lists it under ``failed`` and the run ends with an error.

Every file is written atomically and a sequence counts as done when both of
its files exist with one row per frame, so an interrupted run restarted with
the same arguments only tracks what is missing. Temp files of a write cut
short by SIGKILL are deleted when the next run starts.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence as Seq

import numpy as np

from jtrack.data import BadFrame, load_dataset
from jtrack.data.results import (atomic_write_text, read_rows_count, remove_stale_temps,
                                 write_boxes, write_times)
from jtrack.data.sequence import Sequence
from jtrack.eval import scoring, vot
from jtrack.eval.trackers import Tracker


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """What to run.

    Attributes:
      dataset: ``otb``, ``vot``, ``got10k``, ``lasot`` or ``auto``.
      root: dataset root folder.
      results_dir: output folder (see the module docstring).
      seeds: one seed per repetition; more than one -> ``seed_<k>/`` folders.
      sequences: only these sequences (default all).
      max_frames: truncate every sequence (quick runs).
      protocol: ``ope``, ``supervised`` or None (the dataset's own).
      max_workers: cap on parallel workers (default one per local device).
      progress: show tqdm bars.
      eao_range: ``(lo, hi)`` sequence lengths for EAO (default
        :func:`jtrack.eval.vot.default_eao_range`).
      plots: write success/precision PNGs (OPE).
      process_index, process_count: this process's share of a multi-process
        run (``jax.distributed``; one results folder on a shared filesystem):
        it tracks the (sequence, seed) runs whose position modulo
        ``process_count`` is ``process_index``; after a barrier, process 0
        scores everything and writes the summaries.
    """

    dataset: str
    root: str
    results_dir: str
    seeds: tuple[int, ...] = (0,)
    sequences: tuple[str, ...] | None = None
    max_frames: int | None = None
    protocol: str | None = None
    max_workers: int | None = None
    progress: bool = True
    eao_range: tuple[int, int] | None = None
    plots: bool = True
    process_index: int = 0
    process_count: int = 1

    def __post_init__(self):
        if not self.seeds:
            raise ValueError("at least one seed is needed")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValueError(f"duplicate seeds: {self.seeds}")
        if self.max_frames is not None and self.max_frames < 2:
            raise ValueError("max_frames must be >= 2")
        if not 0 <= self.process_index < self.process_count:
            raise ValueError(f"process_index {self.process_index} is not in "
                             f"[0, {self.process_count})")


def seed_dir(spec: RunSpec, seed: int) -> str:
    return spec.results_dir if len(spec.seeds) == 1 else \
        os.path.join(spec.results_dir, f"seed_{seed}")


def is_done(folder: str, seq: Sequence) -> bool:
    """Both result files exist with one row per frame."""
    boxes = os.path.join(folder, seq.name + ".txt")
    times = os.path.join(folder, seq.name + "_time.txt")
    if not (os.path.isfile(boxes) and os.path.isfile(times)):
        return False
    try:
        return read_rows_count(boxes) == len(seq) and read_rows_count(times) == len(seq)
    except (OSError, ValueError):
        return False


def track_ope(tracker: Tracker, seq: Sequence, seed: int,
              on_frame: Callable[[], None] | None = None):
    """One-pass evaluation of one sequence: init on frame 0 with the GT box,
    then one step per frame; a frame that cannot be read is skipped (the
    tracker is not stepped, its box is NaN).

    Returns:
      boxes ``(T, 4)`` 0-based xywh (row 0 = the init box), scores ``(T,)``
      (NaN on frame 0), times ``(T,)`` seconds (frame 0 = init time), and
      the list of skipped :class:`~jtrack.data.BadFrame` s.
    Raises:
      ValueError when frame 0 has no GT box or cannot be read (no start).
    """
    if not np.all(np.isfinite(seq.init_box)):
        raise ValueError(f"{seq.name}: no ground-truth box on frame 0")
    n = len(seq)
    boxes, scores, times = np.full((n, 4), np.nan), np.full(n, np.nan), np.zeros(n)
    bad: list[BadFrame] = []
    state = None
    for t, frame in enumerate(seq.iter_frames(skip_bad=True)):
        t0 = time.perf_counter()
        if isinstance(frame, BadFrame):
            if t == 0:
                raise ValueError(f"{seq.name}: cannot start, frame 0 is unreadable: "
                                 f"{frame.reason}")
            bad.append(frame)
        elif t == 0:
            state = tracker.init(frame, np.asarray(seq.init_box, np.float32), seed)
            boxes[0] = seq.init_box
        else:
            state, box, score = tracker.step(state, frame)
            boxes[t] = np.asarray(box, np.float64)  # blocks on async dispatch
            scores[t] = float(score)
        times[t] = time.perf_counter() - t0
        if on_frame is not None:
            on_frame()
    return boxes, scores, times, bad


def skipped_path(folder: str, name: str) -> str:
    return os.path.join(folder, name + "_skipped.txt")


def write_skipped(folder: str, name: str, bad: Seq[BadFrame]) -> None:
    """``<name>_skipped.txt``: one ``frame<TAB>reason`` line per skipped
    frame; no file (a stale one removed) when none was skipped."""
    path = skipped_path(folder, name)
    if bad:
        atomic_write_text(path, "".join(f"{b.index}\t{b.reason}\n" for b in bad))
    elif os.path.exists(path):
        os.unlink(path)


def count_skipped(folder: str, name: str) -> int:
    path = skipped_path(folder, name)
    return read_rows_count(path) if os.path.isfile(path) else 0


def run_job(tracker: Tracker, seq: Sequence, seed: int, folder: str, protocol: str,
            on_frame=None) -> None:
    """Track one (sequence, seed) and write its files (skips and times
    first, so the boxes file appearing marks completion)."""
    if protocol == "ope":
        boxes, _, times, bad = track_ope(tracker, seq, seed, on_frame)
    else:
        bad = []

        def frames():
            for f in seq.iter_frames(skip_bad=True):
                if isinstance(f, BadFrame):
                    bad.append(f)
                yield f
                if on_frame is not None:
                    on_frame()
        run = vot.run_supervised(tracker, frames(), seq.gt, seed=seed)
        boxes, times = run.boxes, run.times
    write_skipped(folder, seq.name, bad)
    write_times(os.path.join(folder, seq.name + "_time.txt"), times)
    write_boxes(os.path.join(folder, seq.name + ".txt"), boxes, seq.one_based)


def _devices(max_workers: int | None):
    import jax

    devs = jax.local_devices()
    return devs[:max_workers] if max_workers else devs


def _progress(total, desc, position, enabled):
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, position=position, leave=position == 0,
                disable=not enabled, dynamic_ncols=True)


def run_jobs(tracker: Tracker, jobs: Seq[tuple[Sequence, int, str]], protocol: str, *,
             max_workers: int | None = None, progress: bool = True
             ) -> list[tuple[str, int, BaseException]]:
    """Run ``(sequence, seed, folder)`` jobs, one worker thread per local
    device, each inside ``jax.default_device(device)``. A failing job (e.g.
    a sequence that cannot be read at all) does not stop the others; the
    errors are returned as ``(sequence name, seed, exception)``."""
    import jax

    devices = _devices(max_workers)[:max(1, len(jobs))]
    todo: queue.Queue = queue.Queue()
    for j in jobs:
        todo.put(j)
    errors: list = []
    lock = threading.Lock()
    outer = _progress(len(jobs), "sequences", 0, progress)

    def worker(idx, device):
        bar = _progress(0, f"dev{idx}", idx + 1, progress)
        with jax.default_device(device):
            while True:
                try:
                    seq, seed, folder = todo.get_nowait()
                except queue.Empty:
                    break
                bar.reset(total=len(seq))
                bar.set_description(f"dev{idx} {seq.name}")
                try:
                    run_job(tracker, seq, seed, folder, protocol, on_frame=bar.update)
                except Exception as e:  # keep going: other sequences still finish
                    with lock:
                        errors.append((seq.name, seed, e))
                with lock:
                    outer.update(1)
        bar.close()

    if len(devices) == 1:
        worker(0, devices[0])
    else:
        threads = [threading.Thread(target=worker, args=(i, d), daemon=True)
                   for i, d in enumerate(devices)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    outer.close()
    return errors


def _jsonable(x):
    if isinstance(x, dict):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, float)):
        return None if math.isnan(float(x)) else float(x)
    if isinstance(x, np.integer):
        return int(x)
    if isinstance(x, np.ndarray):
        return _jsonable(x.tolist())
    return x


def write_json(path: str, obj) -> None:
    atomic_write_text(path, json.dumps(_jsonable(obj), indent=2, sort_keys=False) + "\n")


def _same_config(old, new) -> bool:
    """Whether results recorded with config ``old`` stand for config ``new``.
    A TrackerConfig field added to jtrack after the results were written
    counts as equal when ``new`` has its default (new knobs default to the
    old behaviour), so adding a knob does not invalidate finished runs."""
    if isinstance(old, dict) and isinstance(new, dict) and "weights" in new \
            and "weights" not in old:
        old = {**old, "weights": {"head": "random"}}  # recorded before heads could differ
    if old == new:
        return True
    if not (isinstance(old, dict) and isinstance(new, dict)) or set(old) - set(new):
        return False
    import dataclasses

    from jtrack.config import TrackerConfig

    defaults = _jsonable(dataclasses.asdict(TrackerConfig()))
    return (all(old[k] == new[k] for k in old)
            and all(k in defaults and new[k] == defaults[k] for k in set(new) - set(old)))


def _check_experiment(spec: RunSpec, tracker: Tracker, kind: str, protocol: str) -> None:
    """Record what produced the results; refuse to mix results of another
    tracker config or protocol into the same folder."""
    record = {"dataset": kind, "root": os.path.abspath(spec.root), "protocol": protocol,
              "max_frames": spec.max_frames, "tracker": tracker.name,
              "tracker_config": _jsonable(tracker.config)}
    path = os.path.join(spec.results_dir, "experiment.json")
    if os.path.isfile(path):
        with open(path, encoding="utf-8") as f:
            old = json.load(f)
        keys = ("dataset", "protocol", "max_frames", "tracker")
        diff = [k for k in keys if old.get(k) != record[k]]
        if not _same_config(old.get("tracker_config"), record["tracker_config"]):
            diff.append("tracker_config")
        if diff:
            raise ValueError(f"{spec.results_dir} holds results of a different experiment "
                             f"(differs in {', '.join(diff)}); use another results_dir")
        record["seeds"] = sorted(set(old.get("seeds", [])) | set(spec.seeds))
    else:
        record["seeds"] = list(spec.seeds)
    write_json(path, record)


def summarize_seeds(summaries: dict[int, dict]) -> dict:
    """Mean ± std over seeds of each seed's dataset means."""
    keys = sorted({k for s in summaries.values() for k in s["mean"]})
    out = {"seeds": sorted(summaries), "mean": {}, "std": {},
           "per_seed": {k: s["mean"] for k, s in summaries.items()}}
    for k in keys:
        vals = np.asarray([s["mean"].get(k, np.nan) for s in summaries.values()], np.float64)
        vals = vals[np.isfinite(vals)]
        out["mean"][k] = float(vals.mean()) if vals.size else float("nan")
        out["std"][k] = float(vals.std()) if vals.size else float("nan")
    return out


def seeds_table(summary: dict) -> str:
    seen = set(summary["mean"])
    cols = [c for c in scoring.COLUMN_ORDER if c in seen] + sorted(seen - set(scoring.COLUMN_ORDER))
    lines = ["| seeds | " + " | ".join(cols) + " |", "|---|" + "---|" * len(cols),
             "| " + ",".join(map(str, summary["seeds"])) + " | " + " | ".join(
                 f"{summary['mean'][c]:.3f} ± {summary['std'][c]:.3f}" for c in cols) + " |"]
    return "\n".join(lines) + "\n"


def score_and_report(spec: RunSpec, sequences: Seq[Sequence], protocol: str,
                     plots: bool = True, failed: dict[int, dict[str, str]] | None = None
                     ) -> dict:
    """Score each seed folder, write ``summary.json`` + ``table.md`` (+
    plots), and the mean ± std summary across seeds. Each summary also
    counts the skipped (unreadable) frames and lists the sequences that
    failed (``failed``: seed -> {sequence: error})."""
    per_seed = {}
    for seed in spec.seeds:
        folder = seed_dir(spec, seed)
        s = scoring.score_folder(folder, sequences, protocol, eao_range=spec.eao_range)
        s["seed"] = seed
        skipped = {q.name: n for q in sequences if (n := count_skipped(folder, q.name))}
        s["skipped_frames"] = sum(skipped.values())
        s["skipped_by_sequence"] = skipped
        s["failed"] = (failed or {}).get(seed, {})
        write_json(os.path.join(folder, "summary.json"), s)
        atomic_write_text(os.path.join(folder, "table.md"), scoring.markdown_table(s))
        per_seed[seed] = s
    if len(spec.seeds) == 1:
        summary = per_seed[spec.seeds[0]]
        table = scoring.markdown_table(summary)
    else:
        summary = summarize_seeds(per_seed)
        summary["skipped_frames"] = sum(s["skipped_frames"] for s in per_seed.values())
        summary["failed"] = {str(k): s["failed"] for k, s in per_seed.items() if s["failed"]}
        table = seeds_table(summary)
        write_json(os.path.join(spec.results_dir, "summary.json"), summary)
        atomic_write_text(os.path.join(spec.results_dir, "table.md"), table)
    summary["table_md"] = table
    if plots and protocol == "ope" and all("curves" in s for s in per_seed.values()):
        from jtrack.eval.plots import plot_ope

        curves = {k: np.mean([s["curves"][k] for s in per_seed.values()], axis=0)
                  for k in ("success", "precision")}
        plot_ope({"jtrack": curves}, spec.results_dir)
    return summary


class SequencesFailed(RuntimeError):
    """Some sequences could not be tracked; ``summary`` scores the others."""

    def __init__(self, message: str, summary: dict):
        super().__init__(message)
        self.summary = summary


def _barrier(spec: RunSpec, name: str) -> None:
    """Wait for every process of a ``jax.distributed`` run (no-op alone)."""
    if spec.process_count > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(f"jtrack.eval.runner: {name}")


def run_experiment(spec: RunSpec, tracker: Tracker) -> dict:
    """Track, resume-aware, then score. Returns the summary (also on disk).

    Raises :class:`SequencesFailed` (a RuntimeError) after scoring what
    finished if any sequence failed.
    """
    from jtrack.data.datasets import detect_kind

    kind = detect_kind(spec.root) if spec.dataset == "auto" else spec.dataset
    protocol = spec.protocol or scoring.default_protocol(kind)
    sequences = load_dataset(kind, spec.root, spec.sequences)
    if spec.max_frames:
        sequences = [s.truncated(spec.max_frames) for s in sequences]
    os.makedirs(spec.results_dir, exist_ok=True)
    # Leftovers of a run killed mid-write (the real files are whole: atomic);
    # by process 0 alone, before any process writes (they would be its own).
    if spec.process_index == 0:
        for folder in {spec.results_dir} | {seed_dir(spec, s) for s in spec.seeds}:
            remove_stale_temps(folder)
    _barrier(spec, "stale temporary files removed")
    _check_experiment(spec, tracker, kind, protocol)  # every process: each may refuse
    # Shares by position over every run, done or not: the same on a rerun.
    everything = [(s, seed, seed_dir(spec, seed)) for seed in spec.seeds for s in sequences]
    mine = everything[spec.process_index::spec.process_count]
    jobs = [j for j in mine if not is_done(j[2], j[0])]
    errors = run_jobs(tracker, jobs, protocol, max_workers=spec.max_workers,
                      progress=spec.progress)
    _barrier(spec, "tracked")
    if spec.process_index:
        done = len(mine) - len(jobs)
        summary = {"table_md": f"process {spec.process_index} of {spec.process_count}: "
                               f"tracked {len(jobs) - len(errors)} sequence run(s) ({done} "
                               f"already done, {len(errors)} failed); process 0 writes the "
                               "summary", "skipped_done": done}
    else:
        failed: dict[int, dict[str, str]] = {}
        for name, seed, e in errors:
            failed.setdefault(seed, {})[name] = f"{type(e).__name__}: {e}"
        for s, seed, folder in everything:  # another process's run that did not finish
            if (s, seed, folder) not in mine and not is_done(folder, s):
                failed.setdefault(seed, {})[s.name] = "not finished by its process"
                errors.append((s.name, seed, RuntimeError("not finished by its process "
                                                          "(see that process's error)")))
        summary = score_and_report(spec, sequences, protocol, plots=spec.plots, failed=failed)
        summary["skipped_done"] = len(mine) - len(jobs)
    if errors:
        msg = "; ".join(f"{name} (seed {seed}): {type(e).__name__}: {e}"
                        for name, seed, e in errors)
        raise SequencesFailed(f"{len(errors)} sequence run(s) failed (the others are "
                              f"scored and saved; rerun to retry): {msg}",
                              summary) from errors[0][2]
    return summary
