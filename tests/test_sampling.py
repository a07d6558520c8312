"""Tests for attnlab.sampling: known answers, properties, bad input, and generation."""

from __future__ import annotations

import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from attnlab import sampling
from attnlab.data import CharTokenizer
from attnlab.gpt import GPT, GPTConfig
from attnlab.sampling import (
    PromptTruncatedWarning,
    apply_temperature,
    generate,
    generate_text,
    next_token_distribution,
    top_k_filter,
    top_p_filter,
)

P4 = np.array([0.5, 0.3, 0.15, 0.05])
LOGITS4 = np.log(P4).astype(np.float32)


@pytest.fixture(autouse=True, scope="module")
def full_float32_matmuls():
    """Exact float32 products, so the 1e-5 comparisons also hold on GPUs that default to TF32."""
    with jax.default_matmul_precision("highest"):
        yield


def compiled_versions() -> int:
    """How many compiled versions of generate's loop JAX holds: the jitted function's own cache.

    (``_cache_size`` is what JAX's own tests use; it exists on jax 0.7.2 and the newest release.)
    """
    return sampling.loop._generate_core._cache_size()


def softmax64(x):
    x = np.asarray(x, np.float64)
    e = np.exp(x - x.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# --- known answers ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("top_p", "expected"),
    [
        (0.3, [1.0, 0.0, 0.0, 0.0]),  # 0.5 alone already covers 0.3
        (0.6, [0.625, 0.375, 0.0, 0.0]),  # 0.5 < 0.6; 0.5 + 0.3 crosses it
        (0.85, [0.5 / 0.95, 0.3 / 0.95, 0.15 / 0.95, 0.0]),  # 0.8 < 0.85 <= 0.95
        (1.0, [0.5, 0.3, 0.15, 0.05]),
    ],
)
def test_top_p_keeps_the_smallest_nucleus(top_p, expected):
    probs = next_token_distribution(LOGITS4, top_p=top_p)
    np.testing.assert_allclose(probs, expected, atol=1e-6)


def test_top_k_2_keeps_the_two_most_likely_tokens():
    np.testing.assert_allclose(
        next_token_distribution(LOGITS4, top_k=2), [0.625, 0.375, 0, 0], atol=1e-6
    )
    filtered = top_k_filter(LOGITS4, 2)
    np.testing.assert_array_equal(filtered[:2], LOGITS4[:2])
    assert np.all(np.isneginf(filtered[2:]))


@pytest.mark.parametrize("top_k", [None, 0, 4, 10])
def test_top_k_none_zero_or_at_least_vocab_keeps_everything(top_k):
    np.testing.assert_array_equal(top_k_filter(LOGITS4, top_k), LOGITS4)
    np.testing.assert_allclose(next_token_distribution(LOGITS4, top_k=top_k), P4, atol=1e-6)


def test_top_k_keeps_every_token_tied_with_the_kth():
    logits = jnp.array([3.0, 1.0, 2.0, 2.0, 0.0])
    kept = np.isfinite(top_k_filter(logits, 2))
    np.testing.assert_array_equal(kept, [True, False, True, True, False])


def test_temperature_zero_is_one_hot_on_the_argmax():
    np.testing.assert_array_equal(next_token_distribution(LOGITS4, temperature=0), [1, 0, 0, 0])
    shuffled = LOGITS4[[2, 0, 3, 1]]
    np.testing.assert_array_equal(next_token_distribution(shuffled, temperature=0.0), [0, 1, 0, 0])


def test_temperature_zero_shares_the_mass_among_tied_maxima():
    probs = next_token_distribution(jnp.array([1.0, 2.0, 2.0]), temperature=0)
    np.testing.assert_allclose(probs, [0.0, 0.5, 0.5])


def test_temperature_2_equals_softmax_of_half_the_logits():
    logits = np.array([[2.0, -1.0, 0.5, 3.0], [0.0, 0.0, 1.0, -4.0]], np.float32)
    e = np.exp(logits.astype(np.float64) / 2)
    expected = e / e.sum(axis=-1, keepdims=True)
    np.testing.assert_allclose(next_token_distribution(logits, temperature=2.0), expected, atol=1e-6)
    np.testing.assert_allclose(apply_temperature(logits, 2.0), logits / 2, rtol=1e-7)


def test_top_p_one_keeps_tokens_that_rounding_would_drop():
    # In float32 the running sum is already exactly 1.0 after the first token.
    logits = jnp.array([0.0, -30.0, -31.0])
    assert np.all(np.isfinite(top_p_filter(logits, 1.0)))
    assert np.all(np.asarray(next_token_distribution(logits, top_p=1.0))[1:] > 0)


def test_filters_work_under_jit_with_traced_parameters():
    f = jax.jit(lambda x, t, k, p: next_token_distribution(x, t, k, p))
    np.testing.assert_allclose(f(LOGITS4, 1.0, 2, 1.0), [0.625, 0.375, 0, 0], atol=1e-6)
    np.testing.assert_allclose(f(LOGITS4, 1.0, 0, 0.6), [0.625, 0.375, 0, 0], atol=1e-6)
    np.testing.assert_array_equal(f(LOGITS4, 0.0, 0, 1.0), [1, 0, 0, 0])


