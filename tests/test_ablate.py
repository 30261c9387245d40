"""Ablation study: variant list, aggregation/table, re-extracted negatives,
OpenCV baselines and a quick end-to-end run of experiments/ablate.py."""

import os
import subprocess
import sys
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jtrack
from jtrack import boxes as B
from jtrack import memory, region
from jtrack import tracker as T
from jtrack.data import Sequence, write_boxes, write_times
from jtrack.eval import ablation, baselines, otb

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(REPO, "..", "shared", "data")


# ----------------------------------------------------------------------------
# variants


def test_every_variant_is_valid_and_changes_the_config():
    names = [v.name for v in ablation.VARIANTS]
    assert len(set(names)) == len(names) and names[0] == ablation.REFERENCE
    default = jtrack.TrackerConfig()
    changed = {}
    for v in ablation.VARIANTS:
        if v.baseline is not None:
            assert v.baseline in baselines.BASELINES and not v.stochastic
            with pytest.raises(ValueError):
                v.config()
            continue
        cfg = v.config()
        assert isinstance(cfg, jtrack.TrackerConfig) and v.stochastic
        hash(cfg)  # a static jit argument
        if v.name == ablation.REFERENCE:
            assert cfg == default
        else:
            diff = {f for f in cfg.__dataclass_fields__ if getattr(cfg, f) != getattr(default, f)}
            assert diff == {k for k, _ in v.overrides}, v.name
            assert diff or v.head != "random", v.name  # a change of config or of weights
            changed[v.name] = diff
    # every design choice of the issue is covered
    fields = set().union(*changed.values())
    assert {"online_update", "hard_negative_mining", "layer_lr", "outlier_reject",
            "reextract_negatives", "first_frame_weight", "region_scale", "n_candidates",
            "backbone", "bbreg"} <= fields
    assert {dict(v.overrides).get("region_scale") for v in ablation.VARIANTS} >= {2.0, 4.0}
    assert {dict(v.overrides).get("n_candidates") for v in ablation.VARIANTS} >= {64, 1024}
    assert default.region_scale == 3.0 and default.n_candidates == 256
    assert {v.baseline for v in ablation.VARIANTS} >= {"csrt", "kcf", "mil"}
    # a variant's override wins over the base config's
    base = default.replace(hidden=64, n_candidates=128)
    assert ablation.select(["cand_64"])[0].config(base).n_candidates == 64
    assert ablation.select(["cand_64"])[0].config(base).hidden == 64


def test_select_keeps_order_and_rejects_unknown_names():
    assert [v.name for v in ablation.select(["no_bbreg", "full"])] == ["no_bbreg", "full"]
    with pytest.raises(ValueError, match="unknown variants"):
        ablation.select(["full", "nope"])


def test_slowest_first_uses_measured_times_then_cost_hints():
    vs = ablation.select(["full", "vggm_random", "opencv_kcf", "one_lr", "cand_64"])
    # no measurements: cost hints alone (vggm 6x, baselines 0.05x), stable otherwise
    assert [v.name for v in ablation.slowest_first(vs)] == [
        "vggm_random", "full", "one_lr", "cand_64", "opencv_kcf"]
    # measured times win; unmeasured ones are scaled by the median s/cost
    order = ablation.slowest_first(vs, {"full": 100.0, "one_lr": 300.0, "cand_64": 50.0})
    assert [v.name for v in order] == ["vggm_random", "one_lr", "full", "cand_64", "opencv_kcf"]
    order = ablation.slowest_first(vs, {"vggm_random": 10.0, "full": 100.0})
    assert order[0].name == "full" and order[-2].name == "vggm_random"


def test_processes_hand_the_longest_job_to_the_first_free_worker(tmp_path):
    import threading
    import time

    from absl import flags as absl_flags

    import experiments.ablate as ablate_main

    fl = absl_flags.FLAGS
    if not fl.is_parsed():
        fl(["ablate", f"--results_dir={tmp_path}"])
    else:
        fl.results_dir = str(tmp_path)
    vs = ablation.select(["full", "one_lr", "vggm_random", "opencv_mil", "cand_64"])
    running, peak, lock = [0], [0], threading.Lock()
    seen = []

    def launch(argv):
        name = [a for a in argv if a.startswith("--variants=")][0].split("=", 1)[1]
        with lock:
            seen.append(name)
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return 1 if name == "cand_64" else 0  # a failure is logged, not raised

    started = ablate_main.run_in_processes(vs, 2, launch=launch)
    assert started[0] == "vggm_random" and started[-1] == "opencv_mil"
    assert sorted(seen) == sorted(v.name for v in vs) and peak[0] == 2


