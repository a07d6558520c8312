"""Exercise 02 (one LSTM step): the reference, its inputs, and what the checker says to typical
wrong solutions.

``WRONG_SOLUTIONS_02`` and ``RIGHT_SOLUTIONS_02`` have the shape of the per-exercise lists in
the project's exercise tests: ``[(wrong function, text or texts its hint must contain)]`` and
``[correct function written another way]``. The wrong solutions are written here, by hand, as a
learner would write them, independently of the known mistakes in attnlab/exercises/nb02_lstm.py.
"""

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from attnlab.exercises import EXERCISES

NAME = "lstm_step"


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


# --- right solutions, written in different ways -----------------------------------------------


def lstm_numpy_float64(h, c, x, W_x, W_h, b):
    h, c, x, W_x, W_h, b = (np.asarray(a, np.float64) for a in (h, c, x, W_x, W_h, b))
    H = h.shape[1]
    z = x @ W_x + h @ W_h + b
    i, f, g, o = (z[:, k * H : (k + 1) * H] for k in range(4))
    c_new = _sigmoid(f) * c + _sigmoid(i) * np.tanh(g)
    return _sigmoid(o) * np.tanh(c_new), c_new


def lstm_one_gate_at_a_time(h, c, x, W_x, W_h, b):
    H = h.shape[-1]

    def gate(k):
        cols = slice(k * H, (k + 1) * H)
        return x @ W_x[:, cols] + h @ W_h[:, cols] + b[cols]

    i, f, o = jax.nn.sigmoid(gate(0)), jax.nn.sigmoid(gate(1)), jax.nn.sigmoid(gate(3))
    c_new = f * c + i * jnp.tanh(gate(2))
    return o * jnp.tanh(c_new), c_new


def lstm_with_flax_cell(h, c, x, W_x, W_h, b):
    """flax's own nnx.LSTMCell, loaded with these weights (flax's carry is (c, h))."""
    H = h.shape[-1]
    cell = nnx.LSTMCell(x.shape[-1], H, rngs=nnx.Rngs(0))
    for k, gate in enumerate("ifgo"):
        cols = slice(k * H, (k + 1) * H)
        getattr(cell, "if_" if gate == "f" else f"i{gate}").kernel[...] = W_x[:, cols]
        getattr(cell, f"h{gate}").kernel[...] = W_h[:, cols]
        getattr(cell, f"h{gate}").bias[...] = b[cols]
    (c_new, h_new), _ = cell((c, h), x)
    return h_new, c_new


RIGHT_SOLUTIONS_02 = [lstm_numpy_float64, lstm_one_gate_at_a_time, lstm_with_flax_cell]


# --- typical wrong solutions ---------------------------------------------------------------------


def _gates(h, x, W_x, W_h, b):
    z = x @ W_x + h @ W_h + b
    return jnp.split(z, 4, axis=-1)


def input_and_forget_swapped(h, c, x, W_x, W_h, b):
    z_f, z_i, z_g, z_o = _gates(h, x, W_x, W_h, b)  # read in the order f, i, g, o
    c_new = jax.nn.sigmoid(z_f) * c + jax.nn.sigmoid(z_i) * jnp.tanh(z_g)
    return jax.nn.sigmoid(z_o) * jnp.tanh(c_new), c_new


def candidate_through_a_sigmoid(h, c, x, W_x, W_h, b):
    z_i, z_f, z_g, z_o = _gates(h, x, W_x, W_h, b)
    c_new = jax.nn.sigmoid(z_f) * c + jax.nn.sigmoid(z_i) * jax.nn.sigmoid(z_g)
    return jax.nn.sigmoid(z_o) * jnp.tanh(c_new), c_new


def cell_not_squashed(h, c, x, W_x, W_h, b):
    z_i, z_f, z_g, z_o = _gates(h, x, W_x, W_h, b)
    c_new = jax.nn.sigmoid(z_f) * c + jax.nn.sigmoid(z_i) * jnp.tanh(z_g)
    return jax.nn.sigmoid(z_o) * c_new, c_new


