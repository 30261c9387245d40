"""Experiment runner: layout, resume, seeds, protocols, devices, CLIs."""

import json
import os
import subprocess
import sys
import textwrap

import imageio.v3 as iio
import numpy as np
import pytest

from jtrack.data import default_data_root
from jtrack.eval.runner import RunSpec, SequencesFailed, run_experiment
from jtrack.eval.trackers import Tracker

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NAMES = ("Alpha", "Beta", "Gamma")


def make_otb(root, n=6):
    """Three tiny OTB sequences; the target moves 1 px right per frame."""
    for k, name in enumerate(NAMES):
        img = os.path.join(root, name, "img")
        os.makedirs(img)
        for t in range(n):
            iio.imwrite(os.path.join(img, f"{t + 1:04d}.png"), np.full((8, 8, 3), t, np.uint8))
        rows = [f"{2 + t},{3 + k},4,5" for t in range(n)]
        with open(os.path.join(root, name, "groundtruth_rect.txt"), "w") as f:
            f.write("\n".join(rows) + "\n")
    return str(root)


def standin(seed_shift=True):
    """Keeps the init box, shifted by the seed (so seeds differ)."""
    def init(frame, box, seed):
        return np.asarray(box, np.float64) + [seed if seed_shift else 0, 0, 0, 0]

    def step(state, frame):
        return state, state, 0.7

    return Tracker(init, step, name="standin", config={"v": 1})


def spec(root, out, **kw):
    return RunSpec(dataset="otb", root=root, results_dir=str(out), progress=False,
                   **{"max_workers": 1, **kw})  # sequential unless a test asks: order-dependent checks


def test_layout_summary_table_plots(tmp_path):
    root = make_otb(tmp_path / "data")
    out = tmp_path / "res"
    summary = run_experiment(spec(root, out), standin())
    for n in NAMES:
        rows = open(out / f"{n}.txt").read().splitlines()
        assert len(rows) == 6 and len(open(out / f"{n}_time.txt").read().split()) == 6
    # first row is the init box in the GT file's own (1-based) convention
    assert open(out / "Beta.txt").readline().strip() == "2.0000,4.0000,4.0000,5.0000"
    disk = json.load(open(out / "summary.json"))
    assert set(disk["sequences"]) == set(NAMES)
    assert {"auc", "precision_20", "norm_precision", "fps"} <= set(disk["mean"])
    # static box, target moving 1 px/frame: IoUs 1, 3/5, 3/7, 1/3, 1/5 ... by hand
    # (width 4 boxes shifted by t: inter (4-t)*5, union (4+t)*5)
    ious = [(4 - t) / (4 + t) for t in range(4)] + [0, 0]
    auc = np.mean([np.mean([i > th for i in ious]) for th in np.linspace(0, 1, 21)])
    assert disk["sequences"]["Alpha"]["auc"] == pytest.approx(auc)
    assert "| **mean** |" in open(out / "table.md").read()
    assert summary["table_md"].startswith("| sequence |")
    for png in ("success.png", "precision.png"):
        assert open(out / png, "rb").read(4) == b"\x89PNG"
    exp = json.load(open(out / "experiment.json"))
    assert exp["tracker_config"] == {"v": 1} and exp["protocol"] == "ope"


def test_interrupted_run_resumes_without_redoing(tmp_path):
    root = make_otb(tmp_path / "data")
    out = tmp_path / "res"
    # the first run dies on frame 3 of the sequence after Alpha
    calls = {"n": 0}
    base = standin()

    def step(state, frame):
        if calls["n"] >= 5 and int(frame[0, 0, 0]) == 3:
            raise RuntimeError("killed")
        calls["n"] += 1
        return base.step(state, frame)

    with pytest.raises(RuntimeError, match="failed"):
        run_experiment(spec(root, out), Tracker(base.init, step, "standin", {"v": 1}))
    assert os.path.exists(out / "Alpha.txt") and not os.path.exists(out / "Beta.txt")
    done = {n: os.path.getmtime(out / f"{n}.txt") for n in NAMES if os.path.exists(out / f"{n}.txt")}
    past = 1_000_000_000
    for n in done:
        for suffix in (".txt", "_time.txt"):
            os.utime(out / f"{n}{suffix}", (past, past))
    summary = run_experiment(spec(root, out), standin())
    assert summary["skipped_done"] == len(done)
    for n in done:  # finished sequences untouched
        assert os.path.getmtime(out / f"{n}.txt") == past
        assert os.path.getmtime(out / f"{n}_time.txt") == past
    assert all(os.path.exists(out / f"{n}.txt") for n in NAMES)


