"""Notebook 05's exercises: typical wrong solutions, and the hint each one gets.

Each wrong solution is written the way a learner might write it (not with the exercise's own
``_table`` helper), so these tests also check that the registered mistakes catch real code.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnlab.exercises import EXERCISES, check_exercise

# --- split_heads ------------------------------------------------------------------------------


def split_heads_right(x, n_heads):
    B, T, D = x.shape
    return jnp.transpose(jnp.reshape(x, (B, T, n_heads, D // n_heads)), (0, 2, 1, 3))


def split_heads_by_slicing(x, n_heads):
    """Also right: one slice per head, stacked."""
    Dh = x.shape[-1] // n_heads
    return jnp.stack([x[:, :, h * Dh : (h + 1) * Dh] for h in range(n_heads)], axis=1)


def split_heads_without_transpose(x, n_heads):
    B, T, D = x.shape
    return x.reshape(B, n_heads, T, D // n_heads)


def split_heads_head_fastest(x, n_heads):
    B, T, D = x.shape
    return jnp.moveaxis(x.reshape(B, T, D // n_heads, n_heads), -1, 1)


def split_heads_forgot_transpose(x, n_heads):
    B, T, D = x.shape
    return x.reshape(B, T, n_heads, D // n_heads)


def split_heads_swapped_last_axes(x, n_heads):
    return split_heads_right(x, n_heads).transpose(0, 1, 3, 2)


def split_heads_stacked_on_axis_0(x, n_heads):
    return jnp.stack(jnp.split(x, n_heads, axis=-1), axis=0)


def split_heads_sizes_swapped(x, n_heads):
    B, T, D = x.shape
    return x.reshape(B, T, D // n_heads, n_heads).transpose(0, 2, 1, 3)


def split_heads_slice_one_short(x, n_heads):
    """The task says 'numbers h*Dh to (h+1)*Dh - 1', and the slice copies that end."""
    Dh = x.shape[-1] // n_heads
    return jnp.stack([x[:, :, h * Dh : (h + 1) * Dh - 1] for h in range(n_heads)], axis=1)


def split_heads_scaled(x, n_heads):
    return split_heads_right(x, n_heads) / np.sqrt(x.shape[-1] // n_heads)


def split_heads_float_division(x, n_heads):
    B, T, D = x.shape
    return x.reshape(B, T, n_heads, D / n_heads).transpose(0, 2, 1, 3)


def split_heads_float_division_jax(x, n_heads):
    B, T, D = x.shape
    return jnp.reshape(jnp.asarray(x), (B, T, n_heads, D / n_heads)).transpose(0, 2, 1, 3)


def split_heads_heads_reversed(x, n_heads):
    """Not a registered mistake: only the checker's generic message applies."""
    return split_heads_right(x, n_heads)[:, ::-1]


def split_heads_not_started(x, n_heads):
    raise NotImplementedError


@pytest.mark.parametrize("fn", [split_heads_right, split_heads_by_slicing])
def test_right_split_heads_passes(fn):
    result = check_exercise("split_heads", fn)
    assert result.passed, result


@pytest.mark.parametrize("fn,hint", [(f, h) for f, h in [
    (split_heads_without_transpose, "Reshape to (B, T, H, Dh) first, then swap axes 1 and 2"),
    (split_heads_head_fastest, "deals them out in turn"),
    (split_heads_forgot_transpose, "the head axis must come before the time axis"),
    (split_heads_swapped_last_axes, "yours is (Dh, T)"),
    (split_heads_stacked_on_axis_0, "yours puts it first, (H, B, T, Dh)"),
    (split_heads_sizes_swapped, "n_heads and d_head are swapped"),
    (split_heads_slice_one_short, "a Python slice leaves out its end"),
    (split_heads_scaled, "must not change them"),
    (split_heads_float_division, "use integer division, D // n_heads"),
    (split_heads_float_division_jax, "use integer division, D // n_heads"),
]])
def test_wrong_split_heads_gets_its_hint(fn, hint):
    result = check_exercise("split_heads", fn)
    assert not result.passed
    assert result.message.startswith("Likely cause: ")
    assert hint in result.message, result.message


def test_an_unregistered_mistake_gets_the_generic_message_only():
    result = check_exercise("split_heads", split_heads_heads_reversed)
    assert not result.passed
    assert "Likely cause" not in result.message
    assert "differs" in result.message, result.message