# Powers of two: float32 softmax reproduces these probabilities exactly (checked below), so a
# top_p equal to a running sum is an exact tie between "reached" and "not yet reached".
P5 = np.array([0.5, 0.25, 0.125, 0.0625, 0.0625])
LOGITS5 = np.log(P5).astype(np.float32)


@pytest.mark.parametrize(
    ("top_p", "expected"),
    [
        (0.5, [1, 0, 0, 0, 0]),
        (0.75, [2 / 3, 1 / 3, 0, 0, 0]),
        (0.875, [4 / 7, 2 / 7, 1 / 7, 0, 0]),
        # 0.9375 is reached by the 4th token, and the 5th ties with it: ties are kept.
        (0.9375, P5),
    ],
)
def test_top_p_equal_to_a_running_sum_keeps_the_token_that_reaches_it_and_no_more(top_p, expected):
    exact = np.asarray(jax.nn.softmax(jnp.asarray(LOGITS5)))
    assert exact.tolist() == P5.tolist(), "precondition: float32 softmax of log(P5) is exact"
    np.testing.assert_allclose(next_token_distribution(LOGITS5, top_p=top_p), expected, atol=1e-7)


@pytest.mark.parametrize("top_p", [1e-9, 1e-6, 0.01])
def test_a_tiny_top_p_keeps_exactly_one_token(top_p):
    logits = jnp.array([[0.3, 2.0, -1.0, 1.9], [5.0, 5.1, 4.0, -3.0]])
    kept = np.isfinite(np.asarray(top_p_filter(logits, top_p)))
    np.testing.assert_array_equal(kept, [[0, 1, 0, 0], [0, 1, 0, 0]])
    np.testing.assert_array_equal(next_token_distribution(logits, top_p=top_p), kept)


def test_top_p_1_and_top_k_none_keep_every_token_with_its_probability():
    np.testing.assert_array_equal(top_p_filter(LOGITS5, 1.0), LOGITS5)
    np.testing.assert_allclose(next_token_distribution(LOGITS5, top_k=None, top_p=1.0), P5)


def test_tokens_at_minus_infinity_stay_impossible_under_every_filter():
    logits = jnp.array([1.0, -jnp.inf, 0.0, -jnp.inf, -1.0])
    e = np.exp([1.0, 0.0, -1.0])
    cases = {
        "plain": (dict(), [e[0], 0, e[1], 0, e[2]] / e.sum()),
        "top_k=4, more than the finite logits": (dict(top_k=4), [e[0], 0, e[1], 0, e[2]] / e.sum()),
        "top_k=2": (dict(top_k=2), [e[0], 0, e[1], 0, 0] / e[:2].sum()),
        "top_p=1": (dict(top_p=1.0), [e[0], 0, e[1], 0, e[2]] / e.sum()),
        "top_p=0.5": (dict(top_p=0.5), [1, 0, 0, 0, 0]),
        "temperature=0": (dict(temperature=0), [1, 0, 0, 0, 0]),
        "temperature=3": (dict(temperature=3.0), np.array([e[0], 0, e[1], 0, e[2]]) ** (1 / 3)),
    }
    for name, (settings_, expected) in cases.items():
        expected = np.asarray(expected, np.float64) / np.sum(expected)
        probs = np.asarray(next_token_distribution(logits, **settings_))
        np.testing.assert_allclose(probs, expected, atol=1e-6, err_msg=name)
        assert probs[1] == 0 and probs[3] == 0, name


@pytest.mark.parametrize(
    "settings_",
    [dict(), dict(temperature=0), dict(top_k=2), dict(top_k=3), dict(top_p=0.6), dict(top_p=0.9),
     dict(temperature=2.0, top_k=4, top_p=0.8)],
)
def test_bfloat16_logits_keep_the_same_tokens_as_float32(settings_):
    # Small integers and halves are exact in bfloat16, ties included (1.0 twice).
    logits = np.array([[2.0, 1.0, -0.5, 1.0, 0.5, -3.0], [0.0, 4.0, 3.5, -1.0, 3.5, 1.0]])
    p32 = np.asarray(next_token_distribution(jnp.asarray(logits, jnp.float32), **settings_))
    p16 = next_token_distribution(jnp.asarray(logits, jnp.bfloat16), **settings_)
    assert p16.dtype == jnp.bfloat16
    p16 = np.asarray(p16, np.float32)
    np.testing.assert_array_equal(p16 > 0, p32 > 0)
    np.testing.assert_allclose(p16, p32, atol=1e-2)  # bfloat16 keeps 2 to 3 digits
    for f in (lambda x: top_k_filter(x, settings_.get("top_k")),
              lambda x: top_p_filter(x, settings_.get("top_p"))):  # fmt: skip
        assert f(jnp.asarray(logits, jnp.bfloat16)).dtype == jnp.bfloat16
        np.testing.assert_array_equal(
            np.isfinite(np.asarray(f(jnp.asarray(logits, jnp.bfloat16)), np.float32)),
            np.isfinite(np.asarray(f(jnp.asarray(logits, jnp.float32)))),
        )


