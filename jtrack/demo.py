"""Track one target and print a line per frame: ``python -m jtrack.demo``.

With no flags it tracks the built-in sequence (real photographs from
``skimage.data``, exact ground truth; see :mod:`jtrack.data.synthetic`), so
it runs with no network and no data outside the installed packages. With
``--sequence DIR`` it tracks an OTB-style folder (``img/*.jpg`` +
``groundtruth_rect.txt``) or a VOT-style one (frames + ``groundtruth.txt``).
"""

from __future__ import annotations

import sys
import time

import numpy as np
from absl import app, flags

from jtrack.cache import define_flags as define_cache_flags, enable_from_flags

_SEQUENCE = flags.DEFINE_string(
    "sequence", None, "OTB- or VOT-style sequence folder; default: the built-in sequence")
_FRAMES = flags.DEFINE_integer("max_frames", None, "track at most this many frames")
_SEED = flags.DEFINE_integer("seed", 0, "PRNG seed (head initialisation and sampling)")
_BACKBONE = flags.DEFINE_string("backbone", None, "backbone name (default: the config's)")
_HEAD = flags.DEFINE_enum("head", "random", ["random", "pretrained"],
                          "initial head: random, or the one pretrained on real videos "
                          "that ships with jtrack (docs/pretraining.md)")
_QUIET = flags.DEFINE_bool("quiet", False, "only print the summary")
define_cache_flags(flags.FLAGS)
_RESEARCH = flags.DEFINE_bool("research_metrics", False,
                              "after each online update, log the classifier's PR, RR and "
                              "TopK accuracy against the ground truth (and their means)")


def _load(folder: str | None, max_frames: int | None):
    """(name, frames iterable, n, gt (T, 4) xywh 0-based)."""
    from jtrack.data import load_frame

    if folder is None:
        from jtrack.data.synthetic import moving_object

        frames, gt = moving_object()
        n = len(frames) if max_frames is None else min(max_frames, len(frames))
        return "built-in (skimage.data photos)", list(frames[:n]), gt[:n]
    from jtrack.data import detect_kind, read_sequence

    seq = read_sequence(detect_kind(folder), folder)[0]
    if not np.all(np.isfinite(seq.gt[0])):
        raise ValueError(f"{folder}: the first frame has no ground-truth box to start from")
    n = len(seq.frames) if max_frames is None else min(max_frames, len(seq.frames))
    return seq.name, (load_frame(f) for f in seq.frames[:n]), np.asarray(seq.gt[:n])


def main(argv):
    del argv
    enable_from_flags(flags.FLAGS)
    import jax

    import jtrack
    from jtrack.eval.otb import ope_metrics
    from jtrack.tracking import track_sequence
    from jtrack.weights import shipped

    overrides = {} if _BACKBONE.value is None else {"backbone": _BACKBONE.value}
    config = jtrack.TrackerConfig(**overrides)
    name, frames, gt = _load(_SEQUENCE.value, _FRAMES.value)
    head = _HEAD.value
    print(f"jtrack demo: {name}, {len(gt)} frames, backbone {config.backbone}, "
          f"{shipped.summary(head)}, devices {jax.devices()}", flush=True)
    params = jtrack.init_params(config, jax.random.key(_SEED.value), head=head)
    updates = []
    t0 = time.perf_counter()
    boxes, scores, times = track_sequence(
        config, params, frames, gt[0], jax.random.key(_SEED.value + 1), gt=gt,
        log=None if _QUIET.value else (lambda line: print(line, flush=True)),
        on_update=(lambda i, m: updates.append(m)) if _RESEARCH.value else None)
    wall = time.perf_counter() - t0
    if updates:
        means = {k: np.nanmean([u[k] for u in updates]) for k in updates[0]}
        print(f"classifier over {len(updates)} updates: "
              + "  ".join(f"{k} {v:.3f}" for k, v in means.items()))
    m = ope_metrics(boxes, gt[:len(boxes)])  # OTB convention: all frames count
    steady = np.median(times[2:]) if len(times) > 2 else float("nan")
    print(f"mean IoU {m['mean_iou']:.3f}  success AUC {m['auc']:.3f}  "
          f"precision@20 {m['precision_20']:.3f}  ({len(boxes)} frames in {wall:.1f}s, "
          f"median step {steady * 1e3:.1f} ms)")
    return 0


def run() -> None:
    app.run(main)


if __name__ == "__main__":
    sys.exit(run())
