"""Notebook 03's exercise (``additive_attention``): additive (Bahdanau) attention of one decoder
state over the encoder states, with padding masked.

The learner returns ``(context, weights)``: scores ``v_a · tanh(q W_a + k U_a)``, a softmax
over the source positions that gives padding weight 0, and the weighted sum of the keys.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

from attnlab.exercises._core import Exercise, Mistake

#: (B, S, d_q, d_k, d_a) of the attention exercise: all different, so that W_a and U_a taken for
#: each other, or (weights, context) returned in the wrong order, show up as shapes; S = 7 is no
#: product of the others, so that a context divided by S is named as a mean over S.
_ADD_B, _ADD_S, _ADD_DQ, _ADD_DK, _ADD_DA = 3, 7, 2, 4, 5


def _additive_attention_inputs(key: jax.Array):
    """query ``(3, 2)``, keys ``(3, 7, 4)``, a padding mask ``(3, 7)`` (row b True for its
    first ``length_b`` positions, lengths from 1 to 7, one row always full and one short),
    W_a ``(2, 5)``, U_a ``(4, 5)``, v_a ``(5,)``."""
    k_q, k_k, k_len, k_wa, k_ua, k_va = jax.random.split(key, 6)
    B, S, dq, dk, da = _ADD_B, _ADD_S, _ADD_DQ, _ADD_DK, _ADD_DA
    lengths = jnp.concatenate([jnp.array([S, 2]), jax.random.randint(k_len, (B - 2,), 1, S + 1)])
    mask = jnp.arange(S)[None, :] < lengths[:, None]
    return (jax.random.normal(k_q, (B, dq)), jax.random.normal(k_k, (B, S, dk)), mask,
            jax.random.normal(k_wa, (dq, da)), jax.random.normal(k_ua, (dk, da)),
            jax.random.normal(k_va, (da,)))


def _additive_attention_reference(query, keys, mask, W_a, U_a, v_a):
    from attnlab.attention import additive_score, masked_softmax

    scores = additive_score(query[:, None, :], keys, W_a, U_a, v_a)[:, 0]  # (B, S)
    weights = masked_softmax(scores, mask)
    return jnp.einsum("bs,bsd->bd", weights, keys), weights


def _additive_variant(*, mask_mode="before", axis=-1, squash=True, use_v=True,
                      normalise=True, tanh_outside=False, scale=False, mean=False,
                      dot=None) -> Callable:
    """An additive attention that makes one chosen mistake (for :class:`Mistake`).

    ``dot`` replaces the additive score by a dot product of the projections (q W_a)·(k U_a):
    ``"plain"``, or ``"scaled"`` by 1/sqrt(d_a)."""
    from attnlab.attention import masked_softmax

    def attention(query, keys, mask, W_a, U_a, v_a):
        hidden = (query @ W_a)[:, None, :] + keys @ U_a  # (B, S, d_a)
        hidden = jnp.tanh(hidden) if squash and not tanh_outside else hidden
        scores = hidden @ v_a if use_v else hidden.sum(-1)
        if dot is not None:
            scores = jnp.einsum("ba,bsa->bs", query @ W_a, keys @ U_a)
            scores = scores / math.sqrt(W_a.shape[-1]) if dot == "scaled" else scores
        scores = jnp.tanh(scores) if tanh_outside else scores
        scores = scores / math.sqrt(keys.shape[-1]) if scale else scores
        if not normalise:
            weights = jnp.where(mask, scores, 0.0)
        elif mask_mode == "before":
            weights = masked_softmax(scores, mask, axis=axis)
        elif mask_mode == "inverted":
            weights = masked_softmax(scores, ~mask, axis=axis)
        elif mask_mode == "after":
            weights = jax.nn.softmax(scores, axis=axis) * mask
        elif mask_mode == "zero":
            weights = jax.nn.softmax(jnp.where(mask, scores, 0.0), axis=axis)
        else:  # "ignored"
            weights = jax.nn.softmax(scores, axis=axis)
        context = jnp.einsum("bs,bsd->bd", weights, keys)
        return (context / keys.shape[1] if mean else context), weights

    return attention


_ADDITIVE_MISTAKES = (
    Mistake("the padding was not masked: padded positions must get weight 0, so set their "
            "scores to a very negative number before the softmax.",
            _additive_variant(mask_mode="ignored")),
    Mistake("the mask was read the wrong way round: True marks a real character (may attend), "
            "False marks padding.", _additive_variant(mask_mode="inverted")),
    Mistake("the padding weights were zeroed after the softmax, so the remaining weights no "
            "longer sum to 1; mask the scores before the softmax instead.",
            _additive_variant(mask_mode="after")),
    Mistake("the softmax ran over the batch axis (axis 0); each example's weights over its "
            "source positions (axis -1) must sum to 1.", _additive_variant(axis=0)),
    Mistake("tanh is missing: score = v_a · tanh(q W_a + k U_a).", _additive_variant(squash=False)),
    Mistake("v_a is missing: the hidden vector tanh(q W_a + k U_a) must be multiplied by v_a "
            "(hidden @ v_a), not summed.", _additive_variant(use_v=False)),
    Mistake("the scores were used as weights without a softmax; softmax turns them into "
            "weights >= 0 that sum to 1.", _additive_variant(normalise=False)),
    Mistake("the padding scores were set to 0 before the softmax, but e^0 = 1, so padding "
            "still gets weight; set them to -inf (jnp.where(mask, scores, -jnp.inf)).",
            _additive_variant(mask_mode="zero")),
    Mistake("tanh was applied to the score after v_a; it belongs inside: "
            "score = v_a · tanh(q W_a + k U_a).", _additive_variant(tanh_outside=True)),
    Mistake("the scores were divided by sqrt(d_k); additive attention has no scaling (the "
            "1/sqrt(d) belongs to the dot-product score of notebook 04).",
            _additive_variant(scale=True)),
    Mistake("the context was divided by S (a mean over positions); the weights already sum "
            "to 1, so the context is their weighted sum, (weights[:, :, None] * keys).sum(1).",
            _additive_variant(mean=True)),
    *(Mistake("this is a dot-product score, (q W_a) · (k U_a); additive attention adds the two "
              "projections and scores the sum with a small network: "
              "score = v_a · tanh(q W_a + k U_a).", _additive_variant(dot=kind))
      for kind in ("plain", "scaled")),
)


ADDITIVE_ATTENTION = Exercise(
    name="additive_attention",
    notebook="03",
    task="additive (Bahdanau) attention of one decoder state over encoder states: query "
    "(B, d_q), keys (B, S, d_k), bool mask (B, S) (False = padding), W_a (d_q, d_a), U_a "
    "(d_k, d_a), v_a (d_a,) -> (context (B, d_k), weights (B, S)); padding gets weight 0",
    reference=_additive_attention_reference,
    inputs=_additive_attention_inputs,
    axis_names={"query": ("B", "d_q"), "keys": ("B", "S", "d_k"), "mask": ("B", "S"),
                "W_a": ("d_q", "d_a"), "U_a": ("d_k", "d_a"), "v_a": ("d_a",)},
    rtol=1e-4,
    atol=1e-5,
    mistakes=_ADDITIVE_MISTAKES,
)

#: This notebook's exercises, for :data:`attnlab.exercises.EXERCISES`.
NOTEBOOK_EXERCISES: tuple[Exercise, ...] = (ADDITIVE_ATTENTION,)
