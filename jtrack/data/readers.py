"""Readers for one sequence folder of each benchmark -> :class:`Sequence`.

Ground truth becomes ``(T, 4) float32 xywh`` 0-based with NaN rows where the
target is absent, unannotated, or annotated with a non-positive size (OTB
and LaSOT write ``0,0,0,0`` for "not visible").

File conventions (the result writer mirrors them):

* OTB, VOT, LaSOT: 1-based pixel coordinates (MATLAB toolkits).
* GOT-10k: 0-based (its Python toolkit uses the numbers as they are).
"""

from __future__ import annotations

import glob
import os
import re

import numpy as np

from jtrack.data.frames import IMAGE_EXTENSIONS, count_video_frames, list_images
from jtrack.data.sequence import Sequence, sequence_name_from_path
from jtrack.data.textfiles import read_box_file, read_flags

# OTB sequences whose annotation starts after the folder's first image
# (OTB toolkit configSeqs): name -> 1-based number of the first frame.
# Sequences with fewer GT rows than images that start at frame 1 (Diving,
# Football1, Freeman3, Freeman4) need no entry: they end at the last GT row.
OTB_START_FRAME = {"David": 300}

_OTB_GT = re.compile(r"^groundtruth_rect(?:\.(\d+))?\.txt$")


def normalize_gt(boxes: np.ndarray, one_based: bool) -> np.ndarray:
    """File-convention ``(T, 4)`` xywh -> library ``(T, 4) float32`` 0-based;
    rows with NaN or non-positive size become NaN (absent)."""
    b = np.array(boxes, dtype=np.float64).reshape(-1, 4)
    if one_based:
        b[:, :2] -= 1.0
    bad = ~np.all(np.isfinite(b), axis=1) | (b[:, 2] <= 0) | (b[:, 3] <= 0)
    b[bad] = np.nan
    return b.astype(np.float32)


def _images(folder: str) -> list[str]:
    """Image files of a sequence's frame folder; an empty folder is an error
    here rather than a confusing row-count mismatch later."""
    images = list_images(folder)
    if not images:
        raise ValueError(f"{folder}: no image files (expected frames with extensions "
                         f"{', '.join(IMAGE_EXTENSIONS)})")
    return images


def _require_rows(gt: np.ndarray, path: str) -> np.ndarray:
    if not len(gt):
        raise ValueError(f"{path}: ground-truth file is empty")
    return gt


def _read_attributes(folder: str) -> tuple[str, ...]:
    """Optional sequence tags: ``attrs.txt`` (``IV, SV, OCC`` on any lines)."""
    path = os.path.join(folder, "attrs.txt")
    if not os.path.isfile(path):
        return ()
    with open(path, encoding="utf-8") as f:
        return tuple(t for t in re.split(r"[,\s]+", f.read()) if t)


def _frames_from(images: list[str], start: int, n: int, folder: str) -> list[str]:
    """``n`` images from 1-based frame number ``start``: by the number in the
    file name when names are numeric (BlurCar1's folder begins at 0247),
    else by position."""
    stems = [os.path.splitext(os.path.basename(p))[0] for p in images]
    if stems and all(s.isdigit() for s in stems):
        by_num = {int(s): p for s, p in zip(stems, images)}
        first = start if start in by_num else min(by_num)
        nums = range(first, first + n)
        missing = [k for k in nums if k not in by_num]
        if missing:
            raise ValueError(f"{folder}: ground truth needs frames {first}..{first + n - 1} "
                             f"but image {missing[0]} is missing ({len(images)} images)")
        return [by_num[k] for k in nums]
    if start - 1 + n > len(images):
        raise ValueError(f"{folder}: {n} ground-truth rows from frame {start} but "
                         f"only {len(images)} images")
    return images[start - 1:start - 1 + n]


def read_otb(folder: str, name: str | None = None) -> list[Sequence]:
    """An OTB sequence folder (``img/``, ``groundtruth_rect.txt``) -> one
    Sequence, or one per target for two-target folders
    (``groundtruth_rect.1.txt`` -> ``<name>-1``, as Jogging-1/-2)."""
    base = name or sequence_name_from_path(folder)
    gts = sorted((m.group(1), n) for n in os.listdir(folder) if (m := _OTB_GT.match(n)))
    if not gts:
        raise FileNotFoundError(f"{folder}: no groundtruth_rect*.txt (not an OTB sequence)")
    images = _images(os.path.join(folder, "img"))
    attrs = _read_attributes(folder)
    out = []
    for idx, fname in gts:
        path = os.path.join(folder, fname)
        raw = read_box_file(path)
        if not len(raw):  # Human4 ships an empty extra file
            continue
        gt = normalize_gt(raw, one_based=True)
        seq_name = base if idx is None else f"{base}-{idx}"
        frames = _frames_from(images, OTB_START_FRAME.get(base, 1), len(gt), folder)
        out.append(Sequence(seq_name, frames, gt, dataset="otb", one_based=True,
                            attributes=attrs, flags={"absent": ~np.isfinite(gt[:, 0])}))
    if not out:
        raise ValueError(f"{folder}: every groundtruth_rect*.txt file is empty")
    return out


