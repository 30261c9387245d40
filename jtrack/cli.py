"""The ``jtrack`` command: track videos and folders, run evaluations,
benchmarks and the demo. A thin edge over the library (see ``USAGE``).

Each sub-command has its own absl flags; ``track`` keeps its flags in a
private ``FlagValues`` so it never clashes with the experiment runner's or
the demo's flags (which are forwarded to unchanged).
"""

from __future__ import annotations

import gc
import json
import os
import sys
import time

import numpy as np
from absl import flags

from jtrack.cache import define_flags as define_cache_flags, enable_from_flags
from jtrack.io import draw, video

USAGE = """\
usage: jtrack COMMAND [flags]

commands:
  track VIDEO_OR_FOLDER --box x,y,w,h [--box ...]
                 track one or several targets through a video (mp4, avi, ...),
                 an animated GIF or a folder of images; writes the boxes
                 (CSV or JSON) and optionally an annotated mp4, a GIF preview
                 and PNG frames
  eval  ...      run a benchmark protocol (OTB / VOT / GOT-10k), resumable
                 (= python -m experiments.run)
  bench NAME ... run a benchmark script of benchmarks/ (no NAME: list them)
  demo  ...      the built-in demo (= python -m jtrack.demo)

examples:
  jtrack track clip.mp4 --box 120,80,60,90 --out clip_tracked.mp4 --gif
  jtrack track frames/ --box 10,20,30,40 --box 200,50,40,40 --boxes out/boxes.json
  jtrack track ../shared/data/otb/Crossing --save_frames      # GT box of frame 0
  jtrack eval --dataset otb --root ../shared/data/otb --results_dir /tmp/res
  jtrack bench backbone_timing --runs 10
  jtrack demo --max_frames 30

'jtrack COMMAND --help' lists the flags of a command.
"""

TRACK_USAGE = """\
usage: jtrack track VIDEO_OR_FOLDER [--box x,y,w,h ...] [flags]

Tracks targets given by their box on the first frame: x, y = top-left corner,
w, h = size, in 0-based pixels. Several --box flags track several targets
(ids 0, 1, ... in that order). Without --box/--boxes_file, an OTB/VOT/GOT-10k
sequence folder starts from its ground-truth box of the first frame.

Outputs (in --out_dir unless a path is given):
  <name>_boxes.csv   frame,target,x,y,w,h,score (0-based xywh; .json with --boxes x.json)
  --out FILE.mp4     annotated video (box, 'id: score' per target)
  --gif              <name>.gif small preview
  --save_frames      <name>_frames/000000.png ... annotated frames

examples:
  jtrack track clip.mp4 --box 120,80,60,90 --out clip_tracked.mp4 --gif
  jtrack track frames/ --box 10,20,30,40 --box 200,50,40,40 --boxes out/boxes.json
  jtrack track frames/ --boxes_file starts.txt --max_frames 100 --save_frames
  jtrack track clip.mp4 --box 5,5,40,40 --config_override iters_update=10

flags:
"""

TRACK_FLAGS = flags.FlagValues()
flags.DEFINE_multi_string("box", [], "Target box x,y,w,h on the first frame (0-based pixels); "
                          "repeat for several targets", flag_values=TRACK_FLAGS)
flags.DEFINE_string("boxes_file", None, "Text file with one x,y,w,h start box per line "
                    "(commas, tabs or spaces).", flag_values=TRACK_FLAGS)
flags.DEFINE_string("out_dir", "jtrack_out", "Folder for the default outputs.",
                    flag_values=TRACK_FLAGS)
flags.DEFINE_string("boxes", None, "Boxes file (.csv or .json); default "
                    "<out_dir>/<name>_boxes.csv.", flag_values=TRACK_FLAGS)
flags.DEFINE_string("out", None, "Annotated video to write (.mp4).", flag_values=TRACK_FLAGS)
flags.DEFINE_bool("gif", False, "Write a small GIF preview <out_dir>/<name>.gif.",
                  flag_values=TRACK_FLAGS)
