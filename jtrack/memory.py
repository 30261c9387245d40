"""Sample memory: fixed-capacity ring buffers of pooled features.

Positives are kept long term (``frames_long`` frames), negatives short term
(``frames_short`` frames), as in MDNet. Features are stored once, when their
frame is tracked, and by default never recomputed or rewritten afterwards ("do
not update old negatives"): a slot is only overwritten when the ring wraps
around.
The negatives' boxes are kept too, relative to the target box of their frame
(``neg_rel``), so ``TrackerConfig.reextract_negatives`` can re-pool them
around the current target from the current frame instead.
The first frame's positives live in their own buffer so they can be kept and
weighted (``TrackerConfig.first_frame_weight``).

Shapes (D = pooled feature size):
  first      (P0, D)        first_valid (P0,)
  pos        (Fl, P, D)     pos_valid   (Fl, P)    pos_frame (Fl,) int32
  neg        (Fs, N, D)     neg_valid   (Fs, N)    neg_frame (Fs,) int32
  neg_rel    (Fs, N, 4)     boxes relative to their frame's target (boxes.to_relative)
``*_frame`` holds the frame index a slot was written at, -1 when empty.
"""

from __future__ import annotations

import flax.struct
import jax
import jax.numpy as jnp


@flax.struct.dataclass
class SampleMemory:
    first: jax.Array
    first_valid: jax.Array
    pos: jax.Array
    pos_valid: jax.Array
    pos_frame: jax.Array
    neg: jax.Array
    neg_valid: jax.Array
    neg_frame: jax.Array
    neg_rel: jax.Array
    pos_writes: jax.Array  # () int32, total writes (slot = writes % Fl)
    neg_writes: jax.Array


def create(first: jax.Array, first_valid: jax.Array, frames_long: int,
           n_pos: int, frames_short: int, n_neg: int,
           dtype=jnp.float32) -> SampleMemory:
    """Empty rings plus the first frame's positives ``first`` (P0, D)."""
    d = first.shape[-1]
    return SampleMemory(
        first=first.astype(dtype), first_valid=first_valid.astype(bool),
        pos=jnp.zeros((frames_long, n_pos, d), dtype),
        pos_valid=jnp.zeros((frames_long, n_pos), bool),
        pos_frame=jnp.full((frames_long,), -1, jnp.int32),
        neg=jnp.zeros((frames_short, n_neg, d), dtype),
        neg_valid=jnp.zeros((frames_short, n_neg), bool),
        neg_frame=jnp.full((frames_short,), -1, jnp.int32),
        neg_rel=jnp.zeros((frames_short, n_neg, 4), jnp.float32),
        pos_writes=jnp.zeros((), jnp.int32), neg_writes=jnp.zeros((), jnp.int32))


def _put(ring, valid, frames, writes, x, ok, frame_index, enabled=True):
    slot = writes % ring.shape[0]
    # Disabled: the slot gets its old content back and the head stays. Cheaper
    # than selecting between the old and new rings (a full copy), notably
    # when vmapped over targets (jtrack.multi).
    x = jnp.where(enabled, x.astype(ring.dtype), ring[slot])
    ok = jnp.where(enabled, ok.astype(bool), valid[slot])
    ring = jax.lax.dynamic_update_index_in_dim(ring, x, slot, 0)
    valid = jax.lax.dynamic_update_index_in_dim(valid, ok, slot, 0)
    frames = frames.at[slot].set(jnp.where(enabled, frame_index, frames[slot]))
    return ring, valid, frames, writes + jnp.asarray(enabled, jnp.int32)


def write_positives(mem: SampleMemory, feats: jax.Array, valid: jax.Array,
                    frame_index, enabled=True) -> SampleMemory:
    """Store one frame's positives (P, D) in the next long-term slot (a no-op
    where the boolean ``enabled`` is False)."""
    pos, pv, pf, pw = _put(mem.pos, mem.pos_valid, mem.pos_frame, mem.pos_writes,
                           feats, valid, frame_index, enabled)
    return mem.replace(pos=pos, pos_valid=pv, pos_frame=pf, pos_writes=pw)


def write_negatives(mem: SampleMemory, feats: jax.Array, valid: jax.Array,
                    frame_index, rel_boxes: jax.Array | None = None,
                    enabled=True) -> SampleMemory:
    """Store one frame's negatives (N, D) in the next short-term slot, with
    their boxes relative to the target (N, 4) if given (else zeros); a no-op
    where the boolean ``enabled`` is False."""
    slot = mem.neg_writes % mem.neg.shape[0]
    rel = jnp.zeros(mem.neg_rel.shape[1:], jnp.float32) if rel_boxes is None else rel_boxes
    rel = jnp.where(enabled, rel.astype(jnp.float32), mem.neg_rel[slot])
    neg_rel = jax.lax.dynamic_update_index_in_dim(mem.neg_rel, rel, slot, 0)
    neg, nv, nf, nw = _put(mem.neg, mem.neg_valid, mem.neg_frame, mem.neg_writes,
                           feats, valid, frame_index, enabled)
    return mem.replace(neg=neg, neg_valid=nv, neg_frame=nf, neg_writes=nw, neg_rel=neg_rel)


def positive_weights(mem: SampleMemory, frame_index, window,
                     first_weight: float) -> jax.Array:
    """Sampling weights over all positives, first frame's first:
    (P0 + Fl * P,). Ring slots older than ``window`` frames get 0."""
    recent = (mem.pos_frame >= 0) & (mem.pos_frame > frame_index - window)
    ring = (mem.pos_valid & recent[:, None]).reshape(-1).astype(jnp.float32)
    first = mem.first_valid.astype(jnp.float32) * first_weight
    return jnp.concatenate([first, ring])


def negative_weights(mem: SampleMemory) -> jax.Array:
    """Sampling weights over all stored negatives: (Fs * N,)."""
    ok = mem.neg_valid & (mem.neg_frame >= 0)[:, None]
    return ok.reshape(-1).astype(jnp.float32)


def gather_positives(mem: SampleMemory, idx: jax.Array) -> jax.Array:
    """Features of positives (k,) indexing ``positive_weights`` -> (k, D).

    Indexes the two buffers separately: concatenating them would copy the
    whole ring every update.
    """
    p0 = mem.first.shape[0]
    ring = mem.pos.reshape(-1, mem.pos.shape[-1])
    a = mem.first[jnp.clip(idx, 0, p0 - 1)]
    b = ring[jnp.clip(idx - p0, 0, ring.shape[0] - 1)]
    return jnp.where((idx < p0)[:, None], a, b).astype(jnp.float32)


def gather_negatives(mem: SampleMemory, idx: jax.Array) -> jax.Array:
    """Features of negatives (k,) indexing ``negative_weights`` -> (k, D)."""
    return mem.neg.reshape(-1, mem.neg.shape[-1])[idx].astype(jnp.float32)
