"""Read the parameter layers of a MatConvNet ``.mat`` network.

MatConvNet (``imagenet-vgg-m.mat``, MDNet's ``mdnet_vot-otb.mat``) stores
``layers`` as a cell array of structs with ``name`` and ``weights`` (a cell
``{filters, biases}``; very old files use ``filters``/``biases`` fields).
Filters are ``(H, W, in, out)``, i.e. already flax's HWIO. Needs scipy
(imported lazily; ``pip install jtrack[pretrained]``).
"""

from __future__ import annotations

import os

import numpy as np

from jtrack.weights.torch_pickle import WeightFileError


def _loadmat(path: str) -> dict:
    try:
        import scipy.io
    except ImportError as e:
        raise ImportError("reading .mat files needs scipy: pip install jtrack[pretrained]") from e
    if not os.path.isfile(path):
        raise FileNotFoundError(f"weight file not found: {path}")
    try:
        # squeeze_me drops MATLAB's singleton dims; callers restore them from
        # the expected shapes (see jtrack.weights.mdnet).
        return scipy.io.loadmat(path, squeeze_me=True, struct_as_record=False)
    except NotImplementedError as e:  # MATLAB v7.3 = HDF5
        raise WeightFileError(f"{path}: MATLAB v7.3 (HDF5) files are not supported; "
                              "re-save with save(..., '-v7')") from e
    except Exception as e:  # scipy raises assorted errors on corrupt files
        raise WeightFileError(f"{path}: not a readable .mat file ({e})") from e


def _field(s, name):
    return getattr(s, name, None) if not isinstance(s, dict) else s.get(name)


def read_matconvnet_layers(path: str | os.PathLike) -> dict[str, list[np.ndarray]]:
    """``{layer name: [filters, biases]}`` for layers with parameters, in file
    order (arrays squeezed). Unnamed layers are called ``layer<index>``."""
    path = os.fspath(path)
    mat = _loadmat(path)
    layers = mat.get("layers")
    if layers is None and "net" in mat:
        layers = _field(mat["net"], "layers")
    if layers is None:
        raise WeightFileError(f"{path}: no 'layers' variable (not a MatConvNet network)")
    layers = np.atleast_1d(np.asarray(layers, dtype=object)).ravel()
    out: dict[str, list[np.ndarray]] = {}
    for i, layer in enumerate(layers):
        name = _field(layer, "name")
        name = str(name) if isinstance(name, str) and name else f"layer{i}"
        weights = _field(layer, "weights")
        if weights is None and _field(layer, "filters") is not None:
            weights = [_field(layer, "filters"), _field(layer, "biases")]
        if weights is None:
            continue
        weights = [np.asarray(w) for w in np.atleast_1d(np.asarray(weights, dtype=object)).ravel()
                   if w is not None and np.size(w) > 0]
        if weights:
            out[name] = weights
    if not out:
        raise WeightFileError(f"{path}: no layer with weights found")
    return out
