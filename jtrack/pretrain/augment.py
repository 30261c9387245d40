"""Augmented views of a training frame for offline pretraining.

A view is the search region cropped around a jittered box (the tracker
centres its region on its last estimate, not on the truth, and at a scale
that drifts), optionally of the horizontally flipped frame, with colour
jitter and blur on the crop. Each view is a pure function of
``(seed, domain name, frame index, copy)``, so prepared domains are the
same on every run and a resumed pretraining sees the same data.
"""

from __future__ import annotations

import dataclasses
import math
import zlib

import numpy as np


@dataclasses.dataclass(frozen=True)
class Augment:
    """How many extra views per training frame, and how they vary.

    Attributes:
      copies: extra views per training frame (0 = off; held-out frames never
        get any).
      shift: region-centre jitter, uniform in +-``shift`` x the box's mean side.
      scale: region size factor, log-uniform in [1/scale, scale].
      flip: probability of a horizontal flip of the frame (and its box).
      colour: per-channel gain and contrast jitter, uniform in +-``colour``.
      blur: probability of a Gaussian blur (sigma uniform in 0.5-1.5 px).
      seed: seed of every draw.
    """

    copies: int = 0
    shift: float = 0.2
    scale: float = 1.25
    flip: float = 0.5
    colour: float = 0.2
    blur: float = 0.3
    seed: int = 0

    def errors(self) -> list[str]:
        out = []
        if not (isinstance(self.copies, int) and self.copies >= 0):
            out.append(f"augment.copies must be an int >= 0, got {self.copies!r}")
        for name in ("shift", "colour"):
            v = getattr(self, name)
            if not (math.isfinite(v) and 0.0 <= v < 1.0):
                out.append(f"augment.{name} must be in [0, 1), got {v!r}")
        if not (math.isfinite(self.scale) and self.scale >= 1.0):
            out.append(f"augment.scale must be >= 1, got {self.scale!r}")
        for name in ("flip", "blur"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                out.append(f"augment.{name} must be a probability in [0, 1]")
        return out


def rng_for(aug: Augment, name: str, frame: int, copy: int) -> np.random.Generator:
    """The generator of one view: a pure function of its identity."""
    return np.random.default_rng([aug.seed, zlib.crc32(name.encode()), frame, copy])


def flip_box(box: np.ndarray, width: float) -> np.ndarray:
    """(4,) xywh box of a frame ``width`` wide -> its mirror image's box."""
    x, y, w, h = box
    return np.asarray([width - x - w, y, w, h], np.float32)


def jitter_box(aug: Augment, rng: np.random.Generator, box: np.ndarray) -> np.ndarray:
    """(4,) xywh box the region is centred on: the truth moved by up to
    ``shift`` x its mean side and resized by a log-uniform factor."""
    x, y, w, h = box
    d = aug.shift * 0.5 * (w + h) * rng.uniform(-1.0, 1.0, 2)
    f = math.exp(rng.uniform(-math.log(aug.scale), math.log(aug.scale)))
    cx, cy = x + 0.5 * w + d[0], y + 0.5 * h + d[1]
    return np.asarray([cx - 0.5 * w * f, cy - 0.5 * h * f, w * f, h * f], np.float32)


def _gaussian_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """Separable Gaussian blur of (H, W, C) float32, edges repeated."""
    r = max(1, int(math.ceil(3 * sigma)))
    k = np.exp(-0.5 * (np.arange(-r, r + 1) / sigma) ** 2)
    k /= k.sum()
    for axis in (0, 1):
        pad = [(0, 0)] * 3
        pad[axis] = (r, r)
        p = np.pad(img, pad, mode="edge")
        n = img.shape[axis]
        img = sum(w * np.take(p, np.arange(i, i + n), axis=axis) for i, w in enumerate(k))
    return img


def photometric(aug: Augment, rng: np.random.Generator, crop: np.ndarray) -> np.ndarray:
    """(S, S, 3) uint8 crop -> colour-jittered and maybe blurred uint8 crop."""
    img = crop.astype(np.float32)
    if aug.colour:
        mean = img.mean(axis=(0, 1))
        contrast = 1.0 + rng.uniform(-aug.colour, aug.colour)
        gain = 1.0 + rng.uniform(-aug.colour, aug.colour, 3)
        img = ((img - mean) * contrast + mean) * gain
    if rng.uniform() < aug.blur:
        img = _gaussian_blur(img, rng.uniform(0.5, 1.5))
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)
