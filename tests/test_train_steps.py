"""train_steps: K optimizer steps in one compiled call equal K calls of train_step."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from attnlab.gpt import GPT, GPTConfig
from attnlab.train import TrainConfig, make_optimizer, train_step, train_steps

# dropout on: the K steps must also draw the same dropout masks as K separate calls
CONFIG = GPTConfig(vocab_size=11, context_length=8, n_layers=2, n_heads=2, d_model=16, d_ff=32,
                   dropout=0.1)
TRAIN = TrainConfig(steps=10, batch_size=3, learning_rate=1e-2, warmup_steps=2)


def setup():
    model = GPT(CONFIG, rngs=nnx.Rngs(params=0, dropout=1))
    return model, make_optimizer(model, TRAIN)


def batches(K):
    tokens = np.random.default_rng(0).integers(0, CONFIG.vocab_size, (K, 3, 9))
    return jnp.asarray(tokens[:, :, :-1], jnp.int32), jnp.asarray(tokens[:, :, 1:], jnp.int32)


def params(model):
    return [np.asarray(p) for p in jax.tree.leaves(nnx.state(model, nnx.Param))]


@pytest.fixture(autouse=True, scope="module")
def full_float32_matmuls():
    with jax.default_matmul_precision("highest"):
        yield


def test_k_steps_in_one_call_equal_k_calls_of_train_step():
    xs, ys = batches(4)
    one_model, one_opt = setup()
    one = [float(train_step(one_model, one_opt, xs[i], ys[i])) for i in range(4)]
    many_model, many_opt = setup()
    many = train_steps(many_model, many_opt, xs, ys)
    assert many.shape == (4,)
    np.testing.assert_allclose(np.asarray(many), one, rtol=1e-5)
    assert int(many_opt.step[...]) == int(one_opt.step[...]) == 4
    for a, b in zip(params(many_model), params(one_model), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
    assert one[-1] != one[0]  # the weights moved between the steps


def test_train_steps_rejects_mismatched_batches():
    model, optimizer = setup()
    xs, ys = batches(2)
    with pytest.raises(ValueError, match=r"xs and ys must both be \(K, B, T\)"):
        train_steps(model, optimizer, xs, ys[:1])
    with pytest.raises(ValueError, match=r"\(K, B, T\)"):
        train_steps(model, optimizer, xs[0], ys[0])
