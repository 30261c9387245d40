"""Dataset roots -> lists of sequences, with format auto-detection."""

from __future__ import annotations

import os
from collections.abc import Iterable

from jtrack.data import readers
from jtrack.data.sequence import Sequence

KINDS = ("otb", "vot", "got10k", "lasot")


def default_data_root() -> str:
    """``$JTRACK_DATA`` if set, else ``../shared/data`` next to the project root."""
    env = os.environ.get("JTRACK_DATA")
    if env:
        return env
    project = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    return os.path.normpath(os.path.join(project, "..", "shared", "data"))


def _has(folder: str, *names: str) -> bool:
    return all(os.path.exists(os.path.join(folder, n)) for n in names)


def sequence_kind(folder: str) -> str | None:
    """Which benchmark layout one sequence folder has, or None."""
    if not os.path.isdir(folder):
        return None
    names = os.listdir(folder)
    if os.path.isdir(os.path.join(folder, "img")):
        if any(n.startswith("groundtruth_rect") and n.endswith(".txt") for n in names):
            return "otb"
        if _has(folder, "groundtruth.txt"):
            return "lasot"
    if _has(folder, "groundtruth.txt"):
        if _has(folder, "absence.label") or _has(folder, "cover.label"):
            return "got10k"
        return "vot"
    return None


def _candidate_dirs(root: str) -> list[str]:
    """Sequence folders of a root, in listed order: ``list.txt`` when present
    (VOT, GOT-10k), else sub-folders, else sub-sub-folders (LaSOT's
    ``<class>/<class>-<k>``)."""
    listing = os.path.join(root, "list.txt")
    if os.path.isfile(listing):
        with open(listing, encoding="utf-8") as f:
            names = [ln.strip() for ln in f if ln.strip()]
        return [os.path.join(root, n) for n in names]
    subs = sorted(os.path.join(root, n) for n in os.listdir(root)
                  if not n.startswith(".") and os.path.isdir(os.path.join(root, n)))
    out = []
    for s in subs:
        if sequence_kind(s) is not None:
            out.append(s)
        else:
            out.extend(sorted(os.path.join(s, n) for n in os.listdir(s)
                              if sequence_kind(os.path.join(s, n)) is not None))
    return out


def detect_kind(root: str) -> str:
    """Benchmark kind of a dataset root (or of a single sequence folder)."""
    kind = sequence_kind(root)
    if kind is not None:
        return kind
    for d in _candidate_dirs(root):
        kind = sequence_kind(d)
        if kind is not None:
            return kind
    raise ValueError(f"{root}: cannot detect the dataset layout (expected OTB, VOT, "
                     "GOT-10k or LaSOT sequence folders)")


def read_sequence(kind: str, folder: str) -> list[Sequence]:
    """One sequence folder -> its sequences (two for two-target OTB folders)."""
    if kind == "otb":
        return readers.read_otb(folder)
    reader = {"vot": readers.read_vot, "got10k": readers.read_got10k,
              "lasot": readers.read_lasot}.get(kind)
    if reader is None:
        raise ValueError(f"unknown dataset kind {kind!r}; expected one of {KINDS} or 'auto'")
    return [reader(folder)]


def load_dataset(kind: str, root: str, names: Iterable[str] | None = None) -> list[Sequence]:
    """All sequences of a dataset root (or the one sequence a folder holds).

    Args:
      kind: ``otb``, ``vot``, ``got10k``, ``lasot`` or ``auto``.
      root: dataset root folder.
      names: keep only these sequence names (in this order); unknown names
        raise. ``Jogging`` selects both ``Jogging-1`` and ``Jogging-2``.
    """
    if not os.path.isdir(root):
        raise FileNotFoundError(f"dataset root not found: {root}")
    if kind == "auto":
        kind = detect_kind(root)
    if kind not in KINDS:
        raise ValueError(f"unknown dataset kind {kind!r}; expected one of {KINDS} or 'auto'")
    folders = [root] if sequence_kind(root) is not None else _candidate_dirs(root)
    seqs = [s for d in folders if sequence_kind(d) == kind for s in read_sequence(kind, d)]
    if not seqs:
        raise ValueError(f"{root}: no {kind} sequences found")
    if names is None:
        return seqs
    out = []
    for n in names:
        hit = [s for s in seqs if s.name == n] or \
              [s for s in seqs if s.name.rsplit("-", 1)[0] == n and s.name != n]
        if not hit:
            raise ValueError(f"sequence {n!r} not in {root} "
                             f"(have: {', '.join(s.name for s in seqs[:20])}...)")
        out.extend(hit)
    return out
