"""Offline multi-domain pretraining (MDNet's offline stage) as pure functions.

- :mod:`~jtrack.pretrain.config`: :class:`PretrainConfig`.
- :mod:`~jtrack.pretrain.model`: shared fc4/fc5 (+ optional backbone), one fc6 per domain.
- :mod:`~jtrack.pretrain.data`: domains (cached crops / feature maps), exclude list, batches.
- :mod:`~jtrack.pretrain.train`: sampling, loss, metrics, data-parallel SGD step, loop.
- :mod:`~jtrack.pretrain.checkpoint`: orbax checkpoints with exact resume.
- :mod:`~jtrack.pretrain.head`: export fc4/fc5 and load them into the tracker.

The CLI is ``python -m experiments.pretrain`` (see docs/pretraining.md).
"""

from jtrack.pretrain.checkpoint import Checkpoints
from jtrack.pretrain.config import PretrainConfig, parse_layer_lr
from jtrack.pretrain.data import (Domain, apply_exclude, draw, held_batches, host_batch,
                                  prepare_domain)
from jtrack.pretrain.head import load_head, load_params, read_head, save_head
from jtrack.pretrain.model import init_params
from jtrack.pretrain.train import (evaluate, init_state, make_eval, make_optimizer,
                                   make_step, summarize, train_steps)

__all__ = [
    "Checkpoints", "Domain", "PretrainConfig", "apply_exclude", "draw", "evaluate",
    "held_batches", "host_batch", "init_params", "init_state", "load_head", "load_params",
    "make_eval", "make_optimizer", "make_step", "parse_layer_lr", "prepare_domain",
    "read_head", "save_head", "summarize", "train_steps",
]