flags.DEFINE_integer("gif_stride", 2, "GIF keeps every N-th frame.", flag_values=TRACK_FLAGS)
flags.DEFINE_integer("gif_width", 320, "GIF maximum width in pixels.", flag_values=TRACK_FLAGS)
flags.DEFINE_bool("save_frames", False, "Write annotated PNGs to <out_dir>/<name>_frames/.",
                  flag_values=TRACK_FLAGS)
flags.DEFINE_float("fps", None, "Frame rate of the annotated video (default: the input "
                   "video's, 25 for image folders).", flag_values=TRACK_FLAGS)
flags.DEFINE_integer("max_frames", None, "Track at most this many frames.",
                     flag_values=TRACK_FLAGS)
flags.DEFINE_integer("seed", 0, "PRNG seed (head initialisation and sampling).",
                     flag_values=TRACK_FLAGS)
flags.DEFINE_enum("head", "random", ["random", "pretrained"], "Initial head: random, or the "
                  "one pretrained on real videos that ships with jtrack (docs/pretraining.md).",
                  flag_values=TRACK_FLAGS)
flags.DEFINE_string("backbone", None, "Backbone name (default: the config's).",
                    flag_values=TRACK_FLAGS)
flags.DEFINE_string("tracker_config", None, "JSON file of TrackerConfig fields.",
                    flag_values=TRACK_FLAGS)
flags.DEFINE_multi_string("config_override", [], "TrackerConfig field=value (JSON value); "
                          "repeatable",
                          flag_values=TRACK_FLAGS)
flags.DEFINE_bool("progress", True, "Show a progress bar.", flag_values=TRACK_FLAGS)
define_cache_flags(TRACK_FLAGS)
flags.DEFINE_enum("on_bad_frame", "skip", ["skip", "stop"], "A frame that cannot be read: "
                  "'skip' it (status 'skipped' in the boxes file) or 'stop' with an error "
                  "(the boxes before it are written).", flag_values=TRACK_FLAGS)
flags.DEFINE_integer("flush_every", 25, "Rewrite the boxes file and save the tracker state "
                     "every N frames (what --resume continues from).", flag_values=TRACK_FLAGS)
flags.DEFINE_bool("resume", False, "Continue an interrupted run of the same command from its "
                  "last flush point instead of starting over.", flag_values=TRACK_FLAGS)


class UsageError(Exception):
    """Bad command line: printed without a traceback, exit status 2."""


def parse_box(text: str) -> list[float]:
    """``"x,y,w,h"`` (commas, spaces or tabs) -> 4 floats; clear error otherwise."""
    parts = [p for p in text.replace(",", " ").replace("\t", " ").split() if p]
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise UsageError(f"--box {text!r}: expected 4 numbers x,y,w,h") from None
    if len(values) != 4:
        raise UsageError(f"--box {text!r}: expected 4 numbers x,y,w,h, got {len(values)}")
    return values


def _start_boxes(box_flags: list[str], boxes_file: str | None, source):
    boxes = [parse_box(b) for b in box_flags]
    if boxes_file:
        from jtrack.data.textfiles import read_box_file

        if not os.path.isfile(boxes_file):
            raise UsageError(f"--boxes_file {boxes_file}: file not found")
        boxes += np.asarray(read_box_file(boxes_file), np.float64).tolist()
    if not boxes:
        if source.init_boxes is not None:
            print(f"no --box given: starting from the {source.kind} ground truth of frame 0: "
                  f"{np.round(source.init_boxes, 1).tolist()}")
            return np.asarray(source.init_boxes, np.float32)
        raise UsageError("no target: give --box x,y,w,h (0-based pixels on the first frame) "
                         "or --boxes_file")
    return np.asarray(boxes, np.float32)


