"""Values off by a factor: named only when one factor a learner could have introduced (the
sign, ln 2, ln 10, or a size from the inputs' shapes) explains every value, on the failing
trial and on further random inputs.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import numpy as np

from attnlab.checks.compare import _ValuesDiffer
from attnlab.checks.inputs import _Inputs

#: How closely every value must follow a factor (relative) to be called "that factor".
_FACTOR_RTOL = 1e-3


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
