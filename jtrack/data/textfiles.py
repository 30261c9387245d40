"""Parsing of the numeric text files datasets ship (boxes, labels).

Errors name the file and the 1-based line (``path:12: ...``), so a broken
annotation in a benchmark of thousands of files is found at once.
"""

from __future__ import annotations

import os
import re

import numpy as np

_SEP = re.compile(r"[,\s;]+")


def read_numbered_rows(path: str) -> list[tuple[int, list[float]]]:
    """``(line number, numbers)`` per line up to the last non-blank line.

    A blank line *between* annotations keeps its place as an empty list:
    dropping it would shift every later box onto the wrong frame. Trailing
    blank lines (an editor's final newline) are not rows.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"annotation file not found: {path}")
    rows: list[tuple[int, list[float]]] = []
    try:
        with open(path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except UnicodeDecodeError as e:
        raise ValueError(f"{path}: not a text file ({e.reason} at byte {e.start})") from e
    while lines and not lines[-1].strip():
        lines.pop()
    for lineno, line in enumerate(lines, 1):
        line = line.strip()
        try:
            rows.append((lineno, [float(t) for t in _SEP.split(line) if t]))
        except ValueError as e:
            raise ValueError(f"{path}:{lineno}: not numbers: {line[:80]!r}") from e
    return rows


def read_rows(path: str) -> list[list[float]]:
    """Rows of numbers separated by commas, tabs and/or spaces (OTB mixes
    them). Blank lines are skipped; ``nan`` parses as NaN. For box files
    use :func:`read_box_file`, which keeps blank lines in place."""
    return [r for _, r in read_numbered_rows(path) if r]


def read_flags(path: str, n: int | None = None) -> np.ndarray:
    """Per-frame integer labels, one per line or all on one line
    (LaSOT ``full_occlusion.txt``) -> ``(T,) int32``."""
    vals = [v for row in read_rows(path) for v in row]
    out = np.asarray(vals, dtype=np.float64)
    if n is not None and len(out) != n:
        raise ValueError(f"{path}: {len(out)} labels for {n} frames")
    if not np.all(np.isfinite(out)):
        raise ValueError(f"{path}: labels must be finite integers, got "
                         f"{out[~np.isfinite(out)][0]}")
    return out.astype(np.int32)


def boxes_from_rows(rows: list[list[float]], path: str,
                    linenos: list[int] | None = None) -> np.ndarray:
    """Rows of 4 (xywh) or 8 (polygon x1,y1,..,x4,y4) values -> ``(T, 4)``
    float64 xywh in the file's own convention. A polygon becomes the
    axis-aligned bounding box of its corners; a row of one NaN (VOT's
    "no annotation") or an empty row (a blank line between annotations)
    becomes a NaN row, i.e. "target absent" (OTB's MATLAB toolkit reads a
    blank line as zeros, which it also treats as absent)."""
    out = np.full((len(rows), 4), np.nan)
    for i, r in enumerate(rows):
        if len(r) == 4:
            out[i] = r
        elif len(r) >= 6 and len(r) % 2 == 0:
            xs, ys = np.asarray(r[0::2]), np.asarray(r[1::2])
            out[i] = [xs.min(), ys.min(), xs.max() - xs.min(), ys.max() - ys.min()]
        elif not r or (len(r) == 1 and np.isnan(r[0])):
            pass
        else:
            where = f"{path}:{linenos[i]}" if linenos is not None else f"{path}: row {i + 1}"
            raise ValueError(f"{where}: {len(r)} values; expected 4 (x,y,w,h) or "
                             "8 (polygon x1,y1,...,x4,y4)")
    return out


def read_box_file(path: str) -> np.ndarray:
    """A ground-truth or result file -> ``(T, 4)`` float64 xywh (file
    convention), one row per line; blank/NaN lines are NaN rows (absent)."""
    numbered = read_numbered_rows(path)
    return boxes_from_rows([r for _, r in numbered], path, [n for n, _ in numbered])
