"""Widgets: set a control's ``.value`` as a learner would, then check what the widget shows."""

import html

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from attnlab import widgets
from attnlab.data import CharTokenizer
from attnlab.gpt import GPT, GPTConfig
from attnlab.widgets import (
    next_token_explorer,
    next_token_probabilities,
    sample_timeline,
)


@pytest.fixture(scope="module")
def tokenizer():
    return CharTokenizer.ascii()


@pytest.fixture(scope="module")
def model(tokenizer):
    config = GPTConfig(
        vocab_size=tokenizer.vocab_size,
        context_length=8,
        n_layers=1,
        n_heads=2,
        d_model=16,
        d_ff=32,
    )
    return GPT(config, rngs=nnx.Rngs(0))


def _softmax_of_last_position(model, ids):
    """Independent reference: run the model on exactly these ids, softmax the last row."""
    logits = np.asarray(model(np.asarray(ids, np.int32)[None]), np.float64)[0, -1]
    e = np.exp(logits - logits.max())
    return e / e.sum()


# --- sample timeline ---------------------------------------------------------------------------


SAMPLES = {250: "The cat <sat>", 0: "The x#q", 500: "The class of an object"}
LOSSES = {0: 4.512, 250: 2.3456, 500: 1.5}


def test_sample_timeline_starts_at_the_last_step():
    timeline = sample_timeline(SAMPLES, val_loss=LOSSES, prompt="The ")
    assert list(timeline.slider.options) == [0, 250, 500]
    assert timeline.slider.value == 500
    assert "The class of an object"[4:] in timeline.output.value
    assert "1.500" in timeline.output.value


def test_moving_the_slider_shows_that_steps_sample_and_loss():
    timeline = sample_timeline(SAMPLES, val_loss=LOSSES, prompt="The ")
    timeline.slider.value = 250
    assert "step 250" in timeline.output.value
    assert "2.346" in timeline.output.value
    # the sample's own "<sat>" must arrive escaped, not as an HTML tag
    assert html.escape("cat <sat>") in timeline.output.value
    assert "<sat>" not in timeline.output.value
    timeline.slider.value = 0
    assert "x#q" in timeline.output.value and "4.512" in timeline.output.value


def test_sample_timeline_shows_the_prompt_in_bold():
    timeline = sample_timeline({10: "The end"}, prompt="The ")
    assert "<b>The </b>end" in timeline.output.value
    assert "validation loss" not in timeline.output.value  # no losses given


def test_sample_timeline_rejects_bad_input():
    with pytest.raises(ValueError, match="samples is empty"):
        sample_timeline({})
    with pytest.raises(TypeError, match="int steps"):
        sample_timeline({"100": "text"})
    with pytest.raises(TypeError, match=r"samples\[3\] must be a str"):
        sample_timeline({3: 42})


def test_sample_timeline_shows_its_slider_above_its_text():
    timeline = sample_timeline(SAMPLES)
    assert timeline.children == (timeline.slider, timeline.output)


# --- next-token explorer -----------------------------------------------------------------------


def test_probabilities_equal_the_model_on_the_text_alone(model, tokenizer):
    # The padded, fixed-shape evaluation must give what the unpadded model gives.
    for text in ["a", "The ", "def f(x"]:
        got = next_token_probabilities(model, tokenizer, text)
        expected = _softmax_of_last_position(model, tokenizer.encode(text))
        assert got.shape == (tokenizer.vocab_size,)
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)
        assert got.sum() == pytest.approx(1.0, abs=1e-5)


def test_text_longer_than_the_context_keeps_its_last_tokens(model, tokenizer):
    text = "0123456789abcdef"  # 16 characters, context_length 8
    got = next_token_probabilities(model, tokenizer, text)
    expected = _softmax_of_last_position(model, tokenizer.encode(text[-8:]))
    np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_typing_updates_the_bars(model, tokenizer):
    explorer = next_token_explorer(model, tokenizer, text="ab", k=5)
    first = explorer.top
    assert len(first) == 5
    explorer.text.value = "The q"
    expected = _softmax_of_last_position(model, tokenizer.encode("The q"))
    best = sorted(range(len(expected)), key=lambda i: -expected[i])[:5]
    assert [token for token, _ in explorer.top] == [tokenizer.decode([i]) for i in best]
    np.testing.assert_allclose([p for _, p in explorer.top], expected[best], rtol=1e-4)
    probabilities = [p for _, p in explorer.top]
    assert probabilities == sorted(probabilities, reverse=True)
    assert explorer.chart.value.count("<tr>") == 5
    assert f"{explorer.top[0][1]:6.1%}" in explorer.chart.value