def build_config(config_path: str | None = None, overrides=(), backbone: str | None = None):
    """:func:`jtrack.config.load_config`, its errors as usage errors."""
    from jtrack.config import load_config

    try:
        return load_config(config_path, overrides, backbone)
    except (ValueError, TypeError, OSError) as e:
        raise UsageError(f"tracker config: {e}") from e


ROW_NAMES = ("frame", "target", "x", "y", "w", "h", "score", "status")
OK, SKIPPED = "ok", "skipped"


def format_rows(rows: list[tuple], path: str, meta: dict) -> str:
    """Rows ``(frame, target, x, y, w, h, score, status)`` as CSV (with a
    header) or as JSON (``meta`` plus ``rows`` of dicts), picked by
    ``path``'s extension. A skipped frame's numbers are ``nan`` (JSON null)."""
    def num(v):
        return None if not np.isfinite(v) else round(float(v), 4)

    if path.lower().endswith(".json"):
        recs = [dict(zip(ROW_NAMES, (int(r[0]), int(r[1]), *(num(v) for v in r[2:7]), r[7])))
                for r in rows]
        return json.dumps({**meta, "rows": recs}, indent=1) + "\n"
    lines = [",".join(ROW_NAMES)]
    lines += [f"{r[0]},{r[1]},{r[2]:.4f},{r[3]:.4f},{r[4]:.4f},{r[5]:.4f},{r[6]:.4f},{r[7]}"
              for r in rows]
    return "\n".join(lines) + "\n"


def read_rows(path: str) -> list[tuple]:
    """The rows of a boxes file written by :func:`format_rows`."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    if path.lower().endswith(".json"):
        recs = json.loads(text)["rows"]
        return [(r["frame"], r["target"], *(np.nan if r[k] is None else r[k]
                                            for k in ROW_NAMES[2:7]), r["status"])
                for r in recs]
    header, *lines = text.splitlines()
    if header != ",".join(ROW_NAMES):
        raise ValueError(f"{path}: not a jtrack boxes file (header {header!r})")
    return [(int(f), int(k), *map(float, vals), status)
            for f, k, *vals, status in (line.split(",") for line in lines if line)]


def _frame_rows(i: int, boxes, scores, status: str = OK) -> list[tuple]:
    return [(i, k, *map(float, boxes[k]), float(scores[k]), status) for k in range(len(boxes))]


class _Annotated:
    """The annotated outputs (mp4, GIF, PNGs) of one run; a skipped frame
    repeats the last good one, so the video keeps the input's timing."""

    def __init__(self, writers: list, frames_dir: str | None):
        self.writers, self.frames_dir, self.last = writers, frames_dir, None

    def __bool__(self) -> bool:
        return bool(self.writers or self.frames_dir)

    def show(self, i: int, frame, boxes=None, scores=None) -> None:
        """Frame ``i`` with its boxes, or the last shown one when ``frame`` is None."""
        if frame is not None:
            self.last = draw.annotate(frame, boxes, scores if i else None)
        for w in self.writers:
            w.append(self.last)
        if self.frames_dir:
            video.write_png(os.path.join(self.frames_dir, f"{i:06d}.png"), self.last)

    def close(self, ok: bool) -> None:
        for w in self.writers:
            w.close() if ok else w.abort()


def _summary_of_skips(frames: list[int], n_frames: int) -> str:
    shown = ", ".join(map(str, frames[:20])) + (", ..." if len(frames) > 20 else "")
    return (f"skipped {len(frames)} of {n_frames} frames that could not be read "
            f"(not tracked; status 'skipped' in the boxes file): {shown}")


