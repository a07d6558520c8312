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
      inputs: ``key -> inputs`` for :func:`attnlab.checks.check_function`; the reference's
        parameter names name them in the checker's messages.
      axis_names: names of the array inputs' axes, e.g. ``{"logits": ("B", "T", "V")}``, so
        that hints say "16 = B·T" rather than "axes 0 and 1".
      n_trials, rtol, atol: passed to :func:`attnlab.checks.check_function`.
    """

    name: str
    notebook: str
    task: str
    reference: Callable
    inputs: Callable[[jax.Array], Any]
    axis_names: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    n_trials: int = 20
    rtol: float = 1e-5
    atol: float = 1e-6


# --- 07 · the training loss ---------------------------------------------------------------------

#: Vocabulary size of the cross-entropy exercise (the notebooks' character vocabulary).
_CE_VOCAB = 96


def _cross_entropy_inputs(key: jax.Array):
    """Logits ``(2, 8, 96)`` at one of three scales (1, 10, 200: at 200 a naive ``exp``
    overflows, and softmax probabilities of unlikely targets underflow to 0) and int targets
    ``(2, 8)``."""
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
        axis_names={"logits": ("B", "T", "V"), "targets": ("B", "T")},
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
      TypeError, ValueError: for bad ``overrides``, as :func:`attnlab.checks.check_function`.
    """
    if name not in EXERCISES:
        raise KeyError(f"no exercise named {name!r}; the exercises are {sorted(EXERCISES)}.")
    exercise = EXERCISES[name]
    options = dict(n_trials=exercise.n_trials, rtol=exercise.rtol, atol=exercise.atol,
                   axis_names=exercise.axis_names)
    return check_function(fn, exercise.reference, exercise.inputs, **{**options, **overrides})


# --- 01 · cosine similarity between token embeddings --------------------------------------------

#: Sizes of the cosine-similarity exercise: V vectors of width D. D differs from V so that
#: normalising along the wrong axis without keepdims, or a missing transpose, shows as a shape
#: error instead of silently wrong numbers.
_COS_V, _COS_D = 12, 5


def _cosine_inputs(key: jax.Array):
    """Embeddings ``(12, 5)``: standard normal times a scale of 0.1, 1 or 10 (cosine does not
    depend on length, so a solution that forgets to normalise fails at every scale); on about
    a third of the trials one row is all zeros, a vector with no direction."""
    k_scale, k_rows, k_zero, k_which = jax.random.split(key, 4)
    scale = jax.random.choice(k_scale, jnp.array([0.1, 1.0, 10.0]))
    embeddings = scale * jax.random.normal(k_rows, (_COS_V, _COS_D))
    if jax.random.uniform(k_zero) < 1 / 3:
        embeddings = embeddings.at[jax.random.randint(k_which, (), 0, _COS_V)].set(0.0)
    return (embeddings,)


def _cosine_reference(embeddings):
    from attnlab.tokenization import cosine_similarity

    return cosine_similarity(embeddings)


_ALL.append(
    Exercise(
        name="cosine_similarity",
        notebook="01",
        task="cosine similarity between every pair of rows: embeddings (V, D) -> (V, V); a row "
        "of zeros has similarity 0 with every row, itself included",
        reference=_cosine_reference,
        inputs=_cosine_inputs,
        axis_names={"embeddings": ("V", "D")},
    )
)
EXERCISES = {e.name: e for e in _ALL}