def test_empty_or_unknown_text_shows_a_message_instead_of_failing(model, tokenizer):
    explorer = next_token_explorer(model, tokenizer, text="x")
    explorer.text.value = ""
    assert explorer.top == [] and explorer.probs is None
    assert "at least one token" in explorer.chart.value
    explorer.text.value = "café"
    assert explorer.top == []
    assert "not in the tokenizer" in explorer.chart.value
    explorer.text.value = "cafe"
    assert len(explorer.top) == 10


def compiled_versions() -> int:
    """Compiled versions of the explorer's forward pass held in JAX's cache (nnx.jit wraps a
    jax.jit, ``jitted_fn``, on flax 0.11.2 and the newest release)."""
    return widgets._logits_at.jitted_fn._cache_size()


def test_typing_does_not_recompile(model, tokenizer):
    explorer = next_token_explorer(model, tokenizer, text="a")
    before = compiled_versions()
    assert before >= 1
    for text in ["ab", "abc", "abcdefghijk", ""]:  # shorter, longer, past the window, empty
        explorer.text.value = text
    assert compiled_versions() == before
    # The count does see a compilation: a token buffer of another length is a new shape.
    widgets._logits_at(model, jnp.zeros((1, 3), jnp.int32), jnp.asarray(0))
    assert compiled_versions() == before + 1


def test_space_and_newline_are_shown_visibly(model, tokenizer):
    explorer = next_token_explorer(model, tokenizer, text="x", k=tokenizer.vocab_size)
    assert "␣ (space)" in explorer.chart.value
    assert "⏎ (newline)" in explorer.chart.value


def test_explorer_shows_its_text_box_above_its_bars(model, tokenizer):
    explorer = next_token_explorer(model, tokenizer, text="ab")
    assert explorer.children == (explorer.text, explorer.chart)


def test_explorer_rejects_bad_k(model, tokenizer):
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        next_token_explorer(model, tokenizer, k=0)


def test_explorer_says_when_the_text_outgrows_the_context_window(model, tokenizer):
    explorer = next_token_explorer(model, tokenizer, text="abc", k=3)
    assert "context window" not in explorer.chart.value
    explorer.text.value = "0123456789abcdef"  # 16 characters, context_length 8
    assert "last 8 of your 16 characters" in explorer.chart.value


# --- sampling playground (notebook 08) ---------------------------------------------------------

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _last_logits(model, ids):
    """Independent reference: the model's logits (float64) after exactly these ids."""
    return np.asarray(model(np.asarray(ids, np.int32)[None]), np.float64)[0, -1]


def _softmax(z):
    e = np.exp(z - z.max())
    return e / e.sum()


def _nucleus(probs, top_p):
    """Token ids of the smallest most-likely-first set whose probabilities reach top_p."""
    kept, total = [], 0.0
    for i in np.argsort(-probs, kind="stable"):
        kept.append(int(i))
        total += probs[i]
        if total >= top_p:
            break
    return sorted(kept)


@pytest.fixture
def playground(model, tokenizer):
    return widgets.sampling_playground(model, tokenizer, text="ab", max_new_tokens=5,
                                       n_samples=3)


