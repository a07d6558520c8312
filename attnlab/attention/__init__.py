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

from attnlab import runtime

__all__ = [
    "MultiHeadAttention",
    "bfloat16_matmul",
    "causal_mask",
    "combine_masks",
    "padding_mask",
    "dense",
    "scaled_dot_product_attention",
]

MATMUL_DTYPES = ("float32", "bfloat16")

runtime.tune_memory_unless_disabled()  # glibc's allocator for XLA (runtime.tune_memory)


@jax.custom_vjp
def bfloat16_matmul(x: jax.Array, w: jax.Array) -> jax.Array:
    """``x @ w`` from bfloat16 copies of both operands, summed and returned in float32.

    The gradient runs the same way: the incoming float32 gradient is rounded to bfloat16 and
    both of its matrix products (``g @ wᵀ`` for ``x``, ``xᵀ @ g`` for ``w``) sum in float32.
    (Plain automatic differentiation of a mixed-precision product would multiply the float32
    gradient in float32, losing the speed-up in the backward pass.) On CPUs with AVX-512 BF16,
    and on GPUs and TPUs, a bfloat16 product runs about twice as fast as a float32 one; each
    operand keeps 8 significant bits (about 3 decimal digits).

    Args:
      x: ``(N, K)`` float.
      w: ``(K, M)`` float.

    Returns:
      ``(N, M)`` float32.

    Source: Kalamkar et al. 2019, "A Study of BFLOAT16 for Deep Learning Training" (bfloat16
    operands, float32 accumulation and master weights).
    """
    return jnp.matmul(x.astype(jnp.bfloat16), w.astype(jnp.bfloat16),
                      preferred_element_type=jnp.float32)


def _bfloat16_matmul_fwd(x, w):
    x16, w16 = x.astype(jnp.bfloat16), w.astype(jnp.bfloat16)
    dtypes = jnp.zeros((), x.dtype), jnp.zeros((), w.dtype)  # residuals must be arrays
    return jnp.matmul(x16, w16, preferred_element_type=jnp.float32), (x16, w16, dtypes)


def _bfloat16_matmul_bwd(residuals, g):
    x16, w16, (x_like, w_like) = residuals
    g16 = g.astype(jnp.bfloat16)
    dx = jnp.matmul(g16, w16.T, preferred_element_type=jnp.float32)
    dw = jnp.matmul(x16.T, g16, preferred_element_type=jnp.float32)
    return dx.astype(x_like.dtype), dw.astype(w_like.dtype)


bfloat16_matmul.defvjp(_bfloat16_matmul_fwd, _bfloat16_matmul_bwd)


def dense(layer: nnx.Linear, x: jax.Array, matmul_dtype: str = "float32") -> jax.Array:
    """``layer(x)`` for ``(N, K)`` rows ``x``, its matrix product in ``matmul_dtype``.

    ``"float32"`` calls the layer; ``"bfloat16"`` computes ``bfloat16_matmul(x, kernel) + bias``
    (float32 result). The layer's weights are float32 either way.

    Raises:
      ValueError: if ``matmul_dtype`` is neither.
    """
    if matmul_dtype == "float32":
        return layer(x)
    if matmul_dtype != "bfloat16":
        raise ValueError(f"matmul_dtype must be one of {MATMUL_DTYPES}; got {matmul_dtype!r}.")
    y = bfloat16_matmul(x, layer.kernel[...])
    return y if layer.bias is None else y + layer.bias[...]


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
        # stays finite. In a row with at least one allowed key, exp(min - max) underflows to
        # exactly 0, so masked keys get weight 0 already. A fully masked row would get uniform
        # weights: its output is multiplied by 0 (a (B, T, H, 1) factor: measured faster than a
        # `where`, or a second pass over the (B, H, T, S) weights) and its weights are set to 0.
        scores = jnp.where(mask, scores, jnp.finfo(scores.dtype).min)
        softmax = jax.nn.softmax(scores, axis=-1)
        has_key = jnp.any(mask, axis=-1).transpose(0, 2, 1)[..., None]  # (B, T, H, 1)
        output = jnp.einsum("bhts,bshd->bthd", softmax, v) * has_key.astype(compute) + 0.0
        # (+ 0.0 turns the -0.0 of a negative mean times 0 into 0.0)
        weights = jnp.where(mask, softmax, 0.0)
    if mask is None:
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


