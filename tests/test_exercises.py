"""Tests for attnlab.exercises: each exercise's checker against the mistakes learners make.

``WRONG_SOLUTIONS`` holds, for every exercise in ``EXERCISES``, typical wrong solutions, each
with the piece(s) of hint text the checker must give it; ``RIGHT_SOLUTIONS`` holds correct
solutions written in other ways, which must pass. A notebook that adds an exercise adds its
two lists here, in the same shape; a test fails until it does.

A hint may state a ratio ("16× the expected one") only when the expected text itself is
about that ratio: a ratio that names no cause means nothing to a learner.
"""

import importlib
import re
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from attnlab.exercises import EXERCISES, Exercise, check_exercise

# --- 07 · cross-entropy ----------------------------------------------------------------------


def _picked(values, targets):
    """values[b, t, targets[b, t]]: (B, T, V), (B, T) -> (B, T)."""
    return jnp.take_along_axis(values, targets[..., None], axis=-1)[..., 0]


def ce_log_sum_exp(logits, targets):
    log_probs = logits - jax.nn.logsumexp(logits, axis=-1, keepdims=True)
    return -_picked(log_probs, targets).mean()


def ce_one_hot(logits, targets):
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    return -(log_probs * jax.nn.one_hot(targets, logits.shape[-1])).sum(axis=-1).mean()


