"""Loss, metrics and the data-parallel SGD step of multi-domain pretraining.

One iteration (:func:`make_step`): for each of the B frames draw ``n_pos``
Gaussian positives (IoU >= ``pos_iou``) and ``n_neg`` uniform negatives
(IoU <= ``neg_iou``, inside the search region) with :mod:`jtrack.sampling`,
pool their features from the frame's feature map, score them with the
drawn domain's branch (dropout on), and take one SGD step with per-layer
learning rates (:func:`jtrack.optim.make_optimizer`). As in py-MDNet the
other domains' fc6 branches get a zero gradient (momentum and weight decay
still act on them).

Data parallel: the B frames are split over the mesh axis
(:func:`jtrack.parallel.sharded`), parameters and optimizer state are
replicated; the loss is the mean over ALL samples of the batch, so XLA's
all-reduce of the gradient is the average over devices and the result equals
the single-device step up to float summation order.

Metrics (sums, so any number of batches combine exactly, see
:func:`summarize`): ``loss``; PR = precision of the target class (p > 0.5);
RR = recall of the positives; TrackTopKAcc = fraction of frames where the
mean of the ``top_k`` highest-scoring samples (the tracker's estimate) has
IoU >= 0.5 with the ground truth.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence as Seq
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jtrack import boxes as B
from jtrack import optim, parallel, region, sampling
from jtrack.learn import target_prob
from jtrack.pretrain import model
from jtrack.pretrain.config import PretrainConfig
from jtrack.pretrain.data import Domain, draw, host_batch
from jtrack.tracker import _clip_to_area



def make_optimizer(config: PretrainConfig) -> optax.GradientTransformation:
    return optim.make_optimizer(config.layer_lr, config.lr, momentum=config.momentum,
                                weight_decay=config.weight_decay,
                                grad_clip=config.grad_clip)


def sample_frame(config: PretrainConfig, key: jax.Array, gt: jax.Array, rbox: jax.Array,
                 image_wh: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Training samples of one frame: frame boxes (P + N, 4) xywh (positives
    first), region-pixel boxes (P + N, 4) and valid (P + N,) bool."""
    tc = config.tracker
    kp, ksp, kn, ksn = jax.random.split(key, 4)
    area = region.intersect(rbox, jnp.concatenate([jnp.zeros(2), image_wh]))
    pos, pos_ok = sampling.select_by_iou(ksp, B.clip_to_image(
        sampling.gaussian(kp, gt, 2 * config.n_pos, config.pos_trans, config.pos_scale),
        image_wh, tc.min_box_size), gt, config.pos_iou, 1.0, config.n_pos)
    neg, neg_ok = sampling.select_by_iou(ksn, _clip_to_area(
        sampling.uniform(kn, gt, 4 * config.n_neg, config.neg_trans, config.neg_scale),
        area, tc.min_box_size), gt, 0.0, config.neg_iou, config.n_neg)
    frame_boxes = jnp.concatenate([pos, neg])
    return (frame_boxes, region.to_region(frame_boxes, rbox, tc.region_size),
            jnp.concatenate([pos_ok, neg_ok]))


