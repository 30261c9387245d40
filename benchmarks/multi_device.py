"""Evaluation throughput (frames/s) over 1, 2 and 4 forced host CPU devices,
as scaling efficiency.

S sequences (default 4: OTB Crossing and Diving, VOT ball1, the built-in
synthetic one) are tracked in lock-step as the slots of one
``MultiTrackerState`` split over a 1-D device mesh (``shard_map`` over the
``data`` axis, backbone replicated once per device): per frame each
sequence's region is cropped from its own frame, then one sharded
``step_many``. One child process gets ``max(--devices)`` forced host
devices (``XLA_FLAGS=--xla_force_host_platform_device_count`` must be set
before jax starts) and measures every count D on a mesh over its first D
devices, from the same first-frame states (started once).

  frames/s    = S x timed frames / wall seconds of those frames
  speedup     = frames/s(D) / frames/s(1)
  efficiency  = speedup / D

Forced host devices are threads of one process sharing the machine's
cores: the speedup is bounded by the number of free cores (2 here, and
XLA's CPU ops already use a few threads on one device), so expect close
to 2x at 2 devices and nothing more at 4. The child's CPU seconds per wall
second (``cpu_util``) shows how many cores it kept busy.

  PYTHONPATH=. python -m benchmarks.multi_device
  PYTHONPATH=. python -m benchmarks.multi_device --devices 1,2 --frames 8
  PYTHONPATH=. python -m benchmarks.multi_device --tiny --sequences synthetic --frames 2
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


from benchmarks import common

DEFAULT_SEQUENCES = "otb/Crossing,otb/Diving,vot/ball1,synthetic"


def child(devices: list[int], sequences: list[str], frames: int, warmup: int,
          tiny: bool, backbone: str | None = None) -> list[dict]:
    """Track ``sequences`` in lock-step over the first D devices of this
    process, for each D of ``devices``, from the same first-frame states;
    per-frame wall and CPU times of the timed frames, one dict per D."""
    import jax

    import jtrack
    from jtrack import parallel

    if jax.device_count() < max(devices):
        raise RuntimeError(f"{max(devices)} devices asked, {jax.device_count()} present "
                           "(set XLA_FLAGS=--xla_force_host_platform_device_count)")
    config = common.config(tiny, **({"backbone": backbone} if backbone else {}))
    params = jtrack.init_params(config, jax.random.key(0))
    data = [common.load_frames(s, frames + warmup + 1) for s in sequences]
    started = [jtrack.init(config, params, imgs[0], gt[0], jax.random.key(1 + k))
               for k, (imgs, gt) in enumerate(data)]
    n = len(sequences)
    points = []
    for n_devices in devices:
        mesh = parallel.make_mesh(n_devices)
        state = jtrack.stack_states(params, [common.copy_tree(s) for s in started], mesh=mesh)
        pad = [None] * (state.capacity - n)
        wall, cpu = [], []
        with common.stage(f"{n_devices} device(s)"):
            for t in range(1, frames + warmup + 1):
                frame_list = [jax.numpy.asarray(imgs[t]) for imgs, _ in data] + pad
                jax.block_until_ready(frame_list)
                c0, t0 = time.process_time(), time.perf_counter()
                state, out = jax.block_until_ready(jtrack.step_many(config, state, frame_list))
                if t > warmup:
                    wall.append(time.perf_counter() - t0)
                    cpu.append(time.process_time() - c0)
        points.append({"devices": n_devices, "sequences": n, "capacity": state.capacity,
                       "frames_per_s": n * len(wall) / sum(wall),
                       "cpu_util": sum(cpu) / sum(wall), **common.summarize(wall)})
        del state
    return points


def _run_child(devices: list[int], args: list[str]) -> dict:
    """One child process with ``max(devices)`` forced host devices (the
    flag must be set before jax starts) measuring every count:
    ``{'points': [...], 'machine': ...}`` (the child's machine; this parent
    never imports jax)."""
    env = dict(os.environ)
    flags = [f for f in env.get("XLA_FLAGS", "").split()
             if "xla_force_host_platform_device_count" not in f]
    env["XLA_FLAGS"] = " ".join(flags + [f"--xla_force_host_platform_device_count={max(devices)}"])
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = os.pathsep.join(x for x in (root, env.get("PYTHONPATH")) if x)
    cmd = [sys.executable, "-m", "benchmarks.multi_device", "--child",
           ",".join(map(str, devices))] + args
    with common.stage(f"child process, {max(devices)} host devices"):
        res = subprocess.run(cmd, env=env, cwd=root, stdout=subprocess.PIPE, text=True)
    if res.returncode != 0:
        raise RuntimeError(f"child with devices {devices} failed (exit {res.returncode}; "
                           "its stderr is above)")
    return json.loads(res.stdout.strip().splitlines()[-1])


def derive(points: list[dict]) -> None:
    base = next((p for p in points if p["devices"] == 1), None)
    for p in points:
        if base is not None:
            p["speedup"] = p["frames_per_s"] / base["frames_per_s"]
            p["efficiency"] = p["speedup"] / p["devices"]


def table(r: dict) -> str:
    return common.format_table(
        ["devices", "frames/s", "speedup", "efficiency", "median ms / lock-step frame",
         "cpu_util (cores busy)"],
        [[p["devices"], p["frames_per_s"], p.get("speedup", "-"), p.get("efficiency", "-"),
          p["median_ms"], p["cpu_util"]] for p in r["points"]])


def main(argv=None):
    p = common.parser(__doc__)
    p.add_argument("--devices", default="1,2,4", help="comma-separated device counts")
    p.add_argument("--sequences", default=DEFAULT_SEQUENCES,
                   help="comma-separated sequence folders / names under the data root / "
                        "'synthetic'")
    p.add_argument("--frames", type=int, default=10, help="timed frames per sequence")
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--backbone", default=None, help="backbone name (default: the config's)")
    p.add_argument("--child", default=None, help=argparse.SUPPRESS)
    a = p.parse_args(argv)
    seqs = [s.strip() for s in a.sequences.split(",") if s.strip()]
    if a.child is not None:
        common.enable_compile_cache(a.compile_cache)
        devices = [int(d) for d in a.child.split(",")]
        points = child(devices, seqs, a.frames, a.warmup, a.tiny, a.backbone)
        print(json.dumps({"points": points, "machine": common.machine()}))
        return None
    args = ["--sequences", a.sequences, "--frames", str(a.frames), "--warmup", str(a.warmup)]
    args += ["--tiny"] if a.tiny else []
    args += ["--backbone", a.backbone] if a.backbone else []
    args += ["--compile-cache", a.compile_cache] if a.compile_cache else []
    res = _run_child([int(d) for d in a.devices.split(",")], args)
    points = res["points"]
    derive(points)
    r = {"sequences": seqs, "frames": a.frames, "warmup": a.warmup, "points": points}
    heading = (f"{len(seqs)} sequences in lock-step, {a.frames} timed frames each after "
               f"{a.warmup} warm-up; efficiency = frames/s(D) / (D x frames/s(1))")
    return common.report(a.out, "multi_device", r, heading, table(r), res["machine"])


if __name__ == "__main__":
    main()
