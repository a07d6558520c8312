"""Multi-head self-attention as an ``nnx.Module`` with a cached-key decode step (notebooks 05,
06 and 10, the GPT's blocks, the self-attention layer timed against an LSTM in notebook 03),
and heads taken apart: splitting vectors into heads and what one head looks at (notebook 05).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from attnlab.attention.core import scaled_dot_product_attention
from attnlab.attention.matmul import MATMUL_DTYPES, dense

__all__ = ["MultiHeadAttention", "mean_weight_at_offset", "split_heads"]


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
      matmul_dtype: ``"float32"`` (default) or ``"bfloat16"``: the four projections multiply
        with :func:`bfloat16_matmul` (see :func:`dense`). Scores and softmax stay float32.

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
        matmul_dtype: str = "float32",
    ):
        if matmul_dtype not in MATMUL_DTYPES:
            raise ValueError(f"matmul_dtype must be one of {MATMUL_DTYPES}; got {matmul_dtype!r}.")
        if d_model < 1 or n_heads < 1 or d_model % n_heads:
            raise ValueError(
                f"n_heads must be >= 1 and divide d_model; got d_model={d_model}, "
                f"n_heads={n_heads}."
            )
        self.d_model = d_model
        self.n_heads = n_heads
        self.d_head = d_model // n_heads
        self.matmul_dtype = matmul_dtype
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
        return tuple(
            dense(W, rows, self.matmul_dtype).reshape(split) for W in (self.W_q, self.W_k, self.W_v)
        )

    def merge_heads(self, heads: jax.Array) -> jax.Array:
        """``(B, T, H, Dh)`` → concatenate heads → ``W_o`` → ``(B, T, D)``."""
        B, T, H, Dh = heads.shape
        rows = heads.reshape(B * T, H * Dh)
        return dense(self.W_o, rows, self.matmul_dtype).reshape(B, T, H * Dh)

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


# --- heads, taken apart (notebook 05) ---------------------------------------------------------


def split_heads(x: jax.Array, n_heads: int) -> jax.Array:
    """Split each position's vector into ``n_heads`` slices and put the head axis first.

    Head h gets features ``h·Dh`` to ``(h+1)·Dh − 1`` of every position (``Dh = D / H``). The
    reshape ``(B, T, D) → (B, T, H, Dh)`` cuts each vector into H consecutive slices; the
    transpose then makes every head a separate ``(T, Dh)`` matrix, so all heads' scores
    ``q·kᵀ`` come from one batched matrix product. (Reshaping straight to ``(B, H, T, Dh)``
    would give the right shape but mix positions and features across heads.)

    Args:
      x: ``(B, T, D)`` array, e.g. the queries ``x @ W_q``.
      n_heads: H ≥ 1, dividing D.

    Returns:
      ``(B, H, T, Dh)``, with ``out[b, h, t] == x[b, t, h*Dh:(h+1)*Dh]``.

    Raises:
      ValueError: if ``x`` is not 3-D or ``n_heads`` does not divide its last axis.

    Source: Vaswani et al. 2017, §3.2.2 (each head attends in its own d_k-wide subspace).
    """
    if x.ndim != 3:
        raise ValueError(f"x must be 3-D (B, T, D); got shape {x.shape}.")
    B, T, D = x.shape
    if isinstance(n_heads, bool) or int(n_heads) != n_heads or n_heads < 1 or D % n_heads:
        raise ValueError(f"n_heads must be a positive integer dividing D={D}; got {n_heads!r}.")
    return x.reshape(B, T, int(n_heads), D // int(n_heads)).transpose(0, 2, 1, 3)


def mean_weight_at_offset(weights: jax.Array, offset: int) -> jax.Array:
    """Average attention a query pays to the key ``offset`` positions before it.

    A way to say what a head does with one number: offset 1 near 1.0 means "this head looks
    at the previous token"; offset 0 near 1.0 means "it looks at the token itself".

    Args:
      weights: ``(..., T, T)`` self-attention weights (rows = queries, columns = keys), e.g.
        one layer of a GPT's ``(B, H, T, T)``.
      offset: k in ``[0, T)``.

    Returns:
      ``(...)`` float: the mean of ``weights[..., t, t - k]`` over the queries ``t >= k``
      (the only ones that have such a key).

    Raises:
      ValueError: if ``weights`` is not square in its last two axes or ``offset`` is outside
        ``[0, T)``.
    """
    weights = jnp.asarray(weights)
    if weights.ndim < 2 or weights.shape[-1] != weights.shape[-2]:
        raise ValueError(f"weights must have shape (..., T, T); got {weights.shape}.")
    T = weights.shape[-1]
    if isinstance(offset, bool) or int(offset) != offset or not 0 <= offset < T:
        raise ValueError(f"offset must be an integer in [0, {T}) for T={T}; got {offset!r}.")
    # diagonal(offset=-k) holds the entries [t, t - k] for t = k .. T-1.
    return jnp.diagonal(weights, offset=-int(offset), axis1=-2, axis2=-1).mean(axis=-1)
