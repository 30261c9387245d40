"""Toolkit adapters and the stateful wrapper: got10k ``Tracker`` run by
got10k's ExperimentOTB (run + report) over a shipped sequence, the VOT integration loop
driven by a fake handle and by vot-trax's own client, ``StatefulTracker`` == the pure
functions."""

import os
import sys
import types

import jax
import numpy as np
import pytest

import jtrack
from jtrack.adapters import vot as vot_adapter
from jtrack.data import default_data_root, load_frame, read_otb
from jtrack.stateful import StatefulTracker

sys.path.insert(0, os.path.dirname(__file__))
from _small_config import CONFIG  # noqa: E402

N = 6


@pytest.fixture(scope="module")
def crossing():
    folder = os.path.join(default_data_root(), "otb", "Crossing")
    if not os.path.isdir(folder):
        pytest.fail(f"real test data missing: expected {folder} (set $JTRACK_DATA)")
    return read_otb(folder)[0]


@pytest.fixture(scope="module")
def params():
    return jtrack.init_params(CONFIG, jax.random.key(0))


def test_stateful_tracker_matches_the_pure_functions(crossing, params):
    frames = [load_frame(f) for f in crossing.frames[:N]]
    t = StatefulTracker(CONFIG, params, seed=0)
    got = [t.init(frames[0], crossing.gt[0])] + [t.update(f) for f in frames[1:]]
    assert t.frame_index == N - 1 and np.isfinite(t.score)
    state = jtrack.init(CONFIG, params, frames[0], crossing.gt[0],
                        jax.random.fold_in(jax.random.key(0), 1))
    want = [np.asarray(state.box)]
    for f in frames[1:]:
        state, out = jtrack.step(CONFIG, state, f)
        want.append(np.asarray(out.box))
    np.testing.assert_array_equal(np.stack(got), np.stack(want))
    with pytest.raises(RuntimeError, match="before init"):
        StatefulTracker(CONFIG, params).update(frames[0])


class _OneSequence:
    """got10k's dataset interface (iterable of (img_files, anno), seq_names)
    over one shipped sequence: ExperimentOTB's own constructor would
    download the whole OTB benchmark."""

    def __init__(self, seq, n):
        self.seq_names = [seq.name]
        self._item = (list(seq.frames[:n]), np.asarray(seq.gt[:n], np.float64))

    def __len__(self):
        return 1

    def __iter__(self):
        return iter([self._item])

    def __getitem__(self, i):
        return self._item


def test_got10k_tracker_in_experiment_otb(crossing, params, tmp_path):
    pytest.importorskip("got10k", reason="got10k not installed: pip install 'jtrack[got10k]'")
    from got10k.experiments import ExperimentOTB

    from jtrack.adapters.got10k import JTrackGot10k

    tracker = JTrackGot10k(CONFIG, params, name="jtrack_test")
    exp = ExperimentOTB.__new__(ExperimentOTB)  # got10k's run/report, our dataset
    exp.dataset = _OneSequence(crossing, N)
    exp.result_dir, exp.report_dir = str(tmp_path / "results"), str(tmp_path / "reports")
    exp.nbins_iou, exp.nbins_ce = 21, 51
    exp.plot_curves = lambda names: None  # matplotlib figures are not under test
    exp.run(tracker)
    boxes = np.loadtxt(tmp_path / "results" / "jtrack_test" / "Crossing.txt", delimiter=",")
    anno = np.asarray(crossing.gt[:N], np.float64)
    assert boxes.shape == (N, 4)
    np.testing.assert_allclose(boxes[0], anno[0], atol=1e-3)
    perf = exp.report(["jtrack_test"])["jtrack_test"]["overall"]
    assert 0.0 <= perf["success_score"] <= 1.0 and perf["speed_fps"] > 0
    # Same boxes as the stateful wrapper on the same frames (PIL images in got10k).
    ref = StatefulTracker(CONFIG, params)
    ref.init(load_frame(crossing.frames[0]), anno[0])
    np.testing.assert_allclose(boxes[1], ref.update(load_frame(crossing.frames[1])), atol=2e-3)
    # one_based converts at the edge: 1-based in, 1-based out
    t1 = JTrackGot10k(CONFIG, params, one_based=True)
    t1.init(load_frame(crossing.frames[0]), anno[0] + [1, 1, 0, 0])
    np.testing.assert_allclose(t1.update(load_frame(crossing.frames[1])),
                               boxes[1] + [1, 1, 0, 0], atol=2e-3)


class FakeVot:
    """What vot-toolkit's ``vot.VOT('rectangle')`` handle does, offline."""

    Rectangle = types.SimpleNamespace

    def __init__(self, frames, region):
        self._frames, self._region = list(frames), region
        self.reports = []

    def region(self):
        return self._region

    def frame(self):
        return [self._frames.pop(0)] if self._frames else None  # channel list, then end

    def report(self, region, confidence):
        self.reports.append((region, confidence))


