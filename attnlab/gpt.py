"""A GPT: a stack of decoder blocks of causal self-attention and an MLP.

The model maps token ids ``(B, T)`` to next-token logits ``(B, T, V)``:

1. token embedding + position vectors → ``(B, T, D)``; the positions are a learned table
   (``position="learned"``, GPT-2's choice and the default) or the fixed sine/cosine table of
   :func:`attnlab.positional.sinusoidal_encoding` (``position="sinusoidal"``, no parameters);
2. ``n_layers`` pre-LayerNorm blocks, each ``x + attention(LN(x))`` then ``x + MLP(LN(x))``,
   the attention masked so position t only sees positions ≤ t;
3. a final LayerNorm, then logits = x · Eᵀ with E the token-embedding matrix (weight tying:
   the same matrix reads tokens in and scores them out).

Sources: Radford et al. 2018/2019 (GPT, GPT-2: decoder-only, pre-LN, tied embeddings);
Vaswani et al. 2017 (the transformer block).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from typing import Literal

import jax
import jax.numpy as jnp
from flax import nnx

from attnlab.attention import (
    ATTENTION_KINDS,
    MATMUL_DTYPES,
    MultiHeadAttention,
    bfloat16_matmul,
    causal_mask,
    dense,
    fused_causal_attention,
    scaled_dot_product_attention,
)
from attnlab.positional import sinusoidal_encoding

__all__ = ["GPT", "GPTConfig", "KVCache", "extend_context", "gpt2_init_std"]


@dataclasses.dataclass(frozen=True)
class GPTConfig:
    """Sizes of a GPT.

    Attributes:
      vocab_size: V, number of distinct tokens.
      context_length: C, the most positions the model sees at once (its context window).
      n_layers: number of decoder blocks.
      n_heads: attention heads per block; must divide ``d_model``.
      d_model: D, width of every token vector.
      d_ff: hidden width of each block's MLP (4·D in GPT-2).
      dropout: dropout rate in [0, 1) on embeddings, attention output and MLP output.
      layer_norm_epsilon: ε added to the variance in LayerNorm.
      gelu: ``"tanh"`` (GPT-2's approximation) or ``"exact"`` (the erf form).
      position: how positions enter: ``"learned"`` (a trained ``(C, D)`` table,
        ``position_embedding``, as in GPT-2) or ``"sinusoidal"`` (the fixed sine/cosine table of
        Vaswani et al. 2017, §3.5: no parameters, defined for any position; token vectors are
        then multiplied by ``sqrt(d_model)`` as in the paper's §3.4, see :meth:`GPT.embed`).
      matmul_dtype: ``"float32"`` (the default) or ``"bfloat16"``, an opt-in for speed: the
        matrix products of every dense layer and of the output head take bfloat16 copies of
        their operands and sum in float32, in the forward and the backward pass
        (:func:`attnlab.attention.bfloat16_matmul`). Weights, gradients, AdamW, LayerNorm and
        attention's scores and softmax stay float32. On a CPU with AVX-512 BF16 the reference
        training step runs faster (``benchmarks/NOTES.md``); logits differ from float32 ones
        by about 1%, and the loss curve stays close to float32's.
      attention: ``"attnlab"`` (the default: :func:`~attnlab.attention.scaled_dot_product_attention`,
        the notebooks' step-by-step form) or ``"fused"``: when no attention weights are asked
        for, :func:`~attnlab.attention.fused_causal_attention` (``jax.nn.dot_product_attention``,
        which picks cuDNN's fused kernel on an NVIDIA GPU and XLA on a CPU). Weights, when asked
        for, always come from the step-by-step form.
    """

    vocab_size: int = 96
    context_length: int = 128
    n_layers: int = 4
    n_heads: int = 4
    d_model: int = 128
    d_ff: int = 512
    dropout: float = 0.0
    layer_norm_epsilon: float = 1e-5
    gelu: Literal["tanh", "exact"] = "tanh"
    position: Literal["learned", "sinusoidal"] = "learned"
    matmul_dtype: Literal["float32", "bfloat16"] = "float32"
    attention: Literal["attnlab", "fused"] = "attnlab"

    def __post_init__(self):
        for name in ("vocab_size", "context_length", "n_layers", "n_heads", "d_model", "d_ff"):
            value = getattr(self, name)
            if not isinstance(value, numbers.Integral) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer; got {value!r}.")
            object.__setattr__(self, name, int(value))  # numpy ints → plain int (JSON, hashing)
        if self.d_model % self.n_heads:
            raise ValueError(
                f"n_heads must divide d_model; got d_model={self.d_model}, "
                f"n_heads={self.n_heads}. Try n_heads in "
                f"{[h for h in range(1, self.d_model + 1) if self.d_model % h == 0][:8]}."
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1); got {self.dropout}.")
        if not self.layer_norm_epsilon > 0:
            raise ValueError(f"layer_norm_epsilon must be > 0; got {self.layer_norm_epsilon}.")
        if self.gelu not in ("tanh", "exact"):
            raise ValueError(f"gelu must be 'tanh' or 'exact'; got {self.gelu!r}.")
        if self.matmul_dtype not in MATMUL_DTYPES:
            raise ValueError(
                f"matmul_dtype must be one of {MATMUL_DTYPES}; got {self.matmul_dtype!r}."
            )
        if self.attention not in ATTENTION_KINDS:
            raise ValueError(
                f"attention must be one of {ATTENTION_KINDS}; got {self.attention!r}."
            )
        if self.position not in ("learned", "sinusoidal"):
            raise ValueError(
                f"position must be 'learned' or 'sinusoidal'; got {self.position!r}."
            )

    @property
    def d_head(self) -> int:
        """Width of one attention head, ``d_model // n_heads``."""
        return self.d_model // self.n_heads

    def num_params(self) -> int:
        """Closed-form parameter count (tied output head, so no separate V×D output matrix).

        A sinusoidal position table is fixed, not trained, so it adds no parameters.
        """
        V, C, D, F, L = self.vocab_size, self.context_length, self.d_model, self.d_ff, self.n_layers
        attention = 4 * (D * D + D)  # W_q, W_k, W_v, W_o with biases
        mlp = (D * F + F) + (F * D + D)
        layer_norms = 2 * (2 * D)  # two LayerNorms, scale and bias each
        positions = C * D if self.position == "learned" else 0
        return V * D + positions + L * (attention + mlp + layer_norms) + 2 * D

    def flops_per_token(self) -> int:
        """Approximate training FLOPs per token (forward + backward ≈ 3 × forward).

        Counts 2 FLOPs per multiply-add in the matrix products, including attention's
        ``q·kᵀ`` and ``weights·v`` over a full context (Kaplan et al. 2020, Table 1). Adding
        the position vectors (learned or sinusoidal) is not a matrix product and is not counted,
        so both position choices give the same figure.
        """
        D, F, L, C, V = self.d_model, self.d_ff, self.n_layers, self.context_length, self.vocab_size
        per_layer = 2 * (4 * D * D + 2 * D * F) + 2 * (2 * C * D)
        return 3 * (L * per_layer + 2 * D * V)


KVCache = dict  # {"k": (L, B, C, H, Dh), "v": (L, B, C, H, Dh)}, or lists of L (B, C, H, Dh)


def gpt2_init_std(n_layers: int) -> tuple[float, float]:
    """GPT-2's initialisation, the one place that sets it: ``(std, residual_std)``.

    Every parameter of a :class:`GPT` starts as follows:

    - token and position embeddings, ``W_q``, ``W_k``, ``W_v`` and the MLP's ``fc_in`` kernel:
      normal(0, ``std`` = 0.02);
    - the two projections that write into the residual stream, attention ``W_o`` and the MLP's
      ``fc_out`` kernel: normal(0, ``residual_std`` = 0.02 / sqrt(2·n_layers)). Each block adds
      two such outputs to the residual stream, so without this scaling its variance at the top
      would grow with depth;
    - every bias: 0; every LayerNorm: scale 1, bias 0 (flax's defaults, which are GPT-2's).

    Args:
      n_layers: number of decoder blocks (≥ 1); the residual stream receives 2·n_layers writes.

    Returns:
      ``(std, residual_std)``, floats.

    Source: Radford et al. 2018 (GPT), §4.1 (normal(0, 0.02)); Radford et al. 2019 (GPT-2),
    §2.3 (residual weights scaled by 1/sqrt(N), N the number of residual layers).
    """
    return 0.02, 0.02 / math.sqrt(2 * n_layers)


class MLP(nnx.Module):
    """Position-wise feed-forward network: Linear(D→d_ff) → GELU → Linear(d_ff→D)."""

    def __init__(self, config: GPTConfig, *, rngs: nnx.Rngs):
        std, residual_std = gpt2_init_std(config.n_layers)
        init = nnx.initializers.normal(std)
        residual_init = nnx.initializers.normal(residual_std)
        self.fc_in = nnx.Linear(config.d_model, config.d_ff, kernel_init=init, rngs=rngs)
        self.fc_out = nnx.Linear(config.d_ff, config.d_model, kernel_init=residual_init, rngs=rngs)
        self.approximate = config.gelu == "tanh"
        self.matmul_dtype = config.matmul_dtype

    def __call__(self, x: jax.Array) -> jax.Array:
        shape = x.shape
        rows = x.reshape(-1, shape[-1])  # 2-D matmuls: faster weight gradients on CPU
        hidden = jax.nn.gelu(dense(self.fc_in, rows, self.matmul_dtype),
                             approximate=self.approximate)
        return dense(self.fc_out, hidden, self.matmul_dtype).reshape(shape)


class Block(nnx.Module):
    """One pre-LayerNorm decoder block: ``x += attn(LN(x))``; ``x += MLP(LN(x))``."""

    def __init__(self, config: GPTConfig, *, rngs: nnx.Rngs):
        D = config.d_model
        std, residual_std = gpt2_init_std(config.n_layers)
        self.ln_1 = nnx.LayerNorm(D, epsilon=config.layer_norm_epsilon, rngs=rngs)
        self.attention = MultiHeadAttention(
            D, config.n_heads, rngs=rngs, init_std=std, out_init_std=residual_std,
            matmul_dtype=config.matmul_dtype,
        )
        self.ln_2 = nnx.LayerNorm(D, epsilon=config.layer_norm_epsilon, rngs=rngs)
        self.mlp = MLP(config, rngs=rngs)
        self.dropout = nnx.Dropout(config.dropout, rngs=rngs)

    def __call__(self, x, mask, *, deterministic: bool = True):
        attended, weights = self.attention(self.ln_1(x), mask, return_weights=True)
        x = x + self.dropout(attended, deterministic=deterministic)
        x = x + self.dropout(self.mlp(self.ln_2(x)), deterministic=deterministic)
        return x, weights

    def fused(self, x, *, deterministic: bool = True):
        """:meth:`__call__` with the causal mask through
        :func:`~attnlab.attention.fused_causal_attention`; no weights."""
        q, k, v = self.attention.qkv(self.ln_1(x))
        attended = self.attention.merge_heads(fused_causal_attention(q, k, v))
        x = x + self.dropout(attended, deterministic=deterministic)
        return x + self.dropout(self.mlp(self.ln_2(x)), deterministic=deterministic)

    def prefill(self, x, mask):
        """:meth:`__call__` without dropout that also returns this layer's k and v for a cache."""
        q, k, v = self.attention.qkv(self.ln_1(x))
        heads, _ = scaled_dot_product_attention(q, k, v, mask)
        x = x + self.attention.merge_heads(heads)
        x = x + self.mlp(self.ln_2(x))
        return x, k, v

    def decode(self, x, k_cache, v_cache, position):
        attended, k_cache, v_cache = self.attention.decode(self.ln_1(x), k_cache, v_cache, position)
        x = x + attended
        x = x + self.mlp(self.ln_2(x))
        return x, k_cache, v_cache


class GPT(nnx.Module):
    """Decoder-only transformer language model.

    Args:
      config: a :class:`GPTConfig`.
      rngs: ``nnx.Rngs``; its ``params`` stream initialises weights, its ``dropout`` stream
        (or the default stream) drives dropout in training.

    Weights start as in GPT-2 (see :func:`gpt2_init_std`): normal(0, 0.02), the two
    projections that write into the residual stream scaled down by ``1/sqrt(2·n_layers)``,
    biases 0, LayerNorms at scale 1 and bias 0.
    """

    def __init__(self, config: GPTConfig, *, rngs: nnx.Rngs):
        self.config = config
        init = nnx.initializers.normal(gpt2_init_std(config.n_layers)[0])
        self.token_embedding = nnx.Embed(
            config.vocab_size, config.d_model, embedding_init=init, rngs=rngs
        )
        if config.position == "learned":  # sinusoidal positions are computed, not stored
            self.position_embedding = nnx.Embed(
                config.context_length, config.d_model, embedding_init=init, rngs=rngs
            )
        self.dropout = nnx.Dropout(config.dropout, rngs=rngs)
        self.blocks = nnx.data([Block(config, rngs=rngs) for _ in range(config.n_layers)])
        self.ln_f = nnx.LayerNorm(config.d_model, epsilon=config.layer_norm_epsilon, rngs=rngs)

    def num_params(self) -> int:
        """Number of trainable scalars, counted from the actual parameter arrays."""
        return sum(p.size for p in jax.tree.leaves(nnx.state(self, nnx.Param)))

    def __call__(
        self,
        tokens: jax.Array,
        *,
        deterministic: bool = True,
        return_attention: bool = False,
    ) -> jax.Array | tuple[jax.Array, list[jax.Array]]:
        """Next-token logits for every position.

        Args:
          tokens: ``(B, T)`` int ids in ``[0, vocab_size)``, ``1 <= T <= context_length``.
          deterministic: ``False`` turns dropout on (training).
          return_attention: also return each layer's attention weights.

        Returns:
          ``logits`` ``(B, T, V)`` float32, where ``logits[b, t]`` scores the token that follows
          position t having seen only positions 0..t; with ``return_attention``,
          ``(logits, weights)`` where ``weights`` is a list of ``n_layers`` arrays
          ``(B, H, T, T)``.

        Raises:
          ValueError: if ``tokens`` is not 2-D or longer than the context window.
        """
        tokens = jnp.asarray(tokens)
        if tokens.ndim != 2:
            raise ValueError(f"tokens must be 2-D (B, T); got shape {tokens.shape}.")
        T = tokens.shape[1]
        if not 1 <= T <= self.config.context_length:
            raise ValueError(
                f"tokens has {T} positions; the context window allows 1 to "
                f"{self.config.context_length}. Keep the last {self.config.context_length} tokens."
            )
        x = self.embed(tokens, jnp.arange(T)[None])
        x = self.dropout(x, deterministic=deterministic)
        if self.config.attention == "fused" and not return_attention:
            for block in self.blocks:
                x = block.fused(x, deterministic=deterministic)
            return self.output_logits(self.ln_f(x))
        mask = causal_mask(T)
        all_weights = []
        for block in self.blocks:
            x, weights = block(x, mask, deterministic=deterministic)
            all_weights.append(weights)
        logits = self.output_logits(self.ln_f(x))
        return (logits, all_weights) if return_attention else logits

    def output_logits(self, h: jax.Array) -> jax.Array:
        """The tied output head: ``(..., D)`` final vectors → ``(..., V)`` float32 logits,
        ``h · Eᵀ`` (in ``config.matmul_dtype``)."""
        if self.config.matmul_dtype == "float32":
            return self.token_embedding.attend(h)
        E = self.token_embedding.embedding[...]
        rows = bfloat16_matmul(h.reshape(-1, h.shape[-1]), E.T)
        return rows.reshape(*h.shape[:-1], E.shape[0])

    # --- generation with a key/value cache -------------------------------------------------

    def init_cache(self, batch_size: int, dtype=jnp.float32) -> KVCache:
        """Empty key/value cache: ``{"k", "v"}``, each ``(n_layers, B, C, H, Dh)`` zeros."""
        c = self.config
        shape = (c.n_layers, batch_size, c.context_length, c.n_heads, c.d_head)
        return {"k": jnp.zeros(shape, dtype), "v": jnp.zeros(shape, dtype)}

    def prefill(
        self, tokens: jax.Array, lengths: jax.Array | None = None
    ) -> tuple[jax.Array, KVCache]:
        """Read a whole prompt in one parallel pass: its next-token logits and a filled cache.

        The same computation as :meth:`__call__` (causal mask, no dropout), but it keeps every
        layer's keys and values in a cache of ``context_length`` positions, so that
        :meth:`decode_step` can continue at position ``lengths[b]``, and it scores only the
        last real token of each row.

        Prompts of different lengths share one call: row b holds its ``lengths[b]`` tokens at
        positions ``0 .. lengths[b] - 1`` followed by any padding ids. The causal mask keeps the
        padding out of every real position, so the result for row b equals a forward pass over
        its prompt alone. The cache entries of the padding are junk, but :meth:`decode_step`
        overwrites position ``lengths[b]`` before any query can see it.

        Args:
          tokens: ``(B, T)`` int ids, ``1 <= T <= context_length``.
          lengths: ``(B,)`` int in ``[1, T]`` (may be traced), or None for all ``T``.

        Returns:
          ``(logits, cache)``: logits ``(B, V)`` float32 for the token after position
          ``lengths[b] - 1``; cache as :meth:`init_cache`, positions ``< T`` filled, the rest 0.

        Raises:
          ValueError: if ``tokens`` is not 2-D or longer than the context window.
        """
        tokens = jnp.asarray(tokens)
        if tokens.ndim != 2 or not 1 <= tokens.shape[1] <= self.config.context_length:
            raise ValueError(
                f"tokens must have shape (B, T) with 1 <= T <= context_length="
                f"{self.config.context_length}; got {tokens.shape}."
            )
        B, T = tokens.shape
        x = self.embed(tokens, jnp.arange(T)[None])
        mask = causal_mask(T)
        ks, vs = [], []
        for block in self.blocks:
            x, k, v = block.prefill(x, mask)
            ks.append(k)
            vs.append(v)
        last = jnp.full((B,), T - 1) if lengths is None else jnp.asarray(lengths) - 1
        x_last = jnp.take_along_axis(x, last[:, None, None], axis=1)[:, 0]  # (B, D)
        logits = self.output_logits(self.ln_f(x_last))
        pad = [(0, 0), (0, 0), (0, self.config.context_length - T), (0, 0), (0, 0)]
        return logits, {"k": jnp.pad(jnp.stack(ks), pad), "v": jnp.pad(jnp.stack(vs), pad)}

    def decode_step(
        self, token: jax.Array, cache: KVCache, position: jax.Array
    ) -> tuple[jax.Array, KVCache]:
        """Feed one token per sequence at ``position``, reusing cached keys and values.

        Only the new token's q, k, v are computed; keys and values of earlier positions come
        from ``cache``. Equal (to float rounding) to running :meth:`__call__` on the whole
        prefix and taking the last position.

        Args:
          token: ``(B,)`` int ids.
          cache: from :meth:`init_cache` or :meth:`prefill`, filled for positions
            ``< position``. ``cache["k"]`` and ``cache["v"]`` are either the stacked
            ``(n_layers, B, C, H, Dh)`` arrays or lists of ``n_layers`` arrays ``(B, C, H, Dh)``
            (``list(cache["k"])``). Inside a compiled loop prefer the lists: each layer's array
            is then updated in place, while the stacked form is copied whole at every step
            (measured on a 2-core CPU for the ``default`` preset's sizes with a 256-position
            cache: about 230 µs per step stacked, 120 µs as lists).
          position: int (may be traced) in ``[0, context_length)``: a scalar for every
            sequence, or ``(B,)``, one per sequence.

        Returns:
          ``(logits, cache)``: logits ``(B, V)`` for the token after ``position``; the cache, in
          the form it came in, with this position filled.
        """
        x = self.embed(token[:, None], jnp.reshape(position, (-1, 1)))
        ks, vs = [], []
        for i, block in enumerate(self.blocks):
            x, k, v = block.decode(x, cache["k"][i], cache["v"][i], position)
            ks.append(k)
            vs.append(v)
        logits = self.output_logits(self.ln_f(x))[:, 0]
        if isinstance(cache["k"], list | tuple):
            return logits, {"k": ks, "v": vs}
        return logits, {"k": jnp.stack(ks), "v": jnp.stack(vs)}


    def embed(self, tokens: jax.Array, positions: jax.Array) -> jax.Array:
        """The vectors that enter the first block: token vectors plus position vectors.

        With ``position="learned"`` this is ``E[token] + P[position]``, both trained tables
        (GPT-2). With ``position="sinusoidal"`` it is ``sqrt(D)·E[token] + PE[position]``, with
        ``PE = sinusoidal_encoding(context_length, d_model)`` fixed. The factor ``sqrt(D)`` is
        the paper's (Vaswani et al. 2017, §3.4): token vectors start small (std 0.02) while
        ``PE`` entries are as large as ±1, and without it the tokens would be drowned out.

        Args:
          tokens: ``(B, T)`` int ids.
          positions: int, broadcastable to ``(B, T)`` (may be traced), each in
            ``[0, context_length)``.

        Returns:
          ``(B, T, D)`` float32.
        """
        c = self.config
        if c.position == "learned":
            return self.token_embedding(tokens) + self.position_embedding(positions)
        table = sinusoidal_encoding(c.context_length, c.d_model)  # a constant under jit
        return math.sqrt(c.d_model) * self.token_embedding(tokens) + table[positions]


# --- a block's weights by name, for writing its forward pass out by hand ---------------------

#: The names :func:`block_weights` gives a block's 16 arrays, and where each lives in
#: :class:`Block` (attribute path). Kernels are ``(in, out)``: a layer computes ``x @ W + b``.
BLOCK_WEIGHT_NAMES: dict[str, tuple[str, ...]] = {
    "ln_1_scale": ("ln_1", "scale"),  # (D,)
    "ln_1_bias": ("ln_1", "bias"),  # (D,)
    "W_q": ("attention", "W_q", "kernel"),  # (D, D)
    "b_q": ("attention", "W_q", "bias"),  # (D,)
    "W_k": ("attention", "W_k", "kernel"),  # (D, D)
    "b_k": ("attention", "W_k", "bias"),  # (D,)
    "W_v": ("attention", "W_v", "kernel"),  # (D, D)
    "b_v": ("attention", "W_v", "bias"),  # (D,)
    "W_o": ("attention", "W_o", "kernel"),  # (D, D)
    "b_o": ("attention", "W_o", "bias"),  # (D,)
    "ln_2_scale": ("ln_2", "scale"),  # (D,)
    "ln_2_bias": ("ln_2", "bias"),  # (D,)
    "W_in": ("mlp", "fc_in", "kernel"),  # (D, d_ff)
    "b_in": ("mlp", "fc_in", "bias"),  # (d_ff,)
    "W_out": ("mlp", "fc_out", "kernel"),  # (d_ff, D)
    "b_out": ("mlp", "fc_out", "bias"),  # (D,)
}


def block_weights(block: Block) -> dict[str, jax.Array]:
    """A decoder block's parameters as a flat ``{name: array}`` dict (names in
    :data:`BLOCK_WEIGHT_NAMES`), so that its forward pass can be written out by hand.

    With these, ``block(x, causal_mask(T))[0]`` equals (to float rounding)::

        h = LN(x; ln_1_scale, ln_1_bias)
        q, k, v = h @ W_q + b_q, h @ W_k + b_k, h @ W_v + b_v   # split into heads
        x = x + concat_heads(softmax(q kᵀ / sqrt(d_head), causal) v) @ W_o + b_o
        h = LN(x; ln_2_scale, ln_2_bias)
        x = x + gelu(h @ W_in + b_in) @ W_out + b_out

    Args:
      block: one :class:`Block`, e.g. ``model.blocks[0]``.

    Returns:
      16 float arrays, shapes as commented in :data:`BLOCK_WEIGHT_NAMES` (D = d_model). The
      arrays are the block's current values (JAX arrays are immutable, so no aliasing).

    Raises:
      TypeError: if ``block`` is not a :class:`Block`.

    Source: Radford et al. 2019, "Language Models are Unsupervised Multitask Learners", §2.3
    (pre-LayerNorm blocks).
    """
    if not isinstance(block, Block):
        raise TypeError(f"block must be an attnlab.gpt.Block; got {type(block).__name__}.")
    weights = {}
    for name, path in BLOCK_WEIGHT_NAMES.items():
        variable = block
        for attribute in path:
            variable = getattr(variable, attribute)
        weights[name] = variable[...]
    return weights


__all__ += ["BLOCK_WEIGHT_NAMES", "Block", "block_weights"]


def extend_context(model: GPT, context_length: int) -> GPT:
    """A copy of a sinusoidal-position GPT with a longer context window and the same weights.

    A sinusoidal model has no parameter whose shape depends on the context length (its position
    table is computed for any length), so its weights fit a model with a longer window
    unchanged. A learned-position model cannot be extended: its table has no row for a
    position it never had. Whether the extended model *uses* the new positions well is an
    empirical question (notebook 05 measures it).

    Args:
      model: a :class:`GPT` with ``config.position == "sinusoidal"``.
      context_length: the new window, ``>= model.config.context_length``.

    Returns:
      A new :class:`GPT` whose config differs only in ``context_length``; its parameter arrays
      are ``model``'s own (shared, not copied). Its logits for the first
      ``model.config.context_length`` positions equal ``model``'s.

    Raises:
      ValueError: if the model uses learned positions, or ``context_length`` is shorter than
        the current one.
    """
    config = model.config
    if config.position != "sinusoidal":
        raise ValueError(
            f"only a GPT with position='sinusoidal' can be extended; this one has "
            f"position={config.position!r}, whose table has rows for positions 0 to "
            f"{config.context_length - 1} only."
        )
    if int(context_length) < config.context_length:
        raise ValueError(
            f"context_length must be >= the current {config.context_length}; got "
            f"{context_length}."
        )
    longer = GPT(dataclasses.replace(config, context_length=int(context_length)),
                 rngs=nnx.Rngs(0))
    nnx.update(longer, nnx.state(model, nnx.Param))  # every random weight replaced
    return longer
