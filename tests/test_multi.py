"""Multi-target tracking (jtrack.multi): stacking, the active mask without
recompiling, equality with the single-target tracker, device sharding.

Tiny config and frame size (tests/tiny_tracker.py); the programs compiled
here (single init/step, batched init/step at capacity 4, the sharded step)
are shared by the tests through module fixtures. conftest.py forces 4 host
CPU devices, so the sharded test runs on 4 devices in this process.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jtrack
import tiny_tracker
from jtrack import multi, parallel
from jtrack.data import default_data_root, load_frame, read_otb
from tiny_tracker import CONFIG, FRAME_HW

H, W = FRAME_HW
BOXES = np.array([[8, 10, 12, 12], [50, 35, 12, 12], [60, 5, 12, 10]], np.float32)
N_STEPS = 6  # long_interval is 5: frame 5 trains every head


def _frame(t: int) -> np.ndarray:
    """Gray frame, three coloured squares: red moving down-right, green
    moving left, blue still."""
    f = np.full((H, W, 3), 120, np.uint8)
    f[10 + t:22 + t, 8 + t:20 + t] = (230, 30, 30)
    f[35:47, 50 - t:62 - t] = (30, 200, 40)
    f[5:15, 60:72] = (20, 20, 220)
    return f


@pytest.fixture(scope="module")
def params():
    return tiny_tracker.params(0)


@pytest.fixture(scope="module")
def keys():
    return jax.random.split(jax.random.key(3), len(BOXES))


@pytest.fixture(scope="module")
def singles(params, keys):
    """Per target: first-frame state and the outputs of N_STEPS jtrack.step calls."""
    runs = []
    for k in range(len(BOXES)):
        s0 = jtrack.init(CONFIG, params, _frame(0), BOXES[k], keys[k])
        s, outs = jax.tree.map(jnp.copy, s0), []
        for t in range(1, N_STEPS + 1):
            s, o = jtrack.step(CONFIG, s, _frame(t))
            outs.append(o)
        runs.append((s0, jax.tree.map(lambda *x: np.stack(x), *outs), s))
    return runs


def _leaves_close(a, b, atol):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        if jnp.issubdtype(x.dtype, jax.dtypes.prng_key):
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        np.testing.assert_allclose(np.asarray(x), np.asarray(y), atol=atol, rtol=0)


def _track(state, n=N_STEPS):
    outs = []
    for t in range(1, n + 1):
        state, o = jtrack.step_many(CONFIG, state, _frame(t))
        outs.append(o)
    return state, jax.tree.map(lambda *x: np.stack(x, 1), *outs)  # (capacity, T, ...)


def test_equals_single_target_tracker_on_three_targets(params, keys, singles):
    """init_many + step_many with the same keys = jtrack.init + jtrack.step
    per target (float32 tolerance: the batched convs may round differently)."""
    state = jtrack.init_many(CONFIG, params, _frame(0), BOXES, keys)
    assert state.capacity == 4 and jtrack.active_slots(state) == [0, 1, 2]
    for k, (s0, _, _) in enumerate(singles):
        _leaves_close(jtrack.unstack_states(state)[k].replace(backbone=None),
                      s0.replace(backbone=None), 1e-5)
    state, outs = _track(state)
    for k, (_, want, last) in enumerate(singles):
        np.testing.assert_allclose(outs.box[k], want.box, atol=1e-3)
        np.testing.assert_allclose(outs.score[k], want.score, atol=1e-4)
        np.testing.assert_array_equal(outs.updated[k], want.updated)
        _leaves_close(jtrack.unstack_states(state)[k].head, last.head, 1e-3)
    assert outs.updated[:3].any(), "no online update in the run: extend N_STEPS"
    # the free slot: NaN outputs, never updated
    assert np.isnan(outs.box[3]).all() and not outs.updated[3].any()


@pytest.mark.parametrize("batching, targets", [("batch", [0, 1, 2]), ("map", [1]),
                                               ("map", [0, 2])])
def test_region_batching_and_one_slot_equal_single_targets(params, singles, batching, targets):
    """Both ways of running the targets (one batched backbone pass and one
    vmapped update; one region at a time, the update vmapped when every slot
    is due, else one at a time) follow the single-target tracker, and so does
    a lone slot (capacity 1: its online update runs only on the frames where
    it is due)."""
    config = CONFIG.replace(region_batching=batching)
    assert multi.region_batching(config) == batching
    state = jtrack.stack_states(params, [jax.tree.map(jnp.copy, singles[k][0]) for k in targets])
    assert state.capacity == {1: 1, 2: 2, 3: 4}[len(targets)]
    outs = []
    for t in range(1, N_STEPS + 1):
        state, o = jtrack.step_many(config, state, _frame(t))
        outs.append(o)
    outs = jax.tree.map(lambda *x: np.stack(x, 1), *outs)
    for slot, k in enumerate(targets):
        want = singles[k][1]
        np.testing.assert_allclose(outs.box[slot], want.box, atol=1e-3)
        np.testing.assert_array_equal(outs.updated[slot], want.updated)
        _leaves_close(jtrack.unstack_states(state)[slot].head, singles[k][2].head, 1e-3)
    due = outs.updated[:len(targets)]
    if len(targets) > 1:
        assert due.all(0).any()  # frames where every target trains ...
    if len(targets) > 2:
        assert (due.any(0) & ~due.all(0)).any()  # ... and frames where only some do
    with pytest.raises(ValueError, match="region_batching"):
        CONFIG.replace(region_batching="vmap")


def test_stack_unstack_round_trip_and_continue_single(params, singles):
    states = [jax.tree.map(jnp.copy, s0) for s0, _, _ in singles]
    state = jtrack.stack_states(params, states)
    assert state.capacity == 4 and jtrack.active_slots(state) == [0, 1, 2]
    assert state.targets.box.shape == (4, 4) and state.targets.backbone is None
    # one backbone for all targets, not one per target
    bb = jax.tree.leaves(state.backbone)[0]
    assert bb.shape == jax.tree.leaves(params["backbone"])[0].shape
    back = jtrack.unstack_states(state)
    assert len(back) == 3
    for s, (s0, _, _) in zip(back, singles):
        _leaves_close(s, s0, 0.0)
    # an unstacked state continues with the single-target step
    s, o = jtrack.step(CONFIG, back[1], _frame(1))
    np.testing.assert_allclose(np.asarray(o.box), singles[1][1].box[0], atol=1e-5)
    with pytest.raises(ValueError, match="capacity 2 is smaller"):
        jtrack.stack_states(params, states, capacity=2)
    with pytest.raises(TypeError, match=r"states\[1\]"):
        jtrack.stack_states(params, [states[0], "x"])


def test_add_remove_reuse_slots_without_recompiling(params, keys):
    state = jtrack.init_many(CONFIG, params, _frame(0), BOXES, keys)
    state, _ = jtrack.step_many(CONFIG, state, _frame(1))
    compiled = (multi._step_many_jit._cache_size(), multi._init_many_jit._cache_size())
    state = jtrack.remove_target(state, 1)
    assert jtrack.active_slots(state) == [0, 2]
    state, out = jtrack.step_many(CONFIG, state, _frame(2))
    assert np.isnan(np.asarray(out.box[1])).all() and np.isfinite(np.asarray(out.box[0])).all()
    state, slot = jtrack.add_target(CONFIG, state, _frame(2), [30, 30, 10, 10], keys[0])
    assert slot == 1  # the freed slot is reused first
    state, slot = jtrack.add_target(CONFIG, state, _frame(2), [40, 20, 10, 10], keys[1])
    assert slot == 3 and jtrack.active_slots(state) == [0, 1, 2, 3]
    state, out = jtrack.step_many(CONFIG, state, _frame(3))
    assert np.isfinite(np.asarray(out.box)).all()
    # the added target starts as jtrack.init would start it
    single = jtrack.init(CONFIG, params, _frame(2), [40, 20, 10, 10], keys[1])
    np.testing.assert_allclose(np.asarray(single.box), [40, 20, 10, 10])
    assert int(state.targets.frame_index[3]) == 1 and int(state.targets.frame_index[0]) == 3
    assert (multi._step_many_jit._cache_size(), multi._init_many_jit._cache_size()) == compiled
    # full: the capacity doubles (shapes change, so the next step compiles once)
    state, slot = jtrack.add_target(CONFIG, state, _frame(3), [10, 40, 10, 10], keys[2])
    assert (state.capacity, slot) == (8, 4)
    assert jtrack.active_slots(state) == [0, 1, 2, 3, 4]


def test_shrink_keeps_the_active_targets(params, singles):
    """After removals, shrink packs the remaining targets into a smaller
    capacity; they go on exactly as the single-target tracker's."""
    state = jtrack.stack_states(params, [jax.tree.map(jnp.copy, s0) for s0, _, _ in singles])
    state, _ = jtrack.step_many(CONFIG, state, _frame(1))
    state = jtrack.remove_target(jtrack.remove_target(state, 0), 1)
    small, moved = multi.shrink(state)
    assert moved == {2: 0} and small.capacity == 1 and jtrack.active_slots(small) == [0]
    small, outs = _track(small, N_STEPS)  # frames 1.. again: compare from frame 2 on
    # slot 0 now holds target 2, which saw frame 1 once already
    s, ref = jax.tree.map(jnp.copy, singles[2][0]), []
    for t in [1] + list(range(1, N_STEPS + 1)):
        s, o = jtrack.step(CONFIG, s, _frame(t))
        ref.append(o)
    np.testing.assert_allclose(outs.box[0], np.stack([o.box for o in ref[1:]]), atol=1e-4)
    wide, moved = multi.shrink(jtrack.stack_states(
        params, [jax.tree.map(jnp.copy, s0) for s0, _, _ in singles]), capacity=8)
    assert wide.capacity == 8 and moved == {0: 0, 1: 1, 2: 2}
    with pytest.raises(ValueError, match="smaller than the 3 targets"):
        multi.shrink(wide, capacity=2)


