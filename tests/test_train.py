"""Training: the schedule, the loop's bookkeeping, reproducibility, resuming, evaluation."""

import dataclasses
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


def test_schedule_values_computed_by_hand():
    # Peak 1e-2, 10 warm-up updates, 100 in all, floor 1e-3. Update i (0-based) gets
    # 1e-2·(i+1)/10 while warming up, then 1e-3 + 4.5e-3·(1 + cos(π·(i+1-10)/90)).
    cfg = TrainConfig(steps=100, warmup_steps=10, learning_rate=1e-2, min_lr_ratio=0.1)
    lr = make_schedule(cfg)
    expected = {
        0: 1e-3,  # the first update already moves the weights: peak / warmup_steps
        4: 5e-3,
        9: 1e-2,  # the 10th update is the first at the peak
        39: 1e-3 + 4.5e-3 * (1 + 0.5),  # cos(π/3) = 1/2
        54: 1e-3 + 4.5e-3,  # cos(π/2) = 0: halfway between peak and floor
        99: 1e-3,  # the last update of the schedule reaches the floor
        150: 1e-3,  # past the end the rate stays at the floor
    }
    for i, value in expected.items():
        assert float(lr(i)) == pytest.approx(value, rel=1e-5), i
    values = [float(lr(i)) for i in range(9, 100)]
    assert all(a >= b for a, b in zip(values, values[1:], strict=False))


def test_schedule_without_warmup_starts_just_below_the_peak():
    lr = make_schedule(TrainConfig(steps=100, warmup_steps=0, learning_rate=1e-2, min_lr_ratio=0.1))
    assert float(lr(0)) == pytest.approx(1e-3 + 4.5e-3 * (1 + math.cos(math.pi / 100)), rel=1e-5)


def test_schedule_depends_on_decay_steps_not_on_where_the_run_stops():
    full = make_schedule(TrainConfig(steps=100, warmup_steps=10))
    stopped = make_schedule(TrainConfig(steps=12, warmup_steps=10, decay_steps=100))
    counts = np.arange(120)
    np.testing.assert_array_equal(np.asarray(stopped(counts)), np.asarray(full(counts)))
    # A run may stop inside its warm-up once the schedule's length is given separately.
    assert TrainConfig(steps=3, warmup_steps=5, decay_steps=30).schedule_steps == 30


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"steps": 0}, "steps"),
        ({"batch_size": 0}, "batch_size"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"warmup_steps": 2000}, "warmup_steps"),
        ({"steps": 50, "decay_steps": 20, "warmup_steps": 20}, "decay_steps=20"),
        ({"decay_steps": 0}, "decay_steps"),
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
    # Each update's logged rate: 3e-3/2 for the first of two warm-up updates, then the peak.
    assert history.learning_rate[:2] == pytest.approx([1.5e-3, 3e-3])
    schedule = make_schedule(TrainConfig(steps=25, warmup_steps=2))
    assert history.learning_rate == pytest.approx([float(schedule(i)) for i in range(25)])


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


def params_by_name(model):
    """Independent of the code under test: walk the module tree by attribute."""
    return {".".join(map(str, path)): np.asarray(v[...])
            for path, v in nnx.iter_graph(model) if isinstance(v, nnx.Param)}


def batch_covering_every_token_and_position():
    ids = np.arange(4 * 9) % CONFIG.vocab_size  # every token id appears, in all 8 positions
    rows = np.stack([np.roll(ids, -k)[:9] for k in range(4)])
    return jnp.asarray(rows[:, :-1], jnp.int32), jnp.asarray(rows[:, 1:], jnp.int32)


def test_the_first_update_moves_every_parameter_by_the_first_rate():
    """Without weight decay only the gradient moves weights: with a rate of 0 nothing would."""
    model = fresh_model()
    cfg = TrainConfig(steps=100, warmup_steps=10, learning_rate=1e-2, weight_decay=0.0)
    optimizer = make_optimizer(model, cfg)
    before = params_by_name(model)
    x, y = batch_covering_every_token_and_position()
    train_step(model, optimizer, x, y)
    after = params_by_name(model)
    assert before.keys() == after.keys() and len(before) == 4 + 16
    for name in before:
        change = np.abs(after[name] - before[name])
        assert change.max() > 0, f"{name} did not move"
        if name.endswith("W_k.bias"):
            # A key bias adds the same q·b to every score of a row, which softmax ignores: its
            # true gradient is 0, so only rounding noise (far below Adam's eps) moves it.
            continue
        # Adam's first step is rate·g/(|g| + eps) ≈ ±rate for every entry with a gradient.
        assert change.max() == pytest.approx(1e-3, rel=1e-3), name


