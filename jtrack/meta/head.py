"""The meta-learned head file: the initial head and its per-element
first-frame rates, in the pretrained-head format (:mod:`jtrack.pretrain.head`:
``head/...`` and ``head_lr/...`` arrays, the geometry and ``iters_init`` in
the metadata). ``jtrack.pretrain.load_params(path, config, key)`` loads it
as ``{'backbone', 'head', 'head_lr'}`` for :func:`jtrack.init` and refuses a
config with another ``iters_init``."""

from __future__ import annotations

import jax
import numpy as np

from jtrack.meta.config import MetaConfig
from jtrack.pretrain.head import geometry, write_head_file


def save_meta_head(path: str, config: MetaConfig, meta: dict, extra: dict | None = None
                   ) -> None:
    """Write ``meta`` ({'head', 'head_lr'}) to ``path`` (atomically)."""
    meta = jax.tree.map(np.asarray, jax.device_get(meta))
    write_head_file(path, {"head": meta["head"], "head_lr": meta["head_lr"]},
                    {**geometry(config.tracker), "iters_init": config.tracker.iters_init,
                     "kind": "meta", **(extra or {})})
