"""The pretrained head shipped inside the package (``jtrack/weights/``).

``pretrained_head.npz`` holds fc4/fc5 (and fc6 = the mean of the domain
branches) from offline multi-domain pretraining
on real videos (``experiments.pretrain``; the file format is
:mod:`jtrack.pretrain.head`), and ``pretrained_head.json`` its manifest: the
command that rebuilt it, the TrackerConfig fields it is tied to, the training
domains with their frame counts, steps, seeds, final metrics, jtrack version
and the sha256 of the arrays. Nothing is downloaded: ``pip install`` carries
both files as package data.
"""

from __future__ import annotations

import json
import os

import jax

from jtrack.config import TrackerConfig

FOLDER = os.path.dirname(os.path.abspath(__file__))
HEAD_FILE = os.path.join(FOLDER, "pretrained_head.npz")
MANIFEST_FILE = os.path.join(FOLDER, "pretrained_head.json")


def available() -> bool:
    """Whether this installation carries the shipped head and its manifest."""
    return os.path.isfile(HEAD_FILE) and os.path.isfile(MANIFEST_FILE)


def manifest() -> dict:
    """The shipped head's manifest (raises FileNotFoundError when absent)."""
    if not available():
        raise FileNotFoundError(
            f"no shipped pretrained head in {FOLDER} (pretrained_head.npz/.json); "
            "use head='random' or rebuild it as docs/pretraining.md says")
    with open(MANIFEST_FILE, encoding="utf-8") as f:
        return json.load(f)


def check_config(config: TrackerConfig) -> None:
    """Raise ValueError naming the first TrackerConfig field that differs from
    what the shipped head was trained for (``manifest()['must_match']``)."""
    for field, want in manifest()["must_match"].items():
        got = getattr(config, field)
        if got != want:
            raise ValueError(
                f"the shipped pretrained head was trained for {field}={want!r}, but the "
                f"config has {field}={got!r}: use jtrack.init_params(config, key, "
                f"head='random') or pretrain a head for this config (docs/pretraining.md)")


def load(config: TrackerConfig, key: jax.Array) -> dict:
    """``{'backbone', 'head'}`` for :func:`jtrack.init`: the backbone's own
    weights and the shipped fc4/fc5/fc6 (fc6 = the mean of the pretraining
    branches)."""
    from jtrack.pretrain.head import load_params

    check_config(config)
    return load_params(HEAD_FILE, config, key)


def describe(head: str) -> dict:
    """What ``init_params(..., head=head)`` loads, for result files and logs:
    ``{'head': 'random'}`` or the shipped file, its sha256 and what it was
    trained on; for a head file its path, kind and sha256."""
    if head.endswith(".npz"):
        from jtrack.pretrain.head import arrays_sha256, read_head
        meta = read_head(head)[2]
        return {"head": "file", "file": os.path.abspath(head), "sha256": arrays_sha256(head),
                "kind": meta.get("kind", "pretrained"), "domains": meta.get("domains"),
                "steps": meta.get("steps")}
    if head != "pretrained":
        return {"head": head}
    man = manifest()
    return {"head": "pretrained", "file": "jtrack/weights/" + os.path.basename(HEAD_FILE),
            "sha256": man["sha256"], "domains": man.get("domains"),
            "steps": man.get("steps")}


def summary(head: str) -> str:
    """One line naming the weights, e.g. for the demo and the CLI."""
    d = describe(head)
    if d["head"] == "file":
        return f"head: {d['kind']} file {d['file']} (sha256 {d['sha256'][:12]})"
    if d["head"] != "pretrained":
        return f"head: {d['head']}"
    return (f"head: pretrained on {len(d['domains'] or [])} real domains "
            f"({d['file']}, sha256 {d['sha256'][:12]})")