def _forward(config: PretrainConfig, params, batch: dict, key: jax.Array, train: bool):
    """Sample, pool, score one batch. Returns (loss, (metrics, ))."""
    k_samp, k_drop = jax.random.split(key)
    n_frames = batch["gt"].shape[0]
    frame_boxes, region_boxes, valid = jax.vmap(
        lambda k, g, r, wh: sample_frame(config, k, g, r, wh))(
        jax.random.split(k_samp, n_frames), batch["gt"], batch["rbox"], batch["image_wh"])
    fmaps = model.feature_maps(config, params, batch)
    if not config.train_backbone:
        fmaps = jax.lax.stop_gradient(fmaps)
    feats = model.frame_features(config, fmaps, region_boxes)  # (B, M, D)
    m = feats.shape[1]
    flat = feats.reshape(n_frames * m, -1)
    logits = model.logits(config, params, flat, batch["domain"], k_drop if train else None)
    is_pos = jnp.broadcast_to(jnp.arange(m) < config.n_pos, (n_frames, m))
    w = (valid & (batch["frame_valid"][:, None] > 0)).astype(jnp.float32)
    logp = jax.nn.log_softmax(logits).reshape(n_frames, m, 2)
    nll = -jnp.where(is_pos, logp[..., 1], logp[..., 0])
    loss = jnp.sum(w * nll) / jnp.maximum(jnp.sum(w), 1.0)

    # metrics on the same samples, without dropout
    eval_logits = logits if not train else model.logits(
        config, jax.lax.stop_gradient(params), flat, batch["domain"])
    prob = target_prob(jax.lax.stop_gradient(eval_logits)).reshape(n_frames, m)
    pred = prob > 0.5
    ranked = jnp.where(w > 0, prob, -1.0)
    top = jax.lax.top_k(ranked, config.top_k)[1]  # (B, K)
    est = jnp.mean(jnp.take_along_axis(frame_boxes, top[..., None], axis=1), axis=1)
    hit = (B.iou(est, batch["gt"]) >= 0.5) & (batch["frame_valid"] > 0)
    metrics = {
        "loss_sum": jax.lax.stop_gradient(loss) * jnp.sum(w), "n_samples": jnp.sum(w),
        "tp": jnp.sum(w * (pred & is_pos)), "pred_pos": jnp.sum(w * pred),
        "n_pos": jnp.sum(w * is_pos), "topk_hits": jnp.sum(hit.astype(jnp.float32)),
        "frames": jnp.sum(batch["frame_valid"]),
    }
    return loss, metrics


def batch_shardings(mesh, batch: dict) -> dict:
    """Frames split over the mesh, the domain index replicated."""
    return {k: (parallel.replicated(mesh) if k == "domain" else parallel.sharded(mesh))
            for k in batch}


@functools.lru_cache(maxsize=16)
def make_step(config: PretrainConfig, mesh) -> Callable:
    """``step(params, opt_state, batch, key) -> (params, opt_state, metrics)``,
    jitted over ``mesh`` (params/opt_state replicated, frames sharded;
    ``frames_per_batch`` must divide by the mesh size), optimizer
    :func:`make_optimizer`. Donates params and opt_state. Cached per
    (config, mesh), so repeated calls reuse one compilation."""
    check_split("frames_per_batch", config.frames_per_batch, mesh)
    return sharded_step(lambda p, b, k: _forward(config, p, b, k, True),
                        make_optimizer(config), mesh)


@functools.lru_cache(maxsize=16)
def make_eval(config: PretrainConfig, mesh) -> Callable:
    """``evaluate(params, batch, key) -> metrics`` (no dropout, no update)."""
    return sharded_eval(lambda p, b, k: _forward(config, p, b, k, False)[1], mesh)


def check_split(name: str, n: int, mesh) -> None:
    if n % mesh.devices.size:
        raise ValueError(f"{name} {n} does not split evenly over {mesh.devices.size} devices")


def sharded_step(loss_fn: Callable, optimizer: optax.GradientTransformation, mesh
                 ) -> Callable:
    """One data-parallel SGD step of ``loss_fn(params, batch, key) -> (loss,
    metrics)``: ``step(params, opt_state, batch, key) -> (params, opt_state,
    metrics)`` jitted over ``mesh``, the batch's leading axis split
    (:func:`batch_shardings`), params and optimizer state replicated and
    donated. The loss is a mean over the whole batch, so XLA's all-reduce of
    the gradient is the single-device gradient."""
    rep = parallel.replicated(mesh)

    def step(params, opt_state, batch, key):
        (_, metrics), grads = jax.value_and_grad(
            lambda p: loss_fn(p, batch, key), has_aux=True)(params)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, metrics

    jitted = jax.jit(step, out_shardings=(rep, rep, rep), donate_argnums=(0, 1))

    def run(params, opt_state, batch, key):
        batch = jax.device_put(batch, batch_shardings(mesh, batch))
        return jitted(params, opt_state, batch, key)

    return run


def sharded_eval(metrics_fn: Callable, mesh) -> Callable:
    """``metrics_fn(params, batch, key)`` jitted over ``mesh`` like
    :func:`sharded_step`, without an update."""
    jitted = jax.jit(metrics_fn, out_shardings=parallel.replicated(mesh))

    def run(params, batch, key):
        return jitted(params, jax.device_put(batch, batch_shardings(mesh, batch)), key)

    return run


