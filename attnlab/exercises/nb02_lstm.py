"""Notebook 02's exercise (``lstm_step``): one step of an LSTM.

The learner computes ``(h_new, c_new)`` from ``h, c``, an input ``x`` and the weights
``W_x, W_h, b``, with the four parts of ``z`` in the order i, f, g, o.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable

import jax
import jax.numpy as jnp

from attnlab.exercises._core import Exercise, Mistake

#: (B, d_in, H) of the LSTM exercise: three different sizes, so that a matrix taken for another
#: (W_h for W_x) or an answer returned in the wrong shape shows up as a shape, not as numbers.
_LSTM_B, _LSTM_D_IN, _LSTM_H = 2, 5, 3


def _lstm_step_inputs(key: jax.Array):
    """h, c ``(2, 3)``, x ``(2, 5)``, W_x ``(5, 12)``, W_h ``(3, 12)``, b ``(12,)``.

    Drawn at a scale where every gate is neither fully open nor fully shut, and c is not small
    next to the candidate, so that each part of the step changes the result visibly."""
    k_h, k_c, k_x, k_wx, k_wh, k_b = jax.random.split(key, 6)
    B, D, H = _LSTM_B, _LSTM_D_IN, _LSTM_H
    return (jnp.tanh(jax.random.normal(k_h, (B, H))),
            2.0 * jax.random.normal(k_c, (B, H)),
            jax.random.normal(k_x, (B, D)),
            jax.random.normal(k_wx, (D, 4 * H)) / math.sqrt(D),
            jax.random.normal(k_wh, (H, 4 * H)) / math.sqrt(H),
            0.5 * jax.random.normal(k_b, (4 * H,)))


def _lstm_step_reference(h, c, x, W_x, W_h, b):
    from attnlab.rnn import lstm_step

    return lstm_step(h, c, x, W_x, W_h, b)


def _elman_variant(c_out: str) -> Callable:
    """An Elman step in place of the LSTM's: ``h_new = tanh(z)``, all 4H columns of z, no gates;
    ``c_out`` says what comes back as the second value (``"c"``: the old cell, ``"h"``: h_new)."""

    def step(h, c, x, W_x, W_h, b):
        h_new = jnp.tanh(x @ W_x + h @ W_h + b)
        return h_new, (c if c_out == "c" else h_new)

    return step


_ELMAN_HINT = ("this is an Elman step, h_new = tanh(x @ W_x + h @ W_h + b) over all 4H columns "
               "of z; an LSTM splits z into its four H-wide parts i, f, g, o, updates the cell "
               "c_new = f * c + i * g, and returns h_new = o * tanh(c_new), both (B, H).")


def _lstm_variant(*, order="ifgo", g_fn="tanh", h_from="new", squash_h=True, use_i=True,
                  use_f=True, bias=True, swap_out=False, acts="sstst", use_h=True,
                  strided=False, coupled=False, h_twice=False) -> Callable:
    """An LSTM step that makes one chosen mistake (for :class:`Mistake`).

    ``acts`` names the squashing function of i, f, g, o and of the cell in h, in that order,
    ``s`` for sigmoid and ``t`` for tanh; the right one is ``"sstst"``."""
    fns = {"s": jax.nn.sigmoid, "t": jnp.tanh}

    def step(h, c, x, W_x, W_h, b):
        z = x @ W_x + (h @ W_h if use_h else 0.0) + (b if bias else 0.0)
        if strided:  # every fourth column instead of four consecutive blocks
            blocks = [z[:, k::4] for k in range(4)]
        else:
            blocks = jnp.split(z, 4, axis=-1)
        parts = dict(zip(order, blocks, strict=True))
        i, f, g, o = (fns[a](parts[n]) for a, n in zip(acts[:4], "ifgo", strict=True))
        if g_fn != "tanh":
            g = jax.nn.sigmoid(parts["g"])
        c_new = (f * c if use_f else c) + (i * g if use_i else g)
        if coupled:
            c_new = f * c + (1.0 - f) * g
        cell = c_new if h_from == "new" else c
        h_new = o * (fns[acts[4]](cell) if squash_h else cell)
        if h_twice:
            return h_new, h_new
        return (c_new, h_new) if swap_out else (h_new, c_new)

    return step


_GATE_NAMES = {"i": "the input gate i", "f": "the forget gate f", "g": "the candidate g",
               "o": "the output gate o", "c": "the cell in h = o * tanh(c_new)"}


def _activation_mistakes() -> tuple[Mistake, ...]:
    """Every mix-up of sigmoid and tanh among i, f, g, o and the cell (g alone has its own)."""
    mistakes = []
    for acts in itertools.product("st", repeat=5):
        acts = "".join(acts)
        wrong = [n for n, a, r in zip("ifgoc", acts, "sstst", strict=True) if a != r]
        if not wrong or wrong == ["g"]:
            continue
        names = [_GATE_NAMES[n] for n in wrong]
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        mistakes.append(Mistake(
            f"sigmoid and tanh are mixed up for {listed}: the gates i, f, o take the sigmoid "
            "(a share between 0 and 1); g and the cell in h take tanh (between -1 and 1).",
            _lstm_variant(acts=acts)))
    return tuple(mistakes)


def _order_mistakes() -> tuple[Mistake, ...]:
    """Every order of the four parts of z but the right one (i, f and g, o have their own)."""
    return tuple(
        Mistake(f"the four parts of z are read in the order {', '.join(order)}; they come in "
                "the order i, f, g, o (input gate, forget gate, candidate, output gate), each "
                "H columns wide.", _lstm_variant(order="".join(order)))
        for order in itertools.permutations("ifgo")
        if "".join(order) not in ("ifgo", "figo", "ifog")
    )


_LSTM_MISTAKES = (
    Mistake("the input gate and the forget gate are swapped: z splits into four H-wide parts "
            "in the order i, f, g, o, so i = sigmoid(z[:, :H]) and f = sigmoid(z[:, H:2H]).",
            _lstm_variant(order="figo")),
    Mistake("the gates are read in the order i, f, o, g; here the third part of z is the "
            "candidate g and the fourth the output gate o.", _lstm_variant(order="ifog")),
    Mistake("the candidate g uses a sigmoid; it takes tanh, so that it can be negative "
            "(only the three gates i, f, o use the sigmoid).", _lstm_variant(g_fn="sigmoid")),
    Mistake("h = o * c: the cell state must be squashed first, h = o * tanh(c_new).",
            _lstm_variant(squash_h=False)),
    Mistake("h is computed from the old cell state; use the new one, h = o * tanh(c_new).",
            _lstm_variant(h_from="old")),
    Mistake("the input gate is missing: c_new = f * c + i * g, not f * c + g.",
            _lstm_variant(use_i=False)),
    Mistake("the forget gate is missing: c_new = f * c + i * g, not c + i * g.",
            _lstm_variant(use_f=False)),
    Mistake("the bias b is missing: z = x @ W_x + h @ W_h + b.", _lstm_variant(bias=False)),
    Mistake("the results are returned as (c, h); return the new hidden state first: "
            "(h_new, c_new).", _lstm_variant(swap_out=True)),
    Mistake("h_new is returned twice; the second value is the new cell state c_new = "
            "f * c + i * g.", _lstm_variant(h_twice=True)),
    Mistake("the previous hidden state is missing: z = x @ W_x + h @ W_h + b; h @ W_h is how "
            "the step sees what it has read before.", _lstm_variant(use_h=False)),
    Mistake("the input gate was replaced by 1 - f (as in a GRU); an LSTM has its own input "
            "gate i, the first H columns of z: c_new = f * c + i * g.",
            _lstm_variant(coupled=True)),
    Mistake("z was split by taking every fourth column (z[:, 0::4], ...); the four parts are "
            "consecutive blocks of H columns: jnp.split(z, 4, axis=-1).",
            _lstm_variant(strided=True)),
    Mistake(_ELMAN_HINT, _elman_variant("c")),
    Mistake(_ELMAN_HINT, _elman_variant("h")),
    *_order_mistakes(),
    *_activation_mistakes(),
)


LSTM_STEP = Exercise(
    name="lstm_step",
    notebook="02",
    task="one LSTM step: h, c (B, H), x (B, d_in), W_x (d_in, 4H), W_h (H, 4H), b (4H,) "
    "with the gates in the order i, f, g, o -> (h_new, c_new), each (B, H)",
    reference=_lstm_step_reference,
    inputs=_lstm_step_inputs,
    axis_names={"h": ("B", "H"), "c": ("B", "H"), "x": ("B", "d_in"),
                "W_x": ("d_in", "4H"), "W_h": ("H", "4H"), "b": ("4H",)},
    mistakes=_LSTM_MISTAKES,
)

#: This notebook's exercises, for :data:`attnlab.exercises.EXERCISES`.
NOTEBOOK_EXERCISES: tuple[Exercise, ...] = (LSTM_STEP,)
