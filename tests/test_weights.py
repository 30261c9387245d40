"""Weight-file readers: torch .pth (legacy and zip) without torch, MDNet loaders.

The .pth files are written here byte by byte with pickle (no torch): a
pure-Python pickler that emits GLOBAL opcodes for ``torch.*`` names and
persistent ids for storages, in the two layouts ``torch.save`` produces.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile

import numpy as np
import pytest

from jtrack.weights.torch_pickle import (LEGACY_MAGIC, WeightFileError,
                                         load_state_dict, read_pth)

# ----------------------------------------------------------------------------
# A minimal torch.save look-alike


class _Global:
    """Pickled as ``GLOBAL module name`` (torch itself is never imported)."""

    def __init__(self, module: str, name: str):
        self.module, self.name = module, name

    def __call__(self, *args):  # pickle's save_reduce insists on a callable
        raise TypeError("only a pickling marker")


class _Storage:
    def __init__(self, key: str, type_name: str, data: np.ndarray):
        self.key, self.type_name, self.data = key, type_name, np.ascontiguousarray(data).ravel()


class _Tensor:
    def __init__(self, storage: _Storage, offset: int, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)


class _Pickler(pickle._Pickler):  # pure-Python pickler: dispatch is overridable
    dispatch = dict(pickle._Pickler.dispatch)

    def __init__(self, f, storages: dict):
        super().__init__(f, protocol=2)
        self.storages = storages

    def _save_global(self, obj):
        self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
        self.memoize(obj)

    dispatch[_Global] = _save_global

    def reducer_override(self, obj):
        if isinstance(obj, _Tensor):
            return (_Global("torch._utils", "_rebuild_tensor_v2"),
                    (obj.storage, obj.offset, obj.size, obj.stride, False,
                     collections.OrderedDict()))
        return NotImplemented

    def persistent_id(self, obj):
        if isinstance(obj, _Storage):
            self.storages[obj.key] = obj
            return ("storage", _Global("torch", obj.type_name), obj.key, "cpu",
                    obj.data.size)
        return None


_TYPE_NAMES = {np.dtype(np.float32): "FloatStorage", np.dtype(np.float64): "DoubleStorage",
               np.dtype(np.float16): "HalfStorage", np.dtype(np.int64): "LongStorage",
               np.dtype(np.int32): "IntStorage", np.dtype(np.uint8): "ByteStorage"}


def _as_tensors(obj, counter=None):
    """Replace ndarrays in a nested dict by contiguous _Tensors, one storage each."""
    counter = counter if counter is not None else [0]
    if isinstance(obj, np.ndarray):
        key = str(counter[0])
        counter[0] += 1
        st = _Storage(key, _TYPE_NAMES[obj.dtype], obj)
        strides = tuple(int(np.prod(obj.shape[i + 1:])) for i in range(obj.ndim))
        return _Tensor(st, 0, obj.shape, strides)
    if isinstance(obj, dict):
        return collections.OrderedDict((k, _as_tensors(v, counter)) for k, v in obj.items())
    return obj


def pth_bytes(obj, fmt: str = "legacy") -> bytes:
    """``obj``: nested dicts of ndarrays / _Tensors -> .pth file bytes."""
    obj = _as_tensors(obj)
    storages: dict[str, _Storage] = {}
    body = io.BytesIO()
    _Pickler(body, storages).dump(obj)
    if fmt == "zip":
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
            zf.writestr("archive/data.pkl", body.getvalue())
            zf.writestr("archive/byteorder", "little")
            for key, st in storages.items():
                zf.writestr(f"archive/data/{key}", st.data.astype(st.data.dtype.newbyteorder("<")).tobytes())
            zf.writestr("archive/version", "3\n")
        return out.getvalue()
    out = io.BytesIO()
    for header in (LEGACY_MAGIC, 1001,
                   dict(protocol_version=1001, little_endian=True,
                        type_sizes=dict(short=2, int=4, long=4))):
        pickle.dump(header, out, protocol=2)
    out.write(body.getvalue())
    keys = sorted(storages)
    pickle.dump(keys, out, protocol=2)
    for key in keys:
        data = storages[key].data
        out.write(struct.pack("<q", data.size))
        out.write(data.astype(data.dtype.newbyteorder("<")).tobytes())
    return out.getvalue()


def write_pth(path, obj, fmt: str = "legacy") -> str:
    with open(path, "wb") as f:
        f.write(pth_bytes(obj, fmt))
    return os.fspath(path)


# ----------------------------------------------------------------------------
# torch_pickle


def _sample_state(rng):
    shared = _Storage("shared", "FloatStorage", np.arange(12, dtype=np.float32))
    return {
        "conv.weight": rng.standard_normal((4, 3, 2, 2)).astype(np.float32),
        "conv.bias": rng.standard_normal(4).astype(np.float32),
        "bn.num_batches_tracked": np.array(7, np.int64),
        "half": rng.standard_normal((2, 3)).astype(np.float16),
        # Views into one storage: non-contiguous stride and an offset.
        "view.a": _Tensor(shared, 0, (3, 4), (4, 1)),
        "view.b": _Tensor(shared, 5, (2, 2), (1, 4)),
    }


@pytest.mark.parametrize("fmt", ["legacy", "zip"])
def test_roundtrip(tmp_path, fmt):
    rng = np.random.default_rng(0)
    state = _sample_state(rng)
    path = write_pth(tmp_path / f"m_{fmt}.pth", state, fmt)
    got = read_pth(path)
    assert isinstance(got, collections.OrderedDict)
    assert list(got) == list(state)
    for k in ("conv.weight", "conv.bias", "half"):
        assert got[k].dtype == state[k].dtype and got[k].shape == state[k].shape
        np.testing.assert_array_equal(got[k], state[k])
    assert got["bn.num_batches_tracked"].shape == () and int(got["bn.num_batches_tracked"]) == 7
    base = np.arange(12, dtype=np.float32)
    np.testing.assert_array_equal(got["view.a"], base.reshape(3, 4))
    np.testing.assert_array_equal(got["view.b"], np.array([[5, 9], [6, 10]], np.float32))


def test_nested_state_is_flattened(tmp_path):
    w = np.ones((2, 2), np.float32)
    path = write_pth(tmp_path / "nested.pth", {"shared_layers": {"conv1.0.weight": w},
                                               "epoch": 3}, "zip")
    got = load_state_dict(path)
    assert list(got) == ["shared_layers.conv1.0.weight"]


def test_missing_file(tmp_path):
    path = tmp_path / "nope.pth"
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        read_pth(path)


@pytest.mark.parametrize("fmt", ["legacy", "zip"])
@pytest.mark.parametrize("keep", [0.3, 0.9, 0.999])
def test_truncated_file(tmp_path, fmt, keep):
    data = pth_bytes(_sample_state(np.random.default_rng(1)), fmt)
    path = tmp_path / f"cut_{fmt}.pth"
    path.write_bytes(data[:int(len(data) * keep)])
    with pytest.raises(WeightFileError, match=f"cut_{fmt}.pth"):
        read_pth(path)


def test_garbage_file(tmp_path):
    path = tmp_path / "garbage.pth"
    path.write_bytes(np.random.default_rng(2).bytes(1000))
    with pytest.raises(WeightFileError, match="garbage.pth"):
        read_pth(path)


@pytest.mark.parametrize("fmt", ["legacy", "zip"])
def test_refuses_other_globals(tmp_path, fmt):
    evil = {"x": _Global("os", "system")}
    path = write_pth(tmp_path / "evil.pth", evil, fmt)
    with pytest.raises(WeightFileError, match="os.system"):
        read_pth(path)


def test_real_efficientnet_file():
    from jtrack.weights.efficientnet import efficientnet_lite0_path

    state = load_state_dict(efficientnet_lite0_path())
    assert len(state) == 296
    assert sum(v.size for v in state.values()) == 4_694_073
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_blocks.3._depthwise_conv.weight"].shape == (144, 1, 5, 5)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert all(np.isfinite(v).all() for v in state.values())


# ----------------------------------------------------------------------------
# MDNet / VGG-M loaders


def _reference_params(seed=0):
    """Random params with jtrack's exact names and shapes (VGGM + Head init)."""
    import jax
    import jax.numpy as jnp

    from jtrack.nets import VGGM, init_head

    kb, kh = jax.random.split(jax.random.key(seed))
    bb = VGGM().init(kb, jnp.zeros((107, 107, 3)))["params"]
    head = init_head(kh, 3 * 3 * 512)
    rng = np.random.default_rng(seed)
    rand = lambda a: rng.standard_normal(np.shape(a)).astype(np.float32)  # noqa: E731
    return jax.tree_util.tree_map(rand, {"backbone": dict(bb), "head": dict(head)})