def metric_ratios(metrics: Seq[dict], ratios: dict[str, tuple[str, str]]) -> dict[str, float]:
    """Sum per-batch metric dicts (sums, so any batches combine exactly) and
    return ``{name: total[a] / total[b]}`` for ``ratios = {name: (a, b)}``
    (NaN where ``total[b]`` is 0)."""
    keys = {k for pair in ratios.values() for k in pair}
    tot = {k: float(sum(np.asarray(m[k]) for m in metrics)) for k in keys}
    return {name: tot[a] / tot[b] if tot[b] > 0 else float("nan")
            for name, (a, b) in ratios.items()}


def summarize(metrics: Seq[dict]) -> dict[str, float]:
    """Sum per-batch metric dicts -> {'loss', 'PR', 'RR', 'TrackTopKAcc'}."""
    return metric_ratios(metrics, {"loss": ("loss_sum", "n_samples"), "PR": ("tp", "pred_pos"),
                                   "RR": ("tp", "n_pos"),
                                   "TrackTopKAcc": ("topk_hits", "frames")})


# ----------------------------------------------------------------------------
# the training state and loop


def init_state(config: PretrainConfig, n_domains: int, seed: int, data_seed: int,
               mesh) -> dict:
    """``{'params', 'opt_state', 'step' () int32, 'key' (2,) uint32,
    'data_seed' () int64}``, replicated over ``mesh``."""
    k_init, k_train = jax.random.split(jax.random.key(seed))
    state = _init_jit(config, n_domains, mesh)(k_init)  # one compilation, not op by op
    state.update(step=np.int32(0), key=np.asarray(jax.random.key_data(k_train)),
                 data_seed=np.int64(data_seed))
    return parallel.replicate(state, mesh)


@functools.lru_cache(maxsize=16)
def _init_jit(config: PretrainConfig, n_domains: int, mesh) -> Callable:
    def init(key):
        params = model.init_params(config, n_domains, key)
        return {"params": params, "opt_state": make_optimizer(config).init(params)}

    return jax.jit(init, out_shardings=parallel.replicated(mesh))


def step_key(state: dict) -> jax.Array:
    """The model PRNG key of the state's current step (sampling + dropout)."""
    return jax.random.fold_in(jax.random.wrap_key_data(jnp.asarray(state["key"])),
                              int(state["step"]))


def train_steps(config: PretrainConfig, state: dict, domains: Seq[Domain], n_steps: int,
                step_fn: Callable, on_step: Callable[[int, dict], Any] | None = None
                ) -> tuple[dict, list[dict]]:
    """Advance ``state`` by ``n_steps`` iterations. Each iteration's batch and
    key depend only on (data_seed, key, step), so stopping and resuming from a
    saved state gives the same continuation. ``on_step(step, state)`` runs
    after each step (checkpointing, progress). Returns (state, metrics)."""
    data_seed = int(state["data_seed"])

    def batch_at(s):
        d, idx = draw(domains, config.frames_per_batch, data_seed, s)
        return host_batch(config, domains[d], d, idx)

    return run_steps(state, batch_at, n_steps, step_fn, on_step)


def run_steps(state: dict, batch_at: Callable[[int], dict], n_steps: int,
              step_fn: Callable, on_step: Callable[[int, dict], Any] | None = None
              ) -> tuple[dict, list[dict]]:
    """The loop of :func:`train_steps` for any batches: ``batch_at(step)``
    must be a pure function of the step (exact resume); ``state`` holds
    ``params``, ``opt_state``, ``step`` and ``key``."""
    out = []
    for _ in range(n_steps):
        s = int(state["step"])
        params, opt_state, metrics = step_fn(state["params"], state["opt_state"],
                                             batch_at(s), step_key(state))
        state = dict(state, params=params, opt_state=opt_state, step=np.int32(s + 1))
        out.append(metrics)
        if on_step is not None:
            on_step(s + 1, state)
    return state, out


def evaluate(config: PretrainConfig, params, batches, eval_fn: Callable,
             key: jax.Array) -> dict[str, float]:
    """Metrics of ``params`` over host batches (e.g. :func:`data.held_batches`)."""
    ms = [eval_fn(params, b, jax.random.fold_in(key, i)) for i, b in enumerate(batches)]
    return summarize(ms) if ms else {}
