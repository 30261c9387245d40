"""The first-order meta-gradient against the full one, on real episodes.

Meta-gradients (:func:`jtrack.meta.meta_grad`) of the same batches of
episodes from real training domains, once through the whole inner loop
(second derivatives) and once first-order (``MetaConfig.first_order``):
cosine similarity and norm ratio per part (initial head, rates), and the
time of one gradient after compilation.

  PYTHONPATH=. python -m benchmarks.meta_grad --domains=Couple,boat1 --batches=4
"""

from __future__ import annotations

import os
import time

import jax
import numpy as np

from benchmarks import common


def run(domains: list[str], n_batches: int, max_frames: int, tiny: bool) -> dict:
    from jtrack import get_backbone
    from jtrack.data import default_data_root, read_sequence
    from jtrack.meta import (MetaConfig, draw, host_batch, init_meta_params, meta_grad,
                             prepare_meta_domain)
    from jtrack.pretrain import PretrainConfig

    tc = common.config(tiny, iters_init=5, n_pos_init=200, n_neg_init=800)
    full = MetaConfig(pretrain=PretrainConfig(tracker=tc))
    first = full.replace(first_order=True)
    bb = get_backbone(tc.backbone).init(jax.random.key(0))
    doms = []
    for name in domains:
        seq = read_sequence("otb", os.path.join(default_data_root(), "train", name))[0]
        seq = seq.truncated(max_frames)
        doms.append(prepare_meta_domain(full, name, seq.iter_frames(), seq.gt, bb))
    meta = init_meta_params(full, jax.random.key(0))
    fns = {c.first_order: jax.jit(lambda m, b, k, c=c: meta_grad(c, m, b, k))
           for c in (full, first)}
    rows, times = [], {False: [], True: []}
    for s in range(n_batches):
        d, js, qs = draw(full, doms, 0, s)
        batch, key = host_batch(doms[d], js, qs), jax.random.key(s)
        grads = {}
        for fo, fn in fns.items():
            jax.block_until_ready(fn(meta, batch, key))  # compiled (first batch) / warm
            t, (_, grads[fo]) = common.time_call(lambda fn=fn: fn(meta, batch, key))
            times[fo].append(t)
        for part in ("head", "head_lr"):
            a = np.concatenate([np.ravel(x) for x in jax.tree.leaves(grads[False][part])])
            b = np.concatenate([np.ravel(x) for x in jax.tree.leaves(grads[True][part])])
            rows.append({"batch": s, "domain": doms[d].name, "part": part,
                         "cosine": float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b))),
                         "norm_ratio": float(np.linalg.norm(b) / np.linalg.norm(a))})
    return {"rows": rows, "full": common.summarize(times[False]),
            "first_order": common.summarize(times[True]), "domains": domains}


def table(r: dict) -> str:
    out = common.format_table(["batch", "domain", "part", "cosine(first-order, full)",
                               "|first-order| / |full|"],
                              [[x["batch"], x["domain"], x["part"], x["cosine"],
                                x["norm_ratio"]] for x in r["rows"]])
    return out + "\n\n" + common.format_table(
        ["meta-gradient", "median ms", "min ms", "n"],
        [[k, r[k]["median_ms"], r[k]["min_ms"], r[k]["n"]] for k in ("full", "first_order")])


def main(argv=None) -> dict:
    p = common.parser(__doc__)
    p.add_argument("--domains", default="Couple,boat1")
    p.add_argument("--batches", type=int, default=4)
    p.add_argument("--max_frames", type=int, default=60)
    a = p.parse_args(argv)
    common.enable_compile_cache(a.compile_cache)
    t0 = time.perf_counter()
    r = run(a.domains.split(","), a.batches, a.max_frames, a.tiny)
    r["wall_s"] = time.perf_counter() - t0
    return common.report(a.out, "meta_grad", r,
                         "first-order vs full meta-gradient, 8 episodes per batch", table(r))


if __name__ == "__main__":
    main()
