"""jtrack next to OpenCV's CSRT on whole real sequences, in one process.

Both trackers run on the same decoded frames (decoding is not timed), one
sequence after the other: every frame after the first is timed, online
updates and failures included (jtrack's output is blocked on, so its time is
the frame's real latency). Per tracker: mean / p50 / p99 per-frame ms over
all sequences together, frames/s of the mean, first-frame (init) ms after
compilation, and the OTB success AUC per sequence. jtrack compiles on a
warm-up run over each sequence's first frames (another seed) before its
timed run. jtrack's speed goals are printed as ratios: its mean / CSRT's
mean (<= 1), its p99 / CSRT's p99 (<= 1.5), and its init ms (<= 300).

  PYTHONPATH=. python -m benchmarks.vs_opencv
  PYTHONPATH=. python -m benchmarks.vs_opencv --seeds 0,1,2 --set iters_per_frame=0
  PYTHONPATH=. python -m benchmarks.vs_opencv --tiny --sequences synthetic --frames 4

OpenCV comes from the ``baselines`` extra (``pip install -e '.[baselines]'``):
without it the benchmark says so and times jtrack alone.
"""

from __future__ import annotations

import sys
import time

import numpy as np

from benchmarks import common

DEFAULT_SEQUENCES = "otb/Diving,otb/Crossing,vot/ball1"


def _timed_run(tracker, frames, gt0, seed, block) -> tuple[float, np.ndarray, np.ndarray]:
    """(init seconds, per-frame seconds (T-1,), boxes (T, 4)) of one run."""
    t0 = time.perf_counter()
    state = block(tracker.init(frames[0], gt0, seed))
    init_s = time.perf_counter() - t0
    times, boxes = [], [np.asarray(gt0, np.float64)]
    for f in frames[1:]:
        t0 = time.perf_counter()
        state, box, _ = tracker.step(state, f)  # returns host values: blocked
        times.append(time.perf_counter() - t0)
        boxes.append(np.asarray(box, np.float64))
    return init_s, np.asarray(times), np.stack(boxes)


def _stats(per_frame_s: np.ndarray, init_s: list[float]) -> dict:
    ms = 1e3 * per_frame_s
    return {"frames": int(ms.size), "mean_ms": float(ms.mean()),
            "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "max_ms": float(ms.max()), "fps": float(1e3 / ms.mean()),
            "init_ms_mean": float(1e3 * np.mean(init_s)),
            "init_ms_max": float(1e3 * np.max(init_s))}


def main(argv=None) -> dict:
    p = common.parser(__doc__)
    p.add_argument("--sequences", "--sequence", default=DEFAULT_SEQUENCES,
                   help="comma-separated sequence folders or names under the data root, "
                        "or 'synthetic' (default: %(default)s)")
    p.add_argument("--seeds", default="0", help="jtrack seeds, comma-separated (timed "
                   "runs of every seed count; CSRT is deterministic and runs once)")
    p.add_argument("--frames", type=int, default=None, help="truncate every sequence")
    common.add_set_flag(p)
    p.add_argument("--head", choices=["random", "pretrained"], default="random",
                   help="jtrack's head (jtrack.init_params(..., head=...))")
    p.add_argument("--no-opencv", action="store_true", help="time jtrack alone")
    args = p.parse_args(argv)
    common.enable_compile_cache(args.compile_cache)

    import jax

    from jtrack.eval.otb import ope_metrics
    from jtrack.eval.trackers import jtrack_tracker

    config, overrides = common.config_from_sets(args.tiny, args.set)
    seeds = [int(s) for s in args.seeds.split(",")]
    trackers = {"jtrack": (jtrack_tracker(config, head=args.head), jax.block_until_ready)}
    opencv_note = "OpenCV CSRT not measured: --no-opencv" if args.no_opencv else None
    if not args.no_opencv:
        try:
            from jtrack.eval.baselines import opencv_tracker
            trackers["csrt"] = (opencv_tracker("CSRT"), lambda s: s)
        except ImportError as e:
            opencv_note = f"OpenCV CSRT not measured: {e}"
            print(opencv_note, file=sys.stderr)

    times = {n: [] for n in trackers}
    inits = {n: [] for n in trackers}
    auc: dict[str, dict[str, list[float]]] = {n: {} for n in trackers}
    n_frames = args.frames or (4 if args.tiny else None)
    for source in args.sequences.split(","):
        with common.stage(f"decode {source}"):
            frames, gt = common.load_frames(source, n_frames)
        for name, (tracker, block) in trackers.items():
            runs = seeds if name == "jtrack" else [0]
            if name == "jtrack":
                with common.stage(f"jtrack warm-up on {source} (compilation)"):
                    _timed_run(tracker, frames[:3], gt[0], 1000, block)
            for seed in runs:
                with common.stage(f"{name} seed {seed} on {source}, {len(frames)} frames"):
                    init_s, t, boxes = _timed_run(tracker, frames, gt[0], seed, block)
                times[name].append(t)
                inits[name].append(init_s)
                auc[name].setdefault(source, []).append(ope_metrics(boxes, gt)["auc"])

    stats = {}
    for n in trackers:
        per_seed = np.mean(list(auc[n].values()), axis=0)  # (runs,) mean over sequences
        stats[n] = {**_stats(np.concatenate(times[n]), inits[n]),
                    "auc": {s: float(np.mean(v)) for s, v in auc[n].items()},
                    "auc_runs": auc[n], "auc_mean": float(per_seed.mean()),
                    "auc_seed_std": float(per_seed.std())}
    results = {"sequences": args.sequences.split(","), "seeds": seeds,
               "config_overrides": overrides, "head": args.head, "stats": stats,
               "opencv": opencv_note or trackers["csrt"][0].config.get("opencv")}
    headers = ["tracker", "mean ms", "p50 ms", "p99 ms", "max ms", "frames/s",
               "init ms (mean)", "init ms (max)", "AUC mean ± std (seeds)"] + list(auc["jtrack"])
    rows = [[n, s["mean_ms"], s["p50_ms"], s["p99_ms"], s["max_ms"], s["fps"],
             s["init_ms_mean"], s["init_ms_max"],
             f"{s['auc_mean']:.3f} ± {s['auc_seed_std']:.3f}"]
            + [s["auc"][q] for q in auc["jtrack"]] for n, s in stats.items()]
    text = common.format_table(headers, rows)
    if "csrt" in stats:
        j, c = stats["jtrack"], stats["csrt"]
        results["goals"] = {"mean_ratio": j["mean_ms"] / c["mean_ms"],
                            "p99_ratio": j["p99_ms"] / c["p99_ms"],
                            "init_ms_max": j["init_ms_max"]}
        g = results["goals"]
        text += (f"\n\njtrack/CSRT mean per frame {g['mean_ratio']:.2f} (goal <= 1), "
                 f"p99 {g['p99_ratio']:.2f} (goal <= 1.5); jtrack init max "
                 f"{g['init_ms_max']:.0f} ms (goal <= 300)")
    heading = (f"vs_opencv: {', '.join(results['sequences'])}, every frame after the first, "
               f"jtrack seeds {seeds}" + (f", overrides {overrides}" if overrides else ""))
    return common.report(args.out, "vs_opencv", results, heading, text)


if __name__ == "__main__":
    main()
