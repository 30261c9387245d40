"""Classifier research metrics, logged per online update.

Pure ``jnp`` functions (jit/vmap-safe) over the classifier's candidate
scores, so a tracker can compute them inside its jitted update:

* PR — precision of positive predictions: of the candidates scored as
  target (score >= threshold), the fraction that are positives;
* RR — recall: of the positive candidates, the fraction scored as target;
* TopK accuracy — fraction of frames where at least one of the K highest
  scoring candidates overlaps the ground truth (IoU >= ``iou_threshold``).

Undefined ratios (no predicted positives / no positives / no frames) are
NaN, never a silent 0.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _ratio(num, den):
    return jnp.where(den > 0, num / jnp.where(den > 0, den, 1.0), jnp.nan)


def precision_rate(scores: jnp.ndarray, labels: jnp.ndarray, threshold: float = 0.5) -> jnp.ndarray:
    """PR: ``(N,)`` target probabilities, ``(N,)`` bool labels -> ``()``."""
    pred = scores >= threshold
    labels = labels.astype(bool)
    return _ratio(jnp.sum(pred & labels).astype(jnp.float32),
                  jnp.sum(pred).astype(jnp.float32))


def recall_rate(scores: jnp.ndarray, labels: jnp.ndarray, threshold: float = 0.5) -> jnp.ndarray:
    """RR: ``(N,)`` target probabilities, ``(N,)`` bool labels -> ``()``."""
    pred = scores >= threshold
    labels = labels.astype(bool)
    return _ratio(jnp.sum(pred & labels).astype(jnp.float32),
                  jnp.sum(labels).astype(jnp.float32))


def topk_hits(scores: jnp.ndarray, ious: jnp.ndarray, k: int,
              iou_threshold: float = 0.5) -> jnp.ndarray:
    """``(F, N)`` candidate scores and IoUs with the GT -> ``(F,)`` bool:
    does any of the top-``k`` scored candidates reach ``iou_threshold``?"""
    _, idx = jax.lax.top_k(scores, k)
    top_ious = jnp.take_along_axis(ious, idx, axis=-1)
    return jnp.any(top_ious >= iou_threshold, axis=-1)


def topk_accuracy(scores: jnp.ndarray, ious: jnp.ndarray, k: int,
                  iou_threshold: float = 0.5) -> jnp.ndarray:
    """TopK accuracy: ``(F, N)`` scores and IoUs (or ``(N,)`` for one
    frame) -> ``()`` fraction of frames with a top-``k`` hit."""
    hits = topk_hits(jnp.atleast_2d(scores), jnp.atleast_2d(ious), k, iou_threshold)
    return _ratio(jnp.sum(hits).astype(jnp.float32), jnp.float32(hits.shape[0]))