# --- properties -----------------------------------------------------------------------------------

# A few fixed shapes (each new shape costs compilation time), from one token to twelve.
SHAPES = st.sampled_from([(1, 1), (1, 2), (2, 5), (3, 12)])
# No subnormal floats: XLA on CPU flushes them to zero, so 3e-45 and 0 would tie there only.
logit_rows = hnp.arrays(
    np.float32, SHAPES, elements=st.floats(-8, 8, width=32, allow_subnormal=False)
)
top_ps = st.floats(0.01, 1.0)
# Logits on a grid of halves: ties are exact and distinct values stay distinct after scaling.
grid_rows = hnp.arrays(np.float32, SHAPES, elements=st.integers(-16, 16).map(lambda i: i / 2))


@settings(max_examples=60, deadline=None)
@given(
    logits=logit_rows,
    temperature=st.one_of(st.just(0.0), st.floats(0.05, 3.0)),
    top_k=st.one_of(st.none(), st.integers(0, 14)),
    top_p=st.one_of(st.none(), top_ps),
)
def test_next_token_distribution_is_a_distribution(logits, temperature, top_k, top_p):
    probs = np.asarray(next_token_distribution(logits, temperature, top_k, top_p), np.float64)
    assert probs.shape == logits.shape
    assert np.all(probs >= 0)
    np.testing.assert_allclose(probs.sum(axis=-1), 1.0, atol=1e-5)
    assert np.all((probs > 0).sum(axis=-1) >= 1)
    # Only tokens among the k largest logits can have probability (temperature keeps the order).
    # The row maximum is subtracted first (documented), in float32: values within rounding of
    # each other there, such as 1e-30 and 0 next to a maximum of 1, count as ties.
    if top_k:
        shifted = logits - logits.max(axis=-1, keepdims=True)
        kth = -np.sort(-shifted, axis=-1)[:, [min(top_k, logits.shape[-1]) - 1]]
        assert np.all(probs[shifted < kth] == 0)


@settings(max_examples=60, deadline=None)
@given(logits=logit_rows, top_k=st.integers(1, 14))
def test_top_k_keeps_exactly_the_tokens_at_or_above_the_kth_largest(logits, top_k):
    kept = np.isfinite(np.asarray(top_k_filter(logits, top_k)))
    V = logits.shape[-1]
    for row, kept_row in zip(logits, kept, strict=True):
        kth = sorted(row.tolist(), reverse=True)[min(top_k, V) - 1]
        np.testing.assert_array_equal(kept_row, row >= kth)
        if len(set(row.tolist())) == V:  # no ties: exactly min(k, V) tokens
            assert kept_row.sum() == min(top_k, V)


@settings(max_examples=60, deadline=None)
@given(logits=logit_rows, top_p=top_ps)
def test_top_p_kept_mass_reaches_top_p_and_no_smaller_set_does(logits, top_p):
    probs = softmax64(logits)
    kept = np.isfinite(np.asarray(top_p_filter(logits, top_p)))
    for row, p_row, kept_row in zip(logits, probs, kept, strict=True):
        assert kept_row.any()
        smallest_kept = row[kept_row].min()
        np.testing.assert_array_equal(kept_row, row >= smallest_kept)  # most likely tokens first
        assert p_row[kept_row].sum() >= top_p - 1e-5
        # Dropping the least likely kept token (with its exact ties) falls short of top_p.
        assert p_row[row > smallest_kept].sum() < top_p + 1e-5


@settings(max_examples=60, deadline=None)
@given(logits=grid_rows, temperature=st.floats(0.2, 3.0), top_k=st.integers(0, 14), top_p=top_ps)
def test_next_token_distribution_matches_a_numpy_reference(logits, temperature, top_k, top_p):
    scaled = logits.astype(np.float64) / temperature
    probs = np.asarray(next_token_distribution(logits, temperature, top_k, top_p))
    for row, out in zip(scaled, probs, strict=True):
        V = row.size
        keep = row >= sorted(row, reverse=True)[(min(top_k, V) if top_k else V) - 1]
        p = softmax64(np.where(keep, row, -np.inf))
        order = np.argsort(-p, kind="stable")
        before = np.concatenate([[0.0], np.cumsum(p[order])[:-1]])
        assume(np.all(np.abs(before - top_p) > 1e-5))  # skip float32-vs-float64 coin flips
        n = max(1, int((before < top_p).sum()))
        nucleus = p >= p[order[n - 1]]
        expected = np.where(nucleus, p, 0.0) / p[nucleus].sum()
        np.testing.assert_allclose(out, expected, atol=2e-6)


# --- bad input ------------------------------------------------------------------------------------


@pytest.mark.parametrize("temperature", [-0.1, -1, float("nan"), float("inf"), None, True, "1"])
def test_bad_temperature_is_rejected(temperature):
    with pytest.raises(ValueError, match="temperature"):
        apply_temperature(LOGITS4, temperature)
    with pytest.raises(ValueError, match="temperature"):
        next_token_distribution(LOGITS4, temperature=temperature)


