"""PretrainConfig: every knob of offline multi-domain pretraining (frozen, hashable).

Defaults follow MDNet's offline stage (Nam & Han, CVPR 2016; py-MDNet's
``pretrain/options``): 8 frames per iteration from one domain, 32 positives
(IoU >= 0.7) and 96 negatives (IoU <= 0.5) per frame, SGD with momentum
0.9, weight decay 5e-4, fc6 at 10x. The network geometry (backbone,
RoIAlign, feature normalisation, head width, search region) comes from the
embedded :class:`jtrack.TrackerConfig`, so a pretrained head always matches
the tracker that will load it.
"""

from __future__ import annotations

import dataclasses
import math

from jtrack.config import TrackerConfig
from jtrack.pretrain.augment import Augment


@dataclasses.dataclass(frozen=True)
class PretrainConfig:
    tracker: TrackerConfig = TrackerConfig()

    # --- one iteration: one domain, frames_per_batch frames -----------------
    frames_per_batch: int = 8
    n_pos: int = 32
    n_neg: int = 96
    pos_iou: float = 0.7
    neg_iou: float = 0.5
    pos_trans: float = 0.1          # Gaussian positives (MDNet SampleGenerator)
    pos_scale: float = 1.3
    neg_trans: float = 1.0          # uniform negatives, clipped to the search region
    neg_scale: float = 1.6
    top_k: int = 5                  # TrackTopKAcc: boxes averaged like the tracker

    # --- optimiser (jtrack.optim.make_optimizer: optax.multi_transform) ----
    # (layer, multiplier); 'backbone' absent or 0 = frozen backbone, whose
    # feature maps are then computed once per frame and cached.
    layer_lr: tuple[tuple[str, float], ...] = (("fc4", 1.0), ("fc5", 1.0), ("fc6", 10.0))
    # With a trained backbone: train only its last N blocks (0 = all of it);
    # the front's output is then cached per frame like a frozen feature map.
    backbone_blocks: int = 0
    # Extra augmented views of every training frame (jtrack.pretrain.augment).
    augment: Augment = Augment()
    lr: float = 1e-3
    momentum: float = 0.9
    weight_decay: float = 5e-4
    grad_clip: float = 10.0

    def __post_init__(self):
        errors = []
        if not isinstance(self.tracker, TrackerConfig):
            errors.append("tracker must be a TrackerConfig")
        for name in ("frames_per_batch", "n_pos", "n_neg", "top_k"):
            v = getattr(self, name)
            if not (isinstance(v, int) and v > 0):
                errors.append(f"{name} must be a positive int, got {v!r}")
        if isinstance(self.top_k, int) and self.top_k > self.n_pos + self.n_neg:
            errors.append("top_k must be <= n_pos + n_neg")
        for name in ("pos_iou", "neg_iou"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                errors.append(f"{name} must be in [0, 1], got {v!r}")
        if self.neg_iou >= self.pos_iou:
            errors.append("neg_iou must be < pos_iou (positives and negatives would overlap)")
        for name in ("lr", "weight_decay", "grad_clip", "pos_trans", "neg_trans"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                errors.append(f"{name} must be finite and >= 0, got {v!r}")
        for name in ("pos_scale", "neg_scale"):
            if getattr(self, name) < 1.0:
                errors.append(f"{name} must be >= 1")
        if not 0.0 <= self.momentum < 1.0:
            errors.append("momentum must be in [0, 1)")
        known = {"backbone", "fc4", "fc5", "fc6"}
        for item in self.layer_lr:
            if not (len(item) == 2 and item[0] in known and item[1] >= 0):
                errors.append(f"layer_lr entries must be (one of {sorted(known)}, "
                              f"multiplier >= 0), got {item!r}")
        if not (isinstance(self.backbone_blocks, int) and self.backbone_blocks >= 0):
            errors.append(f"backbone_blocks must be an int >= 0, got {self.backbone_blocks!r}")
        elif self.backbone_blocks and not self.train_backbone:
            errors.append("backbone_blocks > 0 needs a trained backbone "
                          "(layer_lr with backbone > 0)")
        if isinstance(self.augment, Augment):
            errors += self.augment.errors()
        else:
            errors.append("augment must be an Augment")
        if errors:
            raise ValueError("invalid PretrainConfig: " + "; ".join(errors))

    @property
    def train_backbone(self) -> bool:
        """Whether the backbone gets gradient updates (else: cached features)."""
        return dict(self.layer_lr).get("backbone", 0.0) > 0

    @property
    def cached(self) -> str:
        """What a domain caches per frame: ``'fmap'`` (frozen backbone),
        ``'mid'`` (the front of a backbone whose last blocks train) or
        ``'image'`` (the whole backbone trains)."""
        if not self.train_backbone:
            return "fmap"
        return "mid" if self.backbone_blocks else "image"

    def replace(self, **changes) -> "PretrainConfig":
        return dataclasses.replace(self, **changes)


def parse_layer_lr(text: str) -> tuple[tuple[str, float], ...]:
    """``'fc4=1,fc5=1,fc6=10,backbone=0.1'`` -> ``(('fc4', 1.0), ...)``."""
    out = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep:
            raise ValueError(f"layer_lr entry {part!r} must be layer=multiplier")
        try:
            out.append((name.strip(), float(value)))
        except ValueError:
            raise ValueError(f"layer_lr entry {part!r}: {value!r} is not a number") from None
    return tuple(out)
