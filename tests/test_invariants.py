"""Tracker invariants over fuzzed sequences (hypothesis).

Whatever the frames (noise, flat black/white, a target that moves fast,
leaves the frame, is fully occluded, is 1 px or bigger than the frame),
``step`` returns a finite box of positive size inside the image and a
finite score, and the state never holds NaN/inf. A second test checks that
tracking resumes after the target leaves the frame and comes back
(re-detection through the widened search).

One tiny config and one frame size (tests/tiny_tracker.py), so init and
step compile once for the whole file. Examples are derandomized (same
sequences on every run, CI included); ``JTRACK_FUZZ_EXAMPLES=500
JTRACK_FUZZ_RANDOM=1`` runs a longer, freshly random search, and
``JTRACK_FUZZ_CHECKIFY=1`` also fails on any NaN/inf made inside init/step.
"""

from __future__ import annotations

import os

import jax
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jax.experimental import checkify
import tiny_tracker
from tiny_tracker import CONFIG, FRAME_HW

import jtrack
from jtrack import tracker
from jtrack.tracking import iou_np

H, W = FRAME_HW
N_STEPS = 10
EXAMPLES = int(os.environ.get("JTRACK_FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None,
                derandomize=not os.environ.get("JTRACK_FUZZ_RANDOM"),
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


@pytest.fixture(scope="module")
def params():
    return tiny_tracker.params(0)


# With JTRACK_FUZZ_CHECKIFY=1, jtrack.init/step keep their boundary checks
# and region crop but their jitted cores run under checkify: a NaN/inf
# produced by ANY operation inside (even one a later guard would mask)
# raises, not only one that reaches the outputs or the state. Off by
# default: compiling the checked cores about doubles this file's time.
CHECKIFY = bool(os.environ.get("JTRACK_FUZZ_CHECKIFY"))
_init_checked = jax.jit(checkify.checkify(tracker._init_core, errors=checkify.float_checks),
                        static_argnums=0)
_step_checked = jax.jit(checkify.checkify(tracker._step_core, errors=checkify.float_checks),
                        static_argnums=0)


def _init_core(config, params, frame, box, key):
    err, state = _init_checked(config, params, frame, box, key)
    err.throw()
    return state


def _step_core(config, state, region_image, rbox, image_wh):
    err, out = _step_checked(config, state, region_image, rbox, image_wh)
    err.throw()
    return out


@pytest.fixture(scope="module", autouse=True)
def checked_cores():
    with pytest.MonkeyPatch.context() as mp:
        if CHECKIFY:
            mp.setattr(tracker, "_init_jit", _init_core)
            mp.setattr(tracker, "_step_jit", _step_core)
        yield


# ----------------------------------------------------------------------------
# fuzzed sequences


def _draw(frame, box, color):
    """Paint the visible part of ``box`` (xywh, may be outside) in ``color``."""
    x, y, w, h = box
    x0, y0 = int(np.clip(np.floor(x), 0, W)), int(np.clip(np.floor(y), 0, H))
    x1, y1 = int(np.clip(np.ceil(x + w), 0, W)), int(np.clip(np.ceil(y + h), 0, H))
    frame[y0:y1, x0:x1] = color


@st.composite
def sequences(draw):
    """(frames (N_STEPS + 1, H, W, 3) uint8, init box (4,), description)."""
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    background = draw(st.sampled_from(["noise", "black", "white", "blocks"]))
    size = draw(st.sampled_from(["tiny", "normal", "huge"]))
    w, h = {"tiny": lambda: rng.uniform(0.3, 4, 2),
            "normal": lambda: rng.uniform(5, 30, 2),
            "huge": lambda: rng.uniform(1.0, 3.0, 2) * (W, H)}[size]()
    # start anywhere the box overlaps the frame (init rejects boxes wholly outside)
    x = -0.9 * w + draw(st.floats(0, 1)) * (W - 1 + 0.9 * w)
    y = -0.9 * h + draw(st.floats(0, 1)) * (H - 1 + 0.9 * h)
    motion = draw(st.sampled_from(["still", "walk", "fast", "leave", "teleport"]))
    speed = {"still": 0.0, "walk": 3.0, "fast": 15.0, "leave": 0.0, "teleport": 0.0}[motion]
    occluded = draw(st.sampled_from([None, (2, 5), (1, N_STEPS + 1)]))  # full occlusion
    color = rng.integers(0, 256, 3)
    direction = rng.normal(size=2)
    direction /= np.linalg.norm(direction) + 1e-9

    frames = np.empty((N_STEPS + 1, H, W, 3), np.uint8)
    pos = np.array([x, y])
    for t in range(N_STEPS + 1):
        if background == "noise":
            f = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
        elif background == "blocks":
            cells = rng.integers(0, 256, (H // 8, W // 8, 3))
            f = np.kron(cells, np.ones((8, 8, 1))).astype(np.uint8)
        else:
            f = np.full((H, W, 3), 0 if background == "black" else 255, np.uint8)
        if t > 0:
            if motion == "leave":  # out through an edge and well beyond it
                pos = pos + direction * 0.5 * max(W, H)
            elif motion == "teleport" and rng.random() < 0.3:
                pos = rng.uniform(-W, 2 * W), rng.uniform(-H, 2 * H)
            else:
                pos = pos + rng.normal(size=2) * speed
        if occluded is None or not (occluded[0] <= t < occluded[1]) or t == 0:
            _draw(f, (*pos, w, h), color)
        frames[t] = f
    desc = f"seed={seed} {background} {size} {motion} occluded={occluded}"
    return frames, np.asarray([x, y, w, h], np.float32), desc


def _assert_finite_tree(tree, what):
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        a = np.asarray(leaf) if not jax.dtypes.issubdtype(leaf.dtype, jax.dtypes.prng_key) \
            else np.asarray(jax.random.key_data(leaf))
        if np.issubdtype(a.dtype, np.floating):
            assert np.all(np.isfinite(a)), f"{what}: non-finite {jax.tree_util.keystr(path)}"


COUNT = {"sequences": 0, "steps": 0}


@FUZZ
@given(seq=sequences())
def test_step_always_returns_a_valid_box_and_a_finite_state(params, seq):
    frames, box, desc = seq
    state = jtrack.init(CONFIG, params, frames[0], box, jax.random.key(3))
    _assert_finite_tree(state, f"{desc} init state")
    lo = min(CONFIG.min_box_size, W, H)
    for t in range(1, len(frames)):
        state, out = jtrack.step(CONFIG, state, frames[t])
        b, score = np.asarray(out.box, np.float64), float(out.score)
        where = f"{desc} frame {t}: box {b.tolist()} score {score}"
        assert np.all(np.isfinite(b)) and np.isfinite(score), where
        assert b[2] >= lo - 1e-4 and b[3] >= lo - 1e-4, where
        assert b[0] >= -1e-4 and b[1] >= -1e-4, where
        assert b[0] + b[2] <= W + 1e-3 and b[1] + b[3] <= H + 1e-3, where
        assert 0.0 <= score <= 1.0, where
        assert np.all(np.isfinite(np.asarray(out.top_boxes))), where
        _assert_finite_tree(state, where + " state")
        COUNT["steps"] += 1
    COUNT["sequences"] += 1


def test_fuzz_ran_enough_sequences():
    """Guards against the property test silently running nothing (hypothesis
    runs fewer examples when strategies filter too much)."""
    if COUNT["sequences"] == 0:
        pytest.skip("run together with the property test")
    print(f"fuzzed sequences: {COUNT['sequences']}, steps: {COUNT['steps']}")
    assert COUNT["sequences"] >= min(EXAMPLES, 40) * 0.9


# ----------------------------------------------------------------------------
# leave and re-enter


def _red_square_sequence(xs, ys, side=12.0, seed=0):
    """A red square at positions ``xs, ys`` on a gray textured background."""
    rng = np.random.default_rng(seed)
    frames = np.empty((len(xs), H, W, 3), np.uint8)
    for t, (x, y) in enumerate(zip(xs, ys)):
        f = (110 + rng.integers(0, 20, (H, W, 3))).astype(np.uint8)
        _draw(f, (x, y, side, side), (220, 30, 30))
        frames[t] = f
    gt = np.asarray([[x, y, side, side] for x, y in zip(xs, ys)], np.float32)
    return frames, gt


def _leave_and_reenter(config, params, seed):
    """The square in view 0-12 moving right, out of view 16-24, back in from
    the right edge at frame 25 but 30 px (2.5 box sides) lower than where it
    left. Returns per-frame boxes, success flags, widening, ground truth."""
    xs = ([20.0 + 3 * t for t in range(10)] + [50.0 + 6 * t for t in range(10)]
          + [200.0] * 5 + [W - 12.0 - 2 * t for t in range(15)])
    ys = [10.0] * 25 + [40.0] * 15
    frames, gt = _red_square_sequence(xs, ys, seed=seed)
    state = jtrack.init(config, params, frames[0], gt[0], jax.random.key(seed))
    outs = []
    for f in frames[1:]:
        state, out = jtrack.step(config, state, f)
        outs.append((np.asarray(out.box), bool(out.success), float(state.widen)))
    boxes = np.stack([o[0] for o in outs])
    return (boxes, np.asarray([o[1] for o in outs]), np.asarray([o[2] for o in outs]),
            gt[1:])


@pytest.mark.parametrize("seed", [0, 1, 2, 3])
def test_tracking_resumes_after_the_target_leaves_and_reenters(params, seed):
    """The box waits near the exit, so only the widened search reaches the
    square when it re-enters 30 px away: with widening the box is back on it
    (mean centre error under one side, 12 px), without (failure_widen=1) it
    stays over a side away. Measured with this tiny tracker, 4 seeds: centre
    error 1.8-9.8 px vs 28-41 px. Only the position is asserted: the
    re-detected shape can be off (lost_aspect reshapes the box while the
    target is lost; IoU 0.16-0.69 on these frames). Updates at once: with
    3 iterations per frame the control without widening also found the
    square again in 2 of the 4 seeds, so it could not tell."""
    gone = slice(19, 24)  # frames 20..24, target fully outside
    back = slice(31, 39)  # frames 32..39, a few frames after re-entry
    for widen_factor in (CONFIG.failure_widen, 1.0):
        cfg = CONFIG.replace(failure_widen=widen_factor, iters_per_frame=0)
        boxes, success, widen, gt = _leave_and_reenter(cfg, params, seed)
        assert not success[gone].any(), "reported the target found while it was out of view"
        centre_err = np.linalg.norm(boxes[:, :2] + boxes[:, 2:] / 2 - gt[:, :2] - 6.0, axis=1)
        if widen_factor > 1.0:
            assert np.all(widen[gone] > 1.0), "search was not widened while the target was lost"
            assert centre_err[back].mean() < 12.0, centre_err.round(1)
            assert iou_np(boxes, gt)[back].mean() > 0.1, iou_np(boxes, gt).round(2)
        else:  # the control: the test can tell a search that reaches it
            assert centre_err[back].mean() > 12.0, centre_err.round(1)


def test_a_frame_smaller_than_the_target_box(params):
    """The target box (60x50) outgrows a later, smaller frame (20x16): the
    output is still a valid box inside that frame (only the region crop
    compiles for the new frame size)."""
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
    state = jtrack.init(CONFIG, params, frame, [10, 8, 60, 50], jax.random.key(0))
    for small in (frame[:16, :20], frame[:16, :20] // 2):
        state, out = jtrack.step(CONFIG, state, np.ascontiguousarray(small))
        b = np.asarray(out.box, np.float64)
        assert np.all(np.isfinite(b)) and np.isfinite(float(out.score)), b
        assert b[0] >= 0 and b[1] >= 0 and b[0] + b[2] <= 20 + 1e-3 and b[1] + b[3] <= 16 + 1e-3, b
        assert b[2] >= 4 - 1e-4 and b[3] >= 4 - 1e-4, b
        _assert_finite_tree(state, "state after a small frame")


def test_a_lost_target_holds_the_previous_box(params):
    """success_threshold=1 makes every frame "lost": with hold_on_failure the
    box stays put (and the search widens); without it the box follows the
    top-K mean of the candidates."""
    rng = np.random.default_rng(0)
    frames = rng.integers(0, 255, (3, H, W, 3), dtype=np.uint8)
    box = np.array([30.0, 20.0, 16.0, 14.0], np.float32)
    moved = []
    for hold in (True, False):
        cfg = CONFIG.replace(success_threshold=1.0 - 1e-6, hold_on_failure=hold)
        state = jtrack.init(cfg, params, frames[0], box, jax.random.key(0))
        for f in frames[1:]:
            before = np.asarray(state.box)
            state, out = jtrack.step(cfg, state, f)
            assert not bool(out.success)
            moved.append(float(np.abs(np.asarray(out.box) - before).max()))
        assert float(state.widen) > 1.0
    assert max(moved[:2]) < 1e-4, moved   # held
    assert min(moved[2:]) > 0.1, moved    # followed the candidates


def test_lost_search_varies_the_shape_at_constant_area():
    """lost_aspect: after a failure (widen > 1) the candidates' w/h ratios
    spread over lost_aspect ** [-1, 1] at the box's area; before one (and
    with the default lost_aspect 1) they are exactly the py-MDNet ones."""
    box = np.array([100.0, 80.0, 30.0, 40.0], np.float32)
    cfg = CONFIG.replace(n_candidates=512, scale=1.0, aspect=1.0, trans=0.0,
                         max_aspect_change=10.0, lost_aspect=1.0)
    state = tracker.TrackerState(
        backbone=None, head=None, opt_state=None, memory=None, bbreg=None,
        box=jax.numpy.asarray(box), frame_index=0, key=None, widen=jax.numpy.float32(1.0),
        scores=None, image_wh=jax.numpy.asarray([400.0, 300.0]),
        init_wh=jax.numpy.asarray(box[2:]), pending=None, window=None)
    key, wh = jax.random.key(3), state.image_wh
    found = np.asarray(tracker._candidates(cfg.replace(lost_aspect=3.0), state, key, wh))
    plain = np.asarray(tracker._candidates(cfg, state, key, wh))
    np.testing.assert_array_equal(found, plain)
    lost_state = state.replace(widen=jax.numpy.float32(1.5))
    lost = np.asarray(tracker._candidates(cfg.replace(lost_aspect=3.0), lost_state, key, wh))
    ratio = (lost[:, 2] / lost[:, 3]) / (box[2] / box[3])
    assert ratio.min() > 1 / 3 - 1e-3 and ratio.max() < 3 + 1e-3
    assert ratio.min() < 0.5 and ratio.max() > 2.0, (ratio.min(), ratio.max())
    np.testing.assert_allclose(lost[:, 2] * lost[:, 3], box[2] * box[3], rtol=1e-4)
    centres = lost[:, :2] + lost[:, 2:] / 2
    np.testing.assert_allclose(centres, np.broadcast_to(box[:2] + box[2:] / 2, centres.shape),
                               atol=1e-3)
    lost_default = np.asarray(tracker._candidates(cfg, lost_state, key, wh))
    np.testing.assert_allclose(lost_default[:, 2:], np.broadcast_to(box[2:], (512, 2)),
                               rtol=1e-5)


def test_bbreg_refines_the_output_and_feeds_back_only_when_asked(params):
    """bbreg_feedback=False (py-MDNet): the reported box is the regressed one,
    the next search centre (state.box) stays the unrefined top-K mean."""
    rng = np.random.default_rng(1)
    frames = rng.integers(0, 255, (2, H, W, 3), dtype=np.uint8)
    box = np.array([30.0, 20.0, 16.0, 14.0], np.float32)
    for feedback in (True, False):
        cfg = CONFIG.replace(success_threshold=1e-6, bbreg_feedback=feedback)
        state = jtrack.init(cfg, params, frames[0], box, jax.random.key(0))
        state, out = jtrack.step(cfg, state, frames[1])
        assert bool(out.success)
        gap = float(np.abs(np.asarray(out.box) - np.asarray(state.box)).max())
        if feedback:
            assert gap < 1e-5, gap
        else:
            assert gap > 1e-3, gap
