"""The pretrained head shipped in the package (jtrack/weights/): the file
matches its manifest, ``init_params(..., head="pretrained")`` loads it and
refuses a config it was not trained for, and on real frames it ranks boxes
on the target above boxes off it before any online training, where a random
head does not."""

import json

import jax
import numpy as np
import pytest

import jtrack
from jtrack.data import load_frame, read_otb
from jtrack.data.datasets import default_data_root
from jtrack.eval.research import separation_auc
from jtrack.pretrain.head import arrays_sha256
from jtrack.weights import shipped

CONFIG = jtrack.TrackerConfig()
EVAL_CLIPS = {"diving", "crossing", "ball1"}


def test_file_matches_its_manifest():
    man = shipped.manifest()
    assert arrays_sha256(shipped.HEAD_FILE) == man["sha256"]
    for field, value in man["must_match"].items():  # the default config fits it
        assert getattr(CONFIG, field) == value, field
    assert man["jtrack_version"] == jtrack.__version__
    assert man["domains"] and not EVAL_CLIPS & {d.lower() for d in man["domains"]}
    assert set(man["frames"]) == set(man["domains"]) and man["steps"] > 0
    assert man["command"].startswith("python -m experiments.pretrain ")
    json.dumps(man)  # plain JSON all through


def test_init_params_loads_it_on_request():
    params = jtrack.init_params(CONFIG, jax.random.key(0), head="pretrained")
    with np.load(shipped.HEAD_FILE) as z:
        for layer in ("fc4", "fc5", "fc6"):
            np.testing.assert_array_equal(params["head"][layer]["kernel"],
                                          z[f"head/{layer}/kernel"])
    rand = jtrack.init_params(CONFIG, jax.random.key(0))  # the default: random
    assert not np.allclose(rand["head"]["fc4"]["kernel"], params["head"]["fc4"]["kernel"])
    assert shipped.describe("pretrained")["sha256"] == shipped.manifest()["sha256"]


def test_a_config_it_does_not_fit_is_refused_by_name():
    other = CONFIG.hidden // 2
    with pytest.raises(ValueError, match=rf"trained for hidden={CONFIG.hidden}.*config has "
                                         rf"hidden={other}.*head='random'"):
        jtrack.init_params(CONFIG.replace(hidden=other), jax.random.key(0), head="pretrained")
    with pytest.raises(ValueError, match="region_size"):
        jtrack.init_params(CONFIG.replace(region_size=187), jax.random.key(0), head="pretrained")
    with pytest.raises(ValueError, match="head must be 'pretrained', 'random' or a head file"):
        jtrack.init_params(CONFIG, jax.random.key(0), head="imagenet")


def test_pretrained_head_ranks_the_target_above_background_before_training():
    seq = read_otb(f"{default_data_root()}/otb/Crossing")[0]
    heads = {"pretrained": jtrack.init_params(CONFIG, jax.random.key(0), head="pretrained")}
    for k in (0, 1):  # the control: random heads, which must fail the same bar
        heads[f"random_{k}"] = jtrack.init_params(CONFIG, jax.random.key(k), head="random")
    frames = [load_frame(seq.frames[t]) for t in range(5)]
    auc = {name: np.mean([separation_auc(CONFIG, params, f, seq.gt[t], jax.random.key(t))
                          for t, f in enumerate(frames)]) for name, params in heads.items()}
    assert auc["pretrained"] >= 0.95, auc
    assert auc["random_0"] < 0.95 and auc["random_1"] < 0.95, auc