def test_bad_input_gets_clear_errors(params, keys):
    f = _frame(0)
    with pytest.raises(ValueError, match=r"shape \(N, 4\)"):
        jtrack.init_many(CONFIG, params, f, BOXES[:, :3], keys)
    with pytest.raises(ValueError, match=r"shape \(N, 4\)"):
        jtrack.init_many(CONFIG, params, f, np.zeros((0, 4)), keys)
    bad = BOXES.copy()
    bad[2, 1] = np.nan
    with pytest.raises(ValueError, match="target #2.*non-finite"):
        jtrack.init_many(CONFIG, params, f, bad, keys)
    bad = BOXES.copy()
    bad[1] = [500, 500, 10, 10]
    with pytest.raises(ValueError, match="target #1.*outside"):
        jtrack.init_many(CONFIG, params, f, bad, keys)
    with pytest.raises(ValueError, match="one key or 3 keys"):
        jtrack.init_many(CONFIG, params, f, BOXES, keys[:2])
    with pytest.raises(ValueError, match="smaller than the 3 targets"):
        jtrack.init_many(CONFIG, params, f, BOXES, keys, capacity=2)
    with pytest.raises(ValueError, match="does not split over 4 devices"):
        jtrack.init_many(CONFIG, params, f, BOXES, keys, capacity=6,
                         mesh=parallel.make_mesh(4))
    with pytest.raises(TypeError, match="MultiTrackerState"):
        jtrack.step_many(CONFIG, "state", f)
    state = jtrack.stack_states(params, [jtrack.init(CONFIG, params, f, BOXES[0], keys[0])])
    with pytest.raises(ValueError, match="slot 0 is not active|slot 3 is outside"):
        jtrack.remove_target(state, 3)
    state = jtrack.remove_target(state, 0)
    with pytest.raises(ValueError, match="slot 0 is not active"):
        jtrack.remove_target(state, 0)
    with pytest.raises(ValueError, match="1 frames for 1 slots|one frame per slot"):
        jtrack.step_many(CONFIG, state, [f, f])


