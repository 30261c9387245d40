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


def _memo_resize(transform):
    """``resized(name, img, h, w)``: :func:`_resize`, once per (name, size):
    object sizes repeat across frames."""
    cache: dict = {}

    def resized(name: str, img: np.ndarray, h: int, w: int) -> np.ndarray:
        if (name, h, w) not in cache:
            cache[name, h, w] = _resize(img, h, w, transform)
        return cache[name, h, w]
    return resized


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

    resized = _memo_resize(transform)
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
        frame[y:y + h, x:x + w] = resized("cat", cat, h, w)
        if occlusion is not None and occlusion[0] <= t < occlusion[1]:
            ox = int(np.clip(x + w // 2 - 14, 0, fw - 28))
            frame[:, ox:ox + 28] = occluder
        frames[t] = frame
        gt[t] = (x, y, w, h)
    return frames, gt


# ----------------------------------------------------------------------------
# Varied sequences for offline pretraining

# (photo, rows, cols) crops used as tracked objects: faces, a cup, a rocket,
# coins, a clock, a logo... different textures, colours and grey levels.
OBJECT_CROPS: tuple[tuple[str, tuple[int, int], tuple[int, int]], ...] = (
    ("chelsea", (20, 200), (110, 300)),
    ("astronaut", (20, 230), (150, 330)),
    ("astronaut", (300, 512), (350, 500)),
    ("coffee", (20, 300), (170, 440)),
    ("rocket", (60, 420), (290, 380)),
    ("coins", (0, 110), (0, 110)),
    ("coins", (150, 303), (230, 384)),
    ("clock", (40, 280), (60, 330)),
    ("colorwheel", (0, 370), (0, 371)),
    ("camera", (60, 260), (190, 340)),
    ("logo", (50, 450), (50, 450)),
    ("immunohistochemistry", (100, 300), (100, 300)),
    ("hubble_deep_field", (300, 600), (350, 650)),
    ("cat", (0, 300), (120, 420)),
)
# Backgrounds: the whole photo, randomly cropped and resized per sequence.
BACKGROUNDS: tuple[str, ...] = ("coffee", "astronaut", "rocket", "hubble_deep_field",
                                "immunohistochemistry", "brick", "grass", "gravel",
                                "camera", "moon", "retina", "chelsea")


def _photo_rgb(data, name: str) -> np.ndarray:
    img = np.asarray(getattr(data, name)())
    if img.dtype == bool:
        img = img.astype(np.uint8) * 255
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., :3]).astype(np.uint8)


