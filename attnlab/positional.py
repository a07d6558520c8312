"""Positional encodings: telling a transformer where each token sits.

Self-attention treats its input as a set: shuffle the tokens and each output is shuffled the
same way. Adding a position-dependent vector to each token embedding breaks that symmetry.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["sinusoidal_encoding"]


def sinusoidal_encoding(seq_len: int, d_model: int, base: float = 10000.0) -> jax.Array:
    """The fixed sine/cosine position table of the original transformer, interleaved.

    ``PE[p, 2i] = sin(p / base^(2i / d_model))`` and
    ``PE[p, 2i + 1] = cos(p / base^(2i / d_model))``: pair i is a rotation at angular frequency
    ``base^(-2i/d_model)`` radians per position, from 1 (fast) down to almost ``1/base`` (slow).
    It is defined for any position, so it needs no training and extends past the lengths seen.

    Args:
      seq_len: number of positions P (≥ 1).
      d_model: width D (≥ 1). An odd D is allowed: the last column is then the sine of a
        final pair whose cosine does not fit.
      base: wavelength scale (> 0); 10000 in the paper.

    Returns:
      ``(P, D)`` float32.

    Raises:
      ValueError: if ``seq_len < 1``, ``d_model < 1`` or ``base <= 0``.

    Source: Vaswani et al. 2017, "Attention Is All You Need", §3.5.
    """
    if int(seq_len) < 1:
        raise ValueError(f"seq_len must be >= 1; got {seq_len}.")
    if int(d_model) < 1:
        raise ValueError(f"d_model must be >= 1; got {d_model}.")
    if not base > 0:
        raise ValueError(f"base must be > 0; got {base}.")
    # The table is a constant, so compute it in float64 NumPy and round once to float32: float32
    # angles alone would be off by up to ~2e-6 rad at position 64 (and more further out).
    positions = np.arange(seq_len, dtype=np.float64)[:, None]  # (P, 1)
    pair = np.arange(d_model) // 2  # column j belongs to pair i = j // 2
    inv_freq = np.power(float(base), -2.0 * pair / d_model)  # (D,)
    angles = positions * inv_freq[None, :]  # (P, D)
    is_even = (np.arange(d_model) % 2) == 0
    return jnp.asarray(np.where(is_even[None, :], np.sin(angles), np.cos(angles)), jnp.float32)
