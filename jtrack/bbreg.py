"""Bounding-box regression: ridge regression from pooled features to box
deltas, fitted once on first-frame samples (MDNet / R-CNN parameterisation).

Deltas of a box ``b`` towards the ground truth ``g`` (centres ``c``):
``((gcx - bcx) / bw, (gcy - bcy) / bh, log(gw / bw), log(gh / bh))``.
The ridge system is solved in whichever form is smaller: primal (D x D)
when there are more samples than feature dimensions (default: N = 1000,
D = 360), dual (N x N) otherwise (VGG-M: D = 4608). Both give the same weights.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jtrack import boxes as B


def deltas(boxes: jax.Array, gt: jax.Array) -> jax.Array:
    """(N, 4) xywh boxes, (4,) xywh target -> (N, 4) regression targets."""
    b = B.xywh_to_cxcywh(boxes)
    g = B.xywh_to_cxcywh(gt)[None]
    return jnp.concatenate([(g[:, :2] - b[:, :2]) / b[:, 2:],
                            jnp.log(g[:, 2:] / b[:, 2:])], axis=-1)


def apply_deltas(boxes: jax.Array, d: jax.Array) -> jax.Array:
    """Inverse of :func:`deltas`: (N, 4) boxes moved by (N, 4) deltas."""
    b = B.xywh_to_cxcywh(boxes)
    c = b[:, :2] + d[:, :2] * b[:, 2:]
    wh = b[:, 2:] * jnp.exp(jnp.clip(d[:, 2:], -1.0, 1.0))
    return B.cxcywh_to_xywh(jnp.concatenate([c, wh], axis=-1))


def fit(feats: jax.Array, boxes: jax.Array, gt: jax.Array, valid: jax.Array,
        alpha: float) -> jax.Array:
    """Ridge fit. feats (N, D), boxes (N, 4), gt (4,), valid (N,) bool ->
    weights (D + 1, 4); the last row is the (unpenalised) intercept."""
    w = valid.astype(feats.dtype)[:, None]
    n = jnp.maximum(jnp.sum(w), 1.0)
    y = deltas(boxes, gt)
    x_mean = jnp.sum(feats * w, 0) / n
    y_mean = jnp.sum(y * w, 0) / n
    xc = (feats - x_mean) * w  # invalid rows become zero: they do not count
    yc = (y - y_mean) * w
    n_rows, d = xc.shape
    if d < n_rows:  # primal: (X'X + a I) coef = X'Y
        gram = xc.T @ xc + alpha * jnp.eye(d, dtype=xc.dtype)
        coef = jax.scipy.linalg.solve(gram, xc.T @ yc, assume_a="pos")
    else:  # dual: coef = X' (XX' + a I)^-1 Y
        gram = xc @ xc.T + alpha * jnp.eye(n_rows, dtype=xc.dtype)
        coef = xc.T @ jax.scipy.linalg.solve(gram, yc, assume_a="pos")
    intercept = y_mean - x_mean @ coef
    return jnp.concatenate([coef, intercept[None]], axis=0)


def predict(weights: jax.Array, feats: jax.Array, boxes: jax.Array) -> jax.Array:
    """Refine (N, 4) boxes with their (N, D) features -> (N, 4)."""
    d = feats @ weights[:-1] + weights[-1]
    return apply_deltas(boxes, d)
