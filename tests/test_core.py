"""Building blocks of the tracker: boxes, sampling, region, RoIAlign, memory,
per-layer optimizer, hard negative mining, box regression."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jtrack import bbreg, learn, memory, nets, optim, region, sampling
from jtrack import boxes as B
from jtrack.config import TrackerConfig

# ----------------------------------------------------------------------------
# boxes

box_strategy = st.tuples(st.floats(-50, 300), st.floats(-50, 300),
                         st.floats(0.5, 200), st.floats(0.5, 200))


@settings(max_examples=50, deadline=None)
@given(box_strategy)
def test_box_conversions_round_trip(b):
    b = jnp.asarray(b, jnp.float32)
    np.testing.assert_allclose(B.xyxy_to_xywh(B.xywh_to_xyxy(b)), b, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(B.cxcywh_to_xywh(B.xywh_to_cxcywh(b)), b, rtol=1e-5, atol=1e-3)
    np.testing.assert_allclose(B.to_one_based(B.from_one_based(b)), b, atol=1e-4)
    np.testing.assert_allclose(B.from_one_based(b)[:2], b[:2] - 1, atol=1e-4)


def test_iou_by_hand():
    a = jnp.array([0.0, 0.0, 10.0, 10.0])
    assert float(B.iou(a, a)) == pytest.approx(1.0)
    # half overlap: intersection 50, union 150
    assert float(B.iou(a, jnp.array([5.0, 0.0, 10.0, 10.0]))) == pytest.approx(1 / 3)
    assert float(B.iou(a, jnp.array([20.0, 20.0, 5.0, 5.0]))) == 0.0
    m = B.pairwise_iou(jnp.stack([a, a + 5]), jnp.stack([a]))
    assert m.shape == (2, 1)


@settings(max_examples=50, deadline=None)
@given(box_strategy, st.floats(20, 640), st.floats(20, 480))
def test_clip_to_image_keeps_boxes_inside(b, w, h):
    c = np.asarray(B.clip_to_image(jnp.asarray(b, jnp.float32), jnp.array([w, h]), 4.0))
    assert c[0] >= 0 and c[1] >= 0
    assert c[0] + c[2] <= w + 1e-3 and c[1] + c[3] <= h + 1e-3
    assert c[2] >= 4.0 - 1e-4 and c[3] >= 4.0 - 1e-4


def test_is_valid_rejects_degenerate_boxes():
    bs = jnp.array([[0, 0, 5, 5], [0, 0, 0, 5], [0, 0, 5, -1],
                    [np.nan, 0, 5, 5], [100, 0, 5, 5]], jnp.float32)
    np.testing.assert_array_equal(B.is_valid(bs, (50, 50)),
                                  [True, False, False, False, False])


# ----------------------------------------------------------------------------
# sampling

BOX = jnp.array([100.0, 80.0, 40.0, 60.0])


def test_limit_shape_bounds_size_and_aspect_around_the_reference():
    ref = jnp.asarray([20.0, 80.0])  # side 40, w/h 1/4
    b = jnp.asarray([[100.0, 100.0, 2.0, 2.0],      # collapsed
                     [0.0, 0.0, 400.0, 400.0],      # exploded
                     [10.0, 10.0, 200.0, 10.0],     # aspect flipped to 20
                     [5.0, 5.0, 30.0, 60.0]])       # inside the limits
    out = np.asarray(B.limit_shape(b, ref, 0.5, 2.0, 2.0))
    side = np.sqrt(out[:, 2] * out[:, 3])
    aspect = out[:, 2] / out[:, 3]
    np.testing.assert_allclose(side[:3], [20.0, 80.0, np.clip(np.sqrt(2000.0), 20, 80)], rtol=1e-5)
    assert np.all(aspect >= 0.125 - 1e-6) and np.all(aspect <= 0.5 + 1e-6)
    np.testing.assert_allclose(aspect[2], 0.5, rtol=1e-5)  # clamped at the upper bound
    np.testing.assert_allclose(out[3], b[3], rtol=1e-5)      # untouched
    centres = lambda x: x[:, :2] + x[:, 2:] / 2
    np.testing.assert_allclose(centres(out), centres(np.asarray(b)), rtol=1e-5)


def test_gaussian_candidates_follow_mdnet_parameterisation():
    c = sampling.gaussian(jax.random.key(0), BOX, 4000, 0.6, 1.05)
    assert c.shape == (4000, 4)
    cc = B.xywh_to_cxcywh(c)
    ratio = cc[:, 2] / 40.0
    np.testing.assert_allclose(cc[:, 3] / 60.0, ratio, rtol=1e-5)  # aspect kept
    assert float(ratio.min()) >= 1 / 1.05 - 1e-5 and float(ratio.max()) <= 1.05 + 1e-5
    off = np.abs(np.asarray(cc[:, :2] - jnp.array([120.0, 110.0])))
    assert off.max() <= 0.6 * 50 + 1e-3  # clipped at one unit of trans * mean side
    assert 0.2 * 0.6 * 50 < off.std() < 0.3 * 0.6 * 50


def test_aspect_jitter_changes_width_and_height_independently():
    c = sampling.uniform(jax.random.key(1), BOX, 2000, 0.0, 1.0, aspect=1.2)
    r = np.asarray(c[:, 2] / c[:, 3]) / (40 / 60)
    assert r.min() < 0.8 and r.max() > 1.25
    assert r.min() >= 1 / 1.2 ** 2 - 1e-4 and r.max() <= 1.2 ** 2 + 1e-4


def test_whole_samples_cover_the_area():
    area = jnp.array([0.0, 0.0, 400.0, 300.0])
    c = B.xywh_to_cxcywh(sampling.whole(jax.random.key(2), BOX, area, 2000, 1.6))
    assert float(c[:, 0].min()) < 40 and float(c[:, 0].max()) > 360


def test_select_by_iou_respects_thresholds_with_static_shape():
    cands = sampling.uniform(jax.random.key(3), BOX, 500, 1.0, 1.6)
    pos, ok = sampling.select_by_iou(jax.random.key(4), cands, BOX, 0.7, 1.0, 64)
    assert pos.shape == (64, 4) and ok.shape == (64,)
    ov = np.asarray(B.iou(pos, BOX[None]))
    assert np.all(ov[np.asarray(ok)] >= 0.7)
    neg, nok = sampling.select_by_iou(jax.random.key(4), cands, BOX, 0.0, 0.3, 64)
    assert bool(nok.all()) and np.all(np.asarray(B.iou(neg, BOX[None])) <= 0.3)


def test_select_by_iou_with_no_qualifying_candidate_is_all_invalid():
    far = BOX[None] + jnp.array([500.0, 500.0, 0.0, 0.0])
    _, ok = sampling.select_by_iou(jax.random.key(0), jnp.repeat(far, 10, 0), BOX,
                                   0.7, 1.0, 8)
    assert not bool(ok.any())


def test_weighted_choice_never_draws_zero_weights():
    w = jnp.array([0.0, 1.0, 0.0, 3.0, 0.0])
    idx = np.asarray(sampling.weighted_choice(jax.random.key(0), w, 4000))
    assert set(np.unique(idx)) == {1, 3}
    assert 0.7 < np.mean(idx == 3) < 0.8


# ----------------------------------------------------------------------------
# region


def test_region_round_trip_and_crop_matches_pixels():
    rbox = region.region_box(BOX, 3.0)
    np.testing.assert_allclose(B.xywh_to_cxcywh(rbox)[:2], [120.0, 110.0])
    np.testing.assert_allclose(rbox[2:], [150.0, 180.0])  # 3 x max(side, mean side)
    b = jnp.array([[110.0, 90.0, 20.0, 30.0]])
    np.testing.assert_allclose(region.to_frame(region.to_region(b, rbox, 107), rbox, 107),
                               b, rtol=1e-5)
    # an identity crop (region = whole image, out size = image size) is exact
    img = jax.random.randint(jax.random.key(0), (32, 32, 3), 0, 255).astype(jnp.uint8)
    out = region.crop(img, jnp.array([0.0, 0.0, 32.0, 32.0]), 32)
    np.testing.assert_allclose(out, img.astype(jnp.float32), atol=1e-3)


def test_crop_outside_the_frame_repeats_the_border():
    img = jnp.broadcast_to(jnp.arange(10, dtype=jnp.float32)[None, :, None], (10, 10, 3))
    out = region.crop(img, jnp.array([-10.0, 0.0, 20.0, 10.0]), 20)
    np.testing.assert_allclose(out[:, :8], 0.0)  # left of the image: column 0 repeated
    assert float(out[:, -1].min()) == pytest.approx(9.0)


# ----------------------------------------------------------------------------
# RoIAlign against a slow per-point reference


def _bilinear(fmap, y, x):
    h, w, _ = fmap.shape
    if y < -1 or y > h or x < -1 or x > w:
        return np.zeros(fmap.shape[-1])
    y, x = min(max(y, 0), h - 1), min(max(x, 0), w - 1)
    y0, x0 = int(np.floor(y)), int(np.floor(x))
    y1, x1 = min(y0 + 1, h - 1), min(x0 + 1, w - 1)
    fy, fx = y - y0, x - x0
    return ((1 - fy) * (1 - fx) * fmap[y0, x0] + (1 - fy) * fx * fmap[y0, x1]
            + fy * (1 - fx) * fmap[y1, x0] + fy * fx * fmap[y1, x1])


def _roi_align_reference(fmap, box, out, samp, stride, offset):
    x, y, w, h = box
    res = np.zeros((out, out, fmap.shape[-1]))
    for i in range(out):
        for j in range(out):
            acc = 0
            for a in range(samp):
                for b in range(samp):
                    py = y + (i * samp + a + 0.5) * h / (out * samp)
                    px = x + (j * samp + b + 0.5) * w / (out * samp)
                    acc = acc + _bilinear(fmap, (py - offset) / stride, (px - offset) / stride)
            res[i, j] = acc / samp ** 2
    return res


@pytest.mark.parametrize("stride,offset", [(16.0, 37.5), (8.0, 0.5)])
def test_roi_align_matches_slow_reference(stride, offset):
    rng = np.random.default_rng(0)
    fmap = rng.normal(size=(9, 11, 5)).astype(np.float32)
    boxes = np.array([[10, 20, 60, 40], [0, 0, 180, 150], [-30, 50, 40, 40],
                      [100, 90, 7, 9], [150, 120, 80, 60]], np.float32)
    for chunk in (0, 2, 16):  # all at once; in chunks with padding; one chunk
        got = np.asarray(nets.roi_align(jnp.asarray(fmap), jnp.asarray(boxes), 3, 2, stride,
                                        offset, chunk=chunk))
        assert got.shape == (5, 3, 3, 5)
        for k, b in enumerate(boxes):
            np.testing.assert_allclose(got[k], _roi_align_reference(fmap, b, 3, 2, stride,
                                                                    offset),
                                       rtol=1e-4, atol=1e-5)


def test_vggm_geometry_maps_feature_cells_to_receptive_field_centres():
    bb = nets.get_backbone("vggm")
    params = bb.init(jax.random.key(0))
    fmap = bb.apply(params, jnp.zeros((107, 107, 3)))
    assert fmap.shape == (3, 3, 512)  # MDNet's 107 -> 3x3 conv3
    assert (bb.stride, bb.offset) == (16.0, 37.5)


# ----------------------------------------------------------------------------
# memory


def _mem(frames_long=3, frames_short=2, d=4):
    first = jnp.ones((5, d))
    return memory.create(first, jnp.ones(5, bool), frames_long, 2, frames_short, 3)


def test_memory_rings_wrap_around_and_keep_old_negatives_untouched():
    mem = _mem()
    for t in range(1, 6):
        mem = memory.write_positives(mem, jnp.full((2, 4), float(t)), jnp.ones(2, bool), t)
        mem = memory.write_negatives(mem, jnp.full((3, 4), -float(t)), jnp.ones(3, bool), t)
    # positives: slots hold frames 4, 5, 3 (5 writes into 3 slots)
    np.testing.assert_array_equal(mem.pos_frame, [4, 5, 3])
    np.testing.assert_array_equal(mem.pos[:, 0, 0], [4.0, 5.0, 3.0])
    # negatives: only the last 2 frames survive, stored exactly as written
    np.testing.assert_array_equal(mem.neg_frame, [5, 4])
    np.testing.assert_array_equal(mem.neg[:, :, 0], [[-5.0] * 3, [-4.0] * 3])
    assert int(mem.pos_writes) == 5 and int(mem.neg_writes) == 5


def test_memory_positive_window_and_first_frame_weight():
    mem = _mem()
    for t in (1, 2, 3):
        mem = memory.write_positives(mem, jnp.full((2, 4), float(t)), jnp.ones(2, bool), t)
    w = np.asarray(memory.positive_weights(mem, 3, 2, 2.0))  # window: frames 2, 3
    np.testing.assert_array_equal(w[:5], 2.0)
    np.testing.assert_array_equal(w[5:], [0, 0, 1, 1, 1, 1])
    feats = memory.gather_positives(mem, jnp.array([0, 5, 7, 9]))
    np.testing.assert_array_equal(feats[:, 0], [1.0, 1.0, 2.0, 3.0])


def test_memory_invalid_samples_are_never_drawn():
    mem = _mem()
    mem = memory.write_negatives(mem, jnp.zeros((3, 4)), jnp.array([True, False, True]), 1)
    w = np.asarray(memory.negative_weights(mem))
    np.testing.assert_array_equal(w, [1, 0, 1, 0, 0, 0])


# ----------------------------------------------------------------------------
# optimizer: per-layer rates, frozen layers


def test_per_layer_learning_rates_and_frozen_layers():
    params = {"backbone": {"w": jnp.ones(3)}, "fc4": {"w": jnp.ones(3)},
              "fc5": {"w": jnp.ones(3)}, "fc6": {"w": jnp.ones(3)}}
    opt = optim.make_optimizer((("fc4", 1.0), ("fc6", 10.0)), lr=0.1, momentum=0.0,
                               weight_decay=0.0, grad_clip=0.0)
    grads = jax.tree.map(jnp.ones_like, params)
    updates, _ = opt.update(grads, opt.init(params), params)
    new = jax.tree.map(lambda p, u: p + u, params, updates)
    np.testing.assert_array_equal(new["backbone"]["w"], params["backbone"]["w"])  # frozen
    np.testing.assert_array_equal(new["fc5"]["w"], params["fc5"]["w"])  # not listed: frozen
    np.testing.assert_allclose(new["fc4"]["w"], 0.9)
    np.testing.assert_allclose(new["fc6"]["w"], 0.0)  # 10x the rate


def test_tracker_optimizers_leave_unlisted_head_layers_unchanged_through_training():
    cfg = TrackerConfig(layer_lr=(("fc6", 10.0),), iters_init=3, batch_pos=4, batch_neg=4,
                        batch_neg_cand=8, hidden=8)
    head = nets.init_head(jax.random.key(0), 6, 8)
    opt, _ = optim.tracker_optimizers(cfg)
    pos = lambda k, n: jax.random.normal(k, (n, 6)) + 2  # noqa: E731
    neg = lambda k, n: jax.random.normal(k, (n, 6)) - 2  # noqa: E731
    new, _, losses = learn.train(cfg, opt, head, opt.init(head), pos, neg,
                                 jax.random.key(1), 3)
    for layer in ("fc4", "fc5"):
        for a, b in zip(jax.tree.leaves(head[layer]), jax.tree.leaves(new[layer])):
            np.testing.assert_array_equal(a, b)
    assert not np.allclose(head["fc6"]["kernel"], new["fc6"]["kernel"])
    assert losses.shape == (3,)


# ----------------------------------------------------------------------------
# learning: loss, hard negative mining


def test_binary_loss_by_hand():
    lp = jnp.array([[0.0, 0.0]])  # p = 0.5 -> -log 0.5
    ln = jnp.array([[0.0, jnp.log(3.0)]])  # p(target) = 0.75 -> -log 0.25
    assert float(learn.binary_loss(lp, ln)) == pytest.approx((np.log(2) + np.log(4)) / 2, rel=1e-5)


def test_hard_negative_mining_trains_on_the_hardest():
    scores = jnp.array([0.1, 0.9, -3.0, 0.5, 2.0])
    assert set(np.asarray(learn.hardest(scores, 2)).tolist()) == {1, 4}


def test_hard_negative_mining_feeds_the_highest_scoring_negatives_to_the_loss(monkeypatch):
    """Negatives reaching the loss are the top-``batch_neg`` of the candidate pool."""
    cfg = TrackerConfig(iters_init=1, batch_pos=2, batch_neg=3, batch_neg_cand=10,
                        hidden=4, dropout=0.0)
    head = nets.init_head(jax.random.key(0), 2, 4)
    pool = jax.random.normal(jax.random.key(5), (10, 2)) * 3
    seen = {}
    real_loss = learn.binary_loss

    def spy(lp, ln):
        jax.debug.callback(lambda x: seen.update(neg_logits=np.asarray(x)), ln)
        return real_loss(lp, ln)

    monkeypatch.setattr(learn, "binary_loss", spy)
    opt, _ = optim.tracker_optimizers(cfg)
    jax.block_until_ready(learn.train(cfg, opt, head, opt.init(head), lambda k, n: pool[:n],
                                      lambda k, n: pool[:n], jax.random.key(1), 1))
    pool_scores = nets.head_logits(head, pool, hidden=4)[:, 1]
    expected = np.sort(np.asarray(pool_scores))[-3:]
    got = np.sort(np.asarray(seen["neg_logits"][:, 1]))
    np.testing.assert_allclose(got, expected, rtol=1e-5)


# ----------------------------------------------------------------------------
# bounding-box regression


def test_bbreg_deltas_round_trip_and_fit_recovers_a_linear_map():
    rng = np.random.default_rng(0)
    gt = jnp.array([50.0, 40.0, 30.0, 20.0])
    boxes = sampling.uniform(jax.random.key(0), gt, 200, 0.3, 1.3)
    d = bbreg.deltas(boxes, gt)
    np.testing.assert_allclose(bbreg.apply_deltas(boxes, d), jnp.broadcast_to(gt, boxes.shape),
                               rtol=1e-4, atol=1e-3)
    # features that encode the deltas linearly (plus noise dims): the fit
    # must move boxes much closer to the target.
    feats = jnp.concatenate([d, jnp.asarray(rng.normal(size=(200, 20)), jnp.float32)], 1)
    w = bbreg.fit(feats, boxes, gt, jnp.ones(200, bool), alpha=1e-3)
    refined = bbreg.predict(w, feats, boxes)
    before = float(B.iou(boxes, gt[None]).mean())
    after = float(B.iou(refined, gt[None]).mean())
    assert after > 0.98 and after > before + 0.1
    # primal (D < N, above) and dual (D >= N) forms solve the same ridge problem
    x, y = np.asarray(feats, np.float64), np.asarray(d, np.float64)
    for n in (200, 20):
        xc, yc = x[:n] - x[:n].mean(0), y[:n] - y[:n].mean(0)
        want = np.linalg.solve(xc.T @ xc + 0.5 * np.eye(24), xc.T @ yc)
        got = bbreg.fit(feats[:n], boxes[:n], gt, jnp.ones(n, bool), alpha=0.5)
        np.testing.assert_allclose(np.asarray(got[:-1]), want, rtol=2e-3, atol=2e-4)
