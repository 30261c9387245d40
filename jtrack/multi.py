"""Several targets in one batched pass: the single-target tracker, vmapped.

:class:`MultiTrackerState` holds the per-target :class:`~jtrack.tracker.TrackerState`
pytrees stacked along a leading ``(capacity,)`` axis, an ``active`` mask and
ONE copy of the backbone parameters shared by all targets (each target keeps
its own head, optimizer state, sample memory, box and PRNG key).

Per frame :func:`step_many` crops every target's search region, runs the
backbone on the ``(capacity, S, S, 3)`` regions inside the same compiled
call (one batched pass on accelerators; one region after the other on CPU,
where a batch is slower than the loop: ``TrackerConfig.region_batching``),
locates every target with ``vmap`` over the single-target
:func:`jtrack.tracker._locate` (on CPU its RoIAlign runs target by target:
vmapped, the batched einsums were slower than a loop), and trains the heads
that need it: on CPU a ``while_loop`` over the targets that update this
frame, so the others, and inactive slots, skip the expensive training
instead of computing it and masking it away (one vmapped update when every
slot is due); on accelerators (``region_batching="batch"``) one vmapped
update of every head, kept where it was due, whenever any is. The
per-target math is the single-target tracker's, so with the same PRNG keys
each target follows :func:`jtrack.step` up to float32 rounding.

Capacity and the active mask: shapes depend only on ``capacity`` (a power of
two, a multiple of the device count), so adding targets to free slots and
removing them recompiles nothing; :func:`add_target` doubles the capacity
(one recompilation) only when every slot is taken. Inactive slots keep their
box, head and key (their sample memory is scratch space until
:func:`add_target` overwrites the slot) and give NaN outputs; they skip the
online update and, one region at a time, the backbone, but still ride
along in the vmapped candidate scoring.

Devices: with ``mesh`` (:func:`jtrack.parallel.make_mesh`) the targets are
split over the mesh's ``data`` axis (``shard_map``) and the backbone is
replicated once per device.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import flax.struct
import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, PartitionSpec as P

from jtrack import nets, parallel
from jtrack import tracker as T
from jtrack.config import TrackerConfig
from jtrack.executables import stored_jit

Params = Any


@flax.struct.dataclass
class MultiTrackerState:
    """Several targets' tracker states, stacked (a pytree).

    Attributes:
      backbone: conv trunk parameters, one copy shared by every target.
      head_init: head parameters a new target starts from (:func:`add_target`).
      head_lr: their per-element first-frame rates (a meta-learned head,
        :mod:`jtrack.meta`), or None: the config's per-layer rates.
      targets: a :class:`TrackerState` whose leaves all have a leading
        ``(capacity,)`` axis; its ``backbone`` field is None.
      active: ``(capacity,) bool``, which slots hold a tracked target.
      mesh: devices the targets are split over (None: the default device).
    """

    backbone: Params
    head_init: Params
    targets: T.TrackerState
    active: jax.Array
    mesh: Mesh | None = flax.struct.field(pytree_node=False, default=None)
    head_lr: Params = None

    @property
    def capacity(self) -> int:
        return int(self.active.shape[0])

    @property
    def boxes(self) -> jax.Array:
        """(capacity, 4) float32 xywh search centres: each target's last
        top-K mean (``TrackerState.box``; the reported, regressed boxes are
        ``step_many``'s output). Stale for inactive slots."""
        return self.targets.box


def next_capacity(n: int, n_devices: int = 1) -> int:
    """Smallest power of two >= ``n`` (at least 1), rounded up to a multiple
    of ``n_devices`` so the slots split evenly over devices."""
    cap = 1 << max(0, int(n) - 1).bit_length()
    return parallel.pad_to_multiple(cap, n_devices)


def active_slots(state: MultiTrackerState) -> list[int]:
    """Indices of the active slots, ascending."""
    return [int(i) for i in np.flatnonzero(np.asarray(state.active))]


# ----------------------------------------------------------------------------
# stacking


def _take(tree: Any, index) -> Any:
    return jax.tree.map(lambda x: x[index], tree)


# Stacking and slicing are jitted as whole pytrees: eagerly, every leaf of a
# TrackerState would compile its own small program per shape and capacity
# (seconds per stack_states call).
_take_one = stored_jit(_take)


def _pad_to(tree: Any, n: int, capacity: int) -> Any:
    """Leading axis ``n`` -> ``capacity``; extra slots repeat slot 0 (valid
    data, so an inactive slot never feeds NaN or empty boxes to the math)."""
    idx = np.concatenate([np.arange(n), np.zeros(capacity - n, np.int64)])
    return _take_one(tree, idx.astype(np.int32))


@stored_jit(static_argnums=1)
def _stack_padded(trees: list, capacity: int) -> Any:
    """Pytrees with equal structure -> one pytree, leading axis ``capacity``."""
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *trees)
    return _pad_to(stacked, len(trees), capacity)


