"""The one search region cropped per frame, and box mapping in and out of it.

The region is centred on the previous box. Per axis its side is
``scale * max(side, mean_side)``: ``scale`` x the target's width and height,
but never narrower than ``scale`` x the mean side, because candidate
translations are drawn in multiples of the mean side (MDNet) and must land
inside the region even for thin targets. It is resampled bilinearly to a
fixed ``out_size x out_size`` image, so the backbone always sees the same
shape whatever the frame size. Pixels of the region outside the frame repeat
the frame's border (no zero padding of the whole image).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jtrack import boxes as B


def region_box(box: jax.Array, scale: float | jax.Array) -> jax.Array:
    """(4,) xywh target box -> (4,) xywh region box in frame coordinates."""
    c = B.xywh_to_cxcywh(box)
    side = jnp.maximum(c[2:], jnp.mean(c[2:]))
    return B.cxcywh_to_xywh(jnp.concatenate([c[:2], scale * side]))


def _sample_axis(start, size, out_size: int, n_in: int):
    """Source pixel indices and weights for resampling one axis."""
    q = jnp.arange(out_size, dtype=jnp.float32) + 0.5
    p = start + q * (size / out_size) - 0.5  # continuous -> pixel-centre coords
    p = jnp.clip(p, 0.0, n_in - 1.0)
    lo = jnp.floor(p)
    frac = p - lo
    lo = lo.astype(jnp.int32)
    hi = jnp.minimum(lo + 1, n_in - 1)
    return lo, hi, frac


def crop(frame: jax.Array, rbox: jax.Array, out_size: int) -> jax.Array:
    """Bilinearly resample ``rbox`` (4,) xywh of ``frame`` (H, W, 3) (any
    dtype) to an ``(out_size, out_size, 3) float32`` image in [0, 255]."""
    h, w = frame.shape[0], frame.shape[1]
    y0, y1, fy = _sample_axis(rbox[1], rbox[3], out_size, h)
    x0, x1, fx = _sample_axis(rbox[0], rbox[2], out_size, w)
    # Gather only the rows/columns needed, then blend: (out, out, 3).
    rows0 = frame[y0].astype(jnp.float32)
    rows1 = frame[y1].astype(jnp.float32)
    fx = fx[None, :, None]
    top = rows0[:, x0] * (1 - fx) + rows0[:, x1] * fx
    bot = rows1[:, x0] * (1 - fx) + rows1[:, x1] * fx
    fy = fy[:, None, None]
    return top * (1 - fy) + bot * fy


def to_region(boxes: jax.Array, rbox: jax.Array, out_size: int) -> jax.Array:
    """(..., 4) frame xywh -> region-pixel xywh."""
    s = out_size / rbox[2:]
    return jnp.concatenate([(boxes[..., :2] - rbox[:2]) * s, boxes[..., 2:] * s], -1)


def to_frame(boxes: jax.Array, rbox: jax.Array, out_size: int) -> jax.Array:
    """(..., 4) region-pixel xywh -> frame xywh."""
    s = rbox[2:] / out_size
    return jnp.concatenate([boxes[..., :2] * s + rbox[:2], boxes[..., 2:] * s], -1)


def intersect(a: jax.Array, b: jax.Array) -> jax.Array:
    """Intersection of two (4,) xywh boxes (zero size if disjoint)."""
    xy1 = jnp.maximum(a[:2], b[:2])
    xy2 = jnp.minimum(a[:2] + a[2:], b[:2] + b[2:])
    return jnp.concatenate([xy1, jnp.maximum(xy2 - xy1, 0.0)])
