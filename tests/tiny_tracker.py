"""A tiny backbone and config for fast tracker tests (not a test module).

``tiny_patch4``: a 4x4/4 "patchify" conv and a 1x1 conv, 16 channels,
random weights; stride 4, so feature cell j covers region pixels
[4j, 4j + 4) and is centred at 4j + 2. With :data:`CONFIG` a step runs in
milliseconds on CPU once init and step are compiled (compiling is most of
a test file's time), which lets property tests run hundreds of frames.
Colour contrast survives random weights, so it tracks a coloured target on
a gray background.
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

import jtrack
from jtrack.nets import Backbone, linen_backbone, register_backbone

NAME = "tiny_patch4_test"


class _Tiny(nn.Module):
    @nn.compact
    def __call__(self, x):
        x = x / 255.0 - 0.5
        x = nn.relu(nn.Conv(16, (4, 4), (4, 4), padding="VALID", name="patch")(x))
        return nn.relu(nn.Conv(16, (1, 1), name="mix")(x))


def _tiny() -> Backbone:
    return linen_backbone(NAME, _Tiny(), stride=4.0, offset=2.0, channels=16, init_side=16)


register_backbone(NAME, _tiny)

CONFIG = jtrack.TrackerConfig(
    backbone=NAME, hidden=32, region_size=48, n_candidates=64,
    n_pos_init=32, n_neg_init=96, iters_init=20, n_bbreg=64,
    n_pos_update=16, n_neg_update=32, iters_update=5, batch_pos=8, batch_neg=16,
    batch_neg_cand=64, frames_long=10, frames_short=5, long_interval=5)

FRAME_HW = (64, 80)  # every tiny test uses this frame size: one compile


def params(seed: int = 0) -> dict:
    """Random params for CONFIG drawn with numpy: same layout as
    ``jtrack.init_params`` (shapes from ``jax.eval_shape``) without
    compiling flax's initialisers, which costs seconds on a busy CPU."""
    rng = np.random.default_rng(seed)
    shapes = jax.eval_shape(lambda k: jtrack.init_params(CONFIG, k), jax.random.key(0))

    def leaf(path, s):
        name = jax.tree_util.keystr(path)
        if "bias" in name:
            return jnp.zeros(s.shape, s.dtype)
        std = 0.01 if "fc6" in name else np.sqrt(2.0 / np.prod(s.shape[:-1]))
        return jnp.asarray(rng.normal(0.0, std, s.shape), s.dtype)

    return jax.tree_util.tree_map_with_path(leaf, shapes)
