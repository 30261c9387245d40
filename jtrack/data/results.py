"""Result files: boxes in a dataset's own GT convention, written atomically.

A result file ``<sequence>.txt`` has one ``x,y,w,h`` row per frame in the
same convention as the sequence's ground-truth file (1-based for OTB, VOT,
LaSOT), so any toolkit can score it against the GT file directly; NaN rows
(frames a supervised run skipped) are written as ``nan,nan,nan,nan``.
"""

from __future__ import annotations

import os
import re
import tempfile

import numpy as np

from jtrack.data.textfiles import read_box_file, read_rows


def atomic_write_text(path: str, text: str) -> None:
    """Write ``text`` to ``path`` so readers see the old file or the whole
    new one, never a prefix: temp file in the same folder, fsync, rename."""
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_bytes(path: str, data: bytes) -> None:
    """:func:`atomic_write_text` for bytes (images, binary files)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                               dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    try:  # make the rename itself durable; not possible on every platform
        dfd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)
    except OSError:
        pass


# Temp names made by atomic_write_text: ".<name>.<8 random chars>.tmp".
_TEMP = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")


def remove_stale_temps(folder: str) -> list[str]:
    """Delete the temp files :func:`atomic_write_text` leaves when its process
    is killed mid-write (SIGKILL runs no cleanup). Call it only when no
    writer is active in ``folder`` (a run's start). Returns the removed paths."""
    if not os.path.isdir(folder):
        return []
    removed = []
    for name in os.listdir(folder):
        path = os.path.join(folder, name)
        if _TEMP.match(name) and os.path.isfile(path):
            try:
                os.unlink(path)
                removed.append(path)
            except FileNotFoundError:
                pass
    return removed


def format_boxes(boxes: np.ndarray, one_based: bool) -> str:
    """``(T, 4)`` 0-based xywh -> text rows ``x,y,w,h`` in the file convention."""
    b = np.array(boxes, dtype=np.float64).reshape(-1, 4)
    if one_based:
        b[:, :2] += 1.0
    return "".join(",".join(f"{v:.4f}" for v in row) + "\n" for row in b)


def write_boxes(path: str, boxes: np.ndarray, one_based: bool) -> None:
    """Atomically write ``(T, 4)`` 0-based xywh boxes as a result file."""
    atomic_write_text(path, format_boxes(boxes, one_based))


def read_boxes(path: str, one_based: bool) -> np.ndarray:
    """A result (or GT) file -> ``(T, 4) float64`` 0-based xywh. Accepts any
    separators and 8-value polygon rows, like the GT readers."""
    b = read_box_file(path)
    if one_based:
        b[:, :2] -= 1.0
    return b


def write_times(path: str, times: np.ndarray) -> None:
    """Atomically write per-frame seconds, one per line."""
    atomic_write_text(path, "".join(f"{t:.6f}\n" for t in np.asarray(times, np.float64)))


def read_times(path: str) -> np.ndarray:
    return np.asarray([r[0] for r in read_rows(path)], dtype=np.float64)


def read_rows_count(path: str) -> int:
    """Number of non-empty rows of a result file (cheap completeness check)."""
    with open(path, encoding="utf-8") as f:
        return sum(1 for line in f if line.strip())
