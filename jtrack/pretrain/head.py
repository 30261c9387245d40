"""Export the pretrained fc4/fc5 and load them into the online tracker.

The export is one ``.npz`` (written atomically) with the shared layers only:
``fc4/kernel``, ``fc4/bias``, ``fc5/kernel``, ``fc5/bias`` (and
``backbone/...`` leaves when the backbone was trained) plus the geometry they
were trained for (backbone, roi_size, feature_norm, hidden). The per-domain
fc6 branches are not exported: like MDNet, the tracker starts every sequence
with a fresh random fc6.
"""

from __future__ import annotations

import io
import json
import os
import tempfile

import jax
import numpy as np

from jtrack import nets
from jtrack.config import TrackerConfig
from jtrack.pretrain.config import PretrainConfig
from jtrack.tracker import feature_dim, init_params

_META = "__meta__"


def _geometry(tc: TrackerConfig) -> dict:
    return {"backbone": tc.backbone, "roi_size": tc.roi_size,
            "roi_sampling": tc.roi_sampling, "feature_norm": tc.feature_norm,
            "hidden": tc.hidden, "feature_dim": feature_dim(tc)}


def _flatten(tree, prefix: str) -> dict[str, np.ndarray]:
    out = {}
    for path, leaf in jax.tree_util.tree_leaves_with_path(tree):
        name = "/".join(str(getattr(p, "key", p)) for p in path)
        out[f"{prefix}/{name}"] = np.asarray(leaf)
    return out


def _unflatten(arrays: dict[str, np.ndarray], prefix: str) -> dict:
    tree: dict = {}
    for name, a in arrays.items():
        parts = name.split("/")
        if parts[0] != prefix:
            continue
        node = tree
        for p in parts[1:-1]:
            node = node.setdefault(p, {})
        node[parts[-1]] = a
    return tree


def save_head(path: str, config: PretrainConfig, params: dict, extra: dict | None = None
              ) -> None:
    """Write fc4/fc5 (and a trained backbone) of pretraining ``params`` to ``path``."""
    arrays = {**_flatten({"fc4": params["fc4"], "fc5": params["fc5"]}, "head")}
    if "backbone" in params:
        arrays.update(_flatten(params["backbone"], "backbone"))
    meta = {**_geometry(config.tracker), **(extra or {})}
    arrays[_META] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    with os.fdopen(fd, "wb") as f:  # atomic: readers never see half a file
        f.write(buf.getvalue())
    os.replace(tmp, path)


def read_head(path: str) -> tuple[dict, dict | None, dict]:
    """(head {'fc4', 'fc5'}, backbone params or None, metadata) from ``path``."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"pretrained head file not found: {path}")
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    if _META not in arrays:
        raise ValueError(f"{path}: not a jtrack pretrained head (no metadata)")
    meta = json.loads(arrays.pop(_META).tobytes().decode())
    head = _unflatten(arrays, "head")
    for layer in ("fc4", "fc5"):
        if set(head.get(layer, {})) != {"kernel", "bias"}:
            raise ValueError(f"{path}: layer {layer} missing or incomplete "
                             f"(have {sorted(head.get(layer, {}))})")
    backbone = _unflatten(arrays, "backbone") or None
    return head, backbone, meta


def load_head(path: str, config: TrackerConfig, key: jax.Array) -> dict:
    """Tracker head ``{'fc4', 'fc5', 'fc6'}``: pretrained fc4/fc5 from ``path``
    and a fresh random fc6 (from ``key``). Raises ``ValueError`` when the file
    was trained for another backbone / RoI size / feature normalisation /
    head width than ``config``."""
    head, _, meta = read_head(path)
    want = _geometry(config)
    diff = {k: (meta.get(k), v) for k, v in want.items() if meta.get(k) != v}
    if diff:
        raise ValueError(f"{path} was pretrained for a different network: " + ", ".join(
            f"{k} {got!r} in the file vs {exp!r} in the config" for k, (got, exp) in diff.items()))
    fresh = nets.init_head(key, feature_dim(config), config.hidden)
    for layer in ("fc4", "fc5"):
        for leaf in ("kernel", "bias"):
            if head[layer][leaf].shape != fresh[layer][leaf].shape:
                raise ValueError(f"{path}: {layer}/{leaf} has shape {head[layer][leaf].shape}, "
                                 f"expected {fresh[layer][leaf].shape}")
    return {"fc4": jax.tree.map(np.asarray, head["fc4"]),
            "fc5": jax.tree.map(np.asarray, head["fc5"]), "fc6": fresh["fc6"]}


def load_params(path: str, config: TrackerConfig, key: jax.Array) -> dict:
    """``{'backbone', 'head'}`` for :func:`jtrack.init`: :func:`jtrack.init_params`
    with the head (and a trained backbone, if the file has one) from ``path``."""
    kp, kh = jax.random.split(key)
    params = init_params(config, kp)
    _, backbone, _ = read_head(path)
    if backbone is not None:
        want = jax.tree.map(np.shape, params["backbone"])
        got = jax.tree.map(np.shape, backbone)
        if want != got:
            raise ValueError(f"{path}: backbone parameters do not match backbone "
                             f"{config.backbone!r}")
        params["backbone"] = backbone
    params["head"] = load_head(path, config, kh)
    return params
