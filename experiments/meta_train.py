"""Meta-learn the head a new target starts from and its first-frame rates.

    python -m experiments.meta_train --roots=../shared/data/train --synthetic=0 \\
        --exclude=Diving,Crossing,ball1 --inner_steps=5 --steps=240 \\
        --ckpt_dir=/tmp/meta [--config_override=n_neg_init=800] [--start=shipped] \
        [--first_order]

Episodes (:mod:`jtrack.meta`): a first frame of a training domain, the
tracker's own first-frame training for ``--inner_steps`` SGD steps at the
learned per-element rates, the loss on later frames; ``jax.grad`` through it
all. The data, network and run flags are ``experiments.pretrain``'s (the
network flags must match the tracker that loads the result; ``--n_pos``,
``--n_neg`` and the IoU flags sample the query frames; ``--grad_clip`` clips
the meta-gradient); its SGD flags (``--lr``, ``--layer_lr``, ``--momentum``,
``--weight_decay``, ``--frames_per_batch``) do not apply and are refused.
Checkpoints, resume, ``--distributed``, ``log.jsonl``/``log.png`` work as in
pretraining. The result goes to ``--out`` (default ``<ckpt_dir>/meta_head.npz``):
load it with ``jtrack.pretrain.load_params(path, config, key)`` into a
config with ``iters_init`` = ``--inner_steps``.
"""

from __future__ import annotations


from absl import app, flags

from experiments import pretrain

FLAGS = flags.FLAGS
flags.DEFINE_integer("inner_steps", 5, "First-frame SGD steps (the tracker's iters_init).")
flags.DEFINE_integer("episodes_per_batch", 8, "Episodes per meta-step (one domain).")
flags.DEFINE_integer("query_frames", 4, "Frames each adapted head is scored on ...")
flags.DEFINE_integer("horizon", 20, "... drawn from the next this many frames.")
flags.DEFINE_integer("first_every", 4, "Every k-th frame may start an episode.")
flags.DEFINE_float("meta_lr", 1e-4, "Adam rate on the initial head.")
flags.DEFINE_float("rate_lr", 1e-5, "Adam rate on the per-element first-frame rates.")
flags.DEFINE_float("init_rate", 0.005, "Starting rate x the tracker's layer_lr multiplier.")
flags.DEFINE_bool("first_order", False, "No second derivatives through the inner loop.")
flags.DEFINE_multi_string("config_override", [], "TrackerConfig field=value for the "
                          "tracker the result is for (JSON value), e.g. n_neg_init=800.")
flags.DEFINE_string("start", "random", "Initial head: 'random', 'shipped' (the pretrained "
                    "head in the package) or a head .npz from experiments.pretrain.")

_NOT_FOR_META = ("lr", "layer_lr", "momentum", "weight_decay", "frames_per_batch")


def make_config():
    from jtrack.meta import MetaConfig

    from jtrack.config import parse_overrides, with_fields

    pc = pretrain.make_config()
    tc = with_fields(pc.tracker, {**parse_overrides(FLAGS.config_override),
                                  "iters_init": FLAGS.inner_steps})
    return MetaConfig(
        pretrain=pc.replace(tracker=tc),
        episodes_per_batch=FLAGS.episodes_per_batch, query_frames=FLAGS.query_frames,
        horizon=FLAGS.horizon, first_every=FLAGS.first_every, meta_lr=FLAGS.meta_lr,
        rate_lr=FLAGS.rate_lr, init_rate=FLAGS.init_rate, grad_clip=FLAGS.grad_clip,
        first_order=FLAGS.first_order)


def start_head(config):
    """The initial head of ``--start`` (None: random)."""
    import jax

    if FLAGS.start == "random":
        return None
    from jtrack.pretrain import load_params
    from jtrack.weights import shipped

    key = jax.random.key(FLAGS.seed)
    params = (shipped.load(config.tracker, key) if FLAGS.start == "shipped"
              else load_params(FLAGS.start, config.tracker, key))
    return params["head"]


def prepare(config, sources, progress: bool) -> list:
    from jtrack.meta import prepare_meta_domain

    domains, seconds = pretrain.prepare_each(
        sources, progress, lambda name, frames, gt, bb: prepare_meta_domain(
            config, name, frames, gt, bb, holdout=FLAGS.holdout), config.tracker.backbone)
    pretrain._say(f"prepared {sum(len(d.domain) for d in domains)} frames, "
                  f"{sum(len(d.first) for d in domains)} first-frame regions in {seconds:.1f}s")
    return domains


def train(config, domains, ckpt_dir: str, out: str, exclude, progress: bool = True) -> dict:
    """Meta-train on ``domains`` to ``--steps`` (resuming from ``ckpt_dir``;
    logs as :func:`experiments.pretrain.fit`) and write the head and its
    rates to ``out``. Returns the last epoch's log record."""
    import jax

    from jtrack import parallel
    from jtrack.meta import (evaluate, held_batches, init_state, make_eval, make_step,
                             save_meta_head, summarize, train_steps)

    mesh = parallel.make_mesh(FLAGS.devices, devices=jax.devices())
    state = init_state(config, FLAGS.seed, FLAGS.data_seed, mesh, start_head(config))
    step_fn, eval_fn = make_step(config, mesh), make_eval(config, mesh)
    state, rec = pretrain.fit(
        "meta-train", state, config, domains, ckpt_dir, mesh, progress,
        advance=lambda st, n, on_step: train_steps(config, st, domains, n, step_fn, on_step),
        summarize=summarize,
        held=lambda meta: evaluate(meta, held_batches(config, domains), eval_fn,
                                   jax.random.key(FLAGS.seed + 1)))
    if jax.process_index() == 0:
        save_meta_head(out, config, state["params"], {
            "steps": int(state["step"]), "domains": [d.name for d in domains],
            "frames": {d.name: len(d.domain) for d in domains}, "excluded": list(exclude),
            "seed": FLAGS.seed, "data_seed": FLAGS.data_seed, "start": FLAGS.start,
            "final": rec})
        print(f"wrote {out}")
    return rec


def main(argv):
    del argv
    given = [f"--{n}" for n in _NOT_FOR_META if FLAGS[n].present]
    if given:
        raise app.UsageError(f"{', '.join(given)}: pretraining's SGD flags do not apply to "
                             "meta-training (use --meta_lr, --rate_lr, --episodes_per_batch)")
    pretrain.run("experiments.meta_train", make_config, prepare, train, "meta_head.npz")


if __name__ == "__main__":
    app.run(main)
