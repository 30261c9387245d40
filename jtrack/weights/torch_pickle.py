"""Read PyTorch ``.pth`` files without torch.

Both serialisations written by ``torch.save`` are supported:

* **zip** (torch >= 1.6): a zip archive ``<name>/data.pkl`` (the pickled
  object), ``<name>/data/<key>`` (one raw storage per key) and optionally
  ``<name>/byteorder``.
* **legacy** (``_use_new_zipfile_serialization=False`` and torch < 1.6):
  back-to-back pickles ``magic number, protocol version, sys info, object,
  sorted storage keys``, then per key an int64 element count and the raw
  storage bytes.

In both, tensors are pickled as ``torch._utils._rebuild_tensor_v2(storage,
offset, size, stride, ...)`` and storages by *persistent id*
``('storage', <torch.XStorage>, key, location, numel[, view_metadata])``.
The unpickler below only resolves that handful of globals (anything else
raises), maps storages onto numpy and returns tensors as ``np.ndarray``.
"""

from __future__ import annotations

import collections
import io
import os
import pickle
import struct
import zipfile
from typing import Any

import numpy as np

LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
LEGACY_PROTOCOL = 1001


class WeightFileError(ValueError):
    """A weight file is corrupt, truncated, or not in the expected layout."""


def _bfloat16():
    import ml_dtypes  # shipped with jax; numpy has no bfloat16

    return np.dtype(ml_dtypes.bfloat16)


# torch storage class name -> numpy dtype (little-endian).
_STORAGE_DTYPES: dict[str, Any] = {
    "FloatStorage": "<f4",
    "DoubleStorage": "<f8",
    "HalfStorage": "<f2",
    "BFloat16Storage": _bfloat16,
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
    "UntypedStorage": "u1",
}


class _StorageType:
    """Stand-in for a ``torch.XStorage`` class: just its dtype."""

    def __init__(self, name: str):
        spec = _STORAGE_DTYPES[name]
        self.name = name
        self.dtype = np.dtype(spec() if callable(spec) else spec)


class _StorageRef:
    """A storage named by a persistent id; ``data`` is filled in later for
    legacy files (the bytes come after the pickle)."""

    def __init__(self, stype: _StorageType, key: str, numel: int):
        self.stype, self.key, self.numel = stype, key, int(numel)
        self.data: np.ndarray | None = None


class _View:
    """Legacy storage view ``(root, offset, numel)`` (pre-1.0 torch)."""

    def __init__(self, root: _StorageRef, offset: int, numel: int):
        self.root, self.offset, self.numel = root, int(offset), int(numel)
        self.stype = root.stype


class _LazyTensor:
    """A tensor whose storage may not be read yet."""

    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset = storage, int(offset)
        self.size, self.stride = tuple(int(s) for s in size), tuple(int(s) for s in stride)


def _rebuild_tensor_v2(storage, offset, size, stride, *_unused):
    return _LazyTensor(storage, offset, size, stride)


def _rebuild_tensor(storage, offset, size, stride):
    return _LazyTensor(storage, offset, size, stride)


def _rebuild_parameter(data, *_unused):
    return data  # nn.Parameter -> its tensor


_ALLOWED_FUNCS = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
}


class _Unpickler(pickle.Unpickler):
    """Resolves only the globals a state dict needs; storages via ids."""

    def __init__(self, file, path: str, storages: dict[str, _StorageRef]):
        super().__init__(file)
        self._path, self._storages = path, storages

    def find_class(self, module: str, name: str):
        if (module, name) in _ALLOWED_FUNCS:
            return _ALLOWED_FUNCS[(module, name)]
        if module in ("torch", "torch.cuda") and name in _STORAGE_DTYPES:
            return _StorageType(name)
        raise WeightFileError(
            f"{self._path}: refusing to load global {module}.{name} "
            "(only tensors, storages and OrderedDict are allowed)")

    def persistent_load(self, pid):
        if not (isinstance(pid, tuple) and len(pid) >= 5 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"{self._path}: unknown persistent id {pid!r}")
        stype, key, numel = pid[1], str(pid[2]), pid[4]
        if not isinstance(stype, _StorageType):
            raise pickle.UnpicklingError(f"{self._path}: bad storage type {stype!r}")
        ref = self._storages.setdefault(key, _StorageRef(stype, key, numel))
        view = pid[5] if len(pid) > 5 else None
        if view is not None:  # (view_key, offset, view_numel)
            return _View(ref, view[1], view[2])
        return ref


def _materialise(obj: Any, path: str) -> Any:
    """Replace every ``_LazyTensor`` in a nested container by an ndarray."""
    if isinstance(obj, _LazyTensor):
        return _tensor_to_numpy(obj, path)
    if isinstance(obj, dict):
        out = type(obj)() if isinstance(obj, collections.OrderedDict) else {}
        for k, v in obj.items():
            out[k] = _materialise(v, path)
        return out
    if isinstance(obj, (list, tuple)):
        return type(obj)(_materialise(v, path) for v in obj)
    return obj


