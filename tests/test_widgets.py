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


# --- token viewer (notebook 01) ---------------------------------------------------------------

import ipywidgets  # noqa: E402  (the name `widgets` above means attnlab.widgets)

from attnlab.tokenization import UNK, Piece, WordTokenizer, train_bpe  # noqa: E402
from attnlab.widgets import token_pieces_html, token_viewer  # noqa: E402


@pytest.fixture(scope="module")
def three_tokenizers(tokenizer):
    text = "the cat sat on the mat. the cat ate the rat, then the rat sat."
    return {"characters": tokenizer, "BPE": train_bpe(text * 3, 120),
            "words": WordTokenizer.from_text(text)}


def test_token_pieces_html_shows_each_piece_with_its_id_and_frames_unknowns():
    pieces = [Piece(7, "ab", "ab", 0, 2), Piece(0, UNK, "é", 2, 3), Piece(3, " ", " ", 3, 4)]
    page = token_pieces_html(pieces)
    assert page.count("<small") == 3
    assert ">ab</code>" in page and "<small style=\"color: inherit;\">7</small>" in page
    assert "␣" in page  # a space is visible
    assert page.count("#b3261e") == 2  # only the unknown piece is framed in red (border, text)
    assert "for &#x27;é&#x27;" in page
    assert token_pieces_html([]) == '<div style="line-height: 1.1;"></div>'


def test_token_viewer_follows_the_dropdown_and_the_text(three_tokenizers):
    viewer = token_viewer(three_tokenizers, text="the cat")
    assert isinstance(viewer, ipywidgets.VBox)
    assert viewer.children == (viewer.choice, viewer.text, viewer.output)
    assert viewer.choice.options == ("characters", "BPE", "words")
    assert [p.text for p in viewer.pieces] == list("the cat")
    assert viewer.ids == three_tokenizers["characters"].encode("the cat").tolist()
    assert "7 characters → 7 tokens (1.00 tokens per character)" in viewer.output.value

    viewer.choice.value = "words"
    assert [p.text for p in viewer.pieces] == ["the", "cat"]
    assert "2 tokens" in viewer.output.value and "1 characters (whitespace)" in viewer.output.value

    viewer.choice.value = "BPE"
    bpe = three_tokenizers["BPE"]
    assert viewer.ids == bpe.encode("the cat").tolist()
    assert len(viewer.pieces) < 7  # merges made longer pieces
    viewer.text.value = "the rat sat."
    assert viewer.ids == bpe.encode("the rat sat.").tolist()
    assert "".join(p.text for p in viewer.pieces) == "the rat sat."
    assert viewer.output.value.count("<small") == len(viewer.pieces)


def test_token_viewer_survives_empty_and_unknown_text(three_tokenizers):
    viewer = token_viewer(three_tokenizers, text="", tokenizer="BPE")
    assert viewer.pieces == [] and viewer.error is None
    assert "0 characters → 0 tokens" in viewer.output.value

    viewer.text.value = "café →"
    assert viewer.error is None
    unknown = [p for p in viewer.pieces if p.token == UNK]
    assert [p.text for p in unknown] == ["é", "→"] and {p.id for p in unknown} == {0}
    assert "2 unknown, framed in red: [UNK] (id 0) stands for &#x27;é&#x27;, &#x27;→&#x27;" in (
        viewer.output.value)

    viewer.choice.value = "characters"
    assert viewer.pieces == [] and "not in the tokenizer's vocabulary" in viewer.error
    assert "characters cannot encode this text" in viewer.output.value

    viewer.choice.value = "words"
    assert [p.token for p in viewer.pieces] == [UNK, UNK]
    viewer.text.value = "the cat"  # back to a text every tokenizer knows
    assert viewer.error is None and viewer.ids == three_tokenizers["words"].encode("the cat").tolist()


def test_token_viewer_rejects_bad_arguments(three_tokenizers):
    with pytest.raises(ValueError, match="tokenizers is empty"):
        token_viewer({})
    with pytest.raises(ValueError, match="tokenizer must be one of"):
        token_viewer(three_tokenizers, tokenizer="bytes")
    with pytest.raises(TypeError, match="text must be a str"):
        token_viewer(three_tokenizers, text=None)
