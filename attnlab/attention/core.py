"""Scaled dot-product attention for every head at once, returning its weights too (notebook
04; every :class:`~attnlab.attention.MultiHeadAttention` and GPT block runs it).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from attnlab.attention.masks import _broadcast_bool_mask
from attnlab.runtime import MMAP_THRESHOLD_BYTES

__all__ = ["scaled_dot_product_attention"]


def scaled_dot_product_attention(
    q: jax.Array,
    k: jax.Array,
    v: jax.Array,
    mask: jax.Array | None = None,
    *,
    scale: float | None = None,
) -> tuple[jax.Array, jax.Array]:
    """softmax(q·kᵀ · scale) · v for every head, returning the weights too.

    Args:
      q: ``(B, T, H, Dh)`` queries.
      k: ``(B, S, H, Dh)`` keys.
      v: ``(B, S, H, Dh)`` values.
      mask: optional bool, broadcastable to ``(B, H, T, S)``; True = may attend.
      scale: multiplier of the scores; default ``1 / sqrt(Dh)``, which keeps the scores' variance
        near 1 when q and k have unit-variance entries (so the softmax does not saturate).

    Returns:
      ``(output, weights)``: output ``(B, T, H, Dh)``, the weighted average of the values;
      weights ``(B, H, T, S)``, each row ≥ 0 and summing to 1 — or all zeros for a query with
      no allowed key (whose output is then zeros too). Both have the inputs' dtype.

    Precision: for float16 or bfloat16 inputs the scores, the softmax and the weighted sum run
    in float32 and only the results are rounded back. A float16 score overflows to ``inf``
    above 65504 (the softmax would then give NaN), and a bfloat16 softmax keeps only 2 to 3
    significant digits; float32 avoids both.

    Raises:
      ValueError: if ranks or shapes disagree, or the mask is not boolean.

    Source: Vaswani et al. 2017, Eq. (1).
    """
    if q.ndim != 4 or k.ndim != 4 or v.ndim != 4:
        raise ValueError(
            "q, k and v must be 4-D (B, T, H, Dh); got shapes "
            f"{q.shape}, {k.shape}, {v.shape}."
        )
    if k.shape != v.shape:
        raise ValueError(f"k and v must have the same shape; got {k.shape} and {v.shape}.")
    if q.shape[0] != k.shape[0] or q.shape[2:] != k.shape[2:]:
        raise ValueError(
            f"q {q.shape} and k {k.shape} must agree on batch B, heads H and width Dh."
        )
    if scale is None:
        scale = 1.0 / math.sqrt(q.shape[-1])
    dtype = jnp.result_type(q, k, v)
    compute = jnp.promote_types(dtype, jnp.float32)  # float16/bfloat16 → float32; float64 stays
    q, k, v = q.astype(compute), k.astype(compute), v.astype(compute)
    scores = jnp.einsum("bthd,bshd->bhts", q, k) * scale
    if mask is None:
        weights = jax.nn.softmax(scores, axis=-1)
    else:
        mask = _broadcast_bool_mask(mask, scores.shape, "(B, H, T, S) =")
        # Masked keys must get weight exactly 0, without -inf (a fully masked row of -inf would
        # give NaN). Two forms do this; which is faster on XLA's CPU compiler depends on size
        # (benchmarks/NOTES.md, "Masking by a bias"):
        # - under 32 MiB of scores, add a bias of half the most negative finite value (half, so
        #   that adding a score cannot overflow to -inf): XLA fuses q·kᵀ, the bias and the
        #   softmax into one kernel, 1.2-1.3x faster at B=8, H=4, T=256;
        # - from 32 MiB up, a `where`: that fused kernel keeps a scratch copy of the scores,
        #   fresh pages on every call above glibc's mmap threshold (attnlab.runtime).
        # Either way exp(masked - max) underflows to exactly 0 in a row with an allowed key. A
        # fully masked row gets finite weights that sum to 1: its output is multiplied by 0 (a
        # (B, T, H, 1) factor, measured faster than a `where`) and its weights are set to 0.
        lowest = jnp.finfo(scores.dtype).min
        if scores.size * scores.dtype.itemsize < MMAP_THRESHOLD_BYTES:
            scores = scores + jnp.where(mask, 0.0, lowest / 2)
        else:
            scores = jnp.where(mask, scores, lowest)
        softmax = jax.nn.softmax(scores, axis=-1)
        has_key = jnp.any(mask, axis=-1).transpose(0, 2, 1)[..., None]  # (B, T, H, 1)
        # v first: XLA then multiplies (T, S) weights by (S, Dh) values as they lie; written
        # weights-first it transposed both, 1.2x slower here with jax 0.10 and 1.6x with 0.7.2.
        output = jnp.einsum("bshd,bhts->bthd", v, softmax) * has_key.astype(compute) + 0.0
        # (+ 0.0 turns the -0.0 of a negative mean times 0 into 0.0)
        weights = jnp.where(mask, softmax, 0.0)
    if mask is None:
        output = jnp.einsum("bshd,bhts->bthd", v, weights)
    if jnp.issubdtype(dtype, jnp.floating):
        output, weights = output.astype(dtype), weights.astype(dtype)
    return output, weights
