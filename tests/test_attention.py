"""Tests for attnlab.attention: scaled dot-product attention, masks and multi-head attention.

Every expected value is computed independently of the code under test: by
``jax.nn.dot_product_attention`` (the library's own reference), by a NumPy loop over queries
with the softmax written by hand in float64, by hand-split heads in NumPy, or by flax's own
``nnx.MultiHeadAttention`` given the same weights.
"""

import math

import hypothesis.strategies as st
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import given, settings

from attnlab.attention import (
    MultiHeadAttention,
    causal_mask,
    combine_masks,
    padding_mask,
    scaled_dot_product_attention,
)

ATOL = 1e-5

# A few fixed shapes keep the number of compilations (and so the runtime) small while
# hypothesis varies the values, the masks and the seeds.
SHAPES = [(1, 1, 1, 1), (2, 5, 3, 4), (3, 7, 2, 8)]  # (B, T, H, Dh), self-attention: S = T

FAST = settings(max_examples=10, deadline=None)

# Compiled once per shape: far fewer compilations than running op by op.
sdpa = jax.jit(scaled_dot_product_attention, static_argnames="scale")
jax_attention = jax.jit(jax.nn.dot_product_attention, static_argnames=("scale", "is_causal"))


@pytest.fixture(autouse=True, scope="module")
def full_float32_matmuls():
    """Exact float32 products, so the tight comparisons also hold on GPUs that default to TF32."""
    with jax.default_matmul_precision("highest"):
        yield


def random_qkv(seed, B, T, H, Dh, S=None, scale=1.0):
    S = T if S is None else S
    rng = np.random.default_rng(seed)
    q = rng.normal(size=(B, T, H, Dh)).astype(np.float32) * scale
    k = rng.normal(size=(B, S, H, Dh)).astype(np.float32) * scale
    v = rng.normal(size=(B, S, H, Dh)).astype(np.float32)
    return q, k, v


def attention_loop(q, k, v, mask=None, scale=None):
    """One query at a time, float64, softmax by hand; a fully masked row gives zeros.

    Returns output (B, T, H, Dh) and weights (B, H, T, S).
    """
    q, k, v = (np.asarray(a, dtype=np.float64) for a in (q, k, v))
    B, T, H, Dh = q.shape
    S = k.shape[1]
    scale = 1.0 / math.sqrt(Dh) if scale is None else scale
    allowed = np.ones((B, H, T, S), bool) if mask is None else np.broadcast_to(mask, (B, H, T, S))
    out = np.zeros((B, T, H, Dh))
    weights = np.zeros((B, H, T, S))
    for b in range(B):
        for h in range(H):
            for t in range(T):
                keep = [s for s in range(S) if allowed[b, h, t, s]]
                if not keep:
                    continue  # no key to attend to: zero weights, zero output
                scores = [float(np.dot(q[b, t, h], k[b, s, h])) * scale for s in keep]
                top = max(scores)
                exps = [math.exp(x - top) for x in scores]
                total = sum(exps)
                for s, e in zip(keep, exps, strict=True):
                    weights[b, h, t, s] = e / total
                    out[b, t, h] += (e / total) * v[b, s, h]
    return out, weights


def random_lengths(seed, B, S, minimum=1):
    return np.random.default_rng(seed).integers(minimum, S + 1, size=B)


# --- masks ------------------------------------------------------------------------------


@pytest.mark.parametrize("T", [1, 2, 5, 9])
def test_causal_mask_hides_the_future(T):
    mask = np.asarray(causal_mask(T))
    assert mask.shape == (T, T)
    assert mask.dtype == np.bool_
    for t in range(T):
        for s in range(T):
            assert mask[t, s] == (s <= t), (t, s)


def test_causal_mask_is_lower_triangular():
    np.testing.assert_array_equal(np.asarray(causal_mask(6)), np.tril(np.ones((6, 6), bool)))


@pytest.mark.parametrize("T", [0, -1])
def test_causal_mask_needs_at_least_one_position(T):
    with pytest.raises(ValueError, match="seq_len"):
        causal_mask(T)


def test_padding_mask_known_answer():
    mask = np.asarray(padding_mask(jnp.array([3, 0, 5, 1]), 5))
    expected = np.array(
        [
            [1, 1, 1, 0, 0],
            [0, 0, 0, 0, 0],
            [1, 1, 1, 1, 1],
            [1, 0, 0, 0, 0],
        ],
        bool,
    )[:, None, None, :]
    assert mask.shape == (4, 1, 1, 5)
    assert mask.dtype == np.bool_
    np.testing.assert_array_equal(mask, expected)


def test_padding_mask_bad_inputs_raise():
    with pytest.raises(ValueError, match="seq_len"):
        padding_mask(jnp.array([1, 2]), 0)
    with pytest.raises(ValueError, match="lengths"):
        padding_mask(jnp.array([[1, 2]]), 4)


def test_combine_masks_of_nothing_is_none():
    assert combine_masks(None, None) is None
    assert combine_masks() is None


def test_combine_masks_is_logical_and_with_broadcasting():
    causal = causal_mask(4)
    pad = padding_mask(jnp.array([2, 4]), 4)
    combined = np.asarray(combine_masks(causal, None, pad))
    assert combined.shape == (2, 1, 4, 4)
    expected = (
        np.tril(np.ones((4, 4), bool))[None, None]
        & (np.arange(4) < np.array([2, 4])[:, None])[:, None, None, :]
    )
    np.testing.assert_array_equal(combined, expected)
    # A single mask comes back unchanged.
    np.testing.assert_array_equal(np.asarray(combine_masks(None, causal)), np.asarray(causal))


def test_combine_masks_rejects_non_boolean_and_non_broadcasting():
    with pytest.raises(ValueError, match="boolean"):
        combine_masks(causal_mask(3), jnp.ones((3, 3), jnp.float32))
    with pytest.raises(ValueError, match="broadcast"):
        combine_masks(causal_mask(3), causal_mask(4))


# --- scaled dot-product attention: parity with references -----------------------------


