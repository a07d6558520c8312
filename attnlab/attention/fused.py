"""Causal attention through ``jax.nn.dot_product_attention``, with cuDNN's fused kernel on a
recent NVIDIA GPU. No notebook calls it directly: :class:`attnlab.gpt.GPT` with
``GPTConfig(attention="fused")`` takes it when no weights are asked for (``benchmarks/``).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

__all__ = ["ATTENTION_KINDS", "attention_implementation", "fused_causal_attention"]


# --- the fused path: jax.nn's attention, cuDNN's kernel on an NVIDIA GPU ------------------------

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
