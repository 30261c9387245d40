"""The tracker state of ``jtrack track`` at its flush points, for ``--resume``.

A :class:`jtrack.MultiTrackerState` is saved with orbax
(:class:`jtrack.checkpoint.Checkpoints`) into a hidden folder next to the
boxes file, one checkpoint per flush point (the frame index is the step).
Only the per-target part is saved: the backbone and the initial head are
remade from the seed. Restoring needs the state's layout, which
:func:`state_template` gets by tracing ``init_many`` (no compilation, no
first-frame training).
"""

from __future__ import annotations

import os

import jax
import jax.numpy as jnp
import numpy as np

from jtrack import multi
from jtrack.config import TrackerConfig


def checkpoint_dir(boxes_path: str) -> str:
    """``<folder>/.<boxes file name>.resume``."""
    folder, name = os.path.split(os.path.abspath(boxes_path))
    return os.path.join(folder, f".{name}.resume")


def _saveable(targets, active) -> dict:
    # orbax stores the raw data of the typed PRNG keys
    return {"targets": targets.replace(key=jax.random.key_data(targets.key)), "active": active}


def to_saveable(state: multi.MultiTrackerState) -> dict:
    """The per-target part of ``state`` as host numpy arrays: a copy taken
    now, before ``step_many`` donates the device buffers."""
    return jax.device_get(_saveable(state.targets, state.active))


def state_template(config: TrackerConfig, params: dict, n_targets: int) -> dict:
    """Shapes and dtypes of :func:`to_saveable` of ``init_many``'s state for
    ``n_targets`` targets (frame-size independent), by tracing only."""
    capacity = multi.next_capacity(n_targets)
    size = config.init_region_size

    def init(frame, boxes, keys):
        images, rboxes, image_wh = multi._crop_many(frame, boxes, jnp.ones((capacity,)),
                                                    config.init_region_scale, size)
        targets = multi._init_many_jit(config, None, params["backbone"], params["head"],
                                       params.get("head_lr"), images, rboxes, image_wh,
                                       boxes, keys)
        return _saveable(targets, jnp.ones((capacity,), bool))

    keys = jax.eval_shape(lambda: jax.random.split(jax.random.key(0), capacity))
    return jax.eval_shape(init, jax.ShapeDtypeStruct((size, size, 3), jnp.uint8),
                          jax.ShapeDtypeStruct((capacity, 4), jnp.float32), keys)


def from_saved(params: dict, saved: dict) -> multi.MultiTrackerState:
    """A live state from a restored :func:`to_saveable` tree."""
    # Via host memory: orbax returns arrays committed to a device, which jit
    # would treat as a new signature (one more compilation).
    saved = jax.tree.map(lambda a: jnp.asarray(np.asarray(a)), saved)
    targets = saved["targets"]
    return multi.MultiTrackerState(
        backbone=params["backbone"], head_init=params["head"],
        head_lr=params.get("head_lr"), targets=targets.replace(key=jax.random.wrap_key_data(targets.key)),
        active=saved["active"])
