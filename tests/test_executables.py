"""The on-disk store of compiled programs (jtrack.executables): a second
process loads init/step instead of tracing and compiling them, with the same
boxes; inside the caller's jit/vmap, or with the store off, plain jax.jit."""

import json
import os
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jtrack import executables

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# A child process: the small config, init + 3 steps on the built-in sequence;
# prints the boxes. With "forbid", building any stored program fails:
# everything must come from the store. (`jtrack track`'s multi-target path:
# test_cli's clean-run test.)
CHILD = """
import json, sys
import jax, numpy as np
import jtrack
from jtrack import executables
sys.path.insert(0, "tests")
from _small_config import CONFIG
from jtrack.data.synthetic import moving_object

jtrack.enable_compilation_cache(sys.argv[1])
if sys.argv[2] == "forbid":
    def refuse(jitted, args):
        raise AssertionError("compiled " + str(jitted))
    executables._compile_fresh = refuse
imgs, gt = moving_object(n_frames=4)
params = jtrack.init_params(CONFIG, jax.random.key(0))
state = jtrack.init(CONFIG, params, imgs[0], gt[0], jax.random.key(1))
boxes = []
for f in imgs[1:]:
    state, out = jtrack.step(CONFIG, state, f)
    boxes.append(np.asarray(out.box).tolist())
print(json.dumps(boxes))
"""


