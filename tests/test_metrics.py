"""Every metric against hand-computed values."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jtrack.data import Sequence
from jtrack.eval import geometry, got10k, otb, research, vot
from jtrack.eval.trackers import Tracker

# IoUs by hand: (0,0,2,2) vs (1,1,2,2): inter 1, union 4+4-1=7 -> 1/7;
# (0,0,4,4) vs (0,0,2,2): 4/16; identical -> 1; disjoint -> 0.
PRED = np.array([[5, 5, 4, 4], [0, 0, 2, 2], [0, 0, 4, 4], [30, 0, 2, 2]], float)
GT = np.array([[5, 5, 4, 4], [1, 1, 2, 2], [0, 0, 2, 2], [0, 0, 2, 2]], float)
IOUS = [1.0, 1 / 7, 0.25, 0.0]


def test_iou_center_error_by_hand():
    np.testing.assert_allclose(geometry.iou(PRED, GT), IOUS)
    np.testing.assert_allclose(geometry.center_error(PRED, GT), [0, 2 ** .5, 2 ** .5, 30])
    # centers (2,1) vs (1,2): x error 1 px over width 2, y 1 px over height 4
    np.testing.assert_allclose(
        geometry.normalized_center_error([[1, 0, 2, 2]], [[0, 0, 2, 4]]), [0.3125 ** .5])
    nan = np.full((1, 4), np.nan)
    assert geometry.iou(nan, GT[:1])[0] == 0 and geometry.center_error(nan, GT[:1])[0] == np.inf


def test_success_curve_and_auc_by_hand():
    curve = otb.success_curve(np.array(IOUS))
    # > t: t in {0,.05,.1}: 3 of 4; {.15,.2}: 2 (1/7 drops); .25..0.95: 1 (0.25
    # is not > 0.25); t=1: none.
    expected = [.75] * 3 + [.5] * 2 + [.25] * 15 + [0.0]
    np.testing.assert_allclose(curve, expected)
    assert otb.auc(curve) == pytest.approx(7 / 21)


def test_auc_matches_official_otb_formula():
    # perfPlot.m: thresholdSetOverlap = 0:0.05:1; success(i) =
    # sum(overlap > thr(i)) / numFrames; AUC = mean(success).
    rng = np.random.default_rng(0)
    ious = np.concatenate([rng.uniform(size=200), [0.0, 0.05, 0.5, 1.0]])
    official = []
    for k in range(21):
        thr = k * 0.05
        official.append(sum(1 for o in ious if o > thr) / len(ious))
    assert otb.auc(otb.success_curve(ious)) == pytest.approx(float(np.mean(official)), abs=1e-15)
    assert len(otb.IOU_THRESHOLDS) == 21


def test_ope_metrics_precision_and_absent_frames_excluded():
    gt = np.vstack([GT, np.full((1, 4), np.nan)])  # absent frame: not scored
    pred = np.vstack([PRED, [[0, 0, 1, 1]]])
    m = otb.ope_metrics(pred, gt)
    assert m["n_frames"] == 4
    assert m["precision_20"] == pytest.approx(0.75)  # errors 0, 1.41, 1.41, 30
    assert m["success_50"] == pytest.approx(0.25)
    assert m["auc"] == pytest.approx(7 / 21)
    assert m["mean_iou"] == pytest.approx(np.mean(IOUS))
    c = otb.precision_curve(np.array([0, 2 ** .5, 2 ** .5, 30]))
    assert c[0] == 0.25 and c[1] == 0.25 and c[2] == 0.75 and c[30] == 1.0


def test_normalized_precision_by_hand():
    # normalized errors: 0 and 0.5 (center x off by 1 px on a 2 px wide GT)
    pred = np.array([[0, 0, 2, 2], [1, 0, 2, 2]], float)
    gt = np.array([[0, 0, 2, 2], [0, 0, 2, 2]], float)
    m = otb.ope_metrics(pred, gt)
    assert m["norm_precision"] == pytest.approx(0.5)  # at 0.2: only the exact one
    # curve: 0.5 up to t < 0.5, 1 at t = 0.5 -> mean = (50 * .5 + 1) / 51
    assert m["norm_precision_auc"] == pytest.approx((50 * 0.5 + 1) / 51)


def test_dataset_curve_is_mean_of_sequence_curves_and_attributes():
    a = Sequence("a", ["x"] * 2, [[0, 0, 2, 2], [0, 0, 2, 2]], attributes=("OCC",),
                 flags={"occ": np.array([False, True])})
    b = Sequence("b", ["x"], [[0, 0, 2, 2]], attributes=("OCC", "IV"))
    preds = {"a": np.array([[0, 0, 2, 2], [5, 5, 2, 2]]), "b": np.array([[0, 0, 2, 2]])}
    ca, cb = (otb.ope_curves(preds[s.name], s.gt) for s in (a, b))
    mean = otb.mean_curves([ca, cb])
    np.testing.assert_allclose(mean["success"], (ca["success"] + cb["success"]) / 2)
    br = otb.attribute_breakdown(preds, [a, b])
    assert br["OCC"]["n_sequences"] == 2
    assert br["OCC"]["auc"] == pytest.approx((otb.auc(ca["success"]) + 20 / 21) / 2)
    assert br["IV"]["auc"] == pytest.approx(20 / 21)  # IoU 1: > t except t = 1
    assert br["occ"]["n_frames"] == 1 and br["occ"]["auc"] == 0.0


def test_got10k_ao_sr_by_hand():
    gt = np.array([[0, 0, 2, 2]] * 5, float)
    # frame 0 (init) and the fully covered frame 3 are excluded
    pred = np.array([[9, 9, 1, 1], [0, 0, 2, 2], [0, 0, 4, 4], [9, 9, 1, 1],
                     [1, 0, 2, 2]], float)  # IoUs -, 1, .25, -, 1/3
    ious = got10k.scored_ious(pred, gt, cover=np.array([8, 8, 8, 0, 8]))
    np.testing.assert_allclose(ious, [1, 0.25, 1 / 3])
    m = got10k.ao_sr(ious)
    assert m["ao"] == pytest.approx((1 + .25 + 1 / 3) / 3)
    assert m["sr_50"] == pytest.approx(1 / 3) and m["sr_75"] == pytest.approx(1 / 3)
    pooled = got10k.pooled_ao_sr([ious, np.array([0.8])])
    assert pooled["ao"] == pytest.approx((1 + .25 + 1 / 3 + .8) / 4)  # frames pooled
    assert pooled["sr_75"] == pytest.approx(0.5)


# --- VOT -----------------------------------------------------------------------

T = 20
VOT_GT = np.tile([0.0, 0.0, 10.0, 10.0], (T, 1))


def _scripted_tracker(calls):
    """Frames carry their index; returns GT on 1-2, a miss on 3, and a
    half-overlapping box (IoU 0.5) afterwards."""
    def init(frame, box, seed):
        calls.append(("init", int(frame[0, 0, 0])))
        return 0

    def step(state, frame):
        t = int(frame[0, 0, 0])
        calls.append(("step", t))
        box = [0, 0, 10, 10] if t < 3 else [100, 100, 10, 10] if t == 3 else [0, 0, 5, 10]
        return state + 1, np.array(box, float), 0.9

    return Tracker(init, step)


def _frames():
    return [np.full((1, 1, 3), t, np.uint8) for t in range(T)]


def test_supervised_protocol_reinit_after_five_frames():
    calls = []
    run = vot.run_supervised(_scripted_tracker(calls), _frames(), VOT_GT)
    codes = run.codes.tolist()
    assert codes[:4] == [vot.INIT, vot.TRACKED, vot.TRACKED, vot.FAILURE]
    assert codes[4:8] == [vot.SKIPPED] * 4 and codes[8] == vot.INIT
    assert ("init", 8) in calls and not any(t in (4, 5, 6, 7) for _, t in calls)
    assert run.failures == 1 and np.isnan(run.boxes[5]).all()
    # burn-in 10 from each init (0 and 8): only frames 18, 19 count
    assert vot.accuracy(run, burnin=10) == pytest.approx(0.5)
    assert vot.accuracy(run, burnin=1) == pytest.approx((2 * 1 + 11 * 0.5) / 13)
    replay = vot.replay_supervised(run.boxes, VOT_GT)
    np.testing.assert_array_equal(replay.codes, run.codes)


def test_reinit_waits_for_ground_truth():
    gt = VOT_GT.copy()
    gt[8:10] = np.nan  # no GT where the re-init is due
    run = vot.run_supervised(_scripted_tracker([]), _frames(), gt)
    assert run.codes[8] == vot.SKIPPED and run.codes[10] == vot.INIT


def test_eao_by_hand():
    run = vot.run_supervised(_scripted_tracker([]), _frames(), VOT_GT)
    frags, failed = vot.eao_fragments(run, 30)
    assert failed.tolist() == [True, False]
    # fragment A: init, 1, 1, fail(0), then zeros forever
    np.testing.assert_allclose(frags[0, :5], [0, 1, 1, 0, 0])
    assert frags[0, 29] == 0
    # fragment B: init at 8, 11 frames at 0.5, unknown after the sequence end
    assert np.isfinite(frags[1, :12]).all() and np.isnan(frags[1, 12:]).all()
    curve = vot.eao_curve([run], 30)
    assert curve[0] == 1.0                                   # Phi(1) by definition
    assert curve[1] == pytest.approx((1 + .5) / 2)            # Phi(2)
    assert curve[3] == pytest.approx((2 / 3 + .5) / 2)        # Phi(4): A = mean(1,1,0)
    assert curve[11] == pytest.approx((2 / 11 + .5) / 2)      # Phi(12): B still usable
    assert curve[12] == pytest.approx(2 / 12)                 # Phi(13): only A
    assert vot.eao(curve, 2, 3) == pytest.approx(0.75)
    assert vot.default_eao_range([105, 40]) == (2, 105)


# --- research metrics -------------------------------------------------------------

def test_pr_rr_by_hand():
    scores = jnp.array([0.9, 0.8, 0.3, 0.6])
    labels = jnp.array([1, 0, 1, 1])
    # predicted positive: 0, 1, 3 -> 2 true; positives 0, 2, 3 -> 2 found
    assert float(research.precision_rate(scores, labels)) == pytest.approx(2 / 3)
    assert float(research.recall_rate(scores, labels)) == pytest.approx(2 / 3)
    assert np.isnan(research.precision_rate(jnp.zeros(3), jnp.ones(3)))
    assert np.isnan(research.recall_rate(jnp.ones(3), jnp.zeros(3)))


def test_topk_accuracy_by_hand_and_jittable():
    scores = jnp.array([[0.1, 0.9, 0.5], [0.7, 0.1, 0.2]])
    ious = jnp.array([[0.9, 0.2, 0.6], [0.6, 0.0, 0.0]])
    # frame 0: top-1 is candidate 1 (IoU .2), top-2 adds candidate 2 (.6)
    assert float(research.topk_accuracy(scores, ious, 1)) == pytest.approx(0.5)
    assert float(research.topk_accuracy(scores, ious, 2)) == pytest.approx(1.0)
    f = jax.jit(research.topk_accuracy, static_argnums=2)
    assert float(f(scores, ious, 1)) == pytest.approx(0.5)
    assert float(research.topk_accuracy(scores[0], ious[0], 1)) == 0.0  # one frame


def test_classifier_metrics_after_training_and_with_a_flipped_head():
    """PR/RR/TopK of the online classifier against the GT: high after the
    first-frame training on a coloured target, low once the head's two
    logits are swapped (so the metric can fail)."""
    from tests import tiny_tracker as tiny
    import jtrack
    h, w = tiny.FRAME_HW
    frame = np.full((h, w, 3), 128, np.uint8)
    box = np.asarray([30.0, 20.0, 14.0, 18.0], np.float32)
    frame[20:38, 30:44] = (220, 40, 40)
    # confident enough for p >= 0.5, all of it on the first frame
    cfg = dataclasses.replace(tiny.CONFIG, iters_init=200, iters_init_first=200)
    state = jtrack.init(cfg, tiny.params(), frame, box, jax.random.key(1))
    good = research.classifier_metrics(cfg, state, frame, box, jax.random.key(2))
    assert set(good) == {"PR", "RR", "TopKAcc"}
    assert good["RR"] > 0.8 and good["PR"] > 0.8 and good["TopKAcc"] == 1.0
    fc6 = state.head["fc6"]
    flipped = state.replace(head={**state.head, "fc6": {k: v[..., ::-1] for k, v in fc6.items()}})
    bad = research.classifier_metrics(cfg, flipped, frame, box, jax.random.key(2))
    assert bad["RR"] < 0.2