def mask_for(kind, seed, B, T, H):
    """(attnlab mask, same mask broadcast to (B, H, T, T) for references) for a mask kind."""
    lengths = random_lengths(seed, B, T)  # >= 1, so every query keeps key 0 with causal
    causal = causal_mask(T)
    pad = padding_mask(jnp.asarray(lengths), T)
    mask = {"none": None, "causal": causal, "padding": pad, "combined": combine_masks(causal, pad)}[
        kind
    ]
    full = None if mask is None else jnp.broadcast_to(mask, (B, H, T, T))
    return mask, full


@settings(FAST)
@given(
    shape=st.sampled_from(SHAPES),
    kind=st.sampled_from(["none", "causal", "padding", "combined"]),
    seed=st.integers(0, 2**31 - 1),
)
def test_attention_equals_jax_dot_product_attention(shape, kind, seed):
    B, T, H, Dh = shape
    q, k, v = random_qkv(seed, B, T, H, Dh)
    mask, full = mask_for(kind, seed, B, T, H)
    out, _ = sdpa(q, k, v, mask)
    expected = jax_attention(q, k, v, mask=full)
    np.testing.assert_allclose(np.asarray(out), np.asarray(expected), atol=ATOL, rtol=0)


@pytest.mark.parametrize("B,T,H,Dh", SHAPES)
def test_causal_attention_equals_jax_is_causal(B, T, H, Dh):
    q, k, v = random_qkv(B * 100 + T, B, T, H, Dh)
    out, _ = sdpa(q, k, v, causal_mask(T))
    expected = jax_attention(q, k, v, is_causal=True)
    np.testing.assert_allclose(np.asarray(out), np.asarray(expected), atol=ATOL, rtol=0)


def test_padded_causal_attention_equals_jax_mask_and_is_causal():
    B, T, H, Dh = SHAPES[2]
    q, k, v = random_qkv(7, B, T, H, Dh)
    pad = padding_mask(jnp.array([7, 3, 1]), T)
    out, _ = sdpa(q, k, v, combine_masks(causal_mask(T), pad))
    expected = jax_attention(q, k, v, mask=jnp.broadcast_to(pad, (B, H, T, T)), is_causal=True)
    np.testing.assert_allclose(np.asarray(out), np.asarray(expected), atol=ATOL, rtol=0)


@settings(FAST)
@given(
    shape=st.sampled_from(SHAPES),
    kind=st.sampled_from(["none", "causal", "padding", "combined"]),
    seed=st.integers(0, 2**31 - 1),
)
def test_attention_equals_a_per_query_loop(shape, kind, seed):
    B, T, H, Dh = shape
    q, k, v = random_qkv(seed, B, T, H, Dh)
    mask, full = mask_for(kind, seed, B, T, H)
    out, weights = sdpa(q, k, v, mask)
    expected_out, expected_weights = attention_loop(q, k, v, None if full is None else full)
    np.testing.assert_allclose(np.asarray(out), expected_out, atol=ATOL, rtol=0)
    np.testing.assert_allclose(np.asarray(weights), expected_weights, atol=ATOL, rtol=0)


@settings(FAST)
@given(
    shape=st.sampled_from(SHAPES),
    seed=st.integers(0, 2**31 - 1),
    spread=st.sampled_from([0.1, 1.0, 10.0]),
    density=st.sampled_from([0.0, 0.3, 0.7, 1.0]),
)
def test_weights_are_a_distribution_or_all_zero(shape, seed, spread, density):
    """Every row is >= 0 and sums to 1, or is exactly 0 when no key is allowed (never NaN)."""
    B, T, H, Dh = shape
    q, k, v = random_qkv(seed, B, T, H, Dh, scale=spread)
    mask = np.random.default_rng(seed + 1).random((B, H, T, T)) < density
    out, weights = sdpa(q, k, v, jnp.asarray(mask))
    out, weights = np.asarray(out), np.asarray(weights)
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(weights))
    assert np.all(weights >= 0)
    assert np.all(weights[~mask] == 0)  # masked keys get exactly zero weight
    row_sums = weights.sum(axis=-1)
    has_key = mask.any(axis=-1)  # (B, H, T)
    np.testing.assert_allclose(row_sums[has_key], 1.0, atol=1e-5)
    assert np.all(weights[~has_key] == 0)
    # A query with no allowed key in any head outputs zeros.
    blind = (~has_key).transpose(0, 2, 1)  # (B, T, H)
    assert np.all(out[blind] == 0)
    _, expected_weights = attention_loop(q, k, v, mask)
    np.testing.assert_allclose(weights, expected_weights, atol=ATOL, rtol=0)


def test_fully_masked_row_gives_zeros_not_nan():
    B, T, H, Dh = 2, 4, 2, 3
    q, k, v = random_qkv(3, B, T, H, Dh)
    lengths = jnp.array([0, 2])  # sequence 0 is all padding
    out, weights = sdpa(q, k, v, padding_mask(lengths, T))
    out, weights = np.asarray(out), np.asarray(weights)
    assert not np.isnan(out).any() and not np.isnan(weights).any()
    np.testing.assert_array_equal(out[0], 0.0)
    np.testing.assert_array_equal(weights[0], 0.0)
    np.testing.assert_allclose(weights[1].sum(-1), 1.0, atol=1e-6)


def test_gradients_are_finite_with_a_fully_masked_row():
    B, T, H, Dh = 2, 4, 2, 3
    q, k, v = random_qkv(4, B, T, H, Dh)
    mask = combine_masks(causal_mask(T), padding_mask(jnp.array([0, 3]), T))

    def loss(q, k, v):
        out, weights = sdpa(q, k, v, mask)
        return (out**2).sum() + (weights**2).sum()

    grads = jax.grad(loss, argnums=(0, 1, 2))(q, k, v)
    for g in grads:
        assert np.all(np.isfinite(np.asarray(g)))
    # The fully masked sequence 0 reads nothing, so nothing flows back into it.
    for g in grads:
        np.testing.assert_array_equal(np.asarray(g)[0], 0.0)