def test_batch_heads_time_and_width_differ_in_every_trial():
    """Equal sizes would let an axis in the wrong place pass as a right shape."""
    exercise = EXERCISES["split_heads"]
    for seed in range(20):
        x, n_heads = exercise.inputs(jax.random.key(seed))
        B, T, D = x.shape
        assert len({B, T, n_heads, D // n_heads}) == 4, (x.shape, n_heads)


# --- sinusoidal_encoding ----------------------------------------------------------------------


def pe_loops(seq_len, d_model):
    """Right: the paper's formula, one entry at a time."""
    pe = np.zeros((seq_len, d_model))
    for p in range(seq_len):
        for i in range(d_model // 2):
            pe[p, 2 * i] = np.sin(p / 10000 ** (2 * i / d_model))
            pe[p, 2 * i + 1] = np.cos(p / 10000 ** (2 * i / d_model))
    return pe


def pe_float32_jax(seq_len, d_model):
    """Right, in float32 JAX (the checker's tolerance allows float32 angles)."""
    p = jnp.arange(seq_len, dtype=jnp.float32)[:, None]
    freq = jnp.exp(-jnp.log(10000.0) * jnp.arange(0, d_model, 2, dtype=jnp.float32) / d_model)
    pe = jnp.zeros((seq_len, d_model), jnp.float32)
    pe = pe.at[:, 0::2].set(jnp.sin(p * freq))
    return pe.at[:, 1::2].set(jnp.cos(p * freq))


def pe_halves(seq_len, d_model):
    p = np.arange(seq_len)[:, None]
    angle = p / 10000 ** (np.arange(0, d_model, 2) / d_model)
    return np.concatenate([np.sin(angle), np.cos(angle)], axis=1)


def pe_cos_first(seq_len, d_model):
    pe = pe_loops(seq_len, d_model)
    return pe[:, [j + 1 if j % 2 == 0 else j - 1 for j in range(d_model)]]


def pe_column_exponent(seq_len, d_model):
    p = np.arange(seq_len)[:, None]
    angle = p / np.power(10000, np.arange(d_model) / d_model)
    return np.where(np.arange(d_model) % 2 == 0, np.sin(angle), np.cos(angle))


def pe_twice_column_exponent(seq_len, d_model):
    p = np.arange(seq_len)[:, None]
    angle = p / np.power(10000, 2 * np.arange(d_model) / d_model)
    return np.where(np.arange(d_model) % 2 == 0, np.sin(angle), np.cos(angle))


def pe_missing_factor_two(seq_len, d_model):
    pe = np.zeros((seq_len, d_model))
    for p in range(seq_len):
        for i in range(d_model // 2):
            pe[p, 2 * i] = np.sin(p / 10000 ** (i / d_model))
            pe[p, 2 * i + 1] = np.cos(p / 10000 ** (i / d_model))
    return pe


def pe_integer_division(seq_len, d_model):
    pe = np.zeros((seq_len, d_model))
    for p in range(seq_len):
        for i in range(d_model // 2):
            pe[p, 2 * i] = np.sin(p / 10000 ** (2 * i // d_model))
            pe[p, 2 * i + 1] = np.cos(p / 10000 ** (2 * i // d_model))
    return pe


def pe_missing_brackets(seq_len, d_model):
    pe = np.zeros((seq_len, d_model))
    for p in range(seq_len):
        for i in range(d_model // 2):
            pe[p, 2 * i] = np.sin(p / 10000 ** 2 * i / d_model)
            pe[p, 2 * i + 1] = np.cos(p / 10000 ** 2 * i / d_model)
    return pe


def pe_sines_only(seq_len, d_model):
    p = np.arange(seq_len)[:, None]
    return np.sin(p / 10000 ** (2 * (np.arange(d_model) // 2) / d_model))


def pe_multiplied(seq_len, d_model):
    pe = np.zeros((seq_len, d_model))
    for p in range(seq_len):
        for i in range(d_model // 2):
            pe[p, 2 * i] = np.sin(p * 10000 ** (2 * i / d_model))
            pe[p, 2 * i + 1] = np.cos(p * 10000 ** (2 * i / d_model))
    return pe


def pe_base(base):
    def pe(seq_len, d_model):
        out = np.zeros((seq_len, d_model))
        for p in range(seq_len):
            for i in range(d_model // 2):
                out[p, 2 * i] = np.sin(p / base ** (2 * i / d_model))
                out[p, 2 * i + 1] = np.cos(p / base ** (2 * i / d_model))
        return out

    return pe


def pe_from_one(seq_len, d_model):
    return pe_loops(seq_len + 1, d_model)[1:]


def pe_transposed(seq_len, d_model):
    return pe_loops(seq_len, d_model).T


@pytest.mark.parametrize("fn", [pe_loops, pe_float32_jax])
def test_right_sinusoidal_encoding_passes(fn):
    result = check_exercise("sinusoidal_encoding", fn)
    assert result.passed, result


SINUSOIDAL_MISTAKES = [
        (pe_halves, "yours puts all the sines first"),
        (pe_cos_first, "sin and cos are swapped"),
        (pe_column_exponent, "should use the pair index i = j // 2"),
        (pe_twice_column_exponent, "should use the pair index i = j // 2"),
        (pe_missing_factor_two, "the factor 2 is missing"),
        (pe_multiplied, "yours multiplies by it"),
        (pe_integer_division, "2 * i // d_model is integer division"),
        (pe_missing_brackets, "write 10000 ** (2 * i / d_model)"),
        (pe_sines_only, "yours has a sine there too"),
        (pe_base(1000.0), "looks like 1000 (a zero missing?)"),
        (pe_base(100000.0), "looks like 100000 (a zero too many?)"),
        (pe_from_one, "yours start at 1"),
]


@pytest.mark.parametrize("fn,hint", SINUSOIDAL_MISTAKES)
def test_wrong_sinusoidal_encoding_gets_its_hint(fn, hint):
    result = check_exercise("sinusoidal_encoding", fn)
    assert not result.passed
    assert result.message.startswith("Likely cause: ")
    assert hint in result.message, result.message
    seq_len, d_model = result.inputs  # the failing trial's inputs are handed back
    assert isinstance(seq_len, int) and isinstance(d_model, int) and d_model % 2 == 0


def test_a_transposed_table_gets_the_shape_message():
    result = check_exercise("sinusoidal_encoding", pe_transposed)
    assert not result.passed
    assert "shape" in result.message and "Likely cause" not in result.message


def test_a_function_that_raises_is_reported_without_a_hint():
    def broken(seq_len, d_model):
        raise RuntimeError("oops")

    result = check_exercise("sinusoidal_encoding", broken)
    assert not result.passed
    assert "RuntimeError" in result.message and "Likely cause" not in result.message


def test_every_registered_mistake_is_actually_wrong():
    """A 'mistake' that equals the reference would hide a right answer's success."""
    for name in ("split_heads", "sinusoidal_encoding"):
        exercise = EXERCISES[name]
        for mistake in exercise.mistakes:
            assert not check_exercise(name, mistake.wrong).passed, mistake.hint


# The lists tests/test_exercises.py looks for: every exercise keeps typical wrong solutions with
# (a piece of) the hint each gets, and correct solutions written differently.
WRONG_SOLUTIONS = {
    "split_heads": [
        (split_heads_without_transpose, "Likely cause: reshaping straight to (B, H, T, Dh)"),
        (split_heads_head_fastest, "Likely cause: head h should get the consecutive features"),
        (split_heads_forgot_transpose, "Likely cause: the split into (B, T, H, Dh) is right"),
        (split_heads_swapped_last_axes, "Likely cause: each head's matrix must be (T, Dh)"),
        (split_heads_stacked_on_axis_0, "Likely cause: the head axis goes second"),
        (split_heads_sizes_swapped, "Likely cause: n_heads and d_head are swapped"),
        (split_heads_slice_one_short, "Likely cause: each head gets one number too few"),
        (split_heads_scaled, "Likely cause: splitting into heads only moves numbers"),
        (split_heads_float_division, "Likely cause: D / n_heads is a float"),
        (split_heads_heads_reversed, "differs"),
        (split_heads_not_started, "not implemented yet"),
    ],
    "sinusoidal_encoding": [
        *[(fn, ("Likely cause: ", hint)) for fn, hint in SINUSOIDAL_MISTAKES],
        (pe_transposed, "shape"),
    ],
}
RIGHT_SOLUTIONS = {
    "split_heads": [split_heads_right, split_heads_by_slicing],
    "sinusoidal_encoding": [pe_loops, pe_float32_jax],
}