def _place(state: MultiTrackerState) -> MultiTrackerState:
    """Put the arrays where ``state.mesh`` wants them: targets split over the
    ``data`` axis, shared parameters replicated (no-op without a mesh)."""
    if state.mesh is None:
        return state
    return state.replace(
        backbone=parallel.replicate(state.backbone, state.mesh),
        head_init=parallel.replicate(state.head_init, state.mesh),
        head_lr=parallel.replicate(state.head_lr, state.mesh),
        targets=parallel.shard(state.targets, state.mesh),
        active=parallel.shard(state.active, state.mesh))


def _check_capacity(capacity: int | None, n: int, mesh: Mesh | None) -> int:
    n_dev = 1 if mesh is None else mesh.devices.size
    if capacity is None:
        return next_capacity(n, n_dev)
    if isinstance(capacity, bool) or not isinstance(capacity, (int, np.integer)):
        raise TypeError(f"capacity must be an int, got {type(capacity).__name__}")
    capacity = int(capacity)
    if capacity < max(n, 1):
        raise ValueError(f"capacity {capacity} is smaller than the {n} targets given")
    if capacity % n_dev:
        raise ValueError(f"capacity {capacity} does not split over {n_dev} devices")
    return capacity


def stack_states(params: dict, states: Sequence[T.TrackerState],
                 capacity: int | None = None, mesh: Mesh | None = None) -> MultiTrackerState:
    """Single-target states (from :func:`jtrack.init` / :func:`jtrack.step`)
    -> one :class:`MultiTrackerState` with them in slots ``0..N-1``.

    ``params`` gives the shared backbone (the states' own ``backbone`` fields
    are dropped) and the head new targets start from. ``capacity`` defaults
    to :func:`next_capacity` of ``N``."""
    states = list(states)
    if not states:
        raise ValueError("stack_states needs at least one TrackerState")
    for k, s in enumerate(states):
        if not isinstance(s, T.TrackerState):
            raise TypeError(f"states[{k}] is a {type(s).__name__}, not a TrackerState")
    capacity = _check_capacity(capacity, len(states), mesh)
    targets = _stack_padded([s.replace(backbone=None) for s in states], capacity)
    active = jnp.arange(capacity) < len(states)
    return _place(MultiTrackerState(
        backbone=params["backbone"], head_init=params["head"],
        head_lr=params.get("head_lr"), targets=targets, active=active, mesh=mesh))


def unstack_states(state: MultiTrackerState) -> list[T.TrackerState]:
    """The active targets as single-target states (ascending slot order, see
    :func:`active_slots`): they continue with :func:`jtrack.step`. Each gets
    its own copy of the backbone, because ``step`` donates the state it is
    given and must not delete the shared parameters."""
    return [_take_one(state.targets, jnp.asarray(i, jnp.int32)).replace(
                backbone=jax.tree.map(jnp.copy, state.backbone))
            for i in active_slots(state)]