def _tag_flags(folder: str, n: int, exclude=()) -> dict[str, np.ndarray]:
    """VOT per-frame ``*.tag``/``*.label`` files (0/1 per line) -> bool flags."""
    flags = {}
    for path in sorted(glob.glob(os.path.join(folder, "*.tag")) +
                       glob.glob(os.path.join(folder, "*.label"))):
        key = os.path.splitext(os.path.basename(path))[0]
        if key in exclude:
            continue
        v = read_flags(path)
        # VOT tag files may stop at the last tagged frame: pad with 0
        if len(v) < n:
            v = np.concatenate([v, np.zeros(n - len(v), np.int32)])
        flags[key] = v[:n] > 0
    return flags


def read_vot(folder: str, name: str | None = None) -> Sequence:
    """A VOT sequence folder: ``groundtruth.txt`` (4-value rectangles or
    8-value polygons, which become their axis-aligned bounding box; NaN rows
    = absent) and frames in ``color/`` or flat in the folder."""
    gt_path = os.path.join(folder, "groundtruth.txt")
    gt = normalize_gt(_require_rows(read_box_file(gt_path), gt_path), one_based=True)
    color = os.path.join(folder, "color")
    images = _images(color if os.path.isdir(color) else folder)
    if len(images) < len(gt):
        raise ValueError(f"{folder}: {len(gt)} ground-truth rows but {len(images)} images")
    flags = _tag_flags(folder, len(gt))
    flags["absent"] = ~np.isfinite(gt[:, 0])
    return Sequence(name or sequence_name_from_path(folder), images[:len(gt)], gt,
                    dataset="vot", one_based=True, flags=flags)


def read_got10k(folder: str, name: str | None = None) -> Sequence:
    """A GOT-10k sequence folder: images, ``groundtruth.txt`` (all frames, or
    only the first on the test split), ``absence.label``, ``cover.label``
    (0..8, visible fraction in eighths)."""
    images = _images(folder)
    gt_path = os.path.join(folder, "groundtruth.txt")
    boxes = _require_rows(read_box_file(gt_path), gt_path)
    n = len(images)
    if len(boxes) > n:
        raise ValueError(f"{folder}: {len(boxes)} ground-truth rows but {n} images")
    full = np.full((n, 4), np.nan)
    full[:len(boxes)] = boxes  # test split: only frame 0 is annotated
    flags = {}
    absence_path = os.path.join(folder, "absence.label")
    if os.path.isfile(absence_path):
        flags["absence"] = read_flags(absence_path, n) > 0
        full[flags["absence"]] = np.nan
    cover_path = os.path.join(folder, "cover.label")
    if os.path.isfile(cover_path):
        flags["cover"] = read_flags(cover_path, n)
    gt = normalize_gt(full, one_based=False)
    flags["absent"] = ~np.isfinite(gt[:, 0])
    return Sequence(name or sequence_name_from_path(folder), images, gt,
                    dataset="got10k", one_based=False, flags=flags)


def read_lasot(folder: str, name: str | None = None) -> Sequence:
    """A LaSOT sequence folder: ``img/``, ``groundtruth.txt``,
    ``full_occlusion.txt`` and ``out_of_view.txt`` (comma-separated 0/1)."""
    gt_path = os.path.join(folder, "groundtruth.txt")
    gt = normalize_gt(_require_rows(read_box_file(gt_path), gt_path), one_based=True)
    images = _images(os.path.join(folder, "img"))
    if len(images) < len(gt):
        raise ValueError(f"{folder}: {len(gt)} ground-truth rows but {len(images)} images")
    flags = {}
    for key in ("full_occlusion", "out_of_view"):
        path = os.path.join(folder, key + ".txt")
        if os.path.isfile(path):
            flags[key] = read_flags(path, len(gt)) > 0
    flags["absent"] = ~np.isfinite(gt[:, 0])
    return Sequence(name or sequence_name_from_path(folder), images[:len(gt)], gt,
                    dataset="lasot", one_based=True, flags=flags)


def _initial_gt(init_box, n: int, one_based: bool) -> np.ndarray:
    gt = np.full((n, 4), np.nan)
    gt[0] = np.asarray(init_box, dtype=np.float64).reshape(4)
    return normalize_gt(gt, one_based)


def from_image_folder(folder: str, init_box, name: str | None = None,
                      one_based: bool = False) -> Sequence:
    """Any folder of images plus the target's box on the first one
    (``(4,) xywh``, 0-based unless ``one_based``); later frames unannotated."""
    images = _images(folder)
    return Sequence(name or sequence_name_from_path(folder), images,
                    _initial_gt(init_box, len(images), one_based), dataset="folder",
                    one_based=one_based)


def from_video(path: str, init_box, name: str | None = None,
               one_based: bool = False) -> Sequence:
    """A video file (anything ffmpeg reads) plus the first frame's box."""
    n = count_video_frames(path)
    if n == 0:
        raise ValueError(f"{path}: video has no frames")
    stem = os.path.splitext(os.path.basename(path))[0]
    return Sequence(name or stem, (), _initial_gt(init_box, n, one_based),
                    dataset="video", one_based=one_based, video=os.fspath(path))
