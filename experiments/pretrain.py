"""Offline multi-domain pretraining of the head (MDNet's offline stage).

    python -m experiments.pretrain --roots=../shared/data/otb/Crossing \
        --synthetic=20 --exclude=Diving,ball1 --steps=300 \
        --ckpt_dir=/tmp/pretrain [--devices=2] [--layer_lr=fc4=1,fc5=1,fc6=10]
        [--layer_lr=fc4=1,fc5=1,fc6=10,backbone=0.1 --backbone_blocks=2] [--augment=2]
        [--distributed --coordinator_address=host:port --num_processes=2 --process_id=0]

Every sequence is one domain (its own fc6). ``--exclude`` is required and
lists the evaluation sequences that must never be trained on (pass
``--exclude=`` to exclude nothing, deliberately). Checkpoints (orbax) go to
``--ckpt_dir`` every ``--ckpt_every`` steps; rerunning the same command
resumes exactly where it stopped. The shared fc4/fc5 end up in
``--out`` (default ``<ckpt_dir>/head.npz``), loadable with
``jtrack.pretrain.load_params(path, config, key)``. Per epoch (every domain
once) it logs loss, PR, RR and TrackTopKAcc on the training batches and on
the held-out frames, to stdout and ``<ckpt_dir>/log.jsonl``.

The backbone stays frozen unless ``--layer_lr`` names it; ``--backbone_blocks=N``
then trains only its last N blocks (the front's output is cached per frame,
so a step costs little more than with a frozen backbone). ``--augment=K``
adds K augmented views of every training frame (region jitter, flip,
colour, blur; :mod:`jtrack.pretrain.augment`).

With ``--distributed`` (:mod:`jtrack.distributed`) every process runs the
same command: the mesh spans the devices of all processes (data parallel,
each process feeds its devices' frames of the batch, parameters
replicated), every process takes part in each orbax save (``--ckpt_dir`` on
a shared filesystem) and process 0 alone writes the log, the head and its
manifest.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time

from absl import app, flags, logging

from jtrack.cache import define_flags as define_cache_flags, enable_from_flags
from jtrack.config import TrackerConfig
from jtrack.distributed import define_flags as define_distributed_flags, initialize_from_flags

FLAGS = flags.FLAGS
# data
flags.DEFINE_list("roots", [], "Dataset roots or sequence folders (OTB/VOT/GOT-10k/LaSOT, "
                  "layout auto-detected); every sequence is one domain.")
flags.DEFINE_integer("synthetic", 20, "Number of synthetic photo sequences "
                     "(jtrack.data.synthetic.photo_sequence) added as domains.")
flags.DEFINE_integer("synthetic_frames", 60, "Frames per synthetic sequence.")
flags.DEFINE_list("synthetic_hw", ["240", "320"], "Synthetic frame height,width.")
flags.DEFINE_integer("synthetic_seed", 1000, "Seed of the first synthetic sequence.")
flags.DEFINE_list("exclude", None, "REQUIRED. Sequence names never used for training "
                  "(evaluation sequences); 'Jogging' also excludes Jogging-1/-2.")
flags.DEFINE_integer("max_frames", None, "Use at most this many frames per sequence.")
flags.DEFINE_float("holdout", 0.1, "Fraction of each domain's frames (the last ones) "
                   "kept for held-out metrics.")
# network (must match the tracker that will load the head)
flags.DEFINE_string("backbone", "efficientnet_lite0", "Backbone registry name.")
flags.DEFINE_integer("region_size", 219, "Search-region side in pixels.")
flags.DEFINE_float("region_scale", 3.0, "Search region = scale x target.")
flags.DEFINE_integer("roi_size", 3, "RoIAlign output side.")
flags.DEFINE_bool("feature_norm", True, "Unit-RMS pooled features (as the tracker).")
flags.DEFINE_integer("hidden", TrackerConfig.hidden, "fc4/fc5 width (default: the "
                     "tracker's).")
flags.DEFINE_float("dropout", 0.5, "Dropout after fc4 and fc5.")
# iteration
flags.DEFINE_integer("frames_per_batch", 8, "Frames per iteration (one domain).")
flags.DEFINE_integer("n_pos", 32, "Positives per frame.")
flags.DEFINE_integer("n_neg", 96, "Negatives per frame.")
flags.DEFINE_float("pos_iou", 0.7, "Positives have IoU >= this.")
flags.DEFINE_float("neg_iou", 0.5, "Negatives have IoU <= this.")
flags.DEFINE_float("pos_trans", 0.1, "Gaussian positive translation (x mean side).")
flags.DEFINE_float("pos_scale", 1.3, "Gaussian positive scale step.")
flags.DEFINE_float("neg_trans", 1.0, "Uniform negative translation (x mean side).")
flags.DEFINE_float("neg_scale", 1.6, "Uniform negative scale step.")
flags.DEFINE_integer("top_k", 5, "Boxes averaged for TrackTopKAcc.")
# optimiser
flags.DEFINE_integer("steps", 300, "Total iterations (a resumed run continues to this).")
flags.DEFINE_float("lr", 1e-3, "Base learning rate.")
flags.DEFINE_string("layer_lr", "fc4=1,fc5=1,fc6=10",
                    "layer=multiplier list; add backbone=0.1 to train the backbone "
                    "(slow on CPU: no feature cache), absent or 0 = frozen.")
flags.DEFINE_integer("backbone_blocks", 0, "With backbone in --layer_lr: train only the "
                     "backbone's last N blocks (their input is cached per frame); 0 = all.")
flags.DEFINE_integer("augment", 0, "Augmented views per training frame (0 = off): region "
                     "jitter, flip, colour, blur (jtrack.pretrain.augment).")
flags.DEFINE_float("aug_shift", 0.2, "Region-centre jitter, x the box's mean side.")
flags.DEFINE_float("aug_scale", 1.25, "Region size factor, log-uniform in [1/s, s].")
flags.DEFINE_float("aug_flip", 0.5, "Probability of a horizontal flip.")
flags.DEFINE_float("aug_colour", 0.2, "Per-channel gain and contrast jitter.")
flags.DEFINE_float("aug_blur", 0.3, "Probability of a Gaussian blur.")
flags.DEFINE_integer("aug_seed", 0, "Seed of the augmented views.")
flags.DEFINE_float("momentum", 0.9, "SGD momentum.")
flags.DEFINE_float("weight_decay", 5e-4, "Weight decay.")
flags.DEFINE_float("grad_clip", 10.0, "Global-norm gradient clip (0 = off).")
flags.DEFINE_integer("seed", 0, "Model seed (init, sampling, dropout).")
flags.DEFINE_integer("data_seed", 0, "Data-order seed (domains, frames).")
# run
flags.DEFINE_integer("devices", None, "Data-parallel devices (default: all devices; "
                     "one process only).")
flags.DEFINE_string("ckpt_dir", None, "REQUIRED. Checkpoint folder (resumed if it exists).")
flags.DEFINE_integer("ckpt_every", 50, "Checkpoint every N steps.")
flags.DEFINE_integer("keep", 2, "Checkpoints kept.")
flags.DEFINE_string("out", None, "Exported fc4/fc5 (.npz); default <ckpt_dir>/head.npz.")
flags.DEFINE_bool("progress", True, "Show a progress bar.")
define_cache_flags(FLAGS)
define_distributed_flags(FLAGS)


def _say(message: str) -> None:
    """Print once per run: on process 0 of a multi-process run."""
    import jax

    if jax.process_index() == 0:
        print(message, flush=True)


def make_config():
    from jtrack.pretrain import PretrainConfig, parse_layer_lr
    from jtrack.pretrain.augment import Augment
    tc = TrackerConfig(backbone=FLAGS.backbone, region_size=FLAGS.region_size,
                       region_scale=FLAGS.region_scale,
                       init_region_scale=max(5.0, FLAGS.region_scale),
                       roi_size=FLAGS.roi_size, feature_norm=FLAGS.feature_norm,
                       hidden=FLAGS.hidden, dropout=FLAGS.dropout)
    return PretrainConfig(
        tracker=tc, frames_per_batch=FLAGS.frames_per_batch, n_pos=FLAGS.n_pos,
        n_neg=FLAGS.n_neg, pos_iou=FLAGS.pos_iou, neg_iou=FLAGS.neg_iou,
        pos_trans=FLAGS.pos_trans, pos_scale=FLAGS.pos_scale, neg_trans=FLAGS.neg_trans,
        neg_scale=FLAGS.neg_scale, top_k=FLAGS.top_k, layer_lr=parse_layer_lr(FLAGS.layer_lr),
        lr=FLAGS.lr, momentum=FLAGS.momentum, weight_decay=FLAGS.weight_decay,
        grad_clip=FLAGS.grad_clip, backbone_blocks=FLAGS.backbone_blocks,
        augment=Augment(FLAGS.augment, FLAGS.aug_shift, FLAGS.aug_scale, FLAGS.aug_flip,
                        FLAGS.aug_colour, FLAGS.aug_blur, FLAGS.aug_seed))


def prepare(config, sources, progress: bool = True) -> list:
    """Domains (cached crops or feature maps) of ``[(name, load)]`` sources."""
    from jtrack.pretrain import prepare_domain

    domains, seconds = prepare_each(sources, progress, lambda name, frames, gt, bb: (
        prepare_domain(config, name, frames, gt, None if config.cached == "image" else bb,
                       holdout=FLAGS.holdout)), config.tracker.backbone)
    cached = {"image": "crops", "mid": "the backbone front's output",
              "fmap": "feature maps"}[config.cached]
    _say(f"prepared {sum(len(d) for d in domains)} frames in {seconds:.1f}s (cached {cached})")
    return domains


def prepare_each(sources, progress: bool, prepare_one, backbone: str) -> tuple[list, float]:
    """``prepare_one(name, frames, gt, backbone_params)`` of every ``(name,
    load)`` source, with a progress bar; returns (domains, seconds)."""
    import jax
    from tqdm import tqdm

    from jtrack import get_backbone

    t0 = time.perf_counter()
    bb_params = get_backbone(backbone).init(jax.random.key(0))
    domains = [prepare_one(name, *load(), bb_params)
               for name, load in tqdm(sources, desc="preparing domains", disable=not progress)]
    return domains, time.perf_counter() - t0


def train(config, domains, ckpt_dir: str, out: str, exclude, progress: bool = True) -> dict:
    """Pretrain on ``domains`` to ``--steps`` (resuming from ``ckpt_dir``),
    log per-epoch metrics to ``<ckpt_dir>/log.jsonl`` (+ ``log.png``) and
    export fc4/fc5 to ``out``. Returns the last epoch's log record."""
    import jax

    from jtrack import get_backbone, parallel
    from jtrack.pretrain import (evaluate, held_batches, init_state, make_eval, make_optimizer,
                                 make_step, save_head, summarize, train_steps)

    mesh = parallel.make_mesh(FLAGS.devices, devices=jax.devices())  # all processes' devices
    state = init_state(config, len(domains), FLAGS.seed, FLAGS.data_seed, mesh)
    if config.train_backbone:  # start from the backbone the tracker would use
        bb_params = get_backbone(config.tracker.backbone).init(jax.random.key(0))
        trained = state["params"]["backbone"]  # all of it, or its last blocks
        state["params"]["backbone"] = parallel.replicate(
            {k: bb_params[k] for k in trained}, mesh)
        state["opt_state"] = parallel.replicate(make_optimizer(config).init(state["params"]), mesh)
    step_fn, eval_fn = make_step(config, mesh), make_eval(config, mesh)
    state, rec = fit(
        "pretrain", state, config, domains, ckpt_dir, mesh, progress,
        advance=lambda st, n, on_step: train_steps(config, st, domains, n, step_fn, on_step),
        summarize=summarize,
        held=lambda params: evaluate(config, params, held_batches(config, domains), eval_fn,
                                     jax.random.key(FLAGS.seed + 1)))
    if jax.process_index() == 0:
        save_head(out, config, jax.device_get(state["params"]), {
            "steps": int(state["step"]), "domains": [d.name for d in domains],
            "frames": {d.name: len(d) for d in domains}, "excluded": list(exclude),
            "seed": FLAGS.seed, "data_seed": FLAGS.data_seed, "final": rec})
        print(f"wrote {out}")
    return rec


