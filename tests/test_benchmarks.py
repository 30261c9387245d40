"""Smoke tests of the benchmark suite: every benchmark runs end to end with
tiny settings on the built-in sequence, prints its table and writes JSON.

No timing assertions (benchmarks are not tests). All benchmarks use the
same tiny config and frame size, so ``init``/``step`` compile once for the
whole module. ``compile`` and ``memory`` measure in child processes; here
their child functions run in-process (the parents only launch them).
"""

import json
import math

import numpy as np
import pytest

from benchmarks import breakdown, common, memory, per_frame, scaling
from benchmarks import compile as compile_bench

TINY = ["--tiny", "--sequence", "synthetic"]


def _json(path, name):
    with open(path / f"{name}.json") as f:
        r = json.load(f)
    assert r["benchmark"] == name and r["machine"]["devices"] and "command" in r
    return r


def test_summarize_and_table():
    s = common.summarize([0.002, 0.001, 0.003])
    assert s == {"n": 3, "median_ms": 2.0, "min_ms": 1.0, "max_ms": 3.0,
                 "mean_ms": pytest.approx(2.0)}
    with pytest.raises(ValueError, match="no timings"):
        common.summarize([])
    t = common.format_table(["a", "b"], [["x", 1.5], ["yy", 1234.0]]).splitlines()
    assert len(t) == 4 and t[0].startswith("| a") and "1234" in t[3]


def test_load_frames_missing_sequence_names_it(tmp_path):
    with pytest.raises(FileNotFoundError, match="no_such_seq"):
        common.load_frames(str(tmp_path / "no_such_seq"), 3)


