"""Training sequences for pretraining: dataset folders + synthetic photo
sequences, minus an explicit exclude list (evaluation sequences).

Sources are returned as ``(name, load)`` with ``load() -> (frames, gt)`` and
read only when loaded, so an excluded sequence is never even opened.
Synthetic sequences are named ``photo_<seed>``
(:func:`jtrack.data.synthetic.photo_sequence`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence as Seq

from jtrack.data import load_dataset, read_sequence, sequence_kind
from jtrack.data.synthetic import photo_sequence
from jtrack.pretrain.data import apply_exclude


def collect_sources(roots: Seq[str], n_synthetic: int, synthetic_frames: int,
                    synthetic_hw: tuple[int, int], synthetic_seed: int, exclude: Iterable[str],
                    max_frames: int | None = None
                    ) -> tuple[list[tuple[str, Callable]], set[str]]:
    """[(name, load)] of every training sequence not matched by ``exclude``,
    where ``load() -> (frames iterable, gt (T, 4))``, and the exclude patterns
    that matched nothing. Loading is lazy, so excluded sequences are never read."""
    sources = []
    for root in roots:
        kind = sequence_kind(root)
        seqs = read_sequence(kind, root) if kind else load_dataset("auto", root)
        for s in seqs:
            s = s.truncated(max_frames) if max_frames else s
            sources.append((s.name, lambda s=s: (s.iter_frames(), s.gt)))
    for seed in range(synthetic_seed, synthetic_seed + n_synthetic):
        sources.append((f"photo_{seed}", lambda seed=seed: photo_sequence(
            seed, synthetic_frames, tuple(synthetic_hw))))
    names = [n for n, _ in sources]
    if len(set(names)) != len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"duplicate sequence names across roots: {dup}")
    keep, unused = apply_exclude(names, exclude)
    return [sources[i] for i in keep], unused
