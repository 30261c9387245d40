"""One tracking sequence: frame sources, ground truth, attributes and flags.

Every reader in :mod:`jtrack.data` returns this type. Frames are loaded lazily
(one at a time, on demand) so a sequence of thousands of frames costs a list
of paths, not gigabytes of pixels.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Mapping
from types import MappingProxyType

import numpy as np

from jtrack.data.frames import (BadFrame, iter_video, iter_video_or_bad, load_frame,
                                read_frame_or_bad)


@dataclasses.dataclass(frozen=True, eq=False)
class Sequence:
    """A tracking sequence.

    Attributes:
      name: sequence name (``Jogging-1`` for the second-target convention).
      frames: image paths, one per frame; empty when ``video`` is set.
      gt: ``(T, 4) float32 xywh`` 0-based; NaN rows where the target is
        absent or unannotated (a GOT-10k test sequence has only row 0).
      dataset: reader kind (``otb``, ``vot``, ``got10k``, ``lasot``,
        ``video``, ``folder``); selects the result-file convention.
      one_based: whether the dataset's own files are 1-based (OTB, VOT,
        LaSOT): results are written back in that convention.
      attributes: sequence-level tags (OTB ``IV``, ``OCC``, ...).
      flags: per-frame arrays, ``(T,)``: bool for absence/occlusion/
        out-of-view/VOT tags, int for GOT-10k ``cover``.
      video: a video file path instead of ``frames``.
    """

    name: str
    frames: tuple[str, ...]
    gt: np.ndarray
    dataset: str = "folder"
    one_based: bool = False
    attributes: tuple[str, ...] = ()
    flags: Mapping[str, np.ndarray] = dataclasses.field(default_factory=dict)
    video: str | None = None

    def __post_init__(self):
        gt = np.asarray(self.gt, dtype=np.float32).reshape(-1, 4)
        gt.setflags(write=False)  # frozen means frozen, arrays included
        object.__setattr__(self, "gt", gt)
        object.__setattr__(self, "frames", tuple(str(f) for f in self.frames))
        object.__setattr__(self, "attributes", tuple(self.attributes))
        if self.video is None and len(self.frames) != len(gt):
            raise ValueError(f"sequence {self.name!r}: {len(self.frames)} frames "
                             f"but {len(gt)} ground-truth rows")
        flags = {}
        for k, v in dict(self.flags).items():
            v = np.asarray(v)
            if v.shape != (len(gt),):
                raise ValueError(f"sequence {self.name!r}: flag {k!r} has shape "
                                 f"{v.shape}, expected ({len(gt)},)")
            v.setflags(write=False)
            flags[k] = v
        object.__setattr__(self, "flags", MappingProxyType(flags))

    def __len__(self) -> int:
        return len(self.gt)

    def __repr__(self) -> str:
        return (f"Sequence(name={self.name!r}, dataset={self.dataset!r}, "
                f"frames={len(self)}, attributes={self.attributes!r}, "
                f"flags={sorted(self.flags)!r})")

    @property
    def init_box(self) -> np.ndarray:
        """``(4,) float32 xywh`` 0-based box of frame 0 (the tracker's input)."""
        return self.gt[0]

    @property
    def absent(self) -> np.ndarray:
        """``(T,) bool``: no usable ground truth on that frame (NaN row)."""
        return ~np.all(np.isfinite(self.gt), axis=1)

    def frame(self, i: int) -> np.ndarray:
        """Frame ``i`` as ``(H, W, 3) uint8``."""
        if self.video is not None:
            for j, f in enumerate(iter_video(self.video)):
                if j == i:
                    return f
            raise IndexError(f"{self.video}: no frame {i}")
        return load_frame(self.frames[i])

    def iter_frames(self, start: int = 0, stop: int | None = None,
                    same_size: bool = True, skip_bad: bool = False
                    ) -> Iterator[np.ndarray | BadFrame]:
        """Frames ``start..stop-1`` as ``(H, W, 3) uint8``, loaded one by one.

        With ``same_size`` (default) a frame whose size differs from the
        first one yielded raises ``ValueError`` naming both files: the
        ground truth is in pixels of one frame size, so a mixed-size
        sequence is a broken download, not something to track through.
        (The tracker itself accepts any frame size at every step.)

        With ``skip_bad`` a frame that cannot be read or decoded comes as a
        :class:`BadFrame` (index, file, reason) instead of raising, so the
        caller can skip it and go on (a video stops at its first bad frame).
        """
        stop = len(self) if stop is None else min(stop, len(self))
        first: tuple[str, tuple[int, ...]] | None = None
        for i, f in self._raw_frames(start, stop, skip_bad):
            where = self.video if self.video is not None else self.frames[i]
            if same_size and not isinstance(f, BadFrame):
                if first is None:
                    first = (where, f.shape)
                elif f.shape != first[1]:
                    (h0, w0, _), (h, w, _) = first[1], f.shape
                    raise ValueError(
                        f"{where}: frame {i} of sequence {self.name!r} is {w}x{h} but "
                        f"frame {start} ({first[0]}) is {w0}x{h0}; frames of one "
                        "sequence must share one size")
            yield f

    def _raw_frames(self, start: int, stop: int, skip_bad: bool = False
                    ) -> Iterator[tuple[int, np.ndarray | BadFrame]]:
        if self.video is not None:
            frames = iter_video_or_bad(self.video) if skip_bad else iter_video(self.video)
            for j, f in enumerate(frames):
                if j >= stop:
                    return
                if j >= start:
                    yield j, f
            return
        read = read_frame_or_bad if skip_bad else (lambda i, path: load_frame(path))
        for i in range(start, stop):
            yield i, read(i, self.frames[i])

    def truncated(self, n: int) -> "Sequence":
        """The first ``n`` frames (for quick runs, ``--max_frames``)."""
        if n >= len(self):
            return self
        return dataclasses.replace(
            self, frames=self.frames[:n] if self.video is None else (),
            gt=self.gt[:n], flags={k: v[:n] for k, v in self.flags.items()})


def sequence_name_from_path(path: str) -> str:
    return os.path.basename(os.path.normpath(path))