def test_train_step_updates_parameters_in_place_against_the_gradient():
    model = fresh_model()
    optimizer = make_optimizer(model, TrainConfig(steps=10, warmup_steps=0, weight_decay=0.0))
    x, y = batch_covering_every_token_and_position()
    # The gradient, computed here independently of train_step.
    loss_before, grads = nnx.value_and_grad(lambda m: cross_entropy(m(x), y))(model)
    grads = {".".join(map(str, p)): np.asarray(v[...]) for p, v in nnx.to_flat_state(grads)}
    before = params_by_name(model)
    loss = train_step(model, optimizer, x, y)
    after = params_by_name(model)
    assert float(loss) == pytest.approx(float(loss_before), rel=1e-6)  # loss before the update
    for name, g in grads.items():
        # The update must go downhill: with the gradient ignored it would be 0 (no weight decay).
        assert np.sum((after[name] - before[name]) * g) < 0, name
    assert float(cross_entropy(model(x), y)) < float(loss_before)


# --- resuming -----------------------------------------------------------------------------

DROPOUT = GPTConfig(vocab_size=7, context_length=8, n_layers=1, n_heads=2, d_model=16, d_ff=32,
                    dropout=0.1)  # dropout: the resumed run must also continue the random stream


def resume_config(steps):
    return TrainConfig(steps=steps, batch_size=4, warmup_steps=3, decay_steps=20, eval_interval=5)


def test_a_resumed_run_ends_exactly_where_an_uninterrupted_one_does(tmp_path):
    straight = GPT(DROPOUT, rngs=nnx.Rngs(params=0, dropout=1))
    full = train(straight, tiny_data(), resume_config(20), key=jax.random.key(2), progress=False)

    state = tmp_path / "state.safetensors"
    first = GPT(DROPOUT, rngs=nnx.Rngs(params=0, dropout=1))
    part = train(first, tiny_data(), resume_config(8), key=jax.random.key(2), progress=False,
                 save_to=state)
    assert part.val_steps == [0, 5, 8]
    other = GPT(DROPOUT, rngs=nnx.Rngs(params=7, dropout=7))  # weights and stream get replaced
    resumed = train(other, tiny_data(), resume_config(20), resume_from=state, progress=False)

    for name, value in params_by_name(straight).items():
        np.testing.assert_array_equal(params_by_name(other)[name], value, err_msg=name)
    assert resumed.val_loss[-1] == pytest.approx(full.val_loss[-1], abs=1e-6)
    assert resumed.train_loss == full.train_loss and resumed.learning_rate == full.learning_rate
    assert resumed.steps == list(range(1, 21)) and resumed.val_steps == [0, 5, 8, 10, 15, 20]
    assert resumed.tokens_seen == full.tokens_seen


def test_the_state_is_saved_at_every_validation(tmp_path, monkeypatch):
    from attnlab import checkpoint

    saved_steps = []
    real_save = checkpoint.save_train_state

    def spy(path, *args, step, **kwargs):
        saved_steps.append(step)
        return real_save(path, *args, step=step, **kwargs)

    monkeypatch.setattr(checkpoint, "save_train_state", spy)
    cfg = TrainConfig(steps=25, batch_size=4, warmup_steps=2, eval_interval=10)
    train(fresh_model(), tiny_data(), cfg, key=jax.random.key(0), progress=False,
          save_to=tmp_path / "s.safetensors", metadata={"run": "test"})
    assert saved_steps == [0, 10, 20, 25]
    state = checkpoint.load_train_state(tmp_path / "s.safetensors")
    assert state.step == 25 and state.metadata == {"run": "test"}
    assert state.history.val_steps == [0, 10, 20, 25] and len(state.history.train_loss) == 25


def test_resume_refuses_what_would_not_continue_the_same_run(tmp_path):
    state = tmp_path / "s.safetensors"
    train(fresh_model(), tiny_data(), resume_config(5), key=jax.random.key(0), progress=False,
          save_to=state)
    with pytest.raises(ValueError, match="learning_rate: saved 0.003, given 0.01"):
        train(fresh_model(), tiny_data(), dataclasses.replace(resume_config(9), learning_rate=1e-2),
              resume_from=state, progress=False)
    with pytest.raises(ValueError, match="decay_steps: saved 20, given 9"):
        train(fresh_model(), tiny_data(), dataclasses.replace(resume_config(9), decay_steps=None),
              resume_from=state, progress=False)
    with pytest.raises(ValueError, match="already done 5 steps"):
        train(fresh_model(), tiny_data(), resume_config(5), resume_from=state, progress=False)
    with pytest.raises(ValueError, match="key differs"):
        train(fresh_model(), tiny_data(), resume_config(9), resume_from=state,
              key=jax.random.key(1), progress=False)
    with pytest.raises(ValueError, match="config"):
        train(GPT(DROPOUT, rngs=nnx.Rngs(0)), tiny_data(), resume_config(9), resume_from=state,
              progress=False)


def test_a_new_run_needs_a_key():
    with pytest.raises(TypeError, match="key"):
        train(fresh_model(), tiny_data(), resume_config(5), progress=False)


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