@pytest.mark.parametrize("form,threshold", [("bias", 2**62), ("where", 0)])
def test_both_masking_forms_agree_with_the_loop(monkeypatch, form, threshold):
    """Scores under 32 MiB are masked by adding a large negative bias, larger ones by a `where`
    (attention/core.py says why). Both give the loop's answer, zeros for fully masked rows,
    and finite gradients that leave a fully masked sequence untouched."""
    from attnlab.attention import core

    monkeypatch.setattr(core, "MMAP_THRESHOLD_BYTES", threshold)
    # A new function, so that jit traces it afresh with the form this test chose.
    attend = jax.jit(lambda q, k, v, mask: scaled_dot_product_attention(q, k, v, mask))
    B, T, H, Dh = 3, 6, 2, 4
    q, k, v = random_qkv(21, B, T, H, Dh, scale=3.0)
    mask = combine_masks(causal_mask(T), padding_mask(jnp.array([0, 4, 6]), T))
    out, weights = attend(q, k, v, mask)
    expected_out, expected_weights = attention_loop(q, k, v, np.asarray(mask))
    np.testing.assert_allclose(np.asarray(out), expected_out, atol=ATOL, rtol=0)
    np.testing.assert_allclose(np.asarray(weights), expected_weights, atol=ATOL, rtol=0)
    np.testing.assert_array_equal(np.asarray(out)[0], 0.0)
    np.testing.assert_array_equal(np.asarray(weights)[~np.broadcast_to(mask, weights.shape)], 0.0)

    def loss(q, k, v):
        out, weights = attend(q, k, v, mask)
        return (out**2).sum() + (weights**2).sum()

    for g in jax.grad(loss, argnums=(0, 1, 2))(q, k, v):
        assert np.all(np.isfinite(np.asarray(g)))
        np.testing.assert_array_equal(np.asarray(g)[0], 0.0)


def test_the_bias_form_is_used_below_32_mib_and_the_where_form_above():
    """The form shows in the traced program: the bias form adds one more array to the scores."""
    def ops(T):
        q = jnp.zeros((1, T, 1, 8), jnp.float32)
        jaxpr = jax.make_jaxpr(scaled_dot_product_attention)(q, q, q, causal_mask(T))
        return [str(e.primitive) for e in jaxpr.eqns]

    small, large = ops(64), ops(2 * 2**11 + 1)  # 64² and 4097² float32 scores: 16 KiB, 64 MiB
    assert small.count("add") == large.count("add") + 1


@pytest.mark.parametrize("T,S", [(3, 7), (6, 2), (1, 5)])
def test_cross_attention_with_different_query_and_key_lengths(T, S):
    B, H, Dh = 2, 3, 4
    q, k, v = random_qkv(T * 10 + S, B, T, H, Dh, S=S)
    lengths = random_lengths(S, B, S)
    pad = padding_mask(jnp.asarray(lengths), S)
    out, weights = sdpa(q, k, v, pad)
    assert out.shape == (B, T, H, Dh)
    assert weights.shape == (B, H, T, S)
    expected = jax_attention(q, k, v, mask=jnp.broadcast_to(pad, (B, H, T, S)))
    np.testing.assert_allclose(np.asarray(out), np.asarray(expected), atol=ATOL, rtol=0)
    expected_out, expected_weights = attention_loop(q, k, v, np.asarray(pad))
    np.testing.assert_allclose(np.asarray(out), expected_out, atol=ATOL, rtol=0)
    np.testing.assert_allclose(np.asarray(weights), expected_weights, atol=ATOL, rtol=0)


@pytest.mark.parametrize("scale", [0.1, 1.0, 2.5])
def test_custom_scale_multiplies_the_scores(scale):
    B, T, H, Dh = SHAPES[1]
    q, k, v = random_qkv(11, B, T, H, Dh)
    out, weights = sdpa(q, k, v, causal_mask(T), scale=scale)
    expected = jax_attention(q, k, v, is_causal=True, scale=scale)
    np.testing.assert_allclose(np.asarray(out), np.asarray(expected), atol=ATOL, rtol=0)
    _, expected_weights = attention_loop(q, k, v, np.asarray(causal_mask(T)), scale=scale)
    np.testing.assert_allclose(np.asarray(weights), expected_weights, atol=ATOL, rtol=0)


def test_default_scale_is_one_over_sqrt_d_head():
    B, T, H, Dh = SHAPES[2]
    q, k, v = random_qkv(12, B, T, H, Dh)
    default, _ = sdpa(q, k, v)
    explicit, _ = sdpa(q, k, v, scale=1 / math.sqrt(Dh))
    np.testing.assert_allclose(np.asarray(default), np.asarray(explicit), atol=1e-7, rtol=0)


# --- half precision ------------------------------------------------------------------------

HALF = [jnp.float16, jnp.bfloat16]


def as_float64(*arrays):
    """The values a low-precision array holds, exactly, in float64."""
    return [np.asarray(jnp.asarray(a).astype(jnp.float32), np.float64) for a in arrays]


@pytest.mark.parametrize("dtype", HALF, ids=lambda d: jnp.dtype(d).name)
@pytest.mark.parametrize("masked", [False, True])
def test_half_precision_attention_runs_in_float32_and_rounds_once(dtype, masked):
    """The result is the float64 answer rounded once to float16/bfloat16 (within one ulp).

    Scores of size ~5 (q, k entries of std 3): computed in float16 or bfloat16 instead, the
    weights here err by 8 to 25 times the bound below (measured); in float32 by < 0.5 of it.
    """
    B, T, H, Dh = 2, 16, 2, 8
    q, k, v = random_qkv(21, B, T, H, Dh, scale=3.0)
    q, k, v = (jnp.asarray(a, dtype) for a in (q, k, v))
    mask = causal_mask(T) if masked else None
    out, weights = sdpa(q, k, v, mask)
    assert out.dtype == dtype and weights.dtype == dtype
    expected_out, expected_weights = attention_loop(
        *as_float64(q, k, v), None if mask is None else np.asarray(mask)
    )
    eps = float(jnp.finfo(dtype).eps)  # one ulp at 1.0: rounding to nearest errs by <= eps/2
    (out, weights) = as_float64(out, weights)
    np.testing.assert_allclose(out, expected_out, rtol=eps, atol=1e-5)
    np.testing.assert_allclose(weights, expected_weights, rtol=eps, atol=1e-5)


