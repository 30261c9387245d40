"""Offline multi-domain pretraining: learning, data parallelism, exact
resume, exclude list, head export/load. Tiny settings (a one-conv test
backbone, 3 short synthetic domains) keep it cheap; the cost is almost all
compilation (four step/eval programs), shared between tests via the
``make_step`` / ``make_eval`` caches."""

import json
import os
import re
import sys

import flax.linen as nn
import imageio.v3 as iio
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import local_processes

from jtrack import TrackerConfig, nets, parallel, tracker
from jtrack.data.synthetic import moving_object
from jtrack.pretrain import (Checkpoints, PretrainConfig, apply_exclude, evaluate,
                             held_batches, init_state, load_head, load_params, make_eval,
                             make_step, prepare_domain, save_head, summarize, train_steps)
from jtrack.pretrain.head import arrays_sha256, write_manifest
from jtrack.pretrain.sources import collect_sources


class _TinyConv(nn.Module):
    @nn.compact
    def __call__(self, x):
        return nn.relu(nn.Conv(16, (4, 4), (2, 2), padding="VALID", name="conv")(x / 255.0))


class _Scale(nn.Module):  # a second, trainable "block" after the conv
    @nn.compact
    def __call__(self, x):
        return x * self.param("gain", nn.initializers.ones, (x.shape[-1],))


def _tiny_backbone():
    """conv, then a per-channel gain; splittable before the gain."""
    conv, gain = _TinyConv(), _Scale()

    def init(key):
        del key  # stands for a pretrained trunk: the same weights for any key
        x = jnp.zeros((48, 48, 3))
        p = conv.init(jax.random.key(0), x)["params"]
        return {"conv": p, "gain": gain.init(jax.random.key(0),
                                             conv.apply({"params": p}, x))["params"]}

    def front(p, x):
        return conv.apply({"params": p["conv"]}, x)

    def tail(p, mid):
        return gain.apply({"params": p["gain"]}, mid)

    def split(k):
        if k != 1:
            raise ValueError("the tiny backbone has 2 blocks; only the last one can train alone")
        return nets.BackboneSplit(front, tail, ("gain",))

    return nets.Backbone("pretrain_test_tiny", init, lambda p, x: tail(p, front(p, x)),
                         stride=2.0, offset=2.0, channels=16, split=split)


nets.register_backbone("pretrain_test_tiny", _tiny_backbone)
TC = TrackerConfig(backbone="pretrain_test_tiny", region_size=48, hidden=32, dropout=0.0)
CFG = PretrainConfig(tracker=TC, frames_per_batch=4, n_pos=8, n_neg=24, lr=0.01)


def _domains(cfg):
    bb = nets.get_backbone(TC.backbone).init(jax.random.key(0))
    out = []
    for s in range(3):
        frames, gt = moving_object(n_frames=10, frame_hw=(64, 80), object_hw=(16, 20),
                                   occlusion=None, seed=s)
        out.append(prepare_domain(cfg, f"syn{s}", frames, gt, bb, holdout=0.2))
    return out


@pytest.fixture(scope="module")
def domains():
    return _domains(CFG)


CFG_BB = CFG.replace(layer_lr=CFG.layer_lr + (("backbone", 0.1),))


@pytest.fixture(scope="module")
def bb_domains():
    out = []
    for s in range(2):
        frames, gt = moving_object(n_frames=6, frame_hw=(64, 80), object_hw=(16, 20),
                                   occlusion=None, seed=s)
        out.append(prepare_domain(CFG_BB, f"syn{s}", frames, gt, holdout=0.0))
    return out


def _run(cfg, domains, n_devices, n_steps, state=None):
    mesh = parallel.make_mesh(n_devices)
    if state is None:
        state = init_state(cfg, len(domains), 0, 0, mesh)
    step = make_step(cfg, mesh)
    return train_steps(cfg, state, domains, n_steps, step)


def _assert_trees(a, b, exact=False):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        if exact:
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
        else:
            np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=1e-4, atol=1e-6)


def test_domains_are_cached_feature_maps(domains):
    d = domains[0]
    assert d.data.shape == (10, 23, 23, 16) and d.data.dtype == np.float32
    assert len(d.train) == 8 and list(d.held) == [8, 9]


def test_loss_decreases_and_metrics(domains):
    state, ms = _run(CFG, domains, 1, 30)
    first, last = summarize(ms[:6]), summarize(ms[-6:])
    assert last["loss"] < 0.7 * first["loss"], (first, last)
    assert last["TrackTopKAcc"] >= first["TrackTopKAcc"]
    held = evaluate(CFG, state["params"], held_batches(CFG, domains),
                    make_eval(CFG, parallel.make_mesh(1)), jax.random.key(1))
    assert set(held) == {"loss", "PR", "RR", "TrackTopKAcc"}
    assert np.isfinite(held["loss"]) and 0.0 <= held["RR"] <= 1.0