def _resume_point(boxes_path: str, flush_every: int, resume: bool, same_run: dict,
                  config, params: dict, n: int, log):
    """The checkpoints of this run, and with ``resume`` the state and rows
    to continue from: the latest checkpoint at or before the last frame in
    the boxes file (rows after it are tracked again). Otherwise (nothing to
    resume, or a fresh run) a previous run's checkpoints are deleted."""
    import shutil

    from jtrack.checkpoint import Checkpoints
    from jtrack.io import resume as R

    folder = R.checkpoint_dir(boxes_path)
    if resume and os.path.isdir(folder) and os.path.isfile(boxes_path):
        ckpts = Checkpoints(folder, every=flush_every)
        try:
            old = read_rows(boxes_path)
        except (ValueError, KeyError, IndexError) as e:
            raise UsageError(f"--resume: cannot read the boxes of the run to resume: {e}") from e
        steps = [s for s in ckpts.steps() if old and s <= old[-1][0]]
        if steps:
            try:
                saved = ckpts.restore(R.state_template(config, params, n), same_run, steps[-1])
            except ValueError as e:
                raise UsageError(f"--resume: {e}") from e
            log(f"resuming after frame {steps[-1]} ({boxes_path})")
            return ckpts, R.from_saved(params, saved), [r for r in old if r[0] <= steps[-1]]
        ckpts.close()
    if resume:
        log(f"--resume: nothing to resume at {boxes_path}; tracking from frame 0")
    shutil.rmtree(folder, ignore_errors=True)  # a previous run's, not this one's
    return Checkpoints(folder, every=flush_every), None, []