def test_truncated_result_is_redone_and_config_mismatch_refused(tmp_path):
    root = make_otb(tmp_path / "data")
    out = tmp_path / "res"
    run_experiment(spec(root, out), standin())
    with open(out / "Gamma.txt", "w") as f:
        f.write("1,1,1,1\n")  # partial (e.g. written by hand)
    s = run_experiment(spec(root, out), standin())
    assert s["skipped_done"] == 2 and len(open(out / "Gamma.txt").read().splitlines()) == 6
    other = Tracker(standin().init, standin().step, "standin", {"v": 2})
    with pytest.raises(ValueError, match="different experiment"):
        run_experiment(spec(root, out), other)


def test_seeds_layout_mean_std(tmp_path):
    root = make_otb(tmp_path / "data")
    out = tmp_path / "res"
    s = run_experiment(spec(root, out, seeds=(0, 1, 2), sequences=("Alpha",)), standin())
    for k in (0, 1, 2):
        assert os.path.exists(out / f"seed_{k}" / "Alpha.txt")
        assert os.path.exists(out / f"seed_{k}" / "summary.json")
    top = json.load(open(out / "summary.json"))
    aucs = [top["per_seed"][str(k)]["auc"] for k in (0, 1, 2)]
    assert top["mean"]["auc"] == pytest.approx(np.mean(aucs))
    assert top["std"]["auc"] == pytest.approx(np.std(aucs)) and top["std"]["auc"] > 0
    assert "±" in s["table_md"]


def test_supervised_protocol_on_vot_layout(tmp_path):
    seq = tmp_path / "vot" / "dot"
    os.makedirs(seq)
    n = 30
    for t in range(n):
        iio.imwrite(seq / f"{t + 1:08d}.jpg", np.full((8, 8, 3), t, np.uint8))
    # target jumps far away at frame 10: the static tracker fails there
    xs = [1 if t < 10 else 60 for t in range(n)]
    rows = [f"{x},1,{x + 4},1,{x + 4},5,{x},5" for x in xs]  # 8-value polygons
    (seq / "groundtruth.txt").write_text("\n".join(rows) + "\n")
    out = tmp_path / "res"
    s = run_experiment(RunSpec("vot", str(tmp_path / "vot"), str(out), progress=False),
                       standin(seed_shift=False))
    m = s["sequences"]["dot"]
    assert m["failures"] == 1 and m["accuracy"] == pytest.approx(1.0)
    assert s["eao_range"] == [2, n] and 0 < s["mean"]["eao"] < 1
    lines = open(out / "dot.txt").read().splitlines()
    assert lines[11] == "nan,nan,nan,nan"  # skipped after the failure


PARALLEL_SCRIPT = textwrap.dedent("""
    import os, sys, json
    os.environ["XLA_FLAGS"] = "--xla_force_host_platform_device_count=4"
    import jax, jax.numpy as jnp, numpy as np
    sys.path.insert(0, os.getcwd())
    from tests.test_runner import make_otb
    from jtrack.eval.runner import RunSpec, run_experiment
    from jtrack.eval.trackers import Tracker
    assert len(jax.local_devices()) == 4, jax.local_devices()
    used = set()
    def init(frame, box, seed):
        return jnp.asarray(box) + seed        # placed on the worker's device
    def step(state, frame):
        used.add(str(list(state.devices())[0]))
        state = state + jnp.asarray([0.5, 0.0, 0.0, 0.0])
        return state, np.asarray(state), 0.5
    tr = Tracker(init, step, "jnp", {})
    tmp = sys.argv[1]
    root = make_otb(os.path.join(tmp, "data"))
    outs = {}
    for mode, workers in (("par", None), ("seq", 1)):
        out = os.path.join(tmp, mode)
        run_experiment(RunSpec("otb", root, out, progress=False, max_workers=workers), tr)
        outs[mode] = {n: open(os.path.join(out, n + ".txt")).read()
                      for n in ("Alpha", "Beta", "Gamma")}
    assert outs["par"] == outs["seq"]
    print(json.dumps(sorted(used)))
""")


