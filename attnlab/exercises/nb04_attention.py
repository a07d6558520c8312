"""Notebook 04's exercise (``scaled_dot_product_attention``): single-head attention with an
optional mask.

The learner returns ``(output, weights)`` with ``weights = softmax(q kᵀ / sqrt(d))`` row by
row; a query with no allowed key gets zero weights and a zero output.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from attnlab.exercises._core import Exercise, Mistake

#: Sizes of the attention exercise: T tokens of width d (S = T keys: self-attention). d differs
#: from T so that returning (weights, output) in the wrong order, or using k instead of kᵀ,
#: shows up as a wrong shape or an error instead of silently wrong numbers.
_ATTN_T, _ATTN_D = 6, 4


def _attention_inputs(key: jax.Array):
    """q, k, v ``(6, 4)`` and a ``(6, 6)`` bool mask: ``None``, causal, random (each query keeps
    at least itself), or random with one query that may attend to nothing."""
    from attnlab.attention import causal_mask

    k_q, k_k, k_v, k_kind, k_mask, k_row = jax.random.split(key, 6)
    T, d = _ATTN_T, _ATTN_D
    q, k, v = (jax.random.normal(kk, (T, d)) for kk in (k_q, k_k, k_v))
    kind = int(jax.random.randint(k_kind, (), 0, 4))
    if kind == 0:
        mask = None
    elif kind == 1:
        mask = causal_mask(T)
    else:
        mask = jax.random.bernoulli(k_mask, 0.5, (T, T)) | jnp.eye(T, dtype=bool)
        if kind == 3:  # one query row with no allowed key: zero weights, zero output
            mask = mask.at[jax.random.randint(k_row, (), 0, T)].set(False)
    return q, k, v, mask


def _describe_attention_inputs(inputs) -> str:
    """Which of the four kinds of mask the failing trial had."""
    mask = inputs[3]
    if mask is None:
        return "The mask was None (every key allowed)."
    allowed = np.asarray(mask)
    if np.array_equal(allowed, np.tril(np.ones(allowed.shape, bool))):
        return "The mask was causal (each query sees itself and earlier keys)."
    empty = np.flatnonzero(~allowed.any(axis=1))
    if empty.size:
        return (f"The mask was random, and query row {int(empty[0])} may attend to nothing "
                "(expected: zero weights and a zero output there).")
    return "The mask was random (each query may attend at least to itself)."


def _attention_reference(q, k, v, mask=None):
    """One sequence, one head: the package's (B, T, H, Dh) function with B = H = 1."""
    from attnlab.attention import scaled_dot_product_attention

    out, weights = scaled_dot_product_attention(q[None, :, None], k[None, :, None],
                                                v[None, :, None], mask)
    return out[0, :, 0], weights[0, 0]


def _attention_variant(*, power=0.5, axis=-1, mask="use", zero_masked=True, fill="min",
                       width="d", scale_after=False) -> Callable:
    """A single-head attention that makes one chosen mistake (for :class:`Mistake`).

    ``mask``: "use", "ignore", "invert" or "weights" (softmax of
    all scores, then weights * mask, not renormalised); ``fill``: what masked scores become
    ("min": the float's lowest, "-inf", "zero"); ``width``: "d" or "S" (divide by a power of
    the number of keys); ``scale_after``: divide the weights, not the scores.
    """

    def attention(q, k, v, mask_=None):
        n = (q.shape[-1] if width == "d" else k.shape[0]) ** power
        scores = q @ k.T if scale_after else q @ k.T / n
        keep = None if mask_ is None or mask == "ignore" else (~mask_ if mask == "invert" else mask_)
        if keep is not None and mask != "weights":
            value = {"min": jnp.finfo(scores.dtype).min, "-inf": -jnp.inf, "zero": 0.0}[fill]
            scores = jnp.where(keep, scores, value)
        weights = jax.nn.softmax(scores, axis=axis)
        if scale_after:
            weights = weights / n
        if keep is not None and (zero_masked or mask == "weights"):
            weights = jnp.where(keep, weights, 0.0)
        return weights @ v, weights

    return attention


_ZERO_FILL_HINT = (
    "masked scores were set to 0 (jnp.where(mask, scores, 0) or scores * mask), but 0 is an "
    "ordinary score (e^0 = 1 still gets weight); hide them with a very negative number, e.g. "
    "jnp.where(mask, scores, -1e30).")

_ATTENTION_MISTAKES = (
    Mistake("the scores were not scaled: divide q kᵀ by sqrt(d) before the softmax.",
            _attention_variant(power=0.0)),
    Mistake("the scores were divided by d, not by sqrt(d) (use math.sqrt(q.shape[-1])).",
            _attention_variant(power=1.0)),
    Mistake("the scores were divided by sqrt(S), the number of keys (k.shape[0]); the scale "
            "is sqrt(d), the width of each vector (q.shape[-1]).",
            _attention_variant(width="S")),
    Mistake("the weights were divided by sqrt(d) after the softmax; divide the scores before "
            "it (the softmax's rows then still sum to 1).", _attention_variant(scale_after=True)),
    Mistake("the softmax ran over the queries (axis 0), so each key's column sums to 1; "
            "normalise each query's row instead (axis=-1).", _attention_variant(axis=0)),
    Mistake("the mask was not applied: hide the scores where mask is False before the softmax.",
            _attention_variant(mask="ignore")),
    Mistake("the mask was read the wrong way round: True means 'may attend', so hide the keys "
            "where the mask is False.", _attention_variant(mask="invert")),
    *(Mistake(_ZERO_FILL_HINT, _attention_variant(fill="zero", zero_masked=z))
      for z in (False, True)),
    Mistake("the weights were multiplied by the mask after a softmax over all keys, so the "
            "allowed weights no longer sum to 1; hide the scores before the softmax instead.",
            _attention_variant(mask="weights")),
    Mistake("masked scores were filled with -inf and the weights were not zeroed afterwards: a "
            "query with no allowed key gets softmax of all -inf = 0/0 = NaN. Set those weights "
            "to 0 after the softmax (jnp.where(mask, weights, 0)).",
            _attention_variant(fill="-inf", zero_masked=False)),
    Mistake("a query with no allowed key must get zero weights and a zero output; set the "
            "weights of masked keys to 0 after the softmax (jnp.where(mask, weights, 0)).",
            _attention_variant(zero_masked=False)),
)


SCALED_DOT_PRODUCT_ATTENTION = Exercise(
    name="scaled_dot_product_attention",
    notebook="04",
    task="single-head attention: q (T, d), k (S, d), v (S, d), optional bool mask (T, S) "
    "(True = may attend) -> (output (T, d), weights (T, S)); softmax(q kᵀ / sqrt(d)) row by "
    "row; a query with no allowed key gets zero weights and a zero output",
    reference=_attention_reference,
    inputs=_attention_inputs,
    mistakes=_ATTENTION_MISTAKES,
    describe=_describe_attention_inputs,
)

#: This notebook's exercises, for :data:`attnlab.exercises.EXERCISES`.
NOTEBOOK_EXERCISES: tuple[Exercise, ...] = (SCALED_DOT_PRODUCT_ATTENTION,)
