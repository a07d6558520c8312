"""Widgets: set a control's ``.value`` as a learner would, then check what the widget shows."""

import html

import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from attnlab import widgets
from attnlab.checkpoint import load, save
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
    assert "not in the tokenizer&#x27;s vocabulary: &#x27;é&#x27;" in explorer.chart.value
    assert "Remove them or replace them" in explorer.chart.value
    assert "from_text" not in explorer.chart.value  # advice for before training, not for here
    explorer.text.value = "cafe"
    assert len(explorer.top) == 10


def compiled_versions() -> int:
    """Compiled versions of the explorer's forward pass (a plain jax.jit) in JAX's cache."""
    return widgets.next_token._logits_at._cache_size()


def test_typing_does_not_recompile(model, tokenizer):
    explorer = next_token_explorer(model, tokenizer, text="a")
    before = compiled_versions()
    assert before >= 1
    for text in ["ab", "abc", "abcdefghijk", ""]:  # shorter, longer, past the window, empty
        explorer.text.value = text
    assert compiled_versions() == before
    # The count does see a compilation: a token buffer of another length is a new shape.
    graphdef, state = nnx.split(model)
    widgets.next_token._logits_at(graphdef, state, jnp.zeros((1, 3), jnp.int32),
                                  jnp.asarray(0, jnp.int32))
    assert compiled_versions() == before + 1


def test_the_first_keystroke_on_a_loaded_model_compiles_nothing(tokenizer, tmp_path):
    # A model fresh from a checkpoint (d_model 24: a shape no other test compiles). Its first
    # forward pass compiles once and must leave the model as the next call expects it: with
    # nnx.jit, the dropout RNG state came back as committed arrays and the second call
    # compiled again (a second's pause at the first keystroke).
    config = GPTConfig(vocab_size=tokenizer.vocab_size, context_length=8, n_layers=1,
                       n_heads=2, d_model=24, d_ff=32)
    save(tmp_path / "model.safetensors", GPT(config, rngs=nnx.Rngs(3)), tokenizer)
    before = compiled_versions()
    explorer = next_token_explorer(load(tmp_path / "model.safetensors").model, tokenizer, text="ab")
    assert compiled_versions() == before + 1
    explorer.text.value = "abc"
    explorer.text.value = "The"
    assert compiled_versions() == before + 1


def test_k_above_the_vocabulary_shows_every_token_and_says_so(model, tokenizer):
    V = tokenizer.vocab_size
    explorer = next_token_explorer(model, tokenizer, text="ab", k=V + 100)
    assert len(explorer.top) == V and explorer.chart.value.count("<tr>") == V
    assert f"all {V} tokens of the vocabulary" in explorer.chart.value
    assert f"k={V + 100} is more than the vocabulary's {V}" in explorer.chart.value
    exact = next_token_explorer(model, tokenizer, text="ab", k=V)
    assert "more than the vocabulary" not in exact.chart.value


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


def test_large_weights_get_white_text_and_small_ones_black(qkv):
    explorer = self_attention_explorer(TOKENS, *qkv, query=0, causal=True)  # weight 1 on itself
    assert "color: white; background: rgba(31, 119, 180, 1.00);" in explorer.output.value
    explorer.causal.value = False
    for w in explorer.weights:
        colour = "white" if w > 0.5 else "black"
        assert f"color: {colour}; background: rgba(31, 119, 180, {w:.2f});" in (
            explorer.output.value)


def test_clearing_the_query_shows_a_message_instead_of_failing(qkv):
    explorer = self_attention_explorer(TOKENS, *qkv, query=2)
    explorer.query.value = None
    assert "Pick a query token" in explorer.output.value and explorer.weights is None
    explorer.query.value = 1
    _assert_state(explorer, *qkv)


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
    assert "showing the first" not in explorer.output.value
    explorer.source.value = " ".join(f"w{i}" for i in range(MAX_WORDS + 5))
    assert explorer.panels[0][1].shape == (MAX_WORDS, MAX_WORDS)
    assert f"The input has {MAX_WORDS + 5} words; showing the first {MAX_WORDS}." in (
        explorer.output.value)