def _tensor_to_numpy(t: _LazyTensor, path: str) -> np.ndarray:
    st = t.storage
    base_offset = 0
    if isinstance(st, _View):
        base_offset, numel, st = st.offset, st.numel, st.root
    else:
        numel = st.numel
    if st.data is None:
        raise WeightFileError(f"{path}: storage {st.key!r} has no data (truncated file?)")
    if len(t.size) != len(t.stride):
        raise WeightFileError(f"{path}: tensor size {t.size} and stride {t.stride} disagree")
    if any(s == 0 for s in t.size):
        return np.zeros(t.size, st.data.dtype)
    last = t.offset + sum((n - 1) * s for n, s in zip(t.size, t.stride))
    if t.offset < 0 or last >= numel or min(t.stride, default=0) < 0:
        raise WeightFileError(
            f"{path}: tensor of size {t.size} stride {t.stride} offset {t.offset} "
            f"overruns its storage of {numel} elements")
    flat = st.data[base_offset:base_offset + numel]
    item = flat.dtype.itemsize
    arr = np.lib.stride_tricks.as_strided(
        flat[t.offset:], shape=t.size, strides=tuple(s * item for s in t.stride))
    return np.array(arr, dtype=flat.dtype.newbyteorder("="))  # own, native order


def _load_pickle(data: bytes | io.BufferedIOBase, path: str,
                 storages: dict[str, _StorageRef]) -> Any:
    f = io.BytesIO(data) if isinstance(data, bytes) else data
    return _Unpickler(f, path, storages).load()


def _read_zip(path: str) -> Any:
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        pkl = [n for n in names if n.endswith("data.pkl")]
        if not pkl:
            raise WeightFileError(f"{path}: zip archive has no data.pkl (not a torch file)")
        prefix = pkl[0][: -len("data.pkl")]
        order = "little"
        if prefix + "byteorder" in names:
            order = zf.read(prefix + "byteorder").decode().strip()
        storages: dict[str, _StorageRef] = {}
        obj = _load_pickle(zf.read(pkl[0]), path, storages)
        for key, ref in storages.items():
            name = f"{prefix}data/{key}"
            if name not in names:
                raise WeightFileError(f"{path}: missing storage record {name!r}")
            raw = zf.read(name)
            dtype = ref.stype.dtype.newbyteorder("<" if order == "little" else ">")
            need = ref.numel * dtype.itemsize
            if len(raw) < need:
                raise WeightFileError(
                    f"{path}: storage {key!r} has {len(raw)} bytes, expected {need}")
            ref.data = np.frombuffer(raw, dtype, count=ref.numel)
    return obj


def _read_legacy(path: str, f) -> Any:
    try:
        magic = _Unpickler(f, path, {}).load()
    except Exception as e:
        raise WeightFileError(f"{path}: not a PyTorch file ({e})") from e
    if magic != LEGACY_MAGIC:
        raise WeightFileError(f"{path}: not a PyTorch file (bad magic number)")
    try:
        version = _Unpickler(f, path, {}).load()
        sys_info = _Unpickler(f, path, {}).load()
        if version != LEGACY_PROTOCOL:
            raise WeightFileError(f"{path}: unsupported legacy protocol {version}")
        storages: dict[str, _StorageRef] = {}
        obj = _Unpickler(f, path, storages).load()
        keys = _Unpickler(f, path, {}).load()
    except WeightFileError:
        raise
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, struct.error) as e:
        raise WeightFileError(f"{path}: truncated or corrupt ({e})") from e
    little = bool(sys_info.get("little_endian", True)) if isinstance(sys_info, dict) else True
    for key in keys:
        ref = storages.get(str(key))
        head = f.read(8)
        if len(head) < 8:
            raise WeightFileError(f"{path}: truncated before storage {key!r}")
        (count,) = struct.unpack("<q" if little else ">q", head)
        if ref is None:
            raise WeightFileError(f"{path}: storage {key!r} not referenced by any tensor")
        dtype = ref.stype.dtype.newbyteorder("<" if little else ">")
        raw = f.read(count * dtype.itemsize)
        if count < ref.numel or len(raw) < count * dtype.itemsize:
            raise WeightFileError(
                f"{path}: truncated in storage {key!r} ({len(raw)} of "
                f"{count * dtype.itemsize} bytes)")
        ref.data = np.frombuffer(raw, dtype, count=count)
    return obj


def read_pth(path: str | os.PathLike) -> Any:
    """Load a ``.pth`` file; tensors become ``np.ndarray`` (native byte order).

    Returns the pickled object (usually an ``OrderedDict`` state dict, or a
    dict of them). Raises ``FileNotFoundError`` for a missing file and
    :class:`WeightFileError` (a ``ValueError``) naming the path for anything
    corrupt, truncated, or containing globals other than tensors/storages.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weight file not found: {path}")
    with open(path, "rb") as f:
        head = f.read(4)
    if head == b"PK\x03\x04" or zipfile.is_zipfile(path):
        try:
            obj = _read_zip(path)
        except (zipfile.BadZipFile, EOFError, pickle.UnpicklingError, KeyError) as e:
            raise WeightFileError(f"{path}: truncated or corrupt zip ({e})") from e
    else:
        with open(path, "rb") as f:
            obj = _read_legacy(path, f)
    return _materialise(obj, path)


def flatten_state(obj: Any, prefix: str = "") -> dict[str, np.ndarray]:
    """Nested dicts of arrays -> ``{'a.b.c': array}``; non-array leaves
    (epoch counters, option dicts' scalars) are dropped."""
    out: dict[str, np.ndarray] = {}
    if isinstance(obj, np.ndarray):
        out[prefix] = obj
    elif isinstance(obj, dict):
        for k, v in obj.items():
            out.update(flatten_state(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def load_state_dict(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """``read_pth`` then :func:`flatten_state`: ``{'layer.weight': array}``."""
    state = flatten_state(read_pth(path))
    if not state:
        raise WeightFileError(f"{os.fspath(path)}: contains no tensors")
    return state
