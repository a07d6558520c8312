"""One step of an Elman RNN and of an LSTM, and the layers that run them along a sequence
(notebook 02, where a step is written by hand and the gradients fade; the encoders and
decoders of notebooks 02 and 03).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

__all__ = ["ElmanRNN", "LSTM", "elman_step", "lstm_step", "make_rnn"]


# --- one step ---------------------------------------------------------------------------------


def elman_step(h: jax.Array, x: jax.Array, W_x: jax.Array, W_h: jax.Array,
               b: jax.Array) -> jax.Array:
    """One step of an Elman RNN: ``h_t = tanh(x_t W_x + h_{t-1} W_h + b)``.

    Args:
      h: ``(..., H)`` the previous hidden state h_{t-1}.
      x: ``(..., d_in)`` this step's input x_t.
      W_x: ``(d_in, H)``; W_h: ``(H, H)``; b: ``(H,)``.

    Returns:
      ``(..., H)`` the new hidden state h_t, each entry in (-1, 1).

    Source: Elman 1990 (written with row vectors, so the matrices multiply from the right).
    """
    return jnp.tanh(x @ W_x + h @ W_h + b)


def lstm_step(h: jax.Array, c: jax.Array, x: jax.Array, W_x: jax.Array, W_h: jax.Array,
              b: jax.Array) -> tuple[jax.Array, jax.Array]:
    """One step of an LSTM with a forget gate.

    ``z = x_t W_x + h_{t-1} W_h + b`` is split into four ``H``-wide parts, in the order
    i, f, g, o::

      i = σ(z_i)   input gate: how much of the candidate to write
      f = σ(z_f)   forget gate: how much of the old cell state to keep
      g = tanh(z_g) candidate values
      o = σ(z_o)   output gate: how much of the cell to show
      c_t = f ⊙ c_{t-1} + i ⊙ g
      h_t = o ⊙ tanh(c_t)

    Args:
      h, c: ``(..., H)`` the previous hidden state and cell state.
      x: ``(..., d_in)`` this step's input.
      W_x: ``(d_in, 4H)``; W_h: ``(H, 4H)``; b: ``(4H,)`` (gates i, f, g, o side by side).

    Returns:
      ``(h_t, c_t)``, each ``(..., H)``.

    Source: Hochreiter & Schmidhuber 1997; the forget gate from Gers et al. 2000. The gate
    order is PyTorch's ``nn.LSTM`` order.
    """
    z = x @ W_x + h @ W_h + b
    z_i, z_f, z_g, z_o = jnp.split(z, 4, axis=-1)
    c = jax.nn.sigmoid(z_f) * c + jax.nn.sigmoid(z_i) * jnp.tanh(z_g)
    h = jax.nn.sigmoid(z_o) * jnp.tanh(c)
    return h, c


# --- the two recurrent layers -----------------------------------------------------------------


def _check_sequence(x: jax.Array, d_in: int, mask) -> None:
    if x.ndim != 3 or x.shape[-1] != d_in:
        raise ValueError(f"x must have shape (B, S, {d_in}); got {tuple(x.shape)}.")
    if mask is not None and (jnp.shape(mask) != x.shape[:2] or jnp.asarray(mask).dtype != bool):
        raise ValueError(
            f"mask must be a bool array of shape (B, S) = {tuple(x.shape[:2])}; got "
            f"{jnp.shape(mask)} {jnp.asarray(mask).dtype}."
        )


def _scan(step: Callable, state, x: jax.Array, mask: jax.Array | None, output: Callable):
    """Run ``state = step(state, x_t)`` over the time axis of ``x`` ``(B, S, d)``.

    At padded steps (``mask[:, t]`` False) the state is carried over unchanged, so the final
    state is the state after each sequence's last real step. Returns the per-step outputs
    ``(B, S, H)`` and the final state.
    """
    if mask is None:
        mask = jnp.ones(x.shape[:2], bool)

    def body(state, inputs):
        x_t, real = inputs
        new = step(state, x_t)
        new = jax.tree.map(lambda n, o: jnp.where(real[:, None], n, o), new, state)
        return new, output(new)

    final, outputs = jax.lax.scan(body, state, (jnp.swapaxes(x, 0, 1), jnp.swapaxes(mask, 0, 1)))
    return jnp.swapaxes(outputs, 0, 1), final


class ElmanRNN(nnx.Module):
    """An Elman RNN layer: :func:`elman_step` applied along a sequence.

    Args:
      d_in: input width; d_hidden: hidden width H.
      rngs: ``nnx.Rngs`` for the initial weights (``W_x`` LeCun-normal, ``W_h`` orthogonal,
        ``b`` zero: the defaults of ``flax.nnx.SimpleCell``).

    Attributes:
      W_x ``(d_in, H)``, W_h ``(H, H)``, b ``(H,)``: ``nnx.Param``.

    The state is the hidden vector h ``(B, H)``.
    """

    def __init__(self, d_in: int, d_hidden: int, *, rngs: nnx.Rngs):
        _check_sizes(d_in=d_in, d_hidden=d_hidden)
        self.d_in, self.d_hidden = d_in, d_hidden
        self.W_x = nnx.Param(nnx.initializers.lecun_normal()(rngs.params(), (d_in, d_hidden)))
        self.W_h = nnx.Param(nnx.initializers.orthogonal()(rngs.params(), (d_hidden, d_hidden)))
        self.b = nnx.Param(jnp.zeros((d_hidden,)))

    def initial_state(self, batch_size: int) -> jax.Array:
        """Zeros ``(B, H)``."""
        return jnp.zeros((batch_size, self.d_hidden))

    def step(self, state: jax.Array, x: jax.Array) -> jax.Array:
        """One step: ``(B, H)``, ``(B, d_in)`` → ``(B, H)``."""
        return elman_step(state, x, self.W_x[...], self.W_h[...], self.b[...])

    @staticmethod
    def output(state: jax.Array) -> jax.Array:
        """The hidden vector that the next layer sees: the state itself."""
        return state

    def __call__(self, x: jax.Array, mask: jax.Array | None = None, state=None):
        """Run over a sequence.

        Args:
          x: ``(B, S, d_in)``; mask: optional ``(B, S)`` bool, False at padding; state:
            optional initial state (default zeros).

        Returns:
          ``(outputs, final_state)``: outputs ``(B, S, H)`` (h_t at every step), final_state
          ``(B, H)``, the state after each sequence's last real step.

        Raises:
          ValueError: if ``x`` or ``mask`` has the wrong shape.
        """
        _check_sequence(x, self.d_in, mask)
        state = self.initial_state(x.shape[0]) if state is None else state
        return _scan(self.step, state, x, mask, self.output)


class LSTM(nnx.Module):
    """An LSTM layer: :func:`lstm_step` applied along a sequence.

    Args:
      d_in: input width; d_hidden: hidden width H.
      forget_bias: initial bias of the forget gate (default 1.0, so that f ≈ 0.73 at the
        start and the cell keeps most of its content; Jozefowicz, Zaremba & Sutskever 2015).
      rngs: ``nnx.Rngs`` for the initial weights (``W_x`` LeCun-normal, ``W_h`` orthogonal
        per gate, other biases zero).

    Attributes:
      W_x ``(d_in, 4H)``, W_h ``(H, 4H)``, b ``(4H,)``: ``nnx.Param``, gates i, f, g, o side by
      side.

    The state is the pair ``(h, c)``, each ``(B, H)``; the layer's output at each step is h.
    """

    def __init__(self, d_in: int, d_hidden: int, *, forget_bias: float = 1.0, rngs: nnx.Rngs):
        _check_sizes(d_in=d_in, d_hidden=d_hidden)
        self.d_in, self.d_hidden = d_in, d_hidden
        H = d_hidden
        self.W_x = nnx.Param(nnx.initializers.lecun_normal()(rngs.params(), (d_in, 4 * H)))
        orthogonal = nnx.initializers.orthogonal()
        self.W_h = nnx.Param(jnp.concatenate(
            [orthogonal(rngs.params(), (H, H)) for _ in range(4)], axis=1))
        self.b = nnx.Param(jnp.zeros((4 * H,)).at[H : 2 * H].set(forget_bias))

    def initial_state(self, batch_size: int) -> tuple[jax.Array, jax.Array]:
        """``(h, c)``, zeros ``(B, H)`` each."""
        zeros = jnp.zeros((batch_size, self.d_hidden))
        return zeros, zeros

    def step(self, state, x):
        """One step: ``(h, c)``, ``(B, d_in)`` → ``(h, c)``."""
        h, c = state
        return lstm_step(h, c, x, self.W_x[...], self.W_h[...], self.b[...])

    @staticmethod
    def output(state) -> jax.Array:
        """The hidden vector h that the next layer sees (the cell state c stays inside)."""
        return state[0]

    def __call__(self, x: jax.Array, mask: jax.Array | None = None, state=None):
        """Run over a sequence; as :meth:`ElmanRNN.__call__`, with the state ``(h, c)``."""
        _check_sequence(x, self.d_in, mask)
        state = self.initial_state(x.shape[0]) if state is None else state
        return _scan(self.step, state, x, mask, self.output)


#: The recurrent layers by name.
CELLS = {"rnn": ElmanRNN, "lstm": LSTM}


def make_rnn(cell: str, d_in: int, d_hidden: int, *, rngs: nnx.Rngs) -> ElmanRNN | LSTM:
    """``"rnn"`` → :class:`ElmanRNN`, ``"lstm"`` → :class:`LSTM`.

    Raises:
      ValueError: for another name.
    """
    if cell not in CELLS:
        raise ValueError(f"cell must be one of {sorted(CELLS)}; got {cell!r}.")
    return CELLS[cell](d_in, d_hidden, rngs=rngs)


def _check_sizes(**sizes) -> None:
    for name, value in sizes.items():
        if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < 1:
            raise ValueError(f"{name} must be an integer >= 1; got {value!r}.")
