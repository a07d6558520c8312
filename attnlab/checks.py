"""Exercise checkers: compare a learner's function with the reference on random inputs.

An exercise in a notebook asks the learner to write a function (say, ``softmax``). The cell
after it calls :func:`check_function` with the learner's function, the package's reference and
an input generator. The checker runs both on the same random inputs and, at the first
difference, says in plain words what differs: which trial, which output, the shapes, the
dtype, NaNs, or the largest difference and where it is. The result shows as a green or red box
when it is the last expression of a cell.

Example (in a notebook cell)::

    from attnlab.checks import check_function, random_inputs

    check_function(my_softmax, jax.nn.softmax, random_inputs((4, 7)))
"""

from __future__ import annotations

import html
import inspect
import traceback
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

__all__ = ["CheckResult", "check_function", "random_inputs"]

# NumPy dtype kinds, named for learners. Outputs must match the reference's kind; the width
# may differ (float32 where the reference gives float64 is fine).
_KIND_NAMES = {
    "b": "boolean", "i": "integer", "u": "integer", "f": "floating-point", "c": "complex"
}


class _Mismatch(Exception):
    """Raised inside the comparison to stop at the first difference; carries the message."""


@dataclass(frozen=True, eq=False)
class CheckResult:
    """The verdict of a check.

    Attributes:
      passed: True when every trial matched the reference.
      message: what was checked, or the first difference found, in plain words.
      inputs: the failing trial's inputs exactly as the generator returned them (a tuple of
        positional arguments or a dict of keyword arguments), so the learner can call their
        function on them by hand; None when the check passed.

    ``bool(result)`` is ``result.passed``. In a notebook the result shows as a green (passed)
    or red (not yet) box; ``str(result)`` gives the same text.
    """

    passed: bool
    message: str
    inputs: Any = None

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return f"{'✔ Passed' if self.passed else '✘ Not yet'}: {self.message}"

    __repr__ = __str__

    def _repr_html_(self) -> str:
        if self.passed:
            mark, title, border, background = "✔", "Passed", "#34a853", "#e6f4ea"
        else:
            mark, title, border, background = "✘", "Not yet", "#d93025", "#fce8e6"
        return (
            f'<div style="border-left: 6px solid {border}; background: {background}; '
            f'color: #202124; padding: 6px 10px; margin: 4px 0;">'
            f'<b style="color: {border}">{mark} {title}</b>'
            f'<div style="white-space: pre-wrap; font-family: inherit;">'
            f"{html.escape(self.message)}</div></div>"
        )


def random_inputs(*shapes: tuple[int, ...], dtype: Any = np.float32, **named_shapes):
    """Make an input generator that draws standard-normal arrays of fixed shapes.

    Args:
      *shapes: one shape per positional argument, e.g. ``random_inputs((2, 5), (5, 3))``.
      dtype: a floating-point dtype for the arrays (default float32).
      **named_shapes: one shape per keyword argument, e.g. ``random_inputs(q=(4, 8))``.
        Use either positional or keyword shapes, not both.

    Returns:
      a function ``key -> tuple`` (or ``key -> dict`` for keyword shapes) to pass as
      ``input_generator`` to :func:`check_function`. Each array gets its own split of the key.

    Raises:
      ValueError: if no shapes are given, or both positional and keyword shapes are given.
    """
    if shapes and named_shapes:
        raise ValueError(
            "random_inputs takes either positional shapes or keyword shapes, not both; "
            f"got {shapes} and {named_shapes}."
        )
    if not shapes and not named_shapes:
        raise ValueError("random_inputs needs at least one shape, e.g. random_inputs((2, 5)).")
    names = list(named_shapes)
    all_shapes = [tuple(s) for s in (shapes or named_shapes.values())]

    def generate(key: jax.Array):
        keys = jax.random.split(key, len(all_shapes))
        arrays = [
            jax.random.normal(k, shape, dtype=dtype)
            for k, shape in zip(keys, all_shapes, strict=True)
        ]
        return dict(zip(names, arrays, strict=True)) if names else tuple(arrays)

    return generate


def _describe(value: Any) -> str:
    """Short description of an input or output: shape and dtype for arrays, else type."""
    if isinstance(value, tuple | list):
        inner = ", ".join(_describe(v) for v in value)
        return f"a {type(value).__name__} of {len(value)} items ({inner})"
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        return f"shape {tuple(value.shape)} {value.dtype}"
    if isinstance(value, bool | int | float | complex | str) or value is None:
        text = repr(value)
        return text if len(text) <= 40 else f"{text[:37]}..."
    return type(value).__name__


def _describe_inputs(fn: Callable, args: tuple, kwargs: dict) -> str:
    """Describe the inputs, by parameter name where ``fn``'s signature allows it."""
    try:
        named = inspect.signature(fn).bind(*args, **kwargs).arguments
    except (TypeError, ValueError):
        named = {f"argument {i}": a for i, a in enumerate(args)} | kwargs
    return "; ".join(f"{name}: {_describe(value)}" for name, value in named.items())


