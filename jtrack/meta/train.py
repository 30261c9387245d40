"""Meta-loss, meta-gradient and the data-parallel meta-step.

Per episode (:func:`episode_loss`): the tracker's own first frame
(:func:`jtrack.tracker.first_frame`: its samples, then ``iters_init`` SGD
steps at the per-element rates, hard negative mining and dropout included)
adapts the initial head, which then scores positives and negatives of the
query frames. The meta-loss is their cross-entropy; ``jax.grad`` differentiates it through the inner loop in the
initial head and the rates. A meta-step averages it over a batch of
episodes split over the mesh (meta-parameters replicated), like
:func:`jtrack.pretrain.make_step`.

Metrics (sums over episodes, see :func:`summarize`): the query loss after
adaptation (``loss``) and before it (``loss_before``: the initial head as
is), and ``TrackTopKAcc``: the share of query frames where the mean of the
top-K samples has IoU >= 0.5 with the ground truth.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence as Seq

import jax
import jax.numpy as jnp
import numpy as np
import optax

from jtrack import boxes as B
from jtrack import nets, parallel
from jtrack import tracker as T
from jtrack.learn import target_prob
from jtrack.meta.config import MetaConfig
from jtrack.meta.data import MetaDomain, draw, host_batch
from jtrack.pretrain import model
from jtrack.pretrain.train import (check_split, metric_ratios, run_steps, sample_frame,
                                   sharded_eval, sharded_step)
Params = dict


def init_meta_params(config: MetaConfig, key: jax.Array, head: Params | None = None
                     ) -> Params:
    """``{'head', 'head_lr'}``: the initial head (random from ``key``, or
    ``head``, e.g. a pretrained one) and its per-element rates, starting at
    ``init_rate`` x the tracker's ``layer_lr`` multiplier of each layer."""
    tc = config.tracker
    if head is None:
        head = nets.init_head(key, T.feature_dim(tc), tc.hidden)
    mult = dict(tc.layer_lr)
    rates = {layer: jax.tree.map(
        lambda a, m=mult.get(layer, 0.0): jnp.full(np.shape(a), config.init_rate * m,
                                                   jnp.float32), sub)
             for layer, sub in head.items()}
    return {"head": jax.tree.map(jnp.asarray, head), "head_lr": rates}


def make_optimizer(config: MetaConfig) -> optax.GradientTransformation:
    """Adam at ``meta_lr`` on the initial head and ``rate_lr`` on the rates,
    after a global-norm clip."""
    chain = [optax.clip_by_global_norm(config.grad_clip)] if config.grad_clip > 0 else []
    chain.append(optax.multi_transform(
        {"head": optax.adam(config.meta_lr), "head_lr": optax.adam(config.rate_lr)},
        lambda p: {k: jax.tree.map(lambda _, k=k: k, v) for k, v in p.items()}))
    return optax.chain(*chain)


def adapt(config: MetaConfig, meta: Params, fmap: jax.Array, box: jax.Array,
          rbox: jax.Array, image_wh: jax.Array, key: jax.Array) -> Params:
    """The head after the tracker's first-frame training from ``meta`` on
    ``fmap`` (h0, w0, C), the feature map of the first-frame region ``rbox``:
    what ``jtrack.init`` with the same key gives."""
    ks = jax.random.split(key, 9)  # as jtrack.init splits its key: the same draws
    return T.first_frame(config.tracker, meta["head"], meta["head_lr"], fmap, box, rbox,
                         image_wh, ks[:8], config.first_order)[2]


def episode_loss(config: MetaConfig, meta: Params, ep: dict, key: jax.Array
                 ) -> tuple[jax.Array, dict]:
    """(query loss after adaptation, metrics) of one episode (one row of
    :func:`jtrack.meta.data.host_batch`)."""
    tc, pc = config.tracker, config.pretrain
    k_adapt, k_query = jax.random.split(key)
    head = adapt(config, meta, ep["init_fmap"], ep["init_gt"], ep["init_rbox"],
                 ep["init_wh"], k_adapt)
    nq = ep["q_gt"].shape[0]
    boxes, rboxes, ok = jax.vmap(lambda k, g, r, wh: sample_frame(pc, k, g, r, wh))(
        jax.random.split(k_query, nq), ep["q_gt"], ep["q_rbox"], ep["q_wh"])
    feats = model.frame_features(pc, ep["q_fmap"], rboxes)  # (Q, M, D)
    m = feats.shape[1]
    is_pos = jnp.broadcast_to(jnp.arange(m) < pc.n_pos, (nq, m))
    w = ok.astype(jnp.float32)

    def loss_and_logits(h):
        logits = nets.head_logits(h, feats.reshape(nq * m, -1), hidden=tc.hidden)
        logp = jax.nn.log_softmax(logits).reshape(nq, m, 2)
        nll = -jnp.where(is_pos, logp[..., 1], logp[..., 0])
        return jnp.sum(w * nll) / jnp.maximum(jnp.sum(w), 1.0), logits

    loss, logits = loss_and_logits(head)
    loss_before, _ = loss_and_logits(jax.lax.stop_gradient(meta["head"]))
    prob = target_prob(jax.lax.stop_gradient(logits)).reshape(nq, m)
    top = jax.lax.top_k(jnp.where(ok, prob, -1.0), pc.top_k)[1]
    est = jnp.mean(jnp.take_along_axis(boxes, top[..., None], axis=1), axis=1)
    hits = jnp.sum((B.iou(est, ep["q_gt"]) >= 0.5).astype(jnp.float32))
    return loss, {"loss": jax.lax.stop_gradient(loss), "loss_before": loss_before,
                  "hits": hits, "queries": jnp.float32(nq)}


