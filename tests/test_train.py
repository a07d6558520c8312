"""Training: the schedule, the loop's bookkeeping, reproducibility and evaluation."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from attnlab.data import Splits
from attnlab.gpt import GPT, GPTConfig
from attnlab.train import (
    TrainConfig,
    cross_entropy,
    evaluate,
    make_optimizer,
    make_schedule,
    train,
    train_step,
)

CONFIG = GPTConfig(vocab_size=7, context_length=8, n_layers=1, n_heads=2, d_model=16, d_ff=32)


def tiny_data(seed=0, n_train=400, n_val=60):
    # A repeating pattern with noise: learnable, so the loss must fall.
    rng = np.random.default_rng(seed)
    pattern = np.tile(np.arange(7), (n_train + n_val) // 7 + 1)[: n_train + n_val]
    noise = rng.random(len(pattern)) < 0.1
    ids = np.where(noise, rng.integers(0, 7, len(pattern)), pattern).astype(np.int32)
    return Splits(train=ids[:n_train], val=ids[n_train:])


def fresh_model(seed=0):
    return GPT(CONFIG, rngs=nnx.Rngs(seed))


def test_schedule_warms_up_linearly_then_decays_along_a_cosine():
    cfg = TrainConfig(steps=100, warmup_steps=10, learning_rate=1e-2, min_lr_ratio=0.1)
    lr = make_schedule(cfg)
    assert float(lr(0)) == 0.0
    assert float(lr(5)) == pytest.approx(0.5e-2)
    assert float(lr(10)) == pytest.approx(1e-2)
    # Halfway through the decay the cosine is at its midpoint between peak and floor.
    assert float(lr(55)) == pytest.approx(1e-3 + 0.5 * (1e-2 - 1e-3), rel=1e-5)
    assert float(lr(100)) == pytest.approx(1e-3)
    values = [float(lr(s)) for s in range(10, 101)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"steps": 0}, "steps"),
        ({"batch_size": 0}, "batch_size"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"warmup_steps": 2000}, "warmup_steps"),
        ({"min_lr_ratio": 1.5}, "min_lr_ratio"),
        ({"grad_clip": 0.0}, "grad_clip"),
        ({"eval_interval": 0}, "eval_interval"),
    ],
)
def test_bad_train_config_names_the_argument(kwargs, name):
    with pytest.raises(ValueError, match=name):
        TrainConfig(**kwargs)


def test_cross_entropy_matches_a_hand_computation():
    logits = jnp.array([[[2.0, 0.0, -1.0], [0.5, 0.5, 0.5]]])
    targets = jnp.array([[0, 2]])
    p0 = math.exp(2.0) / (math.exp(2.0) + 1.0 + math.exp(-1.0))
    expected = (-math.log(p0) + math.log(3.0)) / 2
    assert float(cross_entropy(logits, targets)) == pytest.approx(expected, rel=1e-6)


def test_weight_decay_skips_biases_and_layer_norms():
    model = fresh_model()
    optimizer = make_optimizer(model, TrainConfig(steps=10, warmup_steps=0, weight_decay=0.5))
    # With zero gradients, only decoupled weight decay moves parameters.
    before = jax.tree.map(np.asarray, nnx.state(model, nnx.Param))
    zeros = jax.tree.map(jnp.zeros_like, nnx.state(model, nnx.Param))
    optimizer.update(model, zeros)
    after = jax.tree.map(np.asarray, nnx.state(model, nnx.Param))
    for b, a in zip(jax.tree.leaves(before), jax.tree.leaves(after), strict=True):
        if b.ndim >= 2:
            assert not np.array_equal(a, b)  # matrices shrink
        else:
            np.testing.assert_array_equal(a, b)  # biases and LayerNorm scales do not


def test_train_records_every_step_and_validates_on_schedule():
    calls = []
    history = train(
        fresh_model(), tiny_data(), TrainConfig(steps=25, batch_size=4, warmup_steps=2,
                                                eval_interval=10),
        key=jax.random.key(0), progress=False,
        callback=lambda step, h, m: calls.append((step, len(h.val_loss))),
    )
    assert history.steps == list(range(1, 26))
    assert len(history.train_loss) == len(history.learning_rate) == 25
    assert history.val_steps == [0, 10, 20, 25]
    assert calls == [(0, 1), (10, 2), (20, 3), (25, 4)]
    assert history.tokens_seen == 25 * 4 * CONFIG.context_length
    assert history.learning_rate[0] == 0.0 and max(history.learning_rate) == pytest.approx(3e-3)


def test_same_seed_same_losses_and_different_seed_different_losses():
    cfg = TrainConfig(steps=12, batch_size=4, warmup_steps=1, eval_interval=12)
    runs = [train(fresh_model(), tiny_data(), cfg, key=jax.random.key(k), progress=False)
            for k in (3, 3, 4)]
    assert runs[0].train_loss == runs[1].train_loss
    assert runs[0].val_loss == runs[1].val_loss
    assert runs[0].train_loss != runs[2].train_loss


def test_training_lowers_the_validation_loss():
    cfg = TrainConfig(steps=150, batch_size=8, learning_rate=1e-2, warmup_steps=10,
                      eval_interval=150)
    history = train(fresh_model(), tiny_data(), cfg, key=jax.random.key(0), progress=False)
    assert history.val_loss[0] > math.log(7) - 0.3  # untrained: about ln V
    assert history.val_loss[-1] < 0.6 * history.val_loss[0]


def test_evaluate_scores_every_full_window_exactly_once():
    model = fresh_model(1)
    ids = np.random.default_rng(0).integers(0, 7, 8 * 5 + 3).astype(np.int32)
    # Independent computation: five windows of 8, each predicting the next token.
    x = ids[:40].reshape(5, 8)
    y = ids[1:41].reshape(5, 8)
    losses = optax.softmax_cross_entropy_with_integer_labels(model(jnp.asarray(x)), y)
    expected = float(losses.mean())
    for batch_size in (1, 2, 32):  # padding to whole batches must not change the mean
        assert evaluate(model, ids, batch_size=batch_size) == pytest.approx(expected, rel=1e-5)


def test_evaluate_rejects_too_little_text():
    with pytest.raises(ValueError, match="at least 9"):
        evaluate(fresh_model(), np.zeros(8, np.int32))


def test_a_diverging_run_stops_with_a_clear_error():
    cfg = TrainConfig(steps=10, batch_size=2, learning_rate=1e30, warmup_steps=0,
                      grad_clip=1e30, eval_interval=10)
    with pytest.raises(FloatingPointError, match="learning_rate"):
        train(fresh_model(), tiny_data(), cfg, key=jax.random.key(0), progress=False)


def test_train_step_updates_parameters_in_place():
    model = fresh_model()
    optimizer = make_optimizer(model, TrainConfig(steps=10, warmup_steps=0))
    before = np.asarray(model.blocks[0].mlp.fc_in.kernel[...])
    x = jnp.zeros((2, 8), jnp.int32)
    loss = train_step(model, optimizer, x, x)
    assert np.isfinite(float(loss))
    assert not np.array_equal(before, np.asarray(model.blocks[0].mlp.fc_in.kernel[...]))


# --- per_position_loss (notebook 05) ----------------------------------------------------------

from attnlab.train import per_position_loss  # noqa: E402


def test_per_position_loss_averages_to_evaluate_and_matches_a_loop():
    model, ids = fresh_model(3), tiny_data(1).val
    by_position = per_position_loss(model, ids)
    assert by_position.shape == (CONFIG.context_length,)
    assert by_position.mean() == pytest.approx(evaluate(model, ids), rel=1e-6)
    # Independent: score each window by hand, log-softmax in float64.
    C = CONFIG.context_length
    n = (len(ids) - 1) // C
    expected = np.zeros(C)
    for w in range(n):
        x, y = ids[w * C : (w + 1) * C], ids[w * C + 1 : (w + 1) * C + 1]
        logits = np.asarray(model(jnp.asarray(x[None])), np.float64)[0]
        log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
        expected -= log_probs[np.arange(C), y] / n
    np.testing.assert_allclose(by_position, expected, rtol=1e-5)


def test_per_position_loss_needs_a_whole_window():
    with pytest.raises(ValueError, match="at least 9"):
        per_position_loss(fresh_model(), np.arange(8) % 7)
