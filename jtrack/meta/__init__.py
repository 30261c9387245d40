"""Meta-learned first-frame adaptation (Meta-Tracker) as pure functions.

- :mod:`~jtrack.meta.config`: :class:`MetaConfig`.
- :mod:`~jtrack.meta.data`: episodes (a first frame, later query frames) from domains.
- :mod:`~jtrack.meta.train`: meta-loss through the tracker's first-frame
  training, ``jax.grad``, the data-parallel meta-step and loop.
- :mod:`~jtrack.meta.head`: the meta-learned head file (head + rates).

The CLI is ``python -m experiments.meta_train`` (see docs/meta.md); the
tracker loads the result with ``jtrack.pretrain.load_params``.
"""

from jtrack.meta.config import MetaConfig
from jtrack.meta.data import MetaDomain, draw, held_batches, host_batch, prepare_meta_domain
from jtrack.meta.head import save_meta_head
from jtrack.meta.train import (adapt, episode_loss, evaluate, init_meta_params, init_state,
                               make_eval, make_optimizer, make_step, meta_grad, summarize,
                               train_steps)

__all__ = [
    "MetaConfig", "MetaDomain", "adapt", "draw", "episode_loss", "evaluate", "held_batches",
    "host_batch", "init_meta_params", "init_state", "make_eval", "make_optimizer",
    "make_step", "meta_grad", "prepare_meta_domain", "save_meta_head", "summarize",
    "train_steps",
]
