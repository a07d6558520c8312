"""The notebooks' exercises: each one's reference, its random inputs, and a one-call checker.

An exercise lives here, not in its notebook, so that the notebook and the tests check a
learner's function in exactly the same way: the notebook calls ``check_exercise(name, fn)``,
and ``tests/test_exercises.py`` feeds the same checker a list of typical wrong solutions and
asserts the hint each one gets.

Example (in a notebook cell)::

    from attnlab.exercises import check_exercise

    check_exercise("cross_entropy", my_cross_entropy)
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp

from attnlab.checks import CheckResult, check_function

__all__ = ["EXERCISES", "Exercise", "check_exercise"]


@dataclasses.dataclass(frozen=True)
class Exercise:
    """One exercise: what the learner writes and how it is checked.

    Attributes:
      name: the key in :data:`EXERCISES`, e.g. ``"cross_entropy"``.
      notebook: the notebook that asks for it, e.g. ``"07"``.
      task: one line, what the learner's function must do.
      reference: the correct function.
      inputs: ``key -> inputs`` for :func:`attnlab.checks.check_function`.
      n_trials, rtol, atol: passed to :func:`attnlab.checks.check_function`.
      mistakes: optional ``(hint, wrong_function)`` pairs, typical wrong solutions written
        out. When a learner's function fails, it is run again on the failing trial's inputs;
        if its output equals a wrong function's (within the tolerances), that hint is shown
        first, naming the likely mistake.
    """

    name: str
    notebook: str
    task: str
    reference: Callable
    inputs: Callable[[jax.Array], Any]
    n_trials: int = 20
    rtol: float = 1e-5
    atol: float = 1e-6
    mistakes: tuple[tuple[str, Callable], ...] = ()


# --- 07 · the training loss ---------------------------------------------------------------------

#: Vocabulary size of the cross-entropy exercise (the notebooks' character vocabulary).
_CE_VOCAB = 96


def _cross_entropy_inputs(key: jax.Array):
    """Logits ``(2, 8, 96)`` at one of three scales (1, 10, 200: the last overflows a naive
    ``exp``) and int targets ``(2, 8)``."""
    k_scale, k_logits, k_targets = jax.random.split(key, 3)
    scale = jax.random.choice(k_scale, jnp.array([1.0, 10.0, 200.0]))
    logits = scale * jax.random.normal(k_logits, (2, 8, _CE_VOCAB))
    return logits, jax.random.randint(k_targets, (2, 8), 0, _CE_VOCAB)


def _cross_entropy_reference(logits, targets):
    from attnlab.train import cross_entropy

    return cross_entropy(logits, targets)


_ALL = [
    Exercise(
        name="cross_entropy",
        notebook="07",
        task="mean next-token cross-entropy in nats: logits (B, T, V), int targets (B, T) -> scalar",
        reference=_cross_entropy_reference,
        inputs=_cross_entropy_inputs,
    ),
]

#: Every exercise of the course, by name.
EXERCISES: Mapping[str, Exercise] = {e.name: e for e in _ALL}


def check_exercise(name: str, fn: Callable, **overrides) -> CheckResult:
    """Check a learner's ``fn`` for the exercise ``name`` against its reference.

    Args:
      name: a key of :data:`EXERCISES`.
      fn: the learner's function.
      **overrides: keyword arguments for :func:`attnlab.checks.check_function` (``seed``,
        ``n_trials``, ...), replacing the exercise's own.

    Returns:
      a :class:`attnlab.checks.CheckResult` (a green or red box in a notebook).

    Raises:
      KeyError: if ``name`` is not an exercise; the message lists the ones that exist.
    """
    if name not in EXERCISES:
        raise KeyError(f"no exercise named {name!r}; the exercises are {sorted(EXERCISES)}.")
    exercise = EXERCISES[name]
    options = {**dict(n_trials=exercise.n_trials, rtol=exercise.rtol, atol=exercise.atol),
               **overrides}
    result = check_function(fn, exercise.reference, exercise.inputs, **options)
    if result.passed or result.inputs is None or not exercise.mistakes:
        return result
    hint = _known_mistake(fn, exercise.mistakes, result.inputs, options)
    if hint is None:
        return result
    return CheckResult(False, f"Likely cause: {hint}\n\n{result.message}", result.inputs)


def _known_mistake(fn, mistakes, inputs, options) -> str | None:
    """The hint of the first wrong function whose output equals ``fn``'s on ``inputs``."""
    import numpy as np

    def call(f):
        if isinstance(inputs, dict):
            return f(**inputs)
        return f(*inputs) if isinstance(inputs, tuple) else f(inputs)

    try:
        got = np.asarray(call(fn), dtype=np.float64)
    except Exception:  # the learner's function fails here: the checker's message says why
        return None
    for hint, wrong in mistakes:
        expected = np.asarray(call(wrong), dtype=np.float64)
        if expected.shape == got.shape and np.allclose(
            got, expected, rtol=options.get("rtol", 1e-5), atol=options.get("atol", 1e-6)
        ):
            return hint
    return None