def track(path: str, box_flags: list[str], boxes_file: str | None = None, *,
          out_dir: str = "jtrack_out", boxes_path: str | None = None,
          video_path: str | None = None, gif: bool = False, gif_stride: int = 2,
          gif_width: int = 320, save_frames: bool = False, fps: float | None = None,
          max_frames: int | None = None, seed: int = 0, config=None, head: str = "random",
          progress: bool = True, on_bad_frame: str = "skip", flush_every: int = 25,
          resume: bool = False, log=print, warn=None) -> dict:
    """``jtrack track`` as a function. Returns the paths written and timings.

    A frame that cannot be read is skipped (``on_bad_frame="skip"``) or ends
    the run with an error after writing the boxes so far (``"stop"``).
    Every ``flush_every`` frames the boxes file is rewritten (atomically)
    and the tracker state saved, so ``resume=True`` continues a killed run
    from its last flush point with the same boxes as an uninterrupted run.
    """
    import shutil

    import jax
    from tqdm import tqdm

    import jtrack
    from jtrack.data import BadFrame, atomic_write_text
    from jtrack.io import resume as R
    from jtrack.stateful import target_keys
    from jtrack.tracker import seed_key
    from jtrack.weights import shipped

    warn = warn or (lambda m: print(f"jtrack track: {m}", file=sys.stderr))

    if boxes_path is not None and not boxes_path.lower().endswith((".csv", ".json")):
        raise UsageError(f"--boxes {boxes_path}: use a .csv or .json file name")
    if video_path is not None and not video_path.lower().endswith(video.VIDEO_EXTENSIONS):
        raise UsageError(f"--out {video_path}: use a video file name such as out.mp4")
    if max_frames is not None and max_frames < 1:
        raise UsageError("--max_frames must be >= 1")
    if on_bad_frame not in ("skip", "stop"):
        raise UsageError(f"--on_bad_frame {on_bad_frame!r}: expected 'skip' or 'stop'")
    if flush_every < 1:
        raise UsageError("--flush_every must be >= 1")
    try:
        source = video.open_source(path)
    except (FileNotFoundError, ValueError) as e:
        raise UsageError(str(e)) from e
    starts = _start_boxes(box_flags, boxes_file, source)
    n = len(starts)
    config = jtrack.TrackerConfig() if config is None else config
    name = source.name
    boxes_path = boxes_path or os.path.join(out_dir, f"{name}_boxes.csv")
    gif_path = os.path.join(out_dir, f"{name}.gif") if gif else None
    frames_dir = os.path.join(out_dir, f"{name}_frames") if save_frames else None
    if frames_dir:
        os.makedirs(frames_dir, exist_ok=True)

    try:
        params = jtrack.init_params(config, seed_key(seed), head=head)
    except ValueError as e:  # the shipped head does not fit this config
        raise UsageError(str(e)) from e
    log(shipped.summary(head))
    # What a resumed run must share with the run it continues.
    meta = {"input": os.path.abspath(path), "box_format": "xywh, 0-based pixels",
            "targets": n, "seed": seed, "backbone": config.backbone, "head": head}
    same_run = {**meta, "start_boxes": np.round(starts, 4).tolist(),
                "config": repr(config)}
    ckpts, state, rows = _resume_point(boxes_path, flush_every, resume, same_run,
                                       config, params, n, log)
    done = rows[-1][0] if rows else -1  # last frame tracked by the run we resume
    skipped = sorted({r[0] for r in rows if r[7] == SKIPPED})
    earlier: dict[int, list] = {}  # frame -> its rows, to draw the resumed frames again
    for r in rows:
        earlier.setdefault(r[0], []).append(r)

    writers = []
    if video_path:
        try:
            writers.append(video.Mp4Writer(video_path, fps or source.fps() or 25.0))
        except ImportError as e:
            raise UsageError(str(e)) from e
    if gif_path:
        writers.append(video.GifPreview(gif_path, stride=gif_stride, max_width=gif_width))
    shown = _Annotated(writers, frames_dir)

    def write_rows() -> None:
        n_frames = len({r[0] for r in rows})
        atomic_write_text(boxes_path, format_rows(rows, boxes_path, {**meta, "frames": n_frames}))

    def flush(i: int) -> None:
        """Checkpoint the state after frame ``i``, then the rows up to ``i``
        (a kill between the two leaves the rows behind, never ahead)."""
        if state is not None:
            ckpts.maybe_save(i, R.to_saveable(state), same_run, force=True)
        write_rows()

    frames = source.frames()
    total = source.count if max_frames is None else min(max_frames, source.count or max_frames)
    times: list[float] = []
    bar = tqdm(total=total, unit="frame", desc=name, disable=not progress, dynamic_ncols=True)
    ok, i = False, -1
    try:
        t0 = time.perf_counter()
        for i, frame in enumerate(frames):
            if max_frames is not None and i >= max_frames:
                break
            bad = isinstance(frame, BadFrame)
            if i <= done:  # tracked by the run we resume: draw it again from its rows
                if shown:
                    mine = earlier[i]
                    good = not bad and mine[0][7] == OK
                    shown.show(i, frame if good else None,
                               np.array([r[2:6] for r in mine]), np.array([r[6] for r in mine]))
                bar.update(1)
                continue
            if bad and i == 0:
                raise UsageError(f"cannot start: frame 0 cannot be read: {frame.reason}")
            if bad and on_bad_frame == "stop":
                flush(i - 1)
                raise UsageError(f"frame {i}: {frame.reason}; the boxes of frames 0-{i - 1} "
                                 f"are in {boxes_path} (--on_bad_frame=skip, the default, "
                                 "skips such frames)")
            if bad:
                warn(f"skipping frame {i}: {frame.reason}")
                skipped.append(i)
                rows += _frame_rows(i, np.full((n, 4), np.nan), np.full(n, np.nan), SKIPPED)
                if shown:
                    shown.show(i, None)
            else:
                if state is None:
                    state = jtrack.init_many(config, params, frame, starts,
                                             target_keys(seed, n))
                    boxes, scores = np.asarray(state.boxes[:n]), np.ones(n)
                else:
                    state, out = jtrack.step_many(config, state, frame)
                    boxes, scores = np.asarray(out.box[:n]), np.asarray(out.score[:n])
                times.append(time.perf_counter() - t0)
                rows += _frame_rows(i, boxes, scores)
                if shown:
                    shown.show(i, frame, boxes, scores)
                bar.set_postfix(score=f"{float(np.min(scores)):.2f}", refresh=False)
            if (i + 1) % flush_every == 0:
                flush(i)
            bar.update(1)
            t0 = time.perf_counter()
        ok = True
    except UsageError:
        ok = on_bad_frame == "stop" and bool(rows)  # keep the video of what was tracked
        raise
    except KeyboardInterrupt:  # Ctrl-C: keep what was tracked, resumable
        if rows and rows[-1][0] == i:
            flush(i)
        raise
    except (ValueError, ImportError) as e:  # bad start box / frame file, missing ffmpeg
        raise UsageError(str(e)) from e
    finally:
        bar.close()
        ckpts.wait()
        shown.close(ok)
    if not rows:
        raise UsageError(f"{path}: no frames to track")
    write_rows()
    ckpts.close()
    shutil.rmtree(R.checkpoint_dir(boxes_path), ignore_errors=True)  # finished: nothing to resume
    # The first two frames tracked compile init and step; the rate is measured after them.
    steady = times[2:]
    result = {"boxes": boxes_path, "video": video_path, "gif": gif_path,
              "frames_dir": frames_dir, "n_frames": len({r[0] for r in rows}), "n_targets": n,
              "skipped": skipped, "resumed_after": done if done >= 0 else None,
              "fps": (len(steady) / sum(steady)) if steady and sum(steady) > 0 else None,
              "compile_s": sum(times[:2])}
    return result


