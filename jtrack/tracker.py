"""The single-target tracker: ``init`` and ``step`` as pure, jitted functions.

Per frame (:func:`step`):
  1. crop ONE search region around the previous box (``region``) and run the
     backbone once on it;
  2. draw ``n_candidates`` Gaussian boxes around the previous box, pool their
     features from the region's feature map (RoIAlign) and score them with
     the FC head;
  3. average the top-K candidates after dropping outliers (boxes whose IoU to
     the top-K median box is low), refine with the bounding-box regressor;
  4. if the target was found, pool positives/negatives around the new box
     from the same feature map into the sample memory; otherwise widen the
     search for the next frame;
  5. update the head: short-term after a failure, long-term every
     ``long_interval`` frames (``lax.scan``, hard negative mining), spread
     over the following frames ``iters_per_frame`` iterations at a time.

Everything lives in one :class:`TrackerState` pytree. ``step`` consumes
(donates) the state it is given: keep using the returned one. Frame size is
a traced value inside the heavy computation, so new frame sizes only
recompile the cheap region crop.
"""

from __future__ import annotations

import functools
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np

from jtrack import bbreg as bbreg_lib
from jtrack import boxes as B
from jtrack import learn, memory, nets, optim, region, sampling
from jtrack.config import TrackerConfig
from jtrack.executables import stored_jit

Params = Any


@flax.struct.dataclass
class TrackerState:
    """Everything the tracker carries from frame to frame (a pytree)."""

    backbone: Params       # conv trunk parameters (frozen online)
    head: Params           # {'fc4', 'fc5', 'fc6'}
    opt_state: Any         # optax state of the head
    memory: memory.SampleMemory
    bbreg: jax.Array       # (D + 1, 4) ridge weights
    box: jax.Array         # (4,) float32 xywh, search centre: last output, or its
                           # top-K mean before bbreg (bbreg_feedback=False)
    frame_index: jax.Array  # () int32, 0 on the first frame
    key: jax.Array         # PRNG key
    widen: jax.Array       # () float32, search widening (1 = normal)
    scores: jax.Array      # (score_history,) float32, most recent last
    image_wh: jax.Array    # (2,) float32 frame width, height
    init_wh: jax.Array     # (2,) float32 first box width, height (size/shape limits)
    pending: jax.Array     # () int32, online-update iterations still to run
                           # (iters_per_frame > 0), 0 when none
    window: jax.Array      # () int32, positive window (frames) of that update


@flax.struct.dataclass
class TrackOutput:
    box: jax.Array        # (4,) float32 xywh, frame pixels
    score: jax.Array      # () float32, mean target probability of the top-K
    success: jax.Array    # () bool, score > success_threshold
    updated: jax.Array    # () bool, the head was trained this frame
    region: jax.Array     # (4,) xywh search region used
    top_boxes: jax.Array  # (K, 4) xywh top-K candidates
    top_scores: jax.Array  # (K,) their target probabilities


def feature_dim(config: TrackerConfig) -> int:
    """Size D of one pooled feature vector."""
    return config.roi_size ** 2 * nets.get_backbone(config.backbone).channels


