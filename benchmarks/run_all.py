"""Run every benchmark with its default settings and time the whole suite.

Processes: the benchmarks that do all their work in their own process
(``per_frame``, ``breakdown``, ``scaling``, ``multi_target``) run one after
the other in ONE child process (each through its ``main``; a process start
with jax imported costs ~2.5 s, and programs compiled by one are reused by
the next from memory). ``memory``, ``compile`` and ``multi_device`` start
their own child processes (fresh peaks, cold/warm starts, forced devices)
and run as one process each. ``--isolate`` gives every benchmark its own
process.

Every benchmark but ``compile`` (and the children of ``memory`` and
``multi_device``) shares ONE persistent compilation cache, created empty in
a temporary folder at the start (so the total is a cold start): a program
that several of them run (the default ``init`` and ``step``, the head's
random init, ``step`` with 1024 candidates) is compiled once. ``compile``
uses its own fresh cache (it measures cold vs warm starts).
``--no-shared-cache`` compiles everything in every process;
``--compile-cache DIR`` keeps the shared cache in ``DIR`` across runs (a
second run then loads instead of compiling: not a cold start, say so when
quoting its total).

This process never imports jax (its machine description is the last
benchmark's). It times a fixed numpy workload at the start and the end
(:func:`common.speed_probe`, GFLOP/s): on a shared machine whose speed
drifts, a hint whether a slow run ran on a slow machine.

  PYTHONPATH=. python -m benchmarks.run_all
  PYTHONPATH=. python -m benchmarks.run_all --only per_frame,scaling --extra=--tiny
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import subprocess
import sys
import tempfile
import time

from benchmarks import common

ORDER = ("per_frame", "breakdown", "scaling", "multi_target", "vs_opencv", "memory",
         "compile", "multi_device")
# Benchmarks without child processes of their own: they can share one process.
IN_PROCESS = frozenset({"per_frame", "breakdown", "scaling", "multi_target", "vs_opencv"})


def _groups(names: list[str], isolate: bool) -> list[list[str]]:
    """Consecutive :data:`IN_PROCESS` names -> one group; others alone."""
    groups: list[list[str]] = []
    for name in names:
        if (not isolate and name in IN_PROCESS and groups and groups[-1][0] in IN_PROCESS):
            groups[-1].append(name)
        else:
            groups.append([name])
    return groups


def run_in_process(names: list[str], argv: list[str], timings_path: str) -> None:
    """The child side of a group: each benchmark's ``main(argv)`` in turn,
    its wall and CPU seconds written to ``timings_path`` (JSON)."""
    timings, saved_argv = {}, sys.argv
    try:
        for name in names:
            module = importlib.import_module(f"benchmarks.{name}")
            print(f"$ -m benchmarks.{name} {' '.join(argv)}", flush=True)
            sys.argv = [module.__file__] + argv  # the "command" its JSON records
            t0, c0 = time.perf_counter(), common.cpu_seconds(children=False)
            module.main(argv)
            timings[name] = {"wall_s": time.perf_counter() - t0,
                             "cpu_s": common.cpu_seconds(children=False) - c0}
            print(f"[{name}: {timings[name]['wall_s']:.1f}s wall, "
                  f"{timings[name]['cpu_s']:.1f}s CPU in the shared process]\n", flush=True)
    finally:
        sys.argv = saved_argv
    with open(timings_path, "w") as f:
        json.dump(timings, f)


def main(argv=None) -> dict:
    p = common.parser(__doc__)
    p.add_argument("--only", default=",".join(ORDER), help="comma-separated benchmark names")
    p.add_argument("--no-shared-cache", action="store_true")
    p.add_argument("--isolate", action="store_true", help="one process per benchmark")
    p.add_argument("--extra", default="", help="extra flags passed to every benchmark")
    p.add_argument("--in-process", default=None, help=argparse.SUPPRESS)
    p.add_argument("--timings", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    names = [n.strip() for n in a.only.split(",") if n.strip()]
    unknown = sorted(set(names) - set(ORDER))
    if unknown:
        raise SystemExit(f"unknown benchmarks {unknown}; known: {list(ORDER)}")
    bench_argv = ["--out", a.out] + a.extra.split() + (["--tiny"] if a.tiny else [])
    if a.in_process is not None:
        group = a.in_process.split(",")
        run_in_process(group, bench_argv + (["--compile-cache", a.compile_cache]
                                            if a.compile_cache else []), a.timings)
        return {}
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(x for x in (root, env.get("PYTHONPATH")) if x)
    walls, cpus, processes = {}, {}, []
    warm = bool(a.compile_cache and os.path.isdir(a.compile_cache) and os.listdir(a.compile_cache))
    t_all = time.perf_counter()
    probe = {"start_gflops": common.speed_probe()}
    print(f"[machine speed probe: {probe['start_gflops']:.0f} GFLOP/s (numpy matmul)]",
          flush=True)
    with tempfile.TemporaryDirectory(prefix="jtrack-bench-run-") as scratch:
        cache = a.compile_cache or os.path.join(scratch, "xla-cache")
        for group in _groups(names, a.isolate):
            cache_args = [] if a.no_shared_cache or group == ["compile"] else [
                "--compile-cache", cache]
            timings = os.path.join(scratch, "timings.json")
            if len(group) > 1:
                cmd = [sys.executable, "-m", "benchmarks.run_all", "--in-process",
                       ",".join(group), "--timings", timings, "--out", a.out,
                       f"--extra={a.extra}"] + (["--tiny"] if a.tiny else []) + cache_args
            else:
                cmd = [sys.executable, "-m", f"benchmarks.{group[0]}"] + bench_argv + cache_args
            print(f"$ {' '.join(cmd[1:])}", flush=True)
            t0, c0 = time.perf_counter(), common.cpu_seconds()
            rc = subprocess.run(cmd, env=env, cwd=root).returncode
            wall, cpu = time.perf_counter() - t0, common.cpu_seconds() - c0
            label = "+".join(group)
            print(f"[{label}: {wall:.1f}s wall, {cpu:.1f}s CPU, exit {rc}]\n", flush=True)
            if rc != 0:
                raise SystemExit(f"benchmarks {label} failed (exit {rc})")
            processes.append({"benchmarks": group, "wall_s": wall, "cpu_s": cpu})
            if len(group) > 1:
                with open(timings) as f:
                    inner = json.load(f)
                for name in group:  # the process start and imports go to the first
                    walls[name], cpus[name] = inner[name]["wall_s"], inner[name]["cpu_s"]
                first = group[0]
                walls[first] += wall - sum(inner[n]["wall_s"] for n in group)
                cpus[first] += cpu - sum(inner[n]["cpu_s"] for n in group)
            else:
                walls[group[0]], cpus[group[0]] = wall, cpu
    probe["end_gflops"] = common.speed_probe()
    total = time.perf_counter() - t_all
    rows = [[n, w, cpus[n]] for n, w in walls.items()] + [["total", total, sum(cpus.values())]]
    print(common.format_table(["benchmark", "wall s", "CPU s (user+sys)"], rows))
    print(f"machine speed probe (numpy matmul): {probe['start_gflops']:.0f} GFLOP/s at the "
          f"start, {probe['end_gflops']:.0f} at the end")
    if warm:
        print(f"compilation cache kept in {a.compile_cache}: programs an earlier run compiled "
              "were loaded, so this total is not a cold start")
    r = {"wall_s": walls, "cpu_s": cpus, "total_s": total, "total_cpu_s": sum(cpus.values()),
         "processes": processes, "speed_probe": probe, "shared_cache": not a.no_shared_cache,
         "kept_cache": a.compile_cache, "cold_start": not warm,
         "isolated": a.isolate}
    # The machine as the last benchmark saw it (this process never imports jax).
    with open(os.path.join(a.out, f"{names[-1]}.json")) as f:
        machine = json.load(f)["machine"]
    print("wrote", common.write_results(a.out, "run_all", r, machine))
    return r


if __name__ == "__main__":
    main()
