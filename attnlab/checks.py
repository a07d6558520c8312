"""Exercise checkers: compare a learner's function with the reference on random inputs.

An exercise in a notebook asks the learner to write a function (say, ``softmax``). The cell
after it calls :func:`check_function` (or :func:`attnlab.exercises.check_exercise`, which
fills in the reference and the inputs) with the learner's function. The checker runs both on
the same random inputs and, at the first difference, says in plain words what differs and,
where it can tell, why:

- the structure, shape or dtype of the output, naming a shape by the inputs it comes from
  ("(2, 8) is the shape of targets (B, T)");
- an exception, with the learner's line, and for a broadcasting error the likely missing
  ``keepdims=True``;
- NaN or ±inf where the reference has a number: the checker runs the learner's function once
  more with JAX's and NumPy's floating-point checks on, finds the first operation that made a
  non-finite value, and tells an overflow (``exp`` of a large number → inf, then inf/inf → NaN)
  from the log of a number that underflowed to 0 (``log(0) = -inf``);
- values off by a factor, but only when every compared value, on this trial and on a few
  further random inputs, shows the same factor and that factor is one a learner could have
  introduced: the sign (-1), ln 2 (bits vs nats), ln 10, or a size taken from the inputs'
  shapes ("16 = B·T = 2 × 8: a sum where a mean was wanted?");
- otherwise the difference, plainly: the largest difference, where, the learner's value and
  the expected one.

The result shows as a green or red box when it is the last expression of a cell.

Example (in a notebook cell)::

    from attnlab.checks import check_function, random_inputs

    check_function(my_softmax, jax.nn.softmax, random_inputs((4, 7)))
"""

from __future__ import annotations

import contextlib
import html
import inspect
import io
import itertools
import math
import re
import traceback
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
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

#: Further random trials run to confirm a factor seen on the failing trial.
_CONFIRM_TRIALS = 3
#: How closely every value must follow a factor (relative) to be called "that factor".
_FACTOR_RTOL = 1e-3


class _Mismatch(Exception):
    """Raised inside the comparison to stop at the first difference; carries the message."""


class _ValuesDiffer(_Mismatch):
    """Numbers that differ beyond the tolerance; keeps what the factor hint needs."""

    def __init__(self, message: str, keys: tuple, got: np.ndarray, expected: np.ndarray):
        super().__init__(message)
        self.keys, self.got, self.expected = keys, got, expected


class _NotFinite(_Mismatch):
    """NaN or ±inf where the reference has a number; keeps what the diagnosis needs."""

    def __init__(self, message: str, label: str, expected: float, dtype: np.dtype):
        super().__init__(message)
        self.label, self.expected, self.dtype = label, expected, dtype


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