def _fresh(value: Any) -> Any:
    """Copy NumPy arrays (also inside tuples, lists and dicts) so that a function that edits
    its input in place cannot change what the other function sees. JAX arrays are immutable
    and other values are passed through as they are."""
    if isinstance(value, np.ndarray):
        return value.copy()
    if type(value) in (tuple, list):
        return type(value)(_fresh(v) for v in value)
    if isinstance(value, dict):
        return {k: _fresh(v) for k, v in value.items()}
    return value


def _as_numpy(value: Any) -> np.ndarray:
    """``np.asarray``, with low-precision JAX floats (bfloat16, ...) widened to float32."""
    array = np.asarray(value)
    if array.dtype.kind == "V" and jax.numpy.issubdtype(array.dtype, jax.numpy.floating):
        array = array.astype(np.float32)
    return array


def _location(fn: Callable, error: BaseException) -> str:
    """Say which line of ``fn`` was running when ``error`` was raised, if it can be found."""
    code = getattr(inspect.unwrap(fn), "__code__", None)
    if code is None:
        return ""
    frames = [
        frame for frame in traceback.extract_tb(error.__traceback__)
        if frame.filename == code.co_filename and frame.name == code.co_name
    ]
    if not frames:
        return ""
    line = (frames[-1].line or "").strip()
    return f" (line {frames[-1].lineno}" + (f": {line})" if line else ")")


def _where(index: tuple[int, ...]) -> str:
    if not index:
        return ""
    return f" at index {index[0]}" if len(index) == 1 else f" at index {index}"


def _number(x: Any) -> str:
    return f"{x.item():.6g}" if isinstance(x, np.generic) and x.dtype.kind in "fc" else str(x)


def _compare(got: Any, expected: Any, path: str, rtol: float, atol: float) -> None:
    """Raise :class:`_Mismatch` describing the first way ``got`` differs from ``expected``."""
    top = path == "output"
    subject = "your function" if top else path
    if isinstance(expected, tuple | list):
        if not isinstance(got, tuple | list):
            raise _Mismatch(
                f"{subject} should return {_describe(expected)}; "
                f"it returned a single value ({_describe(got)})."
            )
        if len(got) != len(expected):
            raise _Mismatch(
                f"{subject} returned {len(got)} items; expected {_describe(expected)}."
            )
        for i, (g, e) in enumerate(zip(got, expected, strict=True)):
            _compare(g, e, f"{path}[{i}]", rtol, atol)
        return
    if isinstance(expected, Mapping):
        if not isinstance(got, Mapping) or set(got) != set(expected):
            raise _Mismatch(
                f"{subject} should return a dict with keys {sorted(expected)}; "
                f"it returned {sorted(got) if isinstance(got, Mapping) else _describe(got)}."
            )
        for k in expected:
            _compare(got[k], expected[k], f"{path}[{k!r}]", rtol, atol)
        return
    if got is None:
        raise _Mismatch(
            f"{subject} returned None — did you forget to return?" if top
            else f"{path} is None; expected {_describe(expected)}."
        )
    if isinstance(got, tuple):
        raise _Mismatch(
            f"{subject} returned {_describe(got)}; expected a single array "
            f"({_describe(expected)})."
        )
    expected = _as_numpy(expected)
    try:
        got = _as_numpy(got)
    except Exception:  # e.g. a ragged list
        raise _Mismatch(
            f"{subject} returned {_describe(got)}, which is not an array of numbers."
        ) from None
    if got.shape != expected.shape:
        verb = "returned" if top else "has"
        scalar = " (a single number)" if expected.shape == () else ""
        raise _Mismatch(
            f"{subject} {verb} shape {got.shape}; expected {expected.shape}{scalar}."
        )
    got_kind = _KIND_NAMES.get(got.dtype.kind)
    want_kind = _KIND_NAMES.get(expected.dtype.kind)
    if got_kind is None:
        raise _Mismatch(f"{path} holds {got.dtype} values, not numbers; expected {expected.dtype}.")
    if got_kind != want_kind:
        raise _Mismatch(
            f"{path} has {got_kind} dtype {got.dtype}; expected a {want_kind} dtype like "
            f"{expected.dtype}."
        )
    if want_kind in ("boolean", "integer"):
        bad = got != expected
    else:
        # Non-finite values where the reference has numbers get their own, more useful advice.
        for label, new_bad, advice in (
            ("NaN", np.isnan(got) & ~np.isnan(expected),
             "Look for a division by zero, a log of 0, or exp of a large number."),
            ("inf", np.isinf(got) & np.isfinite(expected),
             "Something overflowed: exp of a large number is the usual cause (subtract the "
             "maximum first, or use a log-sum-exp)."),
        ):
            if new_bad.any():
                index = tuple(int(i) for i in np.argwhere(new_bad)[0])
                raise _Mismatch(
                    f"{path} has {label}{_where(index)} ({int(new_bad.sum())} {label} values in "
                    f"all) where the reference has a number ({_number(expected[index])}). "
                    f"{advice}"
                )
        bad = ~np.isclose(got, expected, rtol=rtol, atol=atol, equal_nan=True)
    if not bad.any():
        return
    wide = np.complex128 if want_kind == "complex" else np.float64
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(got.astype(wide) - expected.astype(wide))
    diff = np.where(bad, np.nan_to_num(diff, nan=np.inf, posinf=np.inf), 0.0)
    index = np.unravel_index(int(np.argmax(diff)), diff.shape) if diff.ndim else ()
    index = tuple(int(i) for i in index)
    count = f" at {int(bad.sum())} of {bad.size} positions" if bad.size > 1 else ""
    raise _Mismatch(
        f"{path} differs from the reference{count}. Largest difference "
        f"{_number(np.float64(diff[index]))}{_where(index)}: your value "
        f"{_number(got[index])}, expected {_number(expected[index])} "
        f"(tolerance rtol={rtol:g}, atol={atol:g}).{_ratio_hint(got, expected, bad)}"
    )


