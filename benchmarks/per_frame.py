"""Per-frame time of jtrack's step vs a per-crop (py-MDNet style) step.

Both track the same real frames from the same first-frame state, in the
same process, interleaved frame by frame (so load changes on a shared
machine hit both alike), after a warm-up on copies of the state. The
per-crop step (:mod:`benchmarks.reference`) uses the same backbone, weights,
head, sampling and online update; only the feature extraction differs.
Times are of the public call (``jtrack.step``: region crop + jitted step,
input checks included) until the output is ready.

  PYTHONPATH=. python -m benchmarks.per_frame                 # defaults
  PYTHONPATH=. python -m benchmarks.per_frame --frames 6 --candidates 16 --sequence synthetic
"""

from __future__ import annotations

import time

import jax
import numpy as np

import jtrack
from benchmarks import common
from benchmarks.reference import percrop_step
from jtrack.tracking import iou_np


def run(sequence: str = "otb/Crossing", frames: int = 10, warmup: int = 1,
        candidates: int | None = None, config: jtrack.TrackerConfig | None = None) -> dict:
    config = config or jtrack.TrackerConfig()
    if candidates is not None:
        config = config.replace(n_candidates=candidates)
    imgs, gt = common.load_frames(sequence, frames + 1)
    params = jtrack.init_params(config, jax.random.key(0))
    with common.stage("init (compile + first-frame training)"):
        state0 = jax.block_until_ready(jtrack.init(config, params, imgs[0], gt[0],
                                                   jax.random.key(1)))

    steps = {"jtrack": jtrack.step, "percrop": percrop_step}
    # Warm-up on copies: compiles both programs (the update branch is part of
    # the same program) and fills allocator caches.
    with common.stage("warm-up (compile both steps)"):
        for fn in steps.values():
            s = common.copy_tree(state0)
            for img in imgs[1:1 + warmup]:
                s, out = fn(config, s, img)
            jax.block_until_ready(out)

    states = {k: common.copy_tree(state0) for k in steps}
    times = {k: [] for k in steps}
    cpu = {k: [] for k in steps}
    boxes = {k: [] for k in steps}
    updates = {k: 0 for k in steps}
    with common.stage(f"timed run, {frames} frames each"):
        for img in imgs[1:]:
            for k, fn in steps.items():
                t0, c0 = time.perf_counter(), time.process_time()
                states[k], out = fn(config, states[k], img)
                out = jax.block_until_ready(out)
                times[k].append(time.perf_counter() - t0)
                cpu[k].append(time.process_time() - c0)
                boxes[k].append(np.asarray(out.box))
                updates[k] += int(out.updated)

    res = {}
    for k in steps:
        s = common.summarize(times[k])
        s["fps_mean"] = 1e3 / s["mean_ms"]
        s["fps_median"] = 1e3 / s["median_ms"]
        # CPU seconds of all threads: less sensitive to other processes' load
        s["cpu_median_ms"] = 1e3 * float(np.median(cpu[k]))
        s["cpu_mean_ms"] = 1e3 * float(np.mean(cpu[k]))
        s["times_ms"] = [1e3 * t for t in times[k]]
        s["cpu_ms"] = [1e3 * t for t in cpu[k]]
        s["updates"] = updates[k]
        s["mean_iou"] = float(np.nanmean(iou_np(np.stack(boxes[k]), gt[1:])))
        res[k] = s
    return {"sequence": sequence, "frames": frames, "warmup": warmup,
            "n_candidates": config.n_candidates,
            "frame_hw": list(imgs[0].shape[:2]),
            "samples_per_update_frame": config.n_pos_update + config.n_neg_update,
            "results": res,
            "speedup_median": res["percrop"]["median_ms"] / res["jtrack"]["median_ms"],
            "speedup_mean": res["percrop"]["mean_ms"] / res["jtrack"]["mean_ms"],
            "speedup_cpu_median": res["percrop"]["cpu_median_ms"] / res["jtrack"]["cpu_median_ms"],
            "speedup_cpu_mean": res["percrop"]["cpu_mean_ms"] / res["jtrack"]["cpu_mean_ms"]}


def table(r: dict) -> str:
    rows = [[k, v["median_ms"], v["min_ms"], v["max_ms"], v["mean_ms"], v["fps_mean"],
             v["cpu_median_ms"], v["cpu_mean_ms"], v["updates"], v["mean_iou"]]
            for k, v in r["results"].items()]
    return common.format_table(
        ["step", "median ms", "min ms", "max ms", "mean ms", "frames/s (mean)",
         "CPU ms (median)", "CPU ms (mean)", "online updates", "mean IoU"], rows)


def main(argv=None) -> dict:
    p = common.parser(__doc__)
    p.add_argument("--sequence", default="otb/Crossing",
                   help="sequence folder, its name under the data root, or 'synthetic'")
    p.add_argument("--frames", type=int, default=10, help="timed frames (after frame 0)")
    p.add_argument("--warmup", type=int, default=1,
                   help="untimed frames per step first (the first call compiles)")
    p.add_argument("--candidates", type=int, default=None,
                   help="candidates per frame (default: the config's, 256)")
    a = p.parse_args(argv)
    common.enable_compile_cache(a.compile_cache)
    r = run(a.sequence, a.frames, a.warmup, a.candidates, common.config(a.tiny))
    m = common.machine()
    print(common.machine_line(m))
    print(f"{r['sequence']} {r['frame_hw'][1]}x{r['frame_hw'][0]}, {r['frames']} frames, "
          f"{r['n_candidates']} candidates")
    print(table(r))
    print(f"per-crop / jtrack: {r['speedup_median']:.1f}x (median frame), "
          f"{r['speedup_mean']:.1f}x (mean frame), {r['speedup_cpu_median']:.1f}x / "
          f"{r['speedup_cpu_mean']:.1f}x (median / mean CPU time); jtrack "
          f"{r['results']['jtrack']['fps_mean']:.1f} frames/s")
    print("wrote", common.write_results(a.out, "per_frame", r))
    return r


if __name__ == "__main__":
    main()