def flag_help(fv: flags.FlagValues) -> str:
    """One line per flag: ``--name=DEFAULT  help``, booleans as ``--[no]name``."""
    lines = []
    for name in sorted(fv):
        f = fv[name]
        if name in ("flagfile", "undefok") or f.name != name:
            continue
        if isinstance(f, flags.BooleanFlag):
            head = f"--[no]{name} (default {'on' if f.default else 'off'})"
        elif f.default in (None, []):
            head = f"--{name}"
        else:
            head = f"--{name}={f.default_as_str.strip(chr(39))}"
        text = f.help.split(";\n")[0]  # absl appends "repeat this option ..." to multi flags
        lines.append(f"  {head:32s} {text}")
    return "\n".join(lines)


def _wants_help(args: list[str]) -> bool:
    return any(a in ("-h", "--help", "--helpfull", "-?") for a in args)


def track_main(args: list[str]) -> int:
    if _wants_help(args):
        print(TRACK_USAGE + flag_help(TRACK_FLAGS))
        return 0
    TRACK_FLAGS.unparse_flags()  # defaults again (main may be called twice in a process)
    try:
        rest = TRACK_FLAGS(["jtrack track"] + list(args))[1:]
    except flags.Error as e:
        raise UsageError(str(e)) from e
    if len(rest) != 1:
        raise UsageError("expected exactly one VIDEO_OR_FOLDER argument, got "
                         f"{len(rest)}: {rest}" if rest else
                         "missing VIDEO_OR_FOLDER (a video file, a GIF or an image folder)")
    F = TRACK_FLAGS
    enable_from_flags(F)
    config = build_config(F.tracker_config, F.config_override, F.backbone)
    res = track(rest[0], F.box, F.boxes_file, out_dir=F.out_dir, boxes_path=F.boxes,
                video_path=F.out, gif=F.gif, gif_stride=F.gif_stride, gif_width=F.gif_width,
                save_frames=F.save_frames, fps=F.fps, max_frames=F.max_frames, seed=F.seed,
                config=config, head=F.head, progress=F.progress, on_bad_frame=F.on_bad_frame,
                flush_every=F.flush_every, resume=F.resume)
    fps = f"{res['fps']:.1f} frames/s from frame 2 on; " if res["fps"] else ""
    print(f"tracked {res['n_targets']} target(s) over {res['n_frames']} frames ({fps}"
          f"frames 0-1 incl. compilation {res['compile_s']:.1f}s)")
    if res["skipped"]:
        print(_summary_of_skips(res["skipped"], res["n_frames"]))
    for key in ("boxes", "video", "gif", "frames_dir"):
        if res[key]:
            print(f"  {key:10s} {res[key]}")
    return 0


