"""A check's inputs and the calls on them.

:func:`random_inputs` draws inputs; the helpers here copy them for each call (``_fresh``),
describe them and outputs in messages (``_describe``), find the learner's line in an error
(``_location``), and :class:`_Inputs` says what the inputs' names, shapes and sizes tell the
hints (the shape a wrong output has, the sizes a sum or mean runs over).
"""

from __future__ import annotations

import inspect
import itertools
import math
import traceback
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import jax
import numpy as np

__all__ = ["random_inputs"]


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
