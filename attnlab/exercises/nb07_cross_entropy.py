"""Notebook 07's exercise (``cross_entropy``): the training loss.

The learner computes the mean next-token cross-entropy in nats from logits ``(B, T, V)`` and
int targets ``(B, T)``; the inputs include logits large enough to overflow a naive ``exp``.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

from attnlab.exercises._core import Exercise, Mistake

#: Vocabulary size of the cross-entropy exercise (the notebooks' character vocabulary).
_CE_VOCAB = 96


def _cross_entropy_inputs(key: jax.Array):
    """Logits ``(2, 8, 96)`` at one of three scales (1, 10, 200: at 200 a naive ``exp``
    overflows, and softmax probabilities of unlikely targets underflow to 0) and int targets
    ``(2, 8)``."""
    k_scale, k_logits, k_targets = jax.random.split(key, 3)
    scale = jax.random.choice(k_scale, jnp.array([1.0, 10.0, 200.0]))
    logits = scale * jax.random.normal(k_logits, (2, 8, _CE_VOCAB))
    return logits, jax.random.randint(k_targets, (2, 8), 0, _CE_VOCAB)


def _cross_entropy_reference(logits, targets):
    from attnlab.train import cross_entropy

    return cross_entropy(logits, targets)


def _picked(values, targets):
    """``values[b, t, targets[b, t]]``: ``(B, T, V)``, int ``(B, T)`` -> ``(B, T)``."""
    return jnp.take_along_axis(values, targets[..., None], axis=-1)[..., 0]


def _ce_with_epsilon(epsilon: float) -> Callable:
    def wrong(logits, targets):
        return -jnp.log(_picked(jax.nn.softmax(logits, axis=-1), targets) + epsilon).mean()

    return wrong


def _ce_normalised_over(axis: int) -> Callable:
    def wrong(logits, targets):
        return -_picked(jax.nn.log_softmax(logits, axis=axis), targets).mean()

    return wrong


def _ce_raw_logit(logits, targets):
    return -_picked(logits, targets).mean()


def _ce_minus_max(logits, targets):
    return -_picked(logits - logits.max(axis=-1, keepdims=True), targets).mean()


def _ce_fancy_indexing(logits, targets):  # (B, T, B, T): every target at every position
    return -jax.nn.log_softmax(logits, axis=-1)[:, :, targets].mean()


def _ce_shifted_again(first: bool) -> Callable:
    def wrong(logits, targets):
        logits, targets = (logits[:, :-1], targets[:, 1:]) if first else (logits[:, 1:], targets[:, :-1])
        return -_picked(jax.nn.log_softmax(logits, axis=-1), targets).mean()

    return wrong


_CE_LOG_SOFTMAX = ("compute the log-probabilities directly: logits - jax.nn.logsumexp(logits, "
                   "axis=-1, keepdims=True), or jax.nn.log_softmax(logits, axis=-1)")
_CE_SHIFTED = ("the targets were shifted again: targets[b, t] already is the token that follows "
               "position t, so compare logits[:, t] with targets[:, t] as they are.")

_CE_MISTAKES = (
    *(Mistake(f"log(p + {eps:g}) of a softmax: the epsilon caps each position's loss at "
              f"-log({eps:g}) = {-math.log(eps):.1f} nats, so a very unlikely target (p far below "
              f"{eps:g}) counts for less than it should; {_CE_LOG_SOFTMAX}.", _ce_with_epsilon(eps))
      for eps in (1e-9, 1e-8, 1e-10, 1e-7, 1e-6, 1e-12)),
    Mistake("the log-softmax normalised over axis T (axis 1), not over the vocabulary: each "
            "position's V scores must become probabilities, so use axis=-1.", _ce_normalised_over(1)),
    Mistake("the log-softmax normalised over axis B (axis 0), not over the vocabulary: each "
            "position's V scores must become probabilities, so use axis=-1.", _ce_normalised_over(0)),
    Mistake("the target's raw logit was used as its log-probability: logits are not "
            "log-probabilities until log Σⱼ exp(zⱼ) is subtracted (log softmax(z)ᵢ = zᵢ − "
            "log Σⱼ exp(zⱼ)); use jax.nn.logsumexp.", _ce_raw_logit),
    Mistake("the max was subtracted instead of the log-sum-exp: subtracting max(z) only keeps exp "
            "from overflowing; a log-probability is zᵢ − log Σⱼ exp(zⱼ), so use "
            "jax.nn.logsumexp(logits, axis=-1, keepdims=True).", _ce_minus_max),
    Mistake("log_probs[:, :, targets] picks every target at every position (a (B, T, B, T) block) "
            "and its mean mixes them all; pick one entry per position with "
            "jnp.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0].",
            _ce_fancy_indexing),
    Mistake(_CE_SHIFTED, _ce_shifted_again(True)),
    Mistake(_CE_SHIFTED, _ce_shifted_again(False)),
)


CROSS_ENTROPY = Exercise(
    name="cross_entropy",
    notebook="07",
    task="mean next-token cross-entropy in nats: logits (B, T, V), int targets (B, T) -> scalar",
    reference=_cross_entropy_reference,
    inputs=_cross_entropy_inputs,
    axis_names={"logits": ("B", "T", "V"), "targets": ("B", "T")},
    mistakes=_CE_MISTAKES,
)

#: This notebook's exercises, for :data:`attnlab.exercises.EXERCISES`.
NOTEBOOK_EXERCISES: tuple[Exercise, ...] = (CROSS_ENTROPY,)