def test_two_devices_equal_one_device(bb_domains):
    # Trained backbone: the averaged gradient covers the conv layers too.
    assert jax.device_count() >= 2, "conftest forces 4 host CPU devices"
    s1, m1 = _run(CFG_BB, bb_domains, 1, 2)
    s2, m2 = _run(CFG_BB, bb_domains, 2, 2)
    _assert_trees(s1["params"], s2["params"])
    _assert_trees(s1["opt_state"], s2["opt_state"])
    np.testing.assert_allclose(summarize(m1)["loss"], summarize(m2)["loss"], rtol=1e-5)
    # the 2-device run really is split over 2 devices
    assert len(s2["params"]["fc4"]["kernel"].sharding.device_set) == 2


def test_checkpoint_resume_continues_exactly(domains, tmp_path):
    straight, _ = _run(CFG, domains, 1, 4)
    meta = {"domains": [d.name for d in domains]}
    ckpt = Checkpoints(str(tmp_path / "ck"), every=2)
    mesh = parallel.make_mesh(1)
    state = init_state(CFG, len(domains), 0, 0, mesh)
    step = make_step(CFG, mesh)
    train_steps(CFG, state, domains, 3, step, lambda s, st: ckpt.maybe_save(s, st, meta))
    ckpt.wait()
    ckpt.close()
    assert Checkpoints(str(tmp_path / "ck"), every=2).latest_step() == 2
    # a fresh process-like restore: new manager, template from a new init
    again = Checkpoints(str(tmp_path / "ck"), every=2)
    template = init_state(CFG, len(domains), 0, 0, mesh)
    restored = again.restore(template, meta)
    assert int(restored["step"]) == 2
    resumed, _ = train_steps(CFG, restored, domains, 2, step)
    _assert_trees(straight["params"], resumed["params"], exact=True)
    _assert_trees(straight["opt_state"], resumed["opt_state"], exact=True)
    with pytest.raises(ValueError, match="different settings.*domains"):
        again.restore(template, {"domains": ["other"]})
    # same settings, another state layout (e.g. written by another jtrack version)
    with pytest.raises(ValueError, match="laid out differently.*remove it"):
        again.restore({**template, "new_field": np.zeros(3, np.float32)}, meta)


def test_trained_backbone_uses_crops_and_moves(bb_domains):
    dom = bb_domains[0]
    assert dom.data.shape == (6, 48, 48, 3) and dom.data.dtype == np.uint8
    mesh = parallel.make_mesh(1)
    state = init_state(CFG_BB, len(bb_domains), 0, 0, mesh)
    before = jax.tree.map(np.asarray, state["params"]["backbone"])
    state, _ = _run(CFG_BB, bb_domains, 1, 2, state)
    moved = [not np.array_equal(a, np.asarray(b)) for a, b in
             zip(jax.tree.leaves(before), jax.tree.leaves(state["params"]["backbone"]))]
    assert any(moved)
    assert "backbone" not in init_state(CFG, 1, 0, 0, mesh)["params"]


