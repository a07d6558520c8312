"""attnlab.finetune: what trains stays what was chosen, LoRA is exact, masks and heads do their job."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from attnlab import finetune as ft
from attnlab.data import CharTokenizer
from attnlab.gpt import GPT, GPTConfig
from attnlab.train import TrainConfig

CONFIG = GPTConfig(vocab_size=13, context_length=8, n_layers=3, n_heads=2, d_model=8, d_ff=16)
TRAIN = TrainConfig(steps=10, batch_size=2, learning_rate=1e-2, warmup_steps=0, weight_decay=0.5)


def tiny_gpt(seed=0):
    return GPT(CONFIG, rngs=nnx.Rngs(seed))


def batch(seed=0, B=2, T=8):
    ids = jax.random.randint(jax.random.key(seed), (B, T + 1), 0, CONFIG.vocab_size)
    return ids[:, :-1], ids[:, 1:]


def snapshot(model):
    """{path: numpy copy} of every parameter (copies: nnx.state shares the live arrays)."""
    return {p: np.array(v[...]) for p, v in nnx.to_flat_state(nnx.state(model, nnx.Param))}


def changed(before, after):
    return {p for p in before if not np.array_equal(before[p], after[p])}


# --- freezing ------------------------------------------------------------------------------------


def test_frozen_parameters_are_bit_identical_after_adamw_steps_with_weight_decay():
    model = tiny_gpt()
    before = snapshot(model)
    wrt = ft.top_blocks(1, CONFIG.n_layers)
    optimizer = ft.make_finetune_optimizer(model, TRAIN, wrt)
    for step in range(5):
        x, y = batch(step)
        ft.finetune_step(model, optimizer, x, y)
    moved = changed(before, snapshot(model))
    trainable = {p for p in before if wrt(p, None)}
    assert moved <= trainable  # nothing outside the filter moved, not even by a bit
    assert {p for p in trainable if p[-1] == "kernel"} <= moved  # and the chosen ones did train
    assert ("blocks", 2, "attention", "W_q", "kernel") in moved
    assert ("token_embedding", "embedding") not in moved


def test_masking_only_the_decay_does_not_freeze():
    # The reason for the optimizer's wrt filter: without it, Adam moves every weight that has a
    # gradient, decay or no decay.
    model = tiny_gpt()
    before = snapshot(model)
    tx = optax.adamw(1e-2, weight_decay=0.5, mask=lambda p: jax.tree.map(lambda _: False, p))
    optimizer = nnx.Optimizer(model, tx, wrt=nnx.Param)
    x, y = batch()
    ft.finetune_step(model, optimizer, x, y)
    assert ("blocks", 0, "attention", "W_q", "kernel") in changed(before, snapshot(model))


def test_trainable_counts_match_closed_forms():
    model = tiny_gpt()
    D, F, L, V, C = CONFIG.d_model, CONFIG.d_ff, CONFIG.n_layers, CONFIG.vocab_size, 8
    per_block = 4 * (D * D + D) + (D * F + F) + (F * D + D) + 4 * D
    assert ft.count_params(model) == V * D + C * D + L * per_block + 2 * D == CONFIG.num_params()
    for n in range(L + 1):
        assert ft.count_params(model, ft.top_blocks(n, L)) == n * per_block + 2 * D
    assert ft.count_params(model, ft.top_blocks(2, L, final_norm=False)) == 2 * per_block
    ft.add_lora(model, rank=3)
    assert ft.count_params(model, ft.LoRAParam) == L * 4 * 3 * (D + D)
    assert ft.count_params(model) == CONFIG.num_params() + L * 4 * 3 * 2 * D
    head = ft.SequenceClassifier(tiny_gpt(), 5, rngs=nnx.Rngs(0))
    assert ft.count_params(head, nnx.PathContains("head")) == D * 5 + 5


def test_a_filter_that_matches_nothing_is_an_error():
    with pytest.raises(ValueError, match="nothing to train"):
        ft.make_finetune_optimizer(tiny_gpt(), TRAIN, ft.LoRAParam)  # no adapters yet
    with pytest.raises(ValueError, match="nothing to train"):
        ft.make_finetune_optimizer(tiny_gpt(), TRAIN, nnx.PathContains("no_such_layer"))
    with pytest.raises(ValueError, match="n must be in"):
        ft.top_blocks(4, 3)


# --- LoRA ----------------------------------------------------------------------------------------


def test_lora_with_b_zero_changes_nothing():
    model = tiny_gpt()
    x, _ = batch()
    expected = model(x)
    ft.add_lora(model, rank=2, alpha=16.0)
    np.testing.assert_array_equal(model(x), expected)


def test_lora_layer_computes_base_plus_alpha_over_r_times_a_b():
    base = nnx.Linear(6, 5, rngs=nnx.Rngs(0))
    layer = ft.LoRALinear(base, rank=2, alpha=6.0, rngs=nnx.Rngs(1))
    assert layer.scale == 3.0
    B = np.asarray(jax.random.normal(jax.random.key(2), (2, 5)))
    layer.lora_b[...] = jnp.asarray(B)
    x = np.asarray(jax.random.normal(jax.random.key(3), (4, 6)), np.float64)
    W, b, A = (np.asarray(v, np.float64) for v in (base.kernel[...], base.bias[...], layer.lora_a[...]))
    expected = x @ W + b + (6.0 / 2) * (x @ A) @ B
    np.testing.assert_allclose(layer(jnp.asarray(x, jnp.float32)), expected, rtol=1e-5, atol=1e-5)


def test_lora_training_moves_only_adapters_and_merging_gives_the_same_outputs():
    model = tiny_gpt()
    ft.add_lora(model, rank=2, alpha=4.0)
    before = snapshot(model)
    optimizer = ft.make_finetune_optimizer(model, TRAIN, ft.LoRAParam)
    for step in range(5):
        ft.finetune_step(model, optimizer, *batch(step))
    moved = changed(before, snapshot(model))
    assert moved and all(p[-1] in ("lora_a", "lora_b") for p in moved)
    x, _ = batch(9)
    merged = ft.merge_lora(model)
    assert ft.count_params(merged) == CONFIG.num_params()  # plain Linear layers again
    assert not np.allclose(merged(x), tiny_gpt()(x))  # the adapters did change something
    np.testing.assert_allclose(merged(x), model(x), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("rank", [0, -1, 9])
def test_lora_rank_out_of_range_is_an_error(rank):
    with pytest.raises(ValueError, match="rank must be in"):
        ft.add_lora(tiny_gpt(), rank=rank)


def test_lora_other_bad_input():
    with pytest.raises(TypeError, match="rank must be an int"):
        ft.add_lora(tiny_gpt(), rank=2.0)
    with pytest.raises(ValueError, match="alpha"):
        ft.add_lora(tiny_gpt(), rank=2, alpha=0.0)
    with pytest.raises(ValueError, match="targets"):
        ft.add_lora(tiny_gpt(), rank=2, targets=("W_x",))
    with pytest.raises(ValueError, match="no LoRA adapter"):
        ft.merge_lora(tiny_gpt())


# --- the loss mask -------------------------------------------------------------------------------


def test_pair_mask_covers_exactly_the_completion():
    tokenizer = CharTokenizer.ascii()
    pairs = [("spell cat", "c-a-t"), ("greet Li", "Hello, Li!")]
    x, y, mask = ft.encode_pairs(tokenizer, pairs, 40)
    assert x.shape == y.shape == mask.shape == (2, 40)
    np.testing.assert_array_equal(x[:, 1:], y[:, :-1])
    for row, (prompt, completion) in enumerate(pairs):
        assert tokenizer.decode(x[row]).startswith(f"Q: {prompt}\nA: {completion}\n")
        assert tokenizer.decode(y[row][mask[row] == 1]) == completion + "\n"
        first = len(f"Q: {prompt}\nA: ")  # the first completion character's place in the text
        assert mask[row].sum() == len(completion) + 1 and mask[row, first - 1] == 1
        assert mask[row, : first - 1].sum() == 0
    with pytest.raises(ValueError, match="characters"):
        ft.encode_pairs(tokenizer, pairs, 10)


def test_masked_loss_ignores_prompt_positions():
    logits = jax.random.normal(jax.random.key(0), (2, 6, 5))
    targets = jax.random.randint(jax.random.key(1), (2, 6), 0, 5)
    mask = jnp.array([[0, 0, 1, 1, 1, 0], [0, 1, 1, 0, 0, 0]], jnp.float32)
    loss = ft.masked_cross_entropy(logits, targets, mask)
    log_p = np.asarray(jax.nn.log_softmax(logits))
    picked = -np.take_along_axis(log_p, np.asarray(targets)[..., None], -1)[..., 0]
    np.testing.assert_allclose(loss, picked[np.asarray(mask) == 1].mean(), rtol=1e-6)
    grad = jax.grad(lambda z: ft.masked_cross_entropy(z, targets, mask))(logits)
    assert np.all(np.asarray(grad)[np.asarray(mask) == 0] == 0)  # prompt positions get no gradient
    assert np.all(np.abs(np.asarray(grad)[np.asarray(mask) == 1]).sum(-1) > 0)
    np.testing.assert_allclose(ft.masked_cross_entropy(logits, targets), picked.mean(), rtol=1e-6)


# --- new tokens ----------------------------------------------------------------------------------

VOCAB = "abcdefghijklm"  # 13 characters, one per row of CONFIG's embedding


def test_extended_vocab_trains_only_the_new_rows_under_adamw_with_weight_decay():
    model, tokenizer = ft.extend_vocab(tiny_gpt(), CharTokenizer(VOCAB), "éü")
    assert tokenizer.vocab == VOCAB + "éü" and model.config.vocab_size == 15
    before = snapshot(model)
    old_table = np.array(before[("token_embedding", "base", "embedding")])
    optimizer = ft.make_finetune_optimizer(model, TRAIN, ft.NewTokenParam)
    assert TRAIN.weight_decay > 0
    for step in range(5):
        ids = jax.random.randint(jax.random.key(step), (2, 9), 0, 15)  # new ids in input and target
        ft.finetune_step(model, optimizer, ids[:, :-1], ids[:, 1:])
    after = snapshot(model)
    assert changed(before, after) == {("token_embedding", "new_rows")}  # nothing else, not a bit
    np.testing.assert_array_equal(np.asarray(model.token_embedding.embedding)[:13], old_table)
    assert not np.array_equal(before[("token_embedding", "new_rows")],
                              after[("token_embedding", "new_rows")])
    assert ft.count_params(model, ft.NewTokenParam) == 2 * CONFIG.d_model


def test_extended_vocab_grows_the_output_and_keeps_the_old_logits():
    base = tiny_gpt()
    model, _ = ft.extend_vocab(base, CharTokenizer(VOCAB), ["é", "ü", "ß"])
    x, _ = batch(3)  # old ids only
    logits = model(x)
    assert logits.shape == (2, 8, 13 + 3)
    np.testing.assert_allclose(logits[..., :13], base(x), atol=1e-5)
    # the tied head: a new token's logit is the hidden state times its own new row
    h = ft.hidden_states(model, x)
    np.testing.assert_allclose(logits[..., 13:], h @ model.token_embedding.new_rows[...].T, atol=1e-5)
    assert base.config.vocab_size == 13 and base.token_embedding.embedding[...].shape == (13, 8)
    merged = ft.merge_new_tokens(model)
    assert isinstance(merged.token_embedding, nnx.Embed)
    np.testing.assert_allclose(merged(x), logits, atol=1e-6)


def test_extend_vocab_bad_input():
    model, tokenizer = tiny_gpt(), CharTokenizer(VOCAB)
    with pytest.raises(ValueError, match="empty"):
        ft.extend_vocab(model, tokenizer, [])
    with pytest.raises(ValueError, match="already has: 'ab'"):
        ft.extend_vocab(model, tokenizer, "béa")
    with pytest.raises(ValueError, match="repeats 'é'"):
        ft.extend_vocab(model, tokenizer, "éé")
    with pytest.raises(ValueError, match="single characters"):
        ft.extend_vocab(model, tokenizer, ["é", "üü"])
    with pytest.raises(ValueError, match="12 tokens"):
        ft.extend_vocab(model, CharTokenizer(VOCAB[:-1]), "é")
    extended, bigger = ft.extend_vocab(model, tokenizer, "é")
    with pytest.raises(ValueError, match="already extended"):
        ft.extend_vocab(extended, bigger, "ü")
    with pytest.raises(ValueError, match="no new tokens"):
        ft.merge_new_tokens(model)


def test_french_text_has_characters_the_shipped_model_never_saw():
    from attnlab.data import ASCII_CHARS

    text = ft.load_french_text()
    new = set(text) - set(ASCII_CHARS)
    assert len(text) >= 300 and {"é", "è", "à", "ç"} <= new


# --- classification heads ------------------------------------------------------------------------


def test_sequence_classifier_shape_and_padding_invariance():
    classifier = ft.SequenceClassifier(tiny_gpt(), 3, rngs=nnx.Rngs(1))
    tokens, _ = batch(0, B=4)
    lengths = jnp.array([1, 3, 8, 5])
    logits = classifier(tokens, lengths)
    assert logits.shape == (4, 3)
    repadded = jnp.where(jnp.arange(8)[None] < lengths[:, None], tokens, 0)
    np.testing.assert_allclose(classifier(repadded, lengths), logits, atol=1e-6)


def test_head_on_a_tiny_separable_set_reaches_full_training_accuracy():
    tokenizer = CharTokenizer.ascii()
    sentences = ["good day", "so good", "good", "nice", "bad day", "so bad", "bad", "awful"]
    labels = jnp.array([1, 1, 1, 1, 0, 0, 0, 0])
    tokens, lengths = ft.encode_sentences(tokenizer, sentences, 8)
    body = GPT(GPTConfig(vocab_size=96, context_length=8, n_layers=1, n_heads=2, d_model=16,
                         d_ff=32), rngs=nnx.Rngs(0))
    classifier = ft.SequenceClassifier(body, 2, rngs=nnx.Rngs(1))
    optimizer = ft.make_finetune_optimizer(classifier, TrainConfig(
        steps=40, batch_size=8, learning_rate=1e-2, warmup_steps=0))
    accuracy = lambda: float(np.mean(np.argmax(classifier(tokens, lengths), -1) == labels))  # noqa: E731
    assert accuracy() < 1.0
    for _ in range(40):
        ft.classify_step(classifier, optimizer, tokens, lengths, labels)
    assert accuracy() == 1.0


def test_token_classifier_shape_and_a_step():
    classifier = ft.TokenClassifier(tiny_gpt(), 4, rngs=nnx.Rngs(1))
    tokens, _ = batch(0, B=3)
    assert classifier(tokens).shape == (3, 8, 4)
    optimizer = ft.make_finetune_optimizer(classifier, TRAIN, nnx.PathContains("head"))
    loss = ft.classify_step(classifier, optimizer, tokens, jnp.ones((3, 8)), jnp.zeros((3, 8), int))
    assert np.isfinite(loss)


def test_bad_classifier_input():
    classifier = ft.SequenceClassifier(tiny_gpt(), 2, rngs=nnx.Rngs(1))
    optimizer = ft.make_finetune_optimizer(classifier, TRAIN, nnx.PathContains("head"))
    tokens, _ = batch(0)
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\); got \[2\]"):
        ft.classify_step(classifier, optimizer, tokens, jnp.array([3, 4]), jnp.array([0, 2]))
    with pytest.raises(ValueError, match="n_classes"):
        ft.SequenceClassifier(tiny_gpt(), 1, rngs=nnx.Rngs(1))
    with pytest.raises(ValueError, match="sentence 0 has 12 characters"):
        ft.encode_sentences(CharTokenizer.ascii(), ["twelve chars"], 8)


# --- the datasets ----------------------------------------------------------------------------------


def test_sentiment_dataset_is_large_balanced_and_split_without_overlap():
    data = ft.load_sentiment()
    sentences = data.train_sentences + data.test_sentences
    assert len(sentences) >= 300 and len(set(sentences)) == len(sentences)
    assert len(data.test_sentences) >= 60
    for labels in (data.train_labels, data.test_labels):
        assert set(labels.tolist()) == {0, 1} and labels.mean() == 0.5
    CharTokenizer.ascii().encode("".join(sentences))  # every character is in the vocabulary


def test_prompt_pairs_dataset():
    pairs = ft.load_prompt_pairs()
    assert len(pairs["train"]) + len(pairs["test"]) >= 150
    assert not {p for p, _ in pairs["train"]} & {p for p, _ in pairs["test"]}
    tokenizer = CharTokenizer.ascii()
    ft.encode_pairs(tokenizer, pairs["train"] + pairs["test"], 56)  # all fit, all in the vocabulary


# --- the notebook's widget and figure --------------------------------------------------------------


def test_sentiment_predictor_follows_the_text_box():
    from attnlab.widgets import sentiment_predictor

    tokenizer = CharTokenizer.ascii()
    body = GPT(GPTConfig(vocab_size=96, context_length=16, n_layers=1, n_heads=2, d_model=8,
                         d_ff=16), rngs=nnx.Rngs(0))
    classifier = ft.SequenceClassifier(body, 2, rngs=nnx.Rngs(1))
    classifier.head.bias[...] = jnp.array([0.0, 3.0])  # a head that prefers "positive"
    widget = sentiment_predictor(classifier, tokenizer, text="nice")
    expected = ft.predict_proba(classifier, tokenizer, ["nice"])[0]
    assert widget.label == "positive" and widget.probability == pytest.approx(float(expected[1]))
    assert "positive" in widget.output.value
    classifier.head.bias[...] = jnp.array([3.0, 0.0])
    widget.text.value = "awful"
    assert widget.label == "negative" and widget.probs["negative"] > 0.5
    widget.text.value = "x" * 17  # longer than the context window
    assert widget.label is None and "17 characters" in widget.output.value
    widget.text.value = ""
    assert widget.label is None and widget.probs == {} and "Type a sentence" in widget.output.value
    with pytest.raises(ValueError, match="classes"):
        sentiment_predictor(classifier, tokenizer, classes=("a", "b", "c"))


def test_comparison_plot_labels_and_bad_input():
    import matplotlib

    matplotlib.use("Agg")
    from attnlab.viz import plot_finetune_comparison

    fig = plot_finetune_comparison(["full", "LoRA"], [1000, 10], [2.0, 1.0], [0.9, 0.8],
                                   result_label="test accuracy", title="t")
    ax_result, ax_time = fig.axes
    assert ax_result.get_xscale() == "log" and ax_result.get_ylabel() == "test accuracy"
    assert [t.get_text() for t in ax_time.get_yticklabels()] == ["full", "LoRA"]
    with pytest.raises(ValueError, match="same length"):
        plot_finetune_comparison(["a"], [1, 2], [1], [1], result_label="x")
    with pytest.raises(ValueError, match="> 0"):
        plot_finetune_comparison(["a"], [0], [1], [1], result_label="x")


# --- the bag-of-words baseline ---------------------------------------------------------------------


def test_words_of_splits_on_everything_but_letters():
    assert ft.words_of("What a LOVELY, sunny morning! Don't 2x") == [
        "what", "a", "lovely", "sunny", "morning", "don't", "x"]


def test_bag_of_words_matches_naive_bayes_computed_by_hand():
    train = ["good fun", "bad day", "good day"]
    labels = [1, 0, 1]
    # vocabulary {bad, day, fun, good} (4 words); class 1 counts good 2, fun 1, day 1 (4 words),
    # class 0 counts bad 1, day 1 (2 words); add-one: p(w|1) = (n + 1) / 8, p(w|0) = (n + 1) / 6.
    def score(words, label):
        if label == 1:
            p = {"good": 3 / 8, "fun": 2 / 8, "day": 2 / 8, "bad": 1 / 8}
            prior = 2 / 3
        else:
            p = {"good": 1 / 6, "fun": 1 / 6, "day": 2 / 6, "bad": 2 / 6}
            prior = 1 / 3
        return np.log(prior) + sum(np.log(p[w]) for w in words if w in p)  # unknown: skipped

    tests = ["day day", "bad", "fun day", "day", "good day bad", "unknown words only"]
    expected = [int(score(ft.words_of(t), 1) > score(ft.words_of(t), 0)) for t in tests]
    assert set(expected) == {0, 1} and expected[-1] == 1  # the prior decides when no word is known
    np.testing.assert_array_equal(ft.bag_of_words_predict(train, labels, tests), expected)


def test_bag_of_words_bad_input():
    with pytest.raises(ValueError, match="one label per training sentence"):
        ft.bag_of_words_predict(["a", "b"], [0], ["a"])
    with pytest.raises(ValueError, match=r"labels must be in \[0, 2\)"):
        ft.bag_of_words_predict(["a", "b"], [0, 2], ["a"])
    with pytest.raises(ValueError, match="smoothing"):
        ft.bag_of_words_predict(["a", "b"], [0, 1], ["a"], smoothing=0)
