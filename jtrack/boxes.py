"""Axis-aligned boxes: the one convention used inside jtrack, and conversions.

Convention (everywhere inside the library): a box is ``(4,) float32`` **xywh**
``(x, y, w, h)`` in continuous pixel coordinates of the frame, **0-based**:
``(x, y)`` is the top-left corner, pixel ``(row i, col j)`` covers
``[j, j + 1) x [i, i + 1)``, so a box covering the whole ``W x H`` frame is
``(0, 0, W, H)``. Batches are ``(..., 4)``.

OTB and VOT files are 1-based; convert with :func:`from_one_based` /
:func:`to_one_based` at the I/O edge (``jtrack.data``), never inside.

All functions are pure ``jnp`` and work on any leading batch shape, under
``jit``/``vmap``/``grad``.
"""

from __future__ import annotations

import jax.numpy as jnp

_EPS = 1e-9


def xywh_to_xyxy(b: jnp.ndarray) -> jnp.ndarray:
    """(..., 4) xywh -> (..., 4) x1, y1, x2, y2."""
    return jnp.concatenate([b[..., :2], b[..., :2] + b[..., 2:]], axis=-1)


def xyxy_to_xywh(b: jnp.ndarray) -> jnp.ndarray:
    """(..., 4) x1, y1, x2, y2 -> (..., 4) xywh."""
    return jnp.concatenate([b[..., :2], b[..., 2:] - b[..., :2]], axis=-1)


def xywh_to_cxcywh(b: jnp.ndarray) -> jnp.ndarray:
    """(..., 4) xywh -> (..., 4) center x, center y, w, h."""
    return jnp.concatenate([b[..., :2] + 0.5 * b[..., 2:], b[..., 2:]], axis=-1)


def cxcywh_to_xywh(b: jnp.ndarray) -> jnp.ndarray:
    """(..., 4) center x, center y, w, h -> (..., 4) xywh."""
    return jnp.concatenate([b[..., :2] - 0.5 * b[..., 2:], b[..., 2:]], axis=-1)


def from_one_based(b):
    """1-based (OTB/VOT file) xywh -> library 0-based xywh. Works on numpy too."""
    return b - jnp.asarray([1.0, 1.0, 0.0, 0.0], dtype=jnp.asarray(b).dtype)


def to_one_based(b):
    """Library 0-based xywh -> 1-based (OTB/VOT file) xywh."""
    return b + jnp.asarray([1.0, 1.0, 0.0, 0.0], dtype=jnp.asarray(b).dtype)


def to_relative(b: jnp.ndarray, ref: jnp.ndarray) -> jnp.ndarray:
    """(..., 4) xywh -> the same boxes in units of ``ref`` (4,): offset of the
    top-left corner and size, both divided by ``ref``'s width/height."""
    wh = jnp.maximum(ref[2:], _EPS)
    return jnp.concatenate([(b[..., :2] - ref[:2]) / wh, b[..., 2:] / wh], axis=-1)


def from_relative(r: jnp.ndarray, ref: jnp.ndarray) -> jnp.ndarray:
    """Inverse of :func:`to_relative`: place relative boxes around ``ref``.
    IoU with the reference is preserved (it is invariant to per-axis scaling
    and translation)."""
    return jnp.concatenate([ref[:2] + r[..., :2] * ref[2:], r[..., 2:] * ref[2:]], axis=-1)


def area(b: jnp.ndarray) -> jnp.ndarray:
    """(..., 4) xywh -> (...) area; negative sizes count as 0."""
    return jnp.maximum(b[..., 2], 0.0) * jnp.maximum(b[..., 3], 0.0)


