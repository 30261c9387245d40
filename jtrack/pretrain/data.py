"""Training domains: sequences -> cached region crops / feature maps, batches.

Each training sequence is one domain (MDNet). Per frame the search region is
cropped ONCE around the ground truth, exactly as the tracker crops it
(``region_scale`` x the box, resampled to ``region_size``); with a frozen
backbone its feature map is computed once too and cached, so an iteration
costs only RoIAlign + the head (on CPU this is what makes a few hundred
steps take minutes). Samples are drawn afresh on every visit inside the
jitted step (:mod:`jtrack.pretrain.train`).

Batches are a pure function of ``(data_seed, step)``: the domain order is a
fresh permutation per epoch (one epoch = every domain once), the frames a
seeded draw, so a resumed run sees exactly the batches it would have seen.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable, Sequence as Seq

import jax
import jax.numpy as jnp
import numpy as np

from jtrack import nets, region
from jtrack.pretrain import augment
from jtrack.pretrain.config import PretrainConfig


@dataclasses.dataclass(frozen=True, eq=False)
class Domain:
    """One training sequence, preprocessed.

    Attributes:
      name: sequence name.
      data: ``(T, h, w, C) float32`` cached feature maps (frozen backbone),
        the untrained front's output (only the last blocks train), or
        ``(T, S, S, 3) uint8`` region crops (the whole backbone trains).
      gt: ``(T, 4) float32`` xywh frame boxes (only frames with a valid box).
      rbox: ``(T, 4) float32`` xywh search region of each frame.
      image_wh: ``(T, 2) float32`` frame width, height.
      train: indices of training frames and their augmented views; ``held``:
        held-out frames (metrics only).
      augmented: number of augmented views, stored after the frames.
    """

    name: str
    data: np.ndarray
    gt: np.ndarray
    rbox: np.ndarray
    image_wh: np.ndarray
    train: np.ndarray
    held: np.ndarray
    augmented: int = 0

    def __len__(self) -> int:
        """Frames of the sequence (augmented views not counted)."""
        return len(self.gt) - self.augmented


def _matches(name: str, pattern: str) -> bool:
    n, p = name.lower(), pattern.lower()
    return n == p or n.rsplit("-", 1)[0] == p  # 'Jogging' excludes Jogging-1/-2


def apply_exclude(names: Seq[str], exclude: Iterable[str]) -> tuple[list[int], set[str]]:
    """Indices of ``names`` NOT matched by any ``exclude`` pattern (exact,
    case-insensitive; a base name also matches its ``-k`` targets), and the
    set of patterns that matched nothing (likely typos: callers warn)."""
    exclude = [e for e in exclude if e]
    used = set()
    keep = []
    for i, n in enumerate(names):
        hit = [e for e in exclude if _matches(n, e)]
        used.update(hit)
        if not hit:
            keep.append(i)
    return keep, set(exclude) - used


@functools.partial(jax.jit, static_argnums=(2, 3))
def _crop(frame, box, scale: float, size: int):
    rbox = region.region_box(box, scale)
    return region.crop(frame, rbox, size).astype(jnp.uint8), rbox


@functools.partial(jax.jit, static_argnums=(0, 1))
def _backbone_apply(name: str, front_of: int, params, images):
    bb = nets.get_backbone(name)
    apply = bb.cut(front_of).front if front_of else bb.apply
    return apply(params, images.astype(jnp.float32))


def encode(backbone: str, params, crops: np.ndarray, chunk: int = 8,
           front_of: int = 0) -> np.ndarray:
    """(T, S, S, 3) uint8 crops -> (T, h, w, C) float32 feature maps (or, with
    ``front_of`` = k > 0, the output of the trunk before its last k blocks),
    ``chunk`` crops per backbone call (one fixed shape: one compilation)."""
    pad = -len(crops) % chunk
    padded = np.concatenate([crops, np.repeat(crops[-1:], pad, 0)]) if pad else crops
    return np.concatenate([
        np.asarray(_backbone_apply(backbone, front_of, params, padded[s:s + chunk]))
        for s in range(0, len(padded), chunk)])[:len(crops)]


def crop(frame: np.ndarray, box: np.ndarray, scale: float, size: int
         ) -> tuple[np.ndarray, np.ndarray]:
    """The tracker's search region of ``box`` in ``frame``: (size, size, 3)
    uint8 crop of ``scale`` x the box, and its (4,) xywh region box."""
    img, rb = _crop(jnp.asarray(frame), jnp.asarray(box), scale, size)
    return np.asarray(img), np.asarray(rb)


def valid_box(box: np.ndarray) -> bool:
    """A usable ground-truth box: finite, positive size (else: target absent)."""
    return bool(np.all(np.isfinite(box)) and box[2] > 0 and box[3] > 0)


def prepare_domain(config: PretrainConfig, name: str, frames: Iterable[np.ndarray],
                   gt: np.ndarray, backbone_params=None, holdout: float = 0.1,
                   chunk: int = 8) -> Domain:
    """Crop (and, with a frozen backbone, encode) every frame of a sequence.

    Args:
      frames: ``(H, W, 3) uint8`` frames, one per ``gt`` row.
      gt: ``(T, 4)`` xywh 0-based; frames with a NaN / non-positive box are
        skipped (absent target).
      backbone_params: the pretrained backbone, needed unless all of it trains.
      holdout: fraction of frames (the LAST ones, so they are not temporal
        neighbours of training frames) kept for held-out metrics.
    """
    tc = config.tracker
    gt = np.asarray(gt, np.float32).reshape(-1, 4)
    if not 0.0 <= holdout < 1.0:
        raise ValueError(f"holdout must be in [0, 1), got {holdout}")
    n = sum(valid_box(b) for b in gt)
    n_held = max(0, min(int(round(holdout * n)), n - 1))
    views = [], [], [], []  # crops, region boxes, boxes, frame sizes
    extra = [], [], [], []  # augmented views of the training frames
    n_seen = 0
    for i, frame in enumerate(frames):
        n_seen += 1
        if i >= len(gt):
            raise ValueError(f"domain {name!r}: more frames than the {len(gt)} ground-truth rows")
        b = gt[i]
        if not valid_box(b):
            continue
        j = len(views[0])
        for out, v in zip(views, (*crop(frame, b, tc.region_scale, tc.region_size), b,
                                  (frame.shape[1], frame.shape[0]))):
            out.append(v)
        if j < n - n_held:
            for c in range(config.augment.copies):
                for out, v in zip(extra, augmented_view(config, name, j, c, frame, b)):
                    out.append(v)
    if n_seen != len(gt):
        raise ValueError(f"domain {name!r}: {n_seen} frames but {len(gt)} ground-truth rows")
    if n < 2:
        raise ValueError(f"domain {name!r}: needs at least 2 frames with a valid box, "
                         f"has {n}")
    crops, rboxes, boxes, whs = (a + b for a, b in zip(views, extra))
    data = np.stack(crops)
    if config.cached != "image":
        if backbone_params is None:
            raise ValueError("prepare_domain needs backbone_params unless the whole "
                             "backbone trains")
        front_of = config.backbone_blocks if config.cached == "mid" else 0
        data = encode(tc.backbone, backbone_params, data, chunk, front_of)
    n_extra = len(extra[0])
    return Domain(name=name, data=data, gt=np.stack(boxes).astype(np.float32),
                  rbox=np.stack(rboxes).astype(np.float32),
                  image_wh=np.asarray(whs, np.float32),
                  train=np.concatenate([np.arange(n - n_held), np.arange(n, n + n_extra)]),
                  held=np.arange(n - n_held, n), augmented=n_extra)


def augmented_view(config: PretrainConfig, name: str, index: int, copy: int,
                   frame: np.ndarray, box: np.ndarray) -> tuple:
    """Copy ``copy`` of training frame ``index`` (:mod:`jtrack.pretrain.augment`):
    (crop (S, S, 3) uint8, region box (4,), box (4,) in the view's frame,
    frame size (2,))."""
    aug, tc = config.augment, config.tracker
    rng = augment.rng_for(aug, name, index, copy)
    if rng.uniform() < aug.flip:
        frame, box = frame[:, ::-1], augment.flip_box(box, frame.shape[1])
    img, rb = crop(np.ascontiguousarray(frame), augment.jitter_box(aug, rng, box),
                   tc.region_scale, tc.region_size)
    return augment.photometric(aug, rng, img), rb, box, (frame.shape[1], frame.shape[0])


def draw(domains: Seq[Domain], frames_per_batch: int, data_seed: int, step: int
         ) -> tuple[int, np.ndarray]:
    """(domain index, frame indices (B,)) of iteration ``step``: a pure
    function of ``(data_seed, step)``."""
    d, rng = domain_of_step(len(domains), data_seed, step, 1)
    train = domains[d].train
    idx = rng.choice(train, frames_per_batch, replace=len(train) < frames_per_batch)
    return d, np.asarray(idx)


def domain_of_step(n_domains: int, data_seed: int, step: int, stream: int
                   ) -> tuple[int, np.random.Generator]:
    """The domain of iteration ``step`` (one epoch = every domain once, in a
    fresh order per epoch) and a generator for its draws (``stream`` keeps
    different uses apart): a pure function of ``(data_seed, step)``."""
    epoch, i = divmod(int(step), n_domains)
    d = int(np.random.default_rng([data_seed, epoch]).permutation(n_domains)[i])
    return d, np.random.default_rng([data_seed, epoch, i, stream])


def host_batch(config: PretrainConfig, domain: Domain, d: int, idx: np.ndarray,
               valid: np.ndarray | None = None) -> dict:
    """Numpy batch of frames ``idx`` (B,) of ``domain`` (index ``d``):
    ``fmap``, ``mid`` or ``image`` (B, ...; :attr:`PretrainConfig.cached`),
    ``gt``/``rbox`` (B, 4), ``image_wh`` (B, 2), ``frame_valid`` (B,) float32
    (0 = padding), ``domain`` () int32."""
    return {config.cached: domain.data[idx], "gt": domain.gt[idx], "rbox": domain.rbox[idx],
            "image_wh": domain.image_wh[idx],
            "frame_valid": (np.ones(len(idx), np.float32) if valid is None
                            else np.asarray(valid, np.float32)),
            "domain": np.int32(d)}


def held_batches(config: PretrainConfig, domains: Seq[Domain]):
    """Yield every held-out frame once, as :func:`host_batch` batches of
    ``frames_per_batch`` frames (the last one padded, ``frame_valid`` 0)."""
    b = config.frames_per_batch
    for d, dom in enumerate(domains):
        held = dom.held
        for s in range(0, len(held), b):
            idx = held[s:s + b]
            valid = np.ones(b, np.float32)
            if len(idx) < b:
                valid[len(idx):] = 0.0
                idx = np.concatenate([idx, np.repeat(idx[-1:], b - len(idx))])
            yield host_batch(config, dom, d, idx, valid)