@pytest.mark.parametrize("top_p", [0, 0.0, 1.5, -0.1, float("nan"), True, [0.5]])
def test_bad_top_p_is_rejected(top_p):
    with pytest.raises(ValueError, match=r"top_p must be in \(0, 1\]"):
        top_p_filter(LOGITS4, top_p)
    with pytest.raises(ValueError, match="top_p"):
        next_token_distribution(LOGITS4, top_p=top_p)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("top_p", 1.5, "top_p must be in (0, 1]; got 1.5. Use top_p=1.0 to keep every token."),
        (
            "top_k",
            -2,
            "top_k must be None or an integer >= 0; got -2. "
            "Use top_k=None (or 0) to keep every token.",
        ),
        (
            "top_k",
            2.5,
            "top_k must be None or an integer >= 0; got 2.5. "
            "Use top_k=None (or 0) to keep every token.",
        ),
        (
            "temperature",
            -0.5,
            "temperature must be a finite number >= 0; got -0.5. "
            "Use 1.0 for the model's own distribution, 0 for greedy decoding.",
        ),
    ],
)
def test_messages_name_the_argument_its_value_the_range_and_what_to_do(name, value, message):
    single = {"temperature": apply_temperature, "top_k": top_k_filter, "top_p": top_p_filter}
    with pytest.raises(ValueError) as info:
        single[name](LOGITS4, value)
    assert str(info.value) == message
    with pytest.raises(ValueError) as info:
        next_token_distribution(LOGITS4, **{name: value})
    assert str(info.value) == message


@pytest.mark.parametrize("top_k", [-1, 2.5, True, "3", [2]])
def test_bad_top_k_is_rejected(top_k):
    with pytest.raises(ValueError, match="top_k"):
        top_k_filter(LOGITS4, top_k)


@pytest.mark.parametrize(
    ("logits", "message"),
    [
        ([0.5, float("nan"), 0.1], "NaN"),
        ([0.5, float("inf"), 0.1], r"\+inf"),
        ([[0.0, 1.0], [-np.inf, -np.inf]], "at least one finite value in every row"),
        (np.zeros((2, 0)), r"\(\.\.\., V\) with V >= 1"),
    ],
)
def test_bad_logits_are_rejected_naming_them(logits, message):
    logits = jnp.asarray(logits, jnp.float32)
    for f in (apply_temperature, top_k_filter, top_p_filter, next_token_distribution):
        args = (logits,) if f is next_token_distribution else (logits, 1)
        with pytest.raises(ValueError, match=f"logits.*{message}"):
            f(*args)


# --- generation -----------------------------------------------------------------------------------

CONFIG = GPTConfig(vocab_size=11, context_length=16, n_layers=2, n_heads=2, d_model=32, d_ff=64)
C = CONFIG.context_length


@pytest.fixture(scope="module")
def model():
    """A small random GPT whose weights are large enough to give varied, peaked predictions."""
    graphdef, state = nnx.split(GPT(CONFIG, rngs=nnx.Rngs(0)))
    leaves, treedef = jax.tree.flatten(state)
    keys = jax.random.split(jax.random.key(42), len(leaves))
    leaves = [
        x + 0.3 * jax.random.normal(k, x.shape, x.dtype) if jnp.issubdtype(x.dtype, jnp.floating)
        else x
        for x, k in zip(leaves, keys, strict=True)
    ]
    return nnx.merge(graphdef, jax.tree.unflatten(treedef, leaves))


@pytest.fixture(scope="module")
def flat_model():
    """All weights 0: every next-token distribution is uniform over the 11 tokens."""
    graphdef, state = nnx.split(GPT(CONFIG, rngs=nnx.Rngs(0)))
    return nnx.merge(graphdef, jax.tree.map(jnp.zeros_like, state))


@pytest.fixture(scope="module")
def forward(model):
    """Full forward pass, compiled once for a (B, C) input: ``forward(tokens) -> (B, C, V)``."""
    graphdef, state = nnx.split(model)
    f = jax.jit(lambda state, tokens: nnx.merge(graphdef, state)(tokens))
    return lambda tokens: f(state, jnp.asarray(tokens))


def window_logits(forward, rows):
    """Logits after the last token of each row's last C tokens, by a full forward pass.

    Each window is zero-padded at the end to the fixed length C (one compile); the causal mask
    keeps the padding out of the last real position (checked in
    test_decode_step_matches_the_full_forward).
    """
    padded = np.zeros((len(rows), C), np.int32)
    for out, row in zip(padded, rows, strict=True):
        window = row[-C:]
        out[: len(window)] = window
    logits = np.asarray(forward(padded))
    return np.stack([logits[b, min(len(row), C) - 1] for b, row in enumerate(rows)])