def test_last_blocks_train_on_the_cached_front(tmp_path):
    """backbone_blocks=1: the domain caches the front's output, only the last
    block trains, and the tracker loads it over the untrained front."""
    cfg = CFG_BB.replace(backbone_blocks=1)
    frames, gt = moving_object(n_frames=6, frame_hw=(64, 80), object_hw=(16, 20),
                               occlusion=None, seed=0)
    bb = nets.get_backbone(TC.backbone)
    start = bb.init(jax.random.key(0))
    doms = [prepare_domain(cfg, "syn0", frames, gt, start, holdout=0.0)]
    assert doms[0].data.shape == (6, 23, 23, 16) and doms[0].data.dtype == np.float32
    mesh = parallel.make_mesh(1)
    state = init_state(cfg, 1, 0, 0, mesh)
    assert set(state["params"]["backbone"]) == {"gain"}
    # cached front + tail == the whole backbone on the crop
    crop = prepare_domain(CFG_BB, "syn0", frames, gt, holdout=0.0).data[:2]
    from jtrack.pretrain import model
    np.testing.assert_allclose(
        model.feature_maps(cfg, state["params"], {"mid": doms[0].data[:2]}),
        bb.apply(start, crop.astype(np.float32)), rtol=1e-5, atol=1e-6)
    state, _ = _run(cfg, doms, 1, 2, state)
    params = jax.device_get(state["params"])
    assert not np.array_equal(params["backbone"]["gain"]["gain"], start["gain"]["gain"])
    path = str(tmp_path / "head.npz")
    save_head(path, cfg, params, {"steps": 2})
    loaded = load_params(path, TC, jax.random.key(3))["backbone"]
    np.testing.assert_array_equal(loaded["gain"]["gain"], params["backbone"]["gain"]["gain"])
    np.testing.assert_array_equal(loaded["conv"]["conv"]["kernel"],
                                  start["conv"]["conv"]["kernel"])
    with pytest.raises(ValueError, match="backbone_blocks > 0 needs a trained backbone"):
        CFG.replace(backbone_blocks=1)
    with pytest.raises(ValueError, match="only the last one can train alone"):
        init_state(CFG_BB.replace(backbone_blocks=2), 1, 0, 0, mesh)
    uncut = cfg.replace(tracker=TC.replace(backbone="vggm"))  # registered without a split
    with pytest.raises(ValueError, match="'vggm' cannot be cut"):
        prepare_domain(uncut, "syn0", frames, gt, start, holdout=0.0)


def test_augmented_views_of_training_frames():
    from jtrack.pretrain.augment import Augment, flip_box
    frames, gt = moving_object(n_frames=10, frame_hw=(64, 80), object_hw=(16, 20),
                               occlusion=None, seed=0)
    bb = nets.get_backbone(TC.backbone).init(jax.random.key(0))
    cfg = CFG.replace(augment=Augment(copies=2))
    dom = prepare_domain(cfg, "syn0", frames, gt, bb, holdout=0.2)
    # 10 frames, the last 2 held out; 2 views of each of the 8 training frames
    assert len(dom) == 10 and dom.augmented == 16 and len(dom.data) == 26
    assert list(dom.held) == [8, 9] and sorted(dom.train) == [*range(8), *range(10, 26)]
    np.testing.assert_array_equal(prepare_domain(cfg, "syn0", frames, gt, bb, 0.2).data,
                                  dom.data)
    # a pure flip is the mirror image of the crop, with the mirrored box
    flip = CFG_BB.replace(augment=Augment(copies=1, shift=0.0, scale=1.0, flip=1.0,
                                          colour=0.0, blur=0.0))
    d = prepare_domain(flip, "syn0", frames, gt, holdout=0.0)
    np.testing.assert_allclose(d.data[13].astype(int), d.data[3][:, ::-1].astype(int), atol=1)
    np.testing.assert_allclose(d.gt[13], flip_box(gt[3], 80))
    assert not np.array_equal(d.data[13], d.data[3])
    with pytest.raises(ValueError, match="augment.scale must be >= 1"):
        CFG.replace(augment=Augment(copies=1, scale=0.5))


def test_exclude_list_respected(tmp_path):
    keep, unused = apply_exclude(["Diving", "Jogging-1", "Jogging-2", "ball1", "Crossing"],
                                 ["jogging", "BALL1", "Basketball"])
    assert keep == [0, 4] and unused == {"Basketball"}
    root = tmp_path / "otb"
    for name in ("SeqA", "SeqB"):
        os.makedirs(root / name / "img")
        for i in range(3):
            iio.imwrite(root / name / "img" / f"{i + 1:04d}.jpg",
                        np.full((40, 50, 3), 100 + i, np.uint8))
        (root / name / "groundtruth_rect.txt").write_text("5,5,10,12\n" * 3)
    sources, unused = collect_sources([str(root)], 2, 5, (64, 64), 7, ["seqb", "photo_8"])
    assert [n for n, _ in sources] == ["SeqA", "photo_7"] and not unused
    frames, gt = sources[0][1]()
    assert len(list(frames)) == 3 and gt.shape == (3, 4)


