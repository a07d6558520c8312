"""Exercise 03 (additive attention over encoder states, padding masked): the reference, its
inputs, and what the checker says to typical wrong solutions.

``WRONG_SOLUTIONS_03`` and ``RIGHT_SOLUTIONS_03`` have the shape of the per-exercise lists in
the project's exercise tests: ``[(wrong function, text or texts its hint must contain)]`` and
``[correct function written another way]``. The wrong solutions are written here, by hand, as a
learner would write them, independently of the known mistakes in attnlab/exercises/nb03_additive.py.
"""

import jax
import jax.numpy as jnp
import numpy as np

from attnlab.exercises import EXERCISES

NAME = "additive_attention"


# --- right solutions, written in different ways -----------------------------------------------


def attention_numpy_loops(query, keys, mask, W_a, U_a, v_a):
    """Independent float64 version: one example and one source position at a time."""
    query, keys, W_a, U_a, v_a = (np.asarray(a, np.float64) for a in (query, keys, W_a, U_a, v_a))
    mask = np.asarray(mask)
    B, S, d_k = keys.shape
    weights = np.zeros((B, S))
    for b in range(B):
        scores = np.array([v_a @ np.tanh(query[b] @ W_a + keys[b, s] @ U_a) for s in range(S)])
        real = mask[b]
        e = np.exp(scores[real] - scores[real].max())
        weights[b, real] = e / e.sum()
    return np.einsum("bs,bsd->bd", weights, keys), weights


def attention_minus_inf_fill(query, keys, mask, W_a, U_a, v_a):
    # every example has at least one real position, so -inf cannot make a row of NaN here
    scores = jnp.einsum("bsa,a->bs", jnp.tanh((query @ W_a)[:, None] + keys @ U_a), v_a)
    weights = jax.nn.softmax(jnp.where(mask, scores, -jnp.inf), axis=-1)
    return (weights[..., None] * keys).sum(axis=1), weights


def attention_with_the_package(query, keys, mask, W_a, U_a, v_a):
    from attnlab.attention import additive_score, masked_softmax

    scores = additive_score(query[:, None, :], keys, W_a, U_a, v_a)[:, 0]
    weights = masked_softmax(scores, mask)
    return jnp.einsum("bs,bsd->bd", weights, keys), weights


RIGHT_SOLUTIONS_03 = [attention_numpy_loops, attention_minus_inf_fill, attention_with_the_package]


# --- typical wrong solutions ---------------------------------------------------------------------


def _scores(query, keys, W_a, U_a, v_a):
    return jnp.tanh((query @ W_a)[:, None, :] + keys @ U_a) @ v_a  # (B, S)


def _finish(weights, keys):
    return jnp.einsum("bs,bsd->bd", weights, keys), weights


def padding_not_masked(query, keys, mask, W_a, U_a, v_a):
    return _finish(jax.nn.softmax(_scores(query, keys, W_a, U_a, v_a), axis=-1), keys)


def mask_inverted(query, keys, mask, W_a, U_a, v_a):
    scores = jnp.where(mask, -1e9, _scores(query, keys, W_a, U_a, v_a))  # hides the real ones
    weights = jnp.where(mask, 0.0, jax.nn.softmax(scores, axis=-1))
    return _finish(weights, keys)


def zeroed_after_the_softmax(query, keys, mask, W_a, U_a, v_a):
    weights = jax.nn.softmax(_scores(query, keys, W_a, U_a, v_a), axis=-1)
    return _finish(jnp.where(mask, weights, 0.0), keys)


def softmax_over_the_batch(query, keys, mask, W_a, U_a, v_a):
    scores = jnp.where(mask, _scores(query, keys, W_a, U_a, v_a), -1e9)
    return _finish(jnp.where(mask, jax.nn.softmax(scores, axis=0), 0.0), keys)


def forgot_tanh(query, keys, mask, W_a, U_a, v_a):
    scores = ((query @ W_a)[:, None, :] + keys @ U_a) @ v_a
    return _finish(jax.nn.softmax(jnp.where(mask, scores, -1e9), axis=-1), keys)


def summed_instead_of_v_a(query, keys, mask, W_a, U_a, v_a):
    scores = jnp.tanh((query @ W_a)[:, None, :] + keys @ U_a).sum(-1)
    return _finish(jax.nn.softmax(jnp.where(mask, scores, -1e9), axis=-1), keys)


def scores_as_weights(query, keys, mask, W_a, U_a, v_a):
    return _finish(jnp.where(mask, _scores(query, keys, W_a, U_a, v_a), 0.0), keys)


def W_a_and_U_a_swapped(query, keys, mask, W_a, U_a, v_a):  # (3, 2) @ (4, 5) cannot multiply
    scores = jnp.tanh((query @ U_a)[:, None, :] + keys @ W_a) @ v_a
    return _finish(jax.nn.softmax(jnp.where(mask, scores, -1e9), axis=-1), keys)


