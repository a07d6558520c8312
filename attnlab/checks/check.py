"""The checker, :func:`check_function`: runs the trials, calls the reference and the learner's
function, and turns the first difference into a message with its likely cause (an exception
and its broadcasting hint here; the comparison, the NaN/inf diagnosis and the factor hint in
the modules beside this one).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import numpy as np

from attnlab.checks.compare import _compare, _Mismatch, _NotFinite, _pick, _ValuesDiffer
from attnlab.checks.factors import _factor_hint
from attnlab.checks.inputs import _as_numpy, _describe_inputs, _fresh, _Inputs, _location
from attnlab.checks.nonfinite import _FILL_OPS, _first_invalid_operation, _non_finite_advice
from attnlab.checks.result import CheckResult

__all__ = ["check_function"]


#: Further random trials run to confirm a factor seen on the failing trial.
_CONFIRM_TRIALS = 3


# --- the checker ------------------------------------------------------------------------------

_BROADCAST_ERRORS = ("Incompatible shapes for broadcasting", "could not be broadcast together")
_SHAPE_IN_TEXT = re.compile(r"\((\d+(?:\s*,\s*\d+)*)\s*,?\s*\)")


def _broadcast_hint(error: BaseException, inputs: _Inputs) -> str:
    """For a broadcasting error: where its shapes come from, and the usual cause."""
    text = str(error)
    if not any(marker in text for marker in _BROADCAST_ERRORS):
        return ""
    shapes = dict.fromkeys(
        tuple(int(n) for n in found.split(",")) for found in _SHAPE_IN_TEXT.findall(text)
    )
    notes = "".join(inputs.explain_shape(shape) for shape in shapes)
    return (f".{notes} Shapes are matched from the last axis. A reduction (sum, mean, max, "
            "logsumexp) drops the axis it reduces unless you pass keepdims=True, so its result "
            "no longer lines up with the array it came from.")


def _arguments(inputs: Any) -> tuple[tuple, dict]:
    if isinstance(inputs, Mapping):
        return (), dict(inputs)
    return (inputs if isinstance(inputs, tuple) else (inputs,)), {}


def _further_values(learner_fn, reference_fn, input_generator, keys, path):
    """Yield (got, expected) float64 arrays at ``path`` of the output for each key's inputs,
    or None where the learner's output cannot be compared there."""
    for key in keys:
        args, kwargs = _arguments(input_generator(key))
        expected = _pick(reference_fn(*_fresh(args), **_fresh(kwargs)), path)
        try:
            got = _pick(learner_fn(*_fresh(args), **_fresh(kwargs)), path)
            yield (_as_numpy(got).astype(np.float64), _as_numpy(expected).astype(np.float64))
        except Exception:  # raised, or returned something else: no evidence of a factor
            yield None