# --- the fused path: jax.nn's attention, cuDNN's kernel on an NVIDIA GPU ------------------------

__all__ += ["ATTENTION_KINDS", "attention_implementation", "fused_causal_attention"]

#: How :class:`attnlab.gpt.GPT` computes attention when no weights are asked for (``GPTConfig.attention``).
ATTENTION_KINDS = ("attnlab", "fused")


def attention_implementation(devices=None, d_head: int | None = None) -> str:
    """The ``jax.nn.dot_product_attention`` implementation for these devices.

    ``"cudnn"`` (cuDNN's fused flash-attention kernel, which never writes the ``(B, H, T, S)``
    weights to memory) on an NVIDIA GPU that it supports, ``"xla"`` everywhere else: CPUs, TPUs,
    AMD GPUs, NVIDIA GPUs older than compute capability 8.0 (Ampere; Colab's free T4 is 7.5),
    and head widths the kernel does not take (above 128 or not a multiple of 8). JAX's own
    default (``implementation=None``) is XLA everywhere, and ``"cudnn"`` raises an error where
    cuDNN cannot run, hence this choice.

    Args:
      devices: a list of ``jax.Device``; defaults to ``jax.devices()``.
      d_head: the head width Dh, if known.
    """
    devices = jax.devices() if devices is None else devices
    if d_head is not None and (d_head > 128 or d_head % 8):
        return "xla"
    for d in devices:
        if (d.platform in ("gpu", "cuda") and "rocm" not in _platform_version(d).lower()
                and _compute_capability(d) >= 8.0):
            return "cudnn"
    return "xla"


def _compute_capability(device) -> float:
    try:
        return float(device.compute_capability)
    except (AttributeError, TypeError, ValueError):
        return 0.0


def _platform_version(device) -> str:
    try:
        return str(device.client.platform_version)
    except AttributeError:
        return ""


def fused_causal_attention(
    q: jax.Array, k: jax.Array, v: jax.Array, *, implementation: str | None = None
) -> jax.Array:
    """Causal ``softmax(q·kᵀ / sqrt(Dh)) · v`` through ``jax.nn.dot_product_attention``.

    The same result as :func:`scaled_dot_product_attention` with :func:`causal_mask` (to float
    rounding), without the weights: the path for training and generation at speed, when no one
    looks at the weights. cuDNN's kernel takes only 16-bit floats, so with ``"cudnn"`` float32
    inputs are rounded to bfloat16 for the attention and the output is returned as float32
    (bfloat16 keeps 8 significant bits; the softmax is summed in float32 inside the kernel).

    Args:
      q, k, v: ``(B, T, H, Dh)``, the same shape.
      implementation: ``"xla"`` or ``"cudnn"``; default :func:`attention_implementation` for
        this head width, so the same code takes cuDNN on a recent NVIDIA GPU and XLA on a CPU.

    Returns:
      ``(B, T, H, Dh)``, the dtype of ``q``.

    Raises:
      ValueError: if the shapes differ or ``implementation`` is not ``"xla"`` or ``"cudnn"``.

    Source: Vaswani et al. 2017, Eq. (1); Dao et al. 2022, "FlashAttention" (the fused kernel).
    """
    if q.ndim != 4 or q.shape != k.shape or k.shape != v.shape:
        raise ValueError(f"q, k and v must be (B, T, H, Dh) of one shape; got {q.shape}, "
                         f"{k.shape} and {v.shape}.")
    if implementation is None:
        implementation = attention_implementation(d_head=q.shape[-1])
    if implementation not in ("xla", "cudnn"):
        raise ValueError(f"implementation must be 'xla' or 'cudnn'; got {implementation!r}.")
    dtype = q.dtype
    if implementation == "cudnn" and dtype not in (jnp.bfloat16, jnp.float16):
        q, k, v = (a.astype(jnp.bfloat16) for a in (q, k, v))
    out = jax.nn.dot_product_attention(q, k, v, is_causal=True, implementation=implementation)
    return out.astype(dtype)


# --- notebook 04: a per-token reference and other similarity functions -------------------------

