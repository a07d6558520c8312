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


# --- attention heads and position tables (notebook 05) ----------------------------------------

import jax.numpy as jnp  # noqa: E402

from attnlab.widgets import (  # noqa: E402
    AttentionHeadExplorer,
    PositionalEncodingExplorer,
    attention_head_explorer,
    positional_encoding_explorer,
)


@pytest.fixture(scope="module")
def two_layer_model(tokenizer):
    config = GPTConfig(vocab_size=tokenizer.vocab_size, context_length=12, n_layers=2,
                       n_heads=2, d_model=16, d_ff=32)
    model = GPT(config, rngs=nnx.Rngs(0))
    rng = np.random.default_rng(0)
    for _, var in nnx.iter_graph(model):  # peaked, distinct heads
        if isinstance(var, nnx.Param) and var[...].ndim == 2:
            var[...] = jnp.asarray(0.5 * rng.normal(size=var[...].shape), jnp.float32)
    return model


def _weights_of(model, tokenizer, text, layer, head):
    """Independent: run the model on exactly this text and read one head's weights."""
    ids = jnp.asarray(np.asarray(tokenizer.encode(text), np.int32)[None])
    _, weights = model(ids, return_attention=True)
    return np.asarray(weights[layer][0, head], np.float64)


def test_head_explorer_shows_the_chosen_head_of_the_typed_text(two_layer_model, tokenizer):
    w = attention_head_explorer(two_layer_model, tokenizer, text="abc de")
    assert isinstance(w, AttentionHeadExplorer) and isinstance(w, widgets.VBox)
    np.testing.assert_allclose(w.weights, _weights_of(two_layer_model, tokenizer, "abc de", 0, 0),
                               atol=1e-6)
    first_png = w.image.value
    assert first_png[:4] == b"\x89PNG"
    w.layer.value, w.head.value = 1, 1
    np.testing.assert_allclose(w.weights, _weights_of(two_layer_model, tokenizer, "abc de", 1, 1),
                               atol=1e-6)
    assert w.image.value != first_png
    assert "layer 1, head 1" in w.summary.value
    w.text.value = "x = 42"
    assert w.tokens == list("x = 42")
    np.testing.assert_allclose(w.weights, _weights_of(two_layer_model, tokenizer, "x = 42", 1, 1),
                               atol=1e-6)
    assert w.all_weights.shape == (2, 2, 6, 6)


def test_head_explorer_profile_matches_the_weights(two_layer_model, tokenizer):
    w = attention_head_explorer(two_layer_model, tokenizer, text="hello world", layer=1)
    W, T = w.weights, 11
    assert w.profile["previous"] == pytest.approx(np.mean([W[t, t - 1] for t in range(1, T)]))
    assert w.profile["itself"] == pytest.approx(np.mean(np.diag(W)))
    expected_distance = np.mean([sum(W[t, s] * (t - s) for s in range(t + 1)) for t in range(T)])
    assert w.profile["distance"] == pytest.approx(expected_distance)
    assert f"{w.profile['previous']:.0%}" in w.summary.value


def test_head_explorer_keeps_the_last_context_length_characters(two_layer_model, tokenizer):
    text = "abcdefghijklmnopqrstuvwxyz"
    w = attention_head_explorer(two_layer_model, tokenizer, text=text)
    assert "".join(w.tokens) == text[-12:]
    np.testing.assert_allclose(w.weights, _weights_of(two_layer_model, tokenizer, text[-12:], 0, 0),
                               atol=1e-6)


def test_head_explorer_explains_empty_or_unknown_text(two_layer_model, tokenizer):
    w = attention_head_explorer(two_layer_model, tokenizer, text="ok")
    w.text.value = ""
    assert w.weights is None and w.image.value == b"" and "empty" in w.summary.value
    w.text.value = "café"
    assert w.weights is None and "vocabulary" in w.summary.value
    w.text.value = "back"
    assert w.weights.shape == (4, 4)


@pytest.mark.parametrize("kwargs", [dict(layer=2), dict(head=-1), dict(head=True)])
def test_head_explorer_rejects_out_of_range_choices(two_layer_model, tokenizer, kwargs):
    with pytest.raises(ValueError, match="layer|head"):
        attention_head_explorer(two_layer_model, tokenizer, **kwargs)


def test_position_explorer_reads_the_table():
    w = positional_encoding_explorer(max_position=100, position=10, dimension=0, d_model=16)
    assert isinstance(w, PositionalEncodingExplorer)
    assert w.value == pytest.approx(np.sin(10.0), abs=1e-6)
    assert w.wavelength == pytest.approx(2 * np.pi)
    first_png = w.image.value
    w.position.value, w.dimension.value = 50, 5  # cos of pair 2
    assert w.value == pytest.approx(np.cos(50 / 10000 ** (4 / 16)), abs=1e-6)
    assert w.wavelength == pytest.approx(2 * np.pi * 10000 ** (4 / 16))
    assert "PE[50, 5] = cos" in w.readout.value and w.image.value != first_png


def test_position_explorer_keeps_the_dimension_inside_a_smaller_d_model():
    w = positional_encoding_explorer(d_model=64, dimension=40, position=7)
    w.d_model.value = 8
    assert w.dimension.max == 7 and w.dimension.value == 7
    assert w.encoding.shape == (200, 8)
    assert w.value == pytest.approx(np.cos(7 / 10000 ** (6 / 8)), abs=1e-6)
    w.d_model.value = 128
    assert w.dimension.max == 127 and w.encoding.shape == (200, 128)


@pytest.mark.parametrize("kwargs", [dict(d_model=7), dict(d_model=300), dict(position=200),
                                    dict(dimension=64), dict(max_position=1), dict(base=0.0)])
def test_position_explorer_rejects_bad_arguments(kwargs):
    with pytest.raises(ValueError):
        positional_encoding_explorer(**kwargs)
