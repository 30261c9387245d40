"""Online updates spread over frames (``TrackerConfig.iters_per_frame``).

Tiny tracker (tests/tiny_tracker.py): one frame size, so init and step
compile once per config.
"""

from __future__ import annotations

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny_tracker
from tiny_tracker import CONFIG, FRAME_HW

import jtrack
from jtrack import tracker

H, W = FRAME_HW


@pytest.fixture(scope="module")
def params():
    return tiny_tracker.params(0)


@pytest.fixture(scope="module")
def frames():
    """9 frames: a red square drifting right over gray noise."""
    rng = np.random.default_rng(0)
    out = (110 + rng.integers(0, 30, (9, H, W, 3))).astype(np.uint8)
    for t in range(9):
        x = 20 + 2 * t
        out[t, 24:38, x:x + 14] = (220, 30, 30)
    return out


BOX = np.array([20.0, 24.0, 14.0, 14.0], np.float32)


def _run(config, params, frames):
    """Per step: (updated, pending, window, head leaves) after the step."""
    state = jtrack.init(config, params, frames[0], BOX, jax.random.key(3))
    rows = []
    for f in frames[1:]:
        state, out = jtrack.step(config, state, f)
        rows.append((bool(out.updated), int(state.pending), int(state.window),
                     [np.asarray(x) for x in jax.tree.leaves(state.head)],
                     np.asarray(out.box)))
    return rows


def _head_changed(rows, i):
    before = rows[i - 1][3] if i else None
    return before is None or any(not np.array_equal(a, b) for a, b in zip(before, rows[i][3]))


# One base config for the whole file (each config compiles init and step):
# always found, a long-term update every 5 frames (t = 5 in a 9-frame run),
# each update at once.
BASE = CONFIG.replace(success_threshold=1e-6, long_interval=5, iters_update=5,
                      iters_per_frame=0)


def test_one_chunk_of_the_whole_update_is_the_default_update(params, frames):
    """iters_per_frame = iters_update runs the same iterations with the same
    keys on the same frames as the unspread default (0)."""
    want = _run(BASE, params, frames)
    got = _run(BASE.replace(iters_per_frame=BASE.iters_update), params, frames)
    assert any(r[0] for r in want), "no update in the run"
    for w, g in zip(want, got):
        assert w[0] == g[0]
        np.testing.assert_allclose(g[4], w[4], rtol=1e-5, atol=1e-4)
        for a, b in zip(w[3], g[3]):
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def test_an_update_runs_in_chunks_over_the_next_frames(params, frames):
    """5 iterations at 2 per frame train on t = 5, 6, 7 (3, 1, 0 left) and
    on no other frame."""
    cfg = BASE.replace(iters_per_frame=2)
    rows = _run(cfg, params, frames)
    updated = [r[0] for r in rows]
    assert updated == [False] * 4 + [True] * 3 + [False], updated
    assert [r[1] for r in rows][4:7] == [3, 1, 0]
    assert all(r[2] == cfg.frames_long for r in rows[4:7])
    assert [_head_changed(rows, i) for i in range(1, len(rows))] == updated[1:]


def test_a_new_update_restarts_the_count():
    """A failure asks for a short-term update: the count restarts at
    iters_update (one chunk runs now) whatever was left, and the window
    becomes frames_short; without a new update the count runs down."""
    cfg = BASE.replace(iters_per_frame=2)
    state = types.SimpleNamespace(pending=jnp.int32(1), window=jnp.int32(cfg.frames_long))
    lost = tracker._schedule_update(cfg, state, jnp.bool_(True), jnp.bool_(False))
    assert [int(x) for x in lost] == [1, 3, cfg.frames_short]
    idle = tracker._schedule_update(cfg, state, jnp.bool_(False), jnp.bool_(True))
    assert [int(x) for x in idle] == [1, 0, cfg.frames_long]
    done = types.SimpleNamespace(pending=jnp.int32(0), window=jnp.int32(cfg.frames_long))
    assert not bool(tracker._schedule_update(cfg, done, jnp.bool_(False), jnp.bool_(True))[0])
    # unspread (0): train exactly on the frames that ask
    flat = tracker._schedule_update(BASE, done, jnp.bool_(True), jnp.bool_(True))
    assert [int(x) for x in flat] == [1, 0, cfg.frames_long]


def test_config_rejects_a_negative_chunk():
    with pytest.raises(ValueError, match="iters_per_frame"):
        CONFIG.replace(iters_per_frame=-1)


def test_deferred_first_frame_iterations_run_on_the_next_frames(params, frames):
    """iters_init_first: the first frame trains that many iterations (the
    same head as that iters_init) and the next frames run the other ones,
    iters_per_frame at a time, before any update."""
    cfg = BASE.replace(iters_per_frame=2, iters_init=6, iters_init_first=2)
    assert tracker.first_frame_iters(cfg) == (2, 4)
    state = jtrack.init(cfg, params, frames[0], BOX, jax.random.key(3))
    short = jtrack.init(cfg.replace(iters_init=2), params, frames[0], BOX, jax.random.key(3))
    for a, b in zip(jax.tree.leaves(state.head), jax.tree.leaves(short.head)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert int(state.pending) == 4 and int(short.pending) == 0
    rows = _run(cfg, params, frames)
    updated = [r[0] for r in rows]
    # t = 1, 2: the deferred 4 (2 left, then 0); t = 5, 6, 7: the long-term update
    assert updated == [True, True, False, False, True, True, True, False], updated
    assert [r[1] for r in rows][:2] == [2, 0]
    assert [_head_changed(rows, i) for i in range(1, len(rows))] == updated[1:]


def test_all_first_frame_iterations_at_once_without_chunks():
    assert tracker.first_frame_iters(BASE.replace(iters_init=6, iters_init_first=2)) == (6, 0)
    assert tracker.first_frame_iters(CONFIG.replace(iters_init=5, iters_init_first=20)) == (5, 0)
    with pytest.raises(ValueError, match="iters_init_first must be a positive int"):
        CONFIG.replace(iters_init_first=0)