__all__ += [  # appended here, so that edits to the list above merge cleanly
    "additive_score",
    "attention_loop",
    "cosine_score",
    "dot_product_score",
    "masked_softmax",
]


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
    mask = jnp.asarray(mask)
    if mask.dtype != jnp.bool_:
        raise ValueError(f"mask must be boolean (True = may attend); got dtype {mask.dtype}.")
    try:
        mask = jnp.broadcast_to(mask, scores.shape)
    except ValueError:
        raise ValueError(
            f"mask of shape {mask.shape} does not broadcast to the scores' shape {scores.shape}."
        ) from None
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
        mask = jnp.asarray(mask)
        if mask.dtype != jnp.bool_:
            raise ValueError(f"mask must be boolean (True = may attend); got dtype {mask.dtype}.")
        try:
            mask = jnp.broadcast_to(mask, (B, H, T, S))
        except ValueError:
            raise ValueError(
                f"mask of shape {mask.shape} does not broadcast to (B, H, T, S) = "
                f"{(B, H, T, S)}."
            ) from None
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


# --- the mask patterns of the three transformer families ------------------------------------


def _check_length(name: str, value) -> int:
    # Python and NumPy integers have __index__; floats, bools and arrays of several do not.
    if isinstance(value, bool) or not hasattr(value, "__index__") or value.__index__() < 1:
        raise ValueError(f"{name} must be an integer >= 1; got {value!r}.")
    return value.__index__()


def bidirectional_mask(seq_len: int) -> jax.Array:
    """Mask that lets every position attend to every position, earlier or later.

    This is the self-attention of an encoder (BERT, the encoder of T5): each token's new vector
    may draw on both its left and its right context. Such a model cannot be trained to predict
    the next token (it would see it); BERT is trained to recover tokens hidden in its input.

    Args:
      seq_len: number of positions T (≥ 1).

    Returns:
      ``(T, T)`` bool, all True. Broadcasts against ``(B, H, T, T)``.

    Raises:
      ValueError: if ``seq_len`` is not an integer ≥ 1.

    Source: Devlin et al. 2019, "BERT", §3.1 (bidirectional self-attention, masked LM).
    """
    seq_len = _check_length("seq_len", seq_len)
    return jnp.ones((seq_len, seq_len), dtype=bool)


def cross_attention_mask(target_len: int, source_len: int) -> jax.Array:
    """Mask of encoder–decoder (cross) attention: every decoder position sees every input token.

    Queries come from the decoder (the output written so far), keys and values from the
    encoder's final vectors of the whole input, which is known in full before decoding starts.

    Args:
      target_len: T, number of decoder (query) positions (≥ 1).
      source_len: S, number of encoder (key) positions (≥ 1).

    Returns:
      ``(T, S)`` bool, all True. Broadcasts against ``(B, H, T, S)``.

    Raises:
      ValueError: if a length is not an integer ≥ 1.

    Source: Vaswani et al. 2017, §3.2.3; Raffel et al. 2020, "T5", §3.2.1.
    """
    target_len = _check_length("target_len", target_len)
    source_len = _check_length("source_len", source_len)
    return jnp.ones((target_len, source_len), dtype=bool)


def encoder_decoder_masks(source_len: int, target_len: int) -> dict[str, jax.Array]:
    """The three attention masks of an encoder–decoder transformer (T5, the original one).

    Args:
      source_len: S, length of the input the encoder reads (≥ 1).
      target_len: T, length of the output the decoder writes (≥ 1).

    Returns:
      ``{"encoder self-attention": (S, S)`` all True (:func:`bidirectional_mask`),
      ``"decoder self-attention": (T, T)`` lower-triangular (:func:`causal_mask`),
      ``"cross-attention": (T, S)`` all True (:func:`cross_attention_mask`) ``}``, bool.

    Raises:
      ValueError: if a length is not an integer ≥ 1.

    Source: Vaswani et al. 2017, §3.2.3; Raffel et al. 2020, "T5", §3.2.1 (masking patterns).
    """
    source_len = _check_length("source_len", source_len)
    target_len = _check_length("target_len", target_len)
    return {
        "encoder self-attention": bidirectional_mask(source_len),
        "decoder self-attention": causal_mask(target_len),
        "cross-attention": cross_attention_mask(target_len, source_len),
    }


__all__ += ["bidirectional_mask", "cross_attention_mask", "encoder_decoder_masks"]


# --- heads, taken apart (notebook 05) ---------------------------------------------------------

__all__ += ["mean_weight_at_offset", "split_heads"]


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
