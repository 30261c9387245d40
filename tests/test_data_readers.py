"""Readers, frame loading and dataset listing on tiny fixtures + real data."""

import os

import imageio.v3 as iio
import numpy as np
import pytest

from jtrack import data
from jtrack.data import readers


def _images(folder, n, start=1, digits=4, ext="png", size=(6, 8)):
    os.makedirs(folder, exist_ok=True)
    for k in range(start, start + n):
        iio.imwrite(os.path.join(folder, f"{k:0{digits}d}.{ext}"),
                    np.full(size + (3,), k % 255, np.uint8))


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


# --- frames -----------------------------------------------------------------

def test_load_frame_converts_gray_rgba_16bit(tmp_path):
    gray = np.arange(12, dtype=np.uint8).reshape(3, 4)
    iio.imwrite(tmp_path / "g.png", gray)
    out = data.load_frame(str(tmp_path / "g.png"))
    assert out.shape == (3, 4, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out[..., 1], gray)
    rgba = np.zeros((3, 4, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 7
    iio.imwrite(tmp_path / "a.png", rgba)
    out = data.load_frame(str(tmp_path / "a.png"))
    assert out.shape == (3, 4, 3) and out[0, 0, 0] == 200
    g16 = np.full((3, 4), 65535, np.uint16)
    g16[0, 0] = 0
    iio.imwrite(tmp_path / "w.png", g16)
    out = data.load_frame(str(tmp_path / "w.png"))
    assert out.dtype == np.uint8 and out[1, 1, 0] == 255 and out[0, 0, 2] == 0


def test_to_rgb_uint8_float_and_bool():
    assert data.to_rgb_uint8(np.ones((2, 2), np.float32))[0, 0, 0] == 255
    assert data.to_rgb_uint8(np.ones((2, 2), bool)).tolist()[0][0] == [255] * 3


@pytest.mark.parametrize("content,exc,word", [
    (None, FileNotFoundError, "not found"),
    (b"", ValueError, "empty"),
    (b"\x89PNG garbage not an image", ValueError, "cannot decode"),
])
def test_load_frame_errors_name_the_file(tmp_path, content, exc, word):
    path = tmp_path / "bad_0007.jpg"
    if content is not None:
        path.write_bytes(content)
    with pytest.raises(exc, match=word) as e:
        data.load_frame(str(path))
    assert "bad_0007.jpg" in str(e.value)


def test_list_images_natural_order(tmp_path):
    for n in ("10.png", "2.png", "1.png", "notes.txt"):
        (tmp_path / n).write_bytes(b"x")
    assert [os.path.basename(p) for p in data.list_images(str(tmp_path))] == \
        ["1.png", "2.png", "10.png"]


# --- OTB ----------------------------------------------------------------------

@pytest.mark.parametrize("sep", [",", "\t", " ", ", "])
def test_otb_separators_and_one_based(tmp_path, sep):
    seq = tmp_path / "Car"
    _images(seq / "img", 3)
    rows = ["11,21,5,6", "12,22,5,6", "13,23,5,6"]
    _write(seq / "groundtruth_rect.txt", "\n".join(r.replace(",", sep) for r in rows) + "\n")
    (s,) = readers.read_otb(str(seq))
    assert s.name == "Car" and len(s) == 3 and s.dataset == "otb" and s.one_based
    np.testing.assert_allclose(s.gt[0], [10, 20, 5, 6])  # 1-based -> 0-based
    assert s.gt.dtype == np.float32 and s.frames[2].endswith("0003.png")
    assert s.frame(1).shape == (6, 8, 3)


def test_otb_mixed_separators_in_one_file(tmp_path):
    seq = tmp_path / "BlurCar1"
    _images(seq / "img", 2, start=247)  # folder starts at 0247
    _write(seq / "groundtruth_rect.txt", "1\t2\t3\t4\n5 6 7 8\n")
    (s,) = readers.read_otb(str(seq))
    assert s.frames[0].endswith("0247.png")
    np.testing.assert_allclose(s.gt[1], [4, 5, 7, 8])


def test_otb_fewer_gt_rows_than_images_like_diving(tmp_path):
    seq = tmp_path / "Diving"
    _images(seq / "img", 5)
    _write(seq / "groundtruth_rect.txt", "1,1,2,2\n2,2,2,2\n3,3,2,2\n")
    (s,) = readers.read_otb(str(seq))
    assert len(s) == 3 and s.frames[-1].endswith("0003.png")


def test_otb_late_start_like_david(tmp_path):
    seq = tmp_path / "David"
    _images(seq / "img", 305)
    _write(seq / "groundtruth_rect.txt", "1,1,2,2\n" * 6)
    (s,) = readers.read_otb(str(seq))
    assert s.frames[0].endswith("0300.png") and s.frames[-1].endswith("0305.png")


def test_otb_two_targets_and_attributes(tmp_path):
    seq = tmp_path / "Jogging"
    _images(seq / "img", 2)
    _write(seq / "groundtruth_rect.1.txt", "1,1,2,2\n1,1,2,2\n")
    _write(seq / "groundtruth_rect.2.txt", "5,5,3,3\n0,0,0,0\n")
    _write(seq / "attrs.txt", "OCC, DEF\tIV\n")
    s1, s2 = readers.read_otb(str(seq))
    assert (s1.name, s2.name) == ("Jogging-1", "Jogging-2")
    assert s1.attributes == ("OCC", "DEF", "IV")
    assert np.isnan(s2.gt[1]).all() and s2.absent.tolist() == [False, True]
    assert [s.name for s in data.load_dataset("otb", str(tmp_path), ["Jogging-2"])] == ["Jogging-2"]
    assert len(data.load_dataset("otb", str(tmp_path), ["Jogging"])) == 2


def test_otb_missing_images_is_clear(tmp_path):
    seq = tmp_path / "Short"
    _images(seq / "img", 1)
    _write(seq / "groundtruth_rect.txt", "1,1,2,2\n1,1,2,2\n")
    with pytest.raises(ValueError, match="Short"):
        readers.read_otb(str(seq))


# --- VOT ----------------------------------------------------------------------

def test_vot_polygon_nan_rows_and_flat_frames(tmp_path):
    seq = tmp_path / "ball"
    _images(seq, 3, digits=8, ext="jpg")
    _write(seq / "groundtruth.txt",
           "11,21,31,21,31,41,11,41\n"    # axis-aligned polygon
           "nan,nan,nan,nan\n"
           "2,3,4,5\n")
    _write(seq / "occlusion.tag", "0\n1\n")  # short tag files are padded
    s = readers.read_vot(str(seq))
    np.testing.assert_allclose(s.gt[0], [10, 20, 20, 20])
    assert s.absent.tolist() == [False, True, False]
    np.testing.assert_allclose(s.gt[2], [1, 2, 4, 5])
    assert s.flags["occlusion"].tolist() == [False, True, False]


def test_vot_rotated_polygon_bbox_and_color_dir(tmp_path):
    seq = tmp_path / "rot"
    _images(seq / "color", 1, digits=8, ext="jpg")
    _write(seq / "groundtruth.txt", "11,1,21,11,11,21,1,11\n")  # diamond
    s = readers.read_vot(str(seq))
    np.testing.assert_allclose(s.gt[0], [0, 0, 20, 20])
    assert "color" in s.frames[0]


# --- GOT-10k, LaSOT -----------------------------------------------------------

def test_got10k_absence_cover_and_zero_based(tmp_path):
    seq = tmp_path / "val" / "GOT-10k_Val_000001"
    _images(seq, 3, digits=8, ext="jpg")
    _write(seq / "groundtruth.txt", "10,20,5,6\n11,21,5,6\n12,22,5,6\n")
    _write(seq / "absence.label", "0\n1\n0\n")
    _write(seq / "cover.label", "8\n0\n3\n")
    _write(tmp_path / "val" / "list.txt", "GOT-10k_Val_000001\n")
    (s,) = data.load_dataset("got10k", str(tmp_path / "val"))
    np.testing.assert_allclose(s.gt[0], [10, 20, 5, 6])  # 0-based, untouched
    assert not s.one_based and s.absent.tolist() == [False, True, False]
    assert s.flags["cover"].tolist() == [8, 0, 3]


def test_got10k_test_split_has_only_first_box(tmp_path):
    seq = tmp_path / "GOT-10k_Test_000001"
    _images(seq, 4, digits=8, ext="jpg")
    _write(seq / "groundtruth.txt", "10,20,5,6\n")
    _write(seq / "absence.label", "0\n0\n0\n0\n")
    s = readers.read_got10k(str(seq))
    assert len(s) == 4 and s.absent.tolist() == [False, True, True, True]


def test_lasot_flags(tmp_path):
    seq = tmp_path / "airplane" / "airplane-1"
    _images(seq / "img", 3, digits=8, ext="jpg")
    _write(seq / "groundtruth.txt", "11,21,5,6\n0,0,0,0\n13,23,5,6\n")
    _write(seq / "full_occlusion.txt", "0,1,0")
    _write(seq / "out_of_view.txt", "0,0,1")
    (s,) = data.load_dataset("auto", str(tmp_path))
    assert s.dataset == "lasot" and s.name == "airplane-1"
    np.testing.assert_allclose(s.gt[0], [10, 20, 5, 6])
    assert s.flags["full_occlusion"].tolist() == [False, True, False]
    assert s.flags["out_of_view"].tolist() == [False, False, True]
    assert s.absent.tolist() == [False, True, False]


# --- folder / video -------------------------------------------------------------

def test_image_folder_and_video(tmp_path):
    _images(tmp_path / "frames", 4, size=(16, 16))
    s = data.from_image_folder(str(tmp_path / "frames"), [1, 2, 3, 4])
    assert len(s) == 4 and s.absent.tolist() == [False, True, True, True]
    np.testing.assert_allclose(s.init_box, [1, 2, 3, 4])
    video = str(tmp_path / "clip.mp4")
    iio.imwrite(video, np.full((5, 16, 16, 3), 100, np.uint8), plugin="FFMPEG", fps=10)
    v = data.from_video(video, [1, 2, 3, 4], one_based=True)
    assert len(v) == 5 and v.name == "clip"
    np.testing.assert_allclose(v.init_box, [0, 1, 3, 4])
    frames = list(v.iter_frames(1, 3))
    assert len(frames) == 2 and frames[0].shape == (16, 16, 3) and frames[0].dtype == np.uint8


# --- dataset level ---------------------------------------------------------------

def test_detect_kind_and_errors(tmp_path):
    _images(tmp_path / "otb" / "A" / "img", 1)
    _write(tmp_path / "otb" / "A" / "groundtruth_rect.txt", "1,1,2,2\n")
    _images(tmp_path / "vot" / "b", 1, digits=8)
    _write(tmp_path / "vot" / "b" / "groundtruth.txt", "1,1,2,2\n")
    assert data.detect_kind(str(tmp_path / "otb")) == "otb"
    assert data.detect_kind(str(tmp_path / "vot")) == "vot"
    assert data.detect_kind(str(tmp_path / "otb" / "A")) == "otb"  # a sequence folder
    with pytest.raises(ValueError, match="not in"):
        data.load_dataset("otb", str(tmp_path / "otb"), ["Nope"])
    with pytest.raises(FileNotFoundError):
        data.load_dataset("otb", str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="unknown dataset kind"):
        data.load_dataset("imagenet", str(tmp_path / "otb"))


def test_sequence_is_frozen_and_validates():
    s = data.Sequence("x", ["a.png"], np.zeros((1, 4)))
    with pytest.raises(Exception):
        s.name = "y"
    with pytest.raises(ValueError):
        s.gt[0, 0] = 1.0  # read-only array
    with pytest.raises(ValueError, match="frames"):
        data.Sequence("x", ["a.png", "b.png"], np.zeros((1, 4)))


def test_data_root_env_override(monkeypatch, tmp_path):
    monkeypatch.setenv("JTRACK_DATA", str(tmp_path))
    assert data.default_data_root() == str(tmp_path)
    monkeypatch.delenv("JTRACK_DATA")
    assert data.default_data_root().endswith(os.path.join("shared", "data"))


# --- real data ------------------------------------------------------------------

def _real_root():
    root = data.default_data_root()
    if not os.path.isdir(os.path.join(root, "otb")):
        pytest.fail(f"real test data missing: expected {root} (../shared/data relative "
                    "to the project root, or set JTRACK_DATA)")
    return root


def test_real_data_smoke():
    root = _real_root()
    otb = {s.name: s for s in data.load_dataset("auto", os.path.join(root, "otb"))}
    assert len(otb["Diving"]) == 215  # 231 images, the sequence is frames 1-215
    assert len(otb["Crossing"]) == 120
    np.testing.assert_allclose(otb["Diving"].gt[0], [176, 50, 21, 129])
    assert otb["Diving"].frame(214).shape == (224, 400, 3)
    (ball,) = data.load_dataset("vot", os.path.join(root, "vot"))
    assert len(ball) == 105 and not ball.absent.any()
    np.testing.assert_allclose(ball.gt[0], [491, 416, 47, 46])  # polygon bbox, 0-based
    assert ball.frame(0).shape == (720, 1280, 3)