def naive_greedy(forward, prompts, max_new_tokens):
    """Greedy decoding the slow way: a full forward pass over the last C tokens of each row."""
    rows = [list(map(int, row)) for row in prompts]
    for _ in range(max_new_tokens):
        for row, logits in zip(rows, window_logits(forward, rows), strict=True):
            row.append(int(logits.argmax()))
    return rows


def padded_batch(prompts, width=None, fill=7):
    """Prompts of different lengths left-aligned in one (B, width) array; the rest ``fill``."""
    lengths = [len(p) for p in prompts]
    batch = np.full((len(prompts), width or max(lengths)), fill, np.int32)
    for row, prompt in zip(batch, prompts, strict=True):
        row[: len(prompt)] = prompt
    return batch, lengths


def test_decode_step_matches_the_full_forward(model, forward):
    tokens = jax.random.randint(jax.random.key(1), (2, C), 0, 11)
    full = np.asarray(forward(tokens))
    graphdef, state = nnx.split(model)
    step = jax.jit(lambda s, tok, cache, t: nnx.merge(graphdef, s).decode_step(tok, cache, t))
    cache = model.init_cache(2)
    per_layer = {"k": list(cache["k"]), "v": list(cache["v"])}
    for t in range(C):
        logits, cache = step(state, tokens[:, t], cache, jnp.int32(t))
        np.testing.assert_allclose(logits, full[:, t], atol=1e-5, err_msg=f"position {t}")
        # The per-layer list form of the cache gives the same logits and stays a list.
        logits, per_layer = step(state, tokens[:, t], per_layer, jnp.int32(t))
        np.testing.assert_allclose(logits, full[:, t], atol=1e-5, err_msg=f"position {t}")
        assert isinstance(per_layer["k"], list) and len(per_layer["k"]) == CONFIG.n_layers
    # Causality, which window_logits relies on: later tokens do not change earlier logits.
    changed = tokens.at[:, 7:].set(0)
    np.testing.assert_allclose(np.asarray(forward(changed))[:, :7], full[:, :7], atol=1e-5)


def test_prefill_reads_prompts_of_different_lengths_in_one_pass(model, forward):
    prompts = [[3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8], [2, 7, 1, 8, 2], [6]]
    batch, lengths = padded_batch(prompts)  # padding 7s after the shorter prompts
    logits, cache = jax.jit(lambda tokens, n: model.prefill(tokens, n))(batch, jnp.array(lengths))
    np.testing.assert_allclose(logits, window_logits(forward, prompts), atol=1e-5)
    c = CONFIG
    assert cache["k"].shape == cache["v"].shape == (c.n_layers, 3, C, c.n_heads, c.d_head)
    # Continuing from the prefilled cache at each row's own position: as the full forward.
    following = np.array([0, 10, 4], np.int32)
    step = jax.jit(lambda token, cache, position: model.decode_step(token, cache, position))
    logits, _ = step(following, cache, jnp.array(lengths))
    longer = [p + [int(t)] for p, t in zip(prompts, following, strict=True)]
    np.testing.assert_allclose(logits, window_logits(forward, longer), atol=1e-5)
    np.testing.assert_allclose(model.prefill(batch)[0], np.asarray(forward(batch))[:, -1], atol=1e-5)


def test_greedy_generation_equals_the_naive_loop_inside_and_past_the_window(model, forward):
    prompt = np.array([3, 1, 4, 1, 5], np.int32)
    out = np.asarray(generate(model, prompt, 30, temperature=0, key=jax.random.key(0)))
    expected = naive_greedy(forward, [prompt], 30)[0]
    assert len(set(out[5:].tolist())) >= 3, "test model too dull to prove anything"
    np.testing.assert_array_equal(out[: C + 1], expected[: C + 1], "KV-cached steps")
    np.testing.assert_array_equal(out[C + 1 :], expected[C + 1 :], "steps past the window")


def test_batched_greedy_generation_of_prompts_of_different_lengths_equals_the_naive_loop(
    model, forward
):
    prompts = [
        [3, 1, 4, 1, 5, 9, 2, 6, 5, 3],
        [2, 7],
        [8],
        np.asarray(jax.random.randint(jax.random.key(5), (C,), 0, 11)).tolist(),  # a full window
    ]
    batch, lengths = padded_batch(prompts)
    tokens, total = generate(model, batch, 25, temperature=0, key=jax.random.key(0),
                             prompt_lengths=lengths, return_lengths=True)  # fmt: skip
    assert tokens.shape == (4, C + 25) and tokens.dtype == jnp.int32
    expected = naive_greedy(forward, prompts, 25)
    np.testing.assert_array_equal(total, [len(row) for row in expected])
    tokens = np.asarray(tokens)
    for b, row in enumerate(expected):
        np.testing.assert_array_equal(tokens[b, : len(row)], row, f"row {b}")
        assert np.all(tokens[b, len(row) :] == 0), "the rest of a shorter row is padding 0"


