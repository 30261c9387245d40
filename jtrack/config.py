"""TrackerConfig: every knob of the tracker, frozen and hashable.

Defaults follow the published MDNet settings (Nam & Han, CVPR 2016, and the
py-MDNet options file) where jtrack has the same knob; fields that exist only
because of the region-once design say so. A config is a static argument of
the jitted functions: changing a field recompiles, changing data does not.
"""

from __future__ import annotations

import dataclasses
import math


# Online rates for the shipped pretrained head (init_params(..., head="pretrained")):
# fc4/fc5 at 0.1x keep what pretraining learned, which MDNet's 1x overwrites on
# the first frame (leave-domains-out validation, docs/pretraining.md).
PRETRAINED_LAYER_LR: tuple[tuple[str, float], ...] = (("fc4", 0.1), ("fc5", 0.1),
                                                      ("fc6", 10.0))


@dataclasses.dataclass(frozen=True)
class TrackerConfig:
    # --- network -----------------------------------------------------------
    backbone: str = "efficientnet_lite0"  # registry name (jtrack.nets, jtrack.backbones)
    roi_size: int = 3               # RoIAlign output is roi_size x roi_size
    roi_sampling: int = 2           # bilinear points per bin and axis
    feature_norm: bool = True       # scale each pooled feature to unit RMS (backbone-agnostic
                                    # head; turn off for fc4 weights trained on raw features)
    # fc4/fc5 width. 256, not MDNet's 512: our pooled features are 360-d
    # (MDNet's 4608), and online training costs ~2.5x less on CPU with no
    # loss on the validation domains (docs/realtime.md).
    hidden: int = 256
    # Several targets in one call (multi-target step_many, init_many):
    # "batch" = one batched backbone pass and one vmapped online update of
    # the heads (accelerators), "map" = one region after the other inside
    # the same compiled program, and the due heads trained one at a time
    # unless every slot is due (CPU: one region's activations stay in cache;
    # a batch of 4 regions took 2-3x as long as 4 single passes here),
    # "auto" = "map" on CPU, "batch" elsewhere.
    region_batching: str = "auto"
    dropout: float = 0.5

    # --- search region (region-once design) --------------------------------
    region_scale: float = 3.0       # region side = scale x max(side, mean side)
    region_size: int = 219          # region resampled to region_size^2 pixels
    init_region_scale: float = 5.0  # wider region on the first frame (negatives)
    failure_widen: float = 1.5      # search region and translation x this after a failure
    # After a failure the candidates' w/h ratio also varies by
    # lost_aspect ** U(-1, 1) at constant area: the re-detection searches
    # other shapes, for targets lost because they deformed (a diver
    # tucking). 1 = off (py-MDNet keeps the shape). Not in py-MDNet: on OTB
    # Diving (3 seeds) AUC 0.275 -> 0.432; the cost: a rigid target lost
    # for many frames comes back with a wrong shape (docs/results.md).
    lost_aspect: float = 2.0
    max_widen: float = 2.25         # cap on the compounded widening

    # --- candidates --------------------------------------------------------
    n_candidates: int = 256
    trans: float = 0.6              # Gaussian translation, x mean(w, h)
    scale: float = 1.05             # Gaussian scale step (factor per unit)
    aspect: float = 1.0             # w/h jitter factor aspect ** U(-1, 1) (1 = fixed aspect)
    top_k: int = 5
    outlier_reject: bool = True     # drop top-K boxes far from their median
    outlier_iou: float = 0.5        # keep top-K boxes with IoU >= this to the median box

    # --- training-sample generators (MDNet SampleGenerator settings) --------
    pos_trans: float = 0.1          # Gaussian positives
    pos_scale: float = 1.3
    neg_trans_init: float = 1.0     # uniform negatives on the first frame
    neg_scale_init: float = 1.6     # (plus as many anywhere in the first region)
    neg_trans_update: float = 2.0   # uniform negatives in updates, clipped to the region
    neg_scale_update: float = 1.3
    bbreg_trans: float = 0.3
    bbreg_scale: float = 1.6
    bbreg_aspect: float = 1.1       # w/h jitter of regression samples (py-MDNet aspect_bbreg)
    min_box_size: float = 4.0       # output boxes are at least this many pixels a side
    # Candidate and output boxes stay within these limits relative to the first
    # box: sqrt(w h) in [min, max] x the first box's, w/h within a factor.
    min_size_factor: float = 0.2
    max_size_factor: float = 5.0
    max_aspect_change: float = 4.0

    # --- first frame -------------------------------------------------------
    n_pos_init: int = 500
    n_neg_init: int = 2000          # py-MDNet: 5000 (pooling them cost 60 ms more)
    pos_iou_init: float = 0.7
    neg_iou_init: float = 0.5
    iters_init: int = 50
    # At most this many of them run on the first frame; the rest run over
    # the next frames, iters_per_frame at a time, from the sample memory (a
    # faster first frame). >= iters_init or iters_per_frame = 0: all at once
    # (py-MDNet).
    iters_init_first: int = 20
    lr_init: float = 0.0005

    # --- online updates ----------------------------------------------------
    n_pos_update: int = 50
    n_neg_update: int = 200
    pos_iou_update: float = 0.7
    neg_iou_update: float = 0.3
    iters_update: int = 15
    # Spread each online update over the following frames, this many SGD
    # iterations per frame (the state carries what is left; the total is
    # iters_update rounded up to a multiple): no frame stalls on a whole
    # update. A new update (a failure, the long-term interval) restarts the
    # count. 0 = all iters_update on the frame that asks for it (py-MDNet).
    # 3: the 15 iterations over 5 frames.
    iters_per_frame: int = 3
    lr_update: float = 0.001
    batch_pos: int = 32
    batch_neg: int = 96
    batch_neg_cand: int = 256       # hard negative mining pool per iteration (py-MDNet: 1024)
    hard_negative_mining: bool = True
    frames_long: int = 100          # positive memory (frames)
    frames_short: int = 20          # negative memory (frames)
    long_interval: int = 10         # long-term update every N frames
    first_frame_weight: float = 1.0  # >1 trusts the first frame's positives more
    # Ablation of MDNet's "old negatives are kept": when True, every online
    # update first re-pools all stored negatives from the CURRENT frame's
    # feature map, each box placed around the current target as it was around
    # its own frame's target (region-once: no other frame's image is kept).
    reextract_negatives: bool = False
    online_update: bool = True

    # --- optimiser (optax.multi_transform per layer) -----------------------
    # (layer, learning-rate multiplier); layers absent or with 0 are frozen.
    # MDNet's rates; with the shipped pretrained head use PRETRAINED_LAYER_LR.
    layer_lr: tuple[tuple[str, float], ...] = (("fc4", 1.0), ("fc5", 1.0), ("fc6", 10.0))
    momentum: float = 0.9
    weight_decay: float = 5e-4
    grad_clip: float = 10.0
    # Online updates of a meta-learned head (params["head_lr"], jtrack.meta):
    # "layer" = the per-layer rates above from a fresh optimizer state;
    # "learned" = plain SGD at the head's learned per-element rates.
    online_rates: str = "layer"

    # --- bounding-box regression -------------------------------------------
    bbreg: bool = True
    # False = py-MDNet: the refinement is output only; the next search and
    # the training samples stay centred on the top-K mean. True feeds the
    # refined box back: a regressor fitted on the first frame then compounds
    # its error frame after frame on a target that deforms (OTB Diving: the
    # box went from 21x129 to 15x178 while the diver bent).
    bbreg_feedback: bool = False
    n_bbreg: int = 1000
    bbreg_iou: float = 0.6
    bbreg_alpha: float = 1000.0     # ridge penalty (py-MDNet's Ridge alpha)

    # --- misc --------------------------------------------------------------
    success_threshold: float = 0.5  # target probability below this = "lost"
    # When lost, keep the previous box instead of moving to the (unreliable)
    # top-K mean (pytracking's DiMP keeps its position when "not_found");
    # the search still widens. Off = py-MDNet. Measured in docs/results.md:
    # it helps where the target changes shape and the classifier loses it
    # (Diving), it hurts where the target is lost while moving fast and then
    # leaves the frame (the box waits where it was lost, not at the exit).
    hold_on_failure: bool = False
    score_history: int = 10

    def __post_init__(self):
        errors = []

        def check(ok, msg):
            if not ok:
                errors.append(msg)

        for name in ("n_candidates", "top_k", "n_pos_init", "n_neg_init",
                     "n_pos_update", "n_neg_update", "batch_pos", "batch_neg",
                     "batch_neg_cand", "frames_long", "frames_short",
                     "long_interval", "region_size", "roi_size", "roi_sampling",
                     "hidden", "n_bbreg", "score_history"):
            v = getattr(self, name)
            check(isinstance(v, int) and v > 0, f"{name} must be a positive int, got {v!r}")
        for name in ("iters_init", "iters_update", "iters_per_frame"):
            v = getattr(self, name)
            check(isinstance(v, int) and v >= 0, f"{name} must be an int >= 0, got {v!r}")
        for name in ("lr_init", "lr_update", "weight_decay", "grad_clip", "trans",
                     "bbreg_alpha", "first_frame_weight", "pos_trans", "neg_trans_init",
                     "neg_trans_update", "bbreg_trans", "min_box_size"):
            v = getattr(self, name)
            check(math.isfinite(v) and v >= 0, f"{name} must be finite and >= 0, got {v!r}")
        check(self.region_scale >= 1.0, f"region_scale must be >= 1, got {self.region_scale!r}")
        check(self.init_region_scale >= self.region_scale,
              "init_region_scale must be >= region_scale")
        check(0.0 < self.min_size_factor <= 1.0 <= self.max_size_factor,
              "need 0 < min_size_factor <= 1 <= max_size_factor")
        check(self.max_aspect_change >= 1.0, "max_aspect_change must be >= 1")
        check(self.failure_widen >= 1.0, "failure_widen must be >= 1")
        check(self.max_widen >= 1.0, "max_widen must be >= 1")
        for name in ("scale", "pos_scale", "neg_scale_init", "neg_scale_update", "bbreg_scale",
                     "aspect", "bbreg_aspect", "lost_aspect"):
            v = getattr(self, name)
            check(v >= 1.0, f"{name} must be >= 1, got {v!r}")
        check(0.0 <= self.dropout < 1.0, "dropout must be in [0, 1)")
        check(0.0 <= self.momentum < 1.0, "momentum must be in [0, 1)")
        check(0.0 < self.success_threshold < 1.0, "success_threshold must be in (0, 1)")
        for name in ("pos_iou_init", "neg_iou_init", "pos_iou_update",
                     "neg_iou_update", "bbreg_iou", "outlier_iou"):
            v = getattr(self, name)
            check(0.0 <= v <= 1.0, f"{name} must be in [0, 1], got {v!r}")
        check(self.region_batching in ("auto", "batch", "map"),
              f"region_batching must be 'auto', 'batch' or 'map', got {self.region_batching!r}")
        check(self.top_k <= self.n_candidates, "top_k must be <= n_candidates")
        check(self.batch_neg <= self.batch_neg_cand, "batch_neg must be <= batch_neg_cand")
        check(isinstance(self.iters_init_first, int) and self.iters_init_first > 0,
              f"iters_init_first must be a positive int, got {self.iters_init_first!r}")
        check(self.online_rates in ("layer", "learned"),
              f"online_rates must be 'layer' or 'learned', got {self.online_rates!r}")
        check(all(isinstance(n, str) and m >= 0 for n, m in self.layer_lr),
              "layer_lr must be ((layer, multiplier >= 0), ...)")
        if errors:
            raise ValueError("invalid TrackerConfig: " + "; ".join(errors))

    @property
    def init_region_size(self) -> int:
        """Pixel side of the first-frame region: same pixels per target as
        tracking regions, so features match in scale."""
        return int(round(self.region_size * self.init_region_scale / self.region_scale))

    def replace(self, **changes) -> "TrackerConfig":
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)


