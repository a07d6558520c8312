"""Exercise 04 (scaled dot-product attention): the reference, its inputs, and what the checker
says to typical wrong solutions.

``WRONG_SOLUTIONS_04`` and ``RIGHT_SOLUTIONS_04`` have the shape of the per-exercise lists in
the project's exercise tests: ``[(wrong function, text or texts its hint must contain)]`` and
``[correct function written another way]``. The texts are pieces of the checker's wording
(attnlab/checks/) that name the mistake or where it shows.
"""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnlab.exercises import EXERCISES, check_exercise

NAME = "scaled_dot_product_attention"


def reference_np(q, k, v, mask=None):
    """Independent float64 NumPy version: softmax over the allowed keys only, zeros if none."""
    q, k, v = (np.asarray(a, np.float64) for a in (q, k, v))
    T, S = q.shape[0], k.shape[0]
    allowed = np.ones((T, S), bool) if mask is None else np.asarray(mask)
    weights = np.zeros((T, S))
    for t in range(T):
        keep = allowed[t]
        if keep.any():
            scores = k[keep] @ q[t] / math.sqrt(q.shape[1])
            e = np.exp(scores - scores.max())
            weights[t, keep] = e / e.sum()
    return weights @ v, weights


def test_reference_matches_an_independent_numpy_version():
    exercise = EXERCISES[NAME]
    for key in jax.random.split(jax.random.key(0), 20):
        q, k, v, mask = exercise.inputs(key)
        out, weights = exercise.reference(q, k, v, mask)
        expected_out, expected_weights = reference_np(q, k, v, mask)
        np.testing.assert_allclose(np.asarray(out), expected_out, atol=1e-5)
        np.testing.assert_allclose(np.asarray(weights), expected_weights, atol=1e-5)


def test_inputs_cover_no_mask_causal_random_and_a_fully_masked_row():
    """The default trials (seed 0) include every kind of mask the task mentions."""
    exercise = EXERCISES[NAME]
    kinds = set()
    for key in jax.random.split(jax.random.key(0), exercise.n_trials):
        q, k, v, mask = exercise.inputs(key)
        assert q.shape == k.shape == v.shape == (6, 4)
        if mask is None:
            kinds.add("none")
            continue
        mask = np.asarray(mask)
        assert mask.dtype == np.bool_ and mask.shape == (6, 6)
        if np.array_equal(mask, np.tril(np.ones((6, 6), bool))):
            kinds.add("causal")
        elif (~mask.any(axis=1)).any():
            kinds.add("fully masked row")
        else:
            kinds.add("random")
    assert kinds == {"none", "causal", "random", "fully masked row"}


# --- right solutions, written in different ways -----------------------------------------------


def attention_finite_fill(q, k, v, mask=None):
    scores = q @ k.T / jnp.sqrt(q.shape[-1])
    if mask is not None:
        scores = jnp.where(mask, scores, -1e30)
    weights = jax.nn.softmax(scores, axis=-1)
    if mask is not None:
        weights = jnp.where(mask, weights, 0.0)
    return weights @ v, weights


def attention_einsum_nan_to_zero(q, k, v, mask=None):
    scores = jnp.einsum("td,sd->ts", q, k) / math.sqrt(q.shape[-1])
    if mask is not None:
        scores = jnp.where(mask, scores, -jnp.inf)
    weights = jnp.nan_to_num(jax.nn.softmax(scores, axis=-1))  # 0/0 rows -> 0
    return jnp.einsum("ts,sd->td", weights, v), weights


def attention_numpy_by_hand(q, k, v, mask=None):
    q, k, v = (np.asarray(a, np.float64) for a in (q, k, v))
    allowed = np.ones((q.shape[0], k.shape[0]), bool) if mask is None else np.asarray(mask)
    scores = np.where(allowed, q @ k.T / np.sqrt(q.shape[1]), -np.inf)
    top = np.where(allowed.any(axis=1, keepdims=True), scores.max(axis=1, keepdims=True), 0.0)
    e = np.where(allowed, np.exp(scores - top), 0.0)
    total = e.sum(axis=1, keepdims=True)
    weights = np.divide(e, total, out=np.zeros_like(e), where=total > 0)
    return weights @ v, weights


RIGHT_SOLUTIONS_04 = [attention_finite_fill, attention_einsum_nan_to_zero, attention_numpy_by_hand]


