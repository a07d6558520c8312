"""The logit filters: temperature, top-k, top-p, and the next token's probabilities.

Notebook 08 writes these out and plays with them on sliders (its sampling playground, in
:mod:`attnlab.widgets.playground`, calls the public filters); :mod:`attnlab.sampling.loop` draws
every generated token through :func:`_filtered_logits` (notebooks 06, 07, 08, 10).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

# --- argument checks (eager, in Python; skipped for traced values) ------------------------------


# name: (integers only?, is the value allowed?, the allowed values in words, what to do)
_RULES = {
    "temperature": (
        False,
        lambda t: np.isfinite(t) and t >= 0,
        "a finite number >= 0",
        "Use 1.0 for the model's own distribution, 0 for greedy decoding.",
    ),
    "top_k": (
        True,
        lambda k: k >= 0,
        "None or an integer >= 0",
        "Use top_k=None (or 0) to keep every token.",
    ),
    "top_p": (
        False,
        lambda p: 0.0 < p <= 1.0,  # also rejects NaN
        "in (0, 1]",
        "Use top_p=1.0 to keep every token.",
    ),
}


def _check(**arguments) -> None:
    """Raise a ValueError naming the argument, its value, the allowed values and what to do.

    ``_check(temperature=t, top_k=k)`` checks each argument against its rule in ``_RULES``.
    ``top_k=None`` and ``top_p=None`` pass (no filter); so does a traced value, whose value is
    unknown inside jit.
    """
    for name, value in arguments.items():
        integer, allowed, in_words, advice = _RULES[name]
        if (value is None and name != "temperature") or isinstance(value, jax.core.Tracer):
            continue
        x = np.asarray(value)
        kinds = "iu" if integer else "iuf"  # never bool, complex or str
        if not (x.ndim == 0 and x.dtype.kind in kinds and allowed(x)):
            raise ValueError(f"{name} must be {in_words}; got {value!r}. {advice}")


def _as_logits(logits) -> jax.Array:
    """``logits`` as a float array, checked (unless traced): no NaN or +inf, a finite per row."""
    logits = jnp.asarray(logits)
    if logits.ndim < 1 or logits.shape[-1] < 1:
        raise ValueError(f"logits must have shape (..., V) with V >= 1; got {logits.shape}.")
    if not jnp.issubdtype(logits.dtype, jnp.floating):
        logits = logits.astype(jnp.float32)
    if not isinstance(logits, jax.core.Tracer):
        x = np.asarray(logits, np.float32)
        if np.isnan(x).any() or np.isposinf(x).any():
            raise ValueError(
                f"logits must not contain NaN or +inf; got {int(np.isnan(x).sum())} NaN and "
                f"{int(np.isposinf(x).sum())} +inf. Check the model's output (a NaN often "
                "comes from a division by zero or an exploding loss)."
            )
        if not np.isfinite(x).any(axis=-1).all():
            raise ValueError(
                "logits must have at least one finite value in every row; got a row that is "
                "entirely -inf, which leaves no token to choose."
            )
    return logits


# --- the filters, written for traced parameters (so a slider does not recompile) ----------------


def _temperature(logits, temperature):
    t = jnp.asarray(temperature).astype(logits.dtype)
    greedy = jnp.where(logits == logits.max(axis=-1, keepdims=True), logits, -jnp.inf)
    scaled = logits / jnp.where(t > 0, t, 1)  # safe divisor: no inf/NaN in the unused branch
    return jnp.where(t > 0, scaled, greedy)


def _top_k(logits, top_k):
    V = logits.shape[-1]
    k = jnp.asarray(top_k, jnp.int32)
    k = jnp.where((k <= 0) | (k > V), V, k)  # 0 means "no limit"; more than V keeps all
    kth_largest = jnp.sort(logits, axis=-1)[..., V - k]
    return jnp.where(logits >= kth_largest[..., None], logits, -jnp.inf)


def _top_p(logits, top_p):
    p = jnp.asarray(top_p, jnp.float32)
    descending = jnp.flip(jnp.sort(logits, axis=-1), axis=-1)
    probs = jax.nn.softmax(descending.astype(jnp.float32), axis=-1)
    cumulative = jnp.cumsum(probs, axis=-1)
    mass_before = jnp.concatenate([jnp.zeros_like(cumulative[..., :1]), cumulative[..., :-1]], -1)
    # A token enters the nucleus while the mass of the tokens before it is still short of top_p:
    # so the token that crosses top_p is in, and the most likely token always is (0 < top_p).
    n_kept = jnp.sum(mass_before < p, axis=-1, keepdims=True)
    threshold = jnp.take_along_axis(descending, n_kept - 1, axis=-1)
    # top_p = 1 keeps everything, even if rounding makes the cumulative sum reach 1 early.
    keep = (logits >= threshold) | (p >= 1.0)
    return jnp.where(keep, logits, -jnp.inf)


def _filtered_logits(logits, temperature, top_k, top_p):
    # Subtracting each row's maximum changes no probability but keeps logits / tiny temperature
    # from overflowing to +inf (which would turn the softmax into NaN).
    logits = logits - jax.lax.stop_gradient(logits.max(axis=-1, keepdims=True))
    return _top_p(_top_k(_temperature(logits, temperature), top_k), top_p)


# --- public filters ------------------------------------------------------------------------------


def apply_temperature(logits: jax.Array, temperature: float) -> jax.Array:
    """Divide logits by a temperature: below 1 sharpens the distribution, above 1 flattens it.

    ``softmax(logits / T)`` is the Boltzmann distribution at temperature T. As T → 0 all the
    probability goes to the most likely token, so ``temperature == 0`` is defined as that limit
    (greedy decoding): the maximum logit keeps its value and every other logit becomes ``-inf``.
    Tokens tied for the maximum all keep their logit, so the limit shares its mass among them.

    Args:
      logits: ``(..., V)`` float; the last axis indexes the vocabulary.
      temperature: a number ``>= 0`` (Python scalar or 0-d array; may be traced under jit).

    Returns:
      ``(..., V)`` with the dtype of ``logits`` (float32 for integer input). For very small
      positive temperatures the quotient can overflow to ``±inf``;
      :func:`next_token_distribution` subtracts each row's maximum first, which avoids that.

    Raises:
      ValueError: if ``temperature`` is negative, not finite or not a single number, or
        ``logits`` has no vocabulary axis, contains NaN or ``+inf``, or has a row of ``-inf``.

    Source: Ackley, Hinton & Sejnowski 1985 (the temperature of a Boltzmann distribution).
    """
    _check(temperature=temperature)
    return _temperature(_as_logits(logits), temperature)


def top_k_filter(logits: jax.Array, top_k: int | None) -> jax.Array:
    """Keep the ``top_k`` largest logits in each row; every other logit becomes ``-inf``.

    Ties: every token whose logit equals the k-th largest is kept, so a row can keep more
    than ``top_k`` tokens when several share the k-th value. The result then never depends on
    how the sort happens to order equal values.

    Args:
      logits: ``(..., V)`` float.
      top_k: ``None`` or ``0`` keeps every token (``0`` means "no limit", as in Hugging Face
        ``generate``, so a slider can run from 0); ``top_k >= V`` also keeps every token.
        May be a traced int under jit.

    Returns:
      ``(..., V)``, the dtype of ``logits``: the kept logits unchanged, the rest ``-inf``.

    Raises:
      ValueError: if ``top_k`` is negative or not an integer, or ``logits`` are invalid (see
        :func:`apply_temperature`).

    Source: Fan, Lewis & Dauphin 2018, "Hierarchical Neural Story Generation", §5.4.
    """
    _check(top_k=top_k)
    logits = _as_logits(logits)
    return logits if top_k is None else _top_k(logits, top_k)


def top_p_filter(logits: jax.Array, top_p: float | None) -> jax.Array:
    """Nucleus filter: keep the fewest most likely tokens whose probabilities sum to ``>= top_p``.

    Tokens are taken from the most to the least likely (probabilities = softmax of each row)
    until their total reaches ``top_p``; the token that crosses the threshold is kept, so the
    most likely token always survives. Ties: tokens as likely as the last token admitted are
    kept too. ``top_p == 1`` keeps every token, even where float rounding makes the running sum
    reach 1 before the last token.

    Args:
      logits: ``(..., V)`` float.
      top_p: ``None`` (keep every token) or a number in ``(0, 1]``; may be traced under jit.

    Returns:
      ``(..., V)``, the dtype of ``logits``: the kept logits unchanged, the rest ``-inf``. The
      caller renormalises (a softmax of the result).

    Raises:
      ValueError: if ``top_p`` is outside ``(0, 1]``, or ``logits`` are invalid (see
        :func:`apply_temperature`).

    Source: Holtzman et al. 2020, "The Curious Case of Neural Text Degeneration", §3.1.
    """
    _check(top_p=top_p)
    logits = _as_logits(logits)
    return logits if top_p is None else _top_p(logits, top_p)


def next_token_distribution(
    logits: jax.Array,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
) -> jax.Array:
    """Probabilities of the next token after temperature, top-k and top-p.

    The order is temperature → top-k → top-p → softmax (the order Hugging Face ``generate``
    uses). Temperature comes first because it changes the probabilities that top-p adds up: a
    low temperature shrinks the nucleus, a high one widens it. Top-k does not care (dividing by
    T > 0 keeps the ranking), but running it before top-p means top-p measures mass within the
    k survivors, renormalised. Each row's maximum is subtracted first, which changes no
    probability and avoids overflow at tiny temperatures.

    Args:
      logits: ``(..., V)`` float; each row needs at least one finite logit.
      temperature: number ``>= 0``; 0 gives a one-hot on the most likely token (shared among
        exact ties).
      top_k: ``None``/``0`` for no limit, else keep the k largest logits (see
        :func:`top_k_filter` for ties).
      top_p: ``None`` for no limit, else a number in ``(0, 1]`` (see :func:`top_p_filter`).

    Returns:
      ``(..., V)`` float probabilities: non-negative, each row summing to 1, zero on the
      filtered tokens.

    Raises:
      ValueError: as :func:`apply_temperature`, :func:`top_k_filter` and :func:`top_p_filter`.
    """
    _check(temperature=temperature, top_k=top_k, top_p=top_p)
    logits = _as_logits(logits)
    top_k = 0 if top_k is None else top_k
    top_p = 1.0 if top_p is None else top_p
    return jax.nn.softmax(_filtered_logits(logits, temperature, top_k, top_p), axis=-1)
