"""Notebook 04's attention, one query token at a time, and its similarity functions: dot
product, cosine and additive (Bahdanau) scores, and a softmax that gives masked keys weight 0.
Notebook 03 and the attention decoders of :mod:`attnlab.rnn` use them too.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from attnlab.attention.masks import _broadcast_bool_mask

__all__ = [
    "additive_score",
    "attention_loop",
    "cosine_score",
    "dot_product_score",
    "masked_softmax",
]


# --- notebook 04: a per-token reference and other similarity functions -------------------------


def masked_softmax(
    scores: jax.Array, mask: jax.Array | None = None, *, axis: int = -1
) -> jax.Array:
    """Softmax over ``axis`` in which masked entries get exactly zero weight.

    Args:
      scores: float array, e.g. ``(T, S)`` or ``(B, H, T, S)`` attention scores.
      mask: optional bool, broadcastable to ``scores.shape``; True = may attend.
      axis: the axis that is normalised (the keys' axis; default the last).

    Returns:
      array of ``scores.shape``: ≥ 0, summing to 1 along ``axis`` — or all zeros along a row in
      which the mask allows nothing (the same choice as :func:`scaled_dot_product_attention`;
      a plain softmax over ``-inf`` would give NaN there).

    Raises:
      ValueError: if the mask is not boolean or does not broadcast to ``scores.shape``.
    """
    scores = jnp.asarray(scores)
    if mask is None:
        return jax.nn.softmax(scores, axis=axis)
    mask = _broadcast_bool_mask(mask, scores.shape, "the scores' shape")
    filled = jnp.where(mask, scores, jnp.finfo(scores.dtype).min)  # finite, so no NaN
    return jnp.where(mask, jax.nn.softmax(filled, axis=axis), 0.0)


def attention_loop(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    mask: jax.Array | None = None,
    *,
    scale: float | None = None,
) -> tuple[jax.Array, jax.Array]:
    """Scaled dot-product attention written one query token at a time (for teaching and tests).

    For each query position t: score every key s with one dot product ``q[t] · k[s] · scale``,
    softmax those S scores (masked keys get weight 0), and add up the value vectors weighted by
    the result. The loops are ordinary Python, so this is slow for long sequences; it gives the
    same numbers as :func:`scaled_dot_product_attention`, which does all of it in two matrix
    products. Jit-able (the loops unroll for a fixed shape).

    Args:
      q: ``(B, T, H, Dh)`` queries.
      k: ``(B, S, H, Dh)`` keys.
      v: ``(B, S, H, Dh)`` values.
      mask: optional bool, broadcastable to ``(B, H, T, S)``; True = may attend.
      scale: multiplier of the scores; default ``1 / sqrt(Dh)``.

    Returns:
      ``(output, weights)``: output ``(B, T, H, Dh)``, weights ``(B, H, T, S)``; a query with no
      allowed key gets zero weights and a zero output.

    Raises:
      ValueError: if ranks or shapes disagree, or the mask is not boolean or does not broadcast.

    Source: Vaswani et al. 2017, Eq. (1), one row of the matrix product at a time.
    """
    q, k, v = jnp.asarray(q), jnp.asarray(k), jnp.asarray(v)
    if q.ndim != 4 or k.shape != v.shape or k.ndim != 4:
        raise ValueError(
            "q must be (B, T, H, Dh) and k, v both (B, S, H, Dh); got shapes "
            f"{q.shape}, {k.shape}, {v.shape}."
        )
    if q.shape[0] != k.shape[0] or q.shape[2:] != k.shape[2:]:
        raise ValueError(
            f"q {q.shape} and k {k.shape} must agree on batch B, heads H and width Dh."
        )
    B, T, H, Dh = q.shape
    S = k.shape[1]
    scale = 1.0 / math.sqrt(Dh) if scale is None else scale
    if mask is not None:
        mask = _broadcast_bool_mask(mask, (B, H, T, S), "(B, H, T, S) =")
    outputs, weight_rows = [], []
    for t in range(T):  # one query token at a time
        # q[:, t] and k[:, s] are (B, H, Dh): one dot product per batch entry and head.
        scores = jnp.stack([jnp.sum(q[:, t] * k[:, s], axis=-1) for s in range(S)], axis=-1)
        weights = masked_softmax(scores * scale, None if mask is None else mask[:, :, t])
        z = sum(weights[..., s, None] * v[:, s] for s in range(S))  # (B, H, Dh)
        outputs.append(z)
        weight_rows.append(weights)  # (B, H, S)
    return jnp.stack(outputs, axis=1), jnp.stack(weight_rows, axis=2)


def _check_score_inputs(q: jax.Array, k: jax.Array, same_width: bool = True) -> None:
    if q.ndim < 2 or k.ndim < 2:
        raise ValueError(
            f"q must be (..., T, d) and k (..., S, d), at least 2-D; got shapes {q.shape} and "
            f"{k.shape}."
        )
    if same_width and q.shape[-1] != k.shape[-1]:
        raise ValueError(
            f"q and k must have the same width d (last axis); got shapes {q.shape} and {k.shape}."
        )


def dot_product_score(q: jax.Array, k: jax.Array, *, scale: float | None = None) -> jax.Array:
    """Dot-product similarity of every query with every key, times ``scale``.

    Args:
      q: ``(..., T, d)`` queries.
      k: ``(..., S, d)`` keys (leading axes broadcast against q's).
      scale: multiplier; default ``1 / sqrt(d)`` (scaled dot product). Pass ``1.0`` for the
        plain dot product.

    Returns:
      ``(..., T, S)`` float: ``scores[..., t, s] = scale · q[..., t, :] · k[..., s, :]``.

    Raises:
      ValueError: if q or k is not at least 2-D, or their widths differ.

    Source: Vaswani et al. 2017, Eq. (1) (the argument of the softmax).
    """
    q, k = jnp.asarray(q), jnp.asarray(k)
    _check_score_inputs(q, k)
    scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
    return jnp.einsum("...td,...sd->...ts", q, k) * scale


def cosine_score(q: jax.Array, k: jax.Array, *, eps: float = 1e-8) -> jax.Array:
    """Cosine similarity of every query with every key: the dot product of unit vectors.

    Unlike the dot product it ignores the vectors' lengths, so every score lies in [-1, 1]; a
    softmax over such small numbers is nearly uniform, which is why models that use it multiply
    the scores by a (often learned) temperature first.

    Args:
      q: ``(..., T, d)`` queries.
      k: ``(..., S, d)`` keys.
      eps: lengths below ``eps`` are treated as ``eps`` (a zero vector scores 0, not NaN).

    Returns:
      ``(..., T, S)`` float in [-1, 1]: ``q_t · k_s / (|q_t| |k_s|)``.

    Raises:
      ValueError: if q or k is not at least 2-D, or their widths differ.

    Source: Graves et al. 2014, "Neural Turing Machines", Eq. (6) (content-based addressing).
    """
    q, k = jnp.asarray(q), jnp.asarray(k)
    _check_score_inputs(q, k)
    q_unit = q / jnp.maximum(jnp.linalg.norm(q, axis=-1, keepdims=True), eps)
    k_unit = k / jnp.maximum(jnp.linalg.norm(k, axis=-1, keepdims=True), eps)
    return jnp.einsum("...td,...sd->...ts", q_unit, k_unit)


def additive_score(
    q: jax.Array, k: jax.Array, W_a: jax.Array, U_a: jax.Array, v_a: jax.Array
) -> jax.Array:
    """Additive (Bahdanau) similarity: a one-hidden-layer network scores each query–key pair.

    ``score[t, s] = v_a · tanh(q_t W_a + k_s U_a)``. Query and key may have different widths;
    the network has its own parameters (learned in a real model).

    Args:
      q: ``(..., T, d_q)`` queries (in Bahdanau et al.: the decoder state s_{i-1}).
      k: ``(..., S, d_k)`` keys (there: the encoder states h_j).
      W_a: ``(d_q, d_a)``, U_a: ``(d_k, d_a)``, v_a: ``(d_a,)``; d_a is the hidden width.

    Returns:
      ``(..., T, S)`` float scores, each in ``[-|v_a|_1, |v_a|_1]``.

    Raises:
      ValueError: if the shapes do not fit together as above.

    Source: Bahdanau, Cho & Bengio 2015, "Neural Machine Translation by Jointly Learning to Align
    and Translate", Appendix A.1.2: e_ij = v_aᵀ tanh(W_a s_{i-1} + U_a h_j) (written here with
    row vectors, so the matrices multiply from the right).
    """
    q, k = jnp.asarray(q), jnp.asarray(k)
    W_a, U_a, v_a = jnp.asarray(W_a), jnp.asarray(U_a), jnp.asarray(v_a)
    _check_score_inputs(q, k, same_width=False)
    if (
        W_a.ndim != 2 or U_a.ndim != 2 or v_a.ndim != 1
        or W_a.shape[0] != q.shape[-1] or U_a.shape[0] != k.shape[-1]
        or not W_a.shape[1] == U_a.shape[1] == v_a.shape[0]
    ):
        raise ValueError(
            f"additive_score needs W_a (d_q, d_a), U_a (d_k, d_a), v_a (d_a,) with d_q = "
            f"{q.shape[-1]} and d_k = {k.shape[-1]}; got W_a {W_a.shape}, U_a {U_a.shape}, "
            f"v_a {v_a.shape}."
        )
    hidden = jnp.tanh((q @ W_a)[..., :, None, :] + (k @ U_a)[..., None, :, :])  # (..., T, S, d_a)
    return hidden @ v_a