@pytest.mark.parametrize("masked", [False, True])
def test_float16_scores_beyond_the_float16_range_give_no_nan(masked):
    """q·k of 160,000 does not fit float16 (largest 65,504): computed in float16 it is inf and
    the softmax NaN; computed in float32 the answer is the float64 one."""
    B, T, H, Dh = 2, 6, 2, 4
    rng = np.random.default_rng(22)
    q = rng.choice([-200.0, 200.0], size=(B, T, H, Dh))  # exact in float16
    k = rng.choice([-200.0, 200.0], size=(B, T, H, Dh))
    v = rng.normal(size=(B, T, H, Dh))
    q, k, v = (jnp.asarray(a, jnp.float16) for a in (q, k, v))
    q64, k64, v64 = as_float64(q, k, v)
    assert np.abs(np.einsum("bthd,bshd->bhts", q64, k64)).max() == 160_000 > 65_504
    mask = causal_mask(T) if masked else None
    out, weights = sdpa(q, k, v, mask)
    assert out.dtype == weights.dtype == jnp.float16
    out, weights = as_float64(out, weights)
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(weights))
    expected_out, expected_weights = attention_loop(
        q64, k64, v64, None if mask is None else np.asarray(mask)
    )
    eps = float(jnp.finfo(jnp.float16).eps)
    np.testing.assert_allclose(out, expected_out, rtol=eps, atol=1e-5)
    np.testing.assert_allclose(weights, expected_weights, rtol=eps, atol=1e-5)