def test_playground_starts_with_the_models_own_distribution(playground, model, tokenizer):
    expected = _softmax(_last_logits(model, tokenizer.encode("ab")))
    np.testing.assert_allclose(playground.probs, expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(playground.final_probs, expected, rtol=1e-4, atol=1e-6)
    assert playground.kept.all() and playground.kept_mass == pytest.approx(1.0, abs=1e-5)
    assert playground.error is None
    assert bytes(playground.chart.value).startswith(PNG_SIGNATURE)
    assert f"kept {tokenizer.vocab_size} of {tokenizer.vocab_size} tokens" in playground.info.value


def test_temperature_divides_the_logits(playground, model, tokenizer):
    logits = _last_logits(model, tokenizer.encode("ab"))
    for temperature in [0.5, 2.0, 3.0]:
        playground.temperature.value = temperature
        np.testing.assert_allclose(playground.probs, _softmax(logits / temperature),
                                   rtol=1e-4, atol=1e-6)
    playground.temperature.value = 0.0  # greedy: all the probability on the most likely token
    assert np.flatnonzero(playground.kept).tolist() == [int(np.argmax(logits))]
    assert playground.final_probs[np.argmax(logits)] == pytest.approx(1.0)


def test_top_k_keeps_the_k_most_likely_tokens(playground, model, tokenizer):
    logits = _last_logits(model, tokenizer.encode("ab"))
    for k in [1, 3, 10]:
        playground.top_k.value = k
        kept = np.flatnonzero(playground.kept)
        assert sorted(kept.tolist()) == sorted(np.argsort(-logits)[:k].tolist())
        final = playground.final_probs
        assert final.sum() == pytest.approx(1.0, abs=1e-5) and (final[~playground.kept] == 0).all()
        # renormalising keeps the ratios between kept tokens
        np.testing.assert_allclose(final[kept], playground.probs[kept] / playground.kept_mass,
                                   rtol=1e-4)


def test_top_p_keeps_the_nucleus(playground, model, tokenizer):
    probs = _softmax(_last_logits(model, tokenizer.encode("ab")))
    for top_p in [0.05, 0.5, 0.9]:
        playground.top_p.value = top_p
        assert np.flatnonzero(playground.kept).tolist() == _nucleus(probs, top_p)
        assert playground.kept_mass >= top_p - 1e-5
    playground.top_p.value = 0.01  # below the largest probability: only the most likely token
    assert np.flatnonzero(playground.kept).tolist() == [int(np.argmax(probs))]


def test_temperature_comes_before_top_p(playground, model, tokenizer):
    logits = _last_logits(model, tokenizer.encode("ab"))
    playground.top_p.value = 0.5
    playground.temperature.value = 2.0
    assert np.flatnonzero(playground.kept).tolist() == _nucleus(_softmax(logits / 2.0), 0.5)


def test_moving_a_slider_redraws_the_chart(playground):
    before = bytes(playground.chart.value)
    playground.top_k.value = 2
    after = bytes(playground.chart.value)
    assert after.startswith(PNG_SIGNATURE) and after != before
    assert "kept 2 of" in playground.info.value


def test_no_slider_position_breaks_the_playground(playground):
    V = playground.top_k.max
    for temperature in [playground.temperature.min, 0.05, playground.temperature.max]:
        playground.temperature.value = temperature
        for top_p in [playground.top_p.min, 0.5, playground.top_p.max]:
            playground.top_p.value = top_p
            for top_k in [0, 1, 2, V - 1, V]:
                playground.top_k.value = top_k
                assert playground.error is None
                assert playground.final_probs.sum() == pytest.approx(1.0, abs=1e-5)
                assert 1 <= playground.kept.sum() <= (top_k or V)


def test_slider_moves_and_typing_do_not_recompile(tokenizer):
    # A fresh model: its first forward pass must not change what the next one compiles for.
    config = GPTConfig(vocab_size=tokenizer.vocab_size, context_length=8, n_layers=1,
                       n_heads=2, d_model=16, d_ff=32)
    playground = widgets.sampling_playground(GPT(config, rngs=nnx.Rngs(1)), tokenizer, text="ab")
    filters, forward = (widgets._filtered_view._cache_size(),
                        widgets._playground_logits._cache_size())
    assert filters >= 1 and forward >= 1
    playground.temperature.value = 0.0
    playground.top_k.value = 7
    playground.top_p.value = 0.3
    playground.temperature.value = 2.5
    for text in ["abc", "a", "abcdefghijk", "", "ab"]:  # longer, shorter, past the window, empty
        playground.prompt.value = text
    assert widgets._filtered_view._cache_size() == filters
    assert widgets._playground_logits._cache_size() == forward


def test_bad_text_shows_its_message_and_the_playground_recovers(playground):
    playground.prompt.value = ""
    assert playground.probs is None and bytes(playground.chart.value) == b""
    assert "prompt is empty" in playground.error and "prompt is empty" in playground.info.value
    playground.temperature.value = 0.5  # a slider move while there is an error: no crash
    playground.prompt.value = "café"
    assert "not in the tokenizer" in playground.error
    playground.prompt.value = "0123456789abcdef"  # 16 characters, context_length 8
    assert playground.error is None
    assert "last 8 of your 16 characters" in playground.info.value
    playground.button.click()
    assert len(playground.samples) == 3 and playground.samples[0].startswith("0123456789abcdef")
    assert "the model saw only the last 8 of the 16 prompt characters" in playground.output.value
    playground.prompt.value = "ab"
    assert bytes(playground.chart.value).startswith(PNG_SIGNATURE)


def _greedy_continuation(model, tokenizer, text, n):
    """Independent reference: argmax of a full forward pass, n times."""
    ids = list(tokenizer.encode(text))
    for _ in range(n):
        ids.append(int(np.argmax(_last_logits(model, ids[-model.config.context_length:]))))
    return tokenizer.decode(ids[len(text):])


def test_generate_writes_n_samples_of_max_new_tokens(playground):
    playground.button.click()
    assert playground.error is None and len(playground.samples) == 3
    assert all(s.startswith("ab") and len(s) == 2 + 5 for s in playground.samples)
    assert len(set(playground.samples)) > 1  # each row draws its own tokens
    assert playground.output.value.count("sample ") == 3
    assert playground.stopped == [False] * 3 and "max new tokens reached (5)" in playground.output.value
    first = list(playground.samples)
    playground.button.click()
    assert playground.samples == first  # same seed, same text
    playground.seed.value = 1
    playground.button.click()
    assert playground.samples != first


def test_greedy_generation_is_the_argmax_continuation(playground, model, tokenizer):
    playground.temperature.value = 0.0
    playground.n_samples.value = 2
    playground.button.click()
    expected = "ab" + _greedy_continuation(model, tokenizer, "ab", 5)
    assert playground.samples == [expected, expected]


def test_stop_string_ends_each_sample(playground, model, tokenizer):
    playground.temperature.value = 0.0
    continuation = _greedy_continuation(model, tokenizer, "ab", 5)
    stop = continuation[2]
    playground.stop.value = stop
    playground.button.click()
    cut = continuation[: continuation.index(stop)]
    assert playground.samples == ["ab" + cut] * 3 and playground.stopped == [True] * 3
    assert f"stopped at the stop string after {len(cut)} characters" in playground.output.value


def test_cut_at_stop():
    assert widgets.cut_at_stop("one\ntwo\n", "\n") == ("one", True)
    assert widgets.cut_at_stop("one two", "\n") == ("one two", False)
    assert widgets.cut_at_stop("one two", "") == ("one two", False)
    assert widgets.cut_at_stop("one two", None) == ("one two", False)
    assert widgets._unescape(r"\n") == "\n" and widgets._unescape(r"a\tb") == "a\tb"


def test_generate_shows_errors_instead_of_raising(playground):
    for text, message in [("", "prompt is empty"), ("naïve", "not in the tokenizer")]:
        playground.prompt.value = text
        playground.button.click()
        assert playground.samples == [] and message in playground.error
        assert message in html.unescape(playground.output.value)


def test_playground_rejects_bad_starting_values(model, tokenizer):
    with pytest.raises(ValueError, match=r"temperature must be in \[0.0, 3.0\]; got -1"):
        widgets.sampling_playground(model, tokenizer, temperature=-1)
    with pytest.raises(ValueError, match="top_k must be in"):
        widgets.sampling_playground(model, tokenizer, top_k=tokenizer.vocab_size + 1)
    with pytest.raises(ValueError, match="top_p must be in"):
        widgets.sampling_playground(model, tokenizer, top_p=0.0)
