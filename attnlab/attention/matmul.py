"""Matrix products in bfloat16 with float32 sums, and ``nnx.Linear`` layers that use them.

No notebook calls these directly: :class:`attnlab.gpt.GPT` with
``GPTConfig(matmul_dtype="bfloat16")`` multiplies with them in every dense layer (those of
:class:`~attnlab.attention.MultiHeadAttention` and of the MLP) and in its output head;
``benchmarks/bench_gpu.py`` trains that way on a GPU.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

__all__ = ["bfloat16_matmul", "dense"]

MATMUL_DTYPES = ("float32", "bfloat16")


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