# ----------------------------------------------------------------------------
# jitted cores


@stored_jit(static_argnums=(3, 4))
def _crop_many(frame, boxes, widen, scale, size):
    """(N, 4) boxes, (N,) widening factors of the region ``scale`` ->
    (N, S, S, 3) region images, (N, 4) region boxes, (N, 2) frame
    width/height. Compiled per frame size."""
    return jax.vmap(lambda b, w: T._crop_region(frame, b, scale * w, size))(boxes, widen)


def _sharded(fn, mesh: Mesh | None, n_in: int, shared: tuple[int, ...]):
    """``fn`` as is (no mesh), or ``shard_map``-ed over the ``data`` axis with
    the positional arguments in ``shared`` replicated, the others split."""
    if mesh is None:
        return fn
    specs = tuple(P() if i in shared else P(parallel.DATA) for i in range(n_in))
    return jax.shard_map(fn, mesh=mesh, in_specs=specs, out_specs=P(parallel.DATA),
                         check_vma=False)


def region_batching(config: TrackerConfig) -> str:
    """``config.region_batching`` resolved for the default backend: "map"
    on CPU, "batch" elsewhere (when "auto")."""
    if config.region_batching != "auto":
        return config.region_batching
    return "map" if jax.default_backend() == "cpu" else "batch"


def _backbone_batch(config: TrackerConfig, backbone: Params, images: jax.Array,
                    active: jax.Array | None = None) -> jax.Array:
    """(N, S, S, 3) regions -> (N, h, w, C), inside one compiled program:
    one batched pass, or one region at a time (:func:`region_batching`).
    One at a time, the regions of inactive slots (``active`` (N,) bool) are
    skipped (zero features); a batched pass computes every row."""
    apply = nets.get_backbone(config.backbone).apply
    if region_batching(config) == "batch":
        return apply(backbone, images)
    if active is None:
        return jax.lax.map(lambda image: apply(backbone, image), images)
    shape = jax.eval_shape(apply, backbone, images[0])

    def one(args):
        image, on = args
        return jax.lax.cond(on, lambda x: apply(backbone, x),
                            lambda x: jnp.zeros(shape.shape, shape.dtype), image)
    return jax.lax.map(one, (images, active))


@stored_jit(static_argnums=(0, 1))
def _init_many_jit(config, mesh, backbone, head, head_lr, images, rboxes, image_wh, boxes,
                   keys):
    def body(backbone, head, head_lr, images, rboxes, image_wh, boxes, keys):
        fmaps = _backbone_batch(config, backbone, images)
        init_one = functools.partial(T._init_from_fmap, config,
                                     _first_frame_params(None, head, head_lr))
        return jax.vmap(init_one)(fmaps, boxes, rboxes, image_wh, keys)

    return _sharded(body, mesh, 8, (0, 1, 2))(backbone, head, head_lr, images, rboxes,
                                              image_wh, boxes, keys)


def _first_frame_params(backbone, head, head_lr) -> dict:
    """The ``params`` of :func:`jtrack.init` for a new target."""
    params = {"backbone": backbone, "head": head}
    if head_lr is not None:
        params["head_lr"] = head_lr
    return params


def _per_slot(mask: jax.Array, x: jax.Array) -> jax.Array:
    """``mask`` (N,) shaped to broadcast against ``x`` (N, ...)."""
    return mask.reshape(mask.shape + (1,) * (x.ndim - 1))


def _mask_output(out: T.TrackOutput, active: jax.Array) -> T.TrackOutput:
    def mask(x):
        a = _per_slot(active, x)
        if x.dtype == jnp.bool_:
            return x & a
        return jnp.where(a, x, jnp.nan)
    return jax.tree.map(mask, out)