def test_parallel_on_four_forced_cpu_devices_matches_sequential(tmp_path):
    env = {**os.environ, "PYTHONPATH": REPO, "JAX_PLATFORMS": "cpu"}
    r = subprocess.run([sys.executable, "-c", PARALLEL_SCRIPT, str(tmp_path)], cwd=REPO,
                       env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    used = json.loads(r.stdout.strip().splitlines()[-1])
    assert len(used) >= 2, used  # sequences really ran on several devices


def test_cli_run_then_plot_against_external_results(tmp_path):
    root = make_otb(tmp_path / "data")
    env = {**os.environ, "PYTHONPATH": REPO, "JAX_PLATFORMS": "cpu"}
    out = tmp_path / "res"
    cmd = [sys.executable, "-m", "experiments.run", "--dataset=otb", f"--root={root}",
           f"--results_dir={out}", "--tracker=static", "--noprogress", "--max_frames=4",
           "--nocompilation_cache"]
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "| **mean** |" in r.stdout
    flags = json.load(open(out / "flags.json"))
    assert flags["tracker"] == "static" and flags["max_frames"] == 4
    # another tracker's OTB results: <Tracker>_<seq>.txt, tab separated, perfect
    ext = tmp_path / "ext"
    os.makedirs(ext)
    for name in NAMES:
        gt = open(os.path.join(root, name, "groundtruth_rect.txt")).read()
        (ext / f"Perfect_{name}.txt").write_text(gt.replace(",", "\t"))
    plots = tmp_path / "plots"
    cmd = [sys.executable, "-m", "experiments.plot", f"--results=jtrack:{out},Perfect:{ext}",
           "--dataset=otb", f"--root={root}", f"--out={plots}", "--sequences=Alpha,Beta"]
    r = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    comp = json.load(open(plots / "comparison.json"))
    assert comp["trackers"]["Perfect"]["mean"]["auc"] == pytest.approx(20 / 21)
    assert comp["trackers"]["jtrack"]["mean"]["auc"] < 20 / 21
    assert comp["sequences"] == ["Alpha", "Beta"]
    for png in ("success.png", "precision.png"):
        assert open(plots / png, "rb").read(4) == b"\x89PNG"


KILL_SCRIPT = textwrap.dedent("""
    import os, signal, sys
    sys.path.insert(0, os.getcwd())
    import numpy as np
    from tests.test_runner import make_otb, standin
    from jtrack.eval.runner import RunSpec, run_experiment
    from jtrack.eval.trackers import Tracker
    root, out, kill = sys.argv[1], sys.argv[2], sys.argv[3] == "kill"
    base = standin()
    seen = []
    def step(state, frame):
        seen.append(1)
        if kill and len(seen) == 8:   # frame 3 of the second sequence
            os.kill(os.getpid(), signal.SIGKILL)
        return base.step(state, frame)
    run_experiment(RunSpec("otb", root, out, progress=False, max_workers=1),  # sequential: kill point is deterministic
                   Tracker(base.init, step, "standin", {"v": 1}))
""")


def test_sigkill_halfway_then_rerun(tmp_path):
    root = make_otb(tmp_path / "data")
    out = str(tmp_path / "res")
    env = {**os.environ, "PYTHONPATH": REPO, "JAX_PLATFORMS": "cpu"}

    def run(mode):
        return subprocess.run([sys.executable, "-c", KILL_SCRIPT, root, out, mode], cwd=REPO,
                              env=env, capture_output=True, text=True, timeout=120)

    assert run("kill").returncode == -9
    assert sorted(n for n in os.listdir(out) if n.endswith(".txt")) == \
        ["Alpha.txt", "Alpha_time.txt"]  # no partial files of Beta
    past = 1_000_000_000
    os.utime(os.path.join(out, "Alpha.txt"), (past, past))
    r = run("ok")
    assert r.returncode == 0, r.stderr[-3000:]
    assert os.path.getmtime(os.path.join(out, "Alpha.txt")) == past
    assert all(os.path.exists(os.path.join(out, f"{n}.txt")) for n in NAMES)


def test_a_config_field_added_later_at_its_default_keeps_finished_runs():
    import dataclasses

    from jtrack.config import TrackerConfig
    from jtrack.eval.runner import _same_config

    new = dataclasses.asdict(TrackerConfig())
    old = {k: v for k, v in new.items() if k != "hold_on_failure"}  # written before the knob
    assert _same_config(old, new)
    assert not _same_config(old, {**new, "hold_on_failure": True})   # knob changed: redo
    assert not _same_config({**old, "n_candidates": 64}, new)        # a recorded field differs
    assert not _same_config(new, old)                                # a field went away
    assert not _same_config({"v": 1}, {"v": 1, "w": 2})              # not a TrackerConfig field


def _real_otb_with_bad_frames(root):
    """Two OTB sequences of the real Crossing frames 1-9: ``Crossing9`` with
    0006.jpg truncated to 500 bytes, ``Broken`` with 0001.jpg truncated (no
    start: it cannot be tracked at all)."""
    src = os.path.join(default_data_root(), "otb", "Crossing")
    if not os.path.isdir(src):
        pytest.fail(f"real test data missing: expected {src} (set $JTRACK_DATA)")
    gt = open(os.path.join(src, "groundtruth_rect.txt")).read().splitlines()[:9]
    for name, bad in (("Crossing9", "0006.jpg"), ("Broken", "0001.jpg")):
        img = os.path.join(root, name, "img")
        os.makedirs(img)
        for t in range(1, 10):
            data = open(os.path.join(src, "img", f"{t:04d}.jpg"), "rb").read()
            with open(os.path.join(img, f"{t:04d}.jpg"), "wb") as f:
                f.write(data[:500] if f"{t:04d}.jpg" == bad else data)
        with open(os.path.join(root, name, "groundtruth_rect.txt"), "w") as f:
            f.write("\n".join(gt) + "\n")
    return str(root)


def test_bad_frames_are_skipped_and_counted_unreadable_sequence_reported(tmp_path):
    root = _real_otb_with_bad_frames(tmp_path / "data")
    out = tmp_path / "res"
    steps = []
    base = standin()

    def step(state, frame):
        steps.append(frame.shape)
        return base.step(state, frame)

    tracker = Tracker(base.init, step, "standin", {"v": 1})
    with pytest.raises(SequencesFailed, match=r"Broken \(seed 0\).*frame 0.*0001\.jpg") as e:
        run_experiment(spec(root, out), tracker)
    assert len(steps) == 7  # frames 1-8 but the bad one: not stepped on it
    rows = open(out / "Crossing9.txt").read().splitlines()
    assert len(rows) == 9 and rows[5] == "nan,nan,nan,nan" and "nan" not in "".join(rows[:5])
    skipped = open(out / "Crossing9_skipped.txt").read().splitlines()
    assert len(skipped) == 1 and skipped[0].startswith("5\t") and "0006.jpg" in skipped[0]
    disk = json.load(open(out / "summary.json"))
    assert disk["skipped_frames"] == 1 and disk["skipped_by_sequence"] == {"Crossing9": 1}
    assert list(disk["failed"]) == ["Broken"] and "0001.jpg" in disk["failed"]["Broken"]
    assert "Crossing9" in disk["sequences"] and disk["missing"] == ["Broken"]
    assert e.value.summary["skipped_frames"] == 1
    # a rerun keeps the finished sequence (its skips still counted), retries the other
    steps.clear()
    with pytest.raises(SequencesFailed):
        run_experiment(spec(root, out), tracker)
    assert steps == [] and json.load(open(out / "summary.json"))["skipped_frames"] == 1


def _run_processes(root, out, n: int) -> list[str]:
    """``experiments.run`` as ``n`` jax.distributed processes on localhost."""
    import local_processes  # tests/ (child scripts import this module from elsewhere)

    return local_processes.run(
        [sys.executable, "-m", "experiments.run", "--dataset=otb", f"--root={root}",
         f"--results_dir={out}", "--tracker=static", "--seeds=0,1", "--noprogress",
         "--nocompilation_cache"], n)


def test_two_processes_share_an_evaluation_as_one_process_runs_it(tmp_path):
    """jax.distributed on localhost: each process tracks its share into one
    results folder, process 0 writes the summary; a rerun after a lost
    result tracks only that run again."""
    root = make_otb(tmp_path / "data")
    one, two = tmp_path / "one", tmp_path / "two"
    _run_processes(root, one, 1)
    out = _run_processes(root, two, 2)
    assert "process 1 of 2: tracked 3 sequence run(s)" in out[1]  # 3 sequences x 2 seeds
    assert "| **mean** |" not in out[1] and "auc" in out[0]
    for seed in (0, 1):
        for name in NAMES:
            f = f"seed_{seed}/{name}.txt"
            assert (two / f).read_text() == (one / f).read_text()
    s1, s2 = (json.load(open(d / "summary.json")) for d in (one, two))
    timing = {"fps"}  # measured, so never equal
    assert {k: v for k, v in s2["mean"].items() if k not in timing} == \
        {k: v for k, v in s1["mean"].items() if k not in timing}
    (two / "seed_1" / f"{NAMES[2]}.txt").unlink()  # its process "died" before writing it
    out = _run_processes(root, two, 2)
    assert "tracked 0 sequence run(s) (3 already done" in out[1] or \
        "tracked 1 sequence run(s) (2 already done" in out[1]
    assert (two / "seed_1" / f"{NAMES[2]}.txt").read_text() == \
        (one / "seed_1" / f"{NAMES[2]}.txt").read_text()


def test_distributed_settings_without_distributed_are_refused():
    from absl import flags

    from jtrack.distributed import define_flags, initialize_from_flags

    fv = flags.FlagValues()
    define_flags(fv)
    fv(["prog", "--process_id=1"])
    with pytest.raises(ValueError, match="need --distributed"):
        initialize_from_flags(fv)
    fv(["prog"])
    fv.process_id = None
    assert initialize_from_flags(fv) == (0, 1)
