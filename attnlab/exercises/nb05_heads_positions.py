"""Notebook 05's two exercises: splitting a sequence into heads (``split_heads``) and the
sinusoidal position table (``sinusoidal_encoding``).

``split_heads`` turns ``(B, T, D)`` into ``(B, H, T, Dh)``, head h taking features
``h*Dh:(h+1)*Dh``; ``sinusoidal_encoding`` builds the ``(seq_len, d_model)`` table of
"Attention Is All You Need", sines and cosines interleaved.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from attnlab.exercises._core import Exercise, Mistake


def _numpy_rng(key: jax.Array):
    """A NumPy generator seeded from a JAX key: cheap draws, no compilation per shape."""
    import numpy as np

    return np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())


def _split_heads_inputs(key: jax.Array):
    """float32 x ``(3, T, H·Dh)`` with T in {5, 7} and (H, Dh) in {(2, 8), (4, 6)}; ``n_heads``.

    B, T, H and Dh never equal one another, so putting an axis in the wrong place shows up as
    a wrong shape. Few distinct shapes, so a learner's JAX code compiles only a few times."""
    rng = _numpy_rng(key)
    T = int(rng.choice([5, 7]))
    H, Dh = [(2, 8), (4, 6)][int(rng.integers(2))]
    return rng.standard_normal((3, T, H * Dh)).astype("float32"), H


def _split_heads_reference(x, n_heads):
    from attnlab.attention import split_heads

    return split_heads(x, n_heads)


def _sinusoidal_inputs(key: jax.Array):
    """``seq_len`` in {9, 33, 64} and an even ``d_model`` in {2, 6, 16, 64}, as Python ints."""
    rng = _numpy_rng(key)
    return int(rng.choice([9, 33, 64])), int(rng.choice([2, 6, 16, 64]))


def _sinusoidal_reference(seq_len, d_model):
    from attnlab.positional import sinusoidal_encoding

    return sinusoidal_encoding(seq_len, d_model)


