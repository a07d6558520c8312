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


# --- self-attention explorer (notebook 04) ---------------------------------------------------

import ipywidgets  # noqa: E402  (the name `widgets` above may mean attnlab.widgets)

from attnlab.widgets import attention_row, self_attention_explorer  # noqa: E402

TOKENS = ["she", "read", "the", "novel"]


@pytest.fixture(scope="module")
def qkv():
    rng = np.random.default_rng(4)
    return tuple(rng.normal(size=(4, 3)) for _ in range(3))


@pytest.fixture(scope="module")
def additive_params():
    rng = np.random.default_rng(5)
    return rng.normal(size=(3, 2)), rng.normal(size=(3, 2)), rng.normal(size=2)


def _expected_row(q, k, v, t, *, causal, scaled, similarity, params=None):
    """Independent NumPy version of one query's attention row."""
    if similarity == "dot":
        scores = k @ q[t] / (np.sqrt(q.shape[1]) if scaled else 1.0)
    elif similarity == "cosine":
        scores = k @ q[t] / (np.linalg.norm(k, axis=1) * np.linalg.norm(q[t]))
    else:
        W_a, U_a, v_a = params
        scores = np.array([v_a @ np.tanh(q[t] @ W_a + k[s] @ U_a) for s in range(len(k))])
    allowed = np.arange(len(k)) <= t if causal else np.ones(len(k), bool)
    weights = np.zeros(len(k))
    e = np.exp(scores[allowed] - scores[allowed].max())
    weights[allowed] = e / e.sum()
    return scores, weights, weights @ v


def _assert_state(explorer, q, k, v, params=None):
    scores, weights, z = _expected_row(
        q, k, v, explorer.query.value, causal=explorer.causal.value,
        scaled=explorer.scaled.value, similarity=explorer.similarity.value, params=params)
    np.testing.assert_allclose(explorer.scores, scores, atol=1e-5)
    np.testing.assert_allclose(explorer.weights, weights, atol=1e-6)
    np.testing.assert_allclose(explorer.z, z, atol=1e-5)


def test_explorer_starts_with_the_first_query(qkv):
    explorer = self_attention_explorer(TOKENS, *qkv)
    assert isinstance(explorer, ipywidgets.VBox)
    assert explorer.query.value == 0
    _assert_state(explorer, *qkv)
    assert explorer.weights.sum() == pytest.approx(1.0, abs=1e-6)
    # without additive parameters, "additive" is not offered
    assert [value for _, value in explorer.similarity.options] == ["dot", "cosine"]


def test_every_control_updates_the_row(qkv, additive_params):
    explorer = self_attention_explorer(TOKENS, *qkv, additive_params=additive_params)
    for name, value in [("query", 3), ("query", 1), ("causal", True), ("scaled", False),
                        ("similarity", "cosine"), ("similarity", "additive"), ("causal", False),
                        ("similarity", "dot"), ("scaled", True)]:
        before = explorer.weights.copy(), explorer.z.copy()
        getattr(explorer, name).value = value
        _assert_state(explorer, *qkv, params=additive_params)
        changed = not (np.allclose(before[0], explorer.weights)
                       and np.allclose(before[1], explorer.z))
        assert changed, f"setting {name} = {value!r} did not change the row"


def test_causal_mask_hides_later_keys_in_state_and_table(qkv):
    explorer = self_attention_explorer(TOKENS, *qkv, query=1, causal=True)
    np.testing.assert_array_equal(explorer.allowed, [True, True, False, False])
    np.testing.assert_array_equal(explorer.weights[2:], 0.0)
    assert explorer.output.value.count("masked") == 2
    explorer.query.value = 3  # the last token sees everything
    assert explorer.allowed.all() and "masked" not in explorer.output.value


def test_scaling_divides_dot_products_by_sqrt_d_and_only_those(qkv):
    explorer = self_attention_explorer(TOKENS, *qkv, query=2)
    scaled_scores = explorer.scores.copy()
    explorer.scaled.value = False
    np.testing.assert_allclose(explorer.scores, scaled_scores * np.sqrt(3), rtol=1e-5)
    assert not explorer.scaled.disabled
    explorer.similarity.value = "cosine"
    assert explorer.scaled.disabled  # the switch means nothing for cosine
    cosine = explorer.scores.copy()
    explorer.scaled.value = True
    np.testing.assert_allclose(explorer.scores, cosine)