# ----------------------------------------------------------------------------
# aggregation and table on synthetic result files


def _seq(name, n=10):
    gt = np.tile(np.asarray([[10.0, 10.0, 20.0, 20.0]], np.float32), (n, 1))
    return Sequence(name=name, frames=tuple(f"{i}.jpg" for i in range(n)), gt=gt,
                    dataset="otb", one_based=True)


def _write(folder, seq, hit: bool, seconds=0.1):
    os.makedirs(folder, exist_ok=True)
    pred = np.asarray(seq.gt, np.float64).copy()
    if not hit:
        pred[1:, :2] += 100.0  # IoU 0 and 100 px off from frame 1 on
    write_boxes(os.path.join(folder, seq.name + ".txt"), pred, seq.one_based)
    write_times(os.path.join(folder, seq.name + "_time.txt"), np.full(len(seq), seconds))


def test_score_seed_pools_datasets_and_summarize_gives_mean_std(tmp_path):
    a, b = _seq("A"), _seq("B")
    perfect = otb.auc(otb.success_curve(np.ones(10)))  # 20/21: IoU 1 is not > 1
    miss = otb.auc(otb.success_curve(np.r_[1.0, np.zeros(9)]))
    per_seed = {}
    for seed, b_hit in ((0, False), (1, True)):
        d1, d2 = tmp_path / f"otb/seed_{seed}", tmp_path / f"vot/seed_{seed}"
        _write(d1, a, True)
        _write(d2, b, b_hit, seconds=0.4)
        per_seed[seed] = ablation.score_seed([(str(d1), [a]), (str(d2), [b])])
    s0 = per_seed[0]
    assert s0["auc"] == pytest.approx((perfect + miss) / 2)  # each sequence once
    assert s0["sequences"]["A"]["auc"] == pytest.approx(perfect)
    assert s0["fps"] == pytest.approx(20 / (10 * 0.1 + 10 * 0.4))  # all frames / all time
    assert s0["precision_20"] == pytest.approx((1.0 + 0.1) / 2)
    summ = ablation.summarize(per_seed)
    aucs = [(perfect + miss) / 2, perfect]
    assert summ["mean"]["auc"] == pytest.approx(np.mean(aucs))
    assert summ["std"]["auc"] == pytest.approx(np.std(aucs))
    assert summ["sequence_auc"]["B"] == pytest.approx((miss + perfect) / 2)
    np.testing.assert_allclose(summ["curves"]["success"],
                               np.mean([per_seed[0]["curves"]["success"],
                                        per_seed[1]["curves"]["success"]], axis=0))
    # a missing result file is reported, not scored as zero
    s = ablation.score_seed([(str(tmp_path / "empty"), [a])])
    assert s["missing"] == ["A"] and "auc" not in s

    full, worse, kcf = ablation.select(["full", "no_bbreg", "opencv_kcf"])
    ref = {"seeds": [0, 1, 2], "mean": {"auc": 0.6, "precision_20": 0.8, "fps": 10.0},
           "std": {"auc": 0.01, "precision_20": 0.02, "fps": 1.0}, "sequence_auc": {"A": 0.6}}
    low = {**ref, "mean": {**ref["mean"], "auc": 0.5}}
    near = {**ref, "seeds": [0], "mean": {**ref["mean"], "auc": 0.61},
            "std": {"auc": 0.0, "precision_20": 0.0, "fps": 0.0}}
    assert ablation.verdict(low, ref) == "worse"
    assert ablation.verdict(near, ref) == "within noise"
    table = ablation.markdown_table([(full, ref), (worse, low), (kcf, near)])
    lines = table.strip().splitlines()
    assert len(lines) == 5 and "AUC A" in lines[0]
    assert "0.600 ± 0.010" in lines[2] and "reference" in lines[2]
    assert "-0.100" in lines[3] and "worse" in lines[3]
    assert "| 1 | 0.610 |" in lines[4] and "within noise" in lines[4]  # one seed: no ±