def _table(seq_len, d_model, *, base=10000.0, exponent=None, first=0, multiply=False,
           layout="interleaved"):
    """A sinusoidal table with one deliberate change: the wrong solutions of the exercise.

    ``exponent(j, d)`` gives column j's exponent (the paper: ``2 * (j // 2) / d``)."""
    import numpy as np

    j = np.arange(d_model)
    e = exponent(j, d_model) if exponent else 2 * (j // 2) / d_model
    p = np.arange(first, first + seq_len, dtype=np.float64)[:, None]
    angle = p * base**e if multiply else p / base**e
    if layout == "halves":  # sin of every pair, then cos of every pair
        pair_angle = angle[:, 0::2]
        return np.concatenate([np.sin(pair_angle), np.cos(pair_angle)], axis=1)
    if layout == "sines":  # a sine in every column
        return np.sin(angle)
    even = j % 2 == 0
    if layout == "swapped":
        even = ~even
    return np.where(even, np.sin(angle), np.cos(angle))


def _mistake(**change):
    return lambda seq_len, d_model: _table(seq_len, d_model, **change)


_SINUSOIDAL_MISTAKES = tuple(Mistake(hint, wrong) for hint, wrong in (
    ("sines and cosines must alternate column by column (sin in columns 0, 2, 4, ..., cos in "
     "1, 3, 5, ...); yours puts all the sines first and all the cosines after them.",
     _mistake(layout="halves")),
    ("sin and cos are swapped: even columns (0, 2, ...) hold the sine, odd columns the cosine.",
     _mistake(layout="swapped")),
    ("the exponent uses the column index j; it should use the pair index i = j // 2 (2i/d_model),"
     " so that columns 2i and 2i+1 share one frequency.",
     _mistake(exponent=lambda j, d: j / d)),
    ("the exponent uses the column index j; it should use the pair index i = j // 2 (2i/d_model),"
     " so that columns 2i and 2i+1 share one frequency.",
     _mistake(exponent=lambda j, d: 2 * j / d)),
    ("the exponent is 2i/d_model; yours looks like i/d_model (the factor 2 is missing).",
     _mistake(exponent=lambda j, d: (j // 2) / d)),
    ("every pair turns at the same speed (1 radian per position): 2 * i // d_model is integer "
     "division and gives 0; divide with / instead.",
     _mistake(exponent=lambda j, d: 0 * j)),
    ("odd columns (1, 3, 5, ...) hold the cosine of the pair's angle; yours has a sine there "
     "too.",
     _mistake(layout="sines")),
    ("the position must be divided by 10000^(2i/d_model); yours multiplies by it.",
     _mistake(multiply=True)),
    ("the base is 10000; yours looks like 1000 (a zero missing?).", _mistake(base=1000.0)),
    ("the base is 10000; yours looks like 100000 (a zero too many?).", _mistake(base=100000.0)),
    ("positions start at 0 (the first row is sin 0 = 0, cos 0 = 1); yours start at 1.",
     _mistake(first=1)),
))


def _sinusoidal_diagnosis(fn: Callable) -> str | None:
    """Name a table whose angles are all about 0 (a missing bracket in the exponent), or None.

    ``p / 10000 ** 2 * i / d_model`` is ``p·i / (10000²·d_model)``: tiny angles, so every sine
    is about 0 and every cosine about 1, where the right table turns by 1 radian per position
    in its first pair."""
    try:
        table = np.asarray(fn(64, 16), dtype=np.float64)
    except Exception:  # the checker's own message says what went wrong
        return None
    if table.shape != (64, 16):
        return None
    if np.allclose(table[:, 0::2], 0, atol=0.05) and np.allclose(table[:, 1::2], 1, atol=0.05):
        return ("every angle in your table is close to 0 (sines about 0, cosines about 1): "
                "check the brackets of the exponent. Python reads 10000 ** 2 * i / d_model as "
                "(10000²)·i / d_model; write 10000 ** (2 * i / d_model).")
    return None


def _split_heads_mistake(order):
    def wrong(x, n_heads):
        B, T, D = x.shape
        Dh = D // n_heads
        if order == "no-transpose":
            return x.reshape(B, n_heads, T, Dh)
        if order == "head-fastest":
            return x.reshape(B, T, Dh, n_heads).transpose(0, 3, 1, 2)
        if order == "head-first":
            return x.reshape(B, T, n_heads, Dh).transpose(2, 0, 1, 3)
        if order == "sizes-swapped":
            return x.reshape(B, T, Dh, n_heads).transpose(0, 2, 1, 3)
        if order == "last-two-swapped":
            return x.reshape(B, T, n_heads, Dh).transpose(0, 2, 3, 1)
        if order == "slice-one-short":
            return jnp.stack([x[:, :, h * Dh:(h + 1) * Dh - 1] for h in range(n_heads)], axis=1)
        if order == "scaled":
            return x.reshape(B, T, n_heads, Dh).transpose(0, 2, 1, 3) / math.sqrt(Dh)
        return x.reshape(B, T, n_heads, Dh)  # "forgot-transpose"

    return wrong


_SPLIT_HEADS_MISTAKES = tuple(Mistake(hint, _split_heads_mistake(order)) for hint, order in (
    ("reshaping straight to (B, H, T, Dh) keeps the numbers in memory order, so a 'head' gets "
     "pieces of several positions. Reshape to (B, T, H, Dh) first, then swap axes 1 and 2.",
     "no-transpose"),
    ("head h should get the consecutive features h*Dh to (h+1)*Dh - 1 of each vector; yours "
     "deals them out in turn (reshape to (B, T, Dh, H)). Reshape to (B, T, H, Dh) instead.",
     "head-fastest"),
    ("the split into (B, T, H, Dh) is right, but the head axis must come before the time "
     "axis: transpose to (B, H, T, Dh).",
     "forgot-transpose"),
    ("the head axis goes second, after the batch axis: (B, H, T, Dh); yours puts it first, "
     "(H, B, T, Dh), as transpose(2, 0, 1, 3) or stacking the heads on axis 0 does.",
     "head-first"),
    ("n_heads and d_head are swapped: reshape to (B, T, n_heads, D // n_heads), so that the "
     "head axis has n_heads entries.",
     "sizes-swapped"),
    ("each head's matrix must be (T, Dh), one row per position; yours is (Dh, T): transpose "
     "with (0, 2, 1, 3), not (0, 2, 3, 1).",
     "last-two-swapped"),
    ("each head gets one number too few: a Python slice leaves out its end, so "
     "x[..., h*Dh:(h+1)*Dh] already holds the Dh numbers h*Dh to (h+1)*Dh - 1.",
     "slice-one-short"),
    ("splitting into heads only moves numbers, it must not change them: the 1/√d_head scaling "
     "belongs to the scores q·kᵀ, not to the split.",
     "scaled"),
))


def _split_heads_diagnosis(fn: Callable) -> str | None:
    """Name the float-division mistake (``D / n_heads`` inside a reshape), or None.

    NumPy says "'float' object cannot be interpreted as an integer", JAX "Shapes must be 1D
    sequences of concrete values of integer type, got (3, 5, 2, 8.0)"."""
    for x in (np.zeros((3, 5, 16), np.float32), jnp.zeros((3, 5, 16), jnp.float32)):
        try:
            fn(x, 2)
        except TypeError as error:
            if "float" in str(error) or "8.0" in str(error):
                return ("D / n_heads is a float (16 / 2 = 8.0), and a reshape needs whole "
                        "numbers: use integer division, D // n_heads.")
        except Exception:  # any other error: the checker's message shows it
            pass
    return None


SPLIT_HEADS = Exercise(
    name="split_heads",
    notebook="05",
    task="split (B, T, D) into n_heads heads: -> (B, H, T, Dh), head h = features "
         "h*Dh:(h+1)*Dh",
    reference=_split_heads_reference,
    inputs=_split_heads_inputs,
    n_trials=6,
    mistakes=_SPLIT_HEADS_MISTAKES,
    diagnose=_split_heads_diagnosis,
)

SINUSOIDAL_ENCODING = Exercise(
    name="sinusoidal_encoding",
    notebook="05",
    task="the (seq_len, d_model) sinusoidal position table, sin/cos interleaved, even "
         "d_model",
    reference=_sinusoidal_reference,
    inputs=_sinusoidal_inputs,
    n_trials=8,
    atol=1e-4,  # a float32 computation of the angles is fine for positions < 64
    mistakes=_SINUSOIDAL_MISTAKES,
    diagnose=_sinusoidal_diagnosis,
)

#: This notebook's exercises, for :data:`attnlab.exercises.EXERCISES`.
NOTEBOOK_EXERCISES: tuple[Exercise, ...] = (SPLIT_HEADS, SINUSOIDAL_ENCODING)