def _forward_absl(main_fn, prog: str, args: list[str]) -> int:
    from absl import app

    try:
        app.run(main_fn, argv=[prog] + list(args))
    except SystemExit as e:  # app.run always exits
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except (FileNotFoundError, ImportError, ValueError) as e:
        # bad paths, missing extras, bad flag values: a message, not a traceback
        raise UsageError(str(e)) from e
    return 0


def _module_help(module) -> str:
    return flags.FLAGS.module_help(module)


def eval_main(args: list[str]) -> int:
    from experiments import run as exp_run

    if _wants_help(args):
        print("usage: jtrack eval --dataset otb|vot|got10k|lasot|auto --root DIR "
              "--results_dir DIR [flags]\n\nRuns the tracker over a benchmark in parallel over "
              "devices and scores it; rerunning the same command skips finished sequences."
              "\n\nexample:\n"
              "  jtrack eval --dataset otb --root ../shared/data/otb --results_dir /tmp/res "
              "--max_frames 50\n\nflags:\n" + _module_help(exp_run))
        return 0
    return _forward_absl(exp_run.main, "jtrack eval", args)


def demo_main(args: list[str]) -> int:
    from jtrack import demo

    if _wants_help(args):
        print("usage: jtrack demo [flags]\n\n" + demo.__doc__.strip().replace(
            "python -m jtrack.demo", "jtrack demo") + "\n\nflags:\n" + _module_help(demo))
        return 0
    return _forward_absl(demo.main, "jtrack demo", args)


def list_benchmarks() -> list[str]:
    import pkgutil

    import benchmarks

    return sorted(m.name for m in pkgutil.iter_modules(benchmarks.__path__)
                  if not m.name.startswith("_"))


def bench_main(args: list[str]) -> int:
    import runpy

    names = list_benchmarks()
    if not args or args[0] in ("-h", "--help"):
        print("usage: jtrack bench NAME [flags of that benchmark]\n\nbenchmarks: "
              + ", ".join(names) + "\n\nexample:\n  jtrack bench backbone_timing --runs 10")
        return 0
    name = args[0].removeprefix("benchmarks.").removesuffix(".py")
    if name not in names:
        raise UsageError(f"unknown benchmark {args[0]!r}; available: {', '.join(names)}")
    old = sys.argv
    sys.argv = [f"jtrack bench {name}"] + list(args[1:])
    try:
        runpy.run_module(f"benchmarks.{name}", run_name="__main__", alter_sys=True)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = old
    return 0


COMMANDS = {"track": track_main, "eval": eval_main, "bench": bench_main, "demo": demo_main}


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``jtrack`` console script; returns the exit status."""
    argv = sys.argv if argv is None else argv
    args = list(argv[1:])
    if not args or args[0] in ("-h", "--help", "help"):
        print(USAGE, file=sys.stdout if args else sys.stderr)
        return 0 if args else 2
    cmd, rest = args[0], args[1:]
    if cmd not in COMMANDS:
        print(f"jtrack: unknown command {cmd!r}; expected one of {', '.join(COMMANDS)}\n",
              file=sys.stderr)
        print(USAGE, file=sys.stderr)
        return 2
    try:
        return COMMANDS[cmd](rest)
    except BrokenPipeError:  # output piped into `head` and closed: not an error
        return 0
    except UsageError as e:
        print(f"jtrack {cmd}: error: {e}\n(see 'jtrack {cmd} --help')", file=sys.stderr)
        return 2


def run() -> None:
    """The ``jtrack`` program: :func:`main`, with Python's cyclic garbage
    collector kept off the import-time heap (jax's tens of thousands of
    objects), which it would otherwise walk again in every full collection
    and at exit (a tenth of a warm start on a small CPU)."""
    gc.freeze()
    rc = main()
    gc.freeze()
    sys.exit(rc)


if __name__ == "__main__":
    run()