def check_function(
    learner_fn: Callable,
    reference_fn: Callable,
    input_generator: Callable[[jax.Array], tuple | dict | Any],
    *,
    n_trials: int = 20,
    rtol: float = 1e-5,
    atol: float = 1e-6,
    seed: int = 0,
    key: jax.Array | None = None,
    axis_names: Mapping[str, Sequence[str]] | None = None,
    ratio_hints: bool = True,
) -> CheckResult:
    """Check a learner's function against a reference on random inputs.

    Each trial draws inputs with ``input_generator(trial_key)``, calls the reference, then the
    learner's function, and compares the outputs. The check stops at the first difference.
    Outputs may be arrays, scalars, or (nested) tuples, lists or dicts of them, such as
    ``(output, weights)``. Floating-point values must agree within
    ``|yours - expected| <= atol + rtol * |expected|`` (NaN matches NaN); boolean and integer
    values must be equal. float32 and float64 count as the same kind; a bool or integer output
    where floats are expected (or the reverse) is a difference.

    At a difference the message names the likely cause where it can be told (see the docstring of
    :mod:`attnlab.checks`): for NaN/inf the learner's function runs once more with JAX's
    ``debug_nans``/``debug_infs`` and NumPy's floating-point errors on; a factor is named only
    when it holds for every value and on ``3`` further random trials (when the learner's
    output there is finite) and is -1, ln 2, ln 10, their inverses, or a size from the inputs'
    shapes.

    Args:
      learner_fn: the function the learner wrote.
      reference_fn: the correct implementation, called with the same inputs. Its parameter
        names are the inputs' names in messages.
      input_generator: ``key -> inputs``; it gets a fresh ``jax.random`` key per trial and
        returns a tuple of positional arguments, a dict of keyword arguments, or one value
        (the single positional argument). See :func:`random_inputs`.
      n_trials: number of random trials (>= 1).
      rtol: relative tolerance (>= 0).
      atol: absolute tolerance (>= 0).
      seed: seed of the base key, used when ``key`` is None. Same seed, same inputs.
      key: a base ``jax.random`` key; it is split into one key per trial (and per
        confirmation trial), never reused.
      axis_names: optional names of the axes of array inputs, by parameter name, e.g.
        ``{"logits": ("B", "T", "V"), "targets": ("B", "T")}``; hints then say "16 = B·T"
        and "logits without its axis V" instead of axis numbers.
      ratio_hints: whether to name a factor that explains every value ("2× the expected
        ones, and 2 is the size of axis B of x"). Switch it off where such a factor would
        mislead, e.g. for a whole transformer block, whose output is never a plain sum or
        mean of its input.

    Returns:
      a :class:`CheckResult`. When the learner's function raises, returns None (an unfinished
      body), or returns something different, ``passed`` is False and ``message`` says which
      trial, which output element (``output[1]``), what differs and its likely cause,
      followed by the inputs' shapes; ``inputs`` then holds that trial's inputs.

    Raises:
      TypeError: if a function argument is not callable, the reference returns None, or
        ``axis_names`` is not a mapping of names to tuples of axis names.
      ValueError: if ``n_trials`` < 1, a tolerance is negative, or ``axis_names`` names an
        argument that is not an array input or gives it the wrong number of axes.
      Exception: whatever ``input_generator`` or ``reference_fn`` raises (a bug in the
        exercise, not in the learner's code).
    """
    for name, fn in (("learner_fn", learner_fn), ("reference_fn", reference_fn),
                     ("input_generator", input_generator)):
        if not callable(fn):
            raise TypeError(f"{name} must be a function; got {type(fn).__name__}.")
    if isinstance(n_trials, bool) or not isinstance(n_trials, int | np.integer) or n_trials < 1:
        raise ValueError(f"n_trials must be a whole number >= 1; got {n_trials!r}.")
    n_trials = int(n_trials)
    for name, tol in (("rtol", rtol), ("atol", atol)):
        if not tol >= 0:
            raise ValueError(f"{name} must be >= 0; got {tol!r}.")
    if axis_names is None:
        axis_names = {}
    if not isinstance(axis_names, Mapping) or not all(
        isinstance(names, tuple | list) and all(isinstance(n, str) for n in names)
        for names in axis_names.values()
    ):
        raise TypeError(
            "axis_names must map argument names to tuples of axis names, like "
            f"{{'logits': ('B', 'T', 'V')}}; got {axis_names!r}."
        )
    axis_names = {name: tuple(names) for name, names in axis_names.items()}
    if key is None:
        key = jax.random.key(seed)
    keys = jax.random.split(key, n_trials + _CONFIRM_TRIALS)
    trial_keys, confirm_keys = keys[:n_trials], keys[n_trials:]

    for trial in range(n_trials):
        inputs = input_generator(trial_keys[trial])
        args, kwargs = _arguments(inputs)
        where = f"Trial {trial + 1} of {n_trials}: "
        shown = f"\nInputs: {_describe_inputs(reference_fn, args, kwargs)}."
        seen = _Inputs.of_call(reference_fn, args, kwargs, axis_names)

        expected = reference_fn(*_fresh(args), **_fresh(kwargs))
        if expected is None:
            raise TypeError("reference_fn returned None; it must return the correct answer.")
        try:
            got = learner_fn(*_fresh(args), **_fresh(kwargs))
        except NotImplementedError:
            return CheckResult(False, "Your function is not implemented yet (it raised "
                               "NotImplementedError). Fill in its body and run the check again.")
        except Exception as error:  # report any learner error instead of crashing the cell
            return CheckResult(
                False,
                f"{where}your function raised {type(error).__name__}: {error}"
                f"{_location(learner_fn, error)}{_broadcast_hint(error, seen)}{shown}",
                inputs,
            )
        if got is Ellipsis:
            return CheckResult(False, "Your function returned ... — it is not implemented yet.")
        if got is None:
            return CheckResult(
                False,
                "Your function returned None — did you forget to return? (If its body is "
                "still `...` or `pass`, it is not implemented yet.)",
                inputs,
            )
        try:
            _compare(got, expected, (), seen, rtol, atol)
        except _NotFinite as mismatch:
            cause = _first_invalid_operation(learner_fn, args, kwargs)
            nan_cause = None
            if cause is not None and cause[0] == "inf" and cause[1] in _FILL_OPS:
                nan_cause = _first_invalid_operation(learner_fn, args, kwargs, infs=False)
            advice = _non_finite_advice(mismatch, cause, seen, nan_cause)
            return CheckResult(False, f"{where}{mismatch} {advice}{shown}", inputs)
        except _ValuesDiffer as mismatch:
            further = _further_values(learner_fn, reference_fn, input_generator, confirm_keys,
                                      mismatch.keys)
            hint = _factor_hint(mismatch, seen, atol, further) if ratio_hints else ""
            return CheckResult(False, f"{where}{mismatch}{hint}{shown}", inputs)
        except _Mismatch as mismatch:
            return CheckResult(False, f"{where}{mismatch}{shown}", inputs)

    return CheckResult(
        True,
        f"Your function matches the reference on all {n_trials} random trials "
        f"(rtol={rtol:g}, atol={atol:g}).",
    )
