"""Re-detection after the target leaves the frame: widened search vs none.

A red square on a gray textured background moves right, leaves through the
right edge, stays out for 5 frames and re-enters through the same edge
``offset`` box sides above/below where it left. Counts the runs whose mean
IoU over frames 32..39 (a few frames after re-entry) is above 0.5, with the
default failure widening and with ``failure_widen=1`` (no widening).

  PYTHONPATH=. python -m benchmarks.redetection --tracker tiny
  PYTHONPATH=. python -m benchmarks.redetection --tracker default --seeds 2
"""

from __future__ import annotations

import argparse
import os
import sys

import jax
import numpy as np

import jtrack
from jtrack.tracking import iou_np


def scenario(seed: int, offset: float, k: float):
    """Frames (40, 64k, 80k, 3) uint8 and GT (40, 4); box side 12k pixels."""
    h, w, side = int(64 * k), int(80 * k), 12.0 * k
    rng = np.random.default_rng(seed)
    xs = ([20.0 * k + 3 * k * t for t in range(10)] + [50.0 * k + 6 * k * t for t in range(10)]
          + [w + 100.0 * k] * 5 + [w - side - 2 * k * t for t in range(15)])
    y0 = 10.0 * k if offset >= 0 else h - 22.0 * k
    ys = [y0] * 25 + [y0 + offset * side] * 15
    frames = np.empty((len(xs), h, w, 3), np.uint8)
    for t, (x, y) in enumerate(zip(xs, ys)):
        f = (110 + rng.integers(0, 20, (h, w, 3))).astype(np.uint8)
        x0, y0_, x1, y1 = (int(np.clip(v, 0, lim)) for v, lim in
                           ((x, w), (y, h), (x + side, w), (y + side, h)))
        f[y0_:y1, x0:x1] = (220, 30, 30)
        frames[t] = f
    return frames, np.asarray([[x, y, side, side] for x, y in zip(xs, ys)], np.float32)


def redetected(config, params, frames, gt, seed) -> bool:
    state = jtrack.init(config, params, frames[0], gt[0], jax.random.key(seed))
    boxes = []
    for f in frames[1:]:
        state, out = jtrack.step(config, state, f)
        boxes.append(np.asarray(out.box))
    return bool(iou_np(np.stack(boxes), gt[1:])[31:39].mean() > 0.5)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tracker", choices=["tiny", "default"], default="tiny",
                    help="tiny: tests/tiny_tracker.py (80x64 frames); default: "
                         "TrackerConfig() (320x256 frames)")
    ap.add_argument("--seeds", type=int, default=4)
    ap.add_argument("--offsets", default="0,1.25,2.5,-1.25,-2.5",
                    help="re-entry offsets in box sides")
    args = ap.parse_args()
    if args.tracker == "tiny":
        sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(__file__)), "tests"))
        import tiny_tracker

        config, params, k = tiny_tracker.CONFIG, tiny_tracker.params(0), 1.0
    else:
        config = jtrack.TrackerConfig()
        params, k = jtrack.init_params(config, jax.random.key(0)), 4.0
    offsets = [float(v) for v in args.offsets.split(",")]
    for name, cfg in (("widened search (default)", config),
                      ("no widening (failure_widen=1)",
                       config.replace(failure_widen=1.0, max_widen=1.0))):
        row = {}
        for off in offsets:
            row[off] = sum(redetected(cfg, params, *scenario(s, off, k), s)
                           for s in range(args.seeds))
        total = sum(row.values())
        cells = "  ".join(f"{off:+.2f}: {n}/{args.seeds}" for off, n in row.items())
        print(f"{name:32s} {cells}  total {total}/{args.seeds * len(offsets)}")


if __name__ == "__main__":
    main()
