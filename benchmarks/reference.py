"""A per-crop (py-MDNet style) tracking step, written with jtrack's pieces,
as the baseline of :mod:`benchmarks.per_frame`.

py-MDNet crops every box it scores or learns from out of the frame
(``crop_image2``: the box plus ``padding = 16`` pixels of a 107-pixel
patch on each side, warped to 107x107) and runs the conv trunk on each
crop. This module does the same with jtrack's backbone, weights, head,
sampling, memory and online update, so the ONLY difference from
:func:`jtrack.step` is where features come from:

  * per-crop: every box -> its own 107x107 crop -> backbone -> RoIAlign of
    the box inside its crop (the padded centre) -> (D,) feature;
  * jtrack: one region crop -> backbone once -> RoIAlign of every box.

All crops of a frame go through the backbone as ONE ``(N, 107, 107, 3)``
batch (what py-MDNet does too), so the baseline is as fast as the per-crop
design can be in XLA. Per frame it scores ``n_candidates`` crops and, when
the target is found, extracts ``n_pos_update + n_neg_update`` sample crops
(py-MDNet's per-frame feature extraction); online updates train the head on
stored features with jtrack's own :func:`jtrack.tracker._update_head`.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from jtrack import boxes as B
from jtrack import memory, nets, region
from jtrack import tracker as T
from jtrack.config import TrackerConfig

CROP = 107     # py-MDNet img_size
PADDING = 16   # py-MDNet padding (pixels of the 107 patch)


def crop_boxes(boxes: jax.Array) -> jax.Array:
    """(N, 4) xywh boxes -> (N, 4) xywh frame areas warped to 107x107
    (py-MDNet ``crop_image2``: each side grows by ``padding * side / 107``)."""
    c = B.xywh_to_cxcywh(boxes)
    wh = c[:, 2:] * (1.0 + 2.0 * PADDING / CROP)
    return B.cxcywh_to_xywh(jnp.concatenate([c[:, :2], wh], axis=1))


def percrop_features(config: TrackerConfig, backbone_params, frame: jax.Array,
                     boxes: jax.Array) -> jax.Array:
    """(N, 4) frame xywh boxes -> (N, D) features, one backbone crop per box.

    ``frame`` (H, W, 3) uint8 or float32."""
    areas = crop_boxes(boxes)
    crops = jax.vmap(lambda a: region.crop(frame, a, CROP))(areas)   # (N, 107, 107, 3)
    fmaps = nets.get_backbone(config.backbone).apply(backbone_params, crops)  # (N, h, w, C)
    inner = jax.vmap(lambda b, a: region.to_region(b, a, CROP))(boxes, areas)  # (N, 4)
    return jax.vmap(lambda f, b: T.pool_features(config, f, b[None])[0])(fmaps, inner)


def _percrop_step_core(config: TrackerConfig, state: T.TrackerState,
                       frame: jax.Array) -> tuple[T.TrackerState, T.TrackOutput]:
    """Same steps, sampling, keys and update rule as ``tracker._locate`` +
    ``_update_head``, with per-crop features."""
    key, k_cand, k_pos, k_ps, k_neg, k_ns, k_upd = jax.random.split(state.key, 7)
    t = state.frame_index + 1
    image_wh = jnp.asarray([frame.shape[1], frame.shape[0]], jnp.float32)

    cands = T._candidates(config, state, k_cand, image_wh)
    feats = percrop_features(config, state.backbone, frame, cands)
    box, out_box, score, success, top_boxes, top_p = T._pick_box(config, state, cands, feats,
                                                                 image_wh)

    # Training samples: py-MDNet crops these too, only on frames where the
    # target was found (lax.cond: the crops are skipped otherwise).
    image_box = jnp.concatenate([jnp.zeros(2), image_wh])
    pos, pos_ok, neg, neg_ok = T._training_boxes(config, (k_pos, k_ps, k_neg, k_ns), box,
                                                 image_wh, image_box)
    learning = success & config.online_update

    def store(mem):
        f = percrop_features(config, state.backbone, frame, jnp.concatenate([pos, neg]))
        return memory.write_negatives(memory.write_positives(
            mem, f[:config.n_pos_update], pos_ok, t), f[config.n_pos_update:], neg_ok, t)

    mem = jax.lax.cond(learning, store, lambda m: m, state.memory)
    do_update = config.online_update & ((~success) | (t % config.long_interval == 0))
    widen = jnp.where(success, 1.0, jnp.minimum(state.widen * config.failure_widen,
                                                config.max_widen)).astype(jnp.float32)
    train_now, pending, window = T._schedule_update(config, state, do_update, success)
    state = state.replace(memory=mem, box=box, frame_index=t, key=key, widen=widen,
                          scores=jnp.concatenate([state.scores[1:], score[None]]),
                          image_wh=image_wh, pending=pending, window=window)
    head, opt_state = jax.lax.cond(
        train_now, lambda s: T._update_head(config, s, k_upd),
        lambda s: (s.head, s.opt_state), state)
    out = T.TrackOutput(box=out_box, score=score, success=success, updated=train_now,
                        region=jnp.concatenate([jnp.zeros(2), image_wh]),
                        top_boxes=top_boxes, top_scores=top_p)
    return state.replace(head=head, opt_state=opt_state), out


_percrop_jit = jax.jit(_percrop_step_core, static_argnums=0, donate_argnums=1)


@functools.wraps(_percrop_step_core)
def percrop_step(config: TrackerConfig, state: T.TrackerState, frame
                 ) -> tuple[T.TrackerState, T.TrackOutput]:
    """Per-crop tracking step; consumes ``state`` like :func:`jtrack.step`."""
    return _percrop_jit(config, state, T._check_frame(frame))
