"""Side-by-side variant runs (jtrack.eval.compare): variant specs, their
configs, and the summary table."""

import json

import pytest

import jtrack
from jtrack.eval.compare import load_specs, table, variant_config


def test_specs_builtin_and_from_file(tmp_path):
    path = tmp_path / "v.json"
    path.write_text(json.dumps({"slow": {"head": "pretrained",
                                         "config": {"layer_lr": [["fc6", 10.0]],
                                                    "iters_init": 5}}}))
    specs = load_specs(str(path), ["random", "slow"])
    assert list(specs) == ["random", "slow"] and specs["random"]["head"] == "random"
    cfg = variant_config(jtrack.TrackerConfig(hidden=64), specs["slow"])
    assert cfg.layer_lr == (("fc6", 10.0),) and cfg.iters_init == 5 and cfg.hidden == 64
    with pytest.raises(ValueError, match=r"unknown variants \['nope'\]"):
        load_specs(str(path), ["nope"])
    path.write_text(json.dumps({"bad": {"head": "imagenet"}}))
    with pytest.raises(ValueError, match="bad: head must be"):
        load_specs(str(path), ["bad"])
    with pytest.raises(ValueError, match="unknown TrackerConfig fields"):
        variant_config(jtrack.TrackerConfig(), {"config": {"iters": 5}})
    with pytest.raises(ValueError, match="iters_init must be an int"):
        variant_config(jtrack.TrackerConfig(), {"config": {"iters_init": "5x"}})


def test_table_means_sequences_per_seed_first():
    rs = {f"{s}/{k}/{v}": {"sequence": s, "seed": k, "variant": v, "auc": a}
          for (s, k, v, a) in [("A", 0, "r", 0.2), ("B", 0, "r", 0.6), ("A", 1, "r", 0.4),
                               ("B", 1, "r", 0.8), ("A", 0, "p", 0.5), ("B", 0, "p", 0.5)]}
    text = table(rs, ["r", "p"])
    assert "| A | 0.300 ± 0.100 | 0.500 ± 0.000 | 1 |" in text
    # mean row: per seed (0.4, 0.6) -> 0.5 ± 0.1 for r; p has one seed
    assert "| mean | 0.500 ± 0.100 | 0.500 ± 0.000 | 1 |" in text
