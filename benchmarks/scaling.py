"""Per-frame cost of ``jtrack.step`` as the number of candidates grows and as
the frame size grows (VGA -> 1080p).

One first-frame state (``init`` on the native sequence) is the start of
every point: a copy of it tracks the same frames with a different
``n_candidates`` (``init`` does not depend on it), or the same frames
upscaled (nearest neighbour) to each frame size with the state's box scaled
to match. Frame size only changes the region crop (the one program compiled
per frame size); the backbone always sees a ``region_size`` square, so the
cost should be nearly flat in frame size. Times include the host->device
copy of the frame (as ``jtrack.step`` does).

  PYTHONPATH=. python -m benchmarks.scaling
  PYTHONPATH=. python -m benchmarks.scaling --candidates 64,128,256,512,1024
  PYTHONPATH=. python -m benchmarks.scaling --tiny --frames 2 --sizes 320x240 --candidates 8,16
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

import jtrack
from benchmarks import common

SIZES = {"VGA": (640, 480), "720p": (1280, 720), "1080p": (1920, 1080)}


def _parse_sizes(text: str) -> list[tuple[str, int, int]]:
    out = []
    for item in text.split(","):
        item = item.strip()
        if item in SIZES:
            out.append((item, *SIZES[item]))
        else:
            try:
                w, h = (int(v) for v in item.lower().split("x"))
            except ValueError:
                raise ValueError(f"frame size {item!r}: expected VGA, 720p, 1080p or WxH") from None
            out.append((item, w, h))
    return out


def upscale(img: np.ndarray, w: int, h: int) -> np.ndarray:
    """Nearest-neighbour resize of an (H, W, 3) uint8 frame to (h, w, 3)."""
    rows = (np.arange(h) * img.shape[0] // h).astype(np.intp)
    cols = (np.arange(w) * img.shape[1] // w).astype(np.intp)
    return img[rows[:, None], cols[None, :]]


def _track(config, state, imgs, warmup: int) -> dict:
    """Time ``jtrack.step`` on ``imgs`` from ``state`` (first ``warmup`` untimed)."""
    times, cpu = [], []
    for i, img in enumerate(imgs):
        c0 = time.process_time()
        dt, (state, out) = common.time_call(lambda: jtrack.step(config, state, img))
        if i >= warmup:
            times.append(dt)
            cpu.append(time.process_time() - c0)
    s = common.summarize(times)
    s["fps_median"] = 1e3 / s["median_ms"]
    # CPU seconds of all threads: steadier than wall time on a loaded machine
    s["cpu_median_ms"] = 1e3 * float(np.median(cpu))
    return s


def run(candidates=(64, 256, 1024), sizes=None, sequence: str = "otb/Crossing",
        frames: int = 8, warmup: int = 2, tiny: bool = False) -> dict:
    sizes = sizes if sizes is not None else _parse_sizes("VGA,720p,1080p")
    base = common.config(tiny)
    imgs, gt = common.load_frames(sequence, frames + warmup + 1)
    params = jtrack.init_params(base, jax.random.key(0))
    with common.stage("init (compile)"):
        state0 = jax.block_until_ready(jtrack.init(base, params, imgs[0], gt[0],
                                                   jax.random.key(1)))
    by_cand = []
    for n in candidates:
        with common.stage(f"{n} candidates"):
            r = _track(base.replace(n_candidates=n, top_k=min(base.top_k, n)),
                       common.copy_tree(state0), imgs[1:], warmup)
        by_cand.append({"n_candidates": n, **r})
    h0, w0 = imgs[0].shape[:2]
    by_size = []
    for label, w, h in [(f"native {w0}x{h0}", w0, h0)] + sizes:
        sx, sy = w / w0, h / h0
        scale = jnp.asarray([sx, sy, sx, sy], jnp.float32)
        s = common.copy_tree(state0)
        s = s.replace(box=s.box * scale, image_wh=jnp.asarray([w, h], jnp.float32))
        big = [upscale(im, w, h) for im in imgs[1:]]
        with common.stage(f"frame {label}"):
            r = _track(base, s, big, warmup)
        by_size.append({"frame": label, "w": w, "h": h, **r})
    return {"sequence": sequence, "frames": frames, "warmup": warmup,
            "default_candidates": base.n_candidates,
            "by_candidates": by_cand, "by_frame_size": by_size}


def table(r: dict) -> str:
    a = common.format_table(
        ["candidates", "median ms", "min ms", "max ms", "mean ms", "frames/s (median)",
         "CPU ms (median)"],
        [[x["n_candidates"], x["median_ms"], x["min_ms"], x["max_ms"], x["mean_ms"],
          x["fps_median"], x["cpu_median_ms"]] for x in r["by_candidates"]])
    b = common.format_table(
        [f"frame ({r['default_candidates']} candidates)", "median ms", "min ms", "max ms",
         "mean ms", "frames/s (median)", "CPU ms (median)"],
        [[x["frame"], x["median_ms"], x["min_ms"], x["max_ms"], x["mean_ms"], x["fps_median"],
          x["cpu_median_ms"]] for x in r["by_frame_size"]])
    return a + "\n\n" + b


def main(argv=None):
    p = common.parser(__doc__)
    p.add_argument("--sequence", default="otb/Crossing")
    p.add_argument("--frames", type=int, default=8, help="timed frames per point")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--candidates", default="64,256,1024",
                   help="comma-separated candidate counts (e.g. 64,128,256,512,1024)")
    p.add_argument("--sizes", default="VGA,720p,1080p",
                   help="comma-separated frame sizes: VGA, 720p, 1080p or WxH")
    a = p.parse_args(argv)
    common.enable_compile_cache(a.compile_cache)
    cands = [int(c) for c in a.candidates.split(",")]
    r = run(cands, _parse_sizes(a.sizes), a.sequence, a.frames, a.warmup, a.tiny)
    heading = (f"{r['sequence']} frames, median of {r['frames']} frames per point after "
               f"{r['warmup']} warm-up frames")
    return common.report(a.out, "scaling", r, heading, table(r))


if __name__ == "__main__":
    main()