def _and(words: Sequence[str]) -> str:
    """'a', 'a and b', 'a, b and c'."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} and {words[-1]}"


# --- what the inputs tell: names, shapes, sizes ------------------------------------------------


@dataclass(frozen=True)
class _Inputs:
    """One trial's inputs as the hints see them: array shapes and whole-number arguments by
    parameter name, optional axis names, and the largest magnitude among the float inputs."""

    shapes: dict[str, tuple[int, ...]]
    integers: dict[str, int]
    axis_names: Mapping[str, tuple[str, ...]]
    largest: float | None

    @classmethod
    def of_call(cls, fn: Callable, args: tuple, kwargs: dict,
                axis_names: Mapping[str, tuple[str, ...]]) -> _Inputs:
        try:
            named = dict(inspect.signature(fn).bind(*args, **kwargs).arguments)
        except (TypeError, ValueError):
            named = {f"argument {i}": a for i, a in enumerate(args)} | kwargs
        shapes, integers, largest = {}, {}, None
        for name, value in named.items():
            if hasattr(value, "shape") and hasattr(value, "dtype"):
                shapes[name] = tuple(int(n) for n in value.shape)
                array = _as_numpy(value)
                if array.dtype.kind == "f" and array.size:
                    with np.errstate(all="ignore"):
                        peak = float(np.nanmax(np.abs(array.astype(np.float64))))
                    largest = peak if largest is None else max(largest, peak)
            elif isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_):
                integers[name] = int(value)
        for name, names in axis_names.items():
            if name not in shapes:
                raise ValueError(
                    f"axis_names names the axes of {name!r}, but the inputs have no array "
                    f"argument of that name; the array arguments are {sorted(shapes)}."
                )
            if len(names) != len(shapes[name]):
                raise ValueError(
                    f"axis_names[{name!r}] = {names} names {len(names)} axes, but {name} has "
                    f"shape {shapes[name]} ({len(shapes[name])} axes)."
                )
        return cls(shapes, integers, axis_names, largest)

    def _axis(self, name: str, i: int) -> str:
        names = self.axis_names.get(name)
        return names[i] if names else str(i)

    def shape_notes(self, shape: tuple[int, ...]) -> list[str]:
        """Where a shape comes from: 'the shape of targets (B, T)', 'logits without its axis
        V', 'logits with its axis V kept as size 1 (keepdims=True)'."""
        notes = []
        for name, own in self.shapes.items():
            if own == shape:
                names = self.axis_names.get(name)
                notes.append(f"the shape of {name}" + (f" ({', '.join(names)})" if names else ""))
        for name, own in self.shapes.items():
            for i in range(len(own)):
                if len(own) > 1 and own[:i] + own[i + 1:] == shape:
                    notes.append(f"{name} without its axis {self._axis(name, i)}")
                if own[i] > 1 and own[:i] + (1,) + own[i + 1:] == shape:
                    notes.append(f"{name} with its axis {self._axis(name, i)} kept as size 1 "
                                 "(keepdims=True)")
        return notes

    def explain_shape(self, shape: tuple[int, ...]) -> str:
        """' (2, 8) is the shape of targets (B, T), or logits without its axis V.' or ''."""
        notes = self.shape_notes(shape)
        return f" {shape} is {', or '.join(notes[:2])}." if notes else ""

    def sizes(self) -> dict[int, tuple[str, str]]:
        """Every size > 1 a learner could multiply or divide by: products of the sizes of one
        array's axes, and whole-number arguments. Maps size -> (what it is, what to say of it
        as 'over ...')."""
        out: dict[int, tuple[str, str]] = {}
        for name, shape in self.shapes.items():
            axes = [i for i, n in enumerate(shape) if n > 1]
            for r in range(1, len(axes) + 1):
                for subset in itertools.combinations(axes, r):
                    n = math.prod(shape[i] for i in subset)
                    if n in out:
                        continue
                    labels = [self._axis(name, i) for i in subset]
                    sizes = " × ".join(str(shape[i]) for i in subset)
                    if name in self.axis_names:
                        equation = f"{n} = {'·'.join(labels)}" + (f" = {sizes}" if r > 1 else "")
                    else:
                        equation = f"{n} = {sizes}" if r > 1 else str(n)
                    noun = "axis" if r == 1 else "axes"
                    out[n] = (f"{equation} is the size of {noun} {_and(labels)} of {name}",
                              "that axis" if r == 1 else "those axes")
        for name, value in self.integers.items():
            if value > 1 and value not in out:
                out[value] = (f"{value} is the argument {name}", "")
        return out


# --- comparing one output with the reference ---------------------------------------------------


_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth")


def _path(keys: tuple) -> str:
    """'output[0][1]'; for one index into a returned tuple, 'the first returned value
    (output[0])', so that it does not read as row 0 of an array."""
    path = "output" + "".join(f"[{k!r}]" for k in keys)
    if len(keys) == 1 and isinstance(keys[0], int) and 0 <= keys[0] < len(_ORDINALS):
        return f"the {_ORDINALS[keys[0]]} returned value ({path})"
    return path


def _leaf_shapes(expected: Any, keys: tuple = ()) -> dict[tuple, tuple[int, ...]]:
    """The shape of every array in the expected output, by its keys (``{(0,): (6, 4), ...}``)."""
    if isinstance(expected, tuple | list):
        return {k: s for i, e in enumerate(expected) for k, s in _leaf_shapes(e, (*keys, i)).items()}
    if isinstance(expected, Mapping):
        return {k: s for n, e in expected.items() for k, s in _leaf_shapes(e, (*keys, n)).items()}
    return {keys: tuple(np.shape(expected))}


def _pick(value: Any, keys: tuple) -> Any:
    for k in keys:
        value = value[k]
    return value


