"""Peak memory of a tracking run, and how it grows with the sample-memory
capacity and the number of candidates.

Every configuration runs in its own child process (``--child``), so peaks
do not leak between them. A child tracks ``--frames`` frames and reports:

  * peak host RSS of the whole process (``VmHWM``: includes XLA compilation),
  * peak host RSS while tracking: the peak is reset (``/proc/self/clear_refs``)
    after ``init`` and one compiled ``step``, so it measures the run itself,
  * the Python-heap peak while tracking (``tracemalloc``; jax buffers are not
    Python objects and do not show here),
  * bytes of the tracker state and of all live jax arrays after the run,
  * device ``peak_bytes_in_use`` where the backend reports it (GPU; CPU: n/a),
  * how many XLA programs it compiled and how many it loaded from the
    persistent compilation cache (``--compile-cache``; under ``run_all`` the
    default configuration's programs come from ``per_frame`` and the 1024
    candidates' step from ``scaling``). Compiling raises the whole-process
    peak, not the peak while tracking: compare rows on the tracking columns.

  PYTHONPATH=. python -m benchmarks.memory
  PYTHONPATH=. python -m benchmarks.memory --tiny --frames 3 --sequence synthetic
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

from benchmarks import common

# (label, TrackerConfig changes): default, 4x the positive memory, 4x candidates.
POINTS = [("default", {}),
          ("frames_long x4", {"frames_long": 400}),
          ("n_candidates x4", {"n_candidates": 1024})]
TINY_POINTS = [("default", {}), ("frames_long x4", {"frames_long": 16}),
               ("n_candidates x4", {"n_candidates": 64})]


def _status_mib(field: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024.0  # kB
    except OSError:
        pass
    return None


def _reset_peak_rss() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False if not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def child(changes: dict, tiny: bool, sequence: str, frames: int) -> dict:
    import tracemalloc

    import jax

    import jtrack

    counter = common.CompileCounter()
    config = common.config(tiny, **changes)
    imgs, gt = common.load_frames(sequence, frames + 2)
    params = jtrack.init_params(config, jax.random.key(0))
    rss_ready = common.current_rss_mib()
    state = jax.block_until_ready(jtrack.init(config, params, imgs[0], gt[0], jax.random.key(1)))
    state, out = jtrack.step(config, state, imgs[1])  # compiles step
    jax.block_until_ready(out)
    rss_compiled = common.current_rss_mib()
    peak_total_before = _status_mib("VmHWM")
    can_reset = _reset_peak_rss()
    tracemalloc.start()
    t0 = time.perf_counter()
    for img in imgs[2:]:
        state, out = jtrack.step(config, state, img)
        jax.block_until_ready(out)
    dt = time.perf_counter() - t0
    py_peak = tracemalloc.get_traced_memory()[1] / 2 ** 20
    tracemalloc.stop()
    dev = jax.devices()[0]
    stats = dev.memory_stats() if hasattr(dev, "memory_stats") else None
    return {
        "changes": changes,
        "rss_before_init_mib": rss_ready,
        "rss_after_compile_mib": rss_compiled,
        "peak_rss_total_mib": max(x for x in (peak_total_before, _status_mib("VmHWM"),
                                               common.peak_rss_mib()) if x is not None),
        "peak_rss_tracking_mib": _status_mib("VmHWM") if can_reset else None,
        "rss_end_mib": common.current_rss_mib(),
        "python_heap_peak_tracking_mib": py_peak,
        "state_mib": common.tree_bytes(state) / 2 ** 20,
        "memory_buffers_mib": common.tree_bytes(state.memory) / 2 ** 20,
        "live_arrays_mib": sum(a.nbytes for a in jax.live_arrays()) / 2 ** 20,
        "device_peak_mib": (stats["peak_bytes_in_use"] / 2 ** 20
                            if stats and "peak_bytes_in_use" in stats else None),
        "tracking_s_per_frame": dt / max(len(imgs) - 2, 1),
        "programs_compiled": counter.count - counter.cache_hits,
        "programs_loaded": counter.cache_hits,
        "machine": common.machine(),
    }


def run(tiny: bool = False, sequence: str = "otb/Crossing", frames: int = 20,
        compile_cache: str | None = None) -> dict:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    rows, procs = [], []
    points = TINY_POINTS if tiny else POINTS
    # The children run side by side: each reports its own process's peak
    # memory (VmHWM), which does not depend on what runs next to it, and the
    # suite's wall time is dominated by their cold compilations.
    with common.stage(f"{len(points)} children side by side: " + ", ".join(l for l, _ in points)):
        for label, changes in points:
            cmd = [sys.executable, "-m", "benchmarks.memory", "--child", json.dumps(changes),
                   "--sequence", sequence, "--frames", str(frames)]
            if tiny:
                cmd.append("--tiny")
            if compile_cache:
                cmd += ["--compile-cache", compile_cache]
            procs.append((label, subprocess.Popen(cmd, env=env, cwd=root, stdout=subprocess.PIPE,
                                                  stderr=subprocess.PIPE, text=True)))
        outs = [(label, p, *p.communicate()) for label, p in procs]
    for label, p, out, err in outs:
        if p.returncode != 0:
            raise RuntimeError(f"memory child {label} failed ({p.returncode}):\n{err[-3000:]}")
        rows.append({"point": label, **json.loads(out.strip().splitlines()[-1])})
    # One machine description for the run (this parent never imports jax).
    machines = [row.pop("machine") for row in rows]
    return {"sequence": sequence, "frames": frames, "tiny": tiny, "points": rows,
            "machine": machines[0]}


def table(r: dict) -> str:
    def f(v):
        return "n/a" if v is None else v

    rows = [[x["point"], x["state_mib"], x["memory_buffers_mib"], x["live_arrays_mib"],
             x["rss_after_compile_mib"], x["peak_rss_total_mib"], f(x["peak_rss_tracking_mib"]),
             f(x["peak_rss_tracking_mib"] and x["peak_rss_tracking_mib"] - x["rss_after_compile_mib"]),
             x["python_heap_peak_tracking_mib"], f(x["device_peak_mib"]),
             f"{x['programs_compiled']} / {x['programs_loaded']}"] for x in r["points"]]
    return common.format_table(
        ["config", "state MiB", "sample memory MiB", "live jax arrays MiB",
         "RSS after compile MiB", "peak RSS MiB", "peak RSS tracking MiB", "tracking growth MiB",
         "Python heap peak MiB", "device peak MiB", "programs compiled / loaded"], rows)


def main(argv=None):
    p = common.parser(__doc__)
    p.add_argument("--sequence", default="otb/Crossing")
    p.add_argument("--frames", type=int, default=20, help="tracked frames per configuration")
    p.add_argument("--child", default=None, help=__import__("argparse").SUPPRESS)
    a = p.parse_args(argv)
    if a.child is not None:
        common.enable_compile_cache(a.compile_cache)
        print(json.dumps(child(json.loads(a.child), a.tiny, a.sequence, a.frames)))
        return None
    r = run(a.tiny, a.sequence, a.frames, a.compile_cache)
    heading = (f"{r['sequence']}, {r['frames']} tracked frames per configuration "
               "(one process each)")
    return common.report(a.out, "memory", r, heading, table(r), r.pop("machine"))


if __name__ == "__main__":
    main()