def test_vot_integration_loop_with_a_fake_handle(crossing, params):
    gt1 = crossing.gt[0] + [1, 1, 0, 0]  # VOT regions are 1-based
    handle = FakeVot(crossing.frames[:N], types.SimpleNamespace(
        x=gt1[0], y=gt1[1], width=gt1[2], height=gt1[3]))
    n = vot_adapter.run_sequence(
        handle, lambda x, y, w, h: types.SimpleNamespace(x=x, y=y, width=w, height=h),
        StatefulTracker(CONFIG, params))
    assert n == N - 1 and len(handle.reports) == N - 1
    got = np.array([[r.x, r.y, r.width, r.height] for r, _ in handle.reports])
    ref = StatefulTracker(CONFIG, params)
    ref.init(load_frame(crossing.frames[0]), crossing.gt[0])
    want = np.stack([ref.update(load_frame(f)) for f in crossing.frames[1:N]]) + [1, 1, 0, 0]
    np.testing.assert_allclose(got, want, atol=1e-4)
    assert all(np.isfinite(c) for _, c in handle.reports)


def test_vot_region_forms_and_config_words():
    pts = [types.SimpleNamespace(x=x, y=y) for x, y in ((2, 3), (12, 3), (12, 8), (2, 8))]
    np.testing.assert_array_equal(vot_adapter._region_xywh(types.SimpleNamespace(points=pts)),
                                  [2, 3, 10, 5])
    np.testing.assert_array_equal(vot_adapter._region_xywh([1, 2, 3, 4]), [1, 2, 3, 4])
    with pytest.raises(ValueError, match="rectangle"):
        vot_adapter._region_xywh([1, 2, 3])
    assert vot_adapter.config_from_env("iters_update=3 backbone=vggm") == \
        jtrack.TrackerConfig(iters_update=3, backbone="vggm")
    assert vot_adapter.config_from_env("") == jtrack.TrackerConfig()
    saved = sys.modules.get("trax")
    sys.modules["trax"] = None  # make 'import trax' fail even if installed
    try:
        with pytest.raises(ImportError, match="vot-trax"):
            vot_adapter.main()
    finally:
        if saved is None:
            del sys.modules["trax"]
        else:
            sys.modules["trax"] = saved


def test_vot_adapter_through_a_real_trax_client(crossing, params):
    """vot-toolkit's side of the protocol played by vot-trax's own Client as
    the toolkit starts a tracker: a child process (what ``traxpython``
    runs) talking trax over its stdin/stdout."""
    trax = pytest.importorskip("trax", reason="vot-trax not installed: pip install 'jtrack[vot]'")
    import json
    import subprocess

    from _small_config import OVERRIDES
    from trax.client import Client

    env = {**os.environ, "JTRACK_VOT_CONFIG": " ".join(
        f"{k}={json.dumps(v)}" for k, v in OVERRIDES.items())}
    tracker = subprocess.Popen([sys.executable, "-c", "import jtrack.adapters.vot_run"],
                               env=env, cwd=os.path.dirname(os.path.dirname(__file__)),
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, bufsize=0)
    try:
        client = Client(stream=(tracker.stdin.fileno(), tracker.stdout.fileno()),
                        log=lambda message: None)
        image = lambda f: {trax.ImageChannel.COLOR: trax.FileImage.create(f)}  # noqa: E731
        gt1 = (crossing.gt[0] + [1, 1, 0, 0]).tolist()  # VOT regions are 1-based
        start, _ = client.initialize(image(crossing.frames[0]),
                                     [(trax.Rectangle.create(*gt1), {})], {})
        assert np.allclose(start[0][0].bounds(), gt1)
        boxes, confidences = [], []
        for f in crossing.frames[1:N]:
            objects, _ = client.frame(image(f), {}, [])
            region, props = objects[0]
            boxes.append(region.bounds())
            confidences.append(float(props["confidence"]))
        # a reset (reset-based experiment): initialise again on the same connection
        gt2 = (crossing.gt[N] + [1, 1, 0, 0]).tolist()
        start, _ = client.initialize(image(crossing.frames[N]),
                                     [(trax.Rectangle.create(*gt2), {})], {})
        assert np.allclose(start[0][0].bounds(), gt2)
        after_reset = client.frame(image(crossing.frames[N + 1]), {}, [])[0][0][0].bounds()
        client.quit()
        assert tracker.wait(timeout=60) == 0
    finally:
        if tracker.poll() is None:
            tracker.kill()
    ref = StatefulTracker(CONFIG, params)
    ref.init(load_frame(crossing.frames[0]), crossing.gt[0])
    want = np.stack([ref.update(load_frame(f)) for f in crossing.frames[1:N]]) + [1, 1, 0, 0]
    np.testing.assert_allclose(np.array(boxes), want, atol=1e-3)
    assert all(0 <= c <= 1 for c in confidences)
    ref.init(load_frame(crossing.frames[N]), crossing.gt[N])  # a fresh start, same seed
    np.testing.assert_allclose(after_reset, ref.update(load_frame(crossing.frames[N + 1]))
                               + [1, 1, 0, 0], atol=1e-3)
