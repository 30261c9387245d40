"""The ``jtrack`` command on a shipped sequence folder and on a video made
from it: boxes file, annotated mp4 / GIF / PNGs, the drawn box where the
target is, several targets, clear errors. Uses the small config of
tests/_small_config.py: the plumbing is under test, not accuracy."""

import json
import os
import subprocess
import sys

import imageio.v3 as iio
import numpy as np
import pytest

from jtrack import cli
from jtrack.data import default_data_root, load_frame, read_otb
from jtrack.io import draw
from jtrack.io.video import Mp4Writer

sys.path.insert(0, os.path.dirname(__file__))
from _small_config import OVERRIDES  # noqa: E402

N = 6
CFG_FLAGS = [f"--config_override={k}={json.dumps(v)}" for k, v in OVERRIDES.items()] + ["--noprogress"]


@pytest.fixture(scope="module")
def crossing():
    folder = os.path.join(default_data_root(), "otb", "Crossing")
    if not os.path.isdir(folder):
        pytest.fail(f"real test data missing: expected {folder} (set $JTRACK_DATA)")
    return folder, read_otb(folder)[0]


def _rows(path):
    with open(path) as f:
        header, *lines = f.read().splitlines()
    assert header == "frame,target,x,y,w,h,score"
    return np.array([[float(v) for v in line.split(",")] for line in lines])


def test_track_folder_writes_boxes_video_gif_and_frames(crossing, tmp_path, capsys):
    folder, seq = crossing
    out = tmp_path / "out"
    rc = cli.main(["jtrack", "track", folder, "--max_frames", str(N), "--out_dir", str(out),
                   "--out", str(out / "tracked.mp4"), "--gif", "--save_frames"] + CFG_FLAGS)
    assert rc == 0
    assert "ground truth of frame 0" in capsys.readouterr().out  # no --box: OTB GT
    rows = _rows(out / "Crossing_boxes.csv")
    assert rows.shape == (N, 7)
    np.testing.assert_array_equal(rows[:, 0], np.arange(N))
    np.testing.assert_allclose(rows[0, 2:6], seq.gt[0], atol=1e-3)
    assert np.isfinite(rows).all() and (rows[:, 4:6] > 0).all()

    video = iio.imread(out / "tracked.mp4", plugin="FFMPEG")
    assert video.shape == (N, 240, 360, 3)
    gif = iio.imread(out / "Crossing.gif", index=None)
    assert gif.shape[0] == N // 2 and gif.shape[2] <= 320

    pngs = sorted(os.listdir(out / "Crossing_frames"))
    assert pngs == [f"{i:06d}.png" for i in range(N)]
    # The box is drawn on the target: its outline pixels carry target 0's
    # color at the ground-truth location of frame 0, and the inside of the
    # box is the untouched frame.
    png = load_frame(str(out / "Crossing_frames" / "000000.png"))
    x, y, w, h = seq.gt[0].astype(int)
    red = draw.color_of(0)
    bottom, left = png[y + h - 1, x:x + w], png[y:y + h, x]
    assert (bottom == red).all() and (left == red).all()
    original = load_frame(seq.frames[0])
    np.testing.assert_array_equal(png[y + 3:y + h - 3, x + 3:x + w - 3],
                                  original[y + 3:y + h - 3, x + 3:x + w - 3])
    assert not (original[y + h - 1, x:x + w] == red).all()


def test_track_video_with_two_targets_json(crossing, tmp_path):
    folder, seq = crossing
    clip = tmp_path / "clip.mp4"
    writer = Mp4Writer(str(clip), fps=10)
    for f in seq.frames[:N]:
        writer.append(load_frame(f))
    writer.close()
    starts = [seq.gt[0], np.array([40.0, 60.0, 30.0, 30.0])]
    box_flags = [f"--box={','.join(f'{v:g}' for v in b)}" for b in starts]
    rc = cli.main(["jtrack", "track", str(clip), "--out_dir", str(tmp_path),
                   "--boxes", str(tmp_path / "b.json")] + box_flags + CFG_FLAGS)
    assert rc == 0
    doc = json.loads((tmp_path / "b.json").read_text())
    assert doc["targets"] == 2 and doc["frames"] == N
    assert [(r["frame"], r["target"]) for r in doc["rows"]] == [
        (i, k) for i in range(N) for k in range(2)]
    first = [[r[c] for c in "xywh"] for r in doc["rows"][:2]]
    np.testing.assert_allclose(first, np.stack(starts), atol=1e-3)
    assert not list(tmp_path.glob(".*.tmp*")), "temp files left behind"


@pytest.mark.parametrize("args, message", [
    (["track"], "missing VIDEO_OR_FOLDER"),
    (["track", "/no/such/clip.mp4", "--box=1,2,3,4"], "input not found"),
    (["track", "{folder}", "--box=1,2,3"], "expected 4 numbers"),
    (["track", "{folder}", "--box=900,900,10,10", "--max_frames=1"], "target #0"),
    (["track", "{folder}", "--box=1,2,3,4", "--boxes=b.txt"], ".csv or .json"),
    (["track", "{folder}", "--config_override=nope=1"], "unknown TrackerConfig fields"),
    (["track", "{folder}", "--config_override=bbreg=False"], "expected a bool"),
    (["track", "{folder}", "--no_such_flag"], "no_such_flag"),
    (["frobnicate"], "unknown command"),
    (["bench", "nope"], "unknown benchmark"),
])
def test_clear_errors(crossing, tmp_path, capsys, args, message):
    args = [a.replace("{folder}", crossing[0]) for a in args]
    extra = ["--out_dir", str(tmp_path)] + CFG_FLAGS if args[0] == "track" and len(args) > 1 \
        else []
    assert cli.main(["jtrack", args[0]] + extra + args[1:]) == 2
    assert message in capsys.readouterr().err


def test_help_lists_commands_and_examples(capsys):
    assert cli.main(["jtrack", "--help"]) == 0
    text = capsys.readouterr().out
    assert all(c in text for c in ("track", "eval", "bench", "demo", "examples:"))
    assert cli.main(["jtrack", "track", "--help"]) == 0
    text = capsys.readouterr().out
    assert "--box" in text and "--save_frames" in text and "jtrack track clip.mp4" in text
    assert cli.main(["jtrack", "bench"]) == 0
    assert "backbone_timing" in capsys.readouterr().out


def test_console_entry_point_runs_as_a_module():
    """``python -m jtrack.cli`` runs ``main`` as the console script does;
    ``eval --help`` shows the runner's flags and an example."""
    r = subprocess.run([sys.executable, "-m", "jtrack.cli", "eval", "--help"],
                       capture_output=True, text=True, timeout=120,
                       cwd=os.path.dirname(os.path.dirname(__file__)))
    assert r.returncode == 0, r.stderr
    assert "--results_dir" in r.stdout and "jtrack eval --dataset otb" in r.stdout