def test_head_export_loads_into_tracker(domains, tmp_path):
    state, _ = _run(CFG, domains, 1, 2)
    params = jax.device_get(state["params"])
    path = str(tmp_path / "head.npz")
    save_head(path, CFG, params, {"steps": 2})
    head = load_head(path, TC, jax.random.key(3))
    np.testing.assert_array_equal(head["fc4"]["kernel"], params["fc4"]["kernel"])
    np.testing.assert_array_equal(head["fc5"]["bias"], params["fc5"]["bias"])
    # fc6 from the file: the mean of the 3 domain branches; or fresh random
    np.testing.assert_allclose(head["fc6"]["kernel"], params["fc6"]["kernel"].mean(0),
                               rtol=1e-6)
    fresh = load_head(path, TC, jax.random.key(3), fc6="random")
    assert fresh["fc6"]["kernel"].shape == (TC.hidden, 2)
    assert not np.allclose(fresh["fc6"]["kernel"], head["fc6"]["kernel"])
    full = load_params(path, TC, jax.random.key(3))
    tracker._check_params(TC, full)  # the shape check jtrack.init applies
    with pytest.raises(ValueError, match="hidden 32 in the file vs 64"):
        load_head(path, TC.replace(hidden=64), jax.random.key(0))
    with pytest.raises(ValueError, match="region_size 48 in the file vs 64"):
        load_head(path, TC.replace(region_size=64), jax.random.key(0))
    # the manifest: the arrays' hash, and what a loader must match
    man = write_manifest(path, str(tmp_path / "head.json"), "cmd", {"note": 1})
    assert man["sha256"] == arrays_sha256(path) and len(man["sha256"]) == 64
    assert man["must_match"]["hidden"] == 32 and man["steps"] == 2 and man["note"] == 1
    params["fc4"]["kernel"] = params["fc4"]["kernel"] + 1.0
    save_head(path, CFG, params, {"steps": 2})
    assert arrays_sha256(path) != man["sha256"]


def test_bad_settings_are_named():
    from jtrack.pretrain import parse_layer_lr
    with pytest.raises(ValueError, match="neg_iou must be < pos_iou"):
        PretrainConfig(pos_iou=0.5, neg_iou=0.6)
    with pytest.raises(ValueError, match="layer_lr entries"):
        PretrainConfig(layer_lr=(("conv9", 1.0),))
    assert parse_layer_lr("fc4=1, fc6=10,backbone=0.1") == (
        ("fc4", 1.0), ("fc6", 10.0), ("backbone", 0.1))
    with pytest.raises(ValueError, match="layer=multiplier"):
        parse_layer_lr("fc4")
    with pytest.raises(ValueError, match="does not split evenly over 3 devices"):
        make_step(CFG, parallel.make_mesh(3))
    with pytest.raises(ValueError, match="2 frames but 3 ground-truth rows"):
        prepare_domain(CFG, "bad", np.zeros((2, 64, 80, 3), np.uint8),
                       np.tile([[5.0, 5, 10, 10]], (3, 1)), backbone_params={})


_WORKER = [sys.executable, os.path.join(os.path.dirname(__file__), "pretrain_worker.py"),
           "--backbone=tiny_patch4_test", "--region_size=48", "--hidden=32", "--synthetic=3",
           "--synthetic_frames=8", "--synthetic_hw=64,80", "--exclude=",
           "--frames_per_batch=4", "--n_pos=8", "--n_neg=24", "--ckpt_every=1",
           "--noprogress", "--nocompilation_cache"]


def test_two_processes_pretrain_as_one_and_resume(tmp_path):
    """experiments.pretrain as 2 jax.distributed processes (2 devices each: a
    4-device global mesh) stopped after step 1 and resumed from the orbax
    checkpoint both wrote equals one uninterrupted 1-device process."""
    two_devices = {"XLA_FLAGS": re.sub(r"device_count=\d+", "device_count=2",
                                       os.environ["XLA_FLAGS"])}
    one, two = tmp_path / "one", tmp_path / "two"
    local_processes.run(_WORKER + ["--steps=2", "--devices=1", f"--ckpt_dir={one}"], 1,
                        two_devices)
    first = local_processes.run(_WORKER + ["--steps=1", f"--ckpt_dir={two}"], 2, two_devices)
    assert "1 steps in" in first[0] and "4 device(s) in 2 process(es)" in first[0]
    assert "wrote" not in first[1]  # process 0 alone writes the log, head and manifest
    again = local_processes.run(_WORKER + ["--steps=2", f"--ckpt_dir={two}"], 2, two_devices)
    assert "resumed from step 1" in again[0] and "1 steps in" in again[0]
    assert Checkpoints(str(two), every=1).steps() == [1, 2]
    a, b = np.load(one / "head.npz"), np.load(two / "head.npz")
    names = [k for k in a.files if k.startswith("head/")]
    assert len(names) == 6 and set(names) <= set(b.files)
    for k in names:
        np.testing.assert_allclose(b[k], a[k], rtol=1e-5, atol=1e-6, err_msg=k)
    assert [r["step"] for r in map(json.loads, open(two / "log.jsonl"))] == [1, 2]
    assert json.load(open(two / "head.json"))["machine"].endswith("in 2 process(es)")
