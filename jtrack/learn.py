"""Online learning of the head: loss, hard negative mining, jitted updates.

The whole update (``iters`` SGD steps) is one ``lax.scan``. Each step draws
``batch_pos`` positives and ``batch_neg_cand`` negative candidates from the
sample pools, scores the candidates with the current head (no dropout) and
trains on the ``batch_neg`` highest-scoring ones (hard negative mining,
MDNet); with mining off it trains on the first ``batch_neg`` random ones.
"""

from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import optax

from jtrack import nets

# (key, n) -> (n, D) features drawn from a sample pool.
Sampler = Callable[[jax.Array, int], jax.Array]


def binary_loss(logits_pos: jax.Array, logits_neg: jax.Array) -> jax.Array:
    """2-way softmax cross-entropy, positives labelled 1 and negatives 0,
    averaged over the P + N samples (py-MDNet's reduction, which its learning
    rates -- our defaults -- are tuned for). (P, 2), (N, 2) -> ()."""
    lp = -jax.nn.log_softmax(logits_pos)[:, 1]
    ln = -jax.nn.log_softmax(logits_neg)[:, 0]
    return (jnp.sum(lp) + jnp.sum(ln)) / (lp.shape[0] + ln.shape[0])


def target_prob(logits: jax.Array) -> jax.Array:
    """(N, 2) logits -> (N,) probability of the target class."""
    return jax.nn.softmax(logits)[:, 1]


def hardest(scores: jax.Array, k: int) -> jax.Array:
    """Indices of the ``k`` largest target scores (the hardest negatives)."""
    return jax.lax.top_k(scores, k)[1]


def train(config, optimizer: optax.GradientTransformation, head, opt_state,
          sample_pos: Sampler, sample_neg: Sampler, key: jax.Array,
          iters: int):
    """Run ``iters`` SGD steps on the head. Returns (head, opt_state, losses (iters,))."""

    def logits_fn(params, feats, dropout_key=None):
        return nets.head_logits(params, feats, hidden=config.hidden,
                                dropout=config.dropout, key=dropout_key)

    def loss_fn(params, pos, neg, dropout_key):
        logits = logits_fn(params, jnp.concatenate([pos, neg]), dropout_key)
        return binary_loss(logits[:pos.shape[0]], logits[pos.shape[0]:])

    def one_step(carry, step_key):
        params, ostate = carry
        kp, kn, kd = jax.random.split(step_key, 3)
        pos = sample_pos(kp, config.batch_pos)
        if config.hard_negative_mining:
            cand = sample_neg(kn, config.batch_neg_cand)
            scores = logits_fn(params, cand)[:, 1]
            neg = cand[hardest(jax.lax.stop_gradient(scores), config.batch_neg)]
        else:
            neg = sample_neg(kn, config.batch_neg)
        loss, grads = jax.value_and_grad(loss_fn)(params, pos, neg, kd)
        updates, ostate = optimizer.update(grads, ostate, params)
        return (optax.apply_updates(params, updates), ostate), loss

    (head, opt_state), losses = jax.lax.scan(
        one_step, (head, opt_state), jax.random.split(key, iters))
    return head, opt_state, losses
