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

import functools

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


@functools.partial(jax.jit, static_argnums=0)
def _probe(config, state, frame, gt_box, key):
    # Local import: jtrack.tracker imports nothing from jtrack.eval.
    from jtrack import boxes as B, learn, nets, region, sampling, tracker

    rbox = region.region_box(state.box, config.region_scale)
    image_wh = jnp.asarray([frame.shape[1], frame.shape[0]], jnp.float32)
    fmap = nets.get_backbone(config.backbone).apply(
        state.backbone, region.crop(frame, rbox, config.region_size))
    # The tracker's own candidates around its box (for TopK) plus samples
    # around the GT so positives exist even when the tracker drifted (PR/RR).
    k1, k2 = jax.random.split(key)
    cands = jnp.concatenate([
        sampling.gaussian(k1, state.box, config.n_candidates, config.trans, config.scale),
        sampling.gaussian(k2, gt_box, config.n_candidates, config.pos_trans, config.pos_scale)])
    cands = B.clip_to_image(cands, image_wh, config.min_box_size)
    feats = tracker.pool_features(config, fmap, region.to_region(cands, rbox, config.region_size))
    probs = learn.target_prob(nets.head_logits(state.head, feats, hidden=config.hidden))
    ious = B.iou(cands, gt_box[None])
    labelled = (ious >= config.pos_iou_update) | (ious <= config.neg_iou_update)
    pos = ious >= config.pos_iou_update
    # Unlabelled candidates (IoU between the thresholds) count in neither.
    pr = _ratio(jnp.sum((probs >= 0.5) & pos).astype(jnp.float32),
                jnp.sum((probs >= 0.5) & labelled).astype(jnp.float32))
    rr = recall_rate(probs, pos)
    n = config.n_candidates
    topk = topk_accuracy(probs[:n], ious[:n], config.top_k)
    return {"PR": pr, "RR": rr, "TopKAcc": topk}


def classifier_metrics(config, state, frame, gt_box, key) -> dict[str, float]:
    """PR, RR and TopK accuracy of ``state``'s online classifier on ``frame``
    against the ground truth ``gt_box`` (4,) xywh (the seed research metrics,
    logged after each online update by :func:`jtrack.tracking.track_sequence`).

    Candidates: the tracker's Gaussian candidates around ``state.box`` (TopK:
    does one of the top ``config.top_k`` reach IoU 0.5 with the GT?) and as
    many Gaussian positives around the GT (so RR is defined after a drift).
    Labels use the update thresholds (``pos_iou_update``/``neg_iou_update``).
    """
    out = _probe(config, state, jnp.asarray(frame), jnp.asarray(gt_box, jnp.float32), key)
    return {k: float(v) for k, v in out.items()}


@functools.partial(jax.jit, static_argnums=0)
def _separation(config, params, frame, gt_box, key):
    from jtrack import learn, region, tracker

    rbox = region.region_box(gt_box, config.region_scale)
    image_wh = jnp.asarray([frame.shape[1], frame.shape[0]], jnp.float32)
    area = region.intersect(rbox, jnp.concatenate([jnp.zeros(2), image_wh]))
    # the tracker's own online-update samples around the box, here the GT
    pos, pos_ok, neg, neg_ok = tracker._training_boxes(
        config, jax.random.split(key, 4), gt_box, image_wh, area)
    boxes = region.to_region(jnp.concatenate([pos, neg]), rbox, config.region_size)
    logits = tracker.score_candidates(config, params, region.crop(frame, rbox,
                                                                  config.region_size), boxes)
    p = learn.target_prob(logits)
    pp, pn = p[:len(pos)], p[len(pos):]
    w = pos_ok[:, None] & neg_ok[None, :]
    wins = jnp.where(pp[:, None] > pn[None, :], 1.0, jnp.where(pp[:, None] == pn[None, :],
                                                                0.5, 0.0))
    return jnp.sum(wins * w) / jnp.maximum(jnp.sum(w), 1.0)


def separation_auc(config, params: dict, frame, gt_box, key) -> float:
    """How well ``params``' head, as it is (no online training), ranks boxes on
    the target above boxes off it in the search region around ``gt_box``:
    the probability that a positive (IoU >= ``pos_iou_update``) scores above
    a negative (IoU <= ``neg_iou_update``), i.e. the ROC AUC, over the
    samples an online update would draw around ``gt_box``. 0.5 = no better
    than chance."""
    return float(_separation(config, params, jnp.asarray(frame),
                             jnp.asarray(gt_box, jnp.float32), key))
