"""Bad input, one case per item of issue 6: each gets an error naming the
file/line/frame/value/layer, or a documented recovery (conversion, clipping,
"absent" ground truth) that is checked here.

Nothing in this file compiles the tracker: the pure API's checks run
before ``jax.jit``, so parameters and states are built from their shapes
(``jax.eval_shape``) and the clipping recovery is observed at the jitted
core's door.
"""

from __future__ import annotations

import functools
import os
import subprocess
import sys

import imageio.v3 as iio
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tiny_tracker import CONFIG, FRAME_HW

import jtrack
from jtrack import tracker
from jtrack.data import from_image_folder, load_frame, read_otb, read_vot
from jtrack.data.sequence import Sequence
from jtrack.data.textfiles import read_box_file
from jtrack.eval.otb import ope_metrics

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
H, W = FRAME_HW
FRAME = np.zeros((H, W, 3), np.uint8)
BOX = np.asarray([10.0, 12.0, 16.0, 14.0], np.float32)


def _zeros_like_shapes(tree):
    def leaf(s):
        if jnp.issubdtype(s.dtype, jax.dtypes.prng_key):
            return jax.random.key(0)
        return np.zeros(s.shape, s.dtype)
    return jax.tree.map(leaf, tree)


@pytest.fixture(scope="module")
def params():
    """Right-shaped (zero) params for CONFIG, without running anything."""
    return _zeros_like_shapes(jax.eval_shape(
        lambda k: jtrack.init_params(CONFIG, k), jax.random.key(0)))


@pytest.fixture(scope="module")
def state(params):
    """A TrackerState of the right shapes for CONFIG (traced, not compiled)."""
    return _zeros_like_shapes(jax.eval_shape(
        functools.partial(tracker._init_core, CONFIG), params, jnp.asarray(FRAME),
        jnp.asarray(BOX), jax.random.key(1)))


def _init(params, frame=FRAME, box=BOX, key=None, config=CONFIG):
    return jtrack.init(config, params, frame, box, jax.random.key(0) if key is None else key)


@pytest.fixture
def core_box(monkeypatch):
    """Record the box that reaches the jitted init core (no compile)."""
    seen = {}

    def fake(config, params, frame, box, key):
        seen["box"], seen["frame_shape"] = np.asarray(box), frame.shape
        return "state"

    monkeypatch.setattr(tracker, "_init_jit", fake)
    return seen


# ----------------------------------------------------------------------------
# image files


def _png(path, img):
    iio.imwrite(path, img)
    return str(path)


def test_missing_image_file_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"frame not found: .*0042\.jpg"):
        load_frame(str(tmp_path / "0042.jpg"))


def test_empty_image_file_names_it(tmp_path):
    (tmp_path / "0001.png").write_bytes(b"")
    with pytest.raises(ValueError, match=r"empty image file: .*0001\.png"):
        load_frame(str(tmp_path / "0001.png"))


