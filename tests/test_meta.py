"""Meta-learned first-frame adaptation: the meta-gradient against finite
differences, meta-steps lowering the held-out post-adaptation loss, exact
resume, 4 devices = 1 device, and the result loading into the tracker.
Tiny settings (tests/tiny_tracker.py, 3 short synthetic domains, 3 inner
steps); the cost is compiling the meta-step (the tracker's first-frame
training differentiated), shared through the ``make_step`` cache."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jtrack
import tiny_tracker
from jtrack import nets, parallel, region
from jtrack import tracker as T
from jtrack.data.synthetic import moving_object
from jtrack.meta import (MetaConfig, adapt, evaluate, held_batches, host_batch, init_state,
                         make_eval, make_step, meta_grad, prepare_meta_domain,
                         save_meta_head, summarize, train_steps)
from jtrack.pretrain import Checkpoints, PretrainConfig, load_params
from jtrack.weights import shipped

TC = tiny_tracker.CONFIG.replace(iters_init=3)
CFG = MetaConfig(pretrain=PretrainConfig(tracker=TC, n_pos=8, n_neg=24), episodes_per_batch=4,
                 query_frames=2, horizon=4, first_every=2, meta_lr=1e-3, rate_lr=1e-4)


@pytest.fixture(scope="module")
def domains():
    bb = nets.get_backbone(TC.backbone).init(jax.random.key(0))
    out = []
    for s in range(3):
        frames, gt = moving_object(n_frames=16, frame_hw=tiny_tracker.FRAME_HW,
                                   object_hw=(16, 20), occlusion=None, seed=s)
        out.append(prepare_meta_domain(CFG, f"syn{s}", frames, gt, bb, holdout=0.3))
    return out


def _run(domains, n_devices, n_steps, state=None):
    mesh = parallel.make_mesh(n_devices)
    if state is None:
        state = init_state(CFG, 0, 0, mesh)
    return train_steps(CFG, state, domains, n_steps, make_step(CFG, mesh))


def _assert_trees(a, b, exact=False, rtol=1e-4):
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True):
        if exact:
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
        else:
            np.testing.assert_allclose(np.asarray(x), np.asarray(y), rtol=rtol, atol=1e-6)


def test_episodes_and_first_frame_regions(domains):
    d = domains[0]
    assert list(d.first) == [0, 2, 4, 6, 8, 10, 12, 14]
    assert d.init_data.shape[0] == 8 and d.init_data.shape[-1] == 16
    # the first-frame region is the tracker's wider one (init_region_scale)
    assert np.all(d.init_rbox[:, 2] > d.domain.rbox[d.first, 2])
    for j, q in d.episodes(CFG):
        t = d.first[j]
        assert np.all((q > t) & (q <= t + CFG.horizon)) and np.all(np.isin(q, d.domain.train))
    for j, q in d.episodes(CFG, held=True):
        assert np.all(np.isin(q, d.domain.held)) and d.first[j] in d.domain.held


def test_meta_gradient_matches_finite_differences(domains):
    # Hard negative mining picks negatives by score, a step function of the
    # head that finite differences would straddle; dropout's kinks make
    # float32 differences noisy. Without both the meta-loss is smooth but
    # for ReLU kinks.
    cfg = CFG.replace(pretrain=CFG.pretrain.replace(
        tracker=TC.replace(hard_negative_mining=False, dropout=0.0)))
    mesh = parallel.make_mesh(1)
    meta = jax.device_get(init_state(cfg, 0, 0, mesh)["params"])
    batch = host_batch(domains[0], np.asarray([0, 1, 2, 3]), np.asarray([[1, 2]] * 4))
    key = jax.random.key(5)
    grad_fn = jax.jit(lambda m: meta_grad(cfg, m, batch, key))
    _, g = grad_fn(meta)
    rng = np.random.default_rng(0)

    def zeros(tree):
        return jax.tree.map(np.zeros_like, tree)

    # a unit direction in the initial head; a 1% relative change of the rates
    n = jax.tree.map(lambda a: rng.standard_normal(np.shape(a)).astype(np.float32), meta)
    norm = np.sqrt(sum(float(np.sum(x * x)) for x in jax.tree.leaves(n["head"])))
    directions = {"head": ({"head": jax.tree.map(lambda a: a / norm, n["head"]),
                            "head_lr": zeros(meta["head_lr"])}, 3e-3, 0.05),
                  "head_lr": ({"head": zeros(meta["head"]),
                               "head_lr": jax.tree.map(  # uphill, so never ~0
                                   lambda r, a, d: np.asarray(r) * np.abs(a) * np.sign(d),
                                   meta["head_lr"], n["head_lr"], g["head_lr"])},
                              1e-2, 0.01)}
    for part, (v, eps, rtol) in directions.items():
        plus, minus = (jax.tree.map(lambda a, d, s=s: a + s * eps * d, meta, v) for s in (1, -1))
        fd = (float(grad_fn(plus)[0]) - float(grad_fn(minus)[0])) / (2 * eps)
        analytic = sum(float(np.sum(np.asarray(a) * b))
                       for a, b in zip(jax.tree.leaves(g), jax.tree.leaves(v)))
        assert abs(analytic) > 1e-3, part
        np.testing.assert_allclose(analytic, fd, rtol=rtol, err_msg=part)


def test_meta_steps_lower_the_held_out_loss(domains):
    mesh = parallel.make_mesh(1)
    eval_fn = make_eval(CFG, mesh)
    state = init_state(CFG, 0, 0, mesh)
    before = evaluate(state["params"], held_batches(CFG, domains), eval_fn, jax.random.key(1))
    state, ms = _run(domains, 1, 30, state)
    after = evaluate(state["params"], held_batches(CFG, domains), eval_fn, jax.random.key(1))
    assert after["loss"] < before["loss"] - 0.01, (before, after)
    assert summarize(ms[-6:])["loss"] < summarize(ms[:6])["loss"]
    # adaptation itself helps: the adapted head beats the initial one
    assert after["loss"] < after["loss_before"]


def test_four_devices_equal_one_device(domains):
    assert jax.device_count() >= 4, "conftest forces 4 host CPU devices"
    s1, m1 = _run(domains, 1, 2)
    s4, m4 = _run(domains, 4, 2)
    _assert_trees(s1["params"], s4["params"], rtol=1e-3)
    np.testing.assert_allclose(summarize(m1)["loss"], summarize(m4)["loss"], rtol=1e-4)
    assert len(s4["params"]["head"]["fc4"]["kernel"].sharding.device_set) == 4


def test_checkpoint_resume_continues_exactly(domains, tmp_path):
    straight, _ = _run(domains, 1, 4)
    meta = {"domains": [d.name for d in domains]}
    ckpt = Checkpoints(str(tmp_path / "ck"), every=2)
    mesh = parallel.make_mesh(1)
    train_steps(CFG, init_state(CFG, 0, 0, mesh), domains, 3, make_step(CFG, mesh),
                lambda s, st: ckpt.maybe_save(s, st, meta))
    ckpt.wait()
    ckpt.close()
    again = Checkpoints(str(tmp_path / "ck"), every=2)
    restored = again.restore(init_state(CFG, 0, 0, mesh), meta)
    assert int(restored["step"]) == 2
    resumed, _ = _run(domains, 1, 2, restored)
    _assert_trees(straight["params"], resumed["params"], exact=True)
    _assert_trees(straight["opt_state"], resumed["opt_state"], exact=True)


def test_meta_head_loads_into_the_tracker(domains, tmp_path):
    state, _ = _run(domains, 1, 2)
    path = str(tmp_path / "meta.npz")
    save_meta_head(path, CFG, state["params"], {"steps": 2})
    params = load_params(path, TC, jax.random.key(0))
    # the same file by name, as the runner and the CLI take it
    _assert_trees(jtrack.init_params(TC, jax.random.key(0), head=path), params, exact=True)
    assert shipped.describe(path)["kind"] == "meta"
    np.testing.assert_array_equal(params["head_lr"]["fc6"]["kernel"],
                                  np.asarray(state["params"]["head_lr"]["fc6"]["kernel"]))
    frames, gt = moving_object(n_frames=2, frame_hw=tiny_tracker.FRAME_HW, object_hw=(16, 20),
                               occlusion=None, seed=9)
    st = T.init(TC, params, frames[0], gt[0], jax.random.key(1))
    # the tracker's first frame is exactly the episode's inner loop
    box = jnp.asarray(gt[0])
    rbox = region.region_box(box, TC.init_region_scale)
    fmap = nets.get_backbone(TC.backbone).apply(
        params["backbone"], region.crop(jnp.asarray(frames[0]), rbox, TC.init_region_size))
    meta = {"head": params["head"], "head_lr": params["head_lr"]}
    want = adapt(CFG, meta, fmap, box, rbox, jnp.asarray([80.0, 64.0]), jax.random.key(1))
    _assert_trees(st.head, want, rtol=1e-5)
    assert not np.allclose(np.asarray(st.head["fc6"]["kernel"]),
                           params["head"]["fc6"]["kernel"])
    # several targets in one call start the same way (init_many passes the rates)
    boxes = np.stack([gt[0], gt[0] + [4, 2, 0, 0]]).astype(np.float32)
    keys = jax.random.split(jax.random.key(2), 2)
    many = jtrack.init_many(TC, params, frames[0], boxes, keys)
    for k in range(2):
        one = T.init(TC, params, frames[0], boxes[k], keys[k])
        _assert_trees(jax.tree.map(lambda a, k=k: a[k], many.targets.head), one.head,
                      rtol=1e-5)
    st, out = T.step(TC, st, frames[1])
    assert np.all(np.isfinite(np.asarray(out.box)))
    with pytest.raises(ValueError, match="meta-learned for iters_init=3"):
        load_params(path, TC.replace(iters_init=50), jax.random.key(0))
    # 3 steps at the learned rates on the first frame, the other 6 deferred
    # to the next frames at the online rates
    deferred = TC.replace(iters_init=9, iters_init_first=3, iters_per_frame=2)
    st = T.init(deferred, load_params(path, deferred, jax.random.key(0)), frames[0], gt[0],
                jax.random.key(1))
    _assert_trees(st.head, want, rtol=1e-5)
    assert int(st.pending) == 6
    _, out = T.step(deferred, st, frames[1])
    assert bool(out.updated)
    bad = dict(params, head_lr={"fc4": params["head_lr"]["fc4"]})
    with pytest.raises(ValueError, match=r"missing params\['head_lr'\]\['fc5'\]"):
        T.init(TC, bad, frames[0], gt[0], jax.random.key(1))


def test_online_updates_at_the_learned_rates():
    frames, gt = moving_object(n_frames=2, frame_hw=tiny_tracker.FRAME_HW, object_hw=(16, 20),
                               occlusion=None, seed=9)
    cfg = TC.replace(online_rates="learned", long_interval=1, iters_per_frame=0)
    params = jtrack.init_params(cfg, jax.random.key(0))
    with pytest.raises(ValueError, match="online_rates='learned' needs a head with learned"):
        T.init(cfg, params, frames[0], gt[0], jax.random.key(1))
    # The online update moves the head at the head's own rates: not at all at zero.
    for scale in (0.0, 1e-2):
        rates = jax.tree.map(lambda a, s=scale: jnp.full_like(a, s), params["head"])
        st = T.init(cfg, dict(params, head_lr=rates), frames[0], gt[0], jax.random.key(1))
        _assert_trees(st.opt_state.rates, rates, exact=True)
        before = jax.tree.map(np.asarray, st.head)
        st, out = T.step(cfg, st, frames[1])  # long_interval=1: an update on frame 1
        assert bool(out.updated)
        moved = not np.allclose(np.asarray(st.head["fc6"]["kernel"]), before["fc6"]["kernel"])
        assert moved == (scale > 0), scale
