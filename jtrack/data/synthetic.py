"""A built-in tracking sequence made from real photographs, with exact ground
truth: the demo's default input and a fast end-to-end test fixture.

A textured object (a crop of one ``skimage.data`` photograph) moves along a
smooth path over another photograph, grows and shrinks, and is briefly
covered by an occluder (a third photograph's crop). The object is pasted at
integer positions and sizes, so its box is exact. Needs ``scikit-image``
(the ``demo``/``test`` extras), which ships the photographs: no network.
"""

from __future__ import annotations

import numpy as np


def _photos():
    try:
        from skimage import data, transform
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("the built-in sequence needs scikit-image: "
                          "pip install 'jtrack[demo]'") from e
    return data, transform


def _resize(img: np.ndarray, h: int, w: int, transform) -> np.ndarray:
    out = transform.resize(img, (h, w), order=1, anti_aliasing=True, preserve_range=True)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def moving_object(n_frames: int = 90, frame_hw: tuple[int, int] = (240, 320),
                  object_hw: tuple[int, int] = (56, 64), occlusion: tuple[int, int] | None = (50, 58),
                  seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Frames ``(T, H, W, 3) uint8`` and ground truth ``(T, 4) float32 xywh``
    (0-based pixels; library convention).

    The object (the cat's face from ``skimage.data.chelsea``) follows a
    Lissajous path over ``skimage.data.coffee``, with size varying +-25%;
    frames ``occlusion[0] .. occlusion[1] - 1`` cover about half of it with a
    piece of ``skimage.data.rocket``. The ground truth stays the object's full
    box while it is occluded (OTB convention). ``seed`` shifts the path phase.
    """
    if n_frames < 2:
        raise ValueError(f"n_frames must be >= 2, got {n_frames}")
    data, transform = _photos()
    fh, fw = frame_hw
    oh, ow = object_hw
    if not (8 <= oh < fh // 2 and 8 <= ow < fw // 2):
        raise ValueError(f"object_hw {object_hw} must be >= 8 and under half of frame_hw {frame_hw}")
    background = _resize(data.coffee(), fh, fw, transform)
    cat = data.chelsea()[20:200, 110:300]  # the face, (180, 190, 3)
    occluder = _resize(data.rocket()[100:400, 200:300], fh, 28, transform)
    phase = np.random.default_rng(seed).uniform(0, 2 * np.pi)

    frames = np.empty((n_frames, fh, fw, 3), np.uint8)
    gt = np.empty((n_frames, 4), np.float32)
    for t in range(n_frames):
        u = t / max(n_frames - 1, 1)
        s = 1.0 + 0.25 * np.sin(2 * np.pi * u + phase / 3)
        h, w = int(round(oh * s)), int(round(ow * s))
        cx = fw / 2 + 0.3 * fw * np.sin(2 * np.pi * u + phase)
        cy = fh / 2 + 0.25 * fh * np.sin(4 * np.pi * u + phase)
        x = int(np.clip(round(cx - w / 2), 0, fw - w))
        y = int(np.clip(round(cy - h / 2), 0, fh - h))
        frame = background.copy()
        frame[y:y + h, x:x + w] = _resize(cat, h, w, transform)
        if occlusion is not None and occlusion[0] <= t < occlusion[1]:
            ox = int(np.clip(x + w // 2 - 14, 0, fw - 28))
            frame[:, ox:ox + 28] = occluder
        frames[t] = frame
        gt[t] = (x, y, w, h)
    return frames, gt