def test_sampling_equals_a_slow_loop_with_its_own_key_per_row_and_step(model, forward):
    """Row b draws its new token i from next_token_distribution with split(fold_in(key, b))[i]."""
    prompts, n_new = [[3, 1, 4, 1, 5], [2, 7, 1, 8, 2, 8, 1, 8]], 30  # both pass C
    settings_ = dict(temperature=0.8, top_k=6, top_p=0.9)
    batch, lengths = padded_batch(prompts)
    out = np.asarray(generate(model, batch, n_new, prompt_lengths=lengths,
                              key=jax.random.key(11), **settings_))  # fmt: skip
    for b, prompt in enumerate(prompts):
        keys = jax.random.split(jax.random.fold_in(jax.random.key(11), b), n_new)
        tokens = list(prompt)
        for i in range(n_new):
            probs = next_token_distribution(window_logits(forward, [tokens])[0], **settings_)
            tokens.append(int(jax.random.categorical(keys[i], jnp.log(probs))))
        assert len(set(tokens[len(prompt) :])) >= 3
        np.testing.assert_array_equal(out[b, : len(tokens)], tokens, f"row {b}")


def test_every_row_and_every_step_draws_with_its_own_key(flat_model):
    prompts = np.tile([1, 2, 3, 4, 5], (2, 1))  # two samples of one prompt
    out = np.asarray(generate(flat_model, prompts, 30, temperature=1.0, key=jax.random.key(0)))
    new = out[:, 5:]
    for row in new:
        assert len(set(row.tolist())) > 1, "one key reused for every step"
    assert not np.array_equal(new[0], new[1]), "the rows of one batch share a key"


def test_long_prompt_keeps_its_last_context_length_tokens_with_a_catchable_warning(
    model, forward, capsys
):
    prompt = np.asarray(jax.random.randint(jax.random.key(2), (2, 20), 0, 11), np.int32)
    with pytest.warns(PromptTruncatedWarning, match="keeping the last 16 tokens") as record:
        out = np.asarray(generate(model, prompt, 3, temperature=0, key=jax.random.key(0)))
    assert len(record) == 1 and issubclass(PromptTruncatedWarning, UserWarning)
    assert (record[0].message.prompt_length, record[0].message.context_length) == (20, 16)
    assert record[0].filename == __file__  # points at the caller's line
    assert out.shape == (2, 16 + 3) and out.dtype == np.int32
    np.testing.assert_array_equal(out[:, :16], prompt[:, -16:])
    np.testing.assert_array_equal(out, naive_greedy(forward, prompt[:, -16:], 3))
    # Callers can silence it; the library never prints.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.simplefilter("ignore", PromptTruncatedWarning)
        generate(model, prompt, 3, temperature=0, key=jax.random.key(0))
    assert capsys.readouterr() == ("", "")


def test_zero_new_tokens_returns_the_prompt(model):
    out = generate(model, [1, 2, 3], 0, key=jax.random.key(0))
    assert out.dtype == jnp.int32
    np.testing.assert_array_equal(out, [1, 2, 3])
    with pytest.warns(PromptTruncatedWarning):
        out, length = generate(model, np.arange(20) % 11, 0, key=jax.random.key(0),
                               return_lengths=True)  # fmt: skip
    np.testing.assert_array_equal(out, np.arange(4, 20) % 11)
    assert length.shape == () and int(length) == 16


def test_same_key_same_tokens_different_keys_different_tokens(model):
    def run(seed):
        out = generate(model, [3, 1, 4, 1, 5], 30, temperature=1.0, key=jax.random.key(seed))
        assert out.shape == (35,) and out.dtype == jnp.int32
        return tuple(np.asarray(out).tolist())

    assert run(7) == run(7)
    runs = {run(seed) for seed in range(4)}
    assert len(runs) == 4


def stop_at(new, stop):
    """How many of ``new`` tokens a row keeps when it stops once its new tokens end with stop."""
    for i in range(len(stop), len(new) + 1):
        if list(new[i - len(stop) : i]) == list(stop):
            return i
    return len(new)


def test_a_stop_token_ends_its_row_early_and_the_rest_is_padding(model, forward):
    prompts = [[3, 1, 4, 1, 5], [2, 7, 1, 8, 2]]
    expected = naive_greedy(forward, prompts, 30)
    for stop in (expected[0][5 + 3], expected[1][5:7]):  # a token, then a sequence of two
        tokens, total = generate(model, np.array(prompts), 30, temperature=0, stop_token=stop,
                                 key=jax.random.key(0), return_lengths=True)  # fmt: skip
        stop = np.atleast_1d(stop).tolist()
        kept = [5 + stop_at(row[5:], stop) for row in expected]
        assert min(kept) < 35, "no row stopped: the test proves nothing"
        np.testing.assert_array_equal(total, kept)
        tokens = np.asarray(tokens)
        for b, row in enumerate(expected):
            np.testing.assert_array_equal(tokens[b, : kept[b]], row[: kept[b]])
            assert np.all(tokens[b, kept[b] :] == 0)
        # Without return_lengths: the same tokens, as before this option existed.
        plain = generate(model, np.array(prompts), 30, temperature=0, stop_token=stop,
                         key=jax.random.key(0))  # fmt: skip
        np.testing.assert_array_equal(plain, tokens)


