"""What every exercise is made of, and how a failing answer is matched with a known mistake.

:class:`Mistake` and :class:`Exercise` describe an exercise; :func:`_likely_mistake` (with
:func:`_call` and :func:`_same`) finds the first known mistake whose output a learner's
function reproduces. :func:`attnlab.exercises.check_exercise` uses them; the exercises
themselves live in one module per notebook beside this one.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any

import jax
import numpy as np


@dataclasses.dataclass(frozen=True)
class Mistake:
    """A typical wrong solution of an exercise and the hint it earns.

    Attributes:
      hint: one sentence that names the mistake and the fix, shown as "Likely cause: ...".
      wrong: a function with the reference's signature that makes exactly this mistake.
    """

    hint: str
    wrong: Callable


@dataclasses.dataclass(frozen=True)
class Exercise:
    """One exercise: what the learner writes and how it is checked.

    Attributes:
      name: the key in :data:`attnlab.exercises.EXERCISES`, e.g. ``"cross_entropy"``.
      notebook: the notebook that asks for it, e.g. ``"07"``.
      task: one line, what the learner's function must do.
      reference: the correct function.
      inputs: ``key -> inputs`` for :func:`attnlab.checks.check_function`; the reference's
        parameter names name them in the checker's messages.
      axis_names: names of the array inputs' axes, e.g. ``{"logits": ("B", "T", "V")}``, so
        that hints say "16 = B·T" rather than "axes 0 and 1".
      n_trials, rtol, atol: passed to :func:`attnlab.checks.check_function`.
      mistakes: typical wrong solutions; a failing learner's output on the failing trial is
        compared with each (within 10 × rtol and atol) and the first match's hint is shown.
      diagnose: optional ``learner_fn -> str | None``, run when the check fails: it probes the
        learner's function on known cases and returns one sentence naming a typical mistake
        (shown first, as "Likely cause: ..."), or ``None`` when it recognises none.
      ratio_hints: passed to :func:`attnlab.checks.check_function`; False where a factor
        such as "2 = the size of axis B" would mislead (a whole block's output).
      describe: optional ``inputs -> str``, one sentence about the failing trial's inputs
        that their shapes do not tell (e.g. which kind of mask), added after them.
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
    mistakes: tuple[Mistake, ...] = ()
    diagnose: Callable[[Callable], str | None] | None = None
    ratio_hints: bool = True
    describe: Callable[[Any], str] | None = None


def _call(fn: Callable, inputs: Any) -> Any:
    """Call ``fn`` on inputs in the forms an input generator returns (tuple, dict, one value)."""
    if isinstance(inputs, Mapping):
        return fn(**inputs)
    return fn(*inputs) if isinstance(inputs, tuple) else fn(inputs)


def _same(a: Any, b: Any, rtol: float, atol: float) -> bool:
    """Whether two outputs (arrays, numbers or pytrees of them) agree within the tolerances."""
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    if len(leaves_a) != len(leaves_b):
        return False
    for x, y in zip(leaves_a, leaves_b, strict=True):
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        # NaN matches NaN (a mistake that makes NaN is recognised by where it makes them).
        if x.shape != y.shape or not np.allclose(x, y, rtol=rtol, atol=atol, equal_nan=True):
            return False
    return True


def _likely_mistake(exercise: Exercise, fn: Callable, inputs: Any) -> str | None:
    """The hint of the first of ``exercise.mistakes`` whose output ``fn`` reproduces."""
    try:
        got = _call(fn, inputs)
    except Exception:  # the learner's error is already in the checker's message
        return None
    for mistake in exercise.mistakes:
        if _same(got, _call(mistake.wrong, inputs), 10 * exercise.rtol, 10 * exercise.atol):
            return mistake.hint
    return None