def test_sharded_over_four_devices_equals_one_device(params, singles):
    """Targets split over 4 forced CPU devices (shard_map), backbone
    replicated: same results as the one-device batched step. Also the
    per-slot frames path (sequences in lock-step, as an evaluation runs)."""
    assert jax.device_count() == 4, "conftest.py forces 4 host CPU devices"
    mesh = parallel.make_mesh(4)
    starts = [s0 for s0, _, _ in singles]
    sharded = jtrack.stack_states(params, [jax.tree.map(jnp.copy, s) for s in starts],
                                  mesh=mesh)
    assert len(sharded.targets.box.sharding.device_set) == 4
    assert sharded.targets.box.sharding.spec == jax.sharding.PartitionSpec(parallel.DATA)
    plain = jtrack.stack_states(params, [jax.tree.map(jnp.copy, s) for s in starts])
    for t in range(1, 4):
        frames = [_frame(t)] * 3 + [None]  # one frame per slot
        sharded, a = jtrack.step_many(CONFIG, sharded, frames)
        plain, b = jtrack.step_many(CONFIG, plain, _frame(t))
        np.testing.assert_allclose(np.asarray(a.box), np.asarray(b.box), atol=1e-4)
        want = np.stack([s[1].box[t - 1] for s in singles])
        np.testing.assert_allclose(np.asarray(a.box[:3]), want, atol=1e-3)
    # one frame for all slots, even one committed to another device
    frame = jax.device_put(_frame(4), jax.devices()[2])
    sharded, a = jtrack.step_many(CONFIG, sharded, frame)
    plain, b = jtrack.step_many(CONFIG, plain, _frame(4))
    np.testing.assert_allclose(np.asarray(a.box), np.asarray(b.box), atol=1e-4)
    assert sharded.targets.box.sharding.spec == jax.sharding.PartitionSpec(parallel.DATA)


