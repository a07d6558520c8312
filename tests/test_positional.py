"""Tests for attnlab.positional: the sinusoidal position table of "Attention Is All You Need".

The expected table is the paper's formula evaluated with Python loops in float64, independent
of the vectorised JAX code under test.
"""

import math

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings

from attnlab.positional import sinusoidal_encoding

FAST = settings(max_examples=20, deadline=None)


def formula(seq_len, d_model, base=10000.0):
    """PE[p, 2i] = sin(p / base^(2i/d)), PE[p, 2i+1] = cos(p / base^(2i/d)), float64 loops."""
    pe = np.zeros((seq_len, d_model), np.float64)
    for p in range(seq_len):
        for i in range((d_model + 1) // 2):
            angle = p / base ** (2 * i / d_model)
            pe[p, 2 * i] = math.sin(angle)
            if 2 * i + 1 < d_model:
                pe[p, 2 * i + 1] = math.cos(angle)
    return pe


@pytest.mark.parametrize("d_model", [1, 2, 6, 7, 16, 33, 64])
@pytest.mark.parametrize("base", [10000.0, 100.0])
def test_sinusoidal_encoding_equals_the_paper_formula(d_model, base):
    pe = np.asarray(sinusoidal_encoding(64, d_model, base))
    assert pe.shape == (64, d_model)
    assert pe.dtype == np.float32
    np.testing.assert_allclose(pe, formula(64, d_model, base), atol=1e-6, rtol=0)


def test_formula_holds_far_from_the_origin():
    """Rounded once to float32: still within 1e-6 at position 1023, where float32 angles are not."""
    pe = np.asarray(sinusoidal_encoding(1024, 48))
    np.testing.assert_allclose(pe, formula(1024, 48), atol=1e-6, rtol=0)


@pytest.mark.parametrize("d_model", [3, 5, 9, 33])
def test_odd_d_model_ends_with_the_sine_of_the_last_pair(d_model):
    pe = np.asarray(sinusoidal_encoding(20, d_model))
    last_pair = (d_model - 1) // 2
    angles = np.arange(20) / 10000.0 ** (2 * last_pair / d_model)
    np.testing.assert_allclose(pe[:, -1], np.sin(angles), atol=1e-6, rtol=0)
    # Its cosine would be column d_model, which does not exist; the column before it is the
    # cosine of the previous pair.
    previous = np.arange(20) / 10000.0 ** (2 * (last_pair - 1) / d_model)
    np.testing.assert_allclose(pe[:, -2], np.cos(previous), atol=1e-6, rtol=0)


@pytest.mark.parametrize("d_model", [1, 4, 7, 128])
def test_position_zero_is_sin_zero_cos_zero(d_model):
    row = np.asarray(sinusoidal_encoding(3, d_model))[0]
    expected = np.array([0.0 if j % 2 == 0 else 1.0 for j in range(d_model)])
    np.testing.assert_array_equal(row, expected)


@settings(FAST)
@given(
    d_model=st.integers(2, 96),
    p=st.integers(0, 200),
    offset=st.integers(0, 55),
    base=st.sampled_from([10000.0, 100.0]),
)
def test_moving_k_positions_rotates_each_pair_by_k_times_its_frequency(d_model, p, offset, base):
    """(sin, cos) of pair i is a unit vector; PE[p + k] is PE[p] with pair i turned by k·ω_i.

    sin(a + b) = sin a cos b + cos a sin b and cos(a + b) = cos a cos b - sin a sin b, with
    a = p·ω_i and b = k·ω_i, ω_i = base^(-2i/d_model): the same rotation for every p.
    """
    pe = np.asarray(sinusoidal_encoding(256, d_model, base), np.float64)
    n_pairs = d_model // 2  # an odd d_model's last column has no partner
    pairs = pe[:, : 2 * n_pairs].reshape(256, n_pairs, 2)  # [..., 0] = sin, [..., 1] = cos
    np.testing.assert_allclose(np.linalg.norm(pairs, axis=-1), 1.0, atol=1e-6)
    b = offset * base ** (-2.0 * np.arange(n_pairs) / d_model)
    s, c = pairs[p, :, 0], pairs[p, :, 1]
    rotated = np.stack([s * np.cos(b) + c * np.sin(b), c * np.cos(b) - s * np.sin(b)], axis=-1)
    np.testing.assert_allclose(pairs[p + offset], rotated, atol=3e-6)


@settings(FAST)
@given(
    half=st.integers(1, 32),
    p=st.integers(0, 100),
    q=st.integers(0, 100),
    offset=st.integers(0, 27),
)
def test_dot_product_depends_only_on_the_offset(half, p, q, offset):
    """PE[p]·PE[p+k] = Σ_i cos(k ω_i) for every p: relative position is a rotation."""
    d_model = 2 * half
    pe = np.asarray(sinusoidal_encoding(128, d_model), np.float64)
    first = pe[p] @ pe[p + offset]
    second = pe[q] @ pe[q + offset]
    omegas = 10000.0 ** (-2 * np.arange(half) / d_model)
    expected = np.cos(offset * omegas).sum()
    np.testing.assert_allclose(first, expected, atol=1e-4)
    np.testing.assert_allclose(second, expected, atol=1e-4)


def test_each_position_has_norm_sqrt_half_d_model():
    pe = np.asarray(sinusoidal_encoding(50, 32), np.float64)
    np.testing.assert_allclose(np.linalg.norm(pe, axis=1), math.sqrt(16), atol=1e-5)


def test_distinct_positions_get_distinct_vectors():
    pe = np.asarray(sinusoidal_encoding(256, 16), np.float64)
    distances = np.linalg.norm(pe[:, None] - pe[None], axis=-1)
    np.fill_diagonal(distances, np.inf)
    assert distances.min() > 1e-3


@pytest.mark.parametrize(
    "kwargs,name",
    [
        (dict(seq_len=0, d_model=4), "seq_len"),
        (dict(seq_len=-3, d_model=4), "seq_len"),
        (dict(seq_len=4, d_model=0), "d_model"),
        (dict(seq_len=4, d_model=4, base=0.0), "base"),
        (dict(seq_len=4, d_model=4, base=-10.0), "base"),
        (dict(seq_len=4, d_model=4, base=float("nan")), "base"),
    ],
)
def test_bad_arguments_raise(kwargs, name):
    with pytest.raises(ValueError, match=name):
        sinusoidal_encoding(**kwargs)


# --- PE(p + k) is a rotation of PE(p), pair by pair ---------------------------------------------


@settings(FAST)
@given(half=st.integers(1, 24), k=st.integers(0, 200), base=st.sampled_from([10000.0, 100.0]))
def test_shifting_by_k_is_one_fixed_rotation_per_frequency_pair(half, k, base):
    """For each pair i, [PE(p+k)_2i, PE(p+k)_2i+1] = M · [PE(p)_2i, PE(p)_2i+1] with the SAME
    2×2 matrix M for every p. M is fitted by least squares from all p (no formula assumed),
    then found to be the rotation by angle k·ω_i, ω_i = base^(-2i/d) from the paper."""
    d_model, P = 2 * half, 64
    pe = np.asarray(sinusoidal_encoding(P + k, d_model, base), np.float64)
    for i in range(half):
        now = pe[:P, 2 * i : 2 * i + 2]  # (P, 2): (sin, cos) of pair i at p
        later = pe[k : P + k, 2 * i : 2 * i + 2]  # the same pair at p + k
        M_t, residual, *_ = np.linalg.lstsq(now, later, rcond=None)  # later ≈ now @ M_t
        M = M_t.T
        np.testing.assert_allclose(now @ M_t, later, atol=1e-5)  # one linear map fits every p
        angle = k * base ** (-2 * i / d_model)
        rotation = np.array([[np.cos(angle), np.sin(angle)], [-np.sin(angle), np.cos(angle)]])
        np.testing.assert_allclose(M, rotation, atol=1e-4)


# --- why positions are needed: self-attention alone is permutation-equivariant -----------------

import jax.numpy as jnp  # noqa: E402
from flax import nnx  # noqa: E402

from attnlab.attention import MultiHeadAttention  # noqa: E402

_T, _D, _H = 6, 16, 4


@pytest.fixture(scope="module")
def attention_layer():
    layer = MultiHeadAttention(_D, _H, rngs=nnx.Rngs(0))
    rng = np.random.default_rng(0)
    for _, var in nnx.iter_graph(layer):  # larger weights than the initial 0.02: sharper
        if isinstance(var, nnx.Param):
            var[...] = jnp.asarray(0.5 * rng.normal(size=var[...].shape), jnp.float32)
    return layer


@nnx.jit
def _attend(layer, x):
    return layer(x, return_weights=True)


def _tokens(seed):
    return jnp.asarray(np.random.default_rng(seed).normal(size=(1, _T, _D)), jnp.float32)


permutations = st.permutations(list(range(_T))).filter(lambda p: list(p) != list(range(_T)))


@settings(FAST)
@given(perm=permutations, seed=st.integers(0, 1000))
def test_without_positions_shuffled_input_gives_the_same_outputs_shuffled(
    attention_layer, perm, seed
):
    x = _tokens(seed)
    perm = np.asarray(perm)
    out, weights = _attend(attention_layer, x)
    out_shuffled, weights_shuffled = _attend(attention_layer, x[:, perm])
    np.testing.assert_allclose(np.asarray(out_shuffled), np.asarray(out)[:, perm], atol=1e-5)
    # The weights move with their tokens too: query perm[i] and key perm[j].
    np.testing.assert_allclose(
        np.asarray(weights_shuffled), np.asarray(weights)[:, :, perm][:, :, :, perm], atol=1e-6
    )


@settings(FAST)
@given(perm=permutations, seed=st.integers(0, 1000))
def test_with_positions_added_shuffling_changes_the_outputs(attention_layer, perm, seed):
    x = _tokens(seed)
    perm = np.asarray(perm)
    pe = sinusoidal_encoding(_T, _D)[None]
    out, _ = _attend(attention_layer, x + pe)
    out_shuffled, _ = _attend(attention_layer, x[:, perm] + pe)  # tokens move, positions stay
    moved = perm != np.arange(_T)
    difference = np.abs(np.asarray(out_shuffled) - np.asarray(out)[:, perm]).max(axis=-1)[0]
    assert difference[moved].min() > 1e-3, difference  # every moved token's output changed