def _ratio_hint(got: np.ndarray, expected: np.ndarray, bad: np.ndarray) -> str:
    """' Your values are all about 16x the expected ones...' when one factor explains the gap."""
    if np.iscomplexobj(got) or not np.all(np.isfinite(got[bad])):
        return ""
    want = expected[bad].astype(np.float64)
    if np.any(want == 0):
        return ""
    ratios = got[bad].astype(np.float64) / want
    factor = float(np.median(ratios))
    if abs(factor) < 1e-12 or not np.allclose(ratios, factor, rtol=1e-3):
        return ""
    if abs(factor) >= 1.5:
        return (f" Your values are all about {factor:.4g}x the expected ones: a sum where a "
                "mean was wanted, or a missing division?")
    if abs(factor) <= 1 / 1.5:
        return (f" Your values are all about 1/{1 / factor:.4g} of the expected ones: an extra "
                "division, or a mean where a sum was wanted?")
    if abs(factor + 1) < 1e-3:
        return " Your values have the opposite sign: a missing or extra minus?"
    return ""


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
) -> CheckResult:
    """Check a learner's function against a reference on random inputs.

    Each trial draws inputs with ``input_generator(trial_key)``, calls the reference, then the
    learner's function, and compares the outputs. The check stops at the first difference.
    Outputs may be arrays, scalars, or (nested) tuples, lists or dicts of them, such as
    ``(output, weights)``. Floating-point values must agree within
    ``|yours - expected| <= atol + rtol * |expected|`` (NaN matches NaN); boolean and integer
    values must be equal. float32 and float64 count as the same kind; a bool or integer output
    where floats are expected (or the reverse) is a difference.

    Args:
      learner_fn: the function the learner wrote.
      reference_fn: the correct implementation, called with the same inputs.
      input_generator: ``key -> inputs``; it gets a fresh ``jax.random`` key per trial and
        returns a tuple of positional arguments, a dict of keyword arguments, or one value
        (the single positional argument). See :func:`random_inputs`.
      n_trials: number of random trials (>= 1).
      rtol: relative tolerance (>= 0).
      atol: absolute tolerance (>= 0).
      seed: seed of the base key, used when ``key`` is None. Same seed, same inputs.
      key: a base ``jax.random`` key; it is split into one key per trial, never reused.

    Returns:
      a :class:`CheckResult`. When the learner's function raises, returns None (an unfinished
      body), or returns something different, ``passed`` is False and ``message`` says which
      trial, which output element (``output[1]``), and what differs, followed by the inputs'
      shapes; ``inputs`` then holds that trial's inputs.

    Raises:
      TypeError: if a function argument is not callable, or the reference returns None.
      ValueError: if ``n_trials`` < 1 or a tolerance is negative.
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
    if key is None:
        key = jax.random.key(seed)
    trial_keys = jax.random.split(key, n_trials)

    for trial in range(n_trials):
        inputs = input_generator(trial_keys[trial])
        if isinstance(inputs, Mapping):
            args, kwargs = (), dict(inputs)
        else:
            args, kwargs = (inputs if isinstance(inputs, tuple) else (inputs,)), {}
        where = f"Trial {trial + 1} of {n_trials}: "
        shown = f"\nInputs: {_describe_inputs(reference_fn, args, kwargs)}."

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
                f"{_location(learner_fn, error)}{shown}",
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
            _compare(got, expected, "output", rtol, atol)
        except _Mismatch as mismatch:
            return CheckResult(False, f"{where}{mismatch}{shown}", inputs)

    return CheckResult(
        True,
        f"Your function matches the reference on all {n_trials} random trials "
        f"(rtol={rtol:g}, atol={atol:g}).",
    )
