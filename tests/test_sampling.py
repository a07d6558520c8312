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
from attnlab.gpt import GPT, GPTConfig
from attnlab.sampling import (
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
    return sampling._generate_core._cache_size()


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
    if top_k:
        kth = -np.sort(-logits, axis=-1)[:, [min(top_k, logits.shape[-1]) - 1]]
        assert np.all(probs[logits < kth] == 0)


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


# --- generation -----------------------------------------------------------------------------------

CONFIG = GPTConfig(vocab_size=11, context_length=16, n_layers=2, n_heads=2, d_model=32, d_ff=64)


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
def forward(model):
    """Full forward pass, compiled once for a (B, C) input: ``forward(tokens) -> (B, C, V)``."""
    graphdef, state = nnx.split(model)
    f = jax.jit(lambda state, tokens: nnx.merge(graphdef, state)(tokens))
    return lambda tokens: f(state, jnp.asarray(tokens))


def naive_greedy(forward, prompt, max_new_tokens):
    """Greedy decoding the slow way: a full forward on the (last C tokens of the) prefix."""
    C = CONFIG.context_length
    rows = [list(map(int, row)) for row in np.atleast_2d(prompt)]
    for _ in range(max_new_tokens):
        windows = [row[-C:] for row in rows]
        n = len(windows[0])
        # Zero-padded at the end to the fixed length C (one compile); the causal mask keeps the
        # padding out of position n - 1 (checked in test_decode_step_matches_the_full_forward).
        padded = np.zeros((len(rows), C), np.int32)
        padded[:, :n] = windows
        logits = np.asarray(forward(padded))[:, n - 1]
        for row, token in zip(rows, logits.argmax(axis=-1), strict=True):
            row.append(int(token))
    return np.array(rows)


def test_decode_step_matches_the_full_forward(model, forward):
    tokens = jax.random.randint(jax.random.key(1), (2, CONFIG.context_length), 0, 11)
    full = np.asarray(forward(tokens))
    graphdef, state = nnx.split(model)
    step = jax.jit(lambda s, tok, cache, t: nnx.merge(graphdef, s).decode_step(tok, cache, t))
    cache = model.init_cache(2)
    for t in range(CONFIG.context_length):
        logits, cache = step(state, tokens[:, t], cache, jnp.int32(t))
        np.testing.assert_allclose(logits, full[:, t], atol=1e-5, err_msg=f"position {t}")
    # Causality, which naive_greedy relies on: later tokens do not change earlier logits.
    changed = tokens.at[:, 7:].set(0)
    np.testing.assert_allclose(np.asarray(forward(changed))[:, :7], full[:, :7], atol=1e-5)


def test_greedy_generation_equals_the_naive_loop_inside_and_past_the_window(model, forward):
    prompt = np.array([3, 1, 4, 1, 5], np.int32)
    out = np.asarray(generate(model, prompt, 30, temperature=0, key=jax.random.key(0)))
    expected = naive_greedy(forward, prompt, 30)[0]
    assert len(set(out[5:].tolist())) >= 3, "test model too dull to prove anything"
    C = CONFIG.context_length
    np.testing.assert_array_equal(out[: C + 1], expected[: C + 1], "KV-cached steps")
    np.testing.assert_array_equal(out[C + 1 :], expected[C + 1 :], "steps past the window")


def test_sampling_equals_a_slow_loop_with_one_fresh_key_per_step(model, forward):
    """Each step draws from next_token_distribution with its own key split(key, n_steps)[t]."""
    prompt, n_new, C = [3, 1, 4, 1, 5], 30, CONFIG.context_length
    settings_ = dict(temperature=0.8, top_k=6, top_p=0.9)
    out = np.asarray(generate(model, prompt, n_new, key=jax.random.key(11), **settings_))
    keys = jax.random.split(jax.random.key(11), len(prompt) + n_new - 1)
    tokens = list(prompt)
    for t in range(len(prompt) - 1, len(prompt) + n_new - 1):
        window = tokens[-C:]
        padded = np.zeros((1, C), np.int32)
        padded[0, : len(window)] = window
        logits = np.asarray(forward(padded))[0, len(window) - 1]
        probs = next_token_distribution(logits, **settings_)
        tokens.append(int(jax.random.categorical(keys[t], jnp.log(probs))))
    assert len(set(tokens[5:])) >= 3
    np.testing.assert_array_equal(out, tokens)


def test_long_prompt_keeps_its_last_context_length_tokens_and_warns(model, forward):
    prompt = np.asarray(jax.random.randint(jax.random.key(2), (2, 20), 0, 11), np.int32)
    with pytest.warns(UserWarning, match="keeping the last 16 tokens"):
        out = np.asarray(generate(model, prompt, 3, temperature=0, key=jax.random.key(0)))
    assert out.shape == (2, 16 + 3) and out.dtype == np.int32
    np.testing.assert_array_equal(out[:, :16], prompt[:, -16:])
    np.testing.assert_array_equal(out, naive_greedy(forward, prompt[:, -16:], 3))


def test_zero_new_tokens_returns_the_prompt(model):
    out = generate(model, [1, 2, 3], 0, key=jax.random.key(0))
    assert out.dtype == jnp.int32
    np.testing.assert_array_equal(out, [1, 2, 3])
    with pytest.warns(UserWarning):
        out = generate(model, np.arange(20) % 11, 0, key=jax.random.key(0))
    np.testing.assert_array_equal(out, np.arange(4, 20) % 11)


def test_same_key_same_tokens_different_keys_different_tokens(model):
    def run(seed):
        out = generate(model, [3, 1, 4, 1, 5], 30, temperature=1.0, key=jax.random.key(seed))
        assert out.shape == (35,) and out.dtype == jnp.int32
        return tuple(np.asarray(out).tolist())

    assert run(7) == run(7)
    runs = {run(seed) for seed in range(4)}
    assert len(runs) == 4


def test_changing_sampling_settings_or_key_does_not_recompile(model):
    prompt = [3, 1, 4, 1, 5]
    generate(model, prompt, 30, key=jax.random.key(0))
    before = compiled_versions()
    assert before >= 1
    for i, (t, k, p) in enumerate([(0, None, None), (0.7, 3, None), (1.3, None, 0.9), (1, 5, 0.5)]):
        generate(model, prompt, 30, temperature=t, top_k=k, top_p=p, key=jax.random.key(i))
    assert compiled_versions() == before
    # The count does see a compilation: a new max_new_tokens is a new loop length.
    generate(model, prompt, 23, key=jax.random.key(0))
    assert compiled_versions() == before + 1


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
    padded = np.zeros((1, CONFIG.context_length), np.int32)
    padded[0, :3] = prompt[0]
    logits = np.asarray(forward(padded))[0, 2].astype(np.float64)
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
        (dict(temperature=-1.0), "temperature"),
        (dict(top_k=-1), "top_k"),
        (dict(top_p=0.0), "top_p"),
        (dict(top_p=1.5), "top_p"),
        (dict(key=0), "key"),
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


class DigitTokenizer:
    def encode(self, text):
        return np.array([int(c) for c in text], np.int32)

    def decode(self, ids):
        return "".join(str(int(i)) for i in ids)


def test_generate_text_returns_the_prompt_and_its_continuation(model):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        text = generate_text(model, DigitTokenizer(), "31415", 30, temperature=0, key=jax.random.key(0))
    expected = generate(model, [3, 1, 4, 1, 5], 30, temperature=0, key=jax.random.key(0))
    assert text == "31415" + "".join(str(int(i)) for i in np.asarray(expected)[5:])
    with pytest.raises(ValueError, match="prompt"):
        generate_text(model, DigitTokenizer(), "", 3, key=jax.random.key(0))
