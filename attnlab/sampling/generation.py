"""Token ids in, token ids out: :func:`generate`, its argument checks, the truncation warning.

Notebooks 06, 07, 08 and 10 continue prompts with :func:`generate`; the compiled loop itself
lives in :mod:`attnlab.sampling.loop`.
"""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from attnlab.sampling.filters import _check
from attnlab.sampling.loop import _bucket, _generate_core

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
