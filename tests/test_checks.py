"""Tests for attnlab.checks: the exercise checker finds the first difference and says it."""

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnlab.checks import CheckResult, check_function, random_inputs

# --- learner/reference pairs ------------------------------------------------------------


def softmax_reference(x):
    return jax.nn.softmax(x, axis=-1)


def softmax_numpy(x):
    """The same softmax written another way: NumPy, float64, shifted by the row maximum."""
    x = np.asarray(x, dtype=np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def softmax_one_entry_off(x):
    y = np.array(softmax_reference(x))
    y[1, 2] += 0.25
    return y


def attention_reference(q, k, v):
    weights = jax.nn.softmax(q @ k.T / np.sqrt(q.shape[-1]), axis=-1)
    return weights @ v, weights


def attention_loop(q, k, v):
    """Attention one query at a time, in NumPy (the loop the notebooks teach with)."""
    q, k, v = (np.asarray(a, dtype=np.float64) for a in (q, k, v))
    outputs, rows = [], []
    for query in q:
        scores = k @ query / np.sqrt(len(query))
        w = np.exp(scores - scores.max())
        w /= w.sum()
        rows.append(w)
        outputs.append(w @ v)
    return np.stack(outputs), np.stack(rows)


SOFTMAX_INPUTS = random_inputs((3, 5))
ATTENTION_INPUTS = random_inputs(q=(4, 8), k=(6, 8), v=(6, 2))


def check_softmax(learner, **kwargs) -> CheckResult:
    return check_function(learner, softmax_reference, SOFTMAX_INPUTS, **kwargs)


# --- passing ------------------------------------------------------------------------------


def test_identical_function_passes():
    result = check_softmax(softmax_reference)
    assert result.passed and bool(result)
    assert "20" in result.message
    assert result.inputs is None


def test_numerically_equivalent_function_passes():
    assert check_softmax(softmax_numpy)


def test_tuple_outputs_written_differently_pass():
    assert check_function(attention_loop, attention_reference, ATTENTION_INPUTS)


def test_generator_may_return_a_single_value():
    def one_array(key):
        return jax.random.normal(key, (2, 3))

    assert check_function(softmax_numpy, softmax_reference, one_array)


def test_tolerances_decide_how_close_is_close_enough():
    def slightly_off(x):
        return softmax_reference(x) + 1e-3

    assert not check_softmax(slightly_off)
    assert check_softmax(slightly_off, atol=1e-2)


# --- failing, with a message that says what differs ------------------------------------------


def test_one_wrong_element_names_its_index_and_the_difference():
    result = check_softmax(softmax_one_entry_off)
    assert not result.passed
    assert "Trial 1 of 20" in result.message
    assert "at 1 of 15 positions" in result.message
    assert "index (1, 2)" in result.message
    assert re.search(r"Largest difference 0\.25\b", result.message)
    assert "x: shape (3, 5) float32" in result.message
    # The failing inputs come back so the learner can try them by hand.
    (x,) = result.inputs
    np.testing.assert_allclose(
        softmax_one_entry_off(x)[1, 2] - softmax_reference(x)[1, 2], 0.25, rtol=1e-6
    )


def test_wrong_shape_names_both_shapes():
    result = check_softmax(lambda x: softmax_reference(x)[:, :4])
    assert not result.passed
    assert "your function returned shape (3, 4); expected (3, 5)" in result.message


def test_wrong_element_of_a_tuple_output_is_named():
    def transposed_weights(q, k, v):
        output, weights = attention_reference(q, k, v)
        return output, weights[::-1]

    result = check_function(transposed_weights, attention_reference, ATTENTION_INPUTS)
    assert not result.passed
    assert "output[1]" in result.message and "output[0]" not in result.message
    assert "q: shape (4, 8) float32; k: shape (6, 8) float32; v: shape (6, 2) float32" in (
        result.message
    )


def test_nested_tuple_paths_and_shapes():
    def reference(x):
        return (x, x.sum(axis=0)), x.mean()

    def learner(x):
        return (x, x.sum(axis=1)), x.mean()

    result = check_function(learner, reference, random_inputs((2, 3)))
    assert "output[0][1] has shape (2,); expected (3,)" in result.message


def test_missing_second_output_is_explained():
    result = check_function(
        lambda q, k, v: attention_reference(q, k, v)[0], attention_reference, ATTENTION_INPUTS
    )
    assert not result.passed
    assert "tuple of 2 items" in result.message
    assert "single value (shape (4, 2) float32)" in result.message


def test_dtype_kind_mismatch_is_reported():
    def causal_mask(x):
        t = x.shape[0]
        return jnp.tril(jnp.ones((t, t), dtype=bool))

    def float_mask(x):
        t = x.shape[0]
        return jnp.tril(jnp.ones((t, t)))

    result = check_function(float_mask, causal_mask, random_inputs((4, 2)))
    assert not result.passed
    assert "floating-point dtype float32" in result.message
    assert "boolean dtype like bool" in result.message


def test_nan_where_the_reference_has_a_number_is_reported():
    def with_nan(x):
        y = np.array(softmax_reference(x))
        y[0, 3] = np.nan
        return y

    result = check_softmax(with_nan)
    assert not result.passed
    assert "NaN at index (0, 3)" in result.message


def test_exception_in_learner_code_is_reported_not_raised():
    def broken(x):
        raise ValueError("rows and columns mixed up")

    result = check_softmax(broken)
    assert not result.passed
    assert "Trial 1 of 20" in result.message
    assert "ValueError: rows and columns mixed up" in result.message
    assert 'raise ValueError("rows and columns mixed up")' in result.message  # the line


def test_function_without_return_is_reported():
    def forgot_to_return(x):
        softmax_numpy(x)

    def unfinished(x):
        ...

    for learner in (forgot_to_return, unfinished):
        result = check_softmax(learner)
        assert not result.passed
        assert "returned None — did you forget to return?" in result.message


def test_not_implemented_is_reported():
    def todo(x):
        raise NotImplementedError

    result = check_softmax(todo)
    assert not result.passed
    assert "not implemented yet" in result.message


def test_learner_that_edits_its_input_leaves_the_reported_inputs_intact():
    drawn = []

    def numpy_inputs(key):
        x = np.asarray(jax.random.normal(key, (3, 5)), dtype=np.float64)
        drawn.append(x.copy())
        return (x,)

    def in_place_and_unfinished(x):
        x -= x.max(axis=-1, keepdims=True)  # edits the array it was given
        np.exp(x, out=x)
        return x  # forgot to divide by the row sums

    result = check_function(in_place_and_unfinished, softmax_numpy, numpy_inputs)
    assert not result.passed
    np.testing.assert_array_equal(result.inputs[0], drawn[0])


# --- randomness -----------------------------------------------------------------------------


def sometimes_wrong(x):
    """Wrong only when the first input is large, so which trial fails depends on the inputs."""
    y = np.array(softmax_reference(x))
    if x[0, 0] > 1.0:
        y[0, 0] = 0.0
    return y


def test_same_seed_gives_the_same_verdict():
    first = check_softmax(sometimes_wrong, seed=7)
    second = check_softmax(sometimes_wrong, seed=7)
    assert not first.passed
    assert first.message == second.message
    np.testing.assert_array_equal(first.inputs[0], second.inputs[0])
    same_key = check_softmax(sometimes_wrong, key=jax.random.key(7))
    assert same_key.message == first.message


def test_each_trial_gets_a_fresh_key():
    seen = []

    def recording(key):
        seen.append(np.asarray(jax.random.key_data(key)).tobytes())
        return (jax.random.normal(key, (2, 3)),)

    check_function(softmax_reference, softmax_reference, recording, n_trials=10)
    assert len(seen) == 10 and len(set(seen)) == 10


def test_different_seeds_draw_different_inputs():
    drawn = {}
    for seed in (0, 1):
        def recording(key, seed=seed):
            drawn.setdefault(seed, jax.random.normal(key, (4,)))
            return (drawn[seed],)

        check_function(softmax_reference, softmax_reference, recording, n_trials=1, seed=seed)
    assert not np.allclose(drawn[0], drawn[1])


# --- the result and bad arguments ------------------------------------------------------------


def test_result_displays_as_a_green_or_red_box():
    good = check_softmax(softmax_numpy)
    bad = check_softmax(lambda x: softmax_reference(x)[:, :4])
    assert str(good).startswith("✔ Passed") and repr(good) == str(good)
    assert str(bad).startswith("✘ Not yet") and "(3, 4)" in repr(bad)
    assert "#34a853" in good._repr_html_() and "✔" in good._repr_html_()
    assert "#d93025" in bad._repr_html_() and "expected (3, 5)" in bad._repr_html_()


def test_result_html_escapes_the_message():
    assert "&lt;lambda&gt;" in CheckResult(False, "<lambda> failed")._repr_html_()


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [({"n_trials": 0}, "n_trials"), ({"rtol": -1.0}, "rtol"), ({"atol": float("nan")}, "atol")],
)
def test_bad_settings_are_rejected(kwargs, name):
    with pytest.raises(ValueError, match=name):
        check_softmax(softmax_numpy, **kwargs)


