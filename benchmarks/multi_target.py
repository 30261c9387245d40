"""Per-frame cost of N targets in one batched pass (``jtrack.step_many``)
next to the single-target ``jtrack.step`` called once per target, measured
in the same run, frame by frame interleaved (so load changes on a shared
machine hit both alike).

For each N of ``--targets`` (default 1, 2, 4, 8): N start boxes on frame 0
(the sequence's ground-truth box and N - 1 boxes of its size on a grid over
the frame), ``init_many`` and N ``jtrack.init`` with the same keys, then the
same frames through ``step_many`` (capacity N) and through N ``step`` calls.
Frames are put on the device before the clock starts (both paths see the
same device array). Each row gives the median and the mean per frame (the
mean includes online-update frames) in wall and process-CPU milliseconds,
``batched / sequential``, and the marginal cost of one extra target:
``(batched(N) - batched(1)) / (N - 1) / single(1)``, as a fraction of one
single-target step. The goal is <= 0.30 on CPU.

  PYTHONPATH=. python -m benchmarks.multi_target
  PYTHONPATH=. python -m benchmarks.multi_target --targets 1,2,4 --frames 10
  PYTHONPATH=. python -m benchmarks.multi_target --tiny --sequence synthetic --frames 2
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

import jtrack
from benchmarks import common

GOAL = 0.30  # each extra target costs at most this fraction of one single-target step


def start_boxes(gt0: np.ndarray, n: int, width: int, height: int) -> np.ndarray:
    """The ground-truth box, then ``n - 1`` boxes of its size centred on a
    grid over the frame (clipped inside it): ``(n, 4)`` xywh."""
    w, h = float(min(gt0[2], width - 1)), float(min(gt0[3], height - 1))
    cols = int(np.ceil(np.sqrt(max(n - 1, 1))))
    rows = int(np.ceil(max(n - 1, 1) / cols))
    out = [np.asarray(gt0, np.float32)]
    for i in range(n - 1):
        cx = (i % cols + 0.5) / cols * width
        cy = (i // cols + 0.5) / rows * height
        x = float(np.clip(cx - w / 2, 0, width - w))
        y = float(np.clip(cy - h / 2, 0, height - h))
        out.append(np.asarray([x, y, w, h], np.float32))
    return np.stack(out)


def _stats(wall: list[float], cpu: list[float]) -> dict:
    s = common.summarize(wall)
    s["cpu_median_ms"] = 1e3 * float(np.median(cpu))
    s["cpu_mean_ms"] = 1e3 * float(np.mean(cpu))
    return s


def run_point(config, params, frames, gt0, n: int, warmup: int) -> dict:
    """Track ``frames`` with N targets both ways; per-frame timings."""
    height, width = frames[0].shape[:2]
    boxes = start_boxes(gt0, n, width, height)
    keys = jax.random.split(jax.random.key(1), n)
    with common.stage(f"{n} target(s): init (compile)"):
        many = jax.block_until_ready(jtrack.init_many(config, params, frames[0], boxes, keys))
        singles = [jax.block_until_ready(jtrack.init(config, params, frames[0], boxes[k],
                                                     keys[k])) for k in range(n)]
    b_wall, b_cpu, s_wall, s_cpu, updates = [], [], [], [], 0
    with common.stage(f"{n} target(s): {len(frames) - 1} frames"):
        for t, frame in enumerate(frames[1:]):
            c0, t0 = time.process_time(), time.perf_counter()
            many, out = jax.block_until_ready(jtrack.step_many(config, many, frame))
            bw, bc = time.perf_counter() - t0, time.process_time() - c0
            c0, t0 = time.process_time(), time.perf_counter()
            outs = []
            for k in range(n):
                singles[k], o = jtrack.step(config, singles[k], frame)
                outs.append(o)
            jax.block_until_ready(outs)
            sw, sc = time.perf_counter() - t0, time.process_time() - c0
            if t >= warmup:
                b_wall.append(bw), b_cpu.append(bc), s_wall.append(sw), s_cpu.append(sc)
                updates += int(np.asarray(out.updated).sum())
    gap = float(np.nanmax(np.abs(np.asarray(out.box[:n]) - np.stack([o.box for o in outs]))))
    return {"targets": n, "batched": _stats(b_wall, b_cpu), "sequential": _stats(s_wall, s_cpu),
            "online_updates": updates, "max_box_diff_last_frame_px": gap}


def derive(points: list[dict]) -> None:
    """Add the ratios to each point (in place); the base is the N = 1 point."""
    base = next((p for p in points if p["targets"] == 1), None)
    for p in points:
        for stat in ("median_ms", "mean_ms", "cpu_median_ms", "cpu_mean_ms"):
            b, s = p["batched"][stat], p["sequential"][stat]
            p.setdefault("batched_over_sequential", {})[stat] = b / s
            if base is not None and p["targets"] > 1:
                extra = (b - base["batched"][stat]) / (p["targets"] - 1)
                p.setdefault("extra_target_fraction", {})[stat] = \
                    extra / base["sequential"][stat]


def run(targets=(1, 2, 4, 8), sequence: str = "otb/Crossing", frames: int = 12,
        warmup: int = 2, tiny: bool = False) -> dict:
    config = common.config(tiny)
    imgs, gt = common.load_frames(sequence, frames + warmup + 1)
    imgs = [jnp.asarray(f) for f in imgs]  # host->device once, outside the clock
    params = jtrack.init_params(config, jax.random.key(0))
    points = [run_point(config, params, imgs, gt[0], n, warmup) for n in targets]
    derive(points)
    return {"sequence": sequence, "frames": frames, "warmup": warmup, "goal": GOAL,
            "points": points}


def table(r: dict) -> str:
    rows = []
    for p in r["points"]:
        b, s = p["batched"], p["sequential"]
        ratio, extra = p["batched_over_sequential"], p.get("extra_target_fraction", {})
        fmt = lambda d, k: d[k] if k in d else "-"  # noqa: E731
        rows.append([p["targets"], b["median_ms"], s["median_ms"], ratio["median_ms"],
                     fmt(extra, "median_ms"), b["mean_ms"], s["mean_ms"], fmt(extra, "mean_ms"),
                     b["cpu_median_ms"], s["cpu_median_ms"], fmt(extra, "cpu_median_ms"),
                     p["online_updates"]])
    return common.format_table(
        ["targets", "batched median ms", "per-target steps median ms", "batched/per-target",
         "extra target / single (median)", "batched mean ms", "per-target mean ms",
         "extra target / single (mean)", "batched CPU ms", "per-target CPU ms",
         "extra target / single (CPU)", "updates (batched)"], rows)


def main(argv=None):
    p = common.parser(__doc__)
    p.add_argument("--sequence", default="otb/Crossing")
    p.add_argument("--targets", default="1,2,4,8", help="comma-separated target counts")
    p.add_argument("--frames", type=int, default=12, help="timed frames per point")
    p.add_argument("--warmup", type=int, default=2)
    a = p.parse_args(argv)
    common.enable_compile_cache(a.compile_cache)
    targets = [int(n) for n in a.targets.split(",")]
    r = run(targets, a.sequence, a.frames, a.warmup, a.tiny)
    print(common.machine_line(common.machine()))
    print(f"{r['sequence']}: {r['frames']} timed frames per point after {r['warmup']} warm-up "
          "frames; 'extra target / single' = (batched(N) - batched(1)) / (N - 1) / "
          f"per-target(1), goal <= {GOAL}")
    print(table(r))
    worst = [p["extra_target_fraction"]["median_ms"] for p in r["points"]
             if "extra_target_fraction" in p]
    if worst:
        verdict = "met" if max(worst) <= GOAL else "NOT met"
        print(f"goal (median wall): {verdict}, worst extra-target fraction {max(worst):.2f}")
    print("wrote", common.write_results(a.out, "multi_target", r))
    return r


if __name__ == "__main__":
    main()