def test_table_shows_tokens_weights_and_output(qkv):
    explorer = self_attention_explorer(TOKENS, *qkv, query=3, value_labels=["a", "b", "c"])
    for token in TOKENS:
        assert f">{token}</th>" in explorer.output.value
    assert f"{explorer.weights[0]:.2f}" in explorer.output.value
    assert f"a = {explorer.z[0]:.3f}" in explorer.output.value
    assert "output z for <b>novel</b>" in explorer.output.value


def test_attention_row_matches_numpy(qkv, additive_params):
    for similarity in ["dot", "cosine", "additive"]:
        scores, allowed, weights, z = attention_row(
            *qkv, 2, causal=True, scaled=True, similarity=similarity,
            additive_params=additive_params)
        expected = _expected_row(*qkv, 2, causal=True, scaled=True, similarity=similarity,
                                 params=additive_params)
        np.testing.assert_allclose(scores, expected[0], atol=1e-5)
        np.testing.assert_allclose(weights, expected[1], atol=1e-6)
        np.testing.assert_allclose(z, expected[2], atol=1e-5)


def test_explorer_rejects_bad_input(qkv):
    q, k, v = qkv
    with pytest.raises(ValueError, match=r"T = len\(tokens\) = 3"):
        self_attention_explorer(TOKENS[:3], q, k, v)
    with pytest.raises(ValueError, match="query must be a position"):
        self_attention_explorer(TOKENS, q, k, v, query=4)
    with pytest.raises(ValueError, match="similarity must be one of"):
        self_attention_explorer(TOKENS, q, k, v, similarity="additive")  # no parameters
    with pytest.raises(ValueError, match="value_labels"):
        self_attention_explorer(TOKENS, q, k, v, value_labels=["x"])
    with pytest.raises(ValueError, match="similarity must be one of"):
        attention_row(q, k, v, 0, similarity="euclid")


# --- GPT vs BERT vs T5 (notebook 06) ----------------------------------------------------------


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


# --- notebooks 02 and 03: translations by input length, attention alignments -------------------

from attnlab.data import DATE_SOURCE_CHARS, DATE_TARGET_CHARS  # noqa: E402
from attnlab.rnn import AttentionSeq2Seq, Seq2Seq, translate_texts  # noqa: E402
from attnlab.widgets import alignment_explorer, examples_at_length, length_explorer  # noqa: E402

DATE_SOURCES = ["9/3/2021", "3 Sep 2021", "1/12/2000", "Sep 3, 2021", "4 Jan 1999"]
DATE_TARGETS = ["2021-09-03", "2021-09-03", "2000-01-12", "2021-09-03", "1999-01-04"]
DATE_PREDICTIONS = {
    "plain": ["2021-09-03", "2021-09-08", "2000-01-12", "2021-09-03", "1999-01-04"],
    "attention": ["2021-09-03", "2021-09-03", "2000-01-12", "2021-09-03", "1999-01-04"],
}


def test_examples_at_length_picks_that_length_and_scores_each_model():
    state = examples_at_length(DATE_SOURCES, DATE_TARGETS, DATE_PREDICTIONS, 10)
    assert state["count"] == 2  # "3 Sep 2021" and "4 Jan 1999"
    assert state["accuracy"] == {"plain": 0.5, "attention": 1.0}
    assert [row[0] for row in state["rows"]] == ["3 Sep 2021", "4 Jan 1999"]
    assert state["rows"][0][2]["plain"] == ("2021-09-08", False)
    empty = examples_at_length(DATE_SOURCES, DATE_TARGETS, DATE_PREDICTIONS, 3)
    assert empty["count"] == 0 and empty["rows"] == []
    assert np.isnan(empty["accuracy"]["plain"])
    with pytest.raises(ValueError, match="same length"):
        examples_at_length(DATE_SOURCES, DATE_TARGETS, {"plain": ["x"]}, 10)