def test_non_callable_is_rejected():
    with pytest.raises(TypeError, match="learner_fn"):
        check_function(None, softmax_reference, SOFTMAX_INPUTS)


def test_random_inputs_rejects_mixed_shapes():
    with pytest.raises(ValueError, match="random_inputs"):
        random_inputs((2, 3), x=(2, 3))


def _mean_xent(logits, targets):
    logp = jax.nn.log_softmax(logits, axis=-1)
    return -jnp.take_along_axis(logp, targets[..., None], axis=-1).mean()


def _xent_inputs(key):
    k1, k2 = jax.random.split(key)
    return (200.0 * jax.random.normal(k1, (4, 5, 7)), jax.random.randint(k2, (4, 5), 0, 7))


def test_overflow_to_infinity_is_reported_as_an_overflow():
    def overflowing(logits, targets):
        return jnp.log(jnp.exp(logits).sum(-1)).mean() + 0 * _mean_xent(logits, targets)

    result = check_function(overflowing, _mean_xent, _xent_inputs, n_trials=5)
    assert not result.passed
    assert "output is +inf where the reference has a number" in result.message
    assert "The first inf appears in exp (line " in result.message
    assert ": return jnp.log(jnp.exp(logits).sum(-1))" in result.message
    assert "overflows to inf" in result.message and "log(0)" not in result.message
    assert "1.79769e+308" not in result.message