def _update_together(config: TrackerConfig, targets: T.TrackerState, todo: jax.Array,
                     keys: jax.Array) -> T.TrackerState:
    """Every head trained in one vmapped update, kept where ``todo`` (N,):
    on an accelerator one batch of small kernels costs about what one
    target's update does, where a loop pays the whole chain per target."""
    head, opt_state = jax.vmap(functools.partial(T._update_head, config))(targets, keys)

    def pick(a, b):
        return jnp.where(_per_slot(todo, a), a, b)
    return targets.replace(head=jax.tree.map(pick, head, targets.head),
                           opt_state=jax.tree.map(pick, opt_state, targets.opt_state))


def _update_in_turn(config: TrackerConfig, targets: T.TrackerState, todo: jax.Array,
                    n_todo: jax.Array, keys: jax.Array) -> T.TrackerState:
    """Only the heads that update (``todo`` (N,)), one after the other: a
    while loop over their indices (none: the body never runs). A vmapped
    update would train every head every frame (on CPU that costs its full
    price per head); a cond per slot copies the stacked heads through both
    branches (measured: ~5 ms per slot and frame at 4 slots on CPU)."""
    order = jnp.argsort(~todo, stable=True)  # updating slots first

    def update(carry):
        k, tg = carry
        i = order[k]
        # k rides through the barrier with the target's slice so the
        # training input stays loop-variant: with one slot, x[i] folds
        # to x[0] and XLA would hoist the whole training out of the
        # loop (and run it on every frame).
        one, k = jax.lax.optimization_barrier((_take(tg, i), k))
        h, o = T._update_head(config, one, keys[i])
        put = lambda a, x: a.at[i].set(x)  # noqa: E731
        return k + 1, tg.replace(head=jax.tree.map(put, tg.head, h),
                                 opt_state=jax.tree.map(put, tg.opt_state, o))

    # The whole stacked state is the loop's carry: what the loop only
    # reads (the sample memories) would otherwise be copied into it.
    return jax.lax.while_loop(lambda c: c[0] < n_todo, update, (jnp.int32(0), targets))[1]


@stored_jit(static_argnums=(0, 1), donate_argnums=3)
def _step_many_jit(config, mesh, backbone, targets, active, images, rboxes, image_wh):
    def body(backbone, targets, active, images, rboxes, image_wh):
        fmaps = _backbone_batch(config, backbone, images, active)
        pool = None
        if region_batching(config) == "map":
            # RoIAlign is two einsums; vmapped over 8 targets they ran 3.5x
            # slower than target by target on CPU (the batch leaves cache).
            pool = jax.custom_batching.sequential_vmap(
                functools.partial(T.pool_features, config))
        new, out, k_upd = jax.vmap(functools.partial(T._locate, config, pool=pool))(
            targets, fmaps, rboxes, image_wh)

        todo = out.updated & active
        n_todo = todo.sum()
        together = functools.partial(_update_together, config, todo=todo, keys=k_upd)
        if region_batching(config) == "batch":
            new = jax.lax.cond(n_todo > 0, together, lambda tg: tg, new)
        else:
            # On CPU a vmapped update costs every slot's full training, worth it
            # only when every slot trains (it then saves the loop's copies).
            new = jax.lax.cond(n_todo == todo.shape[0], together, functools.partial(
                _update_in_turn, config, todo=todo, n_todo=n_todo, keys=k_upd), new)
        # A free slot keeps its box, frame index and key (the memory of a
        # free slot may take samples: it is never read again, add_target
        # overwrites it; selecting it would copy every ring each frame).
        keep = lambda a, b: jnp.where(_per_slot(active, a), a, b)  # noqa: E731
        small = ("box", "frame_index", "key", "widen", "scores", "image_wh")
        new = new.replace(**{
            f: keep(getattr(new, f), getattr(targets, f)) for f in small})
        return new, _mask_output(out, active)

    return _sharded(body, mesh, 6, (0,))(backbone, targets, active, images, rboxes, image_wh)


@stored_jit(donate_argnums=(0, 1))
def _put(targets, active, slot, one):
    targets = jax.tree.map(lambda a, x: a.at[slot].set(x), targets, one)
    return targets, active.at[slot].set(True)