def photo_sequence(seed: int, n_frames: int = 60, frame_hw: tuple[int, int] = (240, 320),
                   occlusion: bool = True, distractor: bool = True
                   ) -> tuple[np.ndarray, np.ndarray]:
    """A random sequence for pretraining: frames ``(T, H, W, 3) uint8`` and
    exact ground truth ``(T, 4) float32 xywh`` (0-based pixels).

    ``seed`` picks the object (one of :data:`OBJECT_CROPS`), the background
    (a random crop of one of :data:`BACKGROUNDS`), the object's size (8-30% of
    the frame side) and aspect (0.5-2), a smooth random path (two random
    sinusoids per axis), a size change of up to +-30%, a brightness drift and
    slow background panning. With ``occlusion`` a strip of another photo
    covers part of the object for a few frames (GT stays the full box); with
    ``distractor`` a second, different object crosses the frame. Objects are
    pasted at integer positions and sizes, so the box is exact. Needs
    scikit-image.
    """
    if n_frames < 2:
        raise ValueError(f"n_frames must be >= 2, got {n_frames}")
    fh, fw = frame_hw
    if fh < 64 or fw < 64:
        raise ValueError(f"frame_hw {frame_hw} must be at least 64x64")
    data, transform = _photos()
    rng = np.random.default_rng(seed)

    def crop_of(i):
        name, (r0, r1), (c0, c1) = OBJECT_CROPS[i]
        return _photo_rgb(data, name)[r0:r1, c0:c1]

    obj_i = int(rng.integers(len(OBJECT_CROPS)))
    obj = crop_of(obj_i)
    bg_full = _photo_rgb(data, BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))])
    # background 20% larger than the frame so it can pan
    bh, bw = int(fh * 1.2), int(fw * 1.2)
    bg = _resize(bg_full, bh, bw, transform)

    side = rng.uniform(0.08, 0.30) * min(fh, fw)
    aspect = float(np.exp(rng.uniform(np.log(0.5), np.log(2.0))))
    oh0, ow0 = side / np.sqrt(aspect), side * np.sqrt(aspect)

    def path(n_axis):
        f = rng.uniform(0.3, 1.5, 2)
        ph = rng.uniform(0, 2 * np.pi, 2)
        a = rng.dirichlet([1, 1])
        u = np.arange(n_frames) / max(n_frames - 1, 1)
        return 0.5 + 0.4 * (a[0] * np.sin(2 * np.pi * f[0] * u + ph[0])
                            + a[1] * np.sin(2 * np.pi * f[1] * u + ph[1]))

    px, py = path(0), path(1)
    scale = 1.0 + 0.3 * np.sin(2 * np.pi * rng.uniform(0.2, 1.0) * np.arange(n_frames)
                               / n_frames + rng.uniform(0, 2 * np.pi))
    gain = 1.0 + 0.25 * np.sin(2 * np.pi * rng.uniform(0.1, 0.6) * np.arange(n_frames)
                               / n_frames + rng.uniform(0, 2 * np.pi))
    pan = rng.uniform(0, 1, 2)
    pan_v = rng.uniform(-0.5, 0.5, 2) / n_frames

    occ = None
    if occlusion:
        start = int(rng.integers(n_frames // 4, max(n_frames // 4 + 1, n_frames - 8)))
        occ = (start, start + int(rng.integers(3, 9)))
        occ_img = _photo_rgb(data, BACKGROUNDS[int(rng.integers(len(BACKGROUNDS)))])
    dis = None
    if distractor:
        dis_i = (obj_i + 1 + int(rng.integers(len(OBJECT_CROPS) - 1))) % len(OBJECT_CROPS)
        d_side = side * rng.uniform(0.7, 1.3)
        dis = (crop_of(dis_i), int(round(d_side)), int(round(d_side)),
               path(0), path(1))

    resized = _memo_resize(transform)
    frames = np.empty((n_frames, fh, fw, 3), np.uint8)
    gt = np.empty((n_frames, 4), np.float32)
    for t in range(n_frames):
        ox = int(np.clip((pan[0] + pan_v[0] * t) % 1.0 * (bw - fw), 0, bw - fw))
        oy = int(np.clip((pan[1] + pan_v[1] * t) % 1.0 * (bh - fh), 0, bh - fh))
        frame = bg[oy:oy + fh, ox:ox + fw].astype(np.float32)
        if dis is not None:  # the distractor passes behind the target
            d_img, dh, dw, dpx, dpy = dis
            dh, dw = min(dh, fh // 2), min(dw, fw // 2)
            dx = int(np.clip(round(dpx[::-1][t] * fw - dw / 2), 0, fw - dw))
            dy = int(np.clip(round(dpy[::-1][t] * fh - dh / 2), 0, fh - dh))
            frame[dy:dy + dh, dx:dx + dw] = resized("dis", d_img, dh, dw)
        h = int(np.clip(round(oh0 * scale[t]), 8, fh // 2))
        w = int(np.clip(round(ow0 * scale[t]), 8, fw // 2))
        x = int(np.clip(round(px[t] * fw - w / 2), 0, fw - w))
        y = int(np.clip(round(py[t] * fh - h / 2), 0, fh - h))
        frame[y:y + h, x:x + w] = resized("obj", obj, h, w)
        if occ is not None and occ[0] <= t < occ[1]:
            sw = max(4, w // 2)
            sx = int(np.clip(x + w // 4, 0, fw - sw))
            frame[:, sx:sx + sw] = resized("occ", occ_img, fh, sw)
        frames[t] = np.clip(frame * gain[t], 0, 255).astype(np.uint8)
        gt[t] = (x, y, w, h)
    return frames, gt