def _matconvnet_layers(ref, with_head=True):
    """MatConvNet cell array of layer structs (conv/relu/norm/pool/fc)."""
    def cell(*arrays):
        c = np.empty((1, len(arrays)), dtype=object)
        for i, a in enumerate(arrays):
            c[0, i] = a
        return c

    layers = []
    for i, name in enumerate(("conv1", "conv2", "conv3"), 1):
        p = ref["backbone"][name]
        layers.append({"name": name, "type": "conv",
                       "weights": cell(p["kernel"], p["bias"][None, :])})
        layers.append({"name": f"relu{i}", "type": "relu", "weights": np.empty((0, 0), object)})
    if with_head:
        for name in ("fc4", "fc5", "fc6"):
            p = ref["head"][name]
            k = 3 if name == "fc4" else 1
            w = p["kernel"].reshape(k, k, -1, p["kernel"].shape[1])  # conv filters
            layers.append({"name": name, "type": "conv", "weights": cell(w, p["bias"][None, :])})
    return cell(*layers)


def _pymdnet_state(ref, n_branches=2):
    st = {}
    for name in ("conv1", "conv2", "conv3"):
        p = ref["backbone"][name]
        st[f"layers.{name}.0.weight"] = np.ascontiguousarray(p["kernel"].transpose(3, 2, 0, 1))
        st[f"layers.{name}.0.bias"] = p["bias"]
    for name in ("fc4", "fc5"):
        p = ref["head"][name]
        w = p["kernel"].T  # (out, in), in = HWC here
        if name == "fc4":  # py-MDNet flattens conv3 output as CHW
            w = w.reshape(512, 3, 3, 512).transpose(0, 3, 1, 2).reshape(512, -1)
        st[f"layers.{name}.1.weight"] = np.ascontiguousarray(w)
        st[f"layers.{name}.1.bias"] = p["bias"]
    for k in range(n_branches):
        st[f"branches.{k}.1.weight"] = np.ascontiguousarray(ref["head"]["fc6"]["kernel"].T) + k
        st[f"branches.{k}.1.bias"] = ref["head"]["fc6"]["bias"] + k
    return st