@stored_jit(donate_argnums=0)
def _deactivate(active, slot):
    return active.at[slot].set(False)


# ----------------------------------------------------------------------------
# input checks


def _check_boxes(boxes, image_wh) -> np.ndarray:
    try:
        b = np.asarray(boxes, np.float64)
    except (TypeError, ValueError) as e:
        raise ValueError(f"boxes must be an (N, 4) array of x, y, w, h; got {boxes!r}") from e
    if b.ndim != 2 or b.shape[1] != 4 or b.shape[0] < 1:
        raise ValueError(f"boxes must have shape (N, 4) with N >= 1 (x, y, w, h per "
                         f"target); got shape {b.shape}")
    for k, box in enumerate(b):
        try:
            T._check_box(box, image_wh)
        except ValueError as e:
            raise ValueError(f"target #{k} (box {box.tolist()}): {e}") from None
    return b


@stored_jit
def fold_in_each(key: jax.Array, data: jax.Array) -> jax.Array:
    """``(n,)`` keys ``fold_in(key, data[k])`` (one program, not n eager ops)."""
    return jax.vmap(lambda d: jax.random.fold_in(key, d))(data)


def _target_keys(key, n: int) -> jax.Array:
    """One key (target ``k`` gets ``fold_in(key, k)``) or ``n`` keys -> (n,) keys."""
    if isinstance(key, (list, tuple)):
        keys = jnp.stack([T._as_key(k) for k in key])
    else:
        keys = jnp.asarray(key) if not isinstance(key, jax.Array) else key
        if keys.dtype == jnp.uint32 and keys.ndim == 2 and keys.shape[1] == 2:
            keys = jax.random.wrap_key_data(keys)  # (n, 2) raw uint32 keys
        elif keys.ndim == 0 or keys.dtype == jnp.uint32:
            keys = T._as_key(keys)
        elif not jnp.issubdtype(keys.dtype, jax.dtypes.prng_key):
            raise TypeError(f"expected PRNG keys from jax.random.key(...), got dtype "
                            f"{keys.dtype} shape {keys.shape}")
    if keys.ndim == 0:
        return fold_in_each(keys, np.arange(n))
    if keys.shape != (n,):
        raise ValueError(f"expected one key or {n} keys (one per target), got shape "
                         f"{keys.shape}")
    return keys


def _check_multi_state(config: TrackerConfig, state) -> None:
    if not isinstance(state, MultiTrackerState):
        raise TypeError("state must be the MultiTrackerState returned by init_many, "
                        f"stack_states or step_many, got {type(state).__name__}")
    T._check_state(config, state.targets)


def _check_slot(state: MultiTrackerState, slot) -> int:
    if isinstance(slot, bool) or not isinstance(slot, (int, np.integer)):
        raise TypeError(f"slot must be an int, got {type(slot).__name__}")
    if not 0 <= slot < state.capacity:
        raise ValueError(f"slot {slot} is outside the capacity {state.capacity}")
    if not bool(np.asarray(state.active)[slot]):
        raise ValueError(f"slot {slot} is not active (active slots: {active_slots(state)})")
    return int(slot)


# ----------------------------------------------------------------------------
# public API


