"""From next-token logits to text: temperature, top-k, top-p (nucleus) and generation.

A language model gives, for each position, logits ``(..., V)`` over the V tokens. Sampling
turns the last position's logits into one next token, appends it, and repeats. This module holds
the three filters that reshape the distribution before a token is drawn, and :func:`generate`,
which reads the prompt in one parallel pass, then adds token after token reusing the model's
key/value cache, for one prompt or a batch, in one compiled function.

Every filter maps logits to logits of the same shape and dtype; a removed token gets logit
``-inf`` (probability exactly 0 after the softmax). Logits may contain ``-inf`` (impossible
tokens) but no NaN or ``+inf``, and every row needs at least one finite logit: the public
functions raise a ValueError otherwise (for concrete arrays; traced values cannot be checked).

Sources: Ackley, Hinton & Sejnowski 1985 (temperature in a Boltzmann distribution); Fan, Lewis &
Dauphin 2018, "Hierarchical Neural Story Generation", §5.4 (top-k sampling); Holtzman et al.
2020, "The Curious Case of Neural Text Degeneration", §3.1 (nucleus / top-p sampling).
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

__all__ = [
    "PromptTruncatedWarning",
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


# --- generation ----------------------------------------------------------------------------------


class PromptTruncatedWarning(UserWarning):
    """A prompt was longer than the model's context window: only its last tokens were kept.

    :func:`generate` and :func:`generate_text` issue it with ``warnings.warn`` (Python shows
    it once per calling line by default) and never print. Catch or silence it with the
    ``warnings`` module, e.g. ``warnings.simplefilter("ignore", PromptTruncatedWarning)``, or
    record it with ``warnings.catch_warnings(record=True)`` and print your own line.

    Attributes:
      prompt_length: tokens in the longest prompt given.
      context_length: the model's context window, the number of tokens kept.
    """

    def __init__(self, prompt_length: int, context_length: int):
        self.prompt_length = int(prompt_length)
        self.context_length = int(context_length)
        super().__init__(
            f"The prompt has {prompt_length} tokens but the model sees at most "
            f"context_length={context_length}; keeping the last {context_length} tokens."
        )

    def __reduce__(self):
        return type(self), (self.prompt_length, self.context_length)


def _bucket(n: int, limit: int) -> int:
    """The smallest power of two >= n, at most ``limit``: prompts are padded to this length."""
    return min(1 << (n - 1).bit_length(), limit)


def _generate_impl(
    graphdef, state, prompt, lengths, key, temperature, top_k, top_p, stop_ids, stop_length,
    *, max_new_tokens,
):  # fmt: skip
    """The compiled loop: ``(new (B, N) int32, n_new (B,) int32)``; see :func:`generate`."""
    model = nnx.merge(graphdef, state)
    B, P = prompt.shape  # P: the prompt bucket, >= every row's length
    C, N, S = model.config.context_length, max_new_tokens, stop_ids.shape[0]
    rows = jnp.arange(B)
    # Can a token be fed at position >= C, where the window slides? (decided from the bucket)
    slides = P + N - 1 > C
    # Row b draws its i-th new token with keys[b, i]: its own key for every row and step.
    keys = jax.vmap(lambda b: jax.random.split(jax.random.fold_in(key, b), N))(rows)

    def draw(i, logits):  # greedy is an argmax: no sort, no random numbers
        def sample(logits):
            logits = _filtered_logits(logits, temperature, top_k, top_p)
            return jax.vmap(jax.random.categorical)(keys[:, i], logits).astype(jnp.int32)

        def greedy(logits):
            return jnp.argmax(logits, axis=-1).astype(jnp.int32)

        return jax.lax.cond(temperature == 0, greedy, sample, logits)

    def record(i, token, rec):  # write new token i of every row; a finished row writes 0
        token = jnp.where(rec["done"], 0, token)
        rec = dict(rec, new=rec["new"].at[:, i].set(token))
        if slides:  # the whole sequence, for the windows past the context length
            rec["buffer"] = rec["buffer"].at[rows, lengths + i].set(token)
        # The last S tokens, compared with the stop sequence (right-aligned in stop_ids).
        tail = jnp.concatenate([rec["tail"][:, 1:], token[:, None]], axis=1)
        matches = jnp.all((tail == stop_ids) | (jnp.arange(S) < S - stop_length), axis=1)
        stops = (stop_length > 0) & (i + 1 >= stop_length) & matches
        rec["n_new"] = jnp.where(rec["done"], rec["n_new"], i + 1)
        rec["done"] = rec["done"] | stops
        return token, dict(rec, tail=tail)

    def next_logits(token, cache, rec, i):  # feed new token i - 1 of each row
        position = lengths + i - 1

        def cached(cache):  # the usual step: one token in, its k and v written to the cache
            return model.decode_step(token, cache, position)

        def recompute(cache):  # past the window: a fresh pass over each row's last C tokens
            start = jnp.maximum(position + 1 - C, 0)
            window = jax.vmap(lambda r, s: jax.lax.dynamic_slice_in_dim(r, s, C))(
                rec["buffer"], start
            )
            return model.prefill(window, position + 1 - start)[0], cache

        if not slides:
            return cached(cache)
        return jax.lax.cond(jnp.all(position < C), cached, recompute, cache)

    rec = {
        "new": jnp.zeros((B, N), jnp.int32),
        "tail": jnp.zeros((B, S), jnp.int32),
        "n_new": jnp.zeros((B,), jnp.int32),
        "done": jnp.zeros((B,), bool),
    }
    if slides:
        rec["buffer"] = jnp.zeros((B, P + N), jnp.int32).at[:, :P].set(prompt)
    logits, cache = model.prefill(prompt, lengths)  # the whole prompt in one parallel pass
    cache = {"k": list(cache["k"]), "v": list(cache["v"])}  # per layer: updated in place
    token, rec = record(0, draw(0, logits), rec)

    def body(carry):
        i, token, cache, rec = carry
        logits, cache = next_logits(token, cache, rec, i)
        token, rec = record(i, draw(i, logits), rec)
        return i + 1, token, cache, rec

    def more(carry):  # stop when every row is done: the remaining tokens stay 0
        i, _, _, rec = carry
        return (i < N) & ~jnp.all(rec["done"])

    _, _, _, rec = jax.lax.while_loop(more, body, (jnp.int32(1), token, cache, rec))
    return rec["new"], rec["n_new"]


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


def _int_array(name: str, value, allowed: str) -> np.ndarray:
    """``value`` as an int64 array, or a ValueError naming ``name`` if it holds non-integers."""
    x = np.asarray(value)
    if x.dtype == bool or not np.issubdtype(x.dtype, np.integer):
        raise ValueError(f"{name} must be {allowed}; got {value!r} (dtype {x.dtype}).")
    return x.astype(np.int64)


def generate(
    model: nnx.Module,
    prompt_ids,
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    key: jax.Array,
    prompt_lengths=None,
    stop_token=None,
    return_lengths: bool = False,
) -> jax.Array | tuple[jax.Array, jax.Array]:
    """Continue one or several prompts by sampling up to ``max_new_tokens`` tokens from a GPT.

    How it runs, in one ``jax.jit``-compiled function:

    1. **Prefill**: :meth:`attnlab.gpt.GPT.prefill` reads every prompt in one parallel pass,
       which fills the key/value cache and gives the logits of the first new token. Prompts are
       padded at the end to a *bucket* length, the next power of two (at most
       ``context_length``): prompts of 9 to 16 tokens share one compiled version.
    2. **Decode**: a ``lax.while_loop`` draws a token for every row, then feeds it through
       :meth:`attnlab.gpt.GPT.decode_step` at that row's own position, reusing the cache. It
       ends after ``max_new_tokens`` tokens, or earlier once every row has stopped.

    The function compiles once per (model structure, batch size, prompt bucket,
    ``max_new_tokens``). ``temperature``, ``top_k``, ``top_p``, ``key``, ``stop_token`` and the
    exact prompt lengths enter as arrays, so changing them reuses the compiled loop (the tests
    count JAX's compiled versions to prove it).

    Past the context window (a token fed at position ``>= context_length``) the cache cannot be
    reused: the model's positions are absolute (learned or sinusoidal), so when the window slides every
    kept token moves to a new position and its cached keys and values go stale. Those steps
    (chosen with ``lax.cond``) run a fresh prefill over each row's last ``context_length``
    tokens: correct, but as slow per token as having no cache.

    Sampling: token i of row b is drawn with ``jax.random.categorical`` from the filtered logits
    (:func:`next_token_distribution`: temperature, then top-k, then top-p) with the key
    ``jax.random.split(jax.random.fold_in(key, b), max_new_tokens)[i]``, so every row and step
    has its own key, and the same key gives the same tokens. ``temperature == 0`` (greedy
    decoding) takes ``argmax(logits)`` instead: the most likely token, the lowest id on an
    exact tie, without sorting or random numbers.

    Args:
      model: a :class:`attnlab.gpt.GPT` (anything with ``config``, ``prefill`` and
        ``decode_step`` of the same form).
      prompt_ids: ``(P,)`` or ``(B, P)`` integer token ids in ``[0, vocab_size)``, ``P >= 1``.
        Several samples of one prompt: repeat it, ``np.tile(ids, (n, 1))``; each row draws
        with its own key. A prompt longer than ``context_length`` keeps its last
        ``context_length`` tokens and a :class:`PromptTruncatedWarning` is issued.
      max_new_tokens: the most tokens to add to each row, ``>= 0``; 0 returns the (cropped)
        prompt.
      temperature: ``>= 0``; 0 is greedy decoding (always the most likely token; top-k and
        top-p then change nothing).
      top_k: ``None``/``0`` for no limit, else sample among the k most likely tokens.
      top_p: ``None`` for no limit, else sample from the nucleus of mass ``top_p`` in (0, 1].
      key: a ``jax.random.key`` (or legacy ``PRNGKey``). Required even for greedy decoding,
        which does not use it.
      prompt_lengths: prompts of different lengths in one batch: ``(B,)`` ints in ``[1, P]``;
        row b's prompt is ``prompt_ids[b, :prompt_lengths[b]]`` (left-aligned, padded at the
        end with any valid ids, which are ignored). None: every row uses all P tokens.
      stop_token: None, or a token id, or a non-empty sequence of ids: a row stops as soon as
        its new tokens end with it (the stop tokens are kept in the row).
      return_lengths: also return each row's length.

    Returns:
      ``tokens``: int32 ``(B, P' + max_new_tokens)``, or ``(P' + max_new_tokens,)`` for a 1-D
      prompt, where ``P'`` is the longest prompt kept. Row b holds its prompt, then its new
      tokens, then zeros: the padding of shorter prompts and of rows that stopped early. With
      ``return_lengths``: ``(tokens, lengths)``, lengths int32 ``(B,)`` (or ``()``) counting
      the prompt and new tokens of each row, so ``tokens[b, :lengths[b]]`` is row b's text.

    Raises:
      ValueError: if ``max_new_tokens`` is negative or not an integer; if ``prompt_ids`` is
        empty, not 1-D/2-D, not integer, or has ids outside ``[0, vocab_size)``; if
        ``prompt_lengths`` or ``stop_token`` is malformed; if ``temperature``, ``top_k``,
        ``top_p`` or ``key`` is invalid (see :func:`next_token_distribution`).
      TypeError: if ``model`` is not a GPT-like ``nnx.Module``.
    """
    tokens, lengths, _ = _generate(
        model, prompt_ids, max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p,
        key=key, prompt_lengths=prompt_lengths, stop_token=stop_token,
    )  # fmt: skip
    return (tokens, lengths) if return_lengths else tokens


def _generate(
    model, prompt_ids, max_new_tokens, *, temperature, top_k, top_p, key, prompt_lengths,
    stop_token, stacklevel=3,
):  # fmt: skip
    """:func:`generate`, returning ``(tokens, lengths, kept prompt lengths)``."""
    if not isinstance(model, nnx.Module) or not hasattr(model, "prefill"):
        raise TypeError(f"model must be an attnlab GPT; got {type(model).__name__}.")
    if isinstance(max_new_tokens, bool) or not isinstance(max_new_tokens, int | np.integer):
        raise ValueError(f"max_new_tokens must be an integer >= 0; got {max_new_tokens!r}.")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be >= 0; got {max_new_tokens}.")
    N = int(max_new_tokens)
    _check(temperature=temperature, top_k=top_k, top_p=top_p)
    _check_key(key)
    V, C = model.config.vocab_size, model.config.context_length

    prompt = np.asarray(prompt_ids)
    if prompt.ndim not in (1, 2):
        raise ValueError(f"prompt_ids must be 1-D (P,) or 2-D (B, P); got shape {prompt.shape}.")
    if prompt.size == 0:
        raise ValueError(
            f"prompt_ids is empty (shape {prompt.shape}); give at least one token per sequence."
        )
    if prompt.dtype == bool or not np.issubdtype(prompt.dtype, np.integer):
        raise ValueError(f"prompt_ids must be integer token ids; got dtype {prompt.dtype}.")
    one_sequence = prompt.ndim == 1
    prompt = prompt.reshape(-1, prompt.shape[-1]).astype(np.int64)
    B, P = prompt.shape

    if prompt_lengths is None:
        lengths = np.full(B, P)
    else:
        allowed = f"a sequence of {B} integers in [1, {P}] (one per row of prompt_ids)"
        lengths = _int_array("prompt_lengths", prompt_lengths, allowed)
        if one_sequence or lengths.shape != (B,) or lengths.min() < 1 or lengths.max() > P:
            raise ValueError(
                f"prompt_lengths must be {allowed}, with a 2-D prompt_ids; got {prompt_lengths!r}."
            )
    used = np.arange(P) < lengths[:, None]
    bad = prompt[used & ((prompt < 0) | (prompt >= V))]
    if bad.size:
        raise ValueError(f"prompt_ids must be in [0, {V}); got {bad[:5].tolist()}.")

    if stop_token is None:
        stop = np.zeros(0, np.int64)
    else:
        allowed = f"None, a token id or a non-empty sequence of token ids in [0, {V})"
        stop = _int_array("stop_token", stop_token, allowed).reshape(-1)
        if np.ndim(stop_token) > 1 or stop.size == 0 or stop.min() < 0 or stop.max() >= V:
            raise ValueError(f"stop_token must be {allowed}; got {stop_token!r}.")

    # Keep each row's last C tokens, left-aligned.
    if lengths.max() > C:
        warnings.warn(PromptTruncatedWarning(int(lengths.max()), C), stacklevel=stacklevel)
    kept = np.minimum(lengths, C)
    start = lengths - kept
    P_kept = int(kept.max())
    columns = np.minimum(start[:, None] + np.arange(P_kept), P - 1)
    prompt = np.where(np.arange(P_kept) < kept[:, None], np.take_along_axis(prompt, columns, 1), 0)

    tokens = np.zeros((B, P_kept + N), np.int32)
    tokens[:, :P_kept] = prompt
    n_new = np.zeros(B, np.int64)
    if N > 0:
        bucket = _bucket(P_kept, C)
        padded = np.zeros((B, bucket), np.int32)
        padded[:, :P_kept] = prompt
        S = max(8, _bucket(stop.size, stop.size))  # 8 slots, or the next power of two
        stop_ids = np.zeros(S, np.int32)
        stop_ids[S - stop.size :] = stop
        graphdef, state = nnx.split(model)
        new, n_new = _generate_core(
            graphdef,
            state,
            jnp.asarray(padded),
            jnp.asarray(kept, jnp.int32),
            key,
            jnp.asarray(temperature, jnp.float32),
            jnp.asarray(0 if top_k is None else top_k, jnp.int32),
            jnp.asarray(1.0 if top_p is None else top_p, jnp.float32),
            jnp.asarray(stop_ids),
            jnp.asarray(stop.size, jnp.int32),
            max_new_tokens=N,
        )
        new, n_new = np.asarray(new), np.asarray(n_new).astype(np.int64)
        columns = kept[:, None] + np.arange(N)  # right after each row's prompt
        np.put_along_axis(tokens, columns, np.where(np.arange(N) < n_new[:, None], new, 0), 1)
    total = (kept + n_new).astype(np.int32)
    tokens, total = jnp.asarray(tokens), jnp.asarray(total)
    if one_sequence:
        return tokens[0], total[0], kept
    return tokens, total, kept


def generate_text(
    model: nnx.Module,
    tokenizer,
    prompt: str | Sequence[str],
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    key: jax.Array,
    stop: str | None = None,
) -> str | list[str]:
    """Text in, text out: encode, :func:`generate`, decode.

    Args:
      model: a GPT whose vocabulary matches ``tokenizer``.
      tokenizer: has ``encode(str) -> (P,) int array`` and ``decode(ids) -> str``, e.g.
        :class:`attnlab.data.CharTokenizer`.
      prompt: non-empty text, or a list of them (generated together in one batch, row b with
        its own key as in :func:`generate`; for several samples of one prompt, repeat it).
      max_new_tokens, temperature, top_k, top_p, key: as in :func:`generate`.
      stop: None, or non-empty text that ends a continuation: the continuation is cut right
        after the first place where its new text contains ``stop`` (``stop`` included), and
        generation stops early once its tokens have been generated.

    Returns:
      ``prompt`` followed by the decoded continuation (the whole prompt, even when only its end
      fitted in the context window); a list of them for a list of prompts.

    Raises:
      ValueError: if ``prompt`` is empty, or ``prompt`` or ``stop`` has characters the
        tokenizer does not know, or any argument of :func:`generate` is invalid.
    """
    single = isinstance(prompt, str)
    prompts = [prompt] if single else list(prompt) if isinstance(prompt, list | tuple) else None
    if not prompts or not all(isinstance(p, str) and p for p in prompts):
        raise ValueError(
            f"prompt must be a non-empty str or a non-empty list of them; got {prompt!r}."
        )
    if stop is not None and (not isinstance(stop, str) or not stop):
        raise ValueError(f"stop must be None or a non-empty str; got {stop!r}.")
    encoded = [_encode(tokenizer, text, "prompt") for text in prompts]
    stop_ids = None if stop is None else _encode(tokenizer, stop, "stop")
    lengths = np.array([len(ids) for ids in encoded])
    ids = np.zeros((len(encoded), lengths.max()), np.int64)
    for row, row_ids in zip(ids, encoded, strict=True):
        row[: len(row_ids)] = row_ids
    tokens, total, kept = _generate(
        model, ids, max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p, key=key,
        prompt_lengths=lengths, stop_token=stop_ids, stacklevel=3,
    )  # fmt: skip
    tokens, total = np.asarray(tokens), np.asarray(total)
    texts = []
    for text, row, start, end in zip(prompts, tokens, kept, total, strict=True):
        new = tokenizer.decode(row[start:end])
        if stop is not None and stop in new:  # also catches a stop text split across tokens
            new = new[: new.index(stop) + len(stop)]
        texts.append(text + new)
    return texts[0] if single else texts


def _encode(tokenizer, text: str, name: str) -> np.ndarray:
    """``tokenizer.encode(text)``, its ValueError reworded to name the argument ``name``."""
    try:
        ids = np.asarray(tokenizer.encode(text))
    except ValueError as error:
        raise ValueError(f"{name} {text[:40]!r} cannot be encoded: {error}") from None
    if ids.size == 0:
        raise ValueError(f"{name} {text[:40]!r} encodes to no tokens.")
    return ids
