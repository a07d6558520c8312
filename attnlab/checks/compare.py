"""Comparing one output with the reference: structure, shape, dtype, then values.

:func:`_compare` raises a :class:`_Mismatch` at the first difference, whose message names a
wrong shape by the inputs (or other output) it comes from; :class:`_NotFinite` (NaN or inf
where the reference has a number) and :class:`_ValuesDiffer` (numbers beyond the tolerance)
carry what the NaN/inf diagnosis and the factor hint need.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from attnlab.checks.inputs import _as_numpy, _describe, _Inputs

# NumPy dtype kinds, named for learners. Outputs must match the reference's kind; the width
# may differ (float32 where the reference gives float64 is fine).
_KIND_NAMES = {
    "b": "boolean", "i": "integer", "u": "integer", "f": "floating-point", "c": "complex"
}


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


def _where(index: tuple[int, ...]) -> str:
    if not index:
        return ""
    return f" at index {index[0]}" if len(index) == 1 else f" at index {index}"


def _number(x: Any) -> str:
    return f"{x.item():.6g}" if isinstance(x, np.generic) and x.dtype.kind in "fc" else str(x)


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