def test_nan_after_an_overflow_names_the_exp_that_overflowed():
    def naive(logits, targets):  # exp overflows float32 for logits around 200: inf/inf = NaN
        e = np.exp(np.asarray(logits))
        p = e / e.sum(-1, keepdims=True)
        return -np.log(np.take_along_axis(p, np.asarray(targets)[..., None], -1)).mean()

    with np.errstate(all="ignore"):
        result = check_function(naive, _mean_xent, _xent_inputs, n_trials=5)
    assert "output is NaN" in result.message
    assert "The first inf appears in exp (line " in result.message
    assert ": e = np.exp(np.asarray(logits)))" in result.message
    assert "then inf/inf or inf - inf gives NaN" in result.message


def test_log_of_an_underflowed_probability_is_not_called_an_overflow():
    def log_of_softmax(logits, targets):  # softmax is exactly 0 for very unlikely targets
        p = jax.nn.softmax(logits, axis=-1)
        return -jnp.log(jnp.take_along_axis(p, targets[..., None], -1)).mean()

    result = check_function(log_of_softmax, _mean_xent, _xent_inputs, n_trials=5)
    assert "output is +inf" in result.message
    assert "The first inf appears in log (line " in result.message
    assert ": return -jnp.log(jnp.take_along_axis(p," in result.message
    assert "log(0) = -inf: a positive number underflowed to 0" in result.message
    assert "jax.nn.log_softmax" in result.message
    assert "overflow" not in result.message


