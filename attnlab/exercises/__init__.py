"""The notebooks' exercises: each one's reference, its random inputs, and a one-call checker.

An exercise lives here, not in its notebook, so that the notebook and the tests check a
learner's function in exactly the same way: the notebook calls ``check_exercise(name, fn)``,
and ``tests/test_exercises.py`` feeds the same checker a list of typical wrong solutions and
asserts the hint each one gets.

Each notebook's exercises are in a module of their own (``nb01_cosine`` ... ``nb10_c_attn``),
built from :class:`Mistake` and :class:`Exercise` (``_core``); this module gathers them in
:data:`EXERCISES`.

Example (in a notebook cell)::

    from attnlab.exercises import check_exercise

    check_exercise("cross_entropy", my_cross_entropy)
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from attnlab.checks import CheckResult, check_function
from attnlab.exercises import (
    nb01_cosine,
    nb02_lstm,
    nb03_additive,
    nb04_attention,
    nb05_heads_positions,
    nb06_block,
    nb07_cross_entropy,
    nb08_top_p,
    nb09_lora,
    nb10_c_attn,
)
from attnlab.exercises._core import Exercise, Mistake, _likely_mistake

__all__ = ["EXERCISES", "Exercise", "Mistake", "check_exercise"]

_NOTEBOOKS = (nb01_cosine, nb02_lstm, nb03_additive, nb04_attention, nb05_heads_positions,
              nb06_block, nb07_cross_entropy, nb08_top_p, nb09_lora, nb10_c_attn)

#: Every exercise of the course, by name.
EXERCISES: Mapping[str, Exercise] = {
    e.name: e for module in _NOTEBOOKS for e in module.NOTEBOOK_EXERCISES
}


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
                   axis_names=exercise.axis_names, ratio_hints=exercise.ratio_hints)
    result = check_function(fn, exercise.reference, exercise.inputs, **{**options, **overrides})
    if result.passed:
        return result
    if exercise.describe is not None and result.inputs is not None:
        result = CheckResult(False, f"{result.message} {exercise.describe(result.inputs)}",
                             result.inputs)
    hint = None
    if exercise.mistakes and result.inputs is not None:
        hint = _likely_mistake(exercise, fn, result.inputs)
    if hint is None and exercise.diagnose is not None:
        hint = exercise.diagnose(fn)
    if hint is None:
        return result
    return CheckResult(False, f"Likely cause: {hint}\n{result.message}", result.inputs)
