"""Measurements: how fast an RNN's gradients fade with distance (notebook 02) and how long an
LSTM takes against self-attention as sequences grow (notebook 03).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from attnlab.rnn.cells import LSTM, ElmanRNN, _check_sequence, _check_sizes

__all__ = ["input_gradient_norms", "time_rnn_and_attention"]


# --- measurements -----------------------------------------------------------------------------


def input_gradient_norms(rnn: ElmanRNN | LSTM, x: jax.Array) -> jax.Array:
    """How strongly the final hidden state depends on the input at each earlier step.

    For each sequence and each step t, the Frobenius norm of the Jacobian ∂h_S / ∂x_t of the
    last hidden state h_S ``(H,)`` with respect to the input x_t ``(d_in,)``: the size of
    the gradient that training can send from the end of the sequence back to step t.

    Args:
      rnn: an :class:`ElmanRNN` or :class:`LSTM`.
      x: ``(B, S, d_in)`` inputs (no padding).

    Returns:
      ``(B, S)`` float norms; entry ``[b, t]`` belongs to the step ``S - 1 - t`` steps before
      the last one.

    Source: the vanishing-gradient analysis of Bengio, Simard & Frasconi 1994 and Hochreiter
    & Schmidhuber 1997, measured here with ``jax.jacrev``.
    """
    _check_sequence(jnp.asarray(x), rnn.d_in, None)
    return _gradient_norms(rnn, jnp.asarray(x))


@nnx.jit
def _gradient_norms(rnn, x):
    def last_state(seq):  # (S, d_in) -> (H,)
        outputs, _ = rnn(seq[None])
        return outputs[0, -1]

    jac = jax.vmap(jax.jacrev(last_state))(x)  # (B, H, S, d_in)
    return jnp.sqrt((jac**2).sum(axis=(1, 3)))


def time_rnn_and_attention(lengths: Sequence[int], *, d_model: int = 64, batch_size: int = 8,
                           repeats: int = 5, seed: int = 0) -> dict[str, np.ndarray]:
    """Wall-clock time of one forward pass of an LSTM layer and of a self-attention layer.

    Both are compiled with ``jax.jit`` once per length before timing; each figure is the
    median of ``repeats`` runs, waiting for the result (``block_until_ready``). The LSTM has
    to take its S steps one after another; self-attention computes all S positions at once
    (:class:`attnlab.attention.MultiHeadAttention`, 4 heads).

    Args:
      lengths: sequence lengths S to time (each ≥ 1).
      d_model: width of both layers; batch_size: sequences per pass; repeats: timed runs.
      seed: seeds the weights and inputs.

    Returns:
      ``{"length": (n,), "rnn_s": (n,), "attention_s": (n,)}``, times in seconds.

    Raises:
      ValueError: if a length, ``d_model``, ``batch_size`` or ``repeats`` is below 1.
    """
    from attnlab.attention import MultiHeadAttention

    _check_sizes(d_model=d_model, batch_size=batch_size, repeats=repeats)
    for S in lengths:
        _check_sizes(length=S)
    rngs = nnx.Rngs(seed)
    lstm = LSTM(d_model, d_model, rngs=rngs)
    attention = MultiHeadAttention(d_model, 4, rngs=rngs)
    run_lstm = nnx.jit(lambda m, x: m(x)[0])
    run_attention = nnx.jit(lambda m, x: m(x))
    result = {"length": np.asarray(lengths), "rnn_s": [], "attention_s": []}
    for S in lengths:
        x = jax.random.normal(jax.random.key(seed), (batch_size, S, d_model))
        for name, fn, module in (("rnn_s", run_lstm, lstm), ("attention_s", run_attention,
                                                              attention)):
            fn(module, x).block_until_ready()  # compile
            times = []
            for _ in range(repeats):
                begin = time.perf_counter()
                fn(module, x).block_until_ready()
                times.append(time.perf_counter() - begin)
            result[name].append(float(np.median(times)))
    return {k: np.asarray(v) for k, v in result.items()}