def init_many(config: TrackerConfig, params: dict, frame, boxes, key,
              capacity: int | None = None, mesh: Mesh | None = None) -> MultiTrackerState:
    """Start tracking ``boxes`` ``(N, 4) float32`` xywh (0-based pixels) in
    ``frame`` ``(H, W, 3) uint8``: one batched backbone pass over the N
    first-frame regions, every head trained with ``vmap``.

    Args:
      key: one PRNG key (target ``k`` uses ``jax.random.fold_in(key, k)``)
        or ``N`` keys, one per target (target ``k`` then matches
        ``jtrack.init(config, params, frame, boxes[k], keys[k])``).
      capacity: number of slots (default :func:`next_capacity` of N); slots
        ``N..capacity-1`` start inactive. Every slot runs the first-frame
        training, so a large spare capacity costs init time.
      mesh: split the targets over these devices (:func:`jtrack.parallel.make_mesh`).
    Raises:
      ValueError naming the target whose box is invalid (wrong shape, NaN,
      empty, wholly outside the frame).
    """
    T._check_config(config)
    frame = T._check_frame(frame)
    wh = (frame.shape[1], frame.shape[0])
    b = _check_boxes(boxes, wh)
    T._check_params(config, params)
    n = len(b)
    keys = _target_keys(key, n)
    capacity = _check_capacity(capacity, n, mesh)
    box = _pad_to(T._visible(b.astype(np.float32), np.asarray(wh, np.float32),
                             config.min_box_size), n, capacity)
    keys = _pad_to(keys, n, capacity)
    images, rboxes, image_wh = _crop_many(frame, box, np.ones(capacity, np.float32),
                                          config.init_region_scale, config.init_region_size)
    shell = _place(MultiTrackerState(backbone=params["backbone"], head_init=params["head"],
                                     head_lr=params.get("head_lr"), targets=None,
                                     active=jax.device_put(np.arange(capacity) < n), mesh=mesh))
    if mesh is not None:
        images, rboxes, image_wh, box, keys = parallel.shard(
            (images, rboxes, image_wh, box, keys), mesh)
    targets = _init_many_jit(config, mesh, shell.backbone, shell.head_init, shell.head_lr,
                             images, rboxes, image_wh, box, keys)
    return shell.replace(targets=targets)


def step_many(config: TrackerConfig, state: MultiTrackerState, frame
              ) -> tuple[MultiTrackerState, T.TrackOutput]:
    """Track every active target one frame, in one batched jitted call.

    Args:
      frame: ``(H, W, 3) uint8`` shared by all targets, or a sequence of
        ``capacity`` frames, one per slot (targets in different videos, e.g.
        sequences of an evaluation in lock-step; None for inactive slots).
    Returns:
      the new state (``state`` is consumed: its target buffers are donated)
      and a :class:`TrackOutput` whose fields have a leading ``(capacity,)``
      axis (``box`` ``(capacity, 4)`` xywh, ``score`` ``(capacity,)``);
      inactive slots give NaN boxes/scores and False flags.
    """
    T._check_config(config)
    _check_multi_state(config, state)
    if isinstance(frame, (list, tuple)):
        images, rboxes, image_wh = _crop_each(config, state, frame,
                                              config.region_scale * state.targets.widen)
    else:
        frame = T._check_frame(frame)
        if state.mesh is not None:  # next to the sharded boxes, whatever device it came from
            frame = parallel.replicate(frame, state.mesh)
        images, rboxes, image_wh = _crop_many(frame, state.targets.box, state.targets.widen,
                                              config.region_scale, config.region_size)
    if state.mesh is not None:
        images, rboxes, image_wh = parallel.shard((images, rboxes, image_wh), state.mesh)
    targets, out = _step_many_jit(config, state.mesh, state.backbone, state.targets,
                                  state.active, images, rboxes, image_wh)
    return state.replace(targets=targets), out


def _crop_each(config: TrackerConfig, state: MultiTrackerState, frames, scales):
    """One frame per slot: crop each with the single-target crop (compiled
    once per frame size, shared with :func:`jtrack.step`), then stack."""
    if len(frames) != state.capacity:
        raise ValueError(f"got {len(frames)} frames for {state.capacity} slots: give one "
                         "frame per slot (None for inactive slots) or a single frame")
    active = np.asarray(state.active)
    boxes = np.asarray(state.targets.box)
    scales = np.asarray(scales)
    size = config.region_size
    crops = []
    for k, f in enumerate(frames):
        if f is None:
            if active[k]:
                raise ValueError(f"slot {k} is active but its frame is None")
            crops.append((jnp.zeros((size, size, 3), jnp.float32),
                          jnp.asarray([0.0, 0.0, 1.0, 1.0]), jnp.ones(2, jnp.float32)))
            continue
        crops.append(T._crop_region(T._check_frame(f), jnp.asarray(boxes[k]),
                                    jnp.float32(scales[k]), size))
    return tuple(jnp.stack(xs) for xs in zip(*crops))


