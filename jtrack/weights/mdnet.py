"""MDNet / VGG-M weights into jtrack's parameter pytree.

Target layout (as produced by ``jtrack.nets.VGGM`` and ``jtrack.nets.Head``)::

    {'backbone': {'conv1': {'kernel': (7, 7, 3, 96),    'bias': (96,)},
                  'conv2': {'kernel': (5, 5, 96, 256),  'bias': (256,)},
                  'conv3': {'kernel': (3, 3, 256, 512), 'bias': (512,)}},
     'head': {'fc4': {'kernel': (4608, 512), 'bias': (512,)},
              'fc5': {'kernel': (512, 512),  'bias': (512,)},
              'fc6': {'kernel': (512, 2),    'bias': (2,)}}}

jtrack's fc4 input is the RoIAlign-pooled ``(3, 3, 512)`` map flattened in
HWC order. Sources:

* MatConvNet ``imagenet-vgg-m.mat`` (conv1-3 only used) and MDNet's
  ``mdnet_vot-otb.mat`` (fc4 is a 3x3x512x512 conv = HWC order already).
* py-MDNet ``.pth``: ``layers.convN.0.*``, ``layers.fc4.1.*``,
  ``layers.fc5.1.*``, ``branches.K.1.*`` (or ``{'shared_layers': ...}``);
  torch Linear fc4 flattens conv3's output in CHW order, so it is permuted.

Only the layers in the file are returned: ``head`` appears when fc4 does,
``fc6`` only when present (MDNet re-learns fc6 on every sequence anyway).
Overlay the result on freshly initialised params with :func:`merge_params`.
"""

from __future__ import annotations

import os
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jtrack.weights.matconvnet import read_matconvnet_layers
from jtrack.weights.torch_pickle import WeightFileError, load_state_dict

Params = Any
ROI = 3  # py-MDNet / MDNet fc4 sees a 3x3 conv3 map


def expected_shapes(hidden: int = 512) -> dict[str, dict[str, tuple[int, ...]]]:
    """Per-layer shapes from jtrack's own modules: ``{'conv1': {'kernel': ...}}``."""
    from jtrack.nets import VGGM, Head

    bb = jax.eval_shape(VGGM().init, jax.random.key(0), jnp.zeros((107, 107, 3)))["params"]
    c = bb["conv3"]["kernel"].shape[-1]
    hd = jax.eval_shape(Head(hidden).init, jax.random.key(0),
                        jnp.zeros((1, ROI * ROI * c)))["params"]
    return {k: {n: tuple(a.shape) for n, a in v.items()} for k, v in {**bb, **hd}.items()}


def _fit(a: np.ndarray, shape: tuple[int, ...], what: str) -> np.ndarray:
    """Check ``a`` against ``shape`` up to singleton dims (MATLAB squeezes
    them), then reshape; error names the layer."""
    a = np.asarray(a)
    if tuple(d for d in a.shape if d != 1) != tuple(d for d in shape if d != 1):
        raise WeightFileError(f"{what} has shape {a.shape}, expected {shape}")
    return a.reshape(shape).astype(np.float32)


def _split(layers: dict[str, dict[str, np.ndarray]]) -> Params:
    out: Params = {"backbone": {k: layers[k] for k in ("conv1", "conv2", "conv3")}}
    head = {k: layers[k] for k in ("fc4", "fc5", "fc6") if k in layers}
    if head:
        out["head"] = head
    return out


def load_mdnet_mat(path: str | os.PathLike) -> Params:
    """MatConvNet ``.mat`` (VGG-M or MDNet) -> partial jtrack params."""
    path = os.fspath(path)
    mat = read_matconvnet_layers(path)
    hidden = int(np.shape(mat["fc5"][0])[-1]) if "fc5" in mat and mat["fc5"] else 512
    shapes = expected_shapes(hidden)
    wanted = ["conv1", "conv2", "conv3"] + (["fc4", "fc5"] if "fc4" in mat else [])
    wanted += ["fc6"] if "fc4" in mat and "fc6" in mat else []
    layers = {}
    for name in wanted:
        if name not in mat:
            raise WeightFileError(f"{path}: missing layer {name!r} (layers: {sorted(mat)})")
        if len(mat[name]) != 2:
            raise WeightFileError(f"{path}: layer {name!r} should hold filters and biases")
        w, b = mat[name]
        s = shapes[name]
        if name.startswith("fc"):  # 3x3 / 1x1 conv filters -> Dense (in, out)
            cin = s["kernel"][0] // (ROI * ROI if name == "fc4" else 1)
            k = ROI if name == "fc4" else 1
            w = _fit(w, (k, k, cin, s["kernel"][1]), f"{path}: layer {name!r} filters")
            w = w.reshape(s["kernel"])  # HWC-major rows = jtrack's RoI flattening
        layers[name] = {"kernel": _fit(w, s["kernel"], f"{path}: layer {name!r} filters"),
                        "bias": _fit(b, s["bias"], f"{path}: layer {name!r} biases")}
    return _split(layers)


