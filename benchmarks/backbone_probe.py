"""Quick accuracy proxy for choosing a backbone's depth: one tracking step.

For random boxes in a few ``skimage.data`` photos: crop a 219x219 region
around the box (frame A), fit a ridge classifier on RoIAlign features of
IoU-labelled samples (pos >= 0.7, neg < 0.5, as MDNet's first frame), then
crop a second region with the target shifted and rescaled plus noise and a
brightness change (frame B), score 256 Gaussian candidates around the old
box and take the top-5 mean box. Reports mean IoU with the true box in B and
the pos/neg ranking AUC in B, plus the jitted per-region trunk time.

  PYTHONPATH=. python -m benchmarks.backbone_probe --trials 24
"""

from __future__ import annotations

import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np
from skimage import data, transform

from jtrack import boxes as bx
from jtrack.nets import get_backbone, roi_align

REGION = 219


def _crop(img: np.ndarray, cx: float, cy: float, side: float) -> np.ndarray:
    """Square region of ``side`` image pixels centred at (cx, cy) -> 219^2."""
    scale = side / REGION
    tf = transform.AffineTransform(scale=scale, translation=(cx - side / 2, cy - side / 2))
    return transform.warp(img, tf, output_shape=(REGION, REGION), mode="edge",
                           preserve_range=True).astype(np.float32)


def _samples(rng, box, n, trans, scale):
    cx, cy = box[0] + box[2] / 2, box[1] + box[3] / 2
    m = np.sqrt(box[2] * box[3])
    d = rng.normal(size=(n, 2)) * trans * m
    s = scale ** rng.normal(size=(n, 1))
    wh = box[None, 2:] * s
    return np.concatenate([np.array([cx, cy]) + d - wh / 2, wh], axis=1).astype(np.float32)


def _auc(pos, neg):
    return float((pos[:, None] > neg[None, :]).mean())


def run(names, trials: int, seed: int = 0):
    imgs = [data.chelsea(), data.astronaut(), data.coffee(), data.rocket(),
            np.repeat(data.camera()[..., None], 3, axis=2)]
    rng = np.random.default_rng(seed)
    tasks = []
    for _ in range(trials):
        img = imgs[rng.integers(len(imgs))].astype(np.float32)
        H, W = img.shape[:2]
        bw, bh = rng.uniform(40, 110, size=2)
        x, y = rng.uniform(0, W - bw), rng.uniform(0, H - bh)
        side = 3.0 * np.sqrt(bw * bh)  # region ~3x target, as region_scale
        cx, cy = x + bw / 2, y + bh / 2
        a = _crop(img, cx, cy, side)
        box_a = np.array([(x - cx + side / 2), (y - cy + side / 2), bw, bh]) * REGION / side
        # Frame B: region centred on the old box, target moved and rescaled.
        shift = rng.normal(size=2) * 0.15 * np.sqrt(bw * bh)
        zoom = 1.05 ** rng.normal()
        side_b = side / zoom  # camera zoom: target appears zoom x larger
        b = _crop(img, cx - shift[0], cy - shift[1], side_b)
        b = np.clip(b * rng.uniform(0.8, 1.2) + rng.normal(size=b.shape) * 8, 0, 255)
        box_b = np.array([(x - (cx - shift[0]) + side_b / 2), (y - (cy - shift[1]) + side_b / 2),
                          bw, bh]) * REGION / side_b
        tasks.append((a, box_a.astype(np.float32), b.astype(np.float32), box_b.astype(np.float32)))

    for name in names:
        bb = get_backbone(name)
        params = bb.init(jax.random.key(0))
        fwd = jax.jit(lambda p, x: bb.apply(p, x))
        pool = jax.jit(lambda f, b: roi_align(f, b, 3, 2, bb.stride, bb.offset).reshape(b.shape[0], -1))
        x0 = jnp.asarray(tasks[0][0])
        jax.block_until_ready(fwd(params, x0))
        ts = []
        for _ in range(15):
            t = time.perf_counter()
            jax.block_until_ready(fwd(params, x0))
            ts.append(time.perf_counter() - t)
        ious, aucs = [], []
        for a, box_a, b, box_b in tasks:
            srng = np.random.default_rng(1)
            cand = _samples(srng, box_a, 3000, 0.5, 1.2)
            lab = np.asarray(bx.iou(jnp.asarray(cand), jnp.asarray(box_a)))
            keep = (lab >= 0.7) | (lab < 0.5)  # filter after pooling: fixed shapes
            y = np.where(lab[keep] >= 0.7, 1.0, -1.0)
            fa = np.asarray(pool(fwd(params, jnp.asarray(a)), jnp.asarray(cand)), np.float64)[keep]
            mu, sd = fa.mean(0), fa.std(0) + 1e-6
            z = (fa - mu) / sd
            wpos = np.where(y > 0, 0.5 / (y > 0).sum(), 0.5 / (y < 0).sum())  # balance
            A = z.T @ (z * wpos[:, None]) + 1e-2 * np.eye(z.shape[1])
            w = np.linalg.solve(A, z.T @ (wpos * y))
            fmap_b = fwd(params, jnp.asarray(b))
            cb = _samples(srng, box_a, 256, 0.6, 1.05)  # around the previous box
            sb = ((np.asarray(pool(fmap_b, jnp.asarray(cb))) - mu) / sd) @ w
            pred = cb[np.argsort(-sb)[:5]].mean(0)
            ious.append(float(bx.iou(jnp.asarray(pred), jnp.asarray(box_b))))
            tb = _samples(srng, box_b, 2000, 0.5, 1.2)
            lb = np.asarray(bx.iou(jnp.asarray(tb), jnp.asarray(box_b)))
            st = ((np.asarray(pool(fmap_b, jnp.asarray(tb))) - mu) / sd) @ w
            if (lb >= 0.7).any() and (lb < 0.5).any():
                aucs.append(_auc(st[lb >= 0.7], st[lb < 0.5]))
        print(f"{name:28s} fmap {tuple(fwd(params, x0).shape)}  trunk {1e3 * np.median(ts):6.1f} ms"
              f"  step IoU {np.mean(ious):.3f} (>=0.5: {np.mean(np.array(ious) >= 0.5):.2f})"
              f"  AUC {np.mean(aucs):.3f}", flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=24)
    ap.add_argument("--backbones", default="vggm,efficientnet_lite0_s8,efficientnet_lite0_s16,"
                                          "efficientnet_lite0_s16_b10")
    args = ap.parse_args()
    run(args.backbones.split(","), args.trials)
