"""The compiled generation loop: prefill the prompt, then draw token after token (KV cache).

:func:`attnlab.sampling.generate` (notebooks 06, 07, 08, 10) runs this loop; the tests count
the compiled versions of ``_generate_core``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from attnlab.sampling.filters import _filtered_logits


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