def test_inf_that_cannot_be_traced_to_an_operation_says_both_causes_honestly():
    def constant_inf(logits, targets):  # no operation makes the inf, so none can be named
        return np.float32("inf")

    result = check_function(constant_inf, _mean_xent, _xent_inputs, n_trials=1)
    assert "cannot tell apart" in result.message
    assert "overflows to inf" in result.message and "log(0)" in result.message


def test_a_sum_instead_of_a_mean_is_named_with_its_factor():
    def summed(logits, targets):
        logp = jax.nn.log_softmax(logits, axis=-1)
        return -jnp.take_along_axis(logp, targets[..., None], axis=-1).sum()

    result = check_function(summed, _mean_xent, _xent_inputs, n_trials=3)
    assert not result.passed
    # B·T = 4·5 predictions summed; without axis names the axes are numbered.
    assert "Your value is 20× the expected one (the same on 3 more random inputs)" in (
        result.message
    )
    assert "20 = 4 × 5 is the size of axes 0 and 1 of logits: a sum over those axes" in (
        result.message
    )


def test_axis_names_name_the_factor():
    def summed(logits, targets):
        return _mean_xent(logits, targets) * logits.shape[-1]

    result = check_function(summed, _mean_xent, _xent_inputs, n_trials=1,
                            axis_names={"logits": ("B", "T", "V"), "targets": ("B", "T")})
    assert "7× the expected one" in result.message
    assert "7 = V is the size of axis V of logits" in result.message


def test_the_sign_flip_has_its_own_hint():
    result = check_softmax(lambda x: -softmax_reference(x))
    assert "Your values are all the expected ones with the opposite sign" in result.message
    assert "×" not in result.message


def test_a_factor_no_learner_would_introduce_is_not_shown():
    result = check_softmax(lambda x: 3.7 * softmax_reference(x))
    assert "Largest difference" in result.message
    assert "×" not in result.message and "1/" not in result.message


def test_a_factor_that_only_some_values_show_is_not_shown():
    def one_row_doubled(x):
        y = np.array(softmax_reference(x))
        y[0] *= 5  # 5 is the size of x's last axis, but only row 0 is off
        return y

    result = check_softmax(one_row_doubled)
    assert "at 5 of 15 positions" in result.message
    assert "×" not in result.message


def test_a_factor_seen_on_one_trial_only_is_not_shown():
    calls = []

    def changing_factor(logits, targets):
        calls.append(1)  # 5× on the first call (5 = T), 4× afterwards (4 = B)
        return _mean_xent(logits, targets) * (5 if len(calls) == 1 else 4)

    result = check_function(changing_factor, _mean_xent, _xent_inputs, n_trials=2)
    assert "your value" in result.message and len(calls) > 1
    assert "×" not in result.message


def test_a_scalar_expected_shape_is_spelled_out():
    def no_mean(logits, targets):
        logp = jax.nn.log_softmax(logits, axis=-1)
        return -jnp.take_along_axis(logp, targets[..., None], axis=-1)[..., 0]

    result = check_function(no_mean, _mean_xent, _xent_inputs, n_trials=2)
    assert "expected () (a single number)" in result.message
    assert "(4, 5) is the shape of targets, or logits without its axis 2" in result.message
    assert "reduce over every axis" in result.message


