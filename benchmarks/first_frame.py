"""First-frame time: the default init vs a meta-learned head's few steps.

``jtrack.init`` (whole call, after its compilation) on the first frame of
each sequence, for three variants: the default (random head, 20 of its 50
first-frame iterations on the first frame, 500 positives / 2,000 negatives
pooled), the meta-learned head with its few steps and smaller sample pools
(``--meta_head``, :mod:`jtrack.meta`), and a random head with those same
fast settings (what meta-learning must beat on accuracy); ``--variant``
adds more. Prints median ms per sequence and the ratio to the default;
the meta goal is a quarter of the 660 ms the first frame took on this CPU
when it was set (165 ms).

  PYTHONPATH=. python -m benchmarks.first_frame --meta_head=/tmp/meta/meta_head.npz
  PYTHONPATH=. python -m benchmarks.first_frame --variant 'no dropout:dropout=0.0'
"""

from __future__ import annotations

import jax
import numpy as np

from benchmarks import common

SEQUENCES = ("otb/Diving", "otb/Crossing", "vot/ball1")
GOAL_MS = 660.0 / 4
FAST = dict(iters_init=5, n_pos_init=200, n_neg_init=800)


def parse_variant(text: str) -> tuple[str, dict]:
    """``'NAME:FIELD=VALUE,FIELD=VALUE'`` -> (NAME, TrackerConfig overrides)."""
    from jtrack.config import parse_overrides

    name, sep, fields = text.partition(":")
    if not sep or not name or not fields:
        raise ValueError(f"--variant {text!r}: expected NAME:FIELD=VALUE[,FIELD=VALUE...]")
    return name, parse_overrides(fields.split(","))


def variants(meta_head: str | None, tiny: bool, extra: dict | None = None) -> dict:
    """{name: (config, params)}; ``extra``: {name: overrides} of more
    random-head variants (what one lever of the default buys)."""
    import jtrack
    from jtrack.config import with_fields
    from jtrack.pretrain import load_params

    out = {}
    default = common.config(tiny)
    out["default (random head)"] = (default, jtrack.init_params(default, jax.random.key(0)))
    if meta_head:
        cfg = common.config(tiny, **FAST)
        out["meta-learned head, 5 steps"] = (cfg, load_params(meta_head, cfg, jax.random.key(0)))
    cfg = common.config(tiny, **FAST)
    out["random head, 5 steps"] = (cfg, jtrack.init_params(cfg, jax.random.key(0)))
    for name, changes in (extra or {}).items():
        cfg = with_fields(common.config(tiny), changes)
        out[name] = (cfg, jtrack.init_params(cfg, jax.random.key(0)))
    return out


def run(meta_head: str | None, repeats: int, tiny: bool,
        sequences: tuple[str, ...] = SEQUENCES, extra: dict | None = None) -> dict:
    import jtrack

    res = {}
    for name, (cfg, params) in variants(meta_head, tiny, extra).items():
        row = {}
        for seq in sequences:
            frames, gt = common.load_frames(seq, 2)
            keys = iter(range(10 ** 6))
            row[seq] = common.bench(lambda: jtrack.init(cfg, params, frames[0], gt[0],
                                                         jax.random.key(next(keys))),
                                    warmup=2, repeats=repeats)
        row["median_ms"] = float(np.median([row[s]["median_ms"] for s in sequences]))
        res[name] = row
    base = res["default (random head)"]["median_ms"]
    for row in res.values():
        row["vs_default"] = row["median_ms"] / base
        row["vs_goal"] = row["median_ms"] / GOAL_MS
    return {"variants": res, "goal_ms": GOAL_MS, "meta_head": meta_head,
            "sequences": list(sequences)}


def table(r: dict) -> str:
    seqs = r["sequences"]
    rows = [[name] + [v[s]["median_ms"] for s in seqs]
            + [v["median_ms"], v["vs_default"], v["vs_goal"]]
            for name, v in r["variants"].items()]
    return common.format_table(["init variant"] + [f"{s} ms" for s in seqs]
                               + ["median ms", "x default", f"x goal ({GOAL_MS:.0f} ms)"], rows)


def main(argv=None) -> dict:
    p = common.parser(__doc__)
    p.add_argument("--meta_head", default=None, help="meta-learned head (.npz) to time")
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--sequences", default=",".join(SEQUENCES),
                   help="sequence folders or names under the data root, or 'synthetic'")
    p.add_argument("--variant", action="append", default=[],
                   metavar="NAME:FIELD=VALUE[,FIELD=VALUE]",
                   help="another random-head variant, the default with these "
                        "TrackerConfig changes (repeatable)")
    a = p.parse_args(argv)
    try:
        extra = dict(parse_variant(v) for v in a.variant)
    except ValueError as e:
        p.error(str(e))
    common.enable_compile_cache(a.compile_cache)
    r = run(a.meta_head, a.repeats, a.tiny, tuple(a.sequences.split(",")), extra)
    return common.report(a.out, "first_frame", r,
                         f"jtrack.init on the first frame, median of {a.repeats} calls",
                         table(r))


if __name__ == "__main__":
    main()