def _parse_value(text: str):
    """A JSON value, with lists as tuples (config fields must be hashable);
    text that is not JSON is taken as a bare string (``backbone=vggm``)."""
    import json

    try:
        v = json.loads(text)
    except json.JSONDecodeError:
        return text

    def tup(x):
        return tuple(tup(i) for i in x) if isinstance(x, list) else x
    return tup(v)


def _check_types(config: TrackerConfig) -> None:
    # Each value must have its default's type, so ``online_update=False``
    # (a bare string) is an error naming the field, not a failure deep in jit.
    for f in dataclasses.fields(TrackerConfig):
        want, got = type(f.default), getattr(config, f.name)
        if want not in (bool, int, float, str, tuple):
            continue
        if want is float:
            ok = isinstance(got, (int, float)) and not isinstance(got, bool)
        else:
            ok = isinstance(got, want) and (want is not int or not isinstance(got, bool))
        if not ok:
            hint = " (JSON: true/false)" if want is bool else ""
            raise ValueError(f"{f.name}={got!r} is a {type(got).__name__}, "
                             f"expected a {want.__name__}{hint}")


def load_config(path: str | None = None, overrides=(), backbone: str | None = None
                ) -> TrackerConfig:
    """TrackerConfig from a JSON file of fields, ``field=value`` overrides
    (JSON values; later ones win) and an optional backbone name.

    Raises ValueError naming the problem: unreadable or invalid JSON, a
    malformed override, an unknown field, a value of the wrong type or out of
    range; OSError when ``path`` cannot be opened.
    """
    import json

    fields: dict = {}
    if path:
        with open(path, encoding="utf-8") as f:
            try:
                data = json.load(f)
            except json.JSONDecodeError as e:
                raise ValueError(f"config file {path} is not valid JSON: {e}") from e
        if not isinstance(data, dict):
            raise ValueError(f"config file {path} must hold a JSON object of fields")
        fields.update({k: _parse_value(json.dumps(v)) for k, v in data.items()})
    fields.update(parse_overrides(list(overrides)
                                  + ([f"backbone={backbone}"] if backbone else [])))
    return with_fields(TrackerConfig(), fields)


def parse_overrides(items) -> dict:
    """``["field=value", ...]`` (JSON values; bare text is a string; later
    ones win) -> {field: value}. Raises ValueError on an item without '='."""
    fields = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise ValueError(f"override expects field=value, got {item!r}")
        fields[key.strip()] = _parse_value(value.strip())
    return fields


def with_fields(config: TrackerConfig, fields: dict) -> TrackerConfig:
    """``config`` with ``fields`` (JSON-like values: lists become tuples)
    replaced. Raises ValueError naming an unknown field or a value of the
    wrong type or out of range."""
    import json

    known = {f.name for f in dataclasses.fields(TrackerConfig)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ValueError(f"unknown TrackerConfig fields: {unknown}")
    config = config.replace(**{k: _parse_value(json.dumps(v)) for k, v in fields.items()})
    _check_types(config)
    return config
