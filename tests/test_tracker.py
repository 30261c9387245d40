"""The tracker end to end: init/step on the built-in and a real sequence,
no recompilation, composition with vmap/jit/grad, input checks."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jtrack
from jtrack import learn, region
from jtrack.data import default_data_root, read_otb
from jtrack.data.synthetic import moving_object
from jtrack.tracking import iou_np, track_sequence

CONFIG = jtrack.TrackerConfig()


@pytest.fixture(scope="module")
def params():
    return jtrack.init_params(CONFIG, jax.random.key(0))


@pytest.fixture(scope="module")
def synthetic():
    return moving_object(n_frames=50)


def _stay_box_iou(gt):
    return iou_np(np.repeat(gt[:1], len(gt) - 1, 0), gt[1:]).mean()


def test_tracks_the_built_in_sequence_without_recompiling(params, synthetic):
    """50 frames (long-term updates every 10, occlusion at 50+ excluded):
    no compilation after the second frame, and it actually tracks."""
    frames, gt = synthetic
    compiles = []

    def listener(name, secs, **kw):
        if name == "/jax/core/compile/backend_compile_duration":
            compiles.append(name)

    jax.monitoring.register_event_duration_secs_listener(listener)
    counts = []
    try:
        boxes, scores, _ = track_sequence(CONFIG, params, frames, gt[0], jax.random.key(1),
                                          on_frame=lambda i, *a: counts.append(len(compiles)))
    finally:
        jax.monitoring.clear_event_listeners()
    assert len(counts) == len(frames)
    assert counts[-1] == counts[2], f"recompiled after frame 2: {counts}"
    ious = iou_np(boxes[1:], gt[1:])
    assert ious.mean() > 0.6, ious.round(2)
    assert ious.mean() > _stay_box_iou(gt) + 0.3


def test_frames_of_a_new_size_recompile_only_the_region_crop(params, synthetic):
    frames, gt = synthetic
    state = jtrack.init(CONFIG, params, frames[0], gt[0], jax.random.key(1))
    state, _ = jtrack.step(CONFIG, state, frames[1])
    before = jtrack.tracker._step_jit._cache_size()
    bigger = np.pad(frames[2], ((0, 40), (0, 60), (0, 0)), mode="edge")
    state, out = jtrack.step(CONFIG, state, bigger)
    assert jtrack.tracker._step_jit._cache_size() == before
    assert np.isfinite(np.asarray(out.box)).all()
    # the same holds for init: a new video size costs only the crop's compile
    init_before = jtrack.tracker._init_region_jit._cache_size()
    jtrack.init(CONFIG, params, bigger, gt[2], jax.random.key(2))
    assert jtrack.tracker._init_region_jit._cache_size() == init_before


def test_step_vmaps_over_two_states(params, synthetic):
    frames, gt = synthetic
    s1 = jtrack.init(CONFIG, params, frames[0], gt[0], jax.random.key(1))
    s2 = jtrack.init(CONFIG, params, frames[10], gt[10], jax.random.key(2))
    states = jax.tree.map(lambda a, b: jnp.stack([a, b]), s1, s2)
    batch = jnp.stack([frames[1], frames[11]])
    step = jax.vmap(functools.partial(jtrack.step, CONFIG))
    states, out = step(states, batch)
    assert out.box.shape == (2, 4) and out.score.shape == (2,)
    ious = iou_np(np.asarray(out.box), gt[[1, 11]])
    assert np.all(ious > 0.5), ious
    np.testing.assert_array_equal(states.frame_index, [1, 1])


def test_step_composes_with_jit(params, synthetic):
    frames, gt = synthetic
    state = jtrack.init(CONFIG, params, frames[0], gt[0], jax.random.key(1))
    state, out = jax.jit(functools.partial(jtrack.step, CONFIG))(state, frames[1])
    assert iou_np(np.asarray(out.box)[None], gt[1:2])[0] > 0.5


def test_grad_flows_through_the_score_function(params, synthetic):
    frames, gt = synthetic
    rbox = region.region_box(jnp.asarray(gt[0]), CONFIG.region_scale)
    image = region.crop(jnp.asarray(frames[0]), rbox, CONFIG.region_size)
    boxes = region.to_region(jnp.asarray(gt[:4]), rbox, CONFIG.region_size)

    def objective(p):
        return jnp.sum(learn.target_prob(jtrack.score_candidates(CONFIG, p, image, boxes)))

    grads = jax.jit(jax.grad(objective))(params)  # one compile, not op-by-op dispatch
    for part in ("backbone", "head"):
        leaves = jax.tree.leaves(grads[part])
        assert all(np.isfinite(np.asarray(g)).all() for g in leaves)
        assert any(float(jnp.abs(g).max()) > 0 for g in leaves), part


def test_step_reports_a_consistent_output(params, synthetic):
    frames, gt = synthetic
    state = jtrack.init(CONFIG, params, frames[0], gt[0], jax.random.key(1))
    state, out = jtrack.step(CONFIG, state, frames[1])
    assert out.box.shape == (4,) and out.box.dtype == jnp.float32
    assert 0.0 <= float(out.score) <= 1.0
    assert bool(out.success) == (float(out.score) > CONFIG.success_threshold)
    assert out.top_boxes.shape == (CONFIG.top_k, 4)
    assert np.all(np.diff(np.asarray(out.top_scores)) <= 0)  # best first
    assert int(state.frame_index) == 1


# ----------------------------------------------------------------------------
# input checks: clear errors naming the problem


@pytest.mark.parametrize("frame,box,err,match", [
    (np.zeros((50, 60), np.uint8), [1, 1, 10, 10], ValueError, "H, W, 3"),
    (np.zeros((0, 60, 3), np.uint8), [1, 1, 10, 10], ValueError, "empty"),
    (np.zeros((50, 60, 3), np.int64), [1, 1, 10, 10], TypeError, "uint8"),
    (np.zeros((50, 60, 3), np.uint8), [1, 1, 0, 10], ValueError, "positive width"),
    (np.zeros((50, 60, 3), np.uint8), [1, np.nan, 10, 10], ValueError, "non-finite"),
    (np.zeros((50, 60, 3), np.uint8), [100, 1, 10, 10], ValueError, "outside"),
    (np.zeros((50, 60, 3), np.uint8), [1, 1, 10], ValueError, "shape"),
])
def test_init_rejects_bad_input(params, frame, box, err, match):
    with pytest.raises(err, match=match):
        jtrack.init(CONFIG, params, frame, box, jax.random.key(0))


def test_init_rejects_a_head_of_the_wrong_size(params, synthetic):
    frames, gt = synthetic
    other = jtrack.TrackerConfig(roi_size=5)
    with pytest.raises(ValueError, match="fc4 expects"):
        jtrack.init(other, params, frames[0], gt[0], jax.random.key(0))


def test_init_rejects_a_non_key(params, synthetic):
    frames, gt = synthetic
    with pytest.raises(TypeError, match="PRNG key"):
        jtrack.init(CONFIG, params, frames[0], gt[0], 3.5)


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="top_k"):
        jtrack.TrackerConfig(top_k=0)
    with pytest.raises(ValueError, match="aspect"):
        jtrack.TrackerConfig(aspect=0.5)
    hash(jtrack.TrackerConfig())  # static jit argument


# ----------------------------------------------------------------------------
# a short real sequence


def test_short_real_sequence(params):
    seq = read_otb(f"{default_data_root()}/otb/Crossing")[0]
    n = 40
    frames = [jtrack.data.load_frame(f) for f in seq.frames[:n]]
    gt = np.asarray(seq.gt[:n])
    boxes, _, _ = track_sequence(CONFIG, params, frames, gt[0], jax.random.key(1))
    ious = iou_np(boxes[1:], gt[1:])
    assert ious.mean() > 0.5, ious.round(2)
    assert ious.mean() > _stay_box_iou(gt) + 0.2