# --- typical wrong solutions ---------------------------------------------------------------------


def _attend(scores, v, mask, *, fill=-1e30, zero_masked=True, axis=-1, invert=False):
    """Shared tail of the wrong solutions below: mask, softmax, weighted sum."""
    if mask is not None:
        keep = ~mask if invert else mask
        scores = jnp.where(keep, scores, fill)
    weights = jax.nn.softmax(scores, axis=axis)
    if mask is not None and zero_masked:
        weights = jnp.where(~mask if invert else mask, weights, 0.0)
    return weights @ v, weights


def forgot_the_scaling(q, k, v, mask=None):
    return _attend(q @ k.T, v, mask)


def scaled_by_d_not_sqrt_d(q, k, v, mask=None):
    return _attend(q @ k.T / q.shape[-1], v, mask)


def softmax_over_the_queries(q, k, v, mask=None):  # axis=0: each key's column sums to 1
    return _attend(q @ k.T / math.sqrt(q.shape[-1]), v, mask, axis=0)


def mask_ignored(q, k, v, mask=None):
    return _attend(q @ k.T / math.sqrt(q.shape[-1]), v, None)


def mask_inverted(q, k, v, mask=None):  # treats True as "hidden"
    return _attend(q @ k.T / math.sqrt(q.shape[-1]), v, mask, invert=True)


def minus_inf_fill(q, k, v, mask=None):  # a fully masked row becomes 0/0 = NaN
    return _attend(q @ k.T / math.sqrt(q.shape[-1]), v, mask, fill=-jnp.inf, zero_masked=False)


def masked_weights_never_zeroed(q, k, v, mask=None):  # a fully masked row averages all values
    return _attend(q @ k.T / math.sqrt(q.shape[-1]), v, mask, zero_masked=False)


def zero_fill(q, k, v, mask=None):  # 0 is an ordinary score
    return _attend(q @ k.T / math.sqrt(q.shape[-1]), v, mask, fill=0.0, zero_masked=False)


def scores_times_mask(q, k, v, mask=None):
    scores = q @ k.T / math.sqrt(q.shape[-1])
    weights = jax.nn.softmax(scores if mask is None else scores * mask, axis=-1)
    return weights @ v, weights


def weights_times_mask(q, k, v, mask=None):  # masked after the softmax, not renormalised
    weights = jax.nn.softmax(q @ k.T / math.sqrt(q.shape[-1]), axis=-1)
    if mask is not None:
        weights = weights * mask
    return weights @ v, weights


def divided_by_sqrt_of_keys(q, k, v, mask=None):  # sqrt(S), the number of keys
    return _attend(q @ k.T / math.sqrt(k.shape[0]), v, mask)


def scaled_after_the_softmax(q, k, v, mask=None):
    output, weights = _attend(q @ k.T, v, mask)
    weights = weights / math.sqrt(q.shape[-1])
    return weights @ v, weights


def weights_and_output_swapped(q, k, v, mask=None):
    output, weights = _attend(q @ k.T / math.sqrt(q.shape[-1]), v, mask)
    return weights, output


def forgot_to_return(q, k, v, mask=None):
    _attend(q @ k.T / math.sqrt(q.shape[-1]), v, mask)


def k_not_transposed(q, k, v, mask=None):
    return _attend(q @ k / math.sqrt(q.shape[-1]), v, mask)


def not_started(q, k, v, mask=None):
    raise NotImplementedError


# [(wrong function, text or texts its hint must contain)]. The exercise's known mistakes
# (attnlab.exercises) name the cause as "Likely cause: ..."; the rest come from the checker.
WRONG_SOLUTIONS_04 = [
    (forgot_the_scaling, ("Likely cause: the scores were not scaled",
                          "the first returned value (output[0]) differs")),
    (scaled_by_d_not_sqrt_d, "Likely cause: the scores were divided by d, not by sqrt(d)"),
    (softmax_over_the_queries, "Likely cause: the softmax ran over the queries"),
    (mask_ignored, "Likely cause: the mask was not applied"),
    (mask_inverted, "Likely cause: the mask was read the wrong way round"),
    (minus_inf_fill, ("Likely cause: masked scores were filled with -inf",
                      "(output[0]) has NaN", "where the reference has a number (0)",
                      "An infinity written on purpose", "later became NaN in")),
    (zero_fill, "Likely cause: masked scores were set to 0"),
    (scores_times_mask, "Likely cause: masked scores were set to 0"),
    (weights_times_mask, "Likely cause: the weights were multiplied by the mask"),
    (divided_by_sqrt_of_keys, "Likely cause: the scores were divided by sqrt(S)"),
    (scaled_after_the_softmax, "Likely cause: the weights were divided by sqrt(d) after"),
    (masked_weights_never_zeroed, ("Likely cause: a query with no allowed key", "expected 0")),
    (weights_and_output_swapped, ("(output[0]) has shape (6, 6); expected (6, 4)",
                                  "the shape of the second returned value (output[1]): are the "
                                  "returned values in the wrong order?")),
    (forgot_to_return, "did you forget to return?"),
    (k_not_transposed, ("raised TypeError", "q @ k / math.sqrt")),
    (not_started, "not implemented yet"),
]