def test_length_slider_shows_the_inputs_of_the_chosen_length():
    explorer = length_explorer(DATE_SOURCES, DATE_TARGETS, DATE_PREDICTIONS, n_examples=1)
    assert list(explorer.slider.options) == [8, 9, 10, 11]
    assert explorer.slider.value == 11  # the longest first
    assert "Sep 3, 2021" in explorer.output.value
    explorer.slider.value = 10
    assert explorer.state["count"] == 2 and len(explorer.state["rows"]) == 1
    assert "2 test inputs have 10 characters" in explorer.output.value
    assert "50% exactly right" in explorer.output.value and "100% exactly right" in explorer.output.value
    assert "✘" in explorer.output.value and "2021-09-08" in explorer.output.value
    explorer.slider.value = 8
    assert explorer.state["accuracy"] == {"plain": 1.0, "attention": 1.0}
    assert "✘" not in explorer.output.value


def test_length_explorer_rejects_bad_input():
    with pytest.raises(ValueError, match="sources is empty"):
        length_explorer([], [], {"plain": []})
    with pytest.raises(ValueError, match="length must be the length of one of the sources"):
        length_explorer(DATE_SOURCES, DATE_TARGETS, DATE_PREDICTIONS, length=12)
    with pytest.raises(ValueError, match="predictions is empty"):
        length_explorer(DATE_SOURCES, DATE_TARGETS, {})


@pytest.fixture(scope="module")
def attention_model():
    return AttentionSeq2Seq(len(DATE_SOURCE_CHARS), len(DATE_TARGET_CHARS), d_embed=4,
                            d_hidden=8, cell="rnn", rngs=nnx.Rngs(0))


def test_alignment_explorer_translates_the_typed_date(attention_model):
    explorer = alignment_explorer(attention_model, DATE_SOURCES, max_len=16)
    assert explorer.text.value == DATE_SOURCES[0]
    explorer.text.value = "4 Jan 1999"
    (expected,), (weights,) = translate_texts(attention_model, ["4 Jan 1999"], max_len=16)
    assert explorer.prediction == expected and explorer.message == ""
    np.testing.assert_allclose(explorer.weights, weights)
    assert explorer.weights.shape == (10, 10)
    assert explorer.output.value.count("<tr>") == 1 + 10  # a header row, one row per output
    assert html.escape("4 Jan 1999") in explorer.output.value


def test_choosing_an_example_copies_it_into_the_text_box(attention_model):
    explorer = alignment_explorer(attention_model, DATE_SOURCES, max_len=16)
    explorer.example.value = "Sep 3, 2021"
    assert explorer.text.value == "Sep 3, 2021"
    assert explorer.weights.shape == (10, 11)


def test_alignment_explorer_explains_text_it_cannot_read(attention_model):
    explorer = alignment_explorer(attention_model, DATE_SOURCES, max_len=16)
    explorer.text.value = "3 Sep 2021 #"
    assert explorer.weights is None and explorer.prediction == ""
    assert "cannot read '#'" in explorer.message
    assert html.escape(explorer.message) in explorer.output.value
    explorer.text.value = ""
    assert "empty" in explorer.message
    explorer.text.value = "x" * 17
    assert "at most 16" in explorer.message
    explorer.text.value = "3 Sep 2021"
    assert explorer.message == "" and explorer.weights.shape == (10, 10)


def test_alignment_explorer_needs_an_attention_model():
    plain = Seq2Seq(len(DATE_SOURCE_CHARS), len(DATE_TARGET_CHARS), d_embed=4, d_hidden=8,
                    rngs=nnx.Rngs(0))
    with pytest.raises(TypeError, match="must be an AttentionSeq2Seq"):
        alignment_explorer(plain, DATE_SOURCES)
    with pytest.raises(ValueError, match="examples is empty"):
        alignment_explorer(AttentionSeq2Seq(len(DATE_SOURCE_CHARS), len(DATE_TARGET_CHARS),
                                            rngs=nnx.Rngs(0)), [])
