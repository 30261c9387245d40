"""Export the pretrained head and load it into the online tracker.

The export is one ``.npz`` (written atomically): the shared ``fc4``/``fc5``,
``fc6`` = the mean of the per-domain fc6 branches (a generic
target-vs-background layer; :func:`load_head` can ignore it and draw a fresh
random fc6, as MDNet does), ``backbone/...`` leaves when the backbone was
trained, and the geometry they were trained for (backbone, RoI pooling,
feature normalisation, head width, search region). :func:`write_manifest`
describes a file for shipping (:mod:`jtrack.weights.shipped`).
"""

from __future__ import annotations

import hashlib
import io
import json
import os

import jax
import numpy as np

from jtrack import nets
from jtrack.config import TrackerConfig
from jtrack.data.results import atomic_write_bytes
from jtrack.pretrain.config import PretrainConfig
from jtrack.tracker import feature_dim, first_frame_iters, init_params

_META = "__meta__"


def geometry(tc: TrackerConfig) -> dict:
    """The TrackerConfig fields a head is tied to: the features it was trained
    on (backbone, pooling, normalisation, pixels per target) and its width."""
    return {"backbone": tc.backbone, "roi_size": tc.roi_size,
            "roi_sampling": tc.roi_sampling, "feature_norm": tc.feature_norm,
            "hidden": tc.hidden, "feature_dim": feature_dim(tc),
            "region_size": tc.region_size, "region_scale": tc.region_scale}


def arrays_sha256(path: str) -> str:
    """sha256 over a head file's arrays (name, dtype, shape, bytes; sorted by
    name; the metadata entry excluded): equal for equal weights, whatever
    the zip container's timestamps."""
    h = hashlib.sha256()
    with np.load(path) as z:
        for name in sorted(z.files):
            if name == _META:
                continue
            a = np.ascontiguousarray(z[name])
            h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
            h.update(a.tobytes())
    return h.hexdigest()


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
    """Write fc4/fc5 (and a trained backbone) of pretraining ``params`` to
    ``path``, with the mean of the per-domain fc6 branches as ``fc6``: a
    generic target-vs-background layer a tracker may start from."""
    fc6 = jax.tree.map(lambda a: np.asarray(a).mean(axis=0), params["fc6"])
    trees = {"head": {"fc4": params["fc4"], "fc5": params["fc5"], "fc6": fc6}}
    if "backbone" in params:
        trees["backbone"] = params["backbone"]
    write_head_file(path, trees, {**geometry(config.tracker), **(extra or {})})


def write_head_file(path: str, trees: dict, meta: dict) -> None:
    """Write ``trees`` ({prefix: params}, e.g. ``head``, ``head_lr``,
    ``backbone``) and the JSON ``meta`` as one ``.npz``, atomically."""
    arrays = {}
    for prefix, tree in trees.items():
        arrays.update(_flatten(tree, prefix))
    arrays[_META] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    atomic_write_bytes(path, buf.getvalue())  # readers never see half a file


def write_manifest(head_path: str, manifest_path: str, command: str, extra: dict) -> dict:
    """Write the JSON manifest of a head file (atomically) and return it: the
    command that built it, the TrackerConfig fields a loader must match
    (``must_match``), the file's metadata (domains, frames, steps, seeds,
    final metrics), the sha256 of its arrays and the jtrack version."""
    import jtrack

    _, backbone, meta = read_head(head_path)
    man = {"file": os.path.basename(head_path), "command": command,
           "jtrack_version": jtrack.__version__,
           "sha256": arrays_sha256(head_path),
           "must_match": {k: meta[k] for k in (*geometry(TrackerConfig()), "iters_init")
                          if k != "feature_dim" and k in meta},
           "backbone_trained": backbone is not None,
           **{k: v for k, v in meta.items() if k not in geometry(TrackerConfig())},
           **extra}
    atomic_write_bytes(manifest_path, (json.dumps(man, indent=1) + "\n").encode())
    return man


def read_head(path: str) -> tuple[dict, dict | None, dict]:
    """(head {'fc4', 'fc5'}, backbone params or None, metadata) from ``path``."""
    arrays, meta = _read(path)
    head = _unflatten(arrays, "head")
    for layer in ("fc4", "fc5"):
        if set(head.get(layer, {})) != {"kernel", "bias"}:
            raise ValueError(f"{path}: layer {layer} missing or incomplete "
                             f"(have {sorted(head.get(layer, {}))})")
    backbone = _unflatten(arrays, "backbone") or None
    return head, backbone, meta


