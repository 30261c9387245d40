"""Compile cost: time to the first box, compilations over a long run, and the
persistent compilation cache on a second process start.

Runs two child processes (``python -m benchmarks.compile --child``) with
the SAME fresh, empty cache folder (``JAX_COMPILATION_CACHE_DIR``, minimum
compile time 0 so every program is cached):

  1. cold: compiles ``init`` and ``step``, then tracks ``--frames`` frames of
     the built-in sequence counting XLA compilations after every frame
     (``jax.monitoring`` compile events); the count must not grow after
     frame 2;
  2. warm: a second process start, which loads the programs from the cache
     (``init``/``step`` as executables from jtrack's store, untraced).

Both turn the cache on as jtrack's programs do
(``jtrack.enable_compilation_cache``).

For each: process start to ``import jtrack`` done, first ``init`` call
(trace + compile + first-frame training) vs a second ``init`` call, first
``step`` vs a steady ``step``, and the seconds spent in XLA compilation
(or cache loads) reported by jax.

Then "time to first box" as a user sees it: two fresh ``jtrack track
clip.mp4 --box ... --max_frames 2`` processes on a short mp4 of the
built-in sequence, sharing another fresh cache folder: cold (empty cache)
and warm (the second start). Each figure is the process's wall time from
its start to its exit, by which the box of frame 1 (the first tracked
box) is on disk.

  PYTHONPATH=. python -m benchmarks.compile
  PYTHONPATH=. python -m benchmarks.compile --frames 6 --tiny
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

T_START = time.perf_counter()  # before jax is imported: "time to first tracked frame"

from benchmarks import common  # noqa: E402  (numpy only; jax is imported in child())


def child(frames: int, tiny: bool) -> dict:
    """One process start: compile (or load) init/step, track ``frames`` frames."""
    import jax
    import numpy as np

    import jtrack
    from jtrack.data.synthetic import moving_object

    t_import = time.perf_counter() - T_START
    counter = common.CompileCounter()
    config = common.config(tiny)
    t_gen = time.perf_counter()
    imgs, gt = moving_object(n_frames=frames + 1)
    t_gen = time.perf_counter() - t_gen  # not part of "time to first box"
    params = jtrack.init_params(config, jax.random.key(0))

    n0 = counter.count
    t_init1, state = common.time_call(
        lambda: jtrack.init(config, params, imgs[0], gt[0], jax.random.key(1)))
    init_compiles, init_compile_s = counter.count - n0, counter.seconds(n0)

    times, counts = [], []  # per frame: seconds, total compilations so far
    for i in range(1, frames + 1):
        dt, (state, out) = common.time_call(lambda: jtrack.step(config, state, imgs[i]))
        times.append(dt)
        counts.append(counter.count)
        if i == 1:
            first_box_s = time.perf_counter() - T_START - t_gen
            step_compiles, step_compile_s = counter.count - n0 - init_compiles, \
                counter.seconds(n0 + init_compiles)
    t_init2, _ = common.time_call(
        lambda: jtrack.init(config, params, imgs[0], gt[0], jax.random.key(1)))
    new = [c - counts[0] for c in counts]  # compilations since the end of frame 1
    return {
        "import_s": t_import,
        "init_first_call_s": t_init1, "init_second_call_s": t_init2,
        "init_compiles": init_compiles, "init_compile_s": init_compile_s,
        "step_first_call_s": times[0],
        "step_steady_median_s": float(np.median(times[2:] if len(times) > 2 else times)),
        "step_compiles": step_compiles, "step_compile_s": step_compile_s,
        "new_compiles_per_frame_after_frame1": new,
        "new_compiles_after_frame2": new[-1] - new[min(1, len(new) - 1)],
        "cache_hits": counter.cache_hits,
        "compiles_total": counter.count, "compile_s_total": counter.seconds(),
        "process_to_first_tracked_frame_s": first_box_s,
        "frames": frames,
        "machine": common.machine(),
    }


def _run_child(cache_dir: str, frames: int, tiny: bool) -> dict:
    env = dict(os.environ, JAX_COMPILATION_CACHE_DIR=cache_dir,
               JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
               JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
    cmd = [sys.executable, "-m", "benchmarks.compile", "--child", "--frames", str(frames)]
    if tiny:
        cmd.append("--tiny")
    t0 = time.perf_counter()
    p = subprocess.run(cmd, env=env, cwd=root, capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if p.returncode != 0:
        raise RuntimeError(f"child failed ({p.returncode}):\n{p.stderr[-3000:]}")
    r = json.loads(p.stdout.strip().splitlines()[-1])
    r["process_wall_s"] = wall
    return r


def _write_clip(path: str, n: int = 3) -> list[float]:
    """An mp4 of the first ``n`` frames of the built-in sequence; returns
    the target's box on frame 0."""
    from jtrack.data.synthetic import moving_object
    from jtrack.io.video import Mp4Writer

    imgs, gt = moving_object(n_frames=n)
    writer = Mp4Writer(path, fps=25)
    for img in imgs:
        writer.append(img)
    writer.close()
    return [float(v) for v in gt[0]]


