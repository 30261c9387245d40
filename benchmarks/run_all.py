"""Run every benchmark with its default settings, one process each, and time
the whole suite.

Every benchmark but ``compile`` (and the children of ``memory`` and
``multi_device``) shares ONE persistent compilation cache, created empty in
a temporary folder at the start (so the total is a cold start): a program
that several of them run (the default ``init`` and ``step``, the head's
random init, ``step`` with 1024 candidates, ``step_many`` of 4 targets) is
compiled once. ``compile`` uses its own fresh cache (it measures cold vs
warm starts). ``--no-shared-cache`` compiles everything in every process.

  PYTHONPATH=. python -m benchmarks.run_all
  PYTHONPATH=. python -m benchmarks.run_all --only per_frame,scaling --extra=--tiny
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

from benchmarks import common

ORDER = ("per_frame", "breakdown", "scaling", "memory", "compile", "multi_target",
         "multi_device")


def main(argv=None) -> dict:
    p = common.parser(__doc__)
    p.add_argument("--only", default=",".join(ORDER), help="comma-separated benchmark names")
    p.add_argument("--no-shared-cache", action="store_true")
    p.add_argument("--extra", default="", help="extra flags passed to every benchmark")
    a = p.parse_args(argv)
    names = [n.strip() for n in a.only.split(",") if n.strip()]
    unknown = sorted(set(names) - set(ORDER))
    if unknown:
        raise SystemExit(f"unknown benchmarks {unknown}; known: {list(ORDER)}")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(x for x in (root, env.get("PYTHONPATH")) if x)
    walls, cpus = {}, {}
    t_all = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="jtrack-bench-cache-") as cache:
        for name in names:
            cmd = [sys.executable, "-m", f"benchmarks.{name}", "--out", a.out] + a.extra.split()
            if a.tiny:
                cmd.append("--tiny")
            if not a.no_shared_cache and name != "compile":
                cmd += ["--compile-cache", cache]
            print(f"$ {' '.join(cmd[1:])}", flush=True)
            t0, c0 = time.perf_counter(), common.cpu_seconds()
            rc = subprocess.run(cmd, env=env, cwd=root).returncode
            walls[name] = time.perf_counter() - t0
            cpus[name] = common.cpu_seconds() - c0
            print(f"[{name}: {walls[name]:.1f}s wall, {cpus[name]:.1f}s CPU, exit {rc}]\n",
                  flush=True)
            if rc != 0:
                raise SystemExit(f"benchmarks.{name} failed (exit {rc})")
    total = time.perf_counter() - t_all
    rows = [[n, w, cpus[n]] for n, w in walls.items()] + [["total", total, sum(cpus.values())]]
    print(common.format_table(["benchmark", "wall s", "CPU s (user+sys)"], rows))
    r = {"wall_s": walls, "cpu_s": cpus, "total_s": total, "total_cpu_s": sum(cpus.values()),
         "shared_cache": not a.no_shared_cache}
    print("wrote", common.write_results(a.out, "run_all", r))
    return r


if __name__ == "__main__":
    main()