def _assert_tree_equal(got, want):
    import jax

    assert jax.tree_util.tree_structure(got) == jax.tree_util.tree_structure(want)
    for g, w in zip(jax.tree_util.tree_leaves(got), jax.tree_util.tree_leaves(want)):
        assert np.shape(g) == np.shape(w)
        np.testing.assert_array_equal(np.asarray(g), np.asarray(w))


def test_mdnet_mat_roundtrip(tmp_path):
    sio = pytest.importorskip("scipy.io")
    from jtrack.weights.mdnet import load_mdnet

    ref = _reference_params()
    path = tmp_path / "mdnet_vot-otb.mat"
    sio.savemat(path, {"layers": _matconvnet_layers(ref)})
    _assert_tree_equal(load_mdnet(path), ref)


def test_vggm_mat_backbone_only(tmp_path):
    sio = pytest.importorskip("scipy.io")
    from jtrack.weights.mdnet import load_mdnet_mat

    ref = _reference_params(1)
    path = tmp_path / "imagenet-vgg-m.mat"
    sio.savemat(path, {"layers": _matconvnet_layers(ref, with_head=False)})
    got = load_mdnet_mat(path)
    assert set(got) == {"backbone"}
    _assert_tree_equal(got["backbone"], ref["backbone"])


@pytest.mark.parametrize("fmt", ["legacy", "zip"])
def test_pymdnet_pth_roundtrip(tmp_path, fmt):
    from jtrack.weights.mdnet import load_mdnet

    ref = _reference_params(2)
    path = write_pth(tmp_path / "mdnet.pth", _pymdnet_state(ref), fmt)
    _assert_tree_equal(load_mdnet(path, branch=0), ref)
    np.testing.assert_array_equal(load_mdnet(path, branch=1)["head"]["fc6"]["bias"],
                                  ref["head"]["fc6"]["bias"] + 1)


def test_pymdnet_shared_layers_checkpoint(tmp_path):
    """py-MDNet's own checkpoints: {'shared_layers': layers.state_dict()}."""
    from jtrack.weights.mdnet import load_mdnet_pth

    ref = _reference_params(3)
    st = {k.removeprefix("layers."): v for k, v in _pymdnet_state(ref).items()
          if k.startswith("layers.")}
    path = write_pth(tmp_path / "shared.pth", {"shared_layers": st})
    got = load_mdnet_pth(path)
    assert set(got["head"]) == {"fc4", "fc5"}  # no branch -> fc6 stays with init
    _assert_tree_equal(got["backbone"], ref["backbone"])


