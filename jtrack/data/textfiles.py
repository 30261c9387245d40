"""Parsing of the numeric text files datasets ship (boxes, labels)."""

from __future__ import annotations

import os
import re

import numpy as np

_SEP = re.compile(r"[,\s;]+")


def read_rows(path: str) -> list[list[float]]:
    """Rows of numbers separated by commas, tabs and/or spaces (OTB mixes
    them). Blank lines are skipped; ``nan`` parses as NaN."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"annotation file not found: {path}")
    rows = []
    with open(path, encoding="utf-8") as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rows.append([float(t) for t in _SEP.split(line) if t])
            except ValueError as e:
                raise ValueError(f"{path}:{lineno}: not numbers: {line[:80]!r}") from e
    return rows


def read_flags(path: str, n: int | None = None) -> np.ndarray:
    """Per-frame integer labels, one per line or all on one line
    (LaSOT ``full_occlusion.txt``) -> ``(T,) int32``."""
    vals = [v for row in read_rows(path) for v in row]
    out = np.asarray(vals, dtype=np.float64)
    if n is not None and len(out) != n:
        raise ValueError(f"{path}: {len(out)} labels for {n} frames")
    return out.astype(np.int32)


def boxes_from_rows(rows: list[list[float]], path: str) -> np.ndarray:
    """Rows of 4 (xywh) or 8 (polygon x1,y1,..,x4,y4) values -> ``(T, 4)``
    float64 xywh in the file's own convention. A polygon becomes the
    axis-aligned bounding box of its corners; a row of one NaN (VOT's
    "no annotation") becomes a NaN row."""
    out = np.full((len(rows), 4), np.nan)
    for i, r in enumerate(rows):
        if len(r) == 4:
            out[i] = r
        elif len(r) >= 6 and len(r) % 2 == 0:
            xs, ys = np.asarray(r[0::2]), np.asarray(r[1::2])
            out[i] = [xs.min(), ys.min(), xs.max() - xs.min(), ys.max() - ys.min()]
        elif len(r) == 1 and np.isnan(r[0]):
            pass
        else:
            raise ValueError(f"{path}: row {i + 1} has {len(r)} values; "
                             "expected 4 (x,y,w,h) or 8 (polygon)")
    return out
