"""Frame loading with imageio: any image file -> ``(H, W, 3) uint8`` RGB.

Errors always name the offending file: a tracker crashing on frame 812 of a
benchmark should say which file, not "cannot identify image".
"""

from __future__ import annotations

import os
import re
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
        for img in it:
            yield to_rgb_uint8(img, path)
    except (OSError, RuntimeError, ValueError) as e:
        raise ValueError(f"cannot decode video {path}: {e}") from e


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
