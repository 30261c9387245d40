"""Candidate and training-sample generators with static output shapes.

Every generator takes an explicit PRNG key and returns a fixed number of
boxes ``(n, 4) float32 xywh`` (library convention, see :mod:`jtrack.boxes`).
Samples are never made by padding the image: callers clip boxes to the image
(or region) with :func:`jtrack.boxes.clip_to_image` and select by IoU with
:func:`select_by_iou`, which returns a validity mask instead of a
variable-length array, so everything runs under ``jit``/``vmap``.

Parameterisation follows MDNet's SampleGenerator: translations are multiples
of the box's mean side, scales are powers of ``scale``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jtrack import boxes as B


def _mean_side(box: jax.Array) -> jax.Array:
    return 0.5 * (box[2] + box[3])


def _from_center(center: jax.Array, wh: jax.Array) -> jax.Array:
    return jnp.concatenate([center - 0.5 * wh, wh], axis=-1)


def _aspect(key: jax.Array, n: int, aspect: float | jax.Array) -> jax.Array:
    """(n, 2) independent w/h factors ``aspect ** U(-1, 1)`` (1 = none)."""
    return jnp.power(aspect, jax.random.uniform(key, (n, 2), minval=-1.0, maxval=1.0))


def gaussian(key: jax.Array, box: jax.Array, n: int, trans: float | jax.Array,
             scale: float | jax.Array, aspect: float | jax.Array = 1.0) -> jax.Array:
    """Gaussian samples around ``box`` (4,) -> (n, 4).

    Centre offset ``trans * mean_side * clip(0.5 * N(0, 1), -1, 1)`` per axis
    and size factor ``scale ** clip(0.5 * N(0, 1), -1, 1)`` (same for w, h),
    times independent w/h factors ``aspect ** U(-1, 1)``.
    """
    kt, ks, ka = jax.random.split(key, 3)
    c = B.xywh_to_cxcywh(box)
    t = jnp.clip(0.5 * jax.random.normal(kt, (n, 2)), -1.0, 1.0)
    s = jnp.clip(0.5 * jax.random.normal(ks, (n, 1)), -1.0, 1.0)
    center = c[:2] + trans * _mean_side(box) * t
    wh = c[2:] * jnp.power(scale, s) * _aspect(ka, n, aspect)
    return _from_center(center, wh)


def uniform(key: jax.Array, box: jax.Array, n: int, trans: float | jax.Array,
            scale: float | jax.Array, aspect: float | jax.Array = 1.0) -> jax.Array:
    """Uniform samples around ``box`` (4,) -> (n, 4): offsets in
    ``±trans * mean_side``, size factor ``scale ** U(-1, 1)``, independent
    w/h factors ``aspect ** U(-1, 1)``."""
    kt, ks, ka = jax.random.split(key, 3)
    c = B.xywh_to_cxcywh(box)
    t = jax.random.uniform(kt, (n, 2), minval=-1.0, maxval=1.0)
    s = jax.random.uniform(ks, (n, 1), minval=-1.0, maxval=1.0)
    center = c[:2] + trans * _mean_side(box) * t
    wh = c[2:] * jnp.power(scale, s) * _aspect(ka, n, aspect)
    return _from_center(center, wh)


def reshape(key: jax.Array, boxes: jax.Array, factor: float | jax.Array) -> jax.Array:
    """(n, 4) boxes with each w/h ratio changed by ``factor ** U(-1, 1)`` at
    constant centre and area (``factor`` 1 = unchanged). -> (n, 4)."""
    u = jax.random.uniform(key, (boxes.shape[0], 1), minval=-1.0, maxval=1.0)
    r = jnp.power(factor, 0.5 * u)
    center = boxes[:, :2] + 0.5 * boxes[:, 2:]
    return _from_center(center, boxes[:, 2:] * jnp.concatenate([r, 1.0 / r], axis=1))


def whole(key: jax.Array, box: jax.Array, area_box: jax.Array, n: int,
          scale: float | jax.Array) -> jax.Array:
    """Samples anywhere inside ``area_box`` (4,) xywh (the image or a search
    region): centres uniform over the area, size ``box`` size times
    ``scale ** U(-1, 1)``. -> (n, 4)."""
    kt, ks = jax.random.split(key)
    u = jax.random.uniform(kt, (n, 2))
    s = jax.random.uniform(ks, (n, 1), minval=-1.0, maxval=1.0)
    wh = box[2:] * jnp.power(scale, s)
    center = area_box[:2] + u * area_box[2:]
    return _from_center(center, wh)


def select_by_iou(key: jax.Array, candidates: jax.Array, ref: jax.Array,
                  lo: float, hi: float, n: int) -> tuple[jax.Array, jax.Array]:
    """Pick ``n`` candidates whose IoU with ``ref`` lies in ``[lo, hi]``.

    Args:
      candidates: (M, 4) xywh.
      ref: (4,) xywh.
    Returns:
      boxes (n, 4) and valid (n,) bool. Qualifying candidates are taken in
      random order; when fewer than ``n`` qualify they are repeated
      (cyclically) so the output shape stays static; when none qualify every
      ``valid`` is False.
    """
    ov = B.iou(candidates, ref[None, :])
    ok = (ov >= lo) & (ov <= hi) & B.is_valid(candidates)
    priority = jnp.where(ok, jax.random.uniform(key, ok.shape), -1.0)
    order = jnp.argsort(-priority)
    count = jnp.maximum(jnp.sum(ok), 1)
    idx = order[jnp.arange(n) % count]
    return candidates[idx], ok[idx]


def weighted_choice(key: jax.Array, weights: jax.Array, n: int) -> jax.Array:
    """Draw ``n`` indices with probability proportional to ``weights`` (M,)
    (with replacement). Zero weights are never drawn unless all are zero."""
    w = jnp.maximum(weights, 0.0)
    total = jnp.sum(w)
    w = jnp.where(total > 0, w, jnp.ones_like(w))
    cdf = jnp.cumsum(w)
    u = jax.random.uniform(key, (n,)) * cdf[-1]
    return jnp.clip(jnp.searchsorted(cdf, u, side="right"), 0, w.shape[0] - 1)