def _intersection(a: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
    x1 = jnp.maximum(a[..., 0], b[..., 0])
    y1 = jnp.maximum(a[..., 1], b[..., 1])
    x2 = jnp.minimum(a[..., 0] + a[..., 2], b[..., 0] + b[..., 2])
    y2 = jnp.minimum(a[..., 1] + a[..., 3], b[..., 1] + b[..., 3])
    return jnp.maximum(x2 - x1, 0.0) * jnp.maximum(y2 - y1, 0.0)


def iou(a: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
    """Element-wise IoU of broadcastable (..., 4) xywh boxes -> (...).

    Boxes of zero area give IoU 0 (never NaN).
    """
    inter = _intersection(a, b)
    union = area(a) + area(b) - inter
    return jnp.where(union > 0, inter / jnp.maximum(union, _EPS), 0.0)


def pairwise_iou(a: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
    """(N, 4) x (M, 4) xywh -> (N, M) IoU matrix."""
    return iou(a[:, None, :], b[None, :, :])


def center_distance(a: jnp.ndarray, b: jnp.ndarray) -> jnp.ndarray:
    """Euclidean distance between box centers, broadcast (..., 4) -> (...)."""
    d = xywh_to_cxcywh(a)[..., :2] - xywh_to_cxcywh(b)[..., :2]
    return jnp.sqrt(jnp.sum(d * d, axis=-1))


def clip_to_image(b: jnp.ndarray, image_wh, min_size: float = 1.0) -> jnp.ndarray:
    """Clip (..., 4) xywh boxes to lie inside a ``W x H`` image.

    Each side is kept at least ``min_size`` pixels (the box is pushed inside,
    not padded outside), so the result is always a valid box when the image
    is at least ``min_size`` wide and high. ``image_wh`` is ``(2,)`` (W, H),
    possibly traced, so frame size never triggers a recompile.
    """
    wh_img = jnp.asarray(image_wh, dtype=b.dtype)
    min_size = jnp.minimum(min_size, wh_img)
    wh = jnp.clip(b[..., 2:], min_size, wh_img)
    xy = jnp.clip(b[..., :2], 0.0, wh_img - wh)
    return jnp.concatenate([xy, wh], axis=-1)


def limit_shape(b: jnp.ndarray, ref_wh: jnp.ndarray, min_factor, max_factor,
                max_aspect) -> jnp.ndarray:
    """Keep (..., 4) xywh boxes' size and shape near a reference ``(2,)`` w, h,
    centres unchanged: ``sqrt(w h)`` within ``[min_factor, max_factor]`` of the
    reference's and ``w / h`` within ``[1/max_aspect, max_aspect]`` of its
    aspect. Stops a tracker from collapsing or stretching the box without
    bound (pytracking bounds scale relative to the first box the same way).
    """
    c = xywh_to_cxcywh(b)
    ref_wh = jnp.asarray(ref_wh, b.dtype)
    ref_side, ref_log_aspect = jnp.sqrt(ref_wh[0] * ref_wh[1]), jnp.log(ref_wh[0] / ref_wh[1])
    w, h = c[..., 2], c[..., 3]
    side = jnp.clip(jnp.sqrt(w * h), min_factor * ref_side, max_factor * ref_side)
    log_aspect = jnp.clip(jnp.log(w / h), ref_log_aspect - jnp.log(max_aspect),
                          ref_log_aspect + jnp.log(max_aspect))
    ratio = jnp.exp(0.5 * log_aspect)
    return cxcywh_to_xywh(jnp.stack([c[..., 0], c[..., 1], side * ratio, side / ratio], -1))


def is_valid(b: jnp.ndarray, image_wh=None) -> jnp.ndarray:
    """(..., 4) -> (...) bool: finite, positive size, and (if ``image_wh`` is
    given) overlapping the image."""
    ok = jnp.all(jnp.isfinite(b), axis=-1) & (b[..., 2] > 0) & (b[..., 3] > 0)
    if image_wh is not None:
        wh_img = jnp.asarray(image_wh, dtype=b.dtype)
        ok &= (b[..., 0] < wh_img[0]) & (b[..., 1] < wh_img[1])
        ok &= (b[..., 0] + b[..., 2] > 0) & (b[..., 1] + b[..., 3] > 0)
    return ok
