"""Spreading work over local devices with ``jax.jit`` + ``NamedSharding``.

One 1-D mesh axis (``DATA``) over all (or the first ``n``) local devices,
or over ``jax.devices()`` to span every process of a ``jax.distributed``
run (pretraining does; each process then feeds its own devices' slices of
arrays that every process holds in full). Leading-axis batches (targets, sequences, training samples) are split over
it; parameters shared by every slice (the backbone) are replicated once.
Works the same on 1 device, on forced host CPU devices
(``XLA_FLAGS=--xla_force_host_platform_device_count=4``) and on GPUs.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

DATA = "data"


def make_mesh(n_devices: int | None = None, devices=None) -> Mesh:
    """1-D mesh named :data:`DATA` over ``devices`` (default: the first
    ``n_devices`` local devices, all when None)."""
    devs = list(jax.local_devices()) if devices is None else list(devices)
    if n_devices is not None:
        if not 1 <= n_devices <= len(devs):
            raise ValueError(f"asked for {n_devices} devices but {len(devs)} are available")
        devs = devs[:n_devices]
    return Mesh(np.asarray(devs), (DATA,))


def replicated(mesh: Mesh) -> NamedSharding:
    return NamedSharding(mesh, P())


def sharded(mesh: Mesh) -> NamedSharding:
    """Leading axis split over the mesh."""
    return NamedSharding(mesh, P(DATA))


def replicate(tree: Any, mesh: Mesh) -> Any:
    """Put one full copy of every leaf on each device of ``mesh``."""
    return jax.device_put(tree, replicated(mesh))


def shard(tree: Any, mesh: Mesh) -> Any:
    """Split every leaf's leading axis over ``mesh`` (its size must divide evenly)."""
    n = mesh.devices.size
    for leaf in jax.tree.leaves(tree):
        if np.ndim(leaf) == 0 or np.shape(leaf)[0] % n:
            raise ValueError(f"leading axis of shape {np.shape(leaf)} does not split "
                             f"evenly over {n} devices")
    return jax.device_put(tree, sharded(mesh))


def pad_to_multiple(n: int, k: int) -> int:
    """Smallest multiple of ``k`` that is >= ``n``."""
    return -(-n // k) * k
