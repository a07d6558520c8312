"""From next-token logits to text: temperature, top-k, top-p (nucleus) and generation.

A language model gives, for each position, logits ``(..., V)`` over the V tokens. Sampling
turns the last position's logits into one next token, appends it, and repeats. This module holds
the three filters that reshape the distribution before a token is drawn, and a :func:`generate`
loop that reuses the model's key/value cache and is compiled once.

Every filter maps logits to logits of the same shape and dtype; a removed token gets logit
``-inf`` (probability exactly 0 after the softmax). Rows must contain at least one finite logit.

Sources: Ackley, Hinton & Sejnowski 1985 (temperature in a Boltzmann distribution); Fan, Lewis &
Dauphin 2018, "Hierarchical Neural Story Generation", §5.4 (top-k sampling); Holtzman et al.
2020, "The Curious Case of Neural Text Degeneration", §3.1 (nucleus / top-p sampling).
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

__all__ = [
    "apply_temperature",
    "generate",
    "generate_text",
    "next_token_distribution",
    "top_k_filter",
    "top_p_filter",
]


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
    logits = jnp.asarray(logits)
    if logits.ndim < 1 or logits.shape[-1] < 1:
        raise ValueError(f"logits must have shape (..., V) with V >= 1; got {logits.shape}.")
    if not jnp.issubdtype(logits.dtype, jnp.floating):
        logits = logits.astype(jnp.float32)
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
        ``logits`` has no vocabulary axis.

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
      ValueError: if ``top_k`` is negative or not an integer.

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
      ValueError: if ``top_p`` is outside ``(0, 1]``.

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


# --- generation ----------------------------------------------------------------------------------


def _generate_impl(graphdef, state, prompt, key, temperature, top_k, top_p, *, max_new_tokens):
    model = nnx.merge(graphdef, state)
    B, P = prompt.shape
    C = model.config.context_length
    n_steps = P + max_new_tokens - 1  # step t reads buffer[t] and writes buffer[t + 1]
    buffer = jnp.zeros((B, P + max_new_tokens), jnp.int32).at[:, :P].set(prompt)

    def step(carry, inputs):
        buffer, cache = carry
        t, step_key = inputs

        def cached(cache):  # t < C: one token in, its k and v appended to the cache
            token = jax.lax.dynamic_index_in_dim(buffer, t, axis=1, keepdims=False)
            return model.decode_step(token, cache, t)

        def recompute(cache):  # t >= C: full forward over the last C tokens
            window = jax.lax.dynamic_slice_in_dim(buffer, t + 1 - C, C, axis=1)
            return model(window, deterministic=True)[:, -1], cache

        if n_steps > C:  # some step t >= C slides the window
            logits, cache = jax.lax.cond(t < C, cached, recompute, cache)
        else:  # the whole buffer fits the window: every step can use the cache
            logits, cache = cached(cache)
        logits = _filtered_logits(logits, temperature, top_k, top_p)
        sampled = jax.random.categorical(step_key, logits, axis=-1).astype(jnp.int32)
        given = jax.lax.dynamic_index_in_dim(buffer, t + 1, axis=1, keepdims=False)
        next_token = jnp.where(t + 1 < P, given, sampled)  # prefill: copy the prompt
        buffer = jax.lax.dynamic_update_slice_in_dim(buffer, next_token[:, None], t + 1, axis=1)
        return (buffer, cache), None

    steps = (jnp.arange(n_steps, dtype=jnp.int32), jax.random.split(key, n_steps))
    (buffer, _), _ = jax.lax.scan(step, (buffer, model.init_cache(B)), steps)
    return buffer


_generate_core = jax.jit(_generate_impl, static_argnames=("graphdef", "max_new_tokens"))


def _check_key(key) -> None:
    ok = isinstance(key, jax.Array) and (
        (jnp.issubdtype(key.dtype, jax.dtypes.prng_key) and key.shape == ())
        or (key.dtype == jnp.uint32 and key.shape == (2,))
    )
    if not ok:
        raise ValueError(
            f"key must be a single jax.random key, e.g. key=jax.random.key(0); got {key!r}."
        )


def generate(
    model: nnx.Module,
    prompt_ids,
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    key: jax.Array,
) -> jax.Array:
    """Continue a prompt by sampling ``max_new_tokens`` tokens from a GPT, one at a time.

    How it runs: the whole loop is one ``jax.jit``-compiled ``lax.scan`` over a fixed-size token
    buffer of length ``P' + max_new_tokens``, so it compiles once per (model structure, batch
    size, prompt length, ``max_new_tokens``). ``temperature``, ``top_k``, ``top_p`` and ``key``
    enter as arrays, so changing them reuses the compiled loop (the tests count the compiled
    versions that JAX keeps to prove it). Step t feeds ``buffer[t]`` to ``model.decode_step`` at
    position t, which reuses the key/value cache; the prompt is fed the same way, one token
    per step ("prefill"), its next token copied rather than sampled. Each sampled token is drawn
    with ``jax.random.categorical`` from the filtered logits (:func:`next_token_distribution`)
    using its own key from ``jax.random.split(key, n_steps)``.

    Past the context window (t ≥ ``context_length``) the cache cannot be reused: the model's
    positions are absolute (learned or sinusoidal), so when the window slides every kept token
    moves to a new position and all its cached keys and values go stale. Those steps (chosen with
    ``lax.cond``) run the full forward over the last ``context_length`` tokens and take the last
    position's logits: correct, but as slow per token as having no cache.

    Args:
      model: a :class:`attnlab.gpt.GPT` (anything with ``config``, ``__call__``,
        ``init_cache`` and ``decode_step`` of the same form).
      prompt_ids: ``(P,)`` or ``(B, P)`` integer token ids in ``[0, vocab_size)``, ``P >= 1``.
        A prompt longer than ``context_length`` keeps its last ``context_length`` tokens, with
        a warning; ``P'`` below is the length kept.
      max_new_tokens: number of tokens to add, ``>= 0``; 0 returns the (cropped) prompt.
      temperature: ``>= 0``; 0 is greedy decoding (always the most likely token).
      top_k: ``None``/``0`` for no limit, else sample among the k most likely tokens.
      top_p: ``None`` for no limit, else sample from the nucleus of mass ``top_p`` in (0, 1].
      key: a ``jax.random.key`` (or legacy ``PRNGKey``); the same key gives the same tokens.
        Needed even for greedy decoding, where it only breaks exact ties.

    Returns:
      int32 ``(B, P' + max_new_tokens)`` — the prompt followed by the new tokens — or
      ``(P' + max_new_tokens,)`` for a 1-D prompt.

    Raises:
      ValueError: if ``max_new_tokens`` is negative or not an integer; if ``prompt_ids`` is
        empty, not 1-D/2-D, not integer, or has ids outside ``[0, vocab_size)``; if
        ``temperature``, ``top_k``, ``top_p`` or ``key`` is invalid (see
        :func:`next_token_distribution`).
      TypeError: if ``model`` is not a GPT-like ``nnx.Module``.
    """
    if not isinstance(model, nnx.Module) or not hasattr(model, "decode_step"):
        raise TypeError(f"model must be an attnlab GPT; got {type(model).__name__}.")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int | np.integer):
        raise ValueError(f"max_new_tokens must be an integer >= 0; got {max_new_tokens!r}.")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0; got {max_new_tokens}.")
    _check(temperature=temperature, top_k=top_k, top_p=top_p)
    _check_key(key)

    prompt = np.asarray(prompt_ids)
    if prompt.ndim not in (1, 2):
        raise ValueError(f"prompt_ids must be 1-D (P,) or 2-D (B, P); got shape {prompt.shape}.")
    if prompt.size == 0:
        raise ValueError(
            f"prompt_ids is empty (shape {prompt.shape}); give at least one token per sequence."
        )
    if prompt.dtype == bool or not np.issubdtype(prompt.dtype, np.integer):
        raise ValueError(f"prompt_ids must be integer token ids; got dtype {prompt.dtype}.")
    V, C = model.config.vocab_size, model.config.context_length
    bad = prompt[(prompt < 0) | (prompt >= V)]
    if bad.size:
        raise ValueError(f"prompt_ids must be in [0, {V}); got {bad[:5].tolist()}.")

    one_sequence = prompt.ndim == 1
    prompt = prompt.reshape(-1, prompt.shape[-1]).astype(np.int32)
    if prompt.shape[1] > C:
        warnings.warn(
            f"The prompt has {prompt.shape[1]} tokens but the model sees at most "
            f"context_length={C}; keeping the last {C} tokens.",
            stacklevel=2,
        )
        prompt = prompt[:, -C:]
    if max_new_tokens == 0:
        tokens = jnp.asarray(prompt)
    else:
        graphdef, state = nnx.split(model)
        tokens = _generate_core(
            graphdef,
            state,
            jnp.asarray(prompt),
            key,
            jnp.asarray(temperature, jnp.float32),
            jnp.asarray(0 if top_k is None else top_k, jnp.int32),
            jnp.asarray(1.0 if top_p is None else top_p, jnp.float32),
            max_new_tokens=int(max_new_tokens),
        )
    return tokens[0] if one_sequence else tokens


def generate_text(
    model: nnx.Module,
    tokenizer,
    prompt: str,
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    key: jax.Array,
) -> str:
    """Text in, text out: encode ``prompt``, :func:`generate`, decode.

    Args:
      model: a GPT whose vocabulary matches ``tokenizer``.
      tokenizer: has ``encode(str) -> (P,) int array`` and ``decode(ids) -> str``, e.g.
        :class:`attnlab.data.CharTokenizer`.
      prompt: non-empty text.
      max_new_tokens, temperature, top_k, top_p, key: as in :func:`generate`.

    Returns:
      ``prompt`` followed by the decoded new tokens (the whole prompt, even when only its end
      fitted in the context window).

    Raises:
      ValueError: if ``prompt`` is empty, has characters the tokenizer does not know, or any
        argument of :func:`generate` is invalid.
    """
    if not isinstance(prompt, str) or not prompt:
        raise ValueError(f"prompt must be a non-empty str; got {prompt!r}.")
    ids = np.asarray(tokenizer.encode(prompt))
    tokens = generate(
        model, ids, max_new_tokens,
        temperature=temperature, top_k=top_k, top_p=top_p, key=key,
    )  # fmt: skip
    new = np.asarray(tokens)[tokens.shape[0] - max_new_tokens :]
    return prompt + tokenizer.decode(new)