def test_a_stop_token_only_matches_new_tokens(model, forward):
    prompt = [3, 1, 4, 1, 5]
    expected = naive_greedy(forward, [prompt], 30)[0]
    stop = [t for t in range(11) if t not in expected[5:]]
    out = generate(model, prompt, 30, temperature=0, stop_token=stop[0], key=jax.random.key(0))
    np.testing.assert_array_equal(out, expected)  # never generated: never stops
    out, n = generate(model, prompt, 30, temperature=0, stop_token=[1, 5],  # the prompt's end
                      key=jax.random.key(0), return_lengths=True)  # fmt: skip
    assert int(n) == 5 + stop_at(expected[5:], [1, 5])


def test_prompt_length_within_a_bucket_settings_key_and_stop_token_do_not_recompile(model):
    generate(model, [3, 1, 4, 1, 5], 30, key=jax.random.key(0))
    before = compiled_versions()
    assert before >= 1
    runs = [  # prompts of 5 to 8 tokens share the bucket of 8
        ([3, 1, 4, 1, 5], dict(temperature=0)),
        ([3, 1, 4, 1, 5, 9], dict(temperature=0.7, top_k=3)),
        ([3, 1, 4, 1, 5, 9, 2], dict(temperature=1.3, top_p=0.9, stop_token=4)),
        ([3, 1, 4, 1, 5, 9, 2, 6], dict(top_k=5, top_p=0.5, stop_token=[1, 2, 3])),
        ([3, 1, 4, 1, 5, 9, 2, 6], dict(stop_token=[9, 8, 7, 6, 5, 4, 3, 2])),
    ]
    for i, (prompt, settings_) in enumerate(runs):
        generate(model, prompt, 30, key=jax.random.key(i), **settings_)
    assert compiled_versions() == before
    # The count does see a compilation: a prompt of 9 tokens is in the next bucket (16) ...
    generate(model, [3, 1, 4, 1, 5, 9, 2, 6, 5], 30, key=jax.random.key(0))
    assert compiled_versions() == before + 1
    # ... and a new max_new_tokens is a new loop length.
    generate(model, [3, 1, 4, 1, 5], 23, key=jax.random.key(0))
    assert compiled_versions() == before + 2


def test_prompt_lengths_in_a_batch_do_not_recompile(model):
    batch, _ = padded_batch([[1] * 8, [2] * 8])
    generate(model, batch, 30, key=jax.random.key(0), prompt_lengths=[8, 8])
    before = compiled_versions()
    for lengths in ([5, 8], [5, 6], [7, 7]):  # bucket 8: the longest prompt has 5 to 8 tokens
        generate(model, batch, 30, key=jax.random.key(0), prompt_lengths=lengths)
    assert compiled_versions() == before


@settings(max_examples=15, deadline=None)
@given(
    temperature=st.one_of(st.just(0.0), st.floats(0.01, 5.0)),
    top_k=st.one_of(st.none(), st.integers(0, 20)),
    top_p=st.one_of(st.none(), top_ps),
    seed=st.integers(0, 2**31 - 1),
)
def test_generated_tokens_stay_in_the_vocabulary(model, temperature, top_k, top_p, seed):
    prompt = [3, 1, 4, 1, 5]
    out = np.asarray(
        generate(model, prompt, 30, temperature=temperature, top_k=top_k, top_p=top_p,
                 key=jax.random.key(seed))
    )  # fmt: skip
    np.testing.assert_array_equal(out[:5], prompt)
    assert out.min() >= 0 and out.max() < CONFIG.vocab_size


def test_sampled_frequencies_follow_the_filtered_distribution(model, forward):
    """2,000 independent one-token continuations, against the probabilities from a forward pass."""
    prompt = np.tile([2, 7, 1], (2000, 1)).astype(np.int32)
    logits = window_logits(forward, [[2, 7, 1]])[0].astype(np.float64)
    for settings_ in [dict(top_k=3), dict(top_p=0.5), dict(temperature=0.5)]:
        t = settings_.get("temperature", 1.0)
        p = softmax64(logits / t)
        if "top_k" in settings_:
            p = np.where(logits >= np.sort(logits)[-3], p, 0)
        if "top_p" in settings_:
            order = np.argsort(-p)
            n = int((np.concatenate([[0], np.cumsum(p[order])[:-1]]) < 0.5).sum())
            p = np.where(p >= p[order[n - 1]], p, 0)
        p /= p.sum()
        out = np.asarray(generate(model, prompt, 1, key=jax.random.key(3), **settings_))[:, 3]
        freq = np.bincount(out, minlength=CONFIG.vocab_size) / len(out)
        assert np.all(freq[p == 0] == 0), settings_
        np.testing.assert_allclose(freq, p, atol=0.05, err_msg=str(settings_))