@stored_jit
def _split2(key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``jax.random.split(key)`` as two keys, in one stored program."""
    a, b = jax.random.split(key)
    return a, b


def init_params(config: TrackerConfig, key: jax.Array, head: str = "random") -> dict:
    """{'backbone': ..., 'head': ...}: backbone params from the backbone's own
    ``init`` (pretrained where it ships weights) and the head: ``"random"``
    = random fc4/fc5/fc6; ``"pretrained"`` = the head shipped in the package
    (:mod:`jtrack.weights.shipped`: fc4/fc5 and the mean of the pretraining
    fc6 branches), which raises ValueError naming the field when ``config``
    is not the network it was trained for. The default stays random: on the
    evaluation clips the shipped head tracks worse (docs/pretraining.md).
    Any other value is a head file (``.npz``) from ``experiments.pretrain``
    or ``experiments.meta_train`` (:func:`jtrack.pretrain.load_params`)."""
    if head == "pretrained":
        from jtrack.weights import shipped
        return shipped.load(config, _as_key(key))
    if head.endswith(".npz"):
        from jtrack.pretrain.head import load_params
        return load_params(head, config, _as_key(key))
    if head != "random":
        raise ValueError(f"head must be 'pretrained', 'random' or a head file (.npz), "
                         f"got {head!r}")
    kb, kh = _split2(_as_key(key))
    backbone = nets.get_backbone(config.backbone)
    return {"backbone": backbone.init(kb),
            "head": nets.init_head(kh, feature_dim(config), config.hidden)}


# ----------------------------------------------------------------------------
# pure building blocks


def pool_features(config: TrackerConfig, fmap: jax.Array,
                  region_boxes: jax.Array) -> jax.Array:
    """(N, 4) region-pixel boxes -> (N, D) flattened RoIAlign features."""
    bb = nets.get_backbone(config.backbone)
    f = nets.roi_align(fmap, region_boxes, config.roi_size, config.roi_sampling,
                       bb.stride, bb.offset)
    f = f.reshape(f.shape[0], -1)
    if config.feature_norm:
        f = f * jax.lax.rsqrt(jnp.mean(f * f, axis=-1, keepdims=True) + 1e-6)
    return f


def score_candidates(config: TrackerConfig, params: dict, region_image: jax.Array,
                     region_boxes: jax.Array) -> jax.Array:
    """Logits (N, 2) of region-pixel boxes (N, 4) in one region image
    (S, S, 3). Differentiable in ``params`` (for ``jax.grad``)."""
    bb = nets.get_backbone(config.backbone)
    fmap = bb.apply(params["backbone"], region_image)
    feats = pool_features(config, fmap, region_boxes)
    return nets.head_logits(params["head"], feats, hidden=config.hidden)


def _clip_to_area(boxes: jax.Array, area: jax.Array, min_size: float) -> jax.Array:
    shifted = boxes - jnp.concatenate([area[:2], jnp.zeros(2)])
    clipped = B.clip_to_image(shifted, area[2:], min_size)
    return clipped + jnp.concatenate([area[:2], jnp.zeros(2)])


def _median_inliers(config: TrackerConfig, top_boxes: jax.Array) -> jax.Array:
    """(K, 4) -> (K,) bool: boxes agreeing with the coordinate-wise median."""
    if not config.outlier_reject:
        return jnp.ones(top_boxes.shape[0], bool)
    med = jnp.median(top_boxes, axis=0)
    keep = B.iou(top_boxes, med[None]) >= config.outlier_iou
    return keep.at[0].set(True)  # the best candidate always counts


def _limit_shape(config: TrackerConfig, boxes: jax.Array, init_wh: jax.Array) -> jax.Array:
    return B.limit_shape(boxes, init_wh, config.min_size_factor, config.max_size_factor,
                         config.max_aspect_change)


def _masked_mean(x: jax.Array, mask: jax.Array) -> jax.Array:
    w = mask.astype(x.dtype)[:, None]
    return jnp.sum(x * w, 0) / jnp.maximum(jnp.sum(w), 1.0)


def _pick_box(config: TrackerConfig, state: TrackerState, cands: jax.Array,
              feats: jax.Array, image_wh: jax.Array):
    """The new boxes from scored candidates. ``cands`` (N, 4) xywh, ``feats``
    (N, D) their pooled features.

    The tracked box is the mean of the top-K after outlier rejection (held
    when lost and ``hold_on_failure``); the next search and the training
    samples are centred on it. The reported box is that box refined by bbreg
    when the target is found; with ``bbreg_feedback`` the refined box is
    tracked too (False: output only, as py-MDNet). Both boxes are finite,
    within the shape limits and inside the frame.
    Returns box (4,), out_box (4,), score (), success (), top_boxes (K, 4),
    top_scores (K,)."""
    probs = learn.target_prob(nets.head_logits(state.head, feats, hidden=config.hidden))
    probs = jnp.where(jnp.isfinite(probs), probs, 0.0)  # NaN never ranks or scores
    top_p, top_i = jax.lax.top_k(probs, config.top_k)
    top_boxes = cands[top_i]
    keep = _median_inliers(config, top_boxes)
    score = jnp.mean(top_p)
    success = score > config.success_threshold
    box = _masked_mean(top_boxes, keep)
    if config.hold_on_failure:
        box = jnp.where(success, box, state.box)
    out_box = box
    if config.bbreg:
        refined = _masked_mean(bbreg_lib.predict(state.bbreg, feats[top_i], top_boxes), keep)
        out_box = jnp.where(success, refined, box)
        if config.bbreg_feedback:
            box = out_box

    def valid(b):
        # Invariant: a box is finite, positive-size and inside the frame.
        b = jnp.where(jnp.all(jnp.isfinite(b)), b, state.box)
        return B.clip_to_image(_limit_shape(config, b, state.init_wh), image_wh,
                               config.min_box_size)
    return valid(box), valid(out_box), score, success, top_boxes, top_p


def _candidates(config: TrackerConfig, state: TrackerState, key: jax.Array,
                image_wh: jax.Array) -> jax.Array:
    """(n_candidates, 4) xywh Gaussian boxes around the previous box, within
    the shape limits and the frame. After a failure (``state.widen`` > 1) the
    translation is widened and, with ``lost_aspect`` > 1, each box's w/h ratio
    is also changed by ``lost_aspect ** U(-1, 1)`` at constant area."""
    cands = sampling.gaussian(key, state.box, config.n_candidates,
                              config.trans * state.widen, config.scale, config.aspect)
    if config.lost_aspect > 1.0:
        # fold_in: the Gaussian draws are the same with or without the shape search
        cands = sampling.reshape(jax.random.fold_in(key, 1), cands,
                                 jnp.where(state.widen > 1.0, config.lost_aspect, 1.0))
    return B.clip_to_image(_limit_shape(config, cands, state.init_wh), image_wh,
                           config.min_box_size)


def _training_boxes(config: TrackerConfig, keys, box: jax.Array, image_wh: jax.Array,
                    neg_area: jax.Array):
    """Positives (Gaussian, IoU >= pos_iou_update) and negatives (uniform, IoU
    <= neg_iou_update, clipped to ``neg_area`` xywh) around ``box`` for the
    memory. Returns pos (P, 4), pos_ok (P,), neg (N, 4), neg_ok (N,)."""
    k_pos, k_ps, k_neg, k_ns = keys
    pos, pos_ok = sampling.select_by_iou(
        k_ps, B.clip_to_image(sampling.gaussian(
            k_pos, box, 2 * config.n_pos_update, config.pos_trans, config.pos_scale),
            image_wh, config.min_box_size),
        box, config.pos_iou_update, 1.0, config.n_pos_update)
    neg, neg_ok = sampling.select_by_iou(
        k_ns, _clip_to_area(sampling.uniform(
            k_neg, box, 2 * config.n_neg_update, config.neg_trans_update,
            config.neg_scale_update), neg_area, config.min_box_size),
        box, 0.0, config.neg_iou_update, config.n_neg_update)
    return pos, pos_ok, neg, neg_ok


def _train(config, optimizer, head, opt_state, mem, frame_index, window, key, iters):
    pos_w = memory.positive_weights(mem, frame_index, window, config.first_frame_weight)
    neg_w = memory.negative_weights(mem)

    def sample_pos(k, n):
        return memory.gather_positives(mem, sampling.weighted_choice(k, pos_w, n))

    def sample_neg(k, n):
        return memory.gather_negatives(mem, sampling.weighted_choice(k, neg_w, n))

    return learn.train(config, optimizer, head, opt_state, sample_pos, sample_neg,
                       key, iters)


def _init_core(config: TrackerConfig, params: dict, frame: jax.Array,
               box: jax.Array, key: jax.Array) -> TrackerState:
    """All of :func:`init` as one pure function of the whole frame."""
    image_wh = jnp.asarray([frame.shape[1], frame.shape[0]], jnp.float32)
    rbox = region.region_box(box, config.init_region_scale)
    region_image = region.crop(frame, rbox, config.init_region_size)
    return _init_from_region(config, params, region_image, rbox, image_wh, box, key)


def _init_from_region(config: TrackerConfig, params: dict, region_image: jax.Array,
                      rbox: jax.Array, image_wh: jax.Array, box: jax.Array,
                      key: jax.Array) -> TrackerState:
    """:func:`init` after the crop: ``region_image`` (S, S, 3) of ``rbox``.
    Independent of the frame size, so a new frame size recompiles only the crop."""
    fmap = nets.get_backbone(config.backbone).apply(params["backbone"], region_image)
    return _init_from_fmap(config, params, fmap, box, rbox, image_wh, key)


def _init_from_fmap(config: TrackerConfig, params: dict, fmap: jax.Array,
                    box: jax.Array, rbox: jax.Array, image_wh: jax.Array,
                    key: jax.Array) -> TrackerState:
    """Everything in :func:`init` after the backbone, for ONE target: ``fmap``
    (h, w, C) of the first-frame region ``rbox`` (4,) (cropped at
    ``config.init_region_size``), ``box`` (4,), ``image_wh`` (2,).
    ``params['backbone']`` is only stored in the state (may be None)."""
    ks = jax.random.split(key, 9)
    s, mem, head, opt_state = first_frame(config, params["head"], params.get("head_lr"),
                                          fmap, box, rbox, image_wh, ks[:8])
    w = (bbreg_lib.fit(s["reg_f"], s["reg"], box, s["reg_ok"], config.bbreg_alpha)
         if config.bbreg else jnp.zeros((s["reg_f"].shape[-1] + 1, 4), jnp.float32))
    # A degenerate fit (e.g. an all-black first frame) must not put NaN in
    # the state: zero weights mean "no refinement".
    w = jnp.where(jnp.all(jnp.isfinite(w)), w, 0.0)
    n = config.n_neg_update
    mem = memory.write_negatives(mem, s["neg_f"][:n], s["neg_ok"][:n], jnp.int32(0),
                                 B.to_relative(s["neg"][:n], box))
    return TrackerState(
        backbone=params["backbone"], head=head, opt_state=opt_state, memory=mem,
        bbreg=w, box=box, frame_index=jnp.zeros((), jnp.int32), key=ks[8],
        widen=jnp.ones((), jnp.float32),
        scores=jnp.ones((config.score_history,), jnp.float32),
        image_wh=image_wh, init_wh=box[2:],
        pending=jnp.asarray(first_frame_iters(config)[1], jnp.int32),
        window=jnp.asarray(config.frames_long, jnp.int32))


def first_frame_iters(config: TrackerConfig) -> tuple[int, int]:
    """(first-frame iterations run by ``init``, iterations left to the next
    frames): ``iters_init`` split at ``iters_init_first`` when the online
    updates run in chunks (``iters_per_frame`` > 0), else all at once."""
    if not config.iters_per_frame:
        return config.iters_init, 0
    now = min(config.iters_init, config.iters_init_first)
    return now, config.iters_init - now


def first_frame(config: TrackerConfig, head: Params, head_lr: Params | None,
                fmap: jax.Array, box: jax.Array, rbox: jax.Array, image_wh: jax.Array,
                keys: jax.Array, first_order: bool = False):
    """The first frame's learning from ``fmap`` of its region ``rbox``: its
    samples (:func:`first_frame_samples`), the sample memory holding its
    positives, and the trained head with its online optimizer state
    (:func:`train_first_frame`). ``keys``: (8,) PRNG keys. Returns
    (samples, memory, head, opt_state)."""
    s = first_frame_samples(config, fmap, box, rbox, image_wh, keys[:7])
    mem = memory.create(s["pos_f"], s["pos_ok"], config.frames_long, config.n_pos_update,
                        config.frames_short, config.n_neg_update)
    head, opt_state = train_first_frame(config, head, head_lr, mem, s["neg_f"], s["neg_ok"],
                                        keys[7], first_order)
    return s, mem, head, opt_state


def first_frame_samples(config: TrackerConfig, fmap: jax.Array, box: jax.Array,
                        rbox: jax.Array, image_wh: jax.Array, keys: jax.Array) -> dict:
    """The first frame's training samples, drawn and pooled from ``fmap`` of
    the first-frame region ``rbox``: ``pos``/``neg``/``reg`` (n, 4) xywh
    boxes (positives, negatives, regression samples), ``*_ok`` (n,) bool and
    ``*_f`` (n, D) pooled features. ``keys``: (7,) PRNG keys."""
    area = region.intersect(rbox, jnp.concatenate([jnp.zeros(2), image_wh]))

    def select(k_sel, cands, lo, hi, n):
        cands = _clip_to_area(cands, area, config.min_box_size)
        return sampling.select_by_iou(k_sel, cands, box, lo, hi, n)

    pos, pos_ok = select(keys[1], sampling.gaussian(
        keys[0], box, 2 * config.n_pos_init, config.pos_trans, config.pos_scale),
        config.pos_iou_init, 1.0, config.n_pos_init)
    half = config.n_neg_init
    neg_pool = jnp.concatenate([
        sampling.uniform(keys[2], box, half, config.neg_trans_init, config.neg_scale_init),
        sampling.whole(keys[3], box, area, half, config.neg_scale_init)])
    neg, neg_ok = select(keys[4], neg_pool, 0.0, config.neg_iou_init, config.n_neg_init)
    reg, reg_ok = select(keys[6], sampling.uniform(
        keys[5], box, 4 * config.n_bbreg, config.bbreg_trans, config.bbreg_scale,
        config.bbreg_aspect),
        config.bbreg_iou, 1.0, config.n_bbreg)
    def pool(boxes):
        return pool_features(config, fmap, region.to_region(boxes, rbox,
                                                            config.init_region_size))

    feats = pool(jnp.concatenate([pos, neg]))
    n_pos = config.n_pos_init
    # regression samples pooled apart: unused outputs (meta-learning) cost nothing
    return {"pos": pos, "pos_ok": pos_ok, "pos_f": feats[:n_pos],
            "neg": neg, "neg_ok": neg_ok, "neg_f": feats[n_pos:],
            "reg": reg, "reg_ok": reg_ok, "reg_f": pool(reg)}


def train_first_frame(config: TrackerConfig, head: Params, head_lr: Params | None,
                      mem: memory.SampleMemory, neg_f: jax.Array, neg_ok: jax.Array,
                      key: jax.Array, first_order: bool = False) -> tuple[Params, Any]:
    """The head after the first frame's SGD steps (:func:`first_frame_iters`:
    ``iters_init``, or ``iters_init_first`` of them) on the positives in
    ``mem`` and the negatives ``neg_f`` (N, D); returns (head, online
    optimizer state). ``head_lr`` None: the config's per-layer rates with
    momentum, whose state carries on into the online updates. Given (a
    meta-learned head's per-element rates, :mod:`jtrack.meta`): plain SGD at
    those rates, and a fresh online optimizer state (or, with
    ``online_rates='learned'``, the rates for the online updates).
    Differentiable in ``head`` and ``head_lr`` (``first_order``: no second
    derivatives)."""
    # All the first frame's negatives form the pool of the initial training.
    init_mem = mem.replace(neg=neg_f[None], neg_valid=neg_ok[None],
                           neg_frame=jnp.zeros((1,), jnp.int32))
    opt_first, _ = optim.tracker_optimizers(config)
    opt = opt_first if head_lr is None else optim.elementwise_sgd(head_lr, first_order)
    head, opt_state, _ = _train(config, opt, head, opt.init(head), init_mem, jnp.int32(0),
                                config.frames_long, key, first_frame_iters(config)[0])
    if config.online_rates == "learned":
        if head_lr is None:
            raise ValueError("online_rates='learned' needs a head with learned rates "
                             "(params['head_lr'], a meta-learned head from jtrack.meta)")
        return head, optim.LearnedRates(head_lr)
    return head, (opt_state if head_lr is None else opt_first.init(head))


def _step_core(config: TrackerConfig, state: TrackerState, region_image: jax.Array,
               rbox: jax.Array, image_wh: jax.Array) -> tuple[TrackerState, TrackOutput]:
    fmap = nets.get_backbone(config.backbone).apply(state.backbone, region_image)
    return _step_from_fmap(config, state, fmap, rbox, image_wh)


def _step_from_fmap(config: TrackerConfig, state: TrackerState, fmap: jax.Array,
                    rbox: jax.Array, image_wh: jax.Array) -> tuple[TrackerState, TrackOutput]:
    """Everything in :func:`step` after the backbone, for ONE target: locate
    and collect samples (:func:`_locate`), then train the head if needed
    (:func:`_update_head`). ``fmap`` (h, w, C) is the backbone output on the
    region ``rbox`` (4,); ``state.backbone`` is not used."""
    state, out, k_upd = _locate(config, state, fmap, rbox, image_wh)
    head, opt_state = jax.lax.cond(
        out.updated, lambda s: _update_head(config, s, k_upd),
        lambda s: (s.head, s.opt_state), state)
    return state.replace(head=head, opt_state=opt_state), out


def _locate(config: TrackerConfig, state: TrackerState, fmap: jax.Array,
            rbox: jax.Array, image_wh: jax.Array, pool=None
            ) -> tuple[TrackerState, TrackOutput, jax.Array]:
    """Steps 1-2 of :func:`step` (score candidates, new box, store samples).
    Returns the state with everything but the head advanced (``pending`` and
    ``window`` say what to train), the output (``updated``: the head must be
    trained now) and the update key.
    ``pool(fmap, region_boxes)``: RoIAlign (default :func:`pool_features`;
    :mod:`jtrack.multi` passes one that runs target by target under vmap)."""
    pool = pool or functools.partial(pool_features, config)
    size = config.region_size
    key, k_cand, k_pos, k_ps, k_neg, k_ns, k_upd = jax.random.split(state.key, 7)
    t = state.frame_index + 1
    image_box = jnp.concatenate([jnp.zeros(2), image_wh])

    # 1. score candidates around the previous box
    cands = _candidates(config, state, k_cand, image_wh)
    feats = pool(fmap, region.to_region(cands, rbox, size))
    box, out_box, score, success, top_boxes, top_p = _pick_box(config, state, cands, feats,
                                                               image_wh)

    # 2. collect samples around the new box from the same feature map
    area = region.intersect(rbox, image_box)
    pos, pos_ok, neg, neg_ok = _training_boxes(config, (k_pos, k_ps, k_neg, k_ns), box,
                                               image_wh, area)
    sample_f = pool(fmap, region.to_region(jnp.concatenate([pos, neg]), rbox, size))
    learning = success & config.online_update & jnp.all(jnp.isfinite(sample_f))
    # Only a frame where the target was found adds samples; otherwise the ring
    # slot keeps its old content and the write head does not move.
    mem = memory.write_negatives(memory.write_positives(
        state.memory, sample_f[:config.n_pos_update], pos_ok, t, learning),
        sample_f[config.n_pos_update:], neg_ok, t, B.to_relative(neg, box), learning)

    # 3. online update (_update_head): short-term after a failure, long-term periodically
    do_update = config.online_update & ((~success) | (t % config.long_interval == 0))
    if config.reextract_negatives:
        mem = jax.lax.cond(do_update, lambda m: _reextract_negatives(
            config, m, fmap, rbox, area, box, pool), lambda m: m, mem)
    widen = jnp.where(success, 1.0, jnp.minimum(state.widen * config.failure_widen,
                                                config.max_widen)).astype(jnp.float32)
    train_now, pending, window = _schedule_update(config, state, do_update, success)
    new_state = state.replace(
        memory=mem, box=box, frame_index=t, key=key,
        widen=widen, scores=jnp.concatenate([state.scores[1:], score[None]]),
        image_wh=image_wh, pending=pending, window=window)
    out = TrackOutput(box=out_box, score=score, success=success, updated=train_now,
                      region=rbox, top_boxes=top_boxes, top_scores=top_p)
    return new_state, out, k_upd


def _schedule_update(config: TrackerConfig, state: TrackerState, do_update: jax.Array,
                     success: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """(train now (), iterations still pending after this frame (), positive
    window ()) when ``do_update`` asks for an update this frame. Spread over
    frames (``iters_per_frame``), a new update restarts the count and a chunk
    runs while any is left."""
    window = jnp.where(do_update, jnp.where(success, config.frames_long, config.frames_short),
                       state.window).astype(jnp.int32)
    if not config.iters_per_frame:
        return do_update, state.pending, window
    pending = jnp.where(do_update, config.iters_update, state.pending)
    return pending > 0, jnp.maximum(pending - config.iters_per_frame, 0), window


def _reextract_negatives(config: TrackerConfig, mem: memory.SampleMemory,
                         fmap: jax.Array, rbox: jax.Array, area: jax.Array,
                         box: jax.Array, pool=None) -> memory.SampleMemory:
    """``reextract_negatives``: every stored negative re-pooled from this
    frame's feature map ``fmap`` (of region ``rbox``), placed around ``box``
    as it was around its own frame's target and clipped to ``area`` like new
    negatives. py-MDNet never does this (it keeps old features; re-cropping
    old frames would need their images); the region-once equivalent is this
    frame's appearance at the old negatives' relative placements. Validity
    is kept as stored (the IoU to the target is unchanged by the relative
    placement, up to the clipping)."""
    boxes = _clip_to_area(B.from_relative(mem.neg_rel.reshape(-1, 4), box), area,
                          config.min_box_size)
    pool = pool or functools.partial(pool_features, config)  # as in _locate
    feats = pool(fmap, region.to_region(boxes, rbox, config.region_size))
    feats = jnp.where(jnp.isfinite(feats), feats, 0.0)
    return mem.replace(neg=feats.reshape(mem.neg.shape).astype(mem.neg.dtype))


def _update_head(config: TrackerConfig, state: TrackerState,
                 key: jax.Array) -> tuple[Params, Any]:
    """Step 3 of :func:`step`: online update of the head from the memory of
    ``state`` (already holding this frame's samples) over its positive
    ``window`` (short-term after a failure, long-term otherwise):
    ``iters_update`` iterations, or ``iters_per_frame`` of them when the
    update is spread over frames. Returns (head, opt_state)."""
    _, opt_update = optim.tracker_optimizers(config)
    head, opt_state, _ = _train(config, opt_update, state.head, state.opt_state,
                                state.memory, state.frame_index, state.window, key,
                                config.iters_per_frame or config.iters_update)
    # A diverged update is dropped rather than carried into every later frame.
    ok = jnp.all(jnp.asarray([jnp.all(jnp.isfinite(x)) for x in jax.tree.leaves(head)]))
    return jax.tree.map(lambda new, old: jnp.where(ok, new, old),
                        (head, opt_state), (state.head, state.opt_state))


# ----------------------------------------------------------------------------
# jitted entry points with input checks at the boundary


@stored_jit(static_argnums=3)
def _crop_region(frame, box, scale, size):
    """Region box and its resampled image; the only part compiled per frame size."""
    rbox = region.region_box(box, scale)
    wh = jnp.asarray([frame.shape[1], frame.shape[0]], jnp.float32)
    image = region.crop(frame, rbox, size)
    if jnp.issubdtype(frame.dtype, jnp.floating):
        # Concrete frames with NaN/inf are rejected by _check_frame; a frame
        # traced under the caller's jit/vmap cannot be, so such pixels count
        # as black and never reach the network.
        image = jnp.clip(jnp.nan_to_num(image, nan=0.0, posinf=255.0, neginf=0.0), 0.0, 255.0)
    return image, rbox, wh


@stored_jit(static_argnums=2)
def _visible(boxes: jax.Array, image_wh: jax.Array, min_size: float) -> jax.Array:
    """The visible part of ``(..., 4)`` xywh boxes in a ``(2,)`` W, H frame,
    grown to ``min_size`` inside it: not the box shifted inside, which
    would make the first frame's positives partly background."""
    lo = jnp.maximum(boxes[..., :2], 0.0)
    hi = jnp.minimum(boxes[..., :2] + boxes[..., 2:], image_wh)
    return B.clip_to_image(jnp.concatenate([lo, hi - lo], -1), image_wh, min_size)


_init_region_jit = stored_jit(_init_from_region, static_argnums=0)


def _init_jit(config: TrackerConfig, params: dict, frame: jax.Array, box: jax.Array,
              key: jax.Array) -> TrackerState:
    """Jitted :func:`_init_core`, split like :func:`step`: only the cheap crop
    is compiled per frame size."""
    region_image, rbox, image_wh = _crop_region(frame, box, config.init_region_scale,
                                                config.init_region_size)
    return _init_region_jit(config, params, region_image, rbox, image_wh, box, key)
_step_jit = stored_jit(_step_core, static_argnums=0, donate_argnums=1)


def seed_key(seed: int) -> jax.Array:
    """``jax.random.key(seed)``, made on the host when the default
    threefry keys allow it (no small program to compile at start)."""
    if jax.config.jax_default_prng_impl == "threefry2x32" and 0 <= seed < 2**32:
        return jax.random.wrap_key_data(np.array([0, seed], np.uint32))
    return jax.random.key(seed)


def _as_key(key) -> jax.Array:
    key = jnp.asarray(key) if not isinstance(key, jax.Array) else key
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return key
    if key.dtype == jnp.uint32 and key.shape == (2,):
        return jax.random.wrap_key_data(key)
    raise TypeError(f"expected a PRNG key from jax.random.key(...), got "
                    f"dtype {key.dtype} shape {key.shape}")


def _check_config(config) -> None:
    if not isinstance(config, TrackerConfig):
        raise TypeError(f"config must be a jtrack.TrackerConfig, got {type(config).__name__}")


def _check_frame(frame) -> jax.Array | np.ndarray:
    dtype = getattr(frame, "dtype", None)
    if dtype is None:
        raise TypeError(f"frame must be a numpy or jax array, got {type(frame).__name__}")
    shape = np.shape(frame)
    if len(shape) != 3 or shape[2] != 3:
        raise ValueError(f"frame must be an (H, W, 3) RGB array, got shape {shape} "
                         "(convert gray/RGBA with jtrack.data.to_rgb_uint8)")
    if shape[0] < 1 or shape[1] < 1:
        raise ValueError(f"frame is empty: shape {shape}")
    if dtype not in (np.uint8, np.float32):
        raise TypeError(f"frame must be uint8 (or float32 in [0, 255]), got {dtype}")
    if dtype == np.float32 and not isinstance(frame, jax.core.Tracer):
        finite = np.asarray(jnp.isfinite(frame) if isinstance(frame, jax.Array)
                            else np.isfinite(frame))
        if not finite.all():
            r, c, _ = np.argwhere(~finite)[0]
            raise ValueError(f"frame has {int(finite.size - finite.sum())} non-finite "
                             f"values (NaN/inf), the first at row {r}, column {c}")
    # A host frame stays on the host: the jitted programs take it as it is,
    # with no small conversion program to compile first.
    return frame if isinstance(frame, jax.Array) else np.asarray(frame)


@functools.lru_cache(maxsize=None)
def _expected_params(backbone: str, in_dim: int, hidden: int) -> dict | None:
    """Nested dict of expected parameter shapes (``jax.eval_shape``: no
    compute), or None when a custom backbone cannot be traced abstractly."""
    bb = nets.get_backbone(backbone)
    try:
        shapes = jax.eval_shape(lambda k: {
            "backbone": bb.init(k),
            "head": nets.init_head(k, in_dim, hidden)}, seed_key(0))
    except Exception:  # noqa: BLE001 - only a convenience check
        return None
    return jax.tree.map(lambda a: tuple(a.shape), shapes)


def _check_tree(got, want, path: str, what: str) -> None:
    if isinstance(want, dict):
        if not isinstance(got, dict) and not hasattr(got, "keys"):
            raise TypeError(f"{what}: {path} must be a dict of layers, got {type(got).__name__}")
        for k, sub in want.items():
            if k not in got:
                raise ValueError(f"{what}: missing {path}[{k!r}] (layer expected by the "
                                 f"config; have {sorted(got)})")
            _check_tree(got[k], sub, f"{path}[{k!r}]", what)
        return
    shape = tuple(np.shape(got)) if hasattr(got, "shape") else None
    if shape != want:
        raise ValueError(f"{what}: {path} has shape {shape}, expected {want}")


def _check_params(config: TrackerConfig, params) -> None:
    if not hasattr(params, "keys") or not {"backbone", "head"} <= set(params.keys()):
        got = sorted(params.keys()) if hasattr(params, "keys") else type(params).__name__
        raise TypeError("params must be a dict {'backbone': ..., 'head': ...} as from "
                        f"jtrack.init_params; got {got}")
    # The likeliest mismatch (head made for another backbone/roi_size) gets
    # its own message; a missing fc4 is reported by the tree check below.
    fc4 = params["head"].get("fc4") if hasattr(params["head"], "get") else None
    if hasattr(fc4, "get") and hasattr(fc4.get("kernel"), "shape"):
        expected, got = feature_dim(config), np.shape(fc4["kernel"])[0]
        if got != expected:
            raise ValueError(f"head fc4 expects {got} inputs but backbone "
                             f"{config.backbone!r} with roi_size {config.roi_size} "
                             f"gives {expected}")
    want = _expected_params(config.backbone, feature_dim(config), config.hidden)
    if want is not None:
        _check_tree(params, want, "params", f"params for backbone {config.backbone!r}")
    if "head_lr" in params:  # per-element first-frame rates (jtrack.meta)
        _check_tree(params["head_lr"], jax.tree.map(lambda a: tuple(np.shape(a)),
                                                    dict(params["head"])),
                    "params['head_lr']", "first-frame rates (one per head element)")


def _check_state(config: TrackerConfig, state) -> None:
    if not isinstance(state, TrackerState):
        raise TypeError("state must be the TrackerState returned by jtrack.init or "
                        f"jtrack.step, got {type(state).__name__}")
    if isinstance(state.box, jax.Array) and not isinstance(state.box, jax.core.Tracer) \
            and state.box.is_deleted():
        raise ValueError("this TrackerState was already consumed by jtrack.step (its "
                         "buffers are donated); pass the state that step returned")
    m = state.memory
    have = (np.shape(state.scores)[-1:], np.shape(m.pos)[-3:-1], np.shape(m.neg)[-3:-1],
            np.shape(m.pos)[-1:])
    want = ((config.score_history,), (config.frames_long, config.n_pos_update),
            (config.frames_short, config.n_neg_update), (feature_dim(config),))
    if have != want:
        raise ValueError("state was made with a different TrackerConfig: (score_history, "
                         "(frames_long, n_pos_update), (frames_short, n_neg_update), "
                         f"feature dim) are {have} in the state but {want} in the config")


def _check_box(box, image_wh) -> np.ndarray:
    try:
        b = np.asarray(box, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"box must be 4 numbers x, y, w, h; got {box!r}") from e
    if b.shape != (4,):
        raise ValueError(f"box must have shape (4,) as x, y, w, h; got shape {b.shape}")
    if not np.all(np.isfinite(b)):
        raise ValueError(f"box has non-finite values: {b.tolist()}")
    if b[2] <= 0 or b[3] <= 0:
        raise ValueError(f"box must have positive width and height, got w={b[2]}, h={b[3]}")
    w, h = image_wh
    if b[0] >= w or b[1] >= h or b[0] + b[2] <= 0 or b[1] + b[3] <= 0:
        raise ValueError(f"box {b.tolist()} lies entirely outside the {w}x{h} frame")
    return b.astype(np.float32)


def init(config: TrackerConfig, params: dict, frame, box, key) -> TrackerState:
    """Start tracking ``box`` ((4,) xywh, 0-based pixels) in ``frame``
    ((H, W, 3) uint8). Trains the head on the first frame; returns the state.

    Boxes partly outside the frame (or larger than it) are cut to their
    visible part (then grown to ``min_box_size`` inside the frame if
    smaller); boxes wholly outside, empty or non-finite raise ``ValueError``."""
    _check_config(config)
    frame = _check_frame(frame)
    box = _check_box(box, (frame.shape[1], frame.shape[0]))
    _check_params(config, params)
    box = _visible(box, np.asarray([frame.shape[1], frame.shape[0]], np.float32),
                   config.min_box_size)
    return _init_jit(config, params, frame, box, _as_key(key))


def step(config: TrackerConfig, state: TrackerState, frame
         ) -> tuple[TrackerState, TrackOutput]:
    """Track one frame. Pure; consumes ``state`` (its buffers are donated).

    The output box is always finite, at least ``min(min_box_size, frame
    side)`` pixels a side and inside ``frame`` (whose size may change
    between steps); the score is finite."""
    _check_config(config)
    _check_state(config, state)
    frame = _check_frame(frame)
    region_image, rbox, image_wh = _crop_region(
        frame, state.box, config.region_scale * state.widen, config.region_size)
    return _step_jit(config, state, region_image, rbox, image_wh)