def hidden_from_the_old_cell(h, c, x, W_x, W_h, b):
    z_i, z_f, z_g, z_o = _gates(h, x, W_x, W_h, b)
    c_new = jax.nn.sigmoid(z_f) * c + jax.nn.sigmoid(z_i) * jnp.tanh(z_g)
    return jax.nn.sigmoid(z_o) * jnp.tanh(c), c_new


def no_input_gate(h, c, x, W_x, W_h, b):
    z_i, z_f, z_g, z_o = _gates(h, x, W_x, W_h, b)
    c_new = jax.nn.sigmoid(z_f) * c + jnp.tanh(z_g)
    return jax.nn.sigmoid(z_o) * jnp.tanh(c_new), c_new


def no_forget_gate(h, c, x, W_x, W_h, b):
    z_i, z_f, z_g, z_o = _gates(h, x, W_x, W_h, b)
    c_new = c + jax.nn.sigmoid(z_i) * jnp.tanh(z_g)
    return jax.nn.sigmoid(z_o) * jnp.tanh(c_new), c_new


def forgot_the_bias(h, c, x, W_x, W_h, b):
    return lstm_one_gate_at_a_time(h, c, x, W_x, W_h, jnp.zeros_like(b))


def returned_c_then_h(h, c, x, W_x, W_h, b):
    h_new, c_new = lstm_one_gate_at_a_time(h, c, x, W_x, W_h, b)
    return c_new, h_new


def weights_mixed_up(h, c, x, W_x, W_h, b):  # x @ W_h: (2, 5) @ (3, 12) cannot be multiplied
    z = x @ W_h + h @ W_x + b
    i, f, g, o = jnp.split(z, 4, axis=-1)
    c_new = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    return jax.nn.sigmoid(o) * jnp.tanh(c_new), c_new


def only_the_hidden_state(h, c, x, W_x, W_h, b):
    return lstm_one_gate_at_a_time(h, c, x, W_x, W_h, b)[0]


def gates_in_a_made_up_order(h, c, x, W_x, W_h, b):
    z_o, z_f, z_i, z_g = _gates(h, x, W_x, W_h, b)  # read in the order o, f, i, g
    c_new = jax.nn.sigmoid(z_f) * c + jax.nn.sigmoid(z_i) * jnp.tanh(z_g)
    return jax.nn.sigmoid(z_o) * jnp.tanh(c_new), c_new


def forget_gate_through_tanh(h, c, x, W_x, W_h, b):
    z_i, z_f, z_g, z_o = _gates(h, x, W_x, W_h, b)
    c_new = jnp.tanh(z_f) * c + jax.nn.sigmoid(z_i) * jnp.tanh(z_g)
    return jax.nn.sigmoid(z_o) * jnp.tanh(c_new), c_new


def sigmoid_and_tanh_swapped_everywhere(h, c, x, W_x, W_h, b):
    z_i, z_f, z_g, z_o = _gates(h, x, W_x, W_h, b)
    c_new = jnp.tanh(z_f) * c + jnp.tanh(z_i) * jax.nn.sigmoid(z_g)
    return jnp.tanh(z_o) * jax.nn.sigmoid(c_new), c_new


def no_recurrent_input(h, c, x, W_x, W_h, b):
    z_i, z_f, z_g, z_o = jnp.split(x @ W_x + b, 4, axis=-1)
    c_new = jax.nn.sigmoid(z_f) * c + jax.nn.sigmoid(z_i) * jnp.tanh(z_g)
    return jax.nn.sigmoid(z_o) * jnp.tanh(c_new), c_new


