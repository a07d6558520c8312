"""Scaled dot-product attention, attention masks and multi-head attention.

Layout (the same as ``jax.nn.dot_product_attention``):

- queries ``q``: ``(B, T, H, Dh)`` — batch, query positions, heads, head width;
- keys ``k`` and values ``v``: ``(B, S, H, Dh)`` — S key positions;
- output: ``(B, T, H, Dh)``; attention weights: ``(B, H, T, S)``.

Masks are boolean, ``True`` = "this query may attend to this key", and broadcast against
``(B, H, T, S)``. A query whose row is entirely masked gets zero weights and a zero output
instead of the NaN a plain softmax over ``-inf`` would give.

One module per idea (import from here, e.g. ``from attnlab.attention import causal_mask``):

- :mod:`attnlab.attention.masks` — :func:`causal_mask`, :func:`padding_mask`,
  :func:`combine_masks`; the masks of encoders, decoders and encoder–decoders (notebook 06):
  :func:`bidirectional_mask`, :func:`cross_attention_mask`, :func:`encoder_decoder_masks`;
- :mod:`attnlab.attention.core` — :func:`scaled_dot_product_attention` (notebook 04 and every
  GPT block);
- :mod:`attnlab.attention.multihead` — :class:`MultiHeadAttention` (``qkv``, ``merge_heads``,
  ``decode`` with a KV cache); heads taken apart (notebook 05): :func:`split_heads`,
  :func:`mean_weight_at_offset`;
- :mod:`attnlab.attention.matmul` — :func:`bfloat16_matmul` (bfloat16 products, float32 sums,
  its own gradient), :func:`dense`, ``MATMUL_DTYPES``;
- :mod:`attnlab.attention.fused` — :func:`fused_causal_attention` through
  ``jax.nn.dot_product_attention`` (cuDNN's kernel on a recent NVIDIA GPU),
  :func:`attention_implementation`, ``ATTENTION_KINDS``;
- :mod:`attnlab.attention.scores` — notebook 04's per-token reference :func:`attention_loop`
  and the similarity functions :func:`dot_product_score`, :func:`cosine_score`,
  :func:`additive_score`, with :func:`masked_softmax`.

Importing the package tunes glibc's allocator for XLA (:func:`attnlab.runtime.tune_memory`;
``ATTNLAB_TUNE_MEMORY=0`` leaves it alone).

Source: Vaswani et al. 2017, "Attention Is All You Need", §3.2.1 (Eq. 1) and §3.2.2.
"""

from attnlab import runtime
from attnlab.attention.core import scaled_dot_product_attention
from attnlab.attention.fused import (
    ATTENTION_KINDS,
    attention_implementation,
    fused_causal_attention,
)
from attnlab.attention.masks import (
    bidirectional_mask,
    causal_mask,
    combine_masks,
    cross_attention_mask,
    encoder_decoder_masks,
    padding_mask,
)
from attnlab.attention.matmul import MATMUL_DTYPES as MATMUL_DTYPES
from attnlab.attention.matmul import bfloat16_matmul, dense
from attnlab.attention.multihead import MultiHeadAttention, mean_weight_at_offset, split_heads
from attnlab.attention.scores import (
    additive_score,
    attention_loop,
    cosine_score,
    dot_product_score,
    masked_softmax,
)

__all__ = [
    # masks
    "causal_mask", "combine_masks", "padding_mask",
    "bidirectional_mask", "cross_attention_mask", "encoder_decoder_masks",
    # scaled dot-product attention
    "scaled_dot_product_attention",
    # multi-head attention, heads taken apart
    "MultiHeadAttention", "mean_weight_at_offset", "split_heads",
    # bfloat16 matrix products
    "bfloat16_matmul", "dense",
    # the fused path
    "ATTENTION_KINDS", "attention_implementation", "fused_causal_attention",
    # notebook 04: a per-token reference and other similarity functions
    "additive_score", "attention_loop", "cosine_score", "dot_product_score", "masked_softmax",
]

runtime.tune_memory_unless_disabled()  # glibc's allocator for XLA (runtime.tune_memory)
