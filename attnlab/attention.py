"""Scaled dot-product attention, attention masks and multi-head attention.

Layout (the same as ``jax.nn.dot_product_attention``):

- queries ``q``: ``(B, T, H, Dh)`` — batch, query positions, heads, head width;
- keys ``k`` and values ``v``: ``(B, S, H, Dh)`` — S key positions;
- output: ``(B, T, H, Dh)``; attention weights: ``(B, H, T, S)``.

Masks are boolean, ``True`` = "this query may attend to this key", and broadcast against
``(B, H, T, S)``. A query whose row is entirely masked gets zero weights and a zero output
instead of the NaN a plain softmax over ``-inf`` would give.

Source: Vaswani et al. 2017, "Attention Is All You Need", §3.2.1 (Eq. 1) and §3.2.2.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

__all__ = [
    "MultiHeadAttention",
    "causal_mask",
    "combine_masks",
    "padding_mask",
    "scaled_dot_product_attention",
]


def causal_mask(seq_len: int) -> jax.Array:
    """Mask that lets position t attend to positions 0..t only (no peeking at the future).

    Args:
      seq_len: number of positions T (≥ 1).

    Returns:
      ``(T, T)`` bool, lower-triangular: ``mask[t, s] = s <= t``. Broadcasts against
      ``(B, H, T, T)``.

    Raises:
      ValueError: if ``seq_len < 1``.

    Source: Vaswani et al. 2017, §3.2.3 (masking in the decoder).
    """
    if int(seq_len) < 1:
        raise ValueError(f"seq_len must be >= 1; got {seq_len}.")
    return jnp.tril(jnp.ones((seq_len, seq_len), dtype=bool))


def padding_mask(lengths: jax.Array, seq_len: int) -> jax.Array:
    """Mask that hides padding keys: sequence b has ``lengths[b]`` real tokens, then padding.

    Args:
      lengths: ``(B,)`` int, each in ``[0, seq_len]``.
      seq_len: S, the padded length.

    Returns:
      ``(B, 1, 1, S)`` bool: ``mask[b, 0, 0, s] = s < lengths[b]``.

    Raises:
      ValueError: if ``seq_len < 1`` or ``lengths`` is not 1-D.
    """
    lengths = jnp.asarray(lengths)
    if int(seq_len) < 1:
        raise ValueError(f"seq_len must be >= 1; got {seq_len}.")
    if lengths.ndim != 1:
        raise ValueError(f"lengths must be 1-D (B,); got shape {lengths.shape}.")
    return (jnp.arange(seq_len)[None, :] < lengths[:, None])[:, None, None, :]


def combine_masks(*masks: jax.Array | None) -> jax.Array | None:
    """Logical AND of several boolean masks, broadcast together; ``None`` entries are skipped.

    Returns:
      The combined bool mask, or ``None`` if every argument is ``None``.

    Raises:
      ValueError: if a mask is not boolean or the shapes do not broadcast.
    """
    present = [jnp.asarray(m) for m in masks if m is not None]
    if not present:
        return None
    for i, m in enumerate(present):
        if m.dtype != jnp.bool_:
            raise ValueError(f"mask {i} must be boolean (True = may attend); got dtype {m.dtype}.")
    try:
        shape = jnp.broadcast_shapes(*(m.shape for m in present))
    except ValueError:
        shapes = [m.shape for m in present]
        raise ValueError(f"mask shapes {shapes} do not broadcast together.") from None
    out = jnp.ones(shape, dtype=bool)
    for m in present:
        out = out & m
    return out


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
        mask = jnp.asarray(mask)
        if mask.dtype != jnp.bool_:
            raise ValueError(f"mask must be boolean (True = may attend); got dtype {mask.dtype}.")
        try:
            mask = jnp.broadcast_to(mask, scores.shape)
        except ValueError:
            raise ValueError(
                f"mask of shape {mask.shape} does not broadcast to (B, H, T, S) = {scores.shape}."
            ) from None
        # Masked scores get the most negative finite value (not -inf) so that a fully masked row
        # stays finite; `where` then zeroes those weights, and that row becomes all zeros.
        scores = jnp.where(mask, scores, jnp.finfo(scores.dtype).min)
        weights = jnp.where(mask, jax.nn.softmax(scores, axis=-1), 0.0)
    output = jnp.einsum("bhts,bshd->bthd", weights, v)
    if jnp.issubdtype(dtype, jnp.floating):
        output, weights = output.astype(dtype), weights.astype(dtype)
    return output, weights


class MultiHeadAttention(nnx.Module):
    """Multi-head self-attention: project to q, k, v, attend per head, concatenate, project.

    Each of the ``n_heads`` heads works on its own ``d_head = d_model / n_heads`` slice of the
    projected queries, keys and values, so all heads together cost about as much as one
    full-width head.

    Args:
      d_model: width D of the input and output.
      n_heads: number of heads H; must divide ``d_model``.
      rngs: ``nnx.Rngs`` for the initial weights.
      init_std: standard deviation of the normal initial weights of ``W_q``, ``W_k``, ``W_v``
        (default 0.02, GPT-2's); biases start at 0.
      out_init_std: standard deviation of ``W_o``'s initial weights (default 0.02). A GPT
        passes both values from :func:`attnlab.gpt.gpt2_init_std`.

    Attributes:
      W_q, W_k, W_v: ``nnx.Linear(D, D)`` query, key and value projections.
      W_o: ``nnx.Linear(D, D)`` output projection.

    Source: Vaswani et al. 2017, §3.2.2, "Multi-Head Attention".
    """

    def __init__(
        self,
        d_model: int,
        n_heads: int,
        *,
        rngs: nnx.Rngs,
        init_std: float = 0.02,
        out_init_std: float = 0.02,
    ):
        if d_model < 1 or n_heads < 1 or d_model % n_heads:
            raise ValueError(
                f"n_heads must be >= 1 and divide d_model; got d_model={d_model}, "
                f"n_heads={n_heads}."
            )
        self.d_model = d_model
        self.n_heads = n_heads
        self.d_head = d_model // n_heads
        init = nnx.initializers.normal(init_std)
        self.W_q = nnx.Linear(d_model, d_model, kernel_init=init, rngs=rngs)
        self.W_k = nnx.Linear(d_model, d_model, kernel_init=init, rngs=rngs)
        self.W_v = nnx.Linear(d_model, d_model, kernel_init=init, rngs=rngs)
        self.W_o = nnx.Linear(
            d_model, d_model, kernel_init=nnx.initializers.normal(out_init_std), rngs=rngs
        )

    def qkv(self, x: jax.Array) -> tuple[jax.Array, jax.Array, jax.Array]:
        """``(B, T, D)`` → q, k, v, each ``(B, T, H, Dh)``."""
        B, T, D = x.shape
        rows = x.reshape(B * T, D)  # 2-D matmuls: faster weight gradients on CPU
        split = (B, T, self.n_heads, self.d_head)
        return (
            self.W_q(rows).reshape(split),
            self.W_k(rows).reshape(split),
            self.W_v(rows).reshape(split),
        )

    def merge_heads(self, heads: jax.Array) -> jax.Array:
        """``(B, T, H, Dh)`` → concatenate heads → ``W_o`` → ``(B, T, D)``."""
        B, T, H, Dh = heads.shape
        return self.W_o(heads.reshape(B * T, H * Dh)).reshape(B, T, H * Dh)

    def __call__(
        self, x: jax.Array, mask: jax.Array | None = None, *, return_weights: bool = False
    ) -> jax.Array | tuple[jax.Array, jax.Array]:
        """Self-attention over ``x``.

        Args:
          x: ``(B, T, D)`` float.
          mask: optional bool, broadcastable to ``(B, H, T, T)``; True = may attend.
          return_weights: also return the ``(B, H, T, T)`` attention weights.

        Returns:
          ``(B, T, D)``, or ``((B, T, D), (B, H, T, T))`` with ``return_weights``. The dtype is
          that of ``x`` and the weights promoted together (float16 ``x`` with float32 weights
          gives float32, as in flax); scores and softmax run in float32 either way.
        """
        if x.ndim != 3 or x.shape[-1] != self.d_model:
            raise ValueError(f"x must have shape (B, T, {self.d_model}); got {x.shape}.")
        q, k, v = self.qkv(x)
        heads, weights = scaled_dot_product_attention(q, k, v, mask)
        out = self.merge_heads(heads)
        return (out, weights) if return_weights else out

    def decode(
        self, x: jax.Array, k_cache: jax.Array, v_cache: jax.Array, position: jax.Array
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Attend from one new token using cached keys and values of the earlier ones.

        Args:
          x: ``(B, 1, D)`` the new token's vector.
          k_cache, v_cache: ``(B, C, H, Dh)``; entries ``< position`` hold earlier tokens.
          position: int (may be traced), the new token's index ``< C``: a scalar shared by
            every sequence, or ``(B,)``, one per sequence (prompts of different lengths).

        Returns:
          ``(out, k_cache, v_cache)``: out ``(B, 1, D)``; the caches with this token's key and
          value written at ``position``.
        """
        q, k, v = self.qkv(x)
        position = jnp.asarray(position)
        C = k_cache.shape[1]
        if position.ndim == 0:
            k_cache = jax.lax.dynamic_update_slice_in_dim(k_cache, k, position, axis=1)
            v_cache = jax.lax.dynamic_update_slice_in_dim(v_cache, v, position, axis=1)
            visible = (jnp.arange(C) <= position)[None, None, None]  # keys written so far
        else:  # one position per row: a scatter writes row b's key at position[b]
            rows = jnp.arange(k_cache.shape[0])
            k_cache = k_cache.at[rows, position].set(k[:, 0])
            v_cache = v_cache.at[rows, position].set(v[:, 0])
            visible = (jnp.arange(C) <= position[:, None])[:, None, None]  # (B, 1, 1, C)
        heads, _ = scaled_dot_product_attention(q, k_cache, v_cache, visible)
        return self.merge_heads(heads), k_cache, v_cache