def _compare(got: Any, expected: Any, keys: tuple, inputs: _Inputs, rtol: float,
             atol: float, outputs: Mapping[tuple, tuple[int, ...]] | None = None) -> None:
    """Raise :class:`_Mismatch` describing the first way ``got`` differs from ``expected``.

    ``outputs`` holds the shapes of all of the expected output's arrays (by keys), so that a
    wrong shape that is another output's shape is named as such."""
    if outputs is None:
        outputs = _leaf_shapes(expected)
    path = _path(keys)
    top = not keys
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
            _compare(g, e, (*keys, i), inputs, rtol, atol, outputs)
        return
    if isinstance(expected, Mapping):
        if not isinstance(got, Mapping) or set(got) != set(expected):
            raise _Mismatch(
                f"{subject} should return a dict with keys {sorted(expected)}; "
                f"it returned {sorted(got) if isinstance(got, Mapping) else _describe(got)}."
            )
        for k in expected:
            _compare(got[k], expected[k], (*keys, k), inputs, rtol, atol, outputs)
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
        reduce = (" A single number is wanted: reduce over every axis (for example `.mean()` "
                  "with no axis)." if expected.shape == () else "")
        others = [k for k, shape in outputs.items() if k != keys and shape == got.shape]
        if others:
            source = (f" {got.shape} is the shape of {_path(others[0])}: are the returned values "
                      "in the wrong order?")
        else:
            source = inputs.explain_shape(got.shape)
        raise _Mismatch(
            f"{subject} {verb} shape {got.shape}; expected {expected.shape}{scalar}."
            f"{source}{reduce}"
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
        # Non-finite values where the reference has numbers get their own diagnosis.
        for kind, new_bad in (("NaN", np.isnan(got) & ~np.isnan(expected)),
                              ("inf", np.isinf(got) & np.isfinite(expected))):
            if new_bad.any():
                index = tuple(int(i) for i in np.argwhere(new_bad)[0])
                value = got[index]
                label = "NaN" if np.isnan(value) else ("+inf" if value.real > 0 else "-inf")
                reference = _number(expected[index])
                count = int(new_bad.sum())
                if got.ndim == 0:
                    message = f"{path} is {label} where the reference has a number ({reference})."
                else:
                    message = (
                        f"{path} has {label}{_where(index)} ({count} {kind} "
                        f"value{'s' if count > 1 else ''} in all) where the reference has a "
                        f"number ({reference})."
                    )
                raise _NotFinite(message, label, float(np.abs(expected[index])), got.dtype)
        bad = ~np.isclose(got, expected, rtol=rtol, atol=atol, equal_nan=True)
    if not bad.any():
        return
    wide = np.complex128 if want_kind == "complex" else np.float64
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(got.astype(wide) - expected.astype(wide))
    tolerance = f"tolerance rtol={rtol:g}, atol={atol:g}"
    if got.ndim == 0:
        message = (
            f"{path} differs from the reference: your value {_number(got[()])}, expected "
            f"{_number(expected[()])} (difference {_number(np.float64(diff))}; {tolerance})."
        )
    else:
        diff = np.where(bad, np.nan_to_num(diff, nan=np.inf, posinf=np.inf), 0.0)
        index = tuple(int(i) for i in np.unravel_index(int(np.argmax(diff)), diff.shape))
        count = f" at {int(bad.sum())} of {bad.size} positions" if bad.size > 1 else ""
        message = (
            f"{path} differs from the reference{count}. Largest difference "
            f"{_number(np.float64(diff[index]))}{_where(index)}: your value "
            f"{_number(got[index])}, expected {_number(expected[index])} ({tolerance})."
        )
    if want_kind in ("complex", "boolean"):
        raise _Mismatch(message)
    raise _ValuesDiffer(message, keys, got.astype(np.float64), expected.astype(np.float64))


# --- NaN and inf: which operation made the first one ------------------------------------------

_EXP_OPS = {"exp", "exp2", "expm1", "pow", "power", "integer_pow", "square", "cosh", "sinh"}
_LOG_OPS = {"log", "log2", "log10", "log1p"}
_DIV_OPS = {"div", "divide", "true_divide", "floor_divide", "rem", "reciprocal"}
_ROOT_OPS = {"sqrt", "rsqrt", "cbrt", "pow", "power"}
_JAX_INVALID = re.compile(r"invalid value \((nan|inf)\) encountered in ([A-Za-z_]\w*)")
_NUMPY_INVALID = re.compile(r"(overflow|divide by zero|invalid value) encountered in (\w+)")
_NOT_AN_OPERATION = {"jit", "pjit", "xla_call", "closed_call", "core_call", "custom_jvp_call",
                     "custom_vjp_call", "remat", "checkpoint"}


#: Operations that only move or convert values: an inf that first appears in one of them was
#: written on purpose (``jnp.where(mask, scores, -jnp.inf)``, ``jnp.full(..., -jnp.inf)``,
#: ``x.at[i].set(-jnp.inf)``), since any inf made by arithmetic would have been caught earlier.
_FILL_OPS = {"convert_element_type", "broadcast_in_dim", "broadcast", "full", "select_n",
             "select", "where", "copy", "copy_p", "concatenate", "reshape", "device_put",
             "dynamic_update_slice", "scatter", "pad", "squeeze", "expand_dims", "transpose",
             "gather", "dynamic_slice", "slice", "copyto"}


def _first_invalid_operation(fn: Callable, args: tuple, kwargs: dict, *, infs: bool = True):
    """Run ``fn`` once more with JAX's debug_nans/debug_infs (``infs=False``: debug_nans only)
    and NumPy's floating-point errors turned on, so that it stops at the first operation that
    produces NaN (or inf).

    Returns ``(value, operation, where)`` ("nan" or "inf", the primitive or ufunc name such as
    ``"exp"``, and " (line n: code)" in ``fn`` or ""), or None when that cannot be found (the
    function does not stop, or stops for another reason).
    """
    try:
        with contextlib.ExitStack() as stack:
            # JAX prints a line when it re-runs a jitted function op by op; NumPy and JAX
            # may warn. Neither is for the learner.
            stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
            stack.enter_context(warnings.catch_warnings())
            warnings.simplefilter("ignore")
            stack.enter_context(jax.debug_nans(True))
            stack.enter_context(jax.debug_infs(infs))
            stack.enter_context(np.errstate(over="raise" if infs else "ignore",
                                            divide="raise" if infs else "ignore",
                                            invalid="raise", under="ignore"))
            fn(*_fresh(args), **_fresh(kwargs))
    except FloatingPointError as error:
        text = str(error)
        if found := _JAX_INVALID.search(text):
            value, operation = found.groups()
        elif found := _NUMPY_INVALID.search(text):
            value = "nan" if found[1] == "invalid value" else "inf"
            operation = found[2]
        else:
            return None
        if operation in _NOT_AN_OPERATION:
            return None
        return value, operation, _location(fn, error)
    except ZeroDivisionError as error:  # Python floats
        return "inf", "divide", _location(fn, error)
    except Exception:  # e.g. code that cannot run under the checks; fall back on observations
        return None
    return None


def _non_finite_advice(mismatch: _NotFinite, cause, inputs: _Inputs, nan_cause=None) -> str:
    """Name the likely cause of NaN/inf in the output: from the first operation that made
    one when it is known, else from what the output and inputs show (and say when that
    cannot decide between overflow and log of 0). When the first inf was written on purpose
    (it appears in an operation of ``_FILL_OPS``), ``nan_cause`` is the first operation that
    made a NaN (from a run with debug_nans only), or None."""
    info = np.finfo(mismatch.dtype if mismatch.dtype.kind == "f" else np.float32)
    dtype = info.dtype.name
    exp_max = math.log(float(info.max))  # exp(x) = inf above this: 88.7 for float32
    tiny = -math.log(float(info.tiny))  # e^-x rounds to 0 (flushed) above this: 87.3
    big = inputs.largest
    reach = f"; these inputs reach {big:.4g}" if big is not None and big > exp_max else ""
    overflow = (f"exp of a large number overflows to inf ({dtype}: exp(x) = inf for "
                f"x > {exp_max:.1f}{reach})")
    large_reference = mismatch.expected > tiny
    reference = (f"; the reference here is {mismatch.expected:.4g}, and e^-{mismatch.expected:.4g} "
                 f"is 0 in {dtype}" if large_reference else "")
    log0 = (f"log(0) = -inf: a positive number underflowed to 0 before the log ({dtype} holds "
            f"nothing smaller than about e^-{tiny:.0f}), typically the softmax probability of "
            f"a very unlikely token{reference}")
    fix_exp = ("Subtract the maximum before exp, or stay in log space: jax.nn.logsumexp, "
               "jax.nn.log_softmax.")
    fix_log = ("Take the log before anything can underflow: log softmax(z) = z - logsumexp(z) "
               "(jax.nn.log_softmax) is finite for any logits.")

    if cause is not None and cause[0] == "inf" and cause[1] in _FILL_OPS:
        filled = (f"An infinity written on purpose (e.g. a -inf fill; it first appears in "
                  f"{cause[1]}{cause[2]})")
        if nan_cause is None or mismatch.label != "NaN":
            return (f"{filled} reached the output; where the reference has a number, replace "
                    "it afterwards (jnp.where) or fill with a large finite number instead.")
        _, op, where = nan_cause
        why = {"sub": "inf - inf is NaN", "add": "inf + (-inf) is NaN",
               "subtract": "inf - inf is NaN", "mul": "0 × inf is NaN",
               "multiply": "0 × inf is NaN"}.get(op, "inf/inf or 0/0 is NaN"
                                                   if op in _DIV_OPS else "an undefined result")
        return (f"{filled} later became NaN in {op}{where}: {why}, as in a softmax over a row "
                "whose entries are all -inf (in attention, a query with no allowed key; in "
                "sampling, a filter that removed every token). Make sure such a row cannot "
                "arise, or set its result afterwards (jnp.where), or fill with a large finite "
                "negative number instead of -inf.")
    if cause is not None:
        value, op, where = cause
        first = f"The first {'NaN' if value == 'nan' else 'inf'} appears in {op}{where}: "
        if op in _EXP_OPS and value == "inf":
            then = (", and then inf/inf or inf - inf gives NaN" if mismatch.label == "NaN"
                    else "")
            return f"{first}{overflow}{then}. {fix_exp}"
        if op in _LOG_OPS:
            if value == "inf":
                return f"{first}{log0}. {fix_log}"
            return f"{first}the log of a negative number is NaN."
        if op in _DIV_OPS:
            what = "0/0 is NaN" if value == "nan" else "a division by zero gives inf"
            return f"{first}{what}."
        if op in _ROOT_OPS and value == "nan":
            return f"{first}a square root or fractional power of a negative number is NaN."
        if value == "inf":
            return f"{first}a result too large for {dtype}."
        return (f"{first}an undefined result, such as inf - inf, 0 × inf, or a function "
                "outside its domain.")

    # The operation is unknown: reason from what can be seen.
    could_overflow = bool(reach)
    if mismatch.label == "NaN":
        likely = (f" (likely here: {overflow})" if could_overflow else "")
        return ("NaN usually comes from inf/inf or inf - inf after exp of a large number "
                f"overflowed{likely}, from 0/0, or from the log of a negative number.")
    if could_overflow and large_reference:
        return (f"{mismatch.label} can come from two things that the output alone cannot tell "
                f"apart here: {overflow}, or {log0}. {fix_exp}")
    if could_overflow:
        return f"{mismatch.label} probably comes from an overflow: {overflow}. {fix_exp}"
    if large_reference or mismatch.label == "-inf":
        return f"{mismatch.label} probably comes from {log0}. {fix_log}"
    return "Look for a division by zero, a log of 0, or exp of a large number."


# --- values off by a factor -------------------------------------------------------------------

_LN2, _LN10 = math.log(2.0), math.log(10.0)
#: Constants a learner can slip in, with the mistake each stands for.
_CONSTANTS = (
    (1 / _LN2, "1/ln 2", "log base 2 (bits) where the natural log (nats) was wanted (jnp.log2 "
     "instead of jnp.log, or a division by ln 2)?"),
    (_LN2, "ln 2", "the natural log (nats) where log base 2 (bits) was wanted, or an extra "
     "multiplication by ln 2?"),
    (1 / _LN10, "1/ln 10", "log base 10 (jnp.log10) where the natural log was wanted, or a "
     "division by ln 10?"),
    (_LN10, "ln 10", "the natural log where log base 10 was wanted, or an extra "
     "multiplication by ln 10?"),
)


def _known_factors(inputs: _Inputs) -> list[tuple[float, str]]:
    """Each factor a learner could have introduced, with what it means: ln 2 and ln 10 (and
    their inverses), sizes taken from the input shapes and whole-number arguments (and their
    inverses), each with either sign, and -1 alone (the sign flip)."""
    plain: list[tuple[float, str]] = [
        (value, f"{value:.4g} = {name}: {cause}") for value, name, cause in _CONSTANTS
    ]
    for n, (what, over) in inputs.sizes().items():
        if over:
            plain.append((n, f"{what}: a sum over {over} where a mean was wanted, or a "
                             f"missing division by {n}?"))
            plain.append((1 / n, f"{what}: a mean over {over} where a sum was wanted, or an "
                                 f"extra division by {n}?"))
        else:
            plain.append((n, f"{what}: a missing division by it?"))
            plain.append((1 / n, f"{what}: an extra division by it?"))
    return [(-1.0, ""), *plain, *((-value, text) for value, text in plain)]


def _ratio(factor: float) -> str:
    """'16×', '1/16 of', '1.443×', '-0.6931×'."""
    size = abs(factor)
    sign = "-" if factor < 0 else ""
    if size < 1 and abs(1 / size - round(1 / size)) < 1e-6 * (1 / size):
        return f"{sign}1/{round(1 / size)} of"
    return f"{sign}{size:.4g}×"


def _follows(got: np.ndarray, expected: np.ndarray, factor: float, atol: float) -> bool:
    """Every value equals factor × expected, relative error at most _FACTOR_RTOL."""
    return bool(np.allclose(got, factor * expected, rtol=_FACTOR_RTOL,
                            atol=atol * max(1.0, abs(factor)), equal_nan=False))


def _factor_hint(mismatch: _ValuesDiffer, inputs: _Inputs, atol: float,
                 further: Iterator[tuple[np.ndarray, np.ndarray] | None]) -> str:
    """' Your value is 16× the expected one, and 16 = B·T ...' when one known factor explains
    every value, on this trial and on the further trials ``further`` yields (pairs of got and
    expected at the same place in the output; None when the learner's output could not be
    compared there). '' when no known factor explains them all: a ratio that is not one a
    learner could have introduced means nothing and is not shown."""
    got, expected = mismatch.got, mismatch.expected
    if not (np.isfinite(got).all() and np.isfinite(expected).all()):
        return ""
    usable = np.abs(expected) > max(atol, 1e-30)
    if not usable.any():
        return ""
    estimate = float(np.median(got[usable] / expected[usable]))
    if estimate == 0:
        return ""
    matches = [(f, text) for f, text in _known_factors(inputs)
               if abs(estimate / f - 1) <= _FACTOR_RTOL]
    if not matches or not _follows(got, expected, matches[0][0], atol):
        return ""
    factor, text = matches[0]
    confirmed = 0
    for pair in further:
        if pair is None:
            return ""
        more_got, more_expected = pair
        if more_got.shape != more_expected.shape:
            return ""
        if not (np.isfinite(more_got).all() and np.isfinite(more_expected).all()):
            continue  # a different failure (an overflow, say): neither for nor against
        if not _follows(more_got, more_expected, factor, atol):
            return ""
        confirmed += 1
    if confirmed == 0 and usable.sum() < 2:
        return ""  # one number alone is no evidence of a factor
    one = got.size == 1
    subject = "Your value is" if one else "Your values are all"
    ones = "one" if one else "ones"
    also = (f" (the same on {confirmed} more random input{'s' if confirmed > 1 else ''})"
            if confirmed else "")
    if factor == -1.0:
        return (f" {subject} the expected {ones} with the opposite sign{also}: a missing or "
                "extra minus?")
    sign = ": the opposite sign (a missing or extra minus?), and " if factor < 0 else ", and "
    return f" {subject} {_ratio(factor)} the expected {ones}{also}{sign}{text}"


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

    At a difference the message names the likely cause where it can be told (see the module
    docstring): for NaN/inf the learner's function runs once more with JAX's
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