# ----------------------------------------------------------------------------
# re-extracted negatives


def test_relative_boxes_round_trip_and_keep_iou():
    ref = jnp.asarray([30.0, 40.0, 20.0, 10.0])
    boxes = jnp.asarray([[0.0, 0.0, 5.0, 5.0], [35.0, 38.0, 30.0, 12.0]])
    rel = B.to_relative(boxes, ref)
    np.testing.assert_allclose(B.from_relative(rel, ref), boxes, atol=1e-5)
    other = jnp.asarray([100.0, 50.0, 40.0, 25.0])
    np.testing.assert_allclose(B.iou(B.from_relative(rel, other), other[None]),
                               B.iou(boxes, ref[None]), atol=1e-5)


def test_reextracted_negatives_match_kept_ones_on_the_same_frame_and_follow_the_target():
    config = jtrack.TrackerConfig(backbone="small_cnn", reextract_negatives=True,
                                  frames_short=2, n_neg_update=3)
    size = config.region_size
    fmap = jax.random.normal(jax.random.key(0), (size // 8, size // 8, 4))
    box = jnp.asarray([100.0, 100.0, 40.0, 30.0])
    rbox = region.region_box(box, config.region_scale)
    area = region.intersect(rbox, jnp.asarray([0.0, 0.0, 1000.0, 1000.0]))
    neg = jnp.asarray([[60.0, 90.0, 40.0, 30.0], [130.0, 120.0, 44.0, 33.0],
                       [90.0, 65.0, 40.0, 30.0]])  # all inside the region
    feats = T.pool_features(config, fmap, region.to_region(neg, rbox, size))
    mem = memory.create(jnp.zeros((2, feats.shape[1])), jnp.ones(2, bool), 3, 2, 2, 3)
    mem = memory.write_negatives(mem, feats, jnp.asarray([True, True, False]), 7,
                                 B.to_relative(neg, box))
    mem = memory.write_negatives(mem, feats, jnp.ones(3, bool), 8)  # no boxes: zeros
    # same frame, same target: re-extraction reproduces the kept features
    reextract = jax.jit(T._reextract_negatives, static_argnums=0)  # one compile, not per op
    same = reextract(config, mem, fmap, rbox, area, box)
    np.testing.assert_allclose(same.neg[0], feats, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(same.neg_valid, mem.neg_valid)
    np.testing.assert_array_equal(same.neg_frame, mem.neg_frame)
    # target and region moved together over the same feature map (a camera pan):
    # the placements follow the target, so the features are the same again
    moved = box + jnp.asarray([16.0, 8.0, 0.0, 0.0])
    rbox2 = rbox + jnp.asarray([16.0, 8.0, 0.0, 0.0])
    area2 = area + jnp.asarray([16.0, 8.0, 0.0, 0.0])
    out = reextract(config, mem, fmap, rbox2, area2, moved)
    np.testing.assert_allclose(out.neg[0], feats, rtol=1e-4, atol=1e-4)
    assert np.all(np.isfinite(np.asarray(out.neg)))


# ----------------------------------------------------------------------------
# OpenCV baselines


def test_opencv_factory_finds_legacy_namespace_and_explains_missing_cv2(monkeypatch):
    made = []
    legacy = types.SimpleNamespace(TrackerCSRT_create=lambda: made.append("legacy") or "t")
    fake = types.SimpleNamespace(__version__="4.5.0", legacy=legacy)
    monkeypatch.setitem(sys.modules, "cv2", fake)
    assert baselines.opencv_factory("CSRT")() == "t" and made == ["legacy"]
    with pytest.raises(ImportError, match="opencv-contrib-python-headless"):
        baselines.opencv_factory("KCF")  # in neither namespace
    monkeypatch.setitem(sys.modules, "cv2", None)  # not installed
    with pytest.raises(ImportError, match="baselines"):
        baselines.opencv_factory("MIL")
    with pytest.raises(ValueError, match="unknown OpenCV tracker"):
        baselines.opencv_factory("BOOSTING")


class _FrameList:
    """The part of a Sequence that track_ope uses, over in-memory frames."""

    def __init__(self, name, frames, init_box):
        self.name, self.frames, self.init_box = name, frames, init_box

    def __len__(self):
        return len(self.frames)

    def iter_frames(self, skip_bad=False):
        return iter(self.frames)


@pytest.mark.parametrize("kind", baselines.OPENCV_KINDS)
def test_opencv_trackers_follow_a_moving_square(kind):
    pytest.importorskip("cv2")
    from jtrack.eval.runner import track_ope

    rng = np.random.default_rng(0)
    n, frames, gt = 12, [], []
    for t in range(n):
        f = rng.integers(0, 60, (120, 160, 3), dtype=np.uint8)
        x, y = 40 + 3 * t, 30 + 2 * t
        f[y:y + 30, x:x + 30] = [230, 40, 40]
        f[y + 10:y + 20, x + 10:x + 20] = [40, 230, 40]
        frames.append(f)
        gt.append([x, y, 30, 30])
    seq = _FrameList("square", frames, np.asarray(gt[0], np.float64))
    boxes, *_ = track_ope(baselines.BASELINES[kind.lower()](), seq, seed=0)
    assert np.all(np.isfinite(boxes)) and boxes.shape == (n, 4)
    ious = np.asarray(B.iou(jnp.asarray(boxes[1:], jnp.float32),
                            jnp.asarray(gt[1:], jnp.float32)))
    assert ious.mean() > 0.5, (kind, ious)


# ----------------------------------------------------------------------------
# end to end


TINY = ["backbone=small_cnn", "hidden=32", "iters_init=3", "n_pos_init=100", "n_neg_init=300",
        "n_bbreg=100", "iters_update=2", "long_interval=3", "n_pos_update=20",
        "n_neg_update=40", "batch_neg_cand=96", "frames_long=10", "frames_short=5"]


def test_quick_ablation_run_on_a_real_sequence(tmp_path):
    if not os.path.isdir(os.path.join(DATA, "otb", "Crossing")):
        pytest.skip("../shared/data/otb/Crossing is missing")
    out = tmp_path / "abl"
    cmd = [sys.executable, "-m", "experiments.ablate", "--variants=full,no_online_update",
           "--datasets=otb:" + os.path.join(DATA, "otb"), "--sequences=Crossing",
           "--seeds=0", "--max_frames=6", f"--results_dir={out}/runs",
           f"--plots_dir={out}", f"--doc={out}/results.md", "--nocompilation_cache"]
    cmd += [f"--config_override={o}" for o in TINY]
    one_device = [f for f in os.environ.get("XLA_FLAGS", "").split() if "device_count" not in f]
    env = {**os.environ, "PYTHONPATH": REPO, "XLA_FLAGS": " ".join(one_device)}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = (out / "results.md").read_text()
    assert "`full`" in doc and "`no_online_update`" in doc and "reference" in doc
    assert "<!-- reading:start -->" in doc and (out / "success.png").is_file()
    for v in ("full", "no_online_update"):
        assert (out / "runs" / v / "otb" / "Crossing.txt").is_file()
    # the result files re-score with the evaluation module to the table's numbers
    from jtrack.data import load_dataset
    from jtrack.eval import scoring

    seqs = [s.truncated(6) for s in load_dataset("otb", os.path.join(DATA, "otb"), ["Crossing"])]
    auc = scoring.score_folder(str(out / "runs" / "full" / "otb"), seqs)["mean"]["auc"]
    assert f"{auc:.3f}" in doc.split("`full`")[1].splitlines()[0]
    # a second run resumes: nothing is tracked again, the reading is kept
    (out / "results.md").write_text(doc.replace(
        "(No reading written yet", "MY READING (No reading written yet"))
    mtime = os.path.getmtime(out / "runs" / "full" / "otb" / "Crossing.txt")
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "MY READING" in (out / "results.md").read_text()
    assert os.path.getmtime(out / "runs" / "full" / "otb" / "Crossing.txt") == mtime