def ce_numpy_float64(logits, targets):
    z = np.asarray(logits, dtype=np.float64)
    z = z - z.max(axis=-1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return -np.take_along_axis(log_probs, np.asarray(targets)[..., None], axis=-1).mean()


@jax.jit
def ce_jitted_optax(logits, targets):
    return optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()


def forgot_the_mean(logits, targets):
    return -_picked(jax.nn.log_softmax(logits), targets).sum()


def summed_over_the_vocabulary(logits, targets):  # every token's -log p, not the target's
    return -jax.nn.log_softmax(logits).sum(axis=-1).mean()


def mean_over_time_only_then_summed(logits, targets):
    return -_picked(jax.nn.log_softmax(logits), targets).mean(axis=-1).sum()


def mean_over_one_axis_only(logits, targets):
    return -_picked(jax.nn.log_softmax(logits), targets).mean(axis=0)


def log_sum_exp_over_the_wrong_axis(logits, targets):  # normalises over T, not V
    log_probs = logits - jax.nn.logsumexp(logits, axis=1, keepdims=True)
    return -_picked(log_probs, targets).mean()


def one_hot_then_mean_over_everything(logits, targets):  # averages 95 zeros into each row
    log_probs = jax.nn.log_softmax(logits)
    return -(log_probs * jax.nn.one_hot(targets, logits.shape[-1])).mean()


def missing_minus(logits, targets):
    return _picked(jax.nn.log_softmax(logits), targets).mean()


def forgot_the_log_sum_exp(logits, targets):
    return -_picked(logits, targets).mean()


def naive_softmax(logits, targets):  # exp(200·z) overflows: inf/inf = NaN
    e = jnp.exp(logits)
    probs = e / e.sum(axis=-1, keepdims=True)
    return -jnp.log(_picked(probs, targets)).mean()


def log_sum_exp_by_hand(logits, targets):  # log(sum(exp)) overflows to +inf
    return (jnp.log(jnp.exp(logits).sum(axis=-1)) - _picked(logits, targets)).mean()


def log_of_softmax(logits, targets):  # p underflows to 0 for unlikely targets: -log 0 = inf
    probs = jax.nn.softmax(logits, axis=-1)
    return -jnp.log(_picked(probs, targets)).mean()


def log_of_softmax_plus_epsilon(logits, targets):  # no inf, but each loss is capped at 20.7
    probs = jax.nn.softmax(logits, axis=-1)
    return -jnp.log(_picked(probs, targets) + 1e-9).mean()


def minus_the_max(logits, targets):  # the stable-softmax shift, mistaken for the normaliser
    return -_picked(logits - jnp.max(logits, axis=-1, keepdims=True), targets).mean()


def fancy_indexing(logits, targets):  # lp[:, :, targets] has shape (B, T, B, T)
    log_probs = jax.nn.log_softmax(logits, axis=-1)
    return -log_probs[:, :, targets].mean()


def targets_shifted_again(logits, targets):
    return -_picked(jax.nn.log_softmax(logits[:, :-1]), targets[:, 1:]).mean()


def bits_instead_of_nats(logits, targets):
    return -_picked(jax.nn.log_softmax(logits), targets).mean() / jnp.log(2.0)


def log10_instead_of_ln(logits, targets):
    return -_picked(jax.nn.log_softmax(logits), targets).mean() / jnp.log(10.0)


def logsumexp_without_keepdims(logits, targets):
    log_probs = logits - jax.nn.logsumexp(logits, axis=-1)
    return -_picked(log_probs, targets).mean()


def keepdims_on_one_side_only(logits, targets):
    lse = jax.nn.logsumexp(logits, axis=-1, keepdims=True)
    return (lse - _picked(logits, targets)).mean()


def log_probs_not_picked(logits, targets):  # broadcasts to (B, T, V) and returns it
    return -(logits - jax.nn.logsumexp(logits, axis=-1, keepdims=True))


def forgot_to_return(logits, targets):
    -_picked(jax.nn.log_softmax(logits), targets).mean()


def per_position_losses(logits, targets):
    return -_picked(jax.nn.log_softmax(logits), targets)


def not_started(logits, targets):
    raise NotImplementedError


RIGHT_SOLUTIONS: dict[str, list[Callable]] = {
    "cross_entropy": [ce_log_sum_exp, ce_one_hot, ce_numpy_float64, ce_jitted_optax],
}

# name -> [(wrong function, text (or texts) its hint must contain)]
WRONG_SOLUTIONS: dict[str, list[tuple[Callable, str | tuple[str, ...]]]] = {
    "cross_entropy": [
        (forgot_the_mean, (
            "Your value is 16× the expected one",
            "16 = B·T = 2 × 8 is the size of axes B and T of logits: a sum over those axes "
            "where a mean was wanted",
        )),
        (summed_over_the_vocabulary, "output differs from the reference: your value"),
        (mean_over_time_only_then_summed, (
            "Your value is 2× the expected one",
            "2 = B is the size of axis B of logits: a sum over that axis where a mean was wanted",
        )),
        (mean_over_one_axis_only, (
            "returned shape (8,); expected () (a single number). (8,) is targets without its "
            "axis B. A single number is wanted: reduce over every axis"
        )),
        (log_sum_exp_over_the_wrong_axis, (
            "Likely cause: the log-softmax normalised over axis T (axis 1), not over the vocabulary",
            "output differs from the reference: your value",
        )),
        (one_hot_then_mean_over_everything, (
            "Your value is 1/96 of the expected one",
            "96 = V is the size of axis V of logits: a mean over that axis where a sum was wanted",
        )),
        (missing_minus, "Your value is the expected one with the opposite sign"),
        (forgot_the_log_sum_exp, (
            "Likely cause: the target's raw logit was used as its log-probability",
            "output differs from the reference: your value",
        )),
        (minus_the_max, (
            "Likely cause: the max was subtracted instead of the log-sum-exp",
            "output differs from the reference: your value",
        )),
        (log_of_softmax_plus_epsilon, (
            "Likely cause: log(p + 1e-09) of a softmax: the epsilon caps each position's loss at "
            "-log(1e-09) = 20.7 nats",
            "output differs from the reference: your value",
        )),
        (fancy_indexing, (
            "Likely cause: log_probs[:, :, targets] picks every target at every position "
            "(a (B, T, B, T) block)",
            "output differs from the reference: your value",
        )),
        (targets_shifted_again, (
            "Likely cause: the targets were shifted again: targets[b, t] already is the token that "
            "follows position t",
        )),
        (naive_softmax, (
            "output is NaN where the reference has a number",
            "The first inf appears in exp (line ",
            "exp of a large number overflows to inf (float32: exp(x) = inf for x > 88.7",
            "and then inf/inf or inf - inf gives NaN",
        )),
        (log_sum_exp_by_hand, (
            "output is +inf where the reference has a number",
            "The first inf appears in exp (line ",
            "exp of a large number overflows to inf",
        )),
        (log_of_softmax, (
            "output is +inf where the reference has a number",
            "The first inf appears in log (line ",
            "log(0) = -inf: a positive number underflowed to 0",
            "jax.nn.log_softmax",
        )),
        (bits_instead_of_nats, (
            "Your value is 1.443× the expected one",
            "1.443 = 1/ln 2: log base 2 (bits) where the natural log (nats) was wanted",
        )),
        (log10_instead_of_ln, (
            "Your value is 0.4343× the expected one", "0.4343 = 1/ln 10: log base 10"
        )),
        (logsumexp_without_keepdims, (
            "raised ValueError: Incompatible shapes for broadcasting",
            "(2, 8) is the shape of targets (B, T), or logits without its axis V.",
            "unless you pass keepdims=True",
        )),
        (keepdims_on_one_side_only, (
            "(2, 8, 1) is logits with its axis V kept as size 1 (keepdims=True).",
            "(2, 8) is the shape of targets (B, T), or logits without its axis V.",
        )),
        (log_probs_not_picked, (
            "returned shape (2, 8, 96); expected () (a single number). (2, 8, 96) is the "
            "shape of logits (B, T, V)."
        )),
        (forgot_to_return, "returned None — did you forget to return?"),
        (per_position_losses, (
            "returned shape (2, 8); expected () (a single number). (2, 8) is the shape of "
            "targets (B, T)"
        )),
        (not_started, "not implemented yet"),
    ],
}

# A ratio claim in a hint ("16× the expected", "1/96 of the expected").
_RATIO = re.compile(r"(-?\d[\d.]*×|1/\d+ of) the expected")


# --- the lists themselves ---------------------------------------------------------------------


def _lists_of(name: str) -> tuple[list, list]:
    """An exercise's (wrong, right) solution lists: kept here, or, for the exercises of
    notebook NN, in ``test_exercises_NN.py`` beside this file (which runs them through the
    checker itself), as ``WRONG_SOLUTIONS_NN`` / ``RIGHT_SOLUTIONS_NN`` lists or as
    ``WRONG_SOLUTIONS`` / ``RIGHT_SOLUTIONS`` dicts keyed by exercise name."""
    if name in WRONG_SOLUTIONS:
        return WRONG_SOLUTIONS[name], RIGHT_SOLUTIONS.get(name, [])
    nb = EXERCISES[name].notebook
    try:
        module = importlib.import_module(f"test_exercises_{nb}")
    except ImportError:
        return [], []
    lists = []
    for kind in ("WRONG", "RIGHT"):  # WRONG_SOLUTIONS_NN = [...] or WRONG_SOLUTIONS = {name: [...]}
        found = getattr(module, f"{kind}_SOLUTIONS_{nb}", None)
        if found is None:
            found = getattr(module, f"{kind}_SOLUTIONS", {}).get(name, [])
        lists.append(found)
    return lists[0], lists[1]


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_every_exercise_has_lists_of_wrong_and_right_solutions(name):
    wrong, right = _lists_of(name)
    assert len(wrong) >= 5, f"{name}: keep at least 5 typical wrong solutions with their hints"
    assert right, f"{name}: keep at least one correct solution written differently"


# --- the hints ----------------------------------------------------------------------------------


def _wrong_cases():
    for name in sorted(EXERCISES):
        for wrong, hint in _lists_of(name)[0]:
            hints = (hint,) if isinstance(hint, str) else tuple(hint)
            yield pytest.param(name, wrong, hints, id=f"{name}-{wrong.__name__}")


def _right_cases():
    for name in sorted(EXERCISES):
        for right in _lists_of(name)[1]:
            yield pytest.param(name, right, id=f"{name}-{right.__name__}")


@pytest.mark.parametrize(("name", "wrong", "hints"), list(_wrong_cases()))
def test_typical_wrong_solution_gets_its_hint(name, wrong, hints):
    with np.errstate(all="ignore"):
        result = check_exercise(name, wrong)
    assert not result.passed
    for hint in hints:
        assert hint in result.message
    if not any(_RATIO.search(hint) or "opposite sign" in hint for hint in hints):
        assert not _RATIO.search(result.message), "a ratio hint where none was expected"
        assert "opposite sign" not in result.message


@pytest.mark.parametrize(("name", "right"), list(_right_cases()))
def test_correct_solutions_written_differently_pass(name, right):
    result = check_exercise(name, right)
    assert result.passed, result.message


def test_overflow_and_log_of_zero_are_told_apart():
    overflow = check_exercise("cross_entropy", log_sum_exp_by_hand).message
    log_of_zero = check_exercise("cross_entropy", log_of_softmax).message
    assert "overflow" in overflow and "log(0)" not in overflow
    assert "log(0)" in log_of_zero and "overflow" not in log_of_zero


def test_a_ratio_is_named_only_when_further_trials_confirm_it():
    # The same wrong function as forgot_the_mean, but right from the second call on: the
    # 16× of the first trial is a coincidence of this one input, and is not named.
    calls = []

    def right_after_the_first_call(logits, targets):
        calls.append(1)
        return ce_log_sum_exp(logits, targets) * (16 if len(calls) == 1 else 1)

    message = check_exercise("cross_entropy", right_after_the_first_call).message
    assert "Trial 1 of 20" in message and "your value" in message
    assert not _RATIO.search(message)


# --- the registry -------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_exercise_passes_its_reference_and_fails_a_wrong_function(name):
    exercise = EXERCISES[name]
    assert isinstance(exercise, Exercise) and exercise.name == name
    assert check_exercise(name, exercise.reference).passed

    def off_by_one(*args, **kwargs):
        return jax.tree.map(lambda y: y + 1, exercise.reference(*args, **kwargs))

    result = check_exercise(name, off_by_one)
    assert not result.passed
    assert "differs from the reference" in result.message


def test_check_exercise_names_the_exercises_that_exist():
    with pytest.raises(KeyError, match="cross_entropy"):
        check_exercise("cross_entropie", ce_log_sum_exp)


def test_overrides_reach_the_checker():
    result = check_exercise("cross_entropy", ce_log_sum_exp, n_trials=3)
    assert result.passed and "all 3 random trials" in result.message
