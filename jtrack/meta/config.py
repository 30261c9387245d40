"""MetaConfig: every knob of meta-learning the first-frame adaptation.

Meta-Tracker (Park & Berg, ECCV 2018) as MAML with learned per-parameter
learning rates (Meta-SGD): the meta-parameters are the head a new target
starts from and one rate per head element. An episode adapts that head on
ONE frame of a training domain exactly as the tracker's first frame does
(:func:`jtrack.tracker.first_frame`, ``tracker.iters_init`` steps)
and scores it on later frames of the same domain; the meta-gradient flows
through the whole inner loop (``first_order``: without second derivatives).
"""

from __future__ import annotations

import dataclasses
import math

from jtrack.config import TrackerConfig
from jtrack.pretrain.config import PretrainConfig


@dataclasses.dataclass(frozen=True)
class MetaConfig:
    # The network (``pretrain.tracker``: its iters_init is the number of
    # inner steps K) and the sampling of the query frames' positives and
    # negatives (``pretrain.n_pos``, ``n_neg``, IoU thresholds, ``top_k``).
    pretrain: PretrainConfig = PretrainConfig(tracker=TrackerConfig(iters_init=5))

    # --- episodes ------------------------------------------------------------
    episodes_per_batch: int = 8     # one domain per meta-step, as in pretraining
    query_frames: int = 4           # frames the adapted head is scored on ...
    horizon: int = 20               # ... drawn from the next `horizon` frames
    first_every: int = 4            # every k-th frame may start an episode (its
                                    # wider first-frame region is cached)

    # --- outer optimiser (Adam) ----------------------------------------------
    meta_lr: float = 1e-4           # on the initial head
    rate_lr: float = 1e-5           # on the per-element rates
    init_rate: float = 0.005        # starting rate x the tracker's layer_lr multiplier
    grad_clip: float = 10.0
    first_order: bool = False

    def __post_init__(self):
        errors = []
        if not isinstance(self.pretrain, PretrainConfig):
            errors.append("pretrain must be a PretrainConfig")
        elif self.pretrain.train_backbone:
            errors.append("meta-learning keeps the backbone frozen (no 'backbone' in "
                          "pretrain.layer_lr)")
        elif self.pretrain.augment.copies:
            errors.append("meta-learning draws its queries by time: no augmented views "
                          "(pretrain.augment.copies = 0)")
        elif self.tracker.iters_init < 1:
            errors.append("tracker.iters_init (the inner steps) must be >= 1")
        for name in ("episodes_per_batch", "query_frames", "horizon", "first_every"):
            v = getattr(self, name)
            if not (isinstance(v, int) and v > 0):
                errors.append(f"{name} must be a positive int, got {v!r}")
        for name in ("meta_lr", "rate_lr", "init_rate", "grad_clip"):
            v = getattr(self, name)
            if not (math.isfinite(v) and v >= 0):
                errors.append(f"{name} must be finite and >= 0, got {v!r}")
        if errors:
            raise ValueError("invalid MetaConfig: " + "; ".join(errors))

    @property
    def tracker(self) -> TrackerConfig:
        return self.pretrain.tracker

    def replace(self, **changes) -> "MetaConfig":
        return dataclasses.replace(self, **changes)
