"""The ``jtrack`` command on a shipped sequence folder and on a video made
from it: boxes file, annotated mp4 / GIF / PNGs, the drawn box where the
target is, several targets, clear errors. Uses the small config of
tests/_small_config.py: the plumbing is under test, not accuracy."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

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
CFG_FLAGS = [f"--config_override={k}={json.dumps(v)}" for k, v in OVERRIDES.items()] + [
    "--noprogress", "--nocompilation_cache"]  # in this process: JAX settings left as they are


@pytest.fixture(scope="module")
def jax_cache(tmp_path_factory):
    """One compilation cache folder for the ``jtrack`` child processes of
    this file: the first compiles, the others load."""
    return str(tmp_path_factory.mktemp("jax_cache"))


def _child_flags(cache: str) -> list[str]:
    return CFG_FLAGS[:-1] + [f"--compilation_cache_dir={cache}"]


@pytest.fixture(scope="module")
def crossing():
    folder = os.path.join(default_data_root(), "otb", "Crossing")
    if not os.path.isdir(folder):
        pytest.fail(f"real test data missing: expected {folder} (set $JTRACK_DATA)")
    return folder, read_otb(folder)[0]


def _rows(path):
    """The numeric columns of a boxes CSV (every row tracked: status ok)."""
    with open(path) as f:
        header, *lines = f.read().splitlines()
    assert header == "frame,target,x,y,w,h,score,status"
    assert all(line.endswith(",ok") for line in lines), lines
    return np.array([[float(v) for v in line.split(",")[:-1]] for line in lines])


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
                   "--boxes", str(tmp_path / "b.json"), "--out", str(tmp_path / "o.mp4")]
                  + box_flags + CFG_FLAGS)
    assert rc == 0
    # --fps defaults to the input video's frame rate
    assert iio.immeta(tmp_path / "o.mp4", plugin="FFMPEG")["fps"] == pytest.approx(10)
    doc = json.loads((tmp_path / "b.json").read_text())
    assert doc["targets"] == 2 and doc["frames"] == N
    assert [(r["frame"], r["target"]) for r in doc["rows"]] == [
        (i, k) for i in range(N) for k in range(2)]
    assert {r["status"] for r in doc["rows"]} == {"ok"}
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


# ----------------------------------------------------------------------------
# bad frames, flushing and --resume (issue 22), on real frames

@pytest.fixture(scope="module")
def truncated_folder(crossing, tmp_path_factory):
    """Crossing frames 1-9 with 0006.jpg cut to its first 500 bytes."""
    folder = tmp_path_factory.mktemp("bad") / "Crossing9"
    folder.mkdir()
    for f in crossing[1].frames[:9]:
        shutil.copy(f, folder)
    data = (folder / "0006.jpg").read_bytes()
    (folder / "0006.jpg").write_bytes(data[:500])
    return str(folder)


def _track_bad(folder, tmp_path, *extra):
    return cli.main(["jtrack", "track", folder, "--box=204,150,17,50",
                     "--boxes", str(tmp_path / "out.csv")] + list(extra) + CFG_FLAGS)


def test_bad_frame_is_skipped_and_reported(truncated_folder, tmp_path, capsys):
    rc = _track_bad(truncated_folder, tmp_path, "--out", str(tmp_path / "v.mp4"))
    out, err = capsys.readouterr()
    assert rc == 0
    rows = cli.read_rows(str(tmp_path / "out.csv"))
    assert [r[0] for r in rows] == list(range(9))
    assert [r[7] for r in rows] == ["ok"] * 5 + ["skipped"] + ["ok"] * 3
    assert np.isnan(rows[5][2:7]).all()
    assert np.isfinite([r[2:7] for r in rows if r[7] == "ok"]).all()
    assert "skipped 1 of 9 frames" in out and out.count("\n") >= 2
    assert "0006.jpg" in err and "Truncated" in err
    # the annotated video keeps every frame: the skipped one repeats frame 4
    v = iio.imread(tmp_path / "v.mp4", plugin="FFMPEG").astype(int)
    assert v.shape[0] == 9
    assert np.abs(v[5] - v[4]).mean() < 1.0 < np.abs(v[6] - v[5]).mean()


def test_on_bad_frame_stop_keeps_the_frames_before(truncated_folder, tmp_path, capsys):
    assert _track_bad(truncated_folder, tmp_path / "skip") == 0
    rc = _track_bad(truncated_folder, tmp_path, "--on_bad_frame=stop")
    err = capsys.readouterr().err
    assert rc != 0
    assert "frame 5" in err and "0006.jpg" in err and "frames 0-4" in err
    rows = cli.read_rows(str(tmp_path / "out.csv"))
    assert [r[0] for r in rows] == list(range(5)) and {r[7] for r in rows} == {"ok"}
    assert rows == cli.read_rows(str(tmp_path / "skip" / "out.csv"))[:5]
    assert not list(tmp_path.glob(".out.csv.*.tmp")), "temp files left behind"


# ----------------------------------------------------------------------------
# a clean first run, the compilation cache (issue 21)

def test_clean_runs_on_mp4_and_folder_keep_size_and_share_the_cache(crossing, tmp_path,
                                                                     jax_cache):
    """``jtrack track`` as a user runs it (a fresh process, the compilation
    cache on) on an mp4 and on an image folder: nothing on stderr (no fork
    warning, no log noise), the annotated video keeps the input's width and
    height, and the second process loads the programs the first compiled."""
    folder, seq = crossing
    clip = tmp_path / "clip.mp4"
    writer = Mp4Writer(str(clip), fps=10)
    for f in seq.frames[:4]:
        writer.append(load_frame(f))
    writer.close()
    cache = Path(jax_cache)  # given by $JAX_COMPILATION_CACHE_DIR, no flag
    env = {**os.environ, "JAX_COMPILATION_CACHE_DIR": str(cache)}
    seconds = []
    for src in (str(clip), folder):
        out = tmp_path / (os.path.basename(src) + "_tracked.mp4")
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, "-m", "jtrack.cli", "track", src, "--box=204,150,17,50",
                            "--max_frames=4", "--out_dir", str(tmp_path), "--out", str(out)]
                           + CFG_FLAGS[:-1], env=env, capture_output=True, text=True, timeout=600,
                           cwd=os.path.dirname(os.path.dirname(__file__)))
        seconds.append(time.perf_counter() - t0)
        assert r.returncode == 0, r.stderr[-3000:]
        assert r.stderr == "", r.stderr[-3000:]
        assert iio.imread(out, plugin="FFMPEG").shape == (4, 240, 360, 3)
        assert len(list(cache.iterdir())) > 10  # programs cached where the variable says
        stored = os.listdir(cache / "jtrack-executables")  # init/step: loaded untraced
        assert {f.split("-")[0] for f in stored} >= {"init_many_jit", "step_many_jit"}
    print(f"process wall times: {seconds[0]:.1f} s (cold cache), {seconds[1]:.1f} s (warm)")
    assert seconds[1] < seconds[0] / 2


def test_kill_9_then_resume_gives_the_uninterrupted_boxes(crossing, tmp_path, capsys,
                                                          jax_cache):
    """A run killed with SIGKILL after its rows file holds 12 frames, then
    rerun with --resume, gives the boxes of one uninterrupted run."""
    n = 30
    args = ["track", crossing[0], "--max_frames", str(n), "--flush_every", "5"] + CFG_FLAGS
    ref, out = tmp_path / "ref.csv", tmp_path / "run.csv"
    assert cli.main(["jtrack"] + args + ["--boxes", str(ref)]) == 0
    child_args = args[:-len(CFG_FLAGS)] + _child_flags(jax_cache)
    child = subprocess.Popen([sys.executable, "-m", "jtrack.cli", *child_args, "--boxes", str(out)],
                             cwd=os.path.dirname(os.path.dirname(__file__)),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while not (out.exists() and len(out.read_text().splitlines()) > 1 + 12):
        assert child.poll() is None, child.stderr.read().decode()[-3000:]
        assert time.time() < deadline, "the child never flushed 12 frames"
        time.sleep(0.02)
    child.send_signal(signal.SIGKILL)
    child.wait()
    assert child.returncode == -9
    killed = cli.read_rows(str(out))
    assert 12 <= len(killed) < n, "killed after the end: nothing left to resume"
    # the checkpoints belong to that command: another seed is refused, nothing touched
    assert cli.main(["jtrack"] + args + ["--boxes", str(out), "--resume", "--seed=1"]) == 2
    assert "different settings (seed)" in capsys.readouterr().err
    assert cli.read_rows(str(out)) == killed
    assert cli.main(["jtrack"] + args + ["--boxes", str(out), "--resume"]) == 0
    got, want = cli.read_rows(str(out)), cli.read_rows(str(ref))
    assert [r[:2] for r in got] == [r[:2] for r in want] == [(i, 0) for i in range(n)]
    np.testing.assert_allclose([r[2:7] for r in got], [r[2:7] for r in want], atol=1e-3)
    assert killed == got[:len(killed)]  # the rows on disk at the kill were already final
    assert not (tmp_path / ".run.csv.resume").exists()  # finished: checkpoints removed


def test_import_jtrack_changes_no_jax_setting_and_the_call_does(tmp_path):
    code = ("import jax; before = jax.config.jax_compilation_cache_dir; import jtrack; "
            "assert jax.config.jax_compilation_cache_dir == before, 'import changed it'; "
            "d = jtrack.enable_compilation_cache(); "
            "assert jax.config.jax_compilation_cache_dir == d; print(d)")
    env = {k: v for k, v in os.environ.items() if k != "JAX_COMPILATION_CACHE_DIR"}
    env["XDG_CACHE_HOME"] = str(tmp_path)
    r = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.strip() == str(tmp_path / "jtrack" / "jax")  # the per-user default