def _child(cache: str, mode: str) -> list:
    r = subprocess.run([sys.executable, "-c", CHILD, cache, mode], cwd=ROOT, timeout=600,
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_a_second_process_loads_every_program_and_tracks_the_same(tmp_path):
    # The run's shared cache (tests/conftest.py) when there is one: the first
    # child then loads what an earlier one built; the second must in any case.
    cache = os.environ.get("JAX_COMPILATION_CACHE_DIR") or str(tmp_path / "cache")
    first = _child(cache, "build")
    stored = os.listdir(os.path.join(cache, "jtrack-executables"))
    for name in ("init_from_region", "step_core", "crop_region", "init_head"):
        assert any(f.startswith(name + "-") for f in stored), (name, stored)
    second = _child(cache, "forbid")  # fails if it has to compile a stored program
    np.testing.assert_array_equal(second, first)


@pytest.fixture
def store(tmp_path):
    executables.enable(str(tmp_path / "store"))
    yield tmp_path / "store"
    executables.disable()


def _affine(scale, x, y):
    return x * scale + y, jnp.sum(x)


def _programs(store) -> list:
    return sorted(f for f in os.listdir(store) if f.endswith(".bin"))


def test_stored_programs_equal_jit_and_keep_donation(store):
    f = executables.stored_jit(_affine, static_argnums=0, donate_argnums=1)
    x, y = jnp.arange(3.0), jnp.ones(3)
    want = jax.jit(_affine, static_argnums=0)(2.0, x, y)
    got = f(2.0, jnp.arange(3.0), y)
    jax.tree.map(np.testing.assert_array_equal, got, want)
    assert len(_programs(store)) == 1
    donated = jnp.arange(3.0)
    f(2.0, donated, y)
    assert donated.is_deleted()
    # another instance (as in a new process) loads the file instead of compiling
    g = executables.stored_jit(_affine, static_argnums=0, donate_argnums=1)
    jax.tree.map(np.testing.assert_array_equal, g(2.0, jnp.arange(3.0), y), want)
    assert len(_programs(store)) == 1
    # another static value or shape is another program
    f(3.0, jnp.arange(3.0), y)
    f(2.0, jnp.arange(4.0), jnp.ones(4))
    assert len(_programs(store)) == 3


def test_the_next_start_prefetches_what_this_one_used(store, monkeypatch):
    f = executables.stored_jit(_affine, static_argnums=0)
    f(2.0, jnp.arange(3.0), jnp.ones(3))
    f(3.0, jnp.arange(3.0), jnp.ones(3))
    used = [m for m in os.listdir(store) if m.startswith("used-")]
    assert len(used) == 1
    assert sorted(json.loads((store / used[0]).read_text())) == _programs(store)
    # A new start: both programs load in the background; the calls take them
    # without compiling (a file that fails to load is rebuilt, as on disk).
    executables.enable(str(store))
    pending = {p: executables._prefetched[p] for p in map(str, store.glob("*.bin"))}
    assert len(pending) == 2

    def refuse(jitted, args):
        raise AssertionError("compiled although prefetched")
    monkeypatch.setattr(executables, "_compile_fresh", refuse)
    g = executables.stored_jit(_affine, static_argnums=0)
    np.testing.assert_array_equal(g(2.0, jnp.arange(3.0), jnp.ones(3))[0], [1.0, 3.0, 5.0])
    np.testing.assert_array_equal(g(3.0, jnp.arange(3.0), jnp.ones(3))[0], [1.0, 4.0, 7.0])
    assert not set(pending) & set(executables._prefetched)  # both taken


def test_tracers_and_other_devices_take_plain_jit(store):
    f = executables.stored_jit(_affine, static_argnums=0)
    y = jnp.ones(3)
    out = jax.jit(lambda x: f(2.0, x, y)[0])(jnp.arange(3.0))
    batched = jax.vmap(lambda x: f(2.0, x, x)[0])(jnp.ones((2, 3)))
    np.testing.assert_array_equal(out, [1.0, 3.0, 5.0])
    np.testing.assert_array_equal(batched, np.full((2, 3), 3.0))
    if len(jax.devices()) > 1:
        other = jax.device_put(jnp.arange(3.0), jax.devices()[1])
        np.testing.assert_array_equal(f(2.0, other, jax.device_put(y, jax.devices()[1]))[0],
                                      [1.0, 3.0, 5.0])
    assert not _programs(store)  # none of these went through the store


def test_a_corrupt_file_is_rebuilt(store):
    f = executables.stored_jit(_affine, static_argnums=0)
    f(2.0, jnp.arange(3.0), jnp.ones(3))
    (path,) = store.glob("*.bin")
    path.write_bytes(b"not a pickle")
    g = executables.stored_jit(_affine, static_argnums=0)
    np.testing.assert_array_equal(g(2.0, jnp.arange(3.0), jnp.ones(3))[0], [1.0, 3.0, 5.0])
    assert path.read_bytes() != b"not a pickle"


def test_off_by_default_and_with_the_flag():
    assert executables.folder() is None  # import jtrack turns nothing on


def test_a_program_xla_cannot_serialise_runs_as_plain_jit(store, monkeypatch):
    from jax.experimental import serialize_executable as se

    def refuse(compiled):
        raise RuntimeError("UNIMPLEMENTED: `LessThan` is not serializable.")

    def affine(scale, x, y):  # its own function: jax.jit's cache counts only this test
        return x * scale + y

    monkeypatch.setattr(se, "serialize", refuse)
    f = executables.stored_jit(affine, static_argnums=0)
    np.testing.assert_array_equal(f(2.0, jnp.arange(3.0), jnp.ones(3)), [1.0, 3.0, 5.0])
    (marker,) = store.iterdir()
    assert marker.name.endswith(".unstorable") and b"LessThan" in marker.read_bytes()
    assert f._cache_size() == 0  # compiled for the store (and refused), not through jit
    g = executables.stored_jit(affine, static_argnums=0)  # a later process
    np.testing.assert_array_equal(g(2.0, jnp.arange(3.0), jnp.ones(3)), [1.0, 3.0, 5.0])
    assert g._cache_size() == 1  # through jax.jit, not compiled for the store again
    assert list(store.iterdir()) == [marker]


def test_only_backbones_registered_by_jtrack_are_stored():
    """Code outside jtrack can change without changing the store's key."""
    import jtrack
    import tiny_tracker  # registers its backbone from tests/

    assert executables._static_ok((jtrack.TrackerConfig(), None, 3))
    assert not executables._static_ok((tiny_tracker.CONFIG,))
    assert not executables._static_ok((object(),))