def test_a_broadcasting_error_points_to_keepdims():
    def no_keepdims(logits, targets):
        logp = logits - jax.nn.logsumexp(logits, axis=-1)
        return -jnp.take_along_axis(logp, targets[..., None], axis=-1).mean()

    result = check_function(no_keepdims, _mean_xent, _xent_inputs, n_trials=1,
                            axis_names={"logits": ("B", "T", "V"), "targets": ("B", "T")})
    assert "your function raised ValueError: Incompatible shapes" in result.message
    assert "(4, 5, 7) is the shape of logits (B, T, V)" in result.message
    assert "logits without its axis V" in result.message
    assert "keepdims=True" in result.message


@pytest.mark.parametrize(
    ("axis_names", "error", "match"),
    [
        ({"logits": ("B", "T")}, ValueError, "names 2 axes"),
        ({"scores": ("B", "T", "V")}, ValueError, "no array argument"),
        ({"logits": "BTV"}, TypeError, "axis_names"),
    ],
)
def test_bad_axis_names_are_rejected(axis_names, error, match):
    with pytest.raises(error, match=match):
        check_function(_mean_xent, _mean_xent, _xent_inputs, n_trials=1, axis_names=axis_names)


def test_an_output_in_a_tuple_is_named_as_a_returned_value():
    def transposed_weights(q, k, v):
        output, weights = attention_reference(q, k, v)
        return output, weights[::-1]

    result = check_function(transposed_weights, attention_reference, ATTENTION_INPUTS)
    assert "the second returned value (output[1]) differs" in result.message


def test_returned_values_in_the_wrong_order_point_at_the_order_not_at_an_input():
    def swapped(q, k, v):
        output, weights = attention_reference(q, k, v)
        return weights, output

    result = check_function(swapped, attention_reference, ATTENTION_INPUTS)
    assert "the first returned value (output[0]) has shape (4, 6); expected (4, 2)" in (
        result.message)
    assert "(4, 6) is the shape of the second returned value (output[1]): are the returned " \
        "values in the wrong order?" in result.message


def masked_softmax_reference(x):
    allowed = jnp.arange(x.shape[-1]) <= 1  # keys 0 and 1 only; row 0 of x is all hidden
    allowed = jnp.where(jnp.arange(x.shape[0])[:, None] == 0, False, allowed)
    return jnp.where(allowed, jax.nn.softmax(jnp.where(allowed, x, -1e30), axis=-1), 0.0)


def test_a_minus_inf_fill_is_not_called_too_large_and_the_nan_is_traced():
    def minus_inf_fill(x):
        allowed = jnp.arange(x.shape[-1]) <= 1
        allowed = jnp.where(jnp.arange(x.shape[0])[:, None] == 0, False, allowed)
        return jax.nn.softmax(jnp.where(allowed, x, -jnp.inf), axis=-1)

    result = check_function(minus_inf_fill, masked_softmax_reference, random_inputs((3, 5)))
    assert not result.passed
    assert "too large" not in result.message
    assert "An infinity written on purpose (e.g. a -inf fill" in result.message
    assert "later became NaN in" in result.message
    assert "jax.nn.softmax" in result.message  # the line that made the NaN


def test_a_minus_inf_fill_that_reaches_the_output_is_named():
    def minus_inf_left(x):
        return jnp.where(x > 0, x, -jnp.inf)

    result = check_function(minus_inf_left, lambda x: jnp.where(x > 0, x, -1.0),
                            random_inputs((4, 5)))
    assert "An infinity written on purpose" in result.message
    assert "reached the output" in result.message


def test_ratio_hints_can_be_switched_off():
    def twice(x):
        return 2 * jnp.sum(x, axis=0)

    with_hint = check_function(twice, lambda x: jnp.sum(x, axis=0), random_inputs((2, 3)))
    without = check_function(twice, lambda x: jnp.sum(x, axis=0), random_inputs((2, 3)),
                             ratio_hints=False)
    assert "2×" in with_hint.message
    assert "2×" not in without.message and "differs from the reference" in without.message