def test_fc4_permutation_is_functional(tmp_path):
    """py-MDNet's fc4 on a CHW-flattened conv3 map == jtrack's fc4 on the HWC
    flattening, after loading (checks the permutation, not just a round trip)."""
    from jtrack.weights.mdnet import load_mdnet_pth

    ref = _reference_params(4)
    st = _pymdnet_state(ref)
    rng = np.random.default_rng(0)
    st["layers.fc4.1.weight"] = rng.standard_normal((512, 4608)).astype(np.float32)
    path = write_pth(tmp_path / "m.pth", st)
    fc4 = load_mdnet_pth(path)["head"]["fc4"]
    fmap = rng.standard_normal((3, 3, 512)).astype(np.float32)  # (H, W, C)
    torch_out = st["layers.fc4.1.weight"] @ fmap.transpose(2, 0, 1).ravel()
    np.testing.assert_allclose(fmap.ravel() @ fc4["kernel"], torch_out, rtol=1e-4, atol=1e-3)


def test_conv_layout_is_functional(tmp_path):
    """torch OIHW conv1 (cross-correlation) == jtrack's VGGM conv1 after loading."""
    import jax
    import jax.numpy as jnp

    from jtrack.weights.mdnet import load_mdnet_pth

    st = _pymdnet_state(_reference_params(5))
    path = write_pth(tmp_path / "m.pth", st)
    conv1 = load_mdnet_pth(path)["backbone"]["conv1"]
    x = np.random.default_rng(1).standard_normal((1, 9, 11, 3)).astype(np.float32)
    y = jax.lax.conv_general_dilated(jnp.asarray(x), conv1["kernel"], (2, 2), "VALID",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    w = st["layers.conv1.0.weight"]  # (96, 3, 7, 7)
    i, j = 1, 2  # output cell -> input patch rows 2..8, cols 4..10
    patch = x[0, 2 * i:2 * i + 7, 2 * j:2 * j + 7, :].transpose(2, 0, 1)  # (C, kh, kw)
    np.testing.assert_allclose(np.asarray(y[0, i, j]), np.einsum("ochw,chw->o", w, patch),
                               rtol=1e-4, atol=1e-3)


def test_mdnet_errors_name_the_layer(tmp_path):
    sio = pytest.importorskip("scipy.io")
    from jtrack.weights.mdnet import load_mdnet

    ref = _reference_params(6)
    st = _pymdnet_state(ref)
    del st["layers.conv2.0.weight"]
    with pytest.raises(WeightFileError, match="layers.conv2.0.weight"):
        load_mdnet(write_pth(tmp_path / "a.pth", st))
    st = _pymdnet_state(ref)
    st["layers.fc5.1.weight"] = st["layers.fc5.1.weight"][:, :100]
    with pytest.raises(WeightFileError, match="fc5"):
        load_mdnet(write_pth(tmp_path / "b.pth", st))
    bad = dict(ref, backbone=dict(ref["backbone"]))
    bad["backbone"]["conv3"] = {"kernel": ref["backbone"]["conv3"]["kernel"][:, :, :, :7],
                                "bias": ref["backbone"]["conv3"]["bias"]}
    sio.savemat(tmp_path / "c.mat", {"layers": _matconvnet_layers(bad)})
    with pytest.raises(WeightFileError, match="conv3"):
        load_mdnet(tmp_path / "c.mat")
    with pytest.raises(FileNotFoundError, match="nothere.mat"):
        load_mdnet(tmp_path / "nothere.mat")


def test_merge_into_init_params(tmp_path):
    from jtrack.nets import VGGM, head_logits
    from jtrack.weights.mdnet import load_mdnet_pth, merge_params

    ref = _reference_params(7)
    fresh = _reference_params(8)
    st = {k: v for k, v in _pymdnet_state(ref).items() if not k.startswith("branches")}
    merged = merge_params(fresh, load_mdnet_pth(write_pth(tmp_path / "m.pth", st)))
    np.testing.assert_array_equal(merged["head"]["fc6"]["kernel"], fresh["head"]["fc6"]["kernel"])
    np.testing.assert_array_equal(merged["backbone"]["conv2"]["kernel"],
                                  ref["backbone"]["conv2"]["kernel"])
    fmap = VGGM().apply({"params": merged["backbone"]}, np.zeros((107, 107, 3), np.float32))
    assert fmap.shape == (3, 3, 512)
    assert head_logits(merged["head"], fmap.reshape(1, -1)).shape == (1, 2)
    with pytest.raises(WeightFileError, match="conv9"):
        merge_params(fresh, {"backbone": {"conv9": {}}})
