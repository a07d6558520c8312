"""Exercise 04 (scaled dot-product attention): the reference, its inputs, and the hint each
typical wrong solution gets from ``check_exercise``.

The hints asserted here are the checker's current wording (attnlab/checks.py); each entry of
``WRONG`` names the mistake, a learner's version of it, and a piece of the hint it must get.
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
    keys = jax.random.split(jax.random.key(0), 20)
    for key in keys:
        q, k, v, mask = exercise.inputs(key)
        out, weights = exercise.reference(q, k, v, mask)
        expected_out, expected_weights = reference_np(q, k, v, mask)
        np.testing.assert_allclose(np.asarray(out), expected_out, atol=1e-5)
        np.testing.assert_allclose(np.asarray(weights), expected_weights, atol=1e-5)


def test_inputs_cover_no_mask_causal_random_and_a_fully_masked_row():
    """The default 20 trials (seed 0) must include every kind of mask the task mentions."""
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


# --- learners' solutions ------------------------------------------------------------------------


def solution(q, k, v, mask=None):
    d = q.shape[-1]
    scores = q @ k.T / jnp.sqrt(d)
    if mask is not None:
        scores = jnp.where(mask, scores, -1e30)
    weights = jax.nn.softmax(scores, axis=-1)
    if mask is not None:
        weights = jnp.where(mask, weights, 0.0)
    return weights @ v, weights


def learner(scores_of=None, axis=-1, masking="right", returns="right"):
    """A learner's attention with one mistake switched on."""

    def attention(q, k, v, mask=None):
        d = q.shape[-1]
        scores = q @ k.T / jnp.sqrt(d) if scores_of is None else scores_of(q, k, d)
        if mask is not None and masking != "ignored":
            keep = ~mask if masking == "inverted" else mask
            scores = jnp.where(keep, scores, -jnp.inf if masking == "-inf" else -1e30)
        weights = jax.nn.softmax(scores, axis=axis)
        if mask is not None and masking in ("right", "inverted"):
            weights = jnp.where(~mask if masking == "inverted" else mask, weights, 0.0)
        if returns == "swapped":
            return weights, weights @ v
        if returns == "nothing":
            weights @ v  # computed, but never returned
            return None
        return weights @ v, weights

    return attention


WRONG = [
    ("forgot the scaling", learner(lambda q, k, d: q @ k.T), "output[0] differs from the reference"),
    ("scaled by d instead of sqrt(d)", learner(lambda q, k, d: q @ k.T / d),
     "output[0] differs from the reference"),
    ("softmax over the wrong axis", learner(axis=0), "output[0] differs from the reference"),
    ("mask ignored", learner(masking="ignored"), "output[0] differs from the reference"),
    ("mask inverted", learner(masking="inverted"), "output[0] differs from the reference"),
    ("-inf masking gives NaN on a fully masked row", learner(masking="-inf"),
     "has NaN"),
    ("large negative fill, weights never zeroed: a fully masked row averages all values",
     learner(masking="no zeroing"), "expected 0"),
    ("returns weights and output swapped", learner(returns="swapped"),
     "output[0] has shape (6, 6); expected (6, 4)"),
    ("forgot to return", learner(returns="nothing"), "did you forget to return?"),
    ("transposed k: q @ k instead of q @ k.T", learner(lambda q, k, d: q @ k / jnp.sqrt(d)),
     "raised TypeError"),
]


def test_a_right_solution_passes():
    result = check_exercise(NAME, solution)
    assert result.passed, result.message


@pytest.mark.parametrize("mistake,fn,hint", WRONG, ids=[w[0] for w in WRONG])
def test_typical_wrong_solutions_get_their_hint(mistake, fn, hint):
    result = check_exercise(NAME, fn)
    assert not result.passed, mistake
    assert hint in result.message, (mistake, result.message)


def test_the_nan_hint_points_at_the_fully_masked_row():
    """With -inf masking only the trials with a fully masked row fail, and the hint names NaN
    where the reference has 0 (the zero output of a query that may see nothing)."""
    result = check_exercise(NAME, learner(masking="-inf"))
    assert "where the reference has a number (0)" in result.message
    q, k, v, mask = result.inputs
    assert (~np.asarray(mask).any(axis=1)).any()