def add_target(config: TrackerConfig, state: MultiTrackerState, frame, box, key
               ) -> tuple[MultiTrackerState, int]:
    """Start tracking one more target ``box`` ``(4,)`` xywh in ``frame`` (the
    frame the next :func:`step_many` call continues from).

    Its first-frame training is the single-target :func:`jtrack.init` (from
    ``state.head_init``, with ``key``); it goes into the lowest free slot.
    Below capacity nothing recompiles; when every slot is taken the
    capacity doubles (the next :func:`step_many` compiles once for it).
    Consumes ``state``. Returns ``(state, slot)``."""
    T._check_config(config)
    _check_multi_state(config, state)
    one = T.init(config, _first_frame_params(state.backbone, state.head_init, state.head_lr),
                 frame, box, key)
    one = one.replace(backbone=None)
    free = np.flatnonzero(~np.asarray(state.active))
    if free.size == 0:
        state = grow(state, 2 * state.capacity)
        free = np.flatnonzero(~np.asarray(state.active))
    slot = int(free[0])
    targets, active = _put(state.targets, state.active, jnp.int32(slot), one)
    return _place(state.replace(targets=targets, active=active)), slot


def remove_target(state: MultiTrackerState, slot: int) -> MultiTrackerState:
    """Stop tracking the target in ``slot``; its slot is reused by the next
    :func:`add_target`. Raises ValueError for an inactive or out-of-range slot."""
    if not isinstance(state, MultiTrackerState):
        raise TypeError(f"state must be a MultiTrackerState, got {type(state).__name__}")
    slot = _check_slot(state, slot)
    return _place(state.replace(active=_deactivate(state.active, jnp.int32(slot))))


def shrink(state: MultiTrackerState, capacity: int | None = None
           ) -> tuple[MultiTrackerState, dict[int, int]]:
    """The active targets moved to slots ``0..N-1`` (in slot order) of a
    state with ``capacity`` slots (default :func:`next_capacity` of N; at
    least N). Free slots still ride along in the vmapped scoring; after
    many removals this gives their compute back. Shapes change: the next
    :func:`step_many` compiles once (unless that capacity ran before).
    Returns ``(state, {old slot: new slot})``."""
    if not isinstance(state, MultiTrackerState):
        raise TypeError(f"state must be a MultiTrackerState, got {type(state).__name__}")
    slots = active_slots(state)
    capacity = _check_capacity(capacity, len(slots), state.mesh)
    # Free slots repeat the first kept one (valid numbers, as _pad_to).
    idx = (slots + [slots[0] if slots else 0] * capacity)[:capacity]
    targets = _take_one(state.targets, jnp.asarray(idx, jnp.int32))
    active = jnp.arange(capacity) < len(slots)
    return (_place(state.replace(targets=targets, active=active)),
            {old: new for new, old in enumerate(slots)})


def grow(state: MultiTrackerState, capacity: int) -> MultiTrackerState:
    """The same targets with ``capacity`` slots (>= the current one; new slots
    inactive). Shapes change: the next :func:`step_many` compiles once."""
    if not isinstance(state, MultiTrackerState):
        raise TypeError(f"state must be a MultiTrackerState, got {type(state).__name__}")
    capacity = _check_capacity(capacity, state.capacity, state.mesh)
    active = jnp.concatenate([state.active, jnp.zeros(capacity - state.capacity, bool)])
    return _place(state.replace(targets=_pad_to(state.targets, state.capacity, capacity),
                                active=active))