def weights_and_context_swapped(query, keys, mask, W_a, U_a, v_a):
    context, weights = attention_with_the_package(query, keys, mask, W_a, U_a, v_a)
    return weights, context


def padding_scores_set_to_zero(query, keys, mask, W_a, U_a, v_a):
    scores = jnp.where(mask, _scores(query, keys, W_a, U_a, v_a), 0.0)
    return _finish(jax.nn.softmax(scores, axis=-1), keys)


def tanh_after_v_a(query, keys, mask, W_a, U_a, v_a):
    scores = jnp.tanh(((query @ W_a)[:, None, :] + keys @ U_a) @ v_a)
    return _finish(jax.nn.softmax(jnp.where(mask, scores, -jnp.inf), axis=-1), keys)


def scaled_like_dot_product(query, keys, mask, W_a, U_a, v_a):
    scores = _scores(query, keys, W_a, U_a, v_a) / jnp.sqrt(keys.shape[-1])
    return _finish(jax.nn.softmax(jnp.where(mask, scores, -jnp.inf), axis=-1), keys)


def context_as_a_mean(query, keys, mask, W_a, U_a, v_a):
    weights = jax.nn.softmax(jnp.where(mask, _scores(query, keys, W_a, U_a, v_a), -jnp.inf), axis=-1)
    return (weights[:, :, None] * keys).mean(axis=1), weights


def dot_product_of_projections(query, keys, mask, W_a, U_a, v_a):  # Luong-style, not additive
    scores = jnp.einsum("ba,bsa->bs", query @ W_a, keys @ U_a)
    return _finish(jax.nn.softmax(jnp.where(mask, scores, -jnp.inf), axis=-1), keys)


def scaled_dot_product_of_projections(query, keys, mask, W_a, U_a, v_a):
    scores = jnp.einsum("ba,bsa->bs", query @ W_a, keys @ U_a) / jnp.sqrt(W_a.shape[1])
    return _finish(jax.nn.softmax(jnp.where(mask, scores, -jnp.inf), axis=-1), keys)


def not_started(query, keys, mask, W_a, U_a, v_a):
    raise NotImplementedError


# [(wrong function, text or texts its hint must contain)]
WRONG_SOLUTIONS_03 = [
    (padding_not_masked, "Likely cause: the padding was not masked"),
    (mask_inverted, "Likely cause: the mask was read the wrong way round"),
    (zeroed_after_the_softmax, "Likely cause: the padding weights were zeroed after the softmax"),
    (softmax_over_the_batch, "Likely cause: the softmax ran over the batch axis"),
    (forgot_tanh, "Likely cause: tanh is missing"),
    (summed_instead_of_v_a, "Likely cause: v_a is missing"),
    (scores_as_weights, "Likely cause: the scores were used as weights without a softmax"),
    (W_a_and_U_a_swapped, ("raised TypeError", "query @ U_a")),
    (weights_and_context_swapped, ("(output[0]) has shape (3, 7); expected (3, 4)", "are the returned values in the wrong order?")),
    (padding_scores_set_to_zero, "Likely cause: the padding scores were set to 0 before the softmax"),
    (tanh_after_v_a, "Likely cause: tanh was applied to the score after v_a"),
    (scaled_like_dot_product, "Likely cause: the scores were divided by sqrt(d_k)"),
    # the ratio sentence must name S (= 7), not some product of other sizes
    (context_as_a_mean, ("Likely cause: the context was divided by S", "1/7 of the expected", "7 = S is the size of axis S")),
    (dot_product_of_projections, "Likely cause: this is a dot-product score"),
    (scaled_dot_product_of_projections, "Likely cause: this is a dot-product score"),
    (not_started, "not implemented yet"),
]


def test_reference_matches_an_independent_numpy_version():
    exercise = EXERCISES[NAME]
    for key in jax.random.split(jax.random.key(0), 10):
        args = exercise.inputs(key)
        for got, want in zip(exercise.reference(*args), attention_numpy_loops(*args), strict=True):
            np.testing.assert_allclose(np.asarray(got), want, rtol=1e-4, atol=1e-5)


def test_inputs_always_hold_a_full_row_a_padded_row_and_no_empty_row():
    exercise = EXERCISES[NAME]
    for key in jax.random.split(jax.random.key(0), exercise.n_trials):
        mask = np.asarray(exercise.inputs(key)[2])
        lengths = mask.sum(axis=1)
        assert mask.shape == (3, 7) and mask.dtype == np.bool_
        assert lengths.max() == 7 and lengths.min() <= 2 and lengths.min() >= 1
        # padding sits at the end: each row is some Trues, then only Falses
        assert all((row[: n] & ~row[n:].any()).all() for row, n in zip(mask, lengths, strict=True))

