"""Per-layer learning rates with ``optax.multi_transform``.

Parameters are nested dicts whose top-level keys name layers (``fc4``,
``fc5``, ``fc6`` for the head; ``backbone`` or conv names elsewhere). Each
layer listed in ``TrackerConfig.layer_lr`` with a multiplier > 0 gets SGD
with momentum and weight decay at ``lr * multiplier`` (MDNet: fc6 at 10x);
every other layer is frozen with ``optax.set_to_zero`` (its parameters are
provably unchanged and it keeps no optimizer state). Gradients are clipped by
global norm first, as py-MDNet does.

The initial and the online optimizer differ only in the learning rate and
share the same state structure, so one ``opt_state`` serves both. A
meta-learned head brings its own per-element first-frame rates instead
(:func:`elementwise_sgd`), which the online updates may keep
(:func:`learned_rate_sgd`).
"""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple

import jax
import optax

FROZEN = "frozen"


def layer_labels(params: Mapping[str, Any],
                 layer_lr: tuple[tuple[str, float], ...]) -> dict[str, Any]:
    """Label every leaf with its top-level layer name, or ``'frozen'``."""
    rates = dict(layer_lr)
    return {name: jax.tree.map(lambda _, n=name: n if rates.get(n, 0.0) > 0 else FROZEN, sub)
            for name, sub in params.items()}


def make_optimizer(layer_lr: tuple[tuple[str, float], ...], lr: float,
                   momentum: float = 0.9, weight_decay: float = 5e-4,
                   grad_clip: float = 10.0) -> optax.GradientTransformation:
    """SGD with per-layer rates ``lr * multiplier``; unlisted layers frozen."""
    transforms = {FROZEN: optax.set_to_zero()}
    for name, mult in layer_lr:
        if mult > 0:
            transforms[name] = optax.chain(
                optax.add_decayed_weights(weight_decay),
                optax.trace(decay=momentum),
                optax.scale(-lr * mult))
    chain = [optax.clip_by_global_norm(grad_clip)] if grad_clip > 0 else []
    chain.append(optax.multi_transform(
        transforms, lambda p: layer_labels(p, layer_lr)))
    return optax.chain(*chain)


def tracker_optimizers(config) -> tuple[optax.GradientTransformation,
                                        optax.GradientTransformation]:
    """(first-frame optimizer, online-update optimizer) for a TrackerConfig
    (``online_rates='learned'``: the online one is :func:`learned_rate_sgd`)."""
    kw = dict(momentum=config.momentum, weight_decay=config.weight_decay,
              grad_clip=config.grad_clip)
    online = (learned_rate_sgd() if config.online_rates == "learned"
              else make_optimizer(config.layer_lr, config.lr_update, **kw))
    return make_optimizer(config.layer_lr, config.lr_init, **kw), online


def elementwise_sgd(rates: Any, first_order: bool = False) -> optax.GradientTransformation:
    """Plain SGD with one learning rate per parameter element: ``update =
    -rates * grad`` (Meta-SGD; ``rates`` has the parameters' tree). Stateless,
    so it differentiates cleanly in ``rates`` and the initial parameters
    (:mod:`jtrack.meta`). ``first_order`` stops the gradient through ``grad``
    (no second derivatives; ``rates`` still get theirs)."""

    def init(params):
        del params
        return optax.EmptyState()

    def update(grads, state, params=None):
        del params
        if first_order:
            grads = jax.lax.stop_gradient(grads)
        return jax.tree.map(lambda r, g: -r * g, rates, grads), state

    return optax.GradientTransformation(init, update)


class LearnedRates(NamedTuple):
    """State of :func:`learned_rate_sgd`: the per-element rates themselves."""
    rates: Any


def learned_rate_sgd() -> optax.GradientTransformation:
    """Plain SGD at per-element rates held in its state (``LearnedRates``,
    built from a meta-learned head's rates), so that the online updates of
    a tracker state use that head's rates. ``init`` gives zero rates: start
    from ``LearnedRates(rates)`` instead."""

    def init(params):
        return LearnedRates(jax.tree.map(lambda p: p * 0, params))

    def update(grads, state, params=None):
        del params
        return jax.tree.map(lambda r, g: -r * g, state.rates, grads), state

    return optax.GradientTransformation(init, update)
