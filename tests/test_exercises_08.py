"""Notebook 08's exercise (top-p on probabilities): typical wrong solutions and their hints.

Each wrong solution is written the way a learner might write it. ``WRONG`` pairs it with the
text its message must contain: "Likely cause: ..." from the exercise's diagnosis where it
recognises the mistake, else the checker's own wording.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnlab.exercises import EXERCISES, check_exercise

NAME = "top_p"


def nucleus_loop(probs, top_p):
    """Independent float64 reference, one row and one token at a time."""
    probs = np.asarray(probs, np.float64)
    out = np.zeros_like(probs)
    for b, row in enumerate(probs):
        total = 0.0
        for i in np.argsort(-row, kind="stable"):
            out[b, i] = row[i]
            total += row[i]
            if total >= top_p:
                break
        out[b] /= out[b].sum()
    return out


# --- right solutions, written in different ways ------------------------------------------------


def right_sorted_cumsum(probs, top_p):
    order = jnp.argsort(-probs, axis=-1)
    sorted_probs = jnp.take_along_axis(probs, order, axis=-1)
    mass_before = jnp.cumsum(sorted_probs, axis=-1) - sorted_probs
    keep_sorted = mass_before < top_p
    keep = jnp.zeros_like(keep_sorted).at[jnp.arange(probs.shape[0])[:, None], order].set(
        keep_sorted)
    kept = jnp.where(keep, probs, 0.0)
    return kept / kept.sum(axis=-1, keepdims=True)


def right_threshold(probs, top_p):
    sorted_probs = jnp.sort(probs, axis=-1)[..., ::-1]
    mass_before = jnp.cumsum(sorted_probs, axis=-1) - sorted_probs
    n_kept = jnp.sum(mass_before < top_p, axis=-1, keepdims=True)
    smallest_kept = jnp.take_along_axis(sorted_probs, n_kept - 1, axis=-1)
    kept = jnp.where(probs >= smallest_kept, probs, 0.0)
    return kept / kept.sum(axis=-1, keepdims=True)


def right_numpy_loop(probs, top_p):
    return nucleus_loop(probs, top_p).astype(np.float32)


def right_shifted_mask(probs, top_p):
    """The "shift the mask right by one" form: always keep the first sorted token."""
    order = np.argsort(-np.asarray(probs), axis=-1)
    sorted_probs = np.take_along_axis(np.asarray(probs), order, axis=-1)
    over = np.cumsum(sorted_probs, axis=-1) >= top_p
    remove = np.concatenate([np.zeros_like(over[:, :1]), over[:, :-1]], axis=-1)
    out = np.zeros_like(sorted_probs)
    np.put_along_axis(out, order, np.where(remove, 0.0, sorted_probs), axis=-1)
    return out / out.sum(axis=-1, keepdims=True)


RIGHT = [right_sorted_cumsum, right_threshold, right_numpy_loop, right_shifted_mask]


# --- typical wrong solutions -------------------------------------------------------------------


def _sorted(probs, descending=True):
    order = jnp.argsort(-probs if descending else probs, axis=-1)
    return order, jnp.take_along_axis(probs, order, axis=-1)


def _unsort(mask_sorted, order):
    rows = jnp.arange(order.shape[0])[:, None]
    return jnp.zeros_like(mask_sorted).at[rows, order].set(mask_sorted)


def _renormalise(probs, keep):
    kept = jnp.where(keep, probs, 0.0)
    return kept / kept.sum(axis=-1, keepdims=True)


def drops_the_crossing_token(probs, top_p):
    """cumsum < top_p, but at least the most likely token is kept."""
    order, sorted_probs = _sorted(probs)
    keep_sorted = (jnp.cumsum(sorted_probs, axis=-1) < top_p).at[:, 0].set(True)
    return _renormalise(probs, _unsort(keep_sorted, order))


def strict_cumsum(probs, top_p):
    """cumsum < top_p: drops the crossing token, and keeps nothing (0/0) for a small top_p."""
    order, sorted_probs = _sorted(probs)
    return _renormalise(probs, _unsort(jnp.cumsum(sorted_probs, axis=-1) < top_p, order))


def keeps_nothing_quietly(probs, top_p):
    """cumsum <= top_p, with a "safe" division that returns zeros when nothing is kept."""
    order, sorted_probs = _sorted(probs)
    kept = jnp.where(_unsort(jnp.cumsum(sorted_probs, axis=-1) <= top_p, order), probs, 0.0)
    total = kept.sum(axis=-1, keepdims=True)
    return jnp.where(total > 0, kept / jnp.where(total > 0, total, 1.0), 0.0)


def forgot_to_renormalise(probs, top_p):
    order, sorted_probs = _sorted(probs)
    keep = _unsort(jnp.cumsum(sorted_probs, axis=-1) - sorted_probs < top_p, order)
    return jnp.where(keep, probs, 0.0)


def renormalised_with_softmax(probs, top_p):
    order, sorted_probs = _sorted(probs)
    keep = _unsort(jnp.cumsum(sorted_probs, axis=-1) - sorted_probs < top_p, order)
    return jax.nn.softmax(jnp.where(keep, probs, -jnp.inf), axis=-1)


def sorted_ascending(probs, top_p):
    sorted_probs = jnp.sort(probs, axis=-1)  # ascending: the least likely first
    mass_before = jnp.cumsum(sorted_probs, axis=-1) - sorted_probs
    n_kept = jnp.sum(mass_before < top_p, axis=-1, keepdims=True)
    keep = probs <= jnp.take_along_axis(sorted_probs, n_kept - 1, axis=-1)
    return _renormalise(probs, keep)


def mask_left_in_sorted_order(probs, top_p):
    _, sorted_probs = _sorted(probs)
    keep_sorted = jnp.cumsum(sorted_probs, axis=-1) - sorted_probs < top_p
    return _renormalise(probs, keep_sorted)  # position i of the sorted list is not token i


def cumsum_over_the_batch(probs, top_p):
    order, sorted_probs = _sorted(probs)
    mass_before = jnp.cumsum(sorted_probs, axis=0) - sorted_probs  # axis 0: down the batch
    return _renormalise(probs, _unsort(mass_before < top_p, order))


def minus_inf_for_filtered_tokens(probs, top_p):
    order, sorted_probs = _sorted(probs)
    keep = _unsort(jnp.cumsum(sorted_probs, axis=-1) - sorted_probs < top_p, order)
    return jnp.where(keep, probs / jnp.where(keep, probs, 0.0).sum(-1, keepdims=True), -jnp.inf)


def returns_the_mask(probs, top_p):
    order, sorted_probs = _sorted(probs)
    return _unsort(jnp.cumsum(sorted_probs, axis=-1) - sorted_probs < top_p, order)


def keeps_each_token_above_top_p(probs, top_p):
    """A misreading: top_p as a threshold on each probability."""
    keep = (probs >= top_p) | (probs == probs.max(axis=-1, keepdims=True))
    return _renormalise(probs, keep)


def one_token_too_many(probs, top_p):
    """The mask shifted twice: keeps the crossing token and the one after it."""
    order, sorted_probs = _sorted(probs)
    mass_before = jnp.cumsum(sorted_probs, axis=-1) - sorted_probs
    keep_sorted = jnp.concatenate([jnp.ones_like(mass_before[:, :1], bool),
                                   mass_before[:, :-1] < top_p], axis=-1)
    return _renormalise(probs, _unsort(keep_sorted, order))


def softmax_of_probs_first(probs, top_p):
    """Treats probs as logits: a softmax before sorting (flatter, so a bigger nucleus)."""
    order, sorted_probs = _sorted(jax.nn.softmax(probs, axis=-1))
    keep = _unsort(jnp.cumsum(sorted_probs, axis=-1) - sorted_probs < top_p, order)
    return _renormalise(probs, keep)


def divides_by_top_p(probs, top_p):
    order, sorted_probs = _sorted(probs)
    keep = _unsort(jnp.cumsum(sorted_probs, axis=-1) - sorted_probs < top_p, order)
    return jnp.where(keep, probs, 0.0) / top_p


def top_p_share_of_the_vocabulary(probs, top_p):
    """A misreading: keep the top_p · V most likely tokens (a top-k)."""
    k = max(1, int(top_p * probs.shape[-1]))
    return _renormalise(probs, probs >= jnp.sort(probs, axis=-1)[:, -k:][:, :1])


def not_started(probs, top_p):
    raise NotImplementedError


def forgot_to_return(probs, top_p):
    _renormalise(probs, probs > 0)


LIKELY = "Likely cause: "
WRONG = [
    ("drops the crossing token", drops_the_crossing_token,
     (LIKELY + "Your function drops the token that crosses top_p", "cumsum - probs < top_p"),
     "keeps no token"),
    ("cumsum < top_p", strict_cumsum,
     (LIKELY + "Your function drops the token that crosses top_p",
      "On a test row whose largest probability is 0.4, top_p = 0.3 keeps no token at all"),
     None),
    ("keeps nothing, quietly", keeps_nothing_quietly,
     (LIKELY + "Your function drops the token that crosses top_p", "keeps no token at all"),
     None),
    ("forgot to renormalise", forgot_to_renormalise,
     (LIKELY + "Your function keeps the right tokens but does not renormalise",
      "its output adds up to 0.65, not 1"), None),
    ("softmax of probabilities", renormalised_with_softmax,
     (LIKELY + "Your function keeps the right tokens, but renormalises with a softmax",),
     None),
    ("sorted ascending", sorted_ascending,
     (LIKELY + "Your function keeps the least likely tokens", "ascending", "argsort(-probs)"),
     None),
    ("mask left in sorted order", mask_left_in_sorted_order,
     (LIKELY + "Your function keeps the right number of tokens, but at the wrong places",),
     None),
    ("cumsum over the batch", cumsum_over_the_batch,
     (LIKELY + "Your function gives different answers for identical rows", "axis=-1"), None),
    ("-inf for filtered tokens", minus_inf_for_filtered_tokens,
     (LIKELY + "Your function gives -inf to the filtered tokens", "probability 0"), None),
    ("returns the mask", returns_the_mask,
     ("has boolean dtype bool; expected a floating-point dtype",), LIKELY),
    ("top_p as a threshold per token", keeps_each_token_above_top_p,
     (LIKELY + "Your function compares each probability with top_p on its own",
      "adds the probabilities up"), None),
    ("one token too many", one_token_too_many,
     (LIKELY + "Your function keeps one token too many", "cumsum - probs < top_p"), None),
    ("softmax of probs first", softmax_of_probs_first,
     (LIKELY + "Your function applies a softmax to probs, as if they were logits",), None),
    ("divides by top_p", divides_by_top_p,
     (LIKELY + "Your function keeps the right tokens, but on a test row with top_p = 0.6 its "
      "output adds up to 1.08, not 1", "not by top_p"), None),
    ("top_p share of the vocabulary", top_p_share_of_the_vocabulary,
     (LIKELY + "Your function keeps a fixed share of the vocabulary", "top-k"), None),
    ("not started", not_started, ("not implemented yet",), LIKELY),
    ("forgot to return", forgot_to_return, ("returned None — did you forget to return?",),
     LIKELY),
]


@pytest.mark.parametrize("fn", RIGHT, ids=[f.__name__ for f in RIGHT])
def test_right_solutions_pass(fn):
    result = check_exercise(NAME, fn)
    assert result.passed, result.message


@pytest.mark.parametrize(("mistake", "fn", "hints", "absent"), WRONG, ids=[w[0] for w in WRONG])
def test_typical_mistake_gets_its_hint(mistake, fn, hints, absent):
    with np.errstate(all="ignore"):
        result = check_exercise(NAME, fn)
    assert not result.passed
    for hint in hints:
        assert hint in result.message, result.message
    if absent:
        assert absent not in result.message, result.message


def test_reference_matches_an_independent_loop():
    exercise = EXERCISES[NAME]
    for key in jax.random.split(jax.random.key(0), exercise.n_trials):
        probs, top_p = exercise.inputs(key)
        np.testing.assert_allclose(np.asarray(exercise.reference(probs, top_p)),
                                   nucleus_loop(probs, top_p), rtol=1e-5, atol=1e-6)


def test_inputs_cover_a_top_p_below_the_largest_probability_and_top_p_one():
    """The default trials include the cases the typical mistakes get wrong."""
    exercise = EXERCISES[NAME]
    below, one, between = False, False, False
    for key in jax.random.split(jax.random.key(0), exercise.n_trials):
        probs, top_p = exercise.inputs(key)
        assert probs.shape == (4, 12) and isinstance(top_p, float) and 0 < top_p <= 1
        np.testing.assert_allclose(np.asarray(probs).sum(-1), 1.0, rtol=1e-5)
        below |= bool(top_p < np.asarray(probs).max(-1).min())
        one |= top_p == 1.0
        between |= 0.3 <= top_p < 1.0
    assert below and one and between


def test_the_diagnosis_stays_silent_on_a_right_solution():
    assert EXERCISES[NAME].diagnose(right_threshold) is None
    assert EXERCISES[NAME].diagnose(not_started) is None


# The lists tests/test_exercises.py looks for (name, function, hints it must get, text it must not).
WRONG_SOLUTIONS_08 = [(fn, hints) for _, fn, hints, _ in WRONG]
RIGHT_SOLUTIONS_08 = RIGHT
