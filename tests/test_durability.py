"""Durability: SIGKILL at random moments, then resume, loses nothing.

A child process runs the experiment runner over three tiny OTB sequences
with a deterministic stand-in tracker and kills itself with SIGKILL at a
randomly drawn event: a tracker step, or inside a file write (between the
two halves of any ``write()``, before the temp file's fsync, before the
rename, before the folder's fsync). The next
child resumes the same results folder and is killed again, and so on; a
last child finishes. After every kill no visible file may be truncated,
and at the end the result files must equal those of an uninterrupted run
and no temp file may be left.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import textwrap

import numpy as np
from test_runner import NAMES, make_otb

from jtrack.data.results import read_box_file
from jtrack.eval.runner import RunSpec, run_experiment
from jtrack.eval.trackers import Tracker

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
N_FRAMES = 6


def deterministic_tracker() -> Tracker:
    """Moves the box by the frame's brightness: output depends on every frame."""
    def init(frame, box, seed):
        return np.asarray(box, np.float64) + [seed, 0, 0, 0]

    def step(state, frame):
        state = state + [0.25 * float(frame[0, 0, 0]) + 0.5, 0.1, 0, 0]
        return state, state, 0.5

    return Tracker(init, step, name="deterministic", config={"v": 1})


CHILD = textwrap.dedent("""
    import os, signal, sys
    sys.path[:0] = [os.getcwd(), os.path.join(os.getcwd(), "tests")]
    root, out, kill, log = sys.argv[1:5]
    kill_kind, kill_n = kill.split(":")  # die at the kill_n-th event of kill_kind
    count = {}

    def event(what):
        count[what] = count.get(what, 0) + 1
        if what == kill_kind and count[what] == int(kill_n):
            with real_open(log, "a") as f:
                f.write(kill + "\\n")
            os.kill(os.getpid(), signal.SIGKILL)

    real_fsync, real_replace = os.fsync, os.replace
    def fsync(fd):
        event("fsync")
        return real_fsync(fd)
    def replace(src, dst):
        event("replace")
        return real_replace(src, dst)
    os.fsync, os.replace = fsync, replace

    class HalfWrites:
        # a kill can also land between the halves of any write() to a file
        def __init__(self, f):
            self._f = f
        def write(self, data):
            k = len(data) // 2
            n = self._f.write(data[:k])
            self._f.flush()
            event("write")
            return n + self._f.write(data[k:])
        def __enter__(self):
            self._f.__enter__()
            return self
        def __exit__(self, *exc):
            return self._f.__exit__(*exc)
        def __getattr__(self, name):
            return getattr(self._f, name)

    import builtins
    real_open, real_fdopen = builtins.open, os.fdopen
    def writing(mode):
        return any(c in mode for c in "wax+")
    def open_(file, mode="r", *a, **k):
        f = real_open(file, mode, *a, **k)
        inside = isinstance(file, (str, os.PathLike)) and \
            os.path.abspath(file).startswith(os.path.abspath(out))
        return HalfWrites(f) if inside and writing(mode) else f
    def fdopen(fd, mode="r", *a, **k):
        f = real_fdopen(fd, mode, *a, **k)
        return HalfWrites(f) if writing(mode) else f
    builtins.open, os.fdopen = open_, fdopen

    from test_durability import deterministic_tracker
    from jtrack.eval.runner import RunSpec, run_experiment
    from jtrack.eval.trackers import Tracker
    base = deterministic_tracker()
    def step(state, frame):
        event("step")
        return base.step(state, frame)
    run_experiment(RunSpec("otb", root, out, progress=False, max_workers=1),
                   Tracker(base.init, step, base.name, base.config))
""")


def _is_temp(name: str) -> bool:
    return name.startswith(".") and name.endswith(".tmp")


def _check_no_truncated_file(out: str) -> None:
    """Every visible file is whole: result files have one row per frame,
    JSON parses, PNGs end with their IEND chunk."""
    for name in os.listdir(out):
        path = os.path.join(out, name)
        if _is_temp(name):
            continue
        if name.endswith(".txt"):
            rows = open(path).read().splitlines()
            assert len(rows) == N_FRAMES and all(rows), f"{name} truncated: {rows}"
            if not name.endswith("_time.txt"):
                assert np.all(np.isfinite(read_box_file(path))), name
        elif name.endswith(".json"):
            json.load(open(path))
        elif name.endswith(".png"):
            data = open(path, "rb").read()
            assert data[:4] == b"\x89PNG" and data[-8:-4] == b"IEND", f"{name} truncated"
        elif name.endswith(".md"):
            assert open(path).read().endswith("\n"), name


def _without_timing(x):
    if isinstance(x, dict):
        return {k: _without_timing(v) for k, v in x.items() if k != "fps"}
    return x


def test_sigkill_at_random_moments_then_resume_loses_nothing(tmp_path):
    root = make_otb(tmp_path / "data", n=N_FRAMES)
    ref = str(tmp_path / "ref")
    run_experiment(RunSpec("otb", root, ref, progress=False, max_workers=1),
                   deterministic_tracker())

    out, log = str(tmp_path / "res"), str(tmp_path / "kills.log")
    env = {**os.environ, "PYTHONPATH": REPO, "JAX_PLATFORMS": "cpu"}
    # Random positions, every kind of moment covered. Each run has at least
    # 5 write()s, 10 fsyncs and 5 renames (experiment.json and the summary
    # files), so these kills always happen; "step" comes first, while
    # sequences are still left to track.
    rng = random.Random(int(os.environ.get("JTRACK_KILL_SEED", "6")))  # fixed in CI
    plan = [f"step:{rng.randint(1, 12)}", f"write:{rng.randint(1, 5)}",
            f"fsync:{rng.randint(1, 10)}", f"replace:{rng.randint(1, 5)}",
            f"write:{rng.randint(1, 5)}", "none:0"]
    kills, temps_seen = 0, 0
    for kill in plan:
        r = subprocess.run([sys.executable, "-c", CHILD, root, out, kill, log],
                           cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
        if r.returncode == -9:
            kills += 1
            _check_no_truncated_file(out)
            temps_seen += sum(_is_temp(n) for n in os.listdir(out))
        else:
            assert r.returncode == 0, r.stderr[-3000:]
    where = open(log).read().split()
    print(f"kills survived: {kills} at {where}; temp files left by kills: {temps_seen}")
    assert kills == len(plan) - 1 and where == plan[:-1], (where, plan)
    assert temps_seen > 0  # some kill really landed inside a write

    assert not [n for n in os.listdir(out) if _is_temp(n)], os.listdir(out)
    _check_no_truncated_file(out)
    def boxes(folder, name):
        return open(os.path.join(folder, name + ".txt")).read()

    lost = [n for n in NAMES if boxes(out, n) != boxes(ref, n)]
    assert lost == [], f"results differ from the uninterrupted run: {lost}"
    assert open(os.path.join(out, "experiment.json")).read() == \
        open(os.path.join(ref, "experiment.json")).read()
    got, want = (json.load(open(os.path.join(d, "summary.json"))) for d in (out, ref))
    assert _without_timing(got) == _without_timing(want)