@pytest.mark.parametrize("ext", ["png", "jpg"])
def test_truncated_image_file_names_it(tmp_path, ext):
    rng = np.random.default_rng(0)
    full = tmp_path / f"full.{ext}"
    iio.imwrite(full, rng.integers(0, 255, (40, 50, 3), dtype=np.uint8))
    data = full.read_bytes()
    cut = tmp_path / f"0007.{ext}"
    cut.write_bytes(data[:len(data) * 2 // 3])  # a download cut short
    with pytest.raises(ValueError, match=rf"cannot decode image .*0007\.{ext}: .*truncated"):
        load_frame(str(cut))


def test_corrupt_image_file_names_it(tmp_path):
    (tmp_path / "0003.jpg").write_bytes(b"\xff\xd8\xff\xe0 this is not a JPEG body" * 10)
    with pytest.raises(ValueError, match=r"cannot decode image .*0003\.jpg"):
        load_frame(str(tmp_path / "0003.jpg"))


def test_corrupt_frame_is_skipped_a_sequence_that_cannot_start_fails_alone(tmp_path):
    """Hours into a benchmark, one bad frame costs that frame, not the
    sequence; a sequence whose first frame is bad costs that sequence, not
    the run."""
    from test_runner import make_otb, standin

    from jtrack.eval.runner import RunSpec, run_experiment

    root = make_otb(tmp_path / "data")
    (tmp_path / "data" / "Beta" / "img" / "0003.png").write_bytes(b"\x89PNG\r\n\x1a\n cut")
    (tmp_path / "data" / "Gamma" / "img" / "0001.png").write_bytes(b"\x89PNG\r\n\x1a\n cut")
    out = tmp_path / "res"
    with pytest.raises(RuntimeError, match=r"1 sequence run\(s\) failed .*Gamma \(seed 0\): "
                                           r"ValueError: Gamma: cannot start, frame 0 is "
                                           r"unreadable: cannot decode image "
                                           r".*Gamma.img.0001\.png"):
        run_experiment(RunSpec("otb", root, str(out), progress=False, max_workers=1), standin())
    assert sorted(n for n in os.listdir(out) if n.endswith(".txt") and "_" not in n) == \
        ["Alpha.txt", "Beta.txt"]
    assert open(out / "Beta.txt").read().splitlines()[2] == "nan,nan,nan,nan"
    assert "Beta" in open(out / "Beta_skipped.txt").read().replace(os.sep, "/")


def test_folder_with_no_frames(tmp_path):
    seq = tmp_path / "Empty"
    os.makedirs(seq / "img")
    (seq / "img" / "readme.txt").write_text("no frames here")
    (seq / "groundtruth_rect.txt").write_text("1,1,4,4\n")
    with pytest.raises(ValueError, match=r"Empty.img: no image files \(expected frames"):
        read_otb(str(seq))
    with pytest.raises(ValueError, match="no image files"):
        from_image_folder(str(seq / "img"), [0, 0, 4, 4])


def test_mixed_frame_sizes_in_one_sequence(tmp_path):
    paths = [_png(tmp_path / "0001.png", np.zeros((20, 30, 3), np.uint8)),
             _png(tmp_path / "0002.png", np.zeros((20, 30, 3), np.uint8)),
             _png(tmp_path / "0003.png", np.zeros((24, 30, 3), np.uint8))]
    seq = Sequence("mixed", paths, np.tile([1, 1, 5, 5], (3, 1)))
    it = seq.iter_frames()
    next(it), next(it)
    with pytest.raises(ValueError, match=r"0003\.png: frame 2 of sequence 'mixed' is 30x24 "
                                         r"but frame 0 \(.*0001\.png\) is 30x20"):
        next(it)


@pytest.mark.parametrize("kind", ["gray", "rgba", "gray16", "rgb16"])
def test_gray_rgba_16bit_frames_are_converted(tmp_path, kind):
    rng = np.random.default_rng(1)
    rgb = rng.integers(0, 256, (6, 7, 3), dtype=np.uint8)
    img, want = {
        "gray": (rgb[..., 0], np.repeat(rgb[..., :1], 3, 2)),
        "rgba": (np.dstack([rgb, np.full((6, 7), 9, np.uint8)]), rgb),
        "gray16": (rgb[..., 0].astype(np.uint16) * 257, np.repeat(rgb[..., :1], 3, 2)),
        "rgb16": (rgb.astype(np.uint16) * 257, rgb),
    }[kind]
    ext = "tif" if kind == "rgb16" else "png"  # PIL writes no 16-bit RGB PNG
    out = load_frame(_png(tmp_path / f"{kind}.{ext}", img))
    assert out.dtype == np.uint8 and out.shape == (6, 7, 3)
    np.testing.assert_array_equal(out, want)


def test_frame_smaller_than_the_box_is_clipped_to_the_frame(params, core_box):
    """Documented recovery: a box larger than (or spilling out of) the frame
    is clipped to it; a frame smaller than the target is still tracked."""
    small = np.zeros((12, 16, 3), np.uint8)
    _init(params, frame=small, box=[-5, -3, 40, 30])
    np.testing.assert_allclose(core_box["box"], [0, 0, 16, 12])


# ----------------------------------------------------------------------------
# initial boxes


@pytest.mark.parametrize("box,match", [
    ([10, 12, 0, 14], r"positive width and height, got w=0\.0, h=14\.0"),
    ([10, 12, 16, 0], r"positive width and height, got w=16\.0, h=0\.0"),
    ([10, 12, -16, 14], r"positive width and height, got w=-16\.0"),
    ([10, np.nan, 16, 14], r"non-finite values: \[10\.0, nan, 16\.0, 14\.0\]"),
    ([10, 12, np.inf, 14], r"non-finite values: \[10\.0, 12\.0, inf, 14\.0\]"),
    ([-np.inf, 12, 16, 14], r"non-finite values"),
    ([W + 1, 12, 16, 14], rf"lies entirely outside the {W}x{H} frame"),
    ([-30, -30, 20, 20], rf"lies entirely outside the {W}x{H} frame"),
    ([10, 12, 16], r"shape \(4,\) as x, y, w, h; got shape \(3,\)"),
    ("abcd", r"box must be 4 numbers x, y, w, h; got 'abcd'"),
], ids=["zero-w", "zero-h", "negative", "nan", "inf", "-inf", "right-of", "above-left",
        "3-values", "not-numbers"])
def test_bad_initial_box(params, box, match):
    with pytest.raises(ValueError, match=match):
        _init(params, box=box)


def test_initial_box_partly_outside_is_clipped(params, core_box):
    _init(params, box=[-6, H - 10, 20, 30])
    np.testing.assert_allclose(core_box["box"], [0, H - 10, 14, 10])


# ----------------------------------------------------------------------------
# ground-truth files


@pytest.mark.parametrize("row,n", [("1,2,3", 3), ("1,2,3,4,5", 5), ("1 2 3 4 5 6 7", 7)],
                         ids=["3-cols", "5-cols", "7-cols"])
def test_gt_wrong_column_count_names_file_and_line(tmp_path, row, n):
    path = tmp_path / "groundtruth_rect.txt"
    path.write_text(f"1,2,3,4\n5,6,7,8\n{row}\n")
    with pytest.raises(ValueError, match=rf"groundtruth_rect\.txt:3: {n} values; expected 4 "
                                         r"\(x,y,w,h\) or 8"):
        read_box_file(str(path))


def _otb_folder(root, gt_text, n):
    os.makedirs(root / "img")
    for t in range(n):
        iio.imwrite(root / "img" / f"{t + 1:04d}.png", np.zeros((8, 8, 3), np.uint8))
    (root / "groundtruth_rect.txt").write_text(gt_text)
    return str(root)


def test_gt_blank_line_keeps_later_rows_in_place_and_is_absent(tmp_path):
    seq = read_otb(_otb_folder(tmp_path / "Blank", "1,1,4,4\n\n3,1,4,4\n\n", 3))[0]
    assert len(seq) == 3  # trailing blank line is not a row
    np.testing.assert_array_equal(seq.absent, [False, True, False])
    np.testing.assert_allclose(seq.gt[2], [2, 0, 4, 4])  # not shifted onto frame 1


def test_gt_nan_rows_are_absent_and_excluded_from_metrics(tmp_path):
    folder = tmp_path / "vot" / "dot"
    os.makedirs(folder)
    for t in range(5):
        iio.imwrite(folder / f"{t + 1:08d}.jpg", np.zeros((8, 8, 3), np.uint8))
    (folder / "groundtruth.txt").write_text(
        "1,1,5,1,5,5,1,5\nnan\nnan,nan,nan,nan\n2,1,4,4\n0,0,0,0\n")
    seq = read_vot(str(folder))
    np.testing.assert_array_equal(seq.absent, [False, True, True, False, True])
    np.testing.assert_array_equal(seq.flags["absent"], seq.absent)
    # a wild prediction on absent frames must not count (toolkits skip them)
    pred = np.asarray(seq.gt, np.float64).copy()
    pred[seq.absent] = [100, 100, 1, 1]
    m = ope_metrics(pred, seq.gt)
    assert m["n_frames"] == 2 and m["auc"] == pytest.approx(20 / 21)  # IoU 1: all but t=1
    pred[0] = [100, 100, 1, 1]  # ... while a miss on a present frame does count
    assert ope_metrics(pred, seq.gt)["auc"] == pytest.approx(10 / 21)


# ----------------------------------------------------------------------------
# config, flags, weight files


@pytest.mark.parametrize("field,value,match", [
    ("lr_init", -1e-3, r"lr_init must be finite and >= 0, got -0\.001"),
    ("lr_update", float("nan"), r"lr_update must be finite and >= 0, got nan"),
    ("frames_long", 0, r"frames_long must be a positive int, got 0"),
    ("frames_short", 0, r"frames_short must be a positive int, got 0"),
    ("n_pos_update", 0, r"n_pos_update must be a positive int, got 0"),
    ("region_scale", 0.5, r"region_scale must be >= 1, got 0\.5"),
    ("n_candidates", 2.5, r"n_candidates must be a positive int, got 2\.5"),
], ids=["negative-lr", "nan-lr", "capacity-0-long", "capacity-0-short", "capacity-0-samples",
        "region-scale<1", "non-int"])
def test_config_out_of_range(field, value, match):
    with pytest.raises(ValueError, match=r"invalid TrackerConfig: .*" + match):
        jtrack.TrackerConfig(**{field: value})


def test_unknown_flags_and_config_fields_of_the_cli(tmp_path):
    env = {**os.environ, "PYTHONPATH": REPO, "JAX_PLATFORMS": "cpu"}
    base = [sys.executable, "-m", "experiments.run", f"--root={tmp_path}",
            f"--results_dir={tmp_path / 'res'}"]
    r = subprocess.run(base + ["--max_frame=5"], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode != 0
    assert "Unknown command line flag 'max_frame'" in r.stderr
    assert "Did you mean: max_frames" in r.stderr
    from jtrack.config import load_config as build_config
    with pytest.raises(ValueError, match=r"unknown TrackerConfig fields: \['lr_initt'\]"):
        build_config(None, ["lr_initt=0.1"])
    with pytest.raises(ValueError, match=r"expects field=value, got 'lr_init'"):
        build_config(None, ["lr_init"])
    with pytest.raises(ValueError, match=r"lr_init must be finite and >= 0"):
        build_config(None, ["lr_init=-1"])


def test_config_file_errors_name_the_problem(tmp_path):
    from jtrack.config import load_config

    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(ValueError, match="bad.json is not valid JSON"):
        load_config(str(bad))
    bad.write_text("[1, 2]")
    with pytest.raises(ValueError, match="must hold a JSON object"):
        load_config(str(bad))
    with pytest.raises(OSError):
        load_config(str(tmp_path / "missing.json"))
    with pytest.raises(ValueError, match=r"online_update='False' is a str.*true/false"):
        load_config(None, ["online_update=False"])
    good = tmp_path / "good.json"
    good.write_text('{"n_candidates": 64, "layer_lr": [["fc6", 1.0]]}')
    cfg = load_config(str(good), ["n_candidates=128"], backbone="vggm")
    assert (cfg.n_candidates, cfg.layer_lr, cfg.backbone) == (128, (("fc6", 1.0),), "vggm")


def _pymdnet_state():
    """A py-MDNet state dict of the right shapes (torch layouts)."""
    from jtrack.weights.mdnet import expected_shapes

    shapes, st = expected_shapes(), {}
    for name in ("conv1", "conv2", "conv3"):
        kh, kw, cin, cout = shapes[name]["kernel"]
        st[f"layers.{name}.0.weight"] = np.zeros((cout, cin, kh, kw), np.float32)
        st[f"layers.{name}.0.bias"] = np.zeros(cout, np.float32)
    for name, key in (("fc4", "layers.fc4.1"), ("fc5", "layers.fc5.1"), ("fc6", "branches.0.1")):
        din, dout = shapes[name]["kernel"]
        st[f"{key}.weight"] = np.zeros((dout, din), np.float32)
        st[f"{key}.bias"] = np.zeros(dout, np.float32)
    return st


@pytest.mark.parametrize("edit,match", [
    (lambda st: st.pop("layers.conv2.0.bias"),
     r"bad\.pth: missing tensor 'layers\.conv2\.0\.bias'"),
    (lambda st: st.update({"layers.conv1.0.weight": np.zeros((96, 3, 5, 5), np.float32)}),
     r"bad\.pth: layers\.conv1\.0\.weight has shape \(96, 3, 5, 5\), expected \(96, 3, 7, 7\)"),
    (lambda st: st.update({"layers.fc4.1.bias": np.zeros(256, np.float32)}),
     r"layers\.fc4\.1\.bias has shape \(256,\), expected \(512,\)"),
], ids=["missing-layer", "conv-shape", "fc-shape"])
def test_weight_file_errors_name_the_layer(tmp_path, edit, match):
    from test_weights import write_pth

    from jtrack.weights import WeightFileError, load_mdnet

    st = _pymdnet_state()
    edit(st)
    with pytest.raises(WeightFileError, match=match):
        load_mdnet(write_pth(tmp_path / "bad.pth", st))


def test_params_with_missing_layer_or_wrong_shape_name_the_layer(params):
    head = {k: v for k, v in params["head"].items() if k != "fc4"}
    with pytest.raises(ValueError, match=r"missing params\['head'\]\['fc4'\] \(layer expected "
                                         r"by the config; have \['fc5', 'fc6'\]\)"):
        _init({"backbone": params["backbone"], "head": head})
    bb = {k: v for k, v in params["backbone"].items() if k != "mix"}
    with pytest.raises(ValueError, match=r"missing params\['backbone'\]\['mix'\]"):
        _init({"backbone": bb, "head": params["head"]})
    head = {**params["head"], "fc5": {"kernel": np.zeros((32, 7), np.float32),
                                      "bias": params["head"]["fc5"]["bias"]}}
    with pytest.raises(ValueError, match=r"params\['head'\]\['fc5'\]\['kernel'\] has shape "
                                         r"\(32, 7\), expected \(32, 32\)"):
        _init({"backbone": params["backbone"], "head": head})
    with pytest.raises(ValueError, match=r"head fc4 expects 144 inputs but backbone "
                                         r"'tiny_patch4_test' with roi_size 5 gives 400"):
        _init(params, config=CONFIG.replace(roi_size=5))
    with pytest.raises(TypeError, match=r"params must be a dict \{'backbone': \.\.\., 'head'"):
        _init(params["head"])


# ----------------------------------------------------------------------------
# wrong dtypes / shapes to the pure API


@pytest.mark.parametrize("frame,err,match", [
    (np.zeros((H, W), np.uint8), ValueError, rf"\(H, W, 3\) RGB array, got shape \({H}, {W}\)"),
    (np.zeros((H, W, 4), np.uint8), ValueError, r"got shape .*convert gray/RGBA"),
    (np.zeros((0, W, 3), np.uint8), ValueError, r"frame is empty"),
    (np.zeros((H, W, 3), np.float64), TypeError,
     r"uint8 \(or float32 in \[0, 255\]\), got float64"),
    (np.zeros((H, W, 3), np.int32), TypeError, r"got int32"),
    (np.full((H, W, 3), np.nan, np.float32), ValueError, r"non-finite values .* row 0, column 0"),
    ([[[0, 0, 0]]], TypeError, r"numpy or jax array, got list"),
], ids=["2d", "rgba", "empty", "float64", "int32", "nan", "list"])
def test_init_and_step_reject_bad_frames(params, state, frame, err, match):
    with pytest.raises(err, match=match):
        _init(params, frame=frame)
    with pytest.raises(err, match=match):
        jtrack.step(CONFIG, state, frame)


def test_init_rejects_a_bad_key_and_config(params):
    with pytest.raises(TypeError, match=r"PRNG key from jax.random.key\(\.\.\.\), got dtype"):
        _init(params, key=np.zeros(3))
    with pytest.raises(TypeError, match=r"config must be a jtrack.TrackerConfig, got dict"):
        jtrack.init({}, params, FRAME, BOX, jax.random.key(0))


def test_step_rejects_a_bad_state(params, state):
    with pytest.raises(TypeError, match=r"state must be the TrackerState returned by "
                                        r"jtrack.init or jtrack.step, got dict"):
        jtrack.step(CONFIG, params, FRAME)
    with pytest.raises(ValueError, match=r"state was made with a different TrackerConfig"):
        jtrack.step(CONFIG.replace(frames_long=7), state, FRAME)
    used = state.replace(box=jnp.asarray(BOX))
    used.box.delete()  # what donation does to a state step already consumed
    with pytest.raises(ValueError, match=r"already consumed by jtrack.step"):
        jtrack.step(CONFIG, used, FRAME)