@pytest.mark.parametrize("masked", [False, True])
def test_multi_head_attention_in_float16_gives_no_nan(masked):
    """Float16 weights and input: every projection is the identity, so q = k = v = x exactly and
    q·k reaches 160,000, beyond float16. With float32 weights the output is float32 (promotion)."""
    D, H, T = 8, 2, 6
    mha16 = MultiHeadAttention(D, H, rngs=nnx.Rngs(0))
    for layer in (mha16.W_q, mha16.W_k, mha16.W_v, mha16.W_o):
        layer.kernel[...], layer.bias[...] = jnp.eye(D), jnp.zeros(D)
    nnx.update(mha16, jax.tree.map(lambda a: a.astype(jnp.float16), nnx.state(mha16)))
    assert mha16.W_q.kernel[...].dtype == jnp.float16
    x = np.random.default_rng(23).choice([-200.0, 200.0], size=(2, T, D))
    mask = causal_mask(T) if masked else None
    out = mha16(jnp.asarray(x, jnp.float16), mask)
    assert out.dtype == jnp.float16
    out = as_float64(out)[0]
    assert np.all(np.isfinite(out))
    heads = x.reshape(2, T, H, D // H)  # q = k = v = x, split into heads
    expected, _ = attention_loop(heads, heads, heads, None if mask is None else np.asarray(mask))
    eps = float(jnp.finfo(jnp.float16).eps)
    np.testing.assert_allclose(out, expected.reshape(2, T, D), rtol=eps, atol=1e-3)

    mha32 = MultiHeadAttention(D, H, rngs=nnx.Rngs(0))  # float32 weights, float16 input
    assert mha32(jnp.asarray(x, jnp.float16), mask).dtype == jnp.float32


# --- scaled dot-product attention: bad inputs -------------------------------------------


def test_wrong_rank_raises():
    q, k, v = random_qkv(0, 2, 3, 2, 4)
    with pytest.raises(ValueError, match="4-D"):
        scaled_dot_product_attention(q[:, :, 0], k, v)
    with pytest.raises(ValueError, match="4-D"):
        scaled_dot_product_attention(q, k[0], v[0])


def test_key_value_shape_mismatch_raises():
    q, k, v = random_qkv(0, 2, 3, 2, 4, S=5)
    with pytest.raises(ValueError, match="k and v"):
        scaled_dot_product_attention(q, k, v[:, :4])
    with pytest.raises(ValueError, match="k and v"):
        scaled_dot_product_attention(q, k, v[..., :3])


def test_query_key_disagreement_raises():
    q, k, v = random_qkv(0, 2, 3, 2, 4)
    with pytest.raises(ValueError, match="q .* and k"):
        scaled_dot_product_attention(q[..., :3], k, v)
    with pytest.raises(ValueError, match="q .* and k"):
        scaled_dot_product_attention(q[:1], k, v)


def test_non_boolean_mask_raises():
    q, k, v = random_qkv(0, 2, 3, 2, 4)
    with pytest.raises(ValueError, match="boolean"):
        scaled_dot_product_attention(q, k, v, jnp.ones((3, 3), jnp.float32))
    with pytest.raises(ValueError, match="boolean"):
        scaled_dot_product_attention(q, k, v, jnp.ones((3, 3), jnp.int32))


def test_mask_that_does_not_broadcast_raises():
    q, k, v = random_qkv(0, 2, 3, 2, 4)
    with pytest.raises(ValueError, match="broadcast"):
        scaled_dot_product_attention(q, k, v, causal_mask(4))
    with pytest.raises(ValueError, match="broadcast"):
        scaled_dot_product_attention(q, k, v, jnp.ones((5, 1, 1, 3), bool))


# --- multi-head attention ---------------------------------------------------------------

D_MODEL, N_HEADS = 12, 3


@pytest.fixture(scope="module")
def mha():
    # A larger output init than the default 0.02 so differences are visible above rounding.
    return MultiHeadAttention(D_MODEL, N_HEADS, rngs=nnx.Rngs(0), out_init_std=0.3)


@nnx.jit
def mha_forward(mha, x, mask):
    return mha(x, mask, return_weights=True)


def linear_np(layer, x):
    return x @ np.asarray(layer.kernel[...], np.float64) + np.asarray(layer.bias[...], np.float64)


def mha_numpy(mha, x, mask=None):
    """Multi-head attention by hand: project, split heads, attend per head, concat, W_o."""
    x = np.asarray(x, np.float64)
    B, T, D = x.shape
    H = mha.n_heads
    Dh = D // H
    q, k, v = (linear_np(layer, x) for layer in (mha.W_q, mha.W_k, mha.W_v))
    allowed = np.ones((T, T), bool) if mask is None else np.asarray(mask)
    heads = []
    weights = np.zeros((B, H, T, T))
    for h in range(H):
        cols = slice(h * Dh, (h + 1) * Dh)  # head h owns columns h*Dh .. (h+1)*Dh - 1
        scores = q[:, :, cols] @ k[:, :, cols].transpose(0, 2, 1) / math.sqrt(Dh)
        scores = np.where(allowed, scores, -np.inf)
        e = np.exp(scores - scores.max(axis=-1, keepdims=True))
        w = e / e.sum(axis=-1, keepdims=True)
        weights[:, h] = w
        heads.append(w @ v[:, :, cols])
    concat = np.concatenate(heads, axis=-1)  # (B, T, D)
    return linear_np(mha.W_o, concat), weights


def test_multi_head_attention_shapes(mha):
    x = jax.random.normal(jax.random.key(1), (2, 6, D_MODEL))
    out = mha_forward(mha, x, None)[0]
    assert out.shape == (2, 6, D_MODEL)
    out, weights = mha_forward(mha, x, causal_mask(6))
    assert out.shape == (2, 6, D_MODEL)
    assert weights.shape == (2, N_HEADS, 6, 6)


@pytest.mark.parametrize("causal", [False, True])
def test_multi_head_attention_equals_heads_split_by_hand(mha, causal):
    T = 6
    x = jax.random.normal(jax.random.key(2), (2, T, D_MODEL))
    mask = causal_mask(T) if causal else None
    out, weights = mha_forward(mha, x, mask)
    expected_out, expected_weights = mha_numpy(mha, x, mask)
    np.testing.assert_allclose(np.asarray(out), expected_out, atol=ATOL, rtol=0)
    np.testing.assert_allclose(np.asarray(weights), expected_weights, atol=ATOL, rtol=0)


@pytest.fixture(scope="module")
def flax_mha(mha):
    """flax.nnx.MultiHeadAttention holding our mha's weights, reshaped to its per-head layout.

    Our W_q is one (D, D) matrix whose columns h·Dh .. (h+1)·Dh - 1 belong to head h; flax keeps
    the same numbers as (D, H, Dh) (and W_o's rows as (H, Dh, D)), so a reshape copies them.
    """
    H, Dh = N_HEADS, D_MODEL // N_HEADS
    ref = nnx.MultiHeadAttention(num_heads=H, in_features=D_MODEL, decode=False, rngs=nnx.Rngs(1))
    for ours, theirs in [(mha.W_q, ref.query), (mha.W_k, ref.key), (mha.W_v, ref.value)]:
        theirs.kernel[...] = ours.kernel[...].reshape(D_MODEL, H, Dh)
        theirs.bias[...] = ours.bias[...].reshape(H, Dh)
    ref.out.kernel[...] = mha.W_o.kernel[...].reshape(H, Dh, D_MODEL)
    ref.out.bias[...] = mha.W_o.bias[...]
    return ref


@pytest.mark.parametrize("causal", [False, True])
def test_multi_head_attention_equals_flax_given_the_same_weights(mha, flax_mha, causal):
    T = 6
    x = jax.random.normal(jax.random.key(4), (2, T, D_MODEL))
    mask = causal_mask(T)[None, None] if causal else None
    ours = mha(x, mask)
    theirs = flax_mha(x, mask=mask, deterministic=True)
    np.testing.assert_allclose(np.asarray(ours), np.asarray(theirs), atol=ATOL, rtol=0)


def test_a_query_with_no_allowed_key_is_where_we_differ_from_flax(mha, flax_mha):
    """The one documented difference: a query that may attend to no key. Ours outputs W_o's
    bias (zero weights, zero values read); flax's softmax over equal "masked" scores spreads
    the weights evenly and outputs the projection of the mean value."""
    T = 4
    x = jax.random.normal(jax.random.key(5), (2, T, D_MODEL))
    mask = padding_mask(jnp.array([0, T]), T)  # sequence 0: every key is padding
    ours = np.asarray(mha(x, mask))
    theirs = np.asarray(flax_mha(x, mask=mask, deterministic=True))
    np.testing.assert_allclose(ours[1], theirs[1], atol=ATOL, rtol=0)  # sequence 1 agrees
    np.testing.assert_allclose(ours[0], np.broadcast_to(mha.W_o.bias[...], (T, D_MODEL)))
    _, _, v = mha.qkv(x)
    mean_value = np.asarray(v[0]).mean(axis=0).reshape(D_MODEL)  # (H, Dh) → (D,)
    expected = linear_np(mha.W_o, np.broadcast_to(mean_value, (T, D_MODEL)))
    np.testing.assert_allclose(theirs[0], expected, atol=ATOL, rtol=0)


@pytest.mark.parametrize("init_std,out_init_std", [(0.02, 0.02), (0.05, 0.01)])
def test_multi_head_attention_starts_from_the_stds_it_is_given(init_std, out_init_std):
    """Normal(0, std) kernels (65,536 draws each: the sample std is within 0.3%), zero biases."""
    mha = MultiHeadAttention(256, 4, rngs=nnx.Rngs(0), init_std=init_std, out_init_std=out_init_std)
    for layer, std in [(mha.W_q, init_std), (mha.W_k, init_std), (mha.W_v, init_std),
                       (mha.W_o, out_init_std)]:  # fmt: skip
        kernel = np.asarray(layer.kernel[...], np.float64)
        np.testing.assert_allclose(np.sqrt(np.mean(kernel**2)), std, rtol=0.03)
        assert abs(kernel.mean()) < 5 * std / 256
        np.testing.assert_array_equal(np.asarray(layer.bias[...]), 0.0)


@pytest.mark.parametrize("d_model,n_heads", [(12, 5), (10, 4), (8, 0)])
def test_n_heads_must_divide_d_model(d_model, n_heads):
    with pytest.raises(ValueError, match="n_heads"):
        MultiHeadAttention(d_model, n_heads, rngs=nnx.Rngs(0))


def test_multi_head_attention_rejects_wrong_width(mha):
    with pytest.raises(ValueError, match="x must have shape"):
        mha(jnp.zeros((2, 5, D_MODEL + 1)))


def test_decode_with_cache_matches_full_causal_forward(mha):
    B, T, C = 2, 6, 8  # cache longer than the sequence: unused slots must stay invisible
    x = jax.random.normal(jax.random.key(3), (B, T, D_MODEL))
    full = np.asarray(mha_forward(mha, x, causal_mask(T))[0])
    shape = (B, C, mha.n_heads, mha.d_head)
    k_cache, v_cache = jnp.zeros(shape), jnp.zeros(shape)
    decode = jax.jit(lambda x, kc, vc, p: mha.decode(x, kc, vc, p))  # one compile, traced p
    for t in range(T):
        out, k_cache, v_cache = decode(x[:, t : t + 1], k_cache, v_cache, jnp.int32(t))
        assert out.shape == (B, 1, D_MODEL)
        np.testing.assert_allclose(np.asarray(out[:, 0]), full[:, t], atol=ATOL, rtol=0)
    # The cache holds exactly the keys and values of the full sequence, then zeros.
    _, k, v = mha.qkv(x)
    np.testing.assert_allclose(np.asarray(k_cache[:, :T]), np.asarray(k), atol=1e-6)
    np.testing.assert_allclose(np.asarray(v_cache[:, :T]), np.asarray(v), atol=1e-6)
    np.testing.assert_array_equal(np.asarray(k_cache[:, T:]), 0.0)


# --- notebook 04: the per-token loop, masked softmax and other similarity functions ----------

from attnlab.attention import (  # noqa: E402  (kept with the tests below, for clean merges)
    additive_score,
    cosine_score,
    dot_product_score,
    masked_softmax,
)
from attnlab.attention import attention_loop as package_attention_loop  # noqa: E402

loop_jit = jax.jit(package_attention_loop, static_argnames="scale")


def random_mask(seed, B, H, T, S, density):
    """Random bool mask (B, H, T, S) in which every query keeps at least key 0."""
    mask = np.random.default_rng(seed).random((B, H, T, S)) < density
    mask[..., 0] = True
    return mask


@settings(FAST)
@given(
    shape=st.sampled_from(SHAPES),
    kind=st.sampled_from(["none", "causal", "padding", "combined", "random"]),
    seed=st.integers(0, 2**31 - 1),
)
def test_loop_matrix_and_jax_dot_product_attention_agree(shape, kind, seed):
    """The three ways of notebook 04 give the same output, and the loop the same weights."""
    B, T, H, Dh = shape
    q, k, v = random_qkv(seed, B, T, H, Dh)
    if kind == "random":
        full = random_mask(seed, B, H, T, T, density=0.5)
        mask = full
    else:
        mask, full = mask_for(kind, seed, B, T, H)
    loop_out, loop_weights = loop_jit(q, k, v, mask)
    matrix_out, matrix_weights = sdpa(q, k, v, mask)
    jax_out = jax_attention(q, k, v, mask=full)
    np.testing.assert_allclose(np.asarray(loop_out), np.asarray(matrix_out), atol=ATOL, rtol=0)
    np.testing.assert_allclose(np.asarray(loop_out), np.asarray(jax_out), atol=ATOL, rtol=0)
    np.testing.assert_allclose(
        np.asarray(loop_weights), np.asarray(matrix_weights), atol=ATOL, rtol=0
    )
    # and both agree with the float64 NumPy loop at the top of this file
    expected_out, expected_weights = attention_loop(q, k, v, full)
    np.testing.assert_allclose(np.asarray(loop_out), expected_out, atol=ATOL, rtol=0)
    np.testing.assert_allclose(np.asarray(loop_weights), expected_weights, atol=ATOL, rtol=0)


@pytest.mark.parametrize("scale", [0.3, 1.0])
def test_attention_loop_custom_scale_and_cross_attention(scale):
    B, T, S, H, Dh = 2, 3, 5, 2, 4
    q, k, v = random_qkv(21, B, T, H, Dh, S=S)
    pad = padding_mask(jnp.array([5, 2]), S)
    out, weights = package_attention_loop(q, k, v, pad, scale=scale)
    assert out.shape == (B, T, H, Dh) and weights.shape == (B, H, T, S)
    expected_out, expected_weights = attention_loop(q, k, v, np.asarray(pad), scale=scale)
    np.testing.assert_allclose(np.asarray(out), expected_out, atol=ATOL, rtol=0)
    np.testing.assert_allclose(np.asarray(weights), expected_weights, atol=ATOL, rtol=0)


def test_attention_loop_fully_masked_row_gives_zeros_not_nan():
    B, T, H, Dh = 1, 3, 1, 2
    q, k, v = random_qkv(5, B, T, H, Dh)
    mask = np.array([[True, False, False], [False, False, False], [True, True, True]])
    out, weights = package_attention_loop(q, k, v, mask)
    out, weights = np.asarray(out), np.asarray(weights)
    assert np.all(np.isfinite(out)) and np.all(np.isfinite(weights))
    np.testing.assert_array_equal(out[0, 1], 0.0)
    np.testing.assert_array_equal(weights[0, 0, 1], 0.0)
    np.testing.assert_allclose(weights[0, 0, 0], [1.0, 0.0, 0.0], atol=1e-7)
    np.testing.assert_allclose(out[0, 0, 0], v[0, 0, 0], atol=1e-6)  # only key 0: its value


def test_attention_loop_rejects_bad_inputs():
    q, k, v = random_qkv(0, 2, 3, 2, 4)
    with pytest.raises(ValueError, match="q must be"):
        package_attention_loop(q[:, :, 0], k, v)
    with pytest.raises(ValueError, match="q must be"):
        package_attention_loop(q, k, v[..., :3])
    with pytest.raises(ValueError, match="must agree"):
        package_attention_loop(q[..., :3], k, v)
    with pytest.raises(ValueError, match="boolean"):
        package_attention_loop(q, k, v, jnp.ones((3, 3)))
    with pytest.raises(ValueError, match="broadcast"):
        package_attention_loop(q, k, v, causal_mask(4))


# masked softmax ---------------------------------------------------------------------------


def softmax_np(x):
    e = np.exp(x - x.max())
    return e / e.sum()


@settings(FAST)
@given(seed=st.integers(0, 2**31 - 1), density=st.sampled_from([0.0, 0.3, 0.8, 1.0]))
def test_masked_softmax_is_a_softmax_over_the_allowed_entries(seed, density):
    rng = np.random.default_rng(seed)
    scores = (rng.normal(size=(4, 6)) * 5).astype(np.float32)
    mask = rng.random((4, 6)) < density
    got = np.asarray(masked_softmax(scores, mask))
    for row in range(4):
        expected = np.zeros(6)
        if mask[row].any():
            expected[mask[row]] = softmax_np(scores[row, mask[row]].astype(np.float64))
        np.testing.assert_allclose(got[row], expected, atol=1e-6)
    assert np.all(got[~mask] == 0.0)  # exactly zero, not just small


def test_masked_softmax_without_a_mask_is_the_softmax():
    scores = jnp.array([[1.0, 2.0, 3.0], [0.0, 0.0, -1.0]])
    np.testing.assert_allclose(
        np.asarray(masked_softmax(scores)), np.asarray(jax.nn.softmax(scores)), atol=1e-7
    )
    all_true = jnp.ones((2, 3), bool)
    np.testing.assert_allclose(
        np.asarray(masked_softmax(scores, all_true)), np.asarray(jax.nn.softmax(scores)), atol=1e-7
    )
    # over the other axis: columns sum to 1
    np.testing.assert_allclose(np.asarray(masked_softmax(scores, axis=0)).sum(0), 1.0, atol=1e-6)


def test_masked_softmax_rejects_bad_masks():
    with pytest.raises(ValueError, match="boolean"):
        masked_softmax(jnp.zeros((2, 3)), jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="broadcast"):
        masked_softmax(jnp.zeros((2, 3)), jnp.ones((3, 2), bool))


# similarity functions ----------------------------------------------------------------------


def test_dot_product_score_known_values():
    q = jnp.array([[1.0, 2.0, 0.0, 0.0]])  # d = 4, so the default scale is 1/2
    k = jnp.array([[3.0, 4.0, 0.0, 0.0], [0.0, 0.0, 5.0, 0.0]])
    np.testing.assert_allclose(np.asarray(dot_product_score(q, k)), [[5.5, 0.0]], atol=1e-6)
    np.testing.assert_allclose(np.asarray(dot_product_score(q, k, scale=1.0)), [[11.0, 0.0]])


def test_dot_product_score_matches_a_loop_with_leading_axes():
    rng = np.random.default_rng(1)
    q, k = rng.normal(size=(2, 3, 5)), rng.normal(size=(2, 4, 5))
    got = np.asarray(dot_product_score(q, k, scale=0.7))
    for b in range(2):
        for t in range(3):
            for s in range(4):
                assert got[b, t, s] == pytest.approx(0.7 * sum(q[b, t] * k[b, s]), abs=1e-5)


def test_cosine_score_known_values():
    q = jnp.array([[1.0, 0.0], [0.0, 0.0]])
    k = jnp.array([[2.0, 0.0], [0.0, 3.0], [-1.0, 0.0], [1.0, 1.0]])
    expected = [[1.0, 0.0, -1.0, 1 / math.sqrt(2)], [0.0, 0.0, 0.0, 0.0]]  # zero vector: 0
    np.testing.assert_allclose(np.asarray(cosine_score(q, k)), expected, atol=1e-6)


@settings(FAST)
@given(seed=st.integers(0, 2**31 - 1), factor=st.floats(0.01, 100.0))
def test_cosine_score_ignores_length_and_stays_in_minus_one_to_one(seed, factor):
    rng = np.random.default_rng(seed)
    q, k = rng.normal(size=(3, 4)).astype(np.float32), rng.normal(size=(5, 4)).astype(np.float32)
    scores = np.asarray(cosine_score(q, k))
    assert np.all(np.abs(scores) <= 1 + 1e-6)
    np.testing.assert_allclose(np.asarray(cosine_score(q * factor, k)), scores, atol=1e-5)
    expected = (q @ k.T) / np.outer(np.linalg.norm(q, axis=1), np.linalg.norm(k, axis=1))
    np.testing.assert_allclose(scores, expected, atol=1e-5)


def test_additive_score_known_value():
    # one query [1], one key [2]: v_a · tanh(W_a q + U_a k) = 2 · tanh(1·1 + 1·2) = 2 tanh(3)
    got = additive_score(jnp.array([[1.0]]), jnp.array([[2.0]]), jnp.array([[1.0]]),
                         jnp.array([[1.0]]), jnp.array([2.0]))
    np.testing.assert_allclose(np.asarray(got), [[2 * math.tanh(3.0)]], rtol=1e-6)


def test_additive_score_matches_a_loop_and_allows_different_widths():
    rng = np.random.default_rng(2)
    d_q, d_k, d_a = 3, 5, 4  # query and key widths may differ
    q, k = rng.normal(size=(2, 3, d_q)), rng.normal(size=(2, 6, d_k))
    W_a, U_a, v_a = rng.normal(size=(d_q, d_a)), rng.normal(size=(d_k, d_a)), rng.normal(size=d_a)
    got = np.asarray(additive_score(q, k, W_a, U_a, v_a))
    assert got.shape == (2, 3, 6)
    for b in range(2):
        for t in range(3):
            for s in range(6):
                hidden = np.tanh(W_a.T @ q[b, t] + U_a.T @ k[b, s])  # column-vector form
                assert got[b, t, s] == pytest.approx(v_a @ hidden, abs=1e-5)
    assert np.all(np.abs(got) <= np.abs(v_a).sum() + 1e-6)


def test_score_functions_reject_bad_shapes():
    q, k = jnp.ones((3, 4)), jnp.ones((5, 4))
    with pytest.raises(ValueError, match="same width"):
        dot_product_score(q, jnp.ones((5, 3)))
    with pytest.raises(ValueError, match="same width"):
        cosine_score(q, jnp.ones((5, 3)))
    with pytest.raises(ValueError, match="at least 2-D"):
        dot_product_score(jnp.ones(4), k)
    with pytest.raises(ValueError, match="W_a"):
        additive_score(q, k, jnp.ones((4, 2)), jnp.ones((4, 3)), jnp.ones(2))
    with pytest.raises(ValueError, match="W_a"):
        additive_score(q, k, jnp.ones((3, 2)), jnp.ones((4, 2)), jnp.ones(2))


# --- mask patterns of GPT, BERT and T5 (notebook 06) ------------------------------------------

from attnlab.attention import (  # noqa: E402 - kept with the tests that use them
    bidirectional_mask,
    cross_attention_mask,
    encoder_decoder_masks,
)


@pytest.mark.parametrize("T", [1, 2, 5])
def test_bidirectional_mask_lets_every_position_see_every_position(T):
    mask = bidirectional_mask(T)
    assert mask.shape == (T, T) and mask.dtype == jnp.bool_
    assert bool(mask.all())


def test_bidirectional_attention_equals_unmasked_attention():
    q, k, v = random_qkv(11, 2, 5, 3, 4)
    masked, _ = sdpa(q, k, v, bidirectional_mask(5))
    unmasked, _ = sdpa(q, k, v, None)
    np.testing.assert_allclose(np.asarray(masked), np.asarray(unmasked), atol=ATOL, rtol=0)


@pytest.mark.parametrize("kind", ["causal", "bidirectional"])
def test_only_the_bidirectional_mask_lets_a_later_token_change_earlier_outputs(kind):
    # Information flow: change the last token's key and value, watch position 0's output.
    q, k, v = random_qkv(12, 1, 6, 2, 4)
    mask = causal_mask(6) if kind == "causal" else bidirectional_mask(6)
    before, _ = sdpa(q, k, v, mask)
    k2, v2 = k.copy(), v.copy()
    k2[:, -1] += 3.0
    v2[:, -1] += 3.0
    after, _ = sdpa(q, k2, v2, mask)
    moved = float(jnp.abs(after[:, 0] - before[:, 0]).max())
    assert (moved > 1e-3) == (kind == "bidirectional"), moved


@pytest.mark.parametrize("T,S", [(1, 1), (3, 5), (4, 2)])
def test_cross_attention_mask_lets_every_output_position_see_the_whole_input(T, S):
    mask = cross_attention_mask(T, S)
    assert mask.shape == (T, S) and mask.dtype == jnp.bool_ and bool(mask.all())
    q, k, v = random_qkv(13, 2, T, 2, 4, S=S)
    out, _ = sdpa(q, k, v, mask)
    np.testing.assert_allclose(
        np.asarray(out), np.asarray(jax_attention(q, k, v)), atol=ATOL, rtol=0
    )


def test_encoder_decoder_masks_are_bidirectional_causal_and_full_cross():
    masks = encoder_decoder_masks(source_len=5, target_len=3)
    assert list(masks) == ["encoder self-attention", "decoder self-attention", "cross-attention"]
    expected_decoder = np.array([[1, 0, 0], [1, 1, 0], [1, 1, 1]], dtype=bool)
    encoder = np.asarray(masks["encoder self-attention"])
    np.testing.assert_array_equal(encoder, np.ones((5, 5), bool))
    np.testing.assert_array_equal(np.asarray(masks["decoder self-attention"]), expected_decoder)
    np.testing.assert_array_equal(np.asarray(masks["cross-attention"]), np.ones((3, 5), bool))


def test_mask_lengths_accept_numpy_integers():
    assert bidirectional_mask(np.int64(3)).shape == (3, 3)
    assert cross_attention_mask(np.int32(2), np.int64(4)).shape == (2, 4)


@pytest.mark.parametrize("bad", [0, -2, 2.0, True, "3", None])
def test_mask_builders_reject_bad_lengths(bad):
    with pytest.raises(ValueError, match="seq_len must be an integer >= 1"):
        bidirectional_mask(bad)
    with pytest.raises(ValueError, match="target_len must be an integer >= 1"):
        cross_attention_mask(bad, 3)
    with pytest.raises(ValueError, match="source_len must be an integer >= 1"):
        cross_attention_mask(3, bad)
    with pytest.raises(ValueError, match="source_len must be an integer >= 1"):
        encoder_decoder_masks(bad, 3)
    with pytest.raises(ValueError, match="target_len must be an integer >= 1"):
        encoder_decoder_masks(3, bad)


# --- split_heads and mean_weight_at_offset (notebook 05) ---------------------------------------

from attnlab.attention import mean_weight_at_offset, split_heads  # noqa: E402


@pytest.mark.parametrize("B,T,H,Dh", [(1, 1, 1, 1), (2, 5, 3, 4), (1, 4, 4, 2)])
def test_split_heads_gives_each_head_its_slice_of_every_vector(B, T, H, Dh):
    x = np.random.default_rng(0).normal(size=(B, T, H * Dh)).astype(np.float32)
    heads = np.asarray(split_heads(jnp.asarray(x), H))
    assert heads.shape == (B, H, T, Dh)
    for b in range(B):
        for h in range(H):
            for t in range(T):
                np.testing.assert_array_equal(heads[b, h, t], x[b, t, h * Dh : (h + 1) * Dh])


def test_split_heads_undone_by_transpose_and_reshape():
    x = jnp.asarray(np.random.default_rng(1).normal(size=(2, 6, 12)), jnp.float32)
    heads = split_heads(x, 3)
    np.testing.assert_array_equal(np.asarray(heads.transpose(0, 2, 1, 3).reshape(2, 6, 12)), x)


@pytest.mark.parametrize("shape,n_heads", [((4, 8), 2), ((1, 4, 6), 4), ((1, 4, 6), 0),
                                           ((1, 4, 6), 1.5), ((1, 4, 6), True)])
def test_split_heads_rejects_bad_input(shape, n_heads):
    with pytest.raises(ValueError, match="x must be 3-D|n_heads"):
        split_heads(jnp.zeros(shape), n_heads)


def test_mean_weight_at_offset_equals_a_loop():
    w = np.random.default_rng(2).random((2, 3, 6, 6))
    for k in range(6):
        expected = np.zeros((2, 3))
        for t in range(k, 6):
            expected += w[..., t, t - k]
        expected /= 6 - k
        np.testing.assert_allclose(np.asarray(mean_weight_at_offset(w, k)), expected, rtol=1e-6)


def test_a_previous_token_head_scores_one_at_offset_one():
    T = 7
    w = np.zeros((T, T))
    w[0, 0] = 1.0
    for t in range(1, T):
        w[t, t - 1] = 1.0  # every query looks only at the token before it
    assert float(mean_weight_at_offset(w, 1)) == pytest.approx(1.0)
    assert float(mean_weight_at_offset(w, 0)) == pytest.approx(1 / T)  # only query 0 on itself


@pytest.mark.parametrize("shape,offset", [((3, 4), 0), ((4, 4), 4), ((4, 4), -1), ((4, 4), 1.5)])
def test_mean_weight_at_offset_rejects_bad_input(shape, offset):
    with pytest.raises(ValueError, match="weights|offset"):
        mean_weight_at_offset(np.zeros(shape), offset)