def fit(name: str, state: dict, config, domains, ckpt_dir: str, mesh, progress: bool,
        advance, summarize, held) -> tuple[dict, dict]:
    """The loop shared by pretraining and meta-training: resume from
    ``ckpt_dir`` (settings: ``config``, the domains, seeds, holdout), run
    ``advance(state, n, on_step) -> (state, metrics)`` to ``--steps``,
    checkpoint every ``--ckpt_every`` steps, and per epoch (every domain once)
    log ``summarize(metrics)`` and ``held(params)`` to ``log.jsonl``;
    plot the curves at the end. Every process of a distributed run calls it;
    process 0 alone logs. Returns (state, the last log record)."""
    import jax
    from tqdm import tqdm

    from jtrack.pretrain import Checkpoints

    primary = jax.process_index() == 0
    meta = json.loads(json.dumps({
        "config": dataclasses.asdict(config), "domains": [d.name for d in domains],
        "seed": FLAGS.seed, "data_seed": FLAGS.data_seed, "holdout": FLAGS.holdout}))
    ckpt = Checkpoints(ckpt_dir, FLAGS.ckpt_every, FLAGS.keep)
    restored = ckpt.restore(state, meta)
    if restored is not None:
        state = restored
        _say(f"resumed from step {int(state['step'])} in {ckpt_dir}")
    n_dom = len(domains)
    log_path = os.path.join(ckpt_dir, "log.jsonl")
    bar = tqdm(total=FLAGS.steps, initial=int(state["step"]), desc=name,
               disable=not (progress and primary))
    epoch_metrics: list = []
    rec: dict = {}

    def on_step(step, st):
        bar.update(1)
        ckpt.maybe_save(step, st, meta)

    t_train = time.perf_counter()
    start = int(state["step"])
    while int(state["step"]) < FLAGS.steps:
        s = int(state["step"])
        n = min(FLAGS.steps, (s // n_dom + 1) * n_dom) - s  # to the end of the epoch
        state, ms = advance(state, n, on_step)
        epoch_metrics.extend(ms)
        if int(state["step"]) % n_dom == 0 or int(state["step"]) == FLAGS.steps:
            train_m, held_m = summarize(epoch_metrics), held(state["params"])
            epoch_metrics = []
            rec = {"step": int(state["step"]), "epoch": int(state["step"]) / n_dom,
                   "train": train_m, "held": held_m}
            if not primary:
                continue
            bar.write(f"step {rec['step']:5d}  train " + "  ".join(
                f"{k} {v:.3f}" for k, v in train_m.items()) + "  | held " + "  ".join(
                f"{k} {v:.3f}" for k, v in held_m.items()))
            with open(log_path, "a", encoding="utf-8") as f:
                f.write(json.dumps(rec) + "\n")
    bar.close()
    done = int(state["step"]) - start
    if done:
        _say(f"{done} steps in {time.perf_counter() - t_train:.1f}s on "
             f"{mesh.devices.size} device(s) in {jax.process_count()} process(es)")
    ckpt.maybe_save(int(state["step"]), state, meta, force=True)
    ckpt.wait()
    ckpt.close()
    if primary:
        try:
            from jtrack.eval.plots import plot_training_log
            print(f"curves: {plot_training_log(log_path, os.path.splitext(log_path)[0] + '.png')}")
        except ImportError:
            print("curves not plotted: matplotlib missing (pip install 'jtrack[plots]')")
    return state, rec


def sources_from_flags(exclude) -> list:
    from jtrack.pretrain.sources import collect_sources

    hw = tuple(int(v) for v in FLAGS.synthetic_hw)
    sources, unused = collect_sources(FLAGS.roots, FLAGS.synthetic, FLAGS.synthetic_frames,
                                      hw, FLAGS.synthetic_seed, exclude, FLAGS.max_frames)
    for pattern in sorted(unused):
        logging.warning("--exclude %r matched no training sequence (nothing to drop)", pattern)
    if not sources:
        raise app.UsageError("no training sequences left after --exclude")
    return sources


def run(program: str, make_config, prepare, train, default_out: str) -> None:
    """A training program's main, shared by pretraining and meta-training:
    join a distributed run, check the flags, prepare the domains, ``train``
    and (process 0) write the result's manifest."""
    logging.set_verbosity(logging.WARNING)  # orbax logs every save at INFO
    try:
        index, count = initialize_from_flags(FLAGS)
    except ValueError as e:
        raise app.UsageError(str(e)) from e
    if count > 1 and FLAGS.devices is not None:
        raise app.UsageError("--devices is for one process; a distributed run uses every "
                             "device of every process")
    enable_from_flags(FLAGS)
    if FLAGS.exclude is None or not FLAGS.ckpt_dir:
        raise app.UsageError("--exclude and --ckpt_dir are required (pass --exclude= to "
                             "exclude nothing, deliberately)")
    config = make_config()
    sources = sources_from_flags(FLAGS.exclude)
    _say(f"excluded: {FLAGS.exclude}; training domains ({len(sources)}): "
         + ", ".join(n for n, _ in sources))
    t0 = time.perf_counter()
    domains = prepare(config, sources, FLAGS.progress and index == 0)
    out = FLAGS.out or os.path.join(FLAGS.ckpt_dir, default_out)
    train(config, domains, FLAGS.ckpt_dir, out, FLAGS.exclude, FLAGS.progress)
    if index:  # process 0 writes the manifest
        return
    import platform
    import sys

    import jax

    from jtrack.pretrain.head import write_manifest
    path = os.path.splitext(out)[0] + ".json"
    write_manifest(out, path, f"python -m {program} " + " ".join(sys.argv[1:]), {
        "recipe": json.loads(json.dumps(dataclasses.asdict(config))),
        "holdout": FLAGS.holdout,
        "wall_s_this_run": round(time.perf_counter() - t0, 1),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, jax {jax.__version__} "
                   f"on {jax.default_backend()}, {jax.device_count()} device(s) in "
                   f"{jax.process_count()} process(es)"})
    print(f"wrote {path}")


def main(argv):
    del argv
    run("experiments.pretrain", make_config, prepare, train, "head.npz")


if __name__ == "__main__":
    app.run(main)
