"""Notebook 06's exercise (``pre_ln_block``): one pre-LN decoder block, as in GPT-2.

The learner writes ``x + attention(LN(x))`` then ``x + MLP(LN(x))`` from the weights
:func:`attnlab.gpt.block_weights` gives; the reference is the package's own
:class:`attnlab.gpt.Block`.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from attnlab.exercises._core import Exercise, Mistake

#: (B, T, H, d_head, d_ff) of the block exercise's trials: T >= 2 so that the mask matters,
#: H > 1 so that sqrt(d_head) and sqrt(d_model) differ. Two shapes keep the checker quick (each
#: new shape makes JAX compile the learner's operations again).
_BLOCK_SHAPES = ((2, 5, 2, 4, 24), (1, 6, 4, 2, 16))


def _pre_ln_block_inputs(key: jax.Array):
    """``x (B, T, D)``, a :func:`attnlab.gpt.block_weights`-style dict, and ``n_heads``.

    Weights are drawn at a scale where every part of the block changes the output visibly:
    kernels ``normal / sqrt(fan_in)``, LayerNorm scales ``1 + 0.3·normal``, biases
    ``0.3·normal``; ``x`` has a non-zero mean and spread, so LayerNorm matters too. (NumPy
    draws them, seeded from ``key``: one random op per array would compile per shape.)
    """
    from attnlab.gpt import BLOCK_WEIGHT_NAMES

    typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)  # new-style key or legacy uint32
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key) if typed else key).ravel())
    B, T, H, Dh, F = _BLOCK_SHAPES[rng.integers(len(_BLOCK_SHAPES))]
    D = H * Dh
    special = {"W_in": (D, F), "b_in": (F,), "W_out": (F, D)}
    weights = {}
    for name in BLOCK_WEIGHT_NAMES:
        shape = special.get(name, (D, D) if name.startswith("W_") else (D,))
        noise = rng.standard_normal(shape)
        if name.startswith("W_"):
            value = noise / math.sqrt(shape[0])
        elif name.endswith("_scale"):
            value = 1.0 + 0.3 * noise
        else:
            value = 0.3 * noise
        weights[name] = jnp.asarray(value, jnp.float32)
    x = jnp.asarray(1.0 + 2.0 * rng.standard_normal((B, T, D)), jnp.float32)
    return x, weights, H


@functools.partial(jax.jit, static_argnames="n_heads")
def _pre_ln_block_reference(x, weights, n_heads):
    """The package's own :class:`attnlab.gpt.Block`, loaded with ``weights``, on ``x``.

    Built inside ``jit``: its random initial weights are overwritten, so XLA drops them, and
    the whole block compiles once per shape.
    """
    from flax import nnx

    from attnlab.attention import causal_mask
    from attnlab.gpt import BLOCK_WEIGHT_NAMES, Block, GPTConfig

    _, T, D = x.shape
    config = GPTConfig(vocab_size=1, context_length=T, n_layers=1, n_heads=n_heads,
                       d_model=D, d_ff=weights["W_in"].shape[1])
    block = Block(config, rngs=nnx.Rngs(0))
    for name, path in BLOCK_WEIGHT_NAMES.items():
        functools.reduce(getattr, path, block)[...] = weights[name]
    return block(x, causal_mask(T))[0]


def _block_variant(x, w, n_heads, *, post_ln=False, attention_residual=True, mlp_residual=True,
                   mask="causal", divide_by="d_head", activation="gelu_tanh", second_ln="ln_2",
                   project=True, softmax_axis=-1, split="BTHD", merge="transpose",
                   ln_affine=True, ln_axis=-1):
    """A pre-LN block written plainly, with switches that each make one typical mistake.

    ``split``: "BTHD" (right) or "BTDH" (heads taken as (B, T, d_head, H)); ``merge``:
    "transpose" (right: (B, H, T, d_head) -> (B, T, H, d_head) -> (B, T, D)), "none" (reshaped
    without the transpose) or "as_split" (back through (B, T, d_head, H)); ``project``: True,
    False (no W_o, b_o) or "no_bias"; ``ln_axis``: the axis LayerNorm normalises over.
    """
    B, T, D = x.shape
    d_head = D // n_heads

    def layer_norm(h, which):
        mean = h.mean(ln_axis, keepdims=True)
        var = ((h - mean) ** 2).mean(ln_axis, keepdims=True)
        normed = (h - mean) / jnp.sqrt(var + 1e-5)
        return normed * w[f"{which}_scale"] + w[f"{which}_bias"] if ln_affine else normed

    def heads(a):  # (B, T, D) -> (B, T, H, d_head)
        if split == "BTDH":
            return a.reshape(B, T, d_head, n_heads).swapaxes(-1, -2)
        return a.reshape(B, T, n_heads, d_head)

    def attention(h):
        q, k, v = (heads(h @ w[f"W_{n}"] + w[f"b_{n}"]) for n in "qkv")
        scores = jnp.einsum("bthd,bshd->bhts", q, k)
        divisor = {"d_head": math.sqrt(d_head), "d_model": math.sqrt(D), "none": 1.0,
                   "d_head_plain": d_head}[divide_by]
        scores = scores / divisor
        allowed = {"causal": jnp.tril, "future": jnp.triu, "none": lambda m: m}[mask](
            jnp.ones((T, T), bool))
        weights = jax.nn.softmax(jnp.where(allowed, scores, -jnp.inf), axis=softmax_axis)
        z = jnp.einsum("bhts,bshd->bhtd", jnp.where(allowed, weights, 0.0), v)
        z = {"transpose": lambda u: u.transpose(0, 2, 1, 3), "none": lambda u: u,
             "as_split": lambda u: u.transpose(0, 2, 3, 1)}[merge](z).reshape(B, T, D)
        if project == "no_bias":
            return z @ w["W_o"]
        return z @ w["W_o"] + w["b_o"] if project else z

    def mlp(h):
        a = h @ w["W_in"] + w["b_in"]
        a = {"gelu_tanh": lambda u: jax.nn.gelu(u, approximate=True),
             "gelu_exact": lambda u: jax.nn.gelu(u, approximate=False),
             "relu": jax.nn.relu, "none": lambda u: u}[activation](a)
        return a @ w["W_out"] + w["b_out"]

    if post_ln:
        x = layer_norm(x + attention(x), "ln_1")
        return layer_norm(x + mlp(x), second_ln)
    a = attention(layer_norm(x, "ln_1"))
    x = x + a if attention_residual else a
    m = mlp(layer_norm(x, second_ln))
    return x + m if mlp_residual else m


def _variant(**switches) -> Callable:
    return functools.partial(_block_variant, **switches)


_BLOCK_MISTAKES = (
    Mistake("LayerNorm after the residual addition (post-LN, as in the 2017 transformer); a "
            "GPT-2 block normalises each sub-layer's input instead: x = x + attention(LN(x)).",
            _variant(post_ln=True)),
    Mistake("no residual connections: each sub-layer's output must be added to its input, "
            "x = x + attention(LN(x)), then x = x + MLP(LN(x)).",
            _variant(attention_residual=False, mlp_residual=False)),
    Mistake("no residual connection around attention: add the block's input back, "
            "x = x + attention(LN(x)).", _variant(attention_residual=False)),
    Mistake("no residual connection around the feed-forward network: "
            "x = x + MLP(LN(x)), not MLP(LN(x)) alone.", _variant(mlp_residual=False)),
    Mistake("no causal mask: every position also sees later positions. Set the scores of keys "
            "s > t to -inf (jnp.tril gives the allowed pairs) before the softmax.",
            _variant(mask="none")),
    Mistake("the mask is flipped: positions see later positions instead of earlier ones. "
            "Position t may attend to keys s <= t (jnp.tril, not jnp.triu).",
            _variant(mask="future")),
    Mistake("the scores are not scaled: divide q·k by sqrt(d_head) before the softmax.",
            _variant(divide_by="none")),
    Mistake("the scores are divided by sqrt(d_model); the scale uses one head's width, "
            "sqrt(d_head) = sqrt(d_model / n_heads).", _variant(divide_by="d_model")),
    Mistake("the scores are divided by d_head; the scale is its square root, sqrt(d_head).",
            _variant(divide_by="d_head_plain")),
    Mistake("the softmax runs over the wrong axis: each query's row of scores (over the keys, "
            "the last axis of (B, H, T, S)) must sum to 1.", _variant(softmax_axis=-2)),
    Mistake("the output projection W_o (and b_o) is missing: after concatenating the heads, "
            "multiply by W_o and add b_o.", _variant(project=False)),
    Mistake("the output projection's bias b_o is missing: z @ W_o + b_o.",
            _variant(project="no_bias")),
    *(Mistake("the heads were split as (B, T, d_head, H); reshape to (B, T, n_heads, d_head), "
              "so that head i gets columns i·d_head to (i+1)·d_head - 1 of q, k and v.",
              _variant(split="BTDH", merge=merge)) for merge in ("transpose", "as_split")),
    Mistake("the heads were merged without the transpose: (B, H, T, d_head) must become "
            "(B, T, H, d_head) (transpose or einsum '...->bthd') before the reshape to (B, T, D).",
            _variant(merge="none")),
    Mistake("no activation in the feed-forward network: apply GELU between its two linear "
            "layers, jax.nn.gelu(h @ W_in + b_in) @ W_out + b_out.", _variant(activation="none")),
    Mistake("LayerNorm without its learned scale and bias: after normalising, multiply by "
            "ln_1_scale (ln_2_scale) and add ln_1_bias (ln_2_bias).", _variant(ln_affine=False)),
    *(Mistake("LayerNorm normalises over the wrong axis: each token's vector is normalised on "
              "its own, with mean and variance over the last axis D (axis=-1, keepdims=True).",
              _variant(ln_axis=axis)) for axis in (0, 1)),
    Mistake("the second LayerNorm uses ln_1's scale and bias; the feed-forward network has its "
            "own, ln_2_scale and ln_2_bias.", _variant(second_ln="ln_1")),
    Mistake("exact (erf) GELU; GPT-2 and this model use its tanh approximation, "
            "jax.nn.gelu(x, approximate=True), which is jax.nn.gelu's default.",
            _variant(activation="gelu_exact")),
    Mistake("ReLU in the feed-forward network; GPT-2 uses GELU (tanh approximation), "
            "jax.nn.gelu(x).", _variant(activation="relu")),
)


PRE_LN_BLOCK = Exercise(
    name="pre_ln_block",
    notebook="06",
    task="one pre-LN decoder block: x (B, T, D), weights {name: array} as "
    "attnlab.gpt.block_weights gives them, n_heads -> (B, T, D)",
    reference=_pre_ln_block_reference,
    inputs=_pre_ln_block_inputs,
    n_trials=8,
    rtol=1e-4,
    atol=1e-5,
    axis_names={"x": ("B", "T", "D")},
    mistakes=_BLOCK_MISTAKES,
    ratio_hints=False,
)

#: This notebook's exercises, for :data:`attnlab.exercises.EXERCISES`.
NOTEBOOK_EXERCISES: tuple[Exercise, ...] = (PRE_LN_BLOCK,)
