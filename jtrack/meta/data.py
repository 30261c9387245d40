"""Meta-learning episodes from training domains.

A :class:`MetaDomain` is a pretraining :class:`~jtrack.pretrain.data.Domain`
(every frame's tracking region, as cached feature maps) plus, for every
``first_every``-th frame, the wider first-frame region the tracker's
``init`` would crop (``init_region_scale``), also encoded once. An episode
is one such first frame and ``query_frames`` later frames within
``horizon``, all from the training (or all from the held-out) frames.
Batches are a pure function of ``(data_seed, step)``, so a resumed run sees
the batches it would have seen.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence as Seq

import numpy as np

from jtrack.meta.config import MetaConfig
from jtrack.pretrain.data import (Domain, crop, domain_of_step, encode, prepare_domain,
                                  valid_box)


@dataclasses.dataclass(frozen=True, eq=False)
class MetaDomain:
    """One training sequence for meta-learning.

    Attributes:
      domain: the pretraining domain (tracking regions, boxes, train/held split).
      first: ``(F,)`` frame indices (into ``domain``) with a cached first-frame region.
      init_data: ``(F, h0, w0, C) float32`` feature maps of those regions.
      init_rbox: ``(F, 4) float32`` xywh first-frame region boxes.
    """

    domain: Domain
    first: np.ndarray
    init_data: np.ndarray
    init_rbox: np.ndarray

    @property
    def name(self) -> str:
        return self.domain.name

    def episodes(self, config: MetaConfig, held: bool = False) -> list[tuple[int, np.ndarray]]:
        """``[(j, queries)]``: first frame ``self.first[j]`` and the frames
        (ascending) it may be scored on, within the same split."""
        pool = self.domain.held if held else self.domain.train
        out = []
        for j, t in enumerate(self.first):
            if t not in pool:
                continue
            q = pool[(pool > t) & (pool <= t + config.horizon)]
            if len(q):
                out.append((j, q))
        return out


def prepare_meta_domain(config: MetaConfig, name: str, frames: Iterable[np.ndarray],
                        gt: np.ndarray, backbone_params, holdout: float = 0.1,
                        chunk: int = 8) -> MetaDomain:
    """:func:`~jtrack.pretrain.data.prepare_domain` plus the first-frame
    regions, in one pass over ``frames``. Raises ValueError when the
    sequence yields no training episode."""
    tc = config.tracker
    gt = np.asarray(gt, np.float32).reshape(-1, 4)
    crops, rboxes, first = [], [], []

    def frames_and_first_regions():
        k = 0  # index among the frames with a box (the domain's frames)
        for i, frame in enumerate(frames):
            if i < len(gt) and valid_box(gt[i]):
                if k % config.first_every == 0:
                    img, rb = crop(frame, gt[i], tc.init_region_scale, tc.init_region_size)
                    crops.append(img)
                    rboxes.append(rb)
                    first.append(k)
                k += 1
            yield frame

    domain = prepare_domain(config.pretrain, name, frames_and_first_regions(), gt,
                            backbone_params, holdout, chunk)
    md = MetaDomain(domain=domain, first=np.asarray(first),
                    init_data=encode(tc.backbone, backbone_params, np.stack(crops), chunk),
                    init_rbox=np.stack(rboxes).astype(np.float32))
    if not md.episodes(config):
        raise ValueError(f"domain {name!r}: no training episode (needs a first frame "
                         f"with a later training frame within {config.horizon})")
    return md


def draw(config: MetaConfig, domains: Seq[MetaDomain], data_seed: int, step: int
         ) -> tuple[int, np.ndarray, np.ndarray]:
    """(domain index, first-frame slots (E,), query frames (E, Q)) of meta-step
    ``step``: one domain per step, a fresh domain order per epoch."""
    d, rng = domain_of_step(len(domains), data_seed, step, 2)
    eps = domains[d].episodes(config)
    pick = rng.choice(len(eps), config.episodes_per_batch,
                      replace=len(eps) < config.episodes_per_batch)
    js, qs = [], []
    for p in pick:
        j, q = eps[p]
        js.append(j)
        qs.append(rng.choice(q, config.query_frames, replace=len(q) < config.query_frames))
    return d, np.asarray(js), np.stack(qs)


def host_batch(md: MetaDomain, js: np.ndarray, qs: np.ndarray,
               valid: np.ndarray | None = None) -> dict:
    """Numpy batch of E episodes: ``init_fmap`` (E, h0, w0, C), ``init_gt``,
    ``init_rbox`` (E, 4), ``init_wh`` (E, 2); ``q_fmap`` (E, Q, h, w, C),
    ``q_gt``, ``q_rbox`` (E, Q, 4), ``q_wh`` (E, Q, 2); ``valid`` (E,)
    float32 (0 = padding)."""
    dom = md.domain
    t = md.first[js]
    return {"init_fmap": md.init_data[js], "init_gt": dom.gt[t], "init_rbox": md.init_rbox[js],
            "init_wh": dom.image_wh[t], "q_fmap": dom.data[qs], "q_gt": dom.gt[qs],
            "q_rbox": dom.rbox[qs], "q_wh": dom.image_wh[qs],
            "valid": (np.ones(len(js), np.float32) if valid is None
                      else np.asarray(valid, np.float32))}


def held_batches(config: MetaConfig, domains: Seq[MetaDomain]):
    """Every held-out episode once (queries evenly spread over its horizon),
    as :func:`host_batch` batches of ``episodes_per_batch`` (the last one
    padded, ``valid`` 0)."""
    e, nq = config.episodes_per_batch, config.query_frames
    for md in domains:
        eps = md.episodes(config, held=True)
        for s in range(0, len(eps), e):
            chunk = eps[s:s + e]
            js = np.asarray([j for j, _ in chunk])
            qs = np.stack([q[np.linspace(0, len(q) - 1, nq).round().astype(int)]
                           for _, q in chunk])
            valid = np.zeros(e, np.float32)
            valid[:len(chunk)] = 1.0
            pad = e - len(chunk)
            if pad:
                js = np.concatenate([js, np.repeat(js[-1:], pad)])
                qs = np.concatenate([qs, np.repeat(qs[-1:], pad, 0)])
            yield host_batch(md, js, qs, valid)