def _batch_loss(config: MetaConfig, meta: Params, batch: dict, key: jax.Array):
    valid = batch["valid"]
    n = valid.shape[0]
    losses, ms = jax.vmap(lambda ep, k: episode_loss(config, meta, ep, k))(
        {k: v for k, v in batch.items() if k != "valid"}, jax.random.split(key, n))
    loss = jnp.sum(valid * losses) / jnp.maximum(jnp.sum(valid), 1.0)
    metrics = {"loss_sum": jnp.sum(valid * ms["loss"]),
               "loss_before_sum": jnp.sum(valid * ms["loss_before"]),
               "hits": jnp.sum(valid * ms["hits"]), "queries": jnp.sum(valid * ms["queries"]),
               "episodes": jnp.sum(valid)}
    return loss, metrics


def meta_grad(config: MetaConfig, meta: Params, batch: dict, key: jax.Array
              ) -> tuple[jax.Array, Params]:
    """(mean meta-loss of ``batch``, its gradient in ``meta``)."""
    (loss, _), grads = jax.value_and_grad(
        lambda p: _batch_loss(config, p, batch, key), has_aux=True)(meta)
    return loss, grads


@functools.lru_cache(maxsize=16)
def make_step(config: MetaConfig, mesh) -> Callable:
    """``step(meta, opt_state, batch, key) -> (meta, opt_state, metrics)``
    jitted over ``mesh`` (meta-parameters replicated, episodes split;
    ``episodes_per_batch`` must divide by the mesh size). Cached per
    (config, mesh)."""
    check_split("episodes_per_batch", config.episodes_per_batch, mesh)
    return sharded_step(lambda p, b, k: _batch_loss(config, p, b, k),
                        make_optimizer(config), mesh)


@functools.lru_cache(maxsize=16)
def make_eval(config: MetaConfig, mesh) -> Callable:
    """``evaluate(meta, batch, key) -> metrics`` (no update)."""
    return sharded_eval(lambda p, b, k: _batch_loss(config, p, b, k)[1], mesh)


def summarize(metrics: Seq[dict]) -> dict[str, float]:
    """Sum per-batch metrics -> {'loss', 'loss_before', 'TrackTopKAcc'}."""
    return metric_ratios(metrics, {"loss": ("loss_sum", "episodes"),
                                   "loss_before": ("loss_before_sum", "episodes"),
                                   "TrackTopKAcc": ("hits", "queries")})


def init_state(config: MetaConfig, seed: int, data_seed: int, mesh,
               head: Params | None = None) -> dict:
    """``{'params': {'head', 'head_lr'}, 'opt_state', 'step', 'key',
    'data_seed'}`` replicated over ``mesh`` (the layout of
    :func:`jtrack.pretrain.init_state`, so its loop and checkpoints serve)."""
    k_init, k_train = jax.random.split(jax.random.key(seed))
    meta = init_meta_params(config, k_init, head)
    state = {"params": meta, "opt_state": make_optimizer(config).init(meta),
             "step": np.int32(0), "key": np.asarray(jax.random.key_data(k_train)),
             "data_seed": np.int64(data_seed)}
    return parallel.replicate(state, mesh)


def train_steps(config: MetaConfig, state: dict, domains: Seq[MetaDomain], n_steps: int,
                step_fn: Callable, on_step: Callable[[int, dict], object] | None = None
                ) -> tuple[dict, list[dict]]:
    """Advance ``state`` by ``n_steps`` meta-steps; batches depend only on
    (data_seed, step), so a resumed run continues exactly."""
    data_seed = int(state["data_seed"])

    def batch_at(s):
        d, js, qs = draw(config, domains, data_seed, s)
        return host_batch(domains[d], js, qs)

    return run_steps(state, batch_at, n_steps, step_fn, on_step)


def evaluate(meta: Params, batches, eval_fn: Callable, key: jax.Array) -> dict[str, float]:
    """Metrics of ``meta`` over host batches (e.g. :func:`data.held_batches`)."""
    ms = [eval_fn(meta, b, jax.random.fold_in(key, i)) for i, b in enumerate(batches)]
    return summarize(ms) if ms else {}
