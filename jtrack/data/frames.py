"""Frame loading with imageio: any image file -> ``(H, W, 3) uint8`` RGB.

Errors always name the offending file: a tracker crashing on frame 812 of a
benchmark should say which file, not "cannot identify image".
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import warnings
from collections.abc import Iterator

import imageio.v3 as iio
import numpy as np

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".gif", ".webp")


def to_rgb_uint8(img: np.ndarray, path: str = "<array>") -> np.ndarray:
    """Gray ``(H, W)``/``(H, W, 1)``, RGB, RGBA, 16-bit, float or bool image
    -> ``(H, W, 3) uint8``. Alpha is dropped (trackers see the color)."""
    img = np.asarray(img)
    if img.ndim == 4:  # animated GIF / multi-page TIFF: first frame
        img = img[0]
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3 or img.shape[2] not in (1, 2, 3, 4) or img.size == 0:
        raise ValueError(f"{path}: unsupported image shape {img.shape}")
    if img.shape[2] in (1, 2):  # gray or gray+alpha
        img = np.repeat(img[:, :, :1], 3, axis=2)
    img = img[:, :, :3]
    if img.dtype == np.uint8:
        return np.ascontiguousarray(img)
    if img.dtype == np.bool_:
        return img.astype(np.uint8) * 255
    if np.issubdtype(img.dtype, np.integer):
        # 16-bit (or wider) ints: scale the type's range onto 0..255
        top = float(np.iinfo(img.dtype).max)
        out = np.round(img.astype(np.float64) * (255.0 / top))
        return np.clip(out, 0, 255).astype(np.uint8)
    if np.issubdtype(img.dtype, np.floating):
        return np.clip(np.round(img * 255.0), 0, 255).astype(np.uint8)
    raise ValueError(f"{path}: unsupported image dtype {img.dtype}")


def load_frame(path: str) -> np.ndarray:
    """Read one image file -> ``(H, W, 3) uint8``.

    Raises FileNotFoundError (missing) or ValueError (empty/corrupt), both
    naming the file.
    """
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"frame not found: {path}")
    if os.path.getsize(path) == 0:
        raise ValueError(f"empty image file: {path}")
    try:
        img = iio.imread(path)
    except Exception as e:  # imageio raises many types for bad data
        raise ValueError(f"cannot decode image {path}: {e}") from e
    return to_rgb_uint8(img, path)


@contextlib.contextmanager
def ffmpeg_starting():
    """Around the start of an ffmpeg process. Once JAX runs threads it warns
    at every ``os.fork()`` that a deadlock may follow; ``subprocess`` forks
    and execs ffmpeg at once in C (no Python, no lock, runs in the child),
    so that cannot happen here and the warning would only alarm users."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"os\.fork\(\) was called",
                                category=RuntimeWarning)
        yield


def iter_video(path: str) -> Iterator[np.ndarray]:
    """Frames of a video file, decoded lazily, as ``(H, W, 3) uint8``."""
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"video not found: {path}")
    try:
        import imageio_ffmpeg  # noqa: F401  (imageio's FFMPEG plugin needs it)
    except ImportError as e:
        raise ImportError("reading video files needs ffmpeg: pip install 'jtrack[video]' "
                          "(imageio-ffmpeg)") from e
    try:
        it = iio.imiter(path, plugin="FFMPEG")
        with ffmpeg_starting():  # the first frame starts the decoder
            first = next(it, None)
        if first is None:
            return
        yield to_rgb_uint8(first, path)
        for img in it:
            yield to_rgb_uint8(img, path)
    except (OSError, RuntimeError, ValueError) as e:
        raise ValueError(f"cannot decode video {path}: {e}") from e


@dataclasses.dataclass(frozen=True)
class BadFrame:
    """A frame that could not be read or decoded, in place of its pixels:
    tracking skips it instead of losing the frames around it."""

    index: int     # 0-based frame index
    where: str     # image file or video path
    reason: str    # the reader's error message (names the file)


def read_frame_or_bad(index: int, path: str) -> np.ndarray | BadFrame:
    """:func:`load_frame`, a :class:`BadFrame` instead of its errors."""
    try:
        return load_frame(path)
    except (FileNotFoundError, ValueError) as e:
        return BadFrame(index, path, str(e))


def stop_at_bad(frames: Iterator[np.ndarray], where: str) -> Iterator[np.ndarray | BadFrame]:
    """The frames of a decoder (video, GIF); a decode error ends the stream
    with one :class:`BadFrame` (a decoder cannot resync past it: the frames
    after it are not read)."""
    i = 0
    try:
        for frame in frames:
            yield frame
            i += 1
    except ValueError as e:
        yield BadFrame(i, where, f"{e} (decoding stopped at frame {i})")


def iter_video_or_bad(path: str) -> Iterator[np.ndarray | BadFrame]:
    """:func:`iter_video` through :func:`stop_at_bad`."""
    return stop_at_bad(iter_video(path), path)


def count_video_frames(path: str) -> int:
    """Number of frames of a video (decodes it: container metadata lies)."""
    return sum(1 for _ in iter_video(path))


def _natural_key(name: str):
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", name)]


def list_images(folder: str) -> list[str]:
    """Image files of ``folder`` in natural order (``2.jpg`` before ``10.jpg``)."""
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"image folder not found: {folder}")
    names = [n for n in os.listdir(folder)
             if n.lower().endswith(IMAGE_EXTENSIONS) and not n.startswith(".")]
    return [os.path.join(folder, n) for n in sorted(names, key=_natural_key)]