# --- 05 · multi-head attention and positions --------------------------------------------------


def _numpy_rng(key: jax.Array):
    """A NumPy generator seeded from a JAX key: cheap draws, no compilation per shape."""
    import numpy as np

    return np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())


def _split_heads_inputs(key: jax.Array):
    """float32 x ``(2, T, H·Dh)`` with T in {5, 7} and (H, Dh) in {(2, 8), (4, 3)}; ``n_heads``.

    T never equals H, so forgetting the transpose shows up as a wrong shape. Few distinct
    shapes, so a learner's JAX code compiles only a few times."""
    rng = _numpy_rng(key)
    T = int(rng.choice([5, 7]))
    H, Dh = [(2, 8), (4, 3)][int(rng.integers(2))]
    return rng.standard_normal((2, T, H * Dh)).astype("float32"), H


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
    even = j % 2 == 0
    if layout == "swapped":
        even = ~even
    return np.where(even, np.sin(angle), np.cos(angle))


def _mistake(**change):
    return lambda seq_len, d_model: _table(seq_len, d_model, **change)


_SINUSOIDAL_MISTAKES = (
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
    ("the position must be divided by 10000^(2i/d_model); yours multiplies by it.",
     _mistake(multiply=True)),
    ("the base is 10000; yours looks like 1000 (a zero missing?).", _mistake(base=1000.0)),
    ("the base is 10000; yours looks like 100000 (a zero too many?).", _mistake(base=100000.0)),
    ("positions start at 0 (the first row is sin 0 = 0, cos 0 = 1); yours start at 1.",
     _mistake(first=1)),
)


def _split_heads_mistake(order):
    def wrong(x, n_heads):
        B, T, D = x.shape
        if order == "no-transpose":
            return x.reshape(B, n_heads, T, D // n_heads)
        if order == "head-fastest":
            return x.reshape(B, T, D // n_heads, n_heads).transpose(0, 3, 1, 2)
        return x.reshape(B, T, n_heads, D // n_heads)  # "forgot-transpose"

    return wrong


_SPLIT_HEADS_MISTAKES = (
    ("reshaping straight to (B, H, T, Dh) keeps the numbers in memory order, so a 'head' gets "
     "pieces of several positions. Reshape to (B, T, H, Dh) first, then swap axes 1 and 2.",
     _split_heads_mistake("no-transpose")),
    ("head h should get the consecutive features h*Dh to (h+1)*Dh - 1 of each vector; yours "
     "deals them out in turn (reshape to (B, T, Dh, H)). Reshape to (B, T, H, Dh) instead.",
     _split_heads_mistake("head-fastest")),
    ("the split into (B, T, H, Dh) is right, but the head axis must come before the time "
     "axis: transpose to (B, H, T, Dh).",
     _split_heads_mistake("forgot-transpose")),
)

EXERCISES.update({
    e.name: e
    for e in (
        Exercise(
            name="split_heads",
            notebook="05",
            task="split (B, T, D) into n_heads heads: -> (B, H, T, Dh), head h = features "
                 "h*Dh:(h+1)*Dh",
            reference=_split_heads_reference,
            inputs=_split_heads_inputs,
            n_trials=6,
            mistakes=_SPLIT_HEADS_MISTAKES,
        ),
        Exercise(
            name="sinusoidal_encoding",
            notebook="05",
            task="the (seq_len, d_model) sinusoidal position table, sin/cos interleaved, even "
                 "d_model",
            reference=_sinusoidal_reference,
            inputs=_sinusoidal_inputs,
            n_trials=8,
            atol=1e-4,  # a float32 computation of the angles is fine for positions < 64
            mistakes=_SINUSOIDAL_MISTAKES,
        ),
    )
})
