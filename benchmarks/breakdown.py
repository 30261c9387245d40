"""Where the time of one frame goes: each stage of ``step`` and ``init`` as
its own small jitted function on the real shapes of a real sequence.

Stages are timed separately (median of ``--repeats`` calls after one
warm-up call; a slow stage stops after 1.5 s of timed calls, at least 3:
the ``n`` column), so their sum
includes one dispatch per stage and misses the fusion XLA does across stages
inside the real ``step``; the table also shows the whole ``jtrack.step``
(frames with and without an online update) and ``jtrack.init`` for
comparison.

  PYTHONPATH=. python -m benchmarks.breakdown
  PYTHONPATH=. python -m benchmarks.breakdown --repeats 2 --sequence synthetic --tiny
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import jtrack
from benchmarks import common
from jtrack import bbreg as bbreg_lib
from jtrack import boxes as B
from jtrack import learn, memory, nets, optim, region, sampling
from jtrack import tracker as T

def _stages(config: jtrack.TrackerConfig, params: dict, state: T.TrackerState,
            frame0: np.ndarray, box0: np.ndarray, frame: np.ndarray):
    """[(group, name, thunk)]: every thunk runs one jitted stage on real inputs."""
    bb = nets.get_backbone(config.backbone)
    size = config.region_size
    jit = jax.jit
    key = jax.random.key(3)
    f0 = jnp.asarray(frame0)
    f1 = jnp.asarray(frame)
    box0 = jnp.asarray(box0, jnp.float32)
    wh = jnp.asarray([frame.shape[1], frame.shape[0]], jnp.float32)

    # --- first frame (init) ---------------------------------------------
    init_crop = jit(lambda f, b: region.crop(f, region.region_box(b, config.init_region_scale),
                                             config.init_region_size))
    rbox0 = region.region_box(box0, config.init_region_scale)
    img0 = init_crop(f0, box0)
    backbone = jit(bb.apply)
    fmap0 = backbone(params["backbone"], img0)
    area0 = region.intersect(rbox0, jnp.concatenate([jnp.zeros(2), wh]))

    @jit
    def init_samples(k, box):
        ks = jax.random.split(k, 7)
        sel = lambda kk, c, lo, hi, n: sampling.select_by_iou(  # noqa: E731
            kk, T._clip_to_area(c, area0, config.min_box_size), box, lo, hi, n)
        pos, _ = sel(ks[1], sampling.gaussian(ks[0], box, 2 * config.n_pos_init,
                                              config.pos_trans, config.pos_scale),
                     config.pos_iou_init, 1.0, config.n_pos_init)
        pool = jnp.concatenate([
            sampling.uniform(ks[2], box, config.n_neg_init, config.neg_trans_init,
                             config.neg_scale_init),
            sampling.whole(ks[3], box, area0, config.n_neg_init, config.neg_scale_init)])
        neg, _ = sel(ks[4], pool, 0.0, config.neg_iou_init, config.n_neg_init)
        reg, reg_ok = sel(ks[6], sampling.uniform(ks[5], box, 4 * config.n_bbreg,
                                                  config.bbreg_trans, config.bbreg_scale,
                                                  config.bbreg_aspect),
                          config.bbreg_iou, 1.0, config.n_bbreg)
        return jnp.concatenate([pos, neg, reg]), reg_ok

    init_boxes, reg_ok = init_samples(key, box0)
    pool = jit(lambda fm, b, rb: T.pool_features(config, fm, region.to_region(
        b, rb, config.init_region_size)))
    init_feats = pool(fmap0, init_boxes, rbox0)
    reg_boxes, reg_f = init_boxes[-config.n_bbreg:], init_feats[-config.n_bbreg:]
    fit = jit(lambda f, b, ok: bbreg_lib.fit(f, b, box0, ok, config.bbreg_alpha))
    opt_first, _ = optim.tracker_optimizers(config)
    n_pos = config.n_pos_init

    @jit
    def init_train(head, feats, k):
        mem = memory.create(feats[:n_pos], jnp.ones(n_pos, bool), config.frames_long,
                            config.n_pos_update, config.frames_short, config.n_neg_update)
        neg = feats[n_pos:-config.n_bbreg]
        mem = mem.replace(neg=neg[None], neg_valid=jnp.ones((1, neg.shape[0]), bool),
                          neg_frame=jnp.zeros((1,), jnp.int32))
        return T._train(config, opt_first, head, opt_first.init(head), mem, jnp.int32(0),
                        config.frames_long, k, T.first_frame_iters(config)[0])[:2]

    first = [
        ("init", "region crop (init region)", lambda: init_crop(f0, box0)),
        ("init", "backbone (init region)", lambda: backbone(params["backbone"], img0)),
        ("init", "pos/neg/bbreg sample boxes", lambda: init_samples(key, box0)),
        ("init", "RoIAlign of all init samples", lambda: pool(fmap0, init_boxes, rbox0)),
        ("init", "bbreg fit (ridge)", lambda: fit(reg_f, reg_boxes, reg_ok)),
        ("init", f"init training ({T.first_frame_iters(config)[0]} of "
                 f"{config.iters_init} iters)",
         lambda: init_train(params["head"], init_feats, key)),
    ]

    # --- tracking frame (step) ------------------------------------------
    scale = config.region_scale * float(state.widen)
    crop = T._crop_region  # the real jitted crop of step
    img, rbox, _ = crop(f1, state.box, scale, size)
    fmap = backbone(state.backbone, img)

    @jit
    def candidates(k, box):
        c = sampling.gaussian(k, box, config.n_candidates, config.trans, config.scale,
                              config.aspect)
        c = B.clip_to_image(c, wh, config.min_box_size)
        return c, region.to_region(c, rbox, size)

    cands, rcands = candidates(key, state.box)
    roi = jit(lambda fm, b: T.pool_features(config, fm, b))
    feats = roi(fmap, rcands)
    head = jit(lambda h, f: learn.target_prob(nets.head_logits(h, f, hidden=config.hidden)))
    probs = head(state.head, feats)

    @jit
    def topk(p, c):
        top_p, top_i = jax.lax.top_k(p, config.top_k)
        keep = T._median_inliers(config, c[top_i])
        return T._masked_mean(c[top_i], keep), top_i, keep

    box, top_i, keep = topk(probs, cands)
    refine = jit(lambda w, f, b, k: T._masked_mean(bbreg_lib.predict(w, f, b), k))
    top_f, top_b = feats[top_i], cands[top_i]

    @jit
    def samples(k, box, fm):
        k1, k2, k3, k4 = jax.random.split(k, 4)
        area = region.intersect(rbox, jnp.concatenate([jnp.zeros(2), wh]))
        pos, pos_ok = sampling.select_by_iou(k2, B.clip_to_image(sampling.gaussian(
            k1, box, 2 * config.n_pos_update, config.pos_trans, config.pos_scale),
            wh, config.min_box_size), box, config.pos_iou_update, 1.0, config.n_pos_update)
        neg, neg_ok = sampling.select_by_iou(k4, T._clip_to_area(sampling.uniform(
            k3, box, 2 * config.n_neg_update, config.neg_trans_update,
            config.neg_scale_update), area, config.min_box_size),
            box, 0.0, config.neg_iou_update, config.n_neg_update)
        f = T.pool_features(config, fm, region.to_region(jnp.concatenate([pos, neg]), rbox, size))
        return f, pos_ok, neg_ok

    sf, pos_ok, neg_ok = samples(key, box, fmap)
    n_p = config.n_pos_update

    @jit
    def write(mem, f, pok, nok, t):
        new = memory.write_negatives(memory.write_positives(mem, f[:n_p], pok, t),
                                     f[n_p:], nok, t)
        return jax.tree.map(lambda a, b: jnp.where(t > 0, a, b), new, mem)

    update = jit(lambda s, k: T._update_head(config, s, k))
    track = [
        ("step", "frame to device (host->device)",
         lambda: jax.device_put(frame)),
        ("step", "region crop + resample", lambda: crop(f1, state.box, scale, size)),
        ("step", "backbone (region)", lambda: backbone(state.backbone, img)),
        ("step", "candidate boxes", lambda: candidates(key, state.box)),
        ("step", f"RoIAlign ({config.n_candidates} candidates)", lambda: roi(fmap, rcands)),
        ("step", "head scoring", lambda: head(state.head, feats)),
        ("step", "top-K + outlier rejection", lambda: topk(probs, cands)),
        ("step", "bbox regression", lambda: refine(state.bbreg, top_f, top_b, keep)),
        ("step", f"pos/neg samples + RoIAlign ({n_p + config.n_neg_update})",
         lambda: samples(key, box, fmap)),
        ("step", "memory write", lambda: write(state.memory, sf, pos_ok, neg_ok, jnp.int32(5))),
        ("step", f"online update ({config.iters_per_frame or config.iters_update} iters, "
                 "when it runs)",
         lambda: update(state, key)),
    ]
    return first + track


# A stage stops repeating once its timed calls took this long (at least 3
# calls): the half-second init training gets 4, the millisecond stages all.
STAGE_BUDGET_S = 1.5


def run(sequence: str = "otb/Crossing", repeats: int = 10, warmup: int = 1,
        whole_frames: int = 20, config: jtrack.TrackerConfig | None = None) -> dict:
    config = config or jtrack.TrackerConfig()
    imgs, gt = common.load_frames(sequence, 2)
    params = jtrack.init_params(config, jax.random.key(0))
    with common.stage("jtrack.init / step (compile)"):
        t_init_first, state = common.time_call(
            lambda: jtrack.init(config, params, imgs[0], gt[0], jax.random.key(1)))
        init_stats = common.bench(lambda: jtrack.init(config, params, imgs[0], gt[0],
                                                      jax.random.key(1)),
                                  warmup=0, repeats=max(1, repeats // 3))
    # Whole step, carried over ``whole_frames`` calls on frame 1: every
    # ``long_interval``-th call includes the online update.
    s = common.copy_tree(state)
    s, _ = jtrack.step(config, s, imgs[1])  # compile
    plain, upd = [], []
    with common.stage("whole step"):
        for _ in range(whole_frames):
            dt, (s, out) = common.time_call(lambda: jtrack.step(config, s, imgs[1]))
            (upd if bool(out.updated) else plain).append(dt)

    rows = []
    with common.stage("stages"):
        for group, name, fn in _stages(config, params, state, imgs[0], gt[0], imgs[1]):
            r = common.bench(fn, warmup=warmup, repeats=repeats, budget_s=STAGE_BUDGET_S)
            rows.append({"group": group, "stage": name, **r})
    whole = {"init": init_stats,
             "step_no_update": common.summarize(plain) if plain else None,
             "step_with_update": common.summarize(upd) if upd else None}
    return {"sequence": sequence, "frame_hw": list(imgs[0].shape[:2]),
            "config": {"n_candidates": config.n_candidates, "region_size": config.region_size,
                       "init_region_size": config.init_region_size,
                       "iters_init": config.iters_init, "iters_update": config.iters_update,
                       "backbone": config.backbone},
            "repeats": repeats, "init_first_call_s": t_init_first,
            "stages": rows, "whole": whole}


def table(r: dict) -> str:
    out = []
    for group, whole_keys in (("init", ("init",)), ("step", ("step_no_update", "step_with_update"))):
        rows = [[x["stage"], x["median_ms"], x["min_ms"], x["max_ms"], x["n"]]
                for x in r["stages"] if x["group"] == group]
        total = sum(x["median_ms"] for x in r["stages"]
                    if x["group"] == group and "online update" not in x["stage"])
        rows.append([f"sum of stages{' (without update)' if group == 'step' else ''}",
                     total, "", "", ""])
        for k in whole_keys:
            w = r["whole"][k]
            if w is not None:
                rows.append([f"whole jtrack.{k}", w["median_ms"], w["min_ms"], w["max_ms"],
                             w["n"]])
        out.append(common.format_table([f"{group} stage", "median ms", "min ms", "max ms", "n"],
                                       rows))
    return "\n\n".join(out)


def main(argv=None) -> dict:
    p = common.parser(__doc__)
    p.add_argument("--sequence", default="otb/Crossing")
    common.add_set_flag(p)
    p.add_argument("--repeats", type=int, default=10)
    p.add_argument("--whole-frames", type=int, default=20,
                   help="whole-step calls (every long_interval-th one updates)")
    a = p.parse_args(argv)
    common.enable_compile_cache(a.compile_cache)
    config, _ = common.config_from_sets(a.tiny, a.set)
    r = run(a.sequence, a.repeats, whole_frames=a.whole_frames, config=config)
    heading = (f"{r['sequence']} {r['frame_hw'][1]}x{r['frame_hw'][0]}, median of up to "
               f"{a.repeats} calls per stage (n: calls timed)")
    return common.report(a.out, "breakdown", r, heading, table(r))


if __name__ == "__main__":
    main()
