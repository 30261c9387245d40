"""Annotate frames with boxes, target ids and scores, in plain numpy.

No OpenCV: rectangles are array slices and text uses a built-in 3x5 pixel
font (digits, ``.``, ``#``, ``-``, ``:``, space), scaled up by an integer.
All functions return a new ``(H, W, 3) uint8`` array; boxes are ``(4,)``
0-based xywh in frame pixels.
"""

from __future__ import annotations

import numpy as np

# Distinct, saturated colors for target ids (cycled); id 0 is pure red so a
# test can look for exactly that color.
PALETTE = np.array([
    (255, 0, 0), (0, 255, 0), (0, 128, 255), (255, 255, 0), (255, 0, 255),
    (0, 255, 255), (255, 128, 0), (128, 0, 255),
], np.uint8)

# 3 columns x 5 rows per glyph, rows top to bottom, "1" = ink.
_GLYPHS = {
    "0": ("111", "101", "101", "101", "111"), "1": ("010", "110", "010", "010", "111"),
    "2": ("111", "001", "111", "100", "111"), "3": ("111", "001", "111", "001", "111"),
    "4": ("101", "101", "111", "001", "001"), "5": ("111", "100", "111", "001", "111"),
    "6": ("111", "100", "111", "101", "111"), "7": ("111", "001", "010", "010", "010"),
    "8": ("111", "101", "111", "101", "111"), "9": ("111", "101", "111", "001", "111"),
    ".": ("000", "000", "000", "000", "010"), "-": ("000", "000", "111", "000", "000"),
    ":": ("000", "010", "000", "010", "000"), "#": ("101", "111", "101", "111", "101"),
    " ": ("000", "000", "000", "000", "000"),
}
_MASKS = {c: np.array([[ch == "1" for ch in row] for row in g], bool)
          for c, g in _GLYPHS.items()}


def color_of(target: int) -> np.ndarray:
    """(3,) uint8 RGB color of target id ``target``."""
    return PALETTE[int(target) % len(PALETTE)]


def text_mask(text: str, scale: int = 2) -> np.ndarray:
    """(5*scale, (4*len-1)*scale) bool ink mask of ``text`` (unknown
    characters raise ValueError naming them)."""
    bad = sorted(set(text) - set(_MASKS))
    if bad:
        raise ValueError(f"text_mask: no glyph for {bad}; supported: {''.join(sorted(_MASKS))}")
    if not text:
        return np.zeros((5 * scale, 0), bool)
    gap = np.zeros((5, 1), bool)
    cols = []
    for i, c in enumerate(text):
        if i:
            cols.append(gap)
        cols.append(_MASKS[c])
    mask = np.concatenate(cols, axis=1)
    return np.kron(mask, np.ones((scale, scale), bool)).astype(bool)


def _pixel_rect(box, h: int, w: int) -> tuple[int, int, int, int] | None:
    """Integer (x0, y0, x1, y1) inclusive pixel corners of a box, clipped to
    the frame; None when the box is non-finite or wholly outside."""
    b = np.asarray(box, np.float64).reshape(4)
    if not np.all(np.isfinite(b)):
        return None
    x0, y0 = int(np.floor(b[0])), int(np.floor(b[1]))
    x1, y1 = int(np.ceil(b[0] + b[2])) - 1, int(np.ceil(b[1] + b[3])) - 1
    if x1 < 0 or y1 < 0 or x0 >= w or y0 >= h:
        return None
    return max(x0, 0), max(y0, 0), min(max(x1, x0), w - 1), min(max(y1, y0), h - 1)


def draw_box(frame: np.ndarray, box, color, thickness: int = 2) -> np.ndarray:
    """Rectangle outline of ``box`` drawn inward from its edges (so the
    outermost ring of pixels of the box carries the color)."""
    out = np.array(frame, np.uint8, copy=True)
    h, w = out.shape[:2]
    r = _pixel_rect(box, h, w)
    if r is None:
        return out
    x0, y0, x1, y1 = r
    t = max(int(thickness), 1)
    c = np.asarray(color, np.uint8)
    out[y0:min(y0 + t, y1 + 1), x0:x1 + 1] = c
    out[max(y1 - t + 1, y0):y1 + 1, x0:x1 + 1] = c
    out[y0:y1 + 1, x0:min(x0 + t, x1 + 1)] = c
    out[y0:y1 + 1, max(x1 - t + 1, x0):x1 + 1] = c
    return out


def draw_text(frame: np.ndarray, text: str, x: int, y: int, color,
              background=(0, 0, 0), scale: int = 2) -> np.ndarray:
    """``text`` with its top-left corner at pixel (x, y) on a filled
    ``background`` rectangle (None: no background); clipped to the frame."""
    out = np.array(frame, np.uint8, copy=True)
    mask = text_mask(text, scale)
    pad = scale
    mask = np.pad(mask, pad)
    h, w = out.shape[:2]
    x, y = int(x), int(y)
    y0, x0 = max(y, 0), max(x, 0)
    y1, x1 = min(y + mask.shape[0], h), min(x + mask.shape[1], w)
    if y1 <= y0 or x1 <= x0:
        return out
    m = mask[y0 - y:y1 - y, x0 - x:x1 - x]
    patch = out[y0:y1, x0:x1]
    if background is not None:
        patch[...] = np.asarray(background, np.uint8)
    patch[m] = np.asarray(color, np.uint8)
    return out


def label(target: int, score: float | None) -> str:
    """``0: 0.93`` (id and score; score omitted when None or non-finite)."""
    text = f"{int(target)}:"
    if score is not None and np.isfinite(score):
        text += f" {float(score):.2f}"
    return text


def annotate(frame: np.ndarray, boxes, scores=None, ids=None, thickness: int = 2,
             scale: int = 2) -> np.ndarray:
    """Draw every target of one frame.

    Args:
      frame: (H, W, 3) uint8.
      boxes: (K, 4) xywh 0-based; non-finite rows are skipped.
      scores: optional (K,) scores shown next to the ids.
      ids: optional (K,) target ids (default 0..K-1), which pick the colors.
    Returns:
      (H, W, 3) uint8 copy with boxes and ``id: score`` labels above them
      (inside the box when there is no room above).
    """
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.dtype != np.uint8:
        raise ValueError(f"annotate expects an (H, W, 3) uint8 frame, got "
                         f"{frame.shape} {frame.dtype}")
    boxes = np.asarray(boxes, np.float64).reshape(-1, 4)
    ids = np.arange(len(boxes)) if ids is None else np.asarray(ids).reshape(-1)
    out = frame
    for k, box in enumerate(boxes):
        color = color_of(ids[k])
        out = draw_box(out, box, color, thickness)
        r = _pixel_rect(box, *out.shape[:2])
        if r is None:
            continue
        text = label(ids[k], None if scores is None else float(np.asarray(scores)[k]))
        text_h = 5 * scale + 2 * scale
        ty = r[1] - text_h if r[1] - text_h >= 0 else r[1] + thickness
        out = draw_text(out, text, r[0], ty, color, scale=scale)
    return out
