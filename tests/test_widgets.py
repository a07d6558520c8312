"""Widgets: set a control's ``.value`` as a learner would, then check what the widget shows."""

import html

import ipywidgets as widgets
import numpy as np
import pytest
from flax import nnx

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


def test_sample_timeline_is_a_widget():
    assert isinstance(sample_timeline(SAMPLES), widgets.VBox)


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


def test_typing_does_not_recompile(model, tokenizer):
    from attnlab import widgets as module

    next_token_probabilities(model, tokenizer, "a")
    before = module._trace_count
    for text in ["ab", "abc", "abcdefghijk"]:
        next_token_probabilities(model, tokenizer, text)
    assert module._trace_count == before


def test_space_and_newline_are_shown_visibly(model, tokenizer):
    explorer = next_token_explorer(model, tokenizer, text="x", k=tokenizer.vocab_size)
    assert "␣ (space)" in explorer.chart.value
    assert "⏎ (newline)" in explorer.chart.value


def test_explorer_rejects_bad_k(model, tokenizer):
    with pytest.raises(ValueError, match="k must be an integer >= 1"):
        next_token_explorer(model, tokenizer, k=0)


def test_explorer_says_when_the_text_outgrows_the_context_window(model, tokenizer):
    explorer = next_token_explorer(model, tokenizer, text="abc", k=3)
    assert "context window" not in explorer.chart.value
    explorer.text.value = "0123456789abcdef"  # 16 characters, context_length 8
    assert "last 8 of your 16 characters" in explorer.chart.value


# --- GPT vs BERT vs T5 (notebook 06) ----------------------------------------------------------

import ipywidgets  # noqa: E402 - kept with the tests that use it

from attnlab.widgets import (  # noqa: E402 - kept with the tests that use them
    ARCHITECTURES,
    MAX_WORDS,
    architecture_explorer,
    architecture_panels,
)

GPT_, BERT_, T5_ = ARCHITECTURES
SOURCE, TARGET = "the cat sat on the mat", "le chat était assis"


def _filled_squares(html_text: str) -> int:
    return html_text.count("background: #1f77b4")


def test_panels_of_each_family():
    src, tgt = SOURCE.split(), TARGET.split()
    [(title, mask, rows, cols)] = architecture_panels(GPT_, src, tgt)
    assert rows == cols == src + tgt  # one sequence: the prompt is just its first tokens
    np.testing.assert_array_equal(mask, np.tril(np.ones((10, 10), bool)))

    [(title, mask, rows, cols)] = architecture_panels(BERT_, src, tgt)
    assert rows == cols == ["the", "cat", "sat", "[MASK]", "the", "mat"]
    assert mask.shape == (6, 6) and mask.all()

    panels = architecture_panels(T5_, src, tgt)
    assert [p[0] for p in panels] == [
        "T5: encoder self-attention", "T5: decoder self-attention", "T5: cross-attention"]
    (_, enc, enc_q, enc_k), (_, dec, dec_q, dec_k), (_, cross, cross_q, cross_k) = panels
    assert enc.all() and enc.shape == (6, 6) and enc_q == enc_k == src
    np.testing.assert_array_equal(dec, np.tril(np.ones((4, 4), bool)))
    assert dec_q == dec_k == tgt
    assert cross.all() and cross.shape == (4, 6) and (cross_q, cross_k) == (tgt, src)


def test_panels_reject_bad_input():
    with pytest.raises(ValueError, match="architecture must be one of"):
        architecture_panels("GPT", ["a"], ["b"])
    with pytest.raises(ValueError, match="source_tokens is empty"):
        architecture_panels(GPT_, [], ["b"])
    with pytest.raises(ValueError, match="target_tokens is empty"):
        architecture_panels(T5_, ["a"], [])
    assert len(architecture_panels(GPT_, ["a"], [])) == 1  # a GPT can start from a prompt alone


def test_explorer_switches_family_and_shows_its_masks():
    explorer = architecture_explorer(source=SOURCE, target=TARGET)
    assert explorer.architecture.value == GPT_
    assert _filled_squares(explorer.output.value) == 10 * 11 // 2  # causal over 10 words
    assert "next token" in explorer.output.value

    explorer.architecture.value = BERT_
    assert [p[0] for p in explorer.panels] == ["BERT: bidirectional self-attention"]
    assert _filled_squares(explorer.output.value) == 36
    assert "[MASK]" in explorer.output.value and "<b>on</b>" in explorer.output.value

    explorer.architecture.value = T5_
    assert len(explorer.panels) == 3
    assert _filled_squares(explorer.output.value) == 36 + 10 + 24
    assert "cross-attention" in explorer.output.value


def test_explorer_follows_the_text_boxes():
    explorer = architecture_explorer(source=SOURCE, target=TARGET, architecture=T5_)
    explorer.target.value = "le chat"
    assert [p[1].shape for p in explorer.panels] == [(6, 6), (2, 2), (2, 6)]
    explorer.source.value = "a <b> c"
    assert explorer.panels[0][2] == ["a", "<b>", "c"]
    assert html.escape("<b>") in explorer.output.value  # text arrives escaped, not as a tag
    explorer.source.value = " ".join(f"w{i}" for i in range(MAX_WORDS + 5))
    assert explorer.panels[0][1].shape == (MAX_WORDS, MAX_WORDS)


def test_explorer_explains_empty_text_instead_of_failing():
    explorer = architecture_explorer(source=SOURCE, target=TARGET, architecture=T5_)
    explorer.target.value = "   "
    assert explorer.panels == [] and "needs an output" in explorer.output.value
    explorer.architecture.value = GPT_  # a GPT needs no output text
    assert len(explorer.panels) == 1 and explorer.panels[0][1].shape == (6, 6)
    explorer.source.value = ""
    assert explorer.panels == [] and "Type an input text" in explorer.output.value
    explorer.source.value = "hello"
    assert explorer.panels[0][2] == ["hello"]


def test_explorer_rejects_an_unknown_family():
    with pytest.raises(ValueError, match="architecture must be one of"):
        architecture_explorer(architecture="RNN")
    assert isinstance(architecture_explorer(), ipywidgets.VBox)