def read_rates(path: str) -> dict | None:
    """The per-element first-frame rates of a meta-learned head
    (:mod:`jtrack.meta`), or None for a pretrained head."""
    return _unflatten(_read(path)[0], "head_lr") or None


def _read(path: str) -> tuple[dict, dict]:
    if not os.path.isfile(path):
        raise FileNotFoundError(f"pretrained head file not found: {path}")
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    if _META not in arrays:
        raise ValueError(f"{path}: not a jtrack pretrained head (no metadata)")
    return arrays, json.loads(arrays.pop(_META).tobytes().decode())


def load_head(path: str, config: TrackerConfig, key: jax.Array, fc6: str = "file") -> dict:
    """Tracker head ``{'fc4', 'fc5', 'fc6'}``: pretrained fc4/fc5 from ``path``;
    fc6 from the file (``fc6="file"``: the mean of the pretraining branches,
    when the file has one) or fresh random from ``key`` (``"random"``, as
    MDNet). Raises ``ValueError`` when the file was trained for another
    backbone / RoI size / feature normalisation / head width / region
    geometry than ``config``."""
    if fc6 not in ("file", "random"):
        raise ValueError(f"fc6 must be 'file' or 'random', got {fc6!r}")
    head, _, meta = read_head(path)
    want = geometry(config)
    # Files written before region_size/region_scale were recorded skip those.
    diff = {k: (meta.get(k), v) for k, v in want.items() if k in meta and meta[k] != v}
    if diff:
        raise ValueError(f"{path} was pretrained for a different network: " + ", ".join(
            f"{k} {got!r} in the file vs {exp!r} in the config" for k, (got, exp) in diff.items()))
    fresh = nets.init_head(key, feature_dim(config), config.hidden)
    layers = ("fc4", "fc5", "fc6") if fc6 == "file" and "fc6" in head else ("fc4", "fc5")
    for layer in layers:
        for leaf in ("kernel", "bias"):
            if head[layer][leaf].shape != fresh[layer][leaf].shape:
                raise ValueError(f"{path}: {layer}/{leaf} has shape {head[layer][leaf].shape}, "
                                 f"expected {fresh[layer][leaf].shape}")
    return {**fresh, **{layer: jax.tree.map(np.asarray, head[layer]) for layer in layers}}


def load_params(path: str, config: TrackerConfig, key: jax.Array, fc6: str = "file") -> dict:
    """``{'backbone', 'head'}`` for :func:`jtrack.init`: :func:`jtrack.init_params`
    with the head (:func:`load_head`) and the trained backbone blocks, if the
    file has any, from ``path``; plus ``head_lr`` for a meta-learned head (its
    first-frame rates, learned for ``iters_init`` steps: the config must run
    as many on the first frame, :func:`jtrack.tracker.first_frame_iters`;
    iterations it defers to the next frames run at the online rates)."""
    kp, kh = jax.random.split(key)
    params = init_params(config, kp, head="random")
    _, backbone, _ = read_head(path)
    if backbone is not None:  # all of the trunk, or the blocks that were trained
        known = params["backbone"]
        unknown = sorted(set(backbone) - set(known))
        if unknown or any(jax.tree.map(np.shape, known[k]) != jax.tree.map(np.shape, v)
                          for k, v in backbone.items()):
            raise ValueError(f"{path}: backbone parameters do not match backbone "
                             f"{config.backbone!r}" + (f" (unknown {unknown})" if unknown else ""))
        params["backbone"] = {**known, **backbone}
    params["head"] = load_head(path, config, kh, fc6)
    rates = read_rates(path)
    if rates is not None:
        k = _read(path)[1]["iters_init"]
        now = first_frame_iters(config)[0]
        if now != k:
            raise ValueError(f"{path} was meta-learned for iters_init={k} first-frame "
                             f"steps, but the config runs {now} on the first frame "
                             f"(iters_init={config.iters_init}, iters_init_first="
                             f"{config.iters_init_first})")
        if fc6 != "file":
            raise ValueError(f"{path} is meta-learned: its rates belong to its own fc6 "
                             "(fc6='file')")
        params["head_lr"] = jax.tree.map(np.asarray, rates)
    return params