def test_per_frame(tmp_path, capsys):
    r = per_frame.main(TINY + ["--frames", "3", "--warmup", "1", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "per-crop / jtrack" in out and "| jtrack" in out and "| percrop" in out
    j = _json(tmp_path, "per_frame")
    for k in ("jtrack", "percrop"):
        assert j["results"][k]["n"] == 3
    assert math.isfinite(j["speedup_median"]) and j["speedup_median"] > 0
    assert r["n_candidates"] == common.TINY["n_candidates"]


def test_percrop_features_match_region_features_for_a_whole_region_box():
    """The per-crop path pools the box inside its own padded crop: for a box
    whose crop is the whole region, it sees the same pixels as the region."""
    import jax
    import jax.numpy as jnp

    import jtrack
    from benchmarks import reference
    from jtrack import region

    config = common.config(True)
    params = jtrack.init_params(config, jax.random.key(0))
    frame = jnp.asarray(np.random.default_rng(0).integers(0, 255, (120, 160, 3), np.uint8))
    box = jnp.asarray([[40.0, 30.0, 60.0, 50.0]])
    area = reference.crop_boxes(box)[0]
    # the box sits in the padded centre of its 107x107 crop (py-MDNet crop_image2)
    inner = region.to_region(box[0], area, reference.CROP)
    side = reference.CROP / (1 + 2 * reference.PADDING / reference.CROP)
    pad = (reference.CROP - side) / 2
    np.testing.assert_allclose(np.asarray(inner), [pad, pad, side, side], atol=1e-3)
    f = jax.jit(lambda p, fr, b: reference.percrop_features(config, p, fr, b))(
        params["backbone"], frame, box)

    @jax.jit
    def one_crop(p, fr):
        img = region.crop(fr, area, reference.CROP)
        fmap = jtrack.get_backbone(config.backbone).apply(p, img)
        return jtrack.tracker.pool_features(config, fmap, inner[None])

    want = one_crop(params["backbone"], frame)
    np.testing.assert_allclose(np.asarray(f), np.asarray(want), rtol=1e-4, atol=1e-4)


def test_breakdown(tmp_path, capsys):
    breakdown.main(TINY + ["--repeats", "1", "--whole-frames", "2", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "backbone (region)" in out and "init training" in out
    j = _json(tmp_path, "breakdown")
    assert {s["group"] for s in j["stages"]} == {"init", "step"}
    assert all(s["median_ms"] > 0 for s in j["stages"])


def test_scaling(tmp_path, capsys):
    scaling.main(TINY + ["--frames", "1", "--warmup", "1", "--candidates", "16",
                         "--sizes", "400x300", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "400x300" in out
    j = _json(tmp_path, "scaling")
    assert [x["n_candidates"] for x in j["by_candidates"]] == [16]
    assert [x["w"] for x in j["by_frame_size"]] == [320, 400]
    with pytest.raises(ValueError, match="frame size"):
        scaling._parse_sizes("big")


def test_compile_child_counts_no_recompiles():
    r = compile_bench.child(frames=4, tiny=True)
    assert len(r["new_compiles_per_frame_after_frame1"]) == 4
    assert r["new_compiles_after_frame2"] == 0  # the property the benchmark checks
    both = {"frames": 4, "cold": r, "warm": dict(r)}
    assert "first init call" in compile_bench.table(both)


def test_memory_child(tmp_path):
    r = memory.child({}, True, "synthetic", 2)
    assert r["state_mib"] > r["memory_buffers_mib"] > 0
    assert r["peak_rss_total_mib"] >= r["rss_before_init_mib"] > 0
    res = {"sequence": "synthetic", "frames": 2, "tiny": True,
           "points": [{"point": "default", **r}]}
    assert "| default" in memory.table(res)
    common.write_results(str(tmp_path), "memory", res)
    assert _json(tmp_path, "memory")["points"][0]["state_mib"] == r["state_mib"]


SMALL = ["--tiny", "--sequence", "synthetic", "--backbone", "small_cnn"]


def test_multi_target(tmp_path, capsys):
    from benchmarks import multi_target

    r = multi_target.main(SMALL + ["--targets", "1,2", "--frames", "1", "--warmup", "1",
                                   "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "batched/per-target" in out and "| 2 " in out and "floor: the backbone" in out
    saved = _json(tmp_path, "multi_target")
    floor = saved["backbone_floor"]
    assert floor["backbone_median_ms"] > 0
    assert floor["fraction_of_single_step"] == pytest.approx(
        floor["backbone_median_ms"] / saved["points"][0]["sequential"]["median_ms"])
    p = saved["points"][1]
    assert p["targets"] == 2 and p["batched"]["n"] == 1 and p["sequential"]["n"] == 1
    assert p["max_box_diff_last_frame_px"] < 0.1  # batched = per-target steps
    assert r["goal"] == multi_target.GOAL
    # the ratios, on made-up timings
    pts = [{"targets": n, "batched": {k: b for k in ("median_ms", "mean_ms", "cpu_median_ms",
                                                     "cpu_mean_ms")},
            "sequential": {k: s for k in ("median_ms", "mean_ms", "cpu_median_ms",
                                          "cpu_mean_ms")}}
           for n, b, s in [(1, 10.0, 10.0), (4, 16.0, 40.0)]]
    multi_target.derive(pts)
    assert pts[1]["extra_target_fraction"]["median_ms"] == pytest.approx(0.2)
    assert pts[1]["batched_over_sequential"]["median_ms"] == pytest.approx(0.4)
    boxes = multi_target.start_boxes(np.array([5.0, 5, 20, 30]), 8, 100, 60)
    assert boxes.shape == (8, 4) and (boxes[:, 0] + boxes[:, 2] <= 100).all()


def test_multi_device_child_and_table():
    """The child runs in-process on 1 and 2 of the 4 forced CPU devices (the
    parent only launches the child process)."""
    from benchmarks import multi_device

    one, r = multi_device.child([1, 2], ["synthetic", "synthetic"], frames=1, warmup=1,
                                tiny=True, backbone="small_cnn")
    assert one["devices"] == 1 and one["capacity"] == 2
    assert r["devices"] == 2 and r["capacity"] == 2 and r["frames_per_s"] > 0
    pts = [dict(r, devices=1, frames_per_s=10.0), dict(r, frames_per_s=15.0)]
    multi_device.derive(pts)
    assert pts[1]["speedup"] == pytest.approx(1.5) and pts[1]["efficiency"] == pytest.approx(0.75)
    assert "| 2 " in multi_device.table({"points": pts})


def test_run_all_groups_and_in_process_timings(tmp_path):
    """Consecutive single-process benchmarks share one process (unless
    isolated); the shared process reports each benchmark's own seconds and
    each JSON records that benchmark's own command."""
    from benchmarks import run_all

    names = ["per_frame", "breakdown", "memory", "scaling", "multi_target", "compile"]
    assert run_all._groups(names, isolate=False) == [
        ["per_frame", "breakdown"], ["memory"], ["scaling", "multi_target"], ["compile"]]
    assert run_all._groups(names, isolate=True) == [[n] for n in names]
    assert 0 < common.speed_probe(0.05, n=64) < 1e5  # GFLOP/s
    timings = tmp_path / "timings.json"
    run_all.run_in_process(["scaling"], ["--out", str(tmp_path), *TINY, "--frames", "1",
                                         "--warmup", "1", "--candidates", "16",
                                         "--sizes", "320x240"], str(timings))
    t = json.loads(timings.read_text())["scaling"]
    assert t["wall_s"] > 0 and t["cpu_s"] > 0
    assert " -m benchmarks.scaling --out" in _json(tmp_path, "scaling")["command"]


def test_vs_opencv(tmp_path, capsys):
    """jtrack (and CSRT when OpenCV is installed) on the same frames: stats,
    AUC and the goal ratios; without OpenCV the JSON says why it is missing."""
    from benchmarks import vs_opencv

    r = vs_opencv.main(["--tiny", "--sequences", "synthetic", "--frames", "4",
                        "--set", "iters_per_frame=1", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    j = _json(tmp_path, "vs_opencv")
    s = j["stats"]["jtrack"]
    assert s["frames"] == 3 and 0 < s["p50_ms"] <= s["p99_ms"] <= s["max_ms"]
    assert 0.0 <= s["auc"]["synthetic"] <= 1.0 and "| jtrack" in out
    assert j["config_overrides"] == {"iters_per_frame": 1}
    if "csrt" in r["stats"]:
        assert "goal <= 1.5" in out and j["goals"]["p99_ratio"] > 0
    else:
        assert "OpenCV CSRT not measured" in j["opencv"]


def test_first_frame(tmp_path, capsys):
    from benchmarks import first_frame

    first_frame.main(["--tiny", "--sequences", "synthetic", "--repeats", "1",
                      "--variant", "no dropout:dropout=0.0", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert "default (random head)" in out and "random head, 5 steps" in out
    j = _json(tmp_path, "first_frame")
    rows = j["variants"]
    assert "no dropout" in rows
    with pytest.raises(SystemExit):  # a variant without its fields
        first_frame.main(["--variant", "no dropout"])
    assert "expected NAME:FIELD=VALUE" in capsys.readouterr().err
    assert rows["default (random head)"]["vs_default"] == 1.0
    assert all(v["synthetic"]["median_ms"] > 0 for v in rows.values())