def _pth_layers(state: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Normalise key prefixes to py-MDNet's ``layers.*`` / ``branches.*``."""
    out = {}
    for k, v in state.items():
        k = k.removeprefix("module.")
        if k.startswith("shared_layers."):
            k = "layers." + k.removeprefix("shared_layers.")
        elif k.split(".")[0] in ("conv1", "conv2", "conv3", "fc4", "fc5"):
            k = "layers." + k
        out[k] = v
    return out


def load_mdnet_pth(path: str | os.PathLike, branch: int = 0) -> Params:
    """py-MDNet ``.pth`` -> partial jtrack params (``branches.<branch>`` as fc6)."""
    path = os.fspath(path)
    state = _pth_layers(load_state_dict(path))

    def get(key):
        if key not in state:
            raise WeightFileError(f"{path}: missing tensor {key!r}")
        return state[key]

    hidden = int(np.shape(state["layers.fc5.1.weight"])[0]) if "layers.fc5.1.weight" in state else 512
    shapes = expected_shapes(hidden)
    layers = {}
    for name in ("conv1", "conv2", "conv3"):
        w = get(f"layers.{name}.0.weight")  # (O, I, kh, kw)
        kh, kw, cin, cout = shapes[name]["kernel"]
        w = _fit(w, (cout, cin, kh, kw), f"{path}: layers.{name}.0.weight")
        layers[name] = {"kernel": w.transpose(2, 3, 1, 0),
                        "bias": _fit(get(f"layers.{name}.0.bias"), shapes[name]["bias"],
                                     f"{path}: layers.{name}.0.bias")}
    src = {"fc4": "layers.fc4.1", "fc5": "layers.fc5.1", "fc6": f"branches.{branch}.1"}
    have_head = f"{src['fc4']}.weight" in state
    for name in ("fc4", "fc5", "fc6") if have_head else ():
        if name == "fc6" and f"{src[name]}.weight" not in state:
            continue  # shared layers only
        din, dout = shapes[name]["kernel"]
        w = _fit(get(f"{src[name]}.weight"), (dout, din), f"{path}: {src[name]}.weight")
        if name == "fc4":  # torch flattens conv3 as (C, H, W); jtrack as (H, W, C)
            c = din // (ROI * ROI)
            w = w.reshape(dout, c, ROI, ROI).transpose(0, 2, 3, 1).reshape(dout, din)
        layers[name] = {"kernel": np.ascontiguousarray(w.T),
                        "bias": _fit(get(f"{src[name]}.bias"), (dout,), f"{path}: {src[name]}.bias")}
    return _split(layers)


def load_mdnet(path: str | os.PathLike, branch: int = 0) -> Params:
    """Dispatch on the extension: ``.mat`` (MatConvNet) or ``.pth``/``.pt``."""
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext == ".mat":
        return load_mdnet_mat(path)
    if ext in (".pth", ".pt"):
        return load_mdnet_pth(path, branch)
    raise WeightFileError(f"{os.fspath(path)}: unknown weight file type {ext!r} (.mat or .pth)")


def merge_params(base: Params, loaded: Params, where: str = "") -> Params:
    """``base`` with every leaf present in ``loaded`` replaced (as jnp);
    shapes must match, names must exist in ``base``."""
    if not isinstance(loaded, dict):
        if np.shape(loaded) != np.shape(base):
            raise WeightFileError(f"{where or 'params'}: shape {np.shape(loaded)} "
                                  f"does not fit {np.shape(base)}")
        return jnp.asarray(loaded, dtype=jnp.asarray(base).dtype)
    if not isinstance(base, dict):
        raise WeightFileError(f"{where}: unexpected subtree")
    out = dict(base)
    for k, v in loaded.items():
        if k not in base:
            raise WeightFileError(f"unexpected layer {where + k!r}")
        out[k] = merge_params(base[k], v, f"{where}{k}/")
    return out
