"""The multi-domain network: shared backbone + fc4/fc5, one fc6 per domain.

Parameters are a plain dict ``{'fc4', 'fc5', 'fc6'[, 'backbone']}`` whose
fc4/fc5 have exactly the tracker head's layout (:func:`jtrack.nets.init_head`)
and whose ``fc6`` stacks one branch per domain: ``kernel (K, hidden, 2)``,
``bias (K, 2)``. ``backbone`` is present only when it is trained (only its
last ``backbone_blocks`` blocks' keys when those alone train); a frozen
backbone's feature maps, or the untrained front's output, are computed once
per frame (:mod:`jtrack.pretrain.data`).
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jtrack import nets
from jtrack.pretrain.config import PretrainConfig
from jtrack.tracker import feature_dim, pool_features

Params = Any


def init_params(config: PretrainConfig, n_domains: int, key: jax.Array) -> Params:
    """Random fc4/fc5, ``n_domains`` fc6 branches (N(0, 0.01) kernels like the
    tracker's fc6) and, when trained, the backbone's own (pretrained) init."""
    if n_domains < 1:
        raise ValueError(f"need at least one domain, got {n_domains}")
    tc = config.tracker
    kh, k6, kb = jax.random.split(key, 3)
    head = nets.init_head(kh, feature_dim(tc), tc.hidden)
    params = {"fc4": head["fc4"], "fc5": head["fc5"],
              "fc6": {"kernel": 0.01 * jax.random.normal(k6, (n_domains, tc.hidden, 2)),
                      "bias": jnp.zeros((n_domains, 2), jnp.float32)}}
    if config.train_backbone:
        full = nets.get_backbone(tc.backbone).init(kb)
        keys = split(config).tail_keys if config.backbone_blocks else tuple(full)
        params["backbone"] = {k: full[k] for k in keys}
    return params


def split(config: PretrainConfig) -> nets.BackboneSplit:
    """The tracker's backbone cut before its last ``backbone_blocks`` blocks."""
    return nets.get_backbone(config.tracker.backbone).cut(config.backbone_blocks)


def branch(params: Params, domain: jax.Array) -> Params:
    """The tracker-layout head ``{'fc4', 'fc5', 'fc6'}`` of one domain."""
    return {"fc4": params["fc4"], "fc5": params["fc5"],
            "fc6": jax.tree.map(lambda a: a[domain], params["fc6"])}


def feature_maps(config: PretrainConfig, params: Params, batch: dict) -> jax.Array:
    """(B, h, w, C) feature maps: cached ``batch['fmap']``, the trained tail
    applied to the cached front output ``batch['mid']``, or the trained
    backbone applied to ``batch['image']`` (B, S, S, 3)."""
    if "fmap" in batch:
        return batch["fmap"]
    if "mid" in batch:
        return split(config).tail(params["backbone"], batch["mid"])
    bb = nets.get_backbone(config.tracker.backbone)
    return bb.apply(params["backbone"], batch["image"].astype(jnp.float32))


def frame_features(config: PretrainConfig, fmaps: jax.Array, region_boxes: jax.Array
                   ) -> jax.Array:
    """(B, h, w, C) maps, (B, M, 4) region-pixel boxes -> (B, M, D) pooled
    features, exactly as the tracker pools them."""
    return jax.vmap(lambda f, b: pool_features(config.tracker, f, b))(fmaps, region_boxes)


def logits(config: PretrainConfig, params: Params, feats: jax.Array, domain: jax.Array,
           dropout_key: jax.Array | None = None) -> jax.Array:
    """(N, D) features -> (N, 2) logits of ``domain``'s branch; dropout iff
    ``dropout_key`` is given."""
    tc = config.tracker
    return nets.head_logits(branch(params, domain), feats, hidden=tc.hidden,
                            dropout=tc.dropout, key=dropout_key)
