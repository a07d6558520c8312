"""Tests for attnlab.rnn: the RNN and LSTM steps and layers, the encoder–decoders, training,
evaluation and the measurements of notebooks 02 and 03."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from attnlab.attention import additive_score, dot_product_score, masked_softmax
from attnlab.data import DATE_SOURCE_CHARS, DATE_TARGET_CHARS, encode_dates, make_dates
from attnlab.rnn import (
    LSTM,
    AttentionSeq2Seq,
    ElmanRNN,
    Seq2Seq,
    accuracy_by_length,
    elman_step,
    exact_match,
    input_gradient_norms,
    lstm_step,
    make_rnn,
    time_rnn_and_attention,
    train_seq2seq,
    translate,
    translate_texts,
)

V_SRC, V_TGT = len(DATE_SOURCE_CHARS), len(DATE_TARGET_CHARS)


def _sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


def _numpy_lstm_step(h, c, x, W_x, W_h, b):
    """Independent float64 LSTM step, gate by gate (order i, f, g, o)."""
    h, c, x, W_x, W_h, b = (np.asarray(a, np.float64) for a in (h, c, x, W_x, W_h, b))
    H = h.shape[-1]
    z = x @ W_x + h @ W_h + b
    i, f = _sigmoid(z[..., :H]), _sigmoid(z[..., H : 2 * H])
    g, o = np.tanh(z[..., 2 * H : 3 * H]), _sigmoid(z[..., 3 * H :])
    c_new = f * c + i * g
    return o * np.tanh(c_new), c_new


@pytest.fixture(scope="module")
def rng():
    return np.random.default_rng(0)


# --- one step ---------------------------------------------------------------------------------


def test_elman_step_known_answer():
    h = np.array([[0.5, -1.0]])
    x = np.array([[1.0, 2.0, 3.0]])
    W_x = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    W_h = np.array([[2.0, 0.0], [0.0, 0.5]])
    b = np.array([0.1, -0.2])
    # by hand: x W_x = (4, 5), h W_h = (1, -0.5), + b = (5.1, 4.3)
    np.testing.assert_allclose(elman_step(h, x, W_x, W_h, b), np.tanh([[5.1, 4.3]]), rtol=1e-6)


def test_lstm_step_matches_an_independent_numpy_step(rng):
    B, d_in, H = 3, 5, 4
    args = (rng.normal(size=(B, H)), rng.normal(size=(B, H)), rng.normal(size=(B, d_in)),
            rng.normal(size=(d_in, 4 * H)), rng.normal(size=(H, 4 * H)), rng.normal(size=4 * H))
    h, c = lstm_step(*(jnp.asarray(a, jnp.float32) for a in args))
    h_ref, c_ref = _numpy_lstm_step(*args)
    np.testing.assert_allclose(h, h_ref, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(c, c_ref, rtol=1e-4, atol=1e-5)


def test_a_closed_forget_gate_erases_the_cell_and_an_open_one_keeps_it():
    H = 2
    c = jnp.array([[3.0, -2.0]])
    zeros = jnp.zeros((1, H))
    W_x, W_h = jnp.zeros((1, 4 * H)), jnp.zeros((H, 4 * H))
    # input gate shut (z_i = -50), forget gate open (z_f = +50): c stays
    b_keep = jnp.array([-50.0] * H + [50.0] * H + [0.0] * 2 * H)
    _, c_kept = lstm_step(zeros, c, jnp.zeros((1, 1)), W_x, W_h, b_keep)
    np.testing.assert_allclose(c_kept, c, atol=1e-6)
    # both shut: c is erased
    b_erase = jnp.array([-50.0] * 2 * H + [0.0] * 2 * H)
    _, c_erased = lstm_step(zeros, c, jnp.zeros((1, 1)), W_x, W_h, b_erase)
    np.testing.assert_allclose(c_erased, 0.0, atol=1e-6)


# --- the layers, against flax's own cells --------------------------------------------------------


def test_elman_rnn_matches_flax_simple_cell(rng):
    B, S, d_in, H = 2, 6, 3, 5
    rnn = ElmanRNN(d_in, H, rngs=nnx.Rngs(0))
    cell = nnx.SimpleCell(d_in, H, rngs=nnx.Rngs(1))
    cell.dense_i.kernel[...] = rnn.W_x[...]
    cell.dense_i.bias[...] = jnp.asarray(rng.normal(size=H), jnp.float32)
    rnn.b[...] = cell.dense_i.bias[...]
    cell.dense_h.kernel[...] = rnn.W_h[...]
    x = jnp.asarray(rng.normal(size=(B, S, d_in)), jnp.float32)
    outputs, final = rnn(x)
    carry = jnp.zeros((B, H))
    for t in range(S):
        carry, y = cell(carry, x[:, t])
        np.testing.assert_allclose(outputs[:, t], y, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(final, carry, rtol=1e-5, atol=1e-6)


def test_lstm_matches_flax_lstm_cell(rng):
    B, S, d_in, H = 2, 6, 3, 4
    lstm = LSTM(d_in, H, rngs=nnx.Rngs(0))
    lstm.b[...] = jnp.asarray(rng.normal(size=4 * H), jnp.float32)
    cell = nnx.LSTMCell(d_in, H, rngs=nnx.Rngs(1))
    for k, gate in enumerate(["i", "f", "g", "o"]):  # flax names the gates ii/hi, if_/hf, ...
        part = slice(k * H, (k + 1) * H)
        getattr(cell, "if_" if gate == "f" else f"i{gate}").kernel[...] = lstm.W_x[...][:, part]
        dense_h = getattr(cell, f"h{gate}")
        dense_h.kernel[...] = lstm.W_h[...][:, part]
        dense_h.bias[...] = lstm.b[...][part]
    x = jnp.asarray(rng.normal(size=(B, S, d_in)), jnp.float32)
    outputs, (h, c) = lstm(x)
    carry = (jnp.zeros((B, H)), jnp.zeros((B, H)))  # flax's carry is (c, h)
    for t in range(S):
        carry, y = cell(carry, x[:, t])
        np.testing.assert_allclose(outputs[:, t], y, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(c, carry[0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(h, carry[1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_padding_leaves_the_final_state_of_each_sequence_alone(cell, rng):
    B, S, d_in, H = 3, 7, 2, 4
    layer = make_rnn(cell, d_in, H, rngs=nnx.Rngs(0))
    x = jnp.asarray(rng.normal(size=(B, S, d_in)), jnp.float32)
    lengths = [7, 4, 1]
    mask = jnp.arange(S)[None] < jnp.asarray(lengths)[:, None]
    _, final = layer(x, mask)
    for b, n in enumerate(lengths):
        _, alone = layer(x[b : b + 1, :n])
        for got, want in zip(jax.tree.leaves(final), jax.tree.leaves(alone), strict=True):
            np.testing.assert_allclose(got[b], want[0], rtol=1e-5, atol=1e-6)


def test_the_lstm_starts_with_its_forget_gate_biased_open():
    lstm = LSTM(3, 4, rngs=nnx.Rngs(0))
    np.testing.assert_array_equal(lstm.b[...], [0] * 4 + [1] * 4 + [0] * 8)
    assert float(LSTM(3, 4, forget_bias=3.0, rngs=nnx.Rngs(0)).b[...][5]) == 3.0


def test_layers_reject_bad_input():
    with pytest.raises(ValueError, match="cell must be one of"):
        make_rnn("gru", 2, 3, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match="d_hidden must be an integer >= 1; got 0"):
        ElmanRNN(2, 0, rngs=nnx.Rngs(0))
    rnn = ElmanRNN(2, 3, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"x must have shape \(B, S, 2\)"):
        rnn(jnp.zeros((4, 2)))
    with pytest.raises(ValueError, match="mask must be a bool array"):
        rnn(jnp.zeros((1, 4, 2)), jnp.ones((1, 4)))


# --- gradient through time -------------------------------------------------------------------


def test_gradient_norm_at_the_last_step_has_a_closed_form(rng):
    # h_S = tanh(x_S W_x + h_{S-1} W_h + b), so dh_S/dx_S = diag(1 - h_S^2) W_x^T.
    rnn = ElmanRNN(3, 5, rngs=nnx.Rngs(0))
    x = jnp.asarray(rng.normal(size=(2, 4, 3)), jnp.float32)
    norms = np.asarray(input_gradient_norms(rnn, x))
    outputs, _ = rnn(x)
    for b in range(2):
        h = np.asarray(outputs[b, -1], np.float64)
        jac = (1 - h**2)[:, None] * np.asarray(rnn.W_x[...], np.float64).T
        assert norms[b, -1] == pytest.approx(np.linalg.norm(jac), rel=1e-4)


def test_gradient_norms_match_a_finite_difference(rng):
    lstm = LSTM(2, 3, rngs=nnx.Rngs(0))
    x = np.asarray(rng.normal(size=(1, 5, 2)), np.float64)
    norms = np.asarray(input_gradient_norms(lstm, jnp.asarray(x, jnp.float32)))
    eps, t = 1e-2, 1

    def last(xx):
        return np.asarray(lstm(jnp.asarray(xx, jnp.float32))[0][0, -1], np.float64)

    columns = []
    for i in range(2):
        up, down = x.copy(), x.copy()
        up[0, t, i] += eps
        down[0, t, i] -= eps
        columns.append((last(up) - last(down)) / (2 * eps))
    assert norms[0, t] == pytest.approx(np.linalg.norm(np.stack(columns)), rel=2e-2)


def test_gradient_norms_are_finite_and_fade_faster_in_the_rnn(rng):
    x = jnp.asarray(rng.normal(size=(4, 30, 8)), jnp.float32)
    rnn_norms = np.asarray(input_gradient_norms(ElmanRNN(8, 16, rngs=nnx.Rngs(0)), x))
    lstm_norms = np.asarray(
        input_gradient_norms(LSTM(8, 16, forget_bias=3.0, rngs=nnx.Rngs(0)), x))
    assert rnn_norms.shape == lstm_norms.shape == (4, 30)
    assert np.isfinite(rnn_norms).all() and np.isfinite(lstm_norms).all()
    # 25 steps back, relative to the last step: the RNN keeps far less than the open-gated LSTM
    rnn_ratio = np.median(rnn_norms[:, 4] / rnn_norms[:, -1])
    lstm_ratio = np.median(lstm_norms[:, 4] / lstm_norms[:, -1])
    assert rnn_ratio < 1e-2 < lstm_ratio


# --- encoder–decoders ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def batch():
    return encode_dates(make_dates(6, seed=3), max_len=40)


@pytest.mark.parametrize("cls", [Seq2Seq, AttentionSeq2Seq])
@pytest.mark.parametrize("cell", ["rnn", "lstm"])
def test_encoder_decoders_give_the_right_shapes(cls, cell, batch):
    model = cls(V_SRC, V_TGT, d_embed=4, d_hidden=8, cell=cell, rngs=nnx.Rngs(0))
    target_in = jnp.zeros_like(jnp.asarray(batch.target))
    logits = model(jnp.asarray(batch.source), jnp.asarray(batch.lengths), target_in)
    assert logits.shape == (6, 10, V_TGT)
    logits, weights = model.decode(jnp.asarray(batch.source), jnp.asarray(batch.lengths),
                                   n_steps=7)
    assert logits.shape == (6, 7, V_TGT)
    if cls is Seq2Seq:
        assert weights is None
    else:
        assert weights.shape == (6, 7, 40)


def test_attention_weights_are_a_distribution_over_the_real_characters(batch):
    model = AttentionSeq2Seq(V_SRC, V_TGT, d_embed=4, d_hidden=8, cell="rnn", rngs=nnx.Rngs(0))
    _, weights = model.decode(jnp.asarray(batch.source), jnp.asarray(batch.lengths))
    weights = np.asarray(weights)
    assert (weights >= 0).all()
    np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)
    for b, n in enumerate(batch.lengths):
        assert (weights[b, :, n:] == 0).all()  # padding gets exactly nothing


@pytest.mark.parametrize("score", ["additive", "dot"])
def test_attend_is_the_attention_modules_score_and_masked_softmax(score, rng):
    B, S, H = 2, 5, 6
    model = AttentionSeq2Seq(V_SRC, V_TGT, d_embed=4, d_hidden=H, score=score, d_attention=3,
                             rngs=nnx.Rngs(0))
    query = jnp.asarray(rng.normal(size=(B, H)), jnp.float32)
    states = jnp.asarray(rng.normal(size=(B, S, H)), jnp.float32)
    mask = jnp.array([[True] * 5, [True, True, False, False, False]])
    context, weights = model.attend(query, states, mask)
    if score == "additive":
        scores = additive_score(query[:, None], states, model.W_a[...], model.U_a[...],
                                model.v_a[...])[:, 0]
    else:
        scores = dot_product_score(query[:, None], states)[:, 0]
    expected = masked_softmax(scores, mask)
    np.testing.assert_allclose(weights, expected, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(context, np.einsum("bs,bsh->bh", expected, states),
                               rtol=1e-5, atol=1e-5)


def test_the_plain_decoder_reads_the_same_vector_whatever_it_asks(rng):
    model = Seq2Seq(V_SRC, V_TGT, d_embed=4, d_hidden=6, cell="rnn", rngs=nnx.Rngs(0))
    states = jnp.asarray(rng.normal(size=(2, 5, 6)), jnp.float32)
    encoded = model.prepare(states, jnp.ones((2, 5), bool), states[:, -1])
    first, none = model.context(jnp.zeros((2, 6)), encoded)
    second, _ = model.context(jnp.ones((2, 6)), encoded)
    assert none is None
    np.testing.assert_array_equal(first, second)
    np.testing.assert_array_equal(first, states[:, -1])


@pytest.mark.parametrize("cls", [Seq2Seq, AttentionSeq2Seq])
def test_teacher_forcing_never_lets_a_step_see_later_targets(cls, batch):
    model = cls(V_SRC, V_TGT, d_embed=4, d_hidden=8, cell="lstm", rngs=nnx.Rngs(0))
    source, lengths = jnp.asarray(batch.source), jnp.asarray(batch.lengths)
    target_in = jnp.asarray(batch.target)
    changed = target_in.at[:, 6].set((target_in[:, 6] + 1) % V_TGT)
    a, b = model(source, lengths, target_in), model(source, lengths, changed)
    np.testing.assert_array_equal(a[:, :6], b[:, :6])
    assert not np.allclose(a[:, 6:], b[:, 6:])


def test_greedy_decoding_feeds_back_its_own_choices(batch):
    model = AttentionSeq2Seq(V_SRC, V_TGT, d_embed=4, d_hidden=8, cell="rnn", rngs=nnx.Rngs(0))
    source, lengths = jnp.asarray(batch.source), jnp.asarray(batch.lengths)
    ids, _ = translate(model, batch.source, batch.lengths)
    # teacher-forcing the model with its own greedy output reproduces the same choices
    target_in = jnp.concatenate([jnp.zeros((6, 1), jnp.int32), jnp.asarray(ids[:, :-1])], 1)
    np.testing.assert_array_equal(np.argmax(model(source, lengths, target_in), -1), ids)


def test_translate_in_chunks_equals_one_call(batch):
    model = Seq2Seq(V_SRC, V_TGT, d_embed=4, d_hidden=8, cell="rnn", rngs=nnx.Rngs(0))
    whole, _ = translate(model, batch.source, batch.lengths, batch_size=6)
    chunked, _ = translate(model, batch.source, batch.lengths, batch_size=4)
    np.testing.assert_array_equal(whole, chunked)


def test_models_reject_bad_input(batch):
    with pytest.raises(ValueError, match="score must be 'additive' or 'dot'"):
        AttentionSeq2Seq(V_SRC, V_TGT, score="cosine", rngs=nnx.Rngs(0))
    model = Seq2Seq(V_SRC, V_TGT, d_embed=4, d_hidden=8, rngs=nnx.Rngs(0))
    with pytest.raises(ValueError, match=r"source must be \(B, S\) and lengths \(B,\)"):
        model.decode(jnp.asarray(batch.source), jnp.asarray(batch.lengths[:2]))
    with pytest.raises(ValueError, match=r"target_in must be \(B, T\) with B = 6"):
        model(jnp.asarray(batch.source), jnp.asarray(batch.lengths), jnp.zeros((2, 10), int))
    with pytest.raises(ValueError, match="lengths must be between 1 and S = 40; got 0 to"):
        translate(model, batch.source, np.zeros(6, int))
    with pytest.raises(ValueError, match="N >= 1"):
        translate(model, batch.source[:0], batch.lengths[:0])


def test_translate_texts_reads_typed_dates_and_says_what_it_cannot_read():
    model = AttentionSeq2Seq(V_SRC, V_TGT, d_embed=4, d_hidden=8, rngs=nnx.Rngs(0))
    predictions, weights = translate_texts(model, ["3 Sep 2021", "9/3/2021"], max_len=20)
    assert [len(p) for p in predictions] == [10, 10]
    assert set("".join(predictions)) <= set(DATE_TARGET_CHARS)
    assert [w.shape for w in weights] == [(10, 10), (10, 8)]
    with pytest.raises(ValueError, match="empty"):
        translate_texts(model, [""])
    with pytest.raises(ValueError, match="cannot read '#'"):
        translate_texts(model, ["3 Sep #2021"])
    with pytest.raises(ValueError, match="at most 20"):
        translate_texts(model, ["x" * 21], max_len=20)
    plain = Seq2Seq(V_SRC, V_TGT, d_embed=4, d_hidden=8, rngs=nnx.Rngs(0))
    assert translate_texts(plain, ["3 Sep 2021"], max_len=20)[1] == [None]


# --- training and evaluation ----------------------------------------------------------------------


def test_accuracy_by_length_known_answer():
    correct = [True, False, True, True, False]
    lengths = [8, 9, 12, 15, 30]
    acc, counts = accuracy_by_length(correct, lengths, [8, 12, 16, 20, 40])
    np.testing.assert_array_equal(counts, [2, 2, 0, 1])
    np.testing.assert_allclose(acc, [0.5, 1.0, np.nan, 0.0])
    with pytest.raises(ValueError, match="edges must be increasing"):
        accuracy_by_length(correct, lengths, [8, 8])
    with pytest.raises(ValueError, match="same length"):
        accuracy_by_length(correct, lengths[:3], [8, 40])


def test_training_lowers_the_loss_and_repeats_with_the_same_seed():
    data = encode_dates(make_dates(64, seed=0), max_len=64)

    def run():
        model = Seq2Seq(V_SRC, V_TGT, d_embed=4, d_hidden=8, cell="rnn", rngs=nnx.Rngs(0))
        return train_seq2seq(model, data, steps=30, batch_size=16, learning_rate=1e-2,
                             validation=data, eval_interval=10, progress=False)

    first, second = run(), run()
    assert first.train_loss == second.train_loss
    assert len(first.train_loss) == 30 and first.val_steps == [0, 10, 20, 30]
    assert first.val_loss[-1] < first.val_loss[0] - 0.5
    assert first.val_loss[0] == pytest.approx(math.log(V_TGT), abs=0.3)  # untrained: ~uniform
    with pytest.raises(ValueError, match="steps must be an integer >= 1"):
        train_seq2seq(Seq2Seq(V_SRC, V_TGT, rngs=nnx.Rngs(0)), data, steps=0)


def test_attention_beats_the_plain_encoder_decoder_on_long_inputs():
    """The claim of notebook 03, small: the same RNN cell, data, steps and seed; the model that
    attends gets far more long dates exactly right than the one that reads only the last
    encoder vector."""
    train = encode_dates(make_dates(4000, seed=0), max_len=64)
    long_test = encode_dates([p for p in make_dates(600, seed=1) if len(p[0]) >= 32], max_len=64)
    accuracy = {}
    for cls in (Seq2Seq, AttentionSeq2Seq):
        model = cls(V_SRC, V_TGT, d_embed=8, d_hidden=32, cell="rnn", rngs=nnx.Rngs(0))
        train_seq2seq(model, train, steps=300, batch_size=32, learning_rate=1e-2, progress=False)
        accuracy[cls.__name__] = exact_match(model, long_test).mean()
    assert accuracy["AttentionSeq2Seq"] >= accuracy["Seq2Seq"] + 0.3, accuracy


# --- timing ---------------------------------------------------------------------------------------


def test_timing_returns_one_positive_time_per_length():
    result = time_rnn_and_attention([4, 8], d_model=8, batch_size=2, repeats=2)
    np.testing.assert_array_equal(result["length"], [4, 8])
    for name in ("rnn_s", "attention_s"):
        assert result[name].shape == (2,) and (result[name] > 0).all()
    with pytest.raises(ValueError, match="length must be an integer >= 1; got 0"):
        time_rnn_and_attention([0])
