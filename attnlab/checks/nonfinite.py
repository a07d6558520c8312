"""NaN and inf in a learner's output: which operation made the first one, and what that
usually means (exp of a large number overflowing, the log of a number that underflowed to 0,
a -inf fill that became NaN, a division by zero).
"""

from __future__ import annotations

import contextlib
import io
import math
import re
import warnings
from collections.abc import Callable

import jax
import numpy as np

from attnlab.checks.compare import _NotFinite
from attnlab.checks.inputs import _fresh, _Inputs, _location

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