def every_fourth_column(h, c, x, W_x, W_h, b):
    z = x @ W_x + h @ W_h + b
    z_i, z_f, z_g, z_o = z[:, 0::4], z[:, 1::4], z[:, 2::4], z[:, 3::4]
    c_new = jax.nn.sigmoid(z_f) * c + jax.nn.sigmoid(z_i) * jnp.tanh(z_g)
    return jax.nn.sigmoid(z_o) * jnp.tanh(c_new), c_new


def input_gate_as_one_minus_forget(h, c, x, W_x, W_h, b):
    _, z_f, z_g, z_o = _gates(h, x, W_x, W_h, b)
    f = jax.nn.sigmoid(z_f)
    c_new = f * c + (1 - f) * jnp.tanh(z_g)
    return jax.nn.sigmoid(z_o) * jnp.tanh(c_new), c_new


def hidden_state_twice(h, c, x, W_x, W_h, b):
    h_new, _ = lstm_one_gate_at_a_time(h, c, x, W_x, W_h, b)
    return h_new, h_new


def elman_step(h, c, x, W_x, W_h, b):  # notebook 02's RNN step, with the LSTM's weights
    return jnp.tanh(x @ W_x + h @ W_h + b), c


def elman_step_twice(h, c, x, W_x, W_h, b):
    h_new = jnp.tanh(x @ W_x + h @ W_h + b)
    return h_new, h_new


def not_started(h, c, x, W_x, W_h, b):
    raise NotImplementedError


# [(wrong function, text or texts its hint must contain)]
WRONG_SOLUTIONS_02 = [
    (input_and_forget_swapped, "Likely cause: the input gate and the forget gate are swapped"),
    (candidate_through_a_sigmoid, "Likely cause: the candidate g uses a sigmoid"),
    (cell_not_squashed, "Likely cause: h = o * c: the cell state must be squashed first"),
    (hidden_from_the_old_cell, "Likely cause: h is computed from the old cell state"),
    (no_input_gate, "Likely cause: the input gate is missing"),
    (no_forget_gate, "Likely cause: the forget gate is missing"),
    (forgot_the_bias, "Likely cause: the bias b is missing"),
    (returned_c_then_h, "Likely cause: the results are returned as (c, h)"),
    (weights_mixed_up, ("raised TypeError", "x @ W_h + h @ W_x")),
    (only_the_hidden_state, "should return a tuple of 2 items"),
    (gates_in_a_made_up_order, "Likely cause: the four parts of z are read in the order o, f, i, g"),
    (forget_gate_through_tanh, "Likely cause: sigmoid and tanh are mixed up for the forget gate f:"),
    (sigmoid_and_tanh_swapped_everywhere,
     "mixed up for the input gate i, the forget gate f, the candidate g, the output gate o and the cell"),
    (no_recurrent_input, "Likely cause: the previous hidden state is missing"),
    (every_fourth_column, "Likely cause: z was split by taking every fourth column"),
    (input_gate_as_one_minus_forget, "Likely cause: the input gate was replaced by 1 - f"),
    (hidden_state_twice, "Likely cause: h_new is returned twice"),
    (elman_step, ("Likely cause: this is an Elman step", "shape (2, 12); expected (2, 3)")),
    (elman_step_twice, "Likely cause: this is an Elman step"),
    (not_started, "not implemented yet"),
]


def test_reference_matches_an_independent_numpy_step():
    exercise = EXERCISES[NAME]
    for key in jax.random.split(jax.random.key(0), 10):
        args = exercise.inputs(key)
        for got, want in zip(exercise.reference(*args), lstm_numpy_float64(*args), strict=True):
            np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5)


def test_inputs_keep_every_gate_away_from_fully_open_or_shut():
    """If a gate were always ~0 or ~1, leaving it out could not be told from writing it."""
    exercise = EXERCISES[NAME]
    h, c, x, W_x, W_h, b = exercise.inputs(jax.random.key(1))
    z = np.asarray(x @ W_x + h @ W_h + b)
    gates = _sigmoid(z)
    assert 0.05 < gates.min() and gates.max() < 0.95

