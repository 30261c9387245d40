"""Per-frame backbone cost: one 219x219 region, jitted, median of runs.

  PYTHONPATH=. python -m benchmarks.backbone_timing --runs 30
"""

from __future__ import annotations

import argparse
import time

import jax
import numpy as np

from jtrack.backbones.efficientnet import efficientnet_lite0_backbone
from jtrack.nets import get_backbone


def median_ms(fn, params, x, runs: int) -> float:
    jax.block_until_ready(fn(params, x))  # compile
    ts = []
    for _ in range(runs):
        t = time.perf_counter()
        jax.block_until_ready(fn(params, x))
        ts.append(time.perf_counter() - t)
    return 1e3 * float(np.median(ts))


def main(runs: int, size: int) -> None:
    x = jax.random.uniform(jax.random.key(0), (size, size, 3)) * 255.0
    cases = [("vggm", get_backbone("vggm"))]
    for n, tag in ((5, "s8 block4"), (8, "s16 block7"), (11, "s16 block10")):
        for impl in ("shifted", "grouped"):
            cases.append((f"efficientnet_lite0 {tag} {impl}",
                          efficientnet_lite0_backbone(n, impl)))
    print(f"backend {jax.default_backend()}, region {size}x{size}, median of {runs}")
    for name, bb in cases:
        params = bb.init(jax.random.key(0))
        fn = jax.jit(bb.apply)
        shape = tuple(jax.eval_shape(fn, params, x).shape)
        print(f"{name:42s} {str(shape):16s} {median_ms(fn, params, x, runs):7.1f} ms", flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=30)
    ap.add_argument("--size", type=int, default=219)
    args = ap.parse_args()
    main(args.runs, args.size)
