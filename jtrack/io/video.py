"""Frame sources (video, GIF, image folder) and annotated outputs (mp4, GIF
preview, PNG frames), all written atomically: a reader never sees a half
written file, and an interrupted run leaves no partial output behind.
"""

from __future__ import annotations

import dataclasses
import os
import tempfile
from collections.abc import Iterator

import numpy as np

from jtrack.data.frames import (IMAGE_EXTENSIONS, BadFrame, ffmpeg_starting, iter_video,
                                list_images, read_frame_or_bad, stop_at_bad)

VIDEO_EXTENSIONS = (".mp4", ".avi", ".mov", ".mkv", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv")


@dataclasses.dataclass(frozen=True)
class Source:
    """Where frames come from.

    ``frames()`` yields ``(H, W, 3) uint8``; ``count`` is the number of
    frames when known without decoding (image folders), else None;
    ``init_boxes`` is the first frame's ground truth ``(K, 4)`` xywh 0-based
    when the folder is an annotated benchmark sequence, else None.
    """

    name: str
    path: str
    kind: str                      # "folder", "video", "gif", or a dataset kind ("otb", ...)
    files: tuple[str, ...] = ()    # image files (folders)
    init_boxes: np.ndarray | None = None

    @property
    def count(self) -> int | None:
        return len(self.files) if self.files else None

    def frames(self) -> Iterator[np.ndarray | BadFrame]:
        """Every frame in order; one that cannot be read or decoded comes as
        a :class:`BadFrame` (a video or GIF stops after its first one)."""
        if self.files:
            return (read_frame_or_bad(i, f) for i, f in enumerate(self.files))
        if self.kind == "gif":
            return stop_at_bad(_iter_gif(self.path), self.path)
        return stop_at_bad(iter_video(self.path), self.path)

    def fps(self) -> float | None:
        """The frame rate a video or GIF declares; None for image folders
        or when the file does not say."""
        if self.files:
            return None
        import imageio.v3 as iio

        try:
            if self.kind == "gif":
                ms = iio.immeta(self.path, index=0).get("duration")
                return 1000.0 / float(ms) if ms else None
            with ffmpeg_starting():
                fps = iio.immeta(self.path, plugin="FFMPEG").get("fps")
        except (OSError, RuntimeError, ValueError):  # unreadable metadata: the caller's default
            return None
        return float(fps) if fps and np.isfinite(fps) and fps > 0 else None


def _iter_gif(path: str) -> Iterator[np.ndarray]:
    import imageio.v3 as iio

    from jtrack.data.frames import to_rgb_uint8

    try:
        for img in iio.imiter(path):
            yield to_rgb_uint8(img, path)
    except (OSError, ValueError) as e:
        raise ValueError(f"cannot decode GIF {path}: {e}") from e


def open_source(path: str) -> Source:
    """A video file (mp4/avi/... through ffmpeg), an animated GIF, a folder
    of images, or an OTB/VOT/GOT-10k sequence folder (frames + ground truth;
    the first GT box becomes the default target)."""
    path = os.fspath(path)
    stem = os.path.splitext(os.path.basename(os.path.normpath(path)))[0]
    if os.path.isdir(path):
        from jtrack.data import detect_kind, read_sequence

        try:
            kind = detect_kind(path)
        except ValueError:
            kind = None
        if kind is not None:
            seqs = read_sequence(kind, path)
            boxes = np.stack([np.asarray(s.gt[0], np.float32) for s in seqs])
            if seqs[0].frames:
                return Source(stem, path, kind, tuple(seqs[0].frames),
                              boxes if np.isfinite(boxes).all() else None)
        files = list_images(path)
        if not files and os.path.isdir(os.path.join(path, "img")):
            files = list_images(os.path.join(path, "img"))
        if not files:
            raise ValueError(f"{path}: folder has no images ({', '.join(IMAGE_EXTENSIONS)})")
        return Source(stem, path, "folder", tuple(files))
    if not os.path.exists(path):
        raise FileNotFoundError(f"input not found: {path} (expected a video file, a GIF "
                                "or a folder of images)")
    ext = os.path.splitext(path)[1].lower()
    if ext == ".gif":
        return Source(stem, path, "gif")
    if ext in IMAGE_EXTENSIONS:
        raise ValueError(f"{path} is a single image; pass the folder that holds the frames")
    if ext not in VIDEO_EXTENSIONS:
        raise ValueError(f"{path}: unknown file type {ext!r}; expected a video "
                         f"({', '.join(VIDEO_EXTENSIONS)}), a .gif or an image folder")
    return Source(stem, path, "video")


def _temp_path(path: str) -> str:
    """A fresh temp file next to ``path`` with the same extension (ffmpeg
    and imageio pick the format from it)."""
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    base, ext = os.path.splitext(os.path.basename(path))
    fd, tmp = tempfile.mkstemp(prefix=f".{base}.", suffix=f".tmp{ext}", dir=folder)
    os.close(fd)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp makes 0600; outputs are for sharing
    return tmp


def _even(frame: np.ndarray) -> np.ndarray:
    """Pad to even height/width (H.264 yuv420p needs it) by repeating the
    last row/column, so pixels and drawn boxes keep their positions."""
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


class Mp4Writer:
    """Streaming H.264 writer; the file appears at ``path`` on ``close()``."""

    def __init__(self, path: str, fps: float = 25.0):
        try:
            import imageio_ffmpeg  # noqa: F401
        except ImportError as e:
            raise ImportError("writing video files needs ffmpeg: pip install "
                              "'jtrack[video]' (imageio-ffmpeg)") from e
        import imageio.v2 as iio2

        self.path = os.fspath(path)
        self._tmp = _temp_path(self.path)
        self._writer = iio2.get_writer(self._tmp, format="FFMPEG", mode="I", fps=fps,
                                       codec="libx264", quality=7, macro_block_size=2,
                                       ffmpeg_log_level="error")

    def append(self, frame: np.ndarray) -> None:
        with ffmpeg_starting():  # the first frame starts ffmpeg
            self._writer.append_data(_even(np.asarray(frame, np.uint8)))

    def close(self) -> None:
        self._writer.close()
        os.replace(self._tmp, self.path)

    def abort(self) -> None:
        try:
            self._writer.close()
        finally:
            if os.path.exists(self._tmp):
                os.unlink(self._tmp)


class GifPreview:
    """Every ``stride``-th frame, shrunk to at most ``max_width`` pixels
    wide (integer subsampling), at most ``max_frames`` frames; written on
    ``close()``."""

    def __init__(self, path: str, stride: int = 2, max_width: int = 320,
                 max_frames: int = 300, fps: float = 12.5):
        if stride < 1 or max_width < 16 or max_frames < 1:
            raise ValueError("GifPreview: stride >= 1, max_width >= 16, max_frames >= 1")
        self.path, self.stride, self.max_width = os.fspath(path), stride, max_width
        self.max_frames, self.fps = max_frames, fps
        self._frames: list[np.ndarray] = []
        self._seen = 0

    def append(self, frame: np.ndarray) -> None:
        i, self._seen = self._seen, self._seen + 1
        if i % self.stride or len(self._frames) >= self.max_frames:
            return
        step = -(-frame.shape[1] // self.max_width)  # ceil: width <= max_width
        self._frames.append(np.ascontiguousarray(frame[::step, ::step]))

    def close(self) -> None:
        import imageio.v3 as iio

        if not self._frames:
            raise ValueError(f"{self.path}: no frames for the GIF preview")
        tmp = _temp_path(self.path)
        try:
            iio.imwrite(tmp, np.stack(self._frames), extension=".gif",
                        duration=1000.0 / self.fps, loop=0)
            os.replace(tmp, self.path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)

    def abort(self) -> None:
        self._frames.clear()


def write_png(path: str, frame: np.ndarray) -> None:
    """Atomically write one ``(H, W, 3) uint8`` frame as PNG."""
    import imageio.v3 as iio

    tmp = _temp_path(path)
    try:
        iio.imwrite(tmp, np.asarray(frame, np.uint8), extension=".png")
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