def track_first_box(tiny: bool = False) -> dict:
    """Wall seconds of a fresh ``jtrack track`` process to its first tracked
    box, cold (empty compilation cache) and warm (second start)."""
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    with tempfile.TemporaryDirectory(prefix="jtrack-first-box-") as tmp:
        clip = os.path.join(tmp, "clip.mp4")
        box = _write_clip(clip)
        cmd = [sys.executable, "-m", "jtrack.cli", "track", clip,
               "--box=" + ",".join(f"{v:g}" for v in box), "--max_frames=2",
               "--noprogress", "--out_dir", tmp,
               "--compilation_cache_dir", os.path.join(tmp, "cache")]
        cmd += [f"--config_override={k}={json.dumps(v)}" for k, v in
                (common.TINY if tiny else {}).items()]
        out = {"command": " ".join(["jtrack"] + cmd[3:]).replace(tmp, "TMP")}
        for side in ("cold", "warm"):
            with common.stage(f"jtrack track, {side} cache: first box"):
                t0 = time.perf_counter()
                p = subprocess.run(cmd, cwd=root, capture_output=True, text=True)
                out[f"{side}_s"] = time.perf_counter() - t0
            if p.returncode != 0:
                raise RuntimeError(f"jtrack track failed ({p.returncode}):\n{p.stderr[-3000:]}")
        out["cache_entries"] = len(os.listdir(os.path.join(tmp, "cache")))
        # The floor under any jax program's start on this machine.
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", "import jax"], check=True)
        out["import_jax_s"] = time.perf_counter() - t0
    return out


def _first_box_line(t: dict) -> str:
    return (f"time to first box, `{t['command']}` in a fresh process: {t['cold_s']:.1f} s "
            f"with an empty compilation cache, {t['warm_s']:.1f} s on the second start "
            f"({t['cache_entries']} cache entries); a bare `python -c 'import jax'` process "
            f"takes {t['import_jax_s']:.1f} s")


def run(frames: int = 200, tiny: bool = False) -> dict:
    with tempfile.TemporaryDirectory(prefix="jtrack-xla-cache-") as cache:
        with common.stage(f"cold process: compile + {frames} frames"):
            cold = _run_child(cache, frames, tiny)
        n_files = sum(len(f) for _, _, f in os.walk(cache))
        with common.stage("warm process: persistent cache"):
            warm = _run_child(cache, min(frames, 3), tiny)
    warm.pop("machine")
    return {"frames": frames, "tiny": tiny, "cache_entries": n_files,
            "machine": cold.pop("machine"), "cold": cold, "warm": warm,
            "compiles_constant_after_frame2": cold["new_compiles_after_frame2"] == 0,
            "track_first_box": track_first_box(tiny)}


def table(r: dict) -> str:
    keys = [("import jax + jtrack (s)", "import_s"),
            ("first init call (s)", "init_first_call_s"),
            ("second init call (s)", "init_second_call_s"),
            ("XLA compile/load in init (s)", "init_compile_s"),
            ("first step call (s)", "step_first_call_s"),
            ("steady step, median (s)", "step_steady_median_s"),
            ("XLA compile/load in first step (s)", "step_compile_s"),
            ("programs compiled/loaded: init, step", "init_step_compiles"),
            ("process start to first tracked frame (s)", "process_to_first_tracked_frame_s"),
            ("compilations in process", "compiles_total"),
            ("persistent-cache hits", "cache_hits")]
    def value(side, k):
        if k == "init_step_compiles":
            return f"{r[side]['init_compiles']}, {r[side]['step_compiles']}"
        return r[side][k]

    rows = [[name, value("cold", k), value("warm", k)] for name, k in keys]
    return common.format_table(["", "cold process (empty cache)", "second process (cache)"],
                               rows)


def main(argv=None):
    p = common.parser(__doc__)
    p.add_argument("--frames", type=int, default=200)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--first-box-only", action="store_true",
                   help="only the time to first box of `jtrack track`, cold and warm")
    a = p.parse_args(argv)
    if a.child:
        import jtrack

        jtrack.enable_compilation_cache()  # $JAX_COMPILATION_CACHE_DIR, as the programs do
        print(json.dumps(child(a.frames, a.tiny)))
        return None
    if a.first_box_only:
        t = track_first_box(a.tiny)
        print(_first_box_line(t))
        print("wrote", common.write_results(a.out, "compile_first_box", t))
        return t
    r = run(a.frames, a.tiny)
    machine = r.pop("machine")  # a child's: this parent never starts a jax backend
    print(common.machine_line(machine))
    print(table(r))
    c = r["cold"]["new_compiles_per_frame_after_frame1"]
    print(f"compilations after frame 1 over {r['frames']} frames: "
          f"{sorted(set(c))} -> constant after frame 2: {r['compiles_constant_after_frame2']}")
    print(_first_box_line(r["track_first_box"]))
    print("wrote", common.write_results(a.out, "compile", r, machine))
    return r


if __name__ == "__main__":
    main()