@pytest.mark.parametrize(
    ("kwargs", "name"),
    [
        (dict(max_new_tokens=-1), "max_new_tokens"),
        (dict(max_new_tokens=2.0), "max_new_tokens"),
        (dict(prompt_ids=[]), "prompt_ids"),
        (dict(prompt_ids=np.zeros((2, 0), np.int32)), "prompt_ids"),
        (dict(prompt_ids=[1, 11]), "prompt_ids"),
        (dict(prompt_ids=[-1, 2]), "prompt_ids"),
        (dict(prompt_ids=[1.5, 2.0]), "prompt_ids"),
        (dict(prompt_ids=np.zeros((1, 1, 2), np.int32)), "prompt_ids"),
        (dict(prompt_ids=[[1, 2, 11], [1, 2, 3]], prompt_lengths=[3, 2]), "prompt_ids"),
        (dict(temperature=-1.0), "temperature"),
        (dict(temperature=float("nan")), "temperature"),
        (dict(top_k=-1), "top_k"),
        (dict(top_p=0.0), "top_p"),
        (dict(top_p=1.5), "top_p"),
        (dict(key=0), "key"),
        (dict(prompt_lengths=[3]), "prompt_lengths"),  # with a 1-D prompt
        (dict(prompt_ids=[[1, 2, 3]] * 2, prompt_lengths=[3]), "prompt_lengths"),
        (dict(prompt_ids=[[1, 2, 3]] * 2, prompt_lengths=[3, 0]), "prompt_lengths"),
        (dict(prompt_ids=[[1, 2, 3]] * 2, prompt_lengths=[3, 4]), "prompt_lengths"),
        (dict(prompt_ids=[[1, 2, 3]] * 2, prompt_lengths=[3, 2.0]), "prompt_lengths"),
        (dict(stop_token=11), "stop_token"),
        (dict(stop_token=-1), "stop_token"),
        (dict(stop_token=[]), "stop_token"),
        (dict(stop_token=2.0), "stop_token"),
        (dict(stop_token=[[1, 2]]), "stop_token"),
    ],
)
def test_generate_rejects_bad_input_naming_the_argument(model, kwargs, name):
    args = dict(prompt_ids=[1, 2, 3], max_new_tokens=2, key=jax.random.key(0)) | kwargs
    before = compiled_versions()
    with pytest.raises(ValueError, match=name):
        generate(model, **args)
    assert compiled_versions() == before  # rejected before any compile


def test_generate_rejects_something_that_is_not_a_model():
    with pytest.raises(TypeError, match="model"):
        generate(object(), [1], 1, key=jax.random.key(0))


DIGITS = CharTokenizer("0123456789x")  # 11 characters for the 11 tokens of CONFIG


def test_generate_text_returns_the_prompt_and_its_continuation(model):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        text = generate_text(model, DIGITS, "31415", 30, temperature=0, key=jax.random.key(0))
    expected = generate(model, [3, 1, 4, 1, 5], 30, temperature=0, key=jax.random.key(0))
    assert text == "31415" + DIGITS.decode(np.asarray(expected)[5:])
    # Same seed, same text.
    sampled = [generate_text(model, DIGITS, "31415", 30, key=jax.random.key(4)) for _ in range(2)]
    assert sampled[0] == sampled[1]


def test_generate_text_takes_a_list_of_prompts_and_a_stop_string(model, forward):
    prompts = ["31415", "27"]
    texts = generate_text(model, DIGITS, prompts, 30, temperature=0, key=jax.random.key(0))
    expected = naive_greedy(forward, [DIGITS.encode(p) for p in prompts], 30)
    assert texts == [DIGITS.decode(row) for row in expected]
    # A stop string cuts each continuation right after its first occurrence.
    stop = texts[0][5 + 2 : 5 + 4]
    stopped = generate_text(model, DIGITS, prompts, 30, temperature=0, stop=stop,
                            key=jax.random.key(0))  # fmt: skip
    for prompt, text, cut in zip(prompts, texts, stopped, strict=True):
        new = text[len(prompt) :]
        end = new.index(stop) + len(stop) if stop in new else len(new)
        assert cut == prompt + new[:end]
    assert len(stopped[0]) <= 5 + 4  # row 0 did stop early


def test_generate_text_returns_the_whole_prompt_even_past_the_window(model, forward):
    prompt = "16180339887498948482"  # 20 characters, the window is 16
    with pytest.warns(PromptTruncatedWarning) as record:
        text = generate_text(model, DIGITS, prompt, 3, temperature=0, key=jax.random.key(0))
    assert record[0].filename == __file__
    expected = naive_greedy(forward, [DIGITS.encode(prompt)[-16:]], 3)[0]
    assert text == prompt + DIGITS.decode(expected[16:])


@pytest.mark.parametrize(
    ("prompt", "stop", "name"),
    [
        ("", None, "prompt"),
        ([], None, "prompt"),
        (["31", ""], None, "prompt"),
        (3, None, "prompt"),
        ("3é1", None, "prompt"),  # a character the tokenizer does not know
        ("31", "", "stop"),
        ("31", "é", "stop"),
    ],
)
def test_generate_text_rejects_bad_input_naming_the_argument(model, prompt, stop, name):
    with pytest.raises(ValueError, match=name):
        generate_text(model, DIGITS, prompt, 3, stop=stop, key=jax.random.key(0))
