"""A tiny conv backbone and small TrackerConfig for tests of the edges (CLI,
adapters, docs): the plumbing is what is under test, and compiling the full
tracker with EfficientNet costs a minute on a small CPU."""

import jax
import jax.numpy as jnp

import jtrack


def _tiny() -> jtrack.Backbone:
    def init(key):
        return {"w": jax.random.normal(key, (8, 8, 3, 16)) * 0.05, "b": jnp.zeros(16)}

    def apply(p, img):
        x = img[None] if img.ndim == 3 else img
        y = jax.lax.conv_general_dilated(x / 255.0 - 0.5, p["w"], (8, 8), "VALID",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        y = jax.nn.relu(y + p["b"])
        return y[0] if img.ndim == 3 else y

    return jtrack.Backbone("tiny_test", init, apply, stride=8.0, offset=4.0, channels=16)


jtrack.register_backbone("tiny_test", _tiny)

OVERRIDES = dict(backbone="tiny_test", hidden=32, iters_init=2, iters_update=1, n_neg_init=200,
                 n_pos_init=50, n_bbreg=50, n_candidates=64, region_size=107,
                 n_pos_update=16, n_neg_update=32, batch_neg_cand=64, batch_pos=8,
                 batch_neg=16,
                 # fewer code paths to compile; online updates, regression and
                 # mining are exercised by the tracker's own tests
                 bbreg=False, hard_negative_mining=False, online_update=False)
CONFIG = jtrack.TrackerConfig(**OVERRIDES)