def test_minus_inf_fill_fails_only_where_a_row_allows_nothing():
    """The -inf fill is right on every other trial; the failing trial's mask has an empty row."""
    result = check_exercise(NAME, minus_inf_fill)
    q, k, v, mask = result.inputs
    assert (~np.asarray(mask).any(axis=1)).any()


def test_the_sqrt_s_mistake_is_visible_on_these_inputs():
    """Dividing by sqrt(S) instead of sqrt(d) only differs when S != d."""
    q, k, v, mask = EXERCISES[NAME].inputs(jax.random.key(0))
    assert k.shape[0] != q.shape[-1]


def test_a_minus_inf_fill_zeroed_afterwards_passes():
    """The notebook says -inf with the weights zeroed afterwards works for the forward pass."""
    result = check_exercise(NAME, lambda q, k, v, mask=None: _attend(
        q @ k.T / math.sqrt(q.shape[-1]), v, mask, fill=-jnp.inf))
    assert result.passed, result.message


@pytest.mark.parametrize("wrong", [forgot_the_scaling, mask_inverted, minus_inf_fill],
                         ids=lambda f: f.__name__)
def test_the_failing_trial_says_which_kind_of_mask_it_had(wrong):
    result = check_exercise(NAME, wrong)
    mask = result.inputs[3]
    if mask is None:
        kind = "The mask was None"
    elif np.array_equal(np.asarray(mask), np.tril(np.ones((6, 6), bool))):
        kind = "The mask was causal"
    elif (~np.asarray(mask).any(axis=1)).any():
        row = int(np.flatnonzero(~np.asarray(mask).any(axis=1))[0])
        kind = f"query row {row} may attend to nothing"
    else:
        kind = "The mask was random (each query may attend at least to itself)"
    assert kind in result.message, result.message


def _loss(fill, *, additive):
    """Sum of the attention output, masked rows zeroed; the mask is applied with jnp.where
    (``additive=False``) or added to the scores as 0 / fill (``additive=True``)."""

    def loss(q, k, v, mask):
        scores = q @ k.T / math.sqrt(q.shape[-1])
        scores = scores + jnp.where(mask, 0.0, fill) if additive else jnp.where(mask, scores, fill)
        weights = jnp.where(mask, jax.nn.softmax(scores, axis=-1), 0.0)
        return (weights @ v).sum()

    return loss


def test_minus_inf_added_to_the_scores_makes_nan_gradients_and_a_finite_fill_does_not():
    """Notebook 04's claim: zeroed afterwards, -inf gives the right forward pass; added to the
    scores, it still puts NaN into the gradients of a row that may attend to nothing; a large
    finite number never does."""
    q, k, v = (jax.random.normal(key, (3, 4)) for key in jax.random.split(jax.random.key(0), 3))
    mask = jnp.tril(jnp.ones((3, 3), bool)).at[1].set(False)  # row 1 may attend to nothing

    def has_nan_gradient(loss):
        return any(np.isnan(np.asarray(g)).any()
                   for g in jax.grad(loss, argnums=(0, 1, 2))(q, k, v, mask))

    for additive in (False, True):
        assert np.isfinite(float(_loss(-jnp.inf, additive=additive)(q, k, v, mask)))
        assert not has_nan_gradient(_loss(-1e30, additive=additive))
    assert has_nan_gradient(_loss(-jnp.inf, additive=True))
    assert not has_nan_gradient(_loss(-jnp.inf, additive=False))