def test_pmap_over_devices_equals_sequential_steps(singles):
    """jtrack.step under jax.pmap, one target's state per device (docs/multi.md),
    gives the boxes of the sequential single-target steps."""
    stacked = jax.tree.map(lambda *x: jnp.stack(x), *[s0 for s0, _, _ in singles])
    step = jax.pmap(lambda s, f: jtrack.step(CONFIG, s, f), in_axes=(0, None))
    for t in range(1, N_STEPS + 1):
        stacked, out = step(stacked, _frame(t))
        assert len(out.box.sharding.device_set) == len(singles)
        want = np.stack([s[1].box[t - 1] for s in singles])
        np.testing.assert_allclose(np.asarray(out.box), want, atol=1e-3)


_CROSSING = os.path.join(default_data_root(), "otb", "Crossing")


@pytest.mark.skipif(not os.path.isdir(_CROSSING), reason="OTB Crossing not in the data root")
def test_real_frames_several_boxes(params):
    """Three targets annotated on OTB Crossing's first frame (the walker of
    the ground truth, a standing person, a bollard): outputs stay finite
    and inside the 360x240 frame."""
    seq = read_otb(_CROSSING)[0]
    boxes = np.array([seq.gt[0], [41, 64, 14, 36], [327, 171, 17, 29]], np.float32)
    state = jtrack.init_many(CONFIG, params, load_frame(seq.frames[0]), boxes,
                             jax.random.key(0))
    for path in seq.frames[1:4]:
        frame = load_frame(path)
        state, out = jtrack.step_many(CONFIG, state, frame)
        box = np.asarray(out.box[:3])
        assert np.isfinite(box).all()
        assert (box[:, :2] >= 0).all() and (box[:, 0] + box[:, 2] <= 360 + 1e-3).all()
        assert (box[:, 1] + box[:, 3] <= 240 + 1e-3).all()


def test_disabled_memory_write_is_a_no_op_also_vmapped():
    """step_many relies on memory writes taking an ``enabled`` flag (instead of
    selecting between two whole rings): disabled, nothing changes."""
    from jtrack import memory

    mem = memory.create(jnp.ones((2, 4)), jnp.ones(2, bool), 3, 2, 2, 3)
    mem = memory.write_positives(mem, jnp.full((2, 4), 5.0), jnp.ones(2, bool), 1)
    same = memory.write_negatives(memory.write_positives(
        mem, jnp.full((2, 4), 7.0), jnp.ones(2, bool), 2, False),
        jnp.full((3, 4), 7.0), jnp.ones(3, bool), 2, jnp.ones((3, 4)), enabled=jnp.asarray(False))
    _leaves_close(same, mem, 0.0)
    stacked = jax.tree.map(lambda x: jnp.stack([x, x]), mem)
    both = jax.vmap(lambda m, on: memory.write_positives(
        m, jnp.full((2, 4), 7.0), jnp.ones(2, bool), 2, on))(stacked, jnp.array([True, False]))
    assert int(both.pos_writes[0]) == 2 and int(both.pos_writes[1]) == 1
    np.testing.assert_array_equal(np.asarray(both.pos[0, 1]), 7.0)
    _leaves_close(jax.tree.map(lambda x: x[1], both), mem, 0.0)