def test_bert_with_a_one_word_input_says_why_nothing_is_left():
    explorer = architecture_explorer(source="hello", target=TARGET, architecture=BERT_)
    assert explorer.panels[0][2] == ["[MASK]"]
    assert "nothing is left to guess it from" in explorer.output.value
    explorer.source.value = "hello world"
    assert "nothing is left" not in explorer.output.value


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


# --- token viewer (notebook 01) ---------------------------------------------------------------


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


# --- attention heads and position tables (notebook 05) ----------------------------------------


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
    assert isinstance(w, AttentionHeadExplorer)
    np.testing.assert_allclose(w.weights, _weights_of(two_layer_model, tokenizer, "abc de", 0, 0),
                               atol=1e-6)
    first_png = w.image.value
    assert first_png[:4] == b"\x89PNG"
    w.layer.value, w.head.value = 1, 1
    np.testing.assert_allclose(w.weights, _weights_of(two_layer_model, tokenizer, "abc de", 1, 1),
                               atol=1e-6)
    assert w.image.value != first_png
    assert "layer 1, head 1" in w.summary.value
    assert "characters back on average" in w.summary.value  # one character per token here
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


def test_head_explorer_says_so_when_there_is_no_previous_character(two_layer_model, tokenizer):
    w = attention_head_explorer(two_layer_model, tokenizer, text="a")
    assert w.weights.shape == (1, 1) and np.isnan(w.profile["previous"])
    assert "nan" not in w.summary.value and "no previous character" in w.summary.value


def test_head_explorer_says_when_it_cut_the_text(two_layer_model, tokenizer):
    w = attention_head_explorer(two_layer_model, tokenizer, text="abcdefghijklmnopqrstuvwxyz")
    assert "last 12 characters" in w.summary.value
    w.text.value = "short"
    assert "last" not in w.summary.value


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
    filters, forward = (widgets.playground._filtered_view._cache_size(),
                        widgets.next_token._logits_at._cache_size())
    assert filters >= 1 and forward >= 1
    playground.temperature.value = 0.0
    playground.top_k.value = 7
    playground.top_p.value = 0.3
    playground.temperature.value = 2.5
    for text in ["abc", "a", "abcdefghijk", "", "ab"]:  # longer, shorter, past the window, empty
        playground.prompt.value = text
    assert widgets.playground._filtered_view._cache_size() == filters
    assert widgets.next_token._logits_at._cache_size() == forward


def test_bad_text_shows_its_message_and_the_playground_recovers(playground):
    playground.prompt.value = ""
    assert playground.probs is None and bytes(playground.chart.value) == b""
    assert "prompt is empty" in playground.error and "prompt is empty" in playground.info.value
    playground.temperature.value = 0.5  # a slider move while there is an error: no crash
    playground.prompt.value = "café"
    assert "not in the tokenizer" in playground.error and "from_text" not in playground.error
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
    cut = continuation[: continuation.index(stop) + 1]  # up to and including the stop string
    assert playground.samples == ["ab" + cut] * 3 and playground.stopped == [True] * 3
    assert f"stopped at the stop string after {len(cut)} characters" in playground.output.value


def test_stop_string_inside_the_prompt_does_not_count(playground, model, tokenizer):
    playground.temperature.value = 0.0
    continuation = _greedy_continuation(model, tokenizer, "ab", 5)
    playground.stop.value = "a"  # in the prompt "ab": only the new text is searched
    playground.button.click()
    found = "a" in continuation
    cut = continuation[: continuation.index("a") + 1] if found else continuation
    assert playground.samples == ["ab" + cut] * 3 and playground.stopped == [found] * 3


def test_stop_box_reads_backslash_n_as_a_newline():
    unescape = widgets.playground._unescape
    assert unescape(r"\n") == "\n" and unescape(r"a\tb") == "a\tb"
    assert unescape("") == ""


def test_a_stop_string_the_tokenizer_cannot_encode_is_shown(playground):
    playground.stop.value = "é"
    playground.button.click()
    assert playground.samples == [] and "stop string 'é'" in playground.error
    assert "not in the tokenizer" in playground.error and "from_text" not in playground.error
    assert "not in the tokenizer" in html.unescape(playground.output.value)
    playground.stop.value = ""
    playground.button.click()
    assert playground.error is None and len(playground.samples) == 3


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
    assert explorer.state["count"] == 1  # "9/3/2021"
    assert "1 test input has 8 characters" in explorer.output.value


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
