"""The bfloat16 opt-in: GPTConfig(matmul_dtype="bfloat16") and attention.bfloat16_matmul.

The reference values are computed independently in NumPy float64 from operands rounded to
bfloat16 (``ml_dtypes``, which JAX depends on), so a product that silently stayed float32, or
one that rounded its result to bfloat16, fails.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
from flax import nnx

from attnlab import checkpoint
from attnlab.attention import bfloat16_matmul, dense
from attnlab.gpt import GPT, GPTConfig
from attnlab.train import TrainConfig, make_optimizer, train_step

TINY = GPTConfig(vocab_size=13, context_length=10, n_layers=2, n_heads=2, d_model=16, d_ff=24)


def as_bf16(a) -> np.ndarray:
    """``a`` rounded to bfloat16 (round to nearest even), back as float64."""
    return np.asarray(a, np.float32).astype(ml_dtypes.bfloat16).astype(np.float64)


def test_bfloat16_matmul_multiplies_rounded_operands_and_sums_in_float32():
    rng = np.random.default_rng(0)
    x, w = rng.normal(size=(37, 64)), rng.normal(size=(64, 29))
    got = jax.jit(bfloat16_matmul)(jnp.asarray(x, jnp.float32), jnp.asarray(w, jnp.float32))
    assert got.dtype == jnp.float32 and got.shape == (37, 29)
    want = as_bf16(x) @ as_bf16(w)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5)
    exact = x @ w  # the float32 product differs by far more than float32 rounding
    assert np.abs(np.asarray(got) - exact).max() > 1e-3


def test_bfloat16_matmul_gradients_are_the_bfloat16_products():
    rng = np.random.default_rng(1)
    x, w, g = rng.normal(size=(8, 12)), rng.normal(size=(12, 5)), rng.normal(size=(8, 5))
    f32 = [jnp.asarray(a, jnp.float32) for a in (x, w, g)]
    _, vjp = jax.vjp(bfloat16_matmul, f32[0], f32[1])
    dx, dw = vjp(f32[2])
    assert dx.dtype == dw.dtype == jnp.float32
    np.testing.assert_allclose(np.asarray(dx), as_bf16(g) @ as_bf16(w).T, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(np.asarray(dw), as_bf16(x).T @ as_bf16(g), rtol=1e-5, atol=1e-5)


def test_dense_in_bfloat16_adds_the_bias_and_rejects_other_dtypes():
    layer = nnx.Linear(6, 4, bias_init=nnx.initializers.normal(1.0), rngs=nnx.Rngs(0))
    x = jnp.asarray(np.random.default_rng(2).normal(size=(5, 6)), jnp.float32)
    got = dense(layer, x, "bfloat16")
    want = as_bf16(x) @ as_bf16(layer.kernel[...]) + np.asarray(layer.bias[...], np.float64)
    np.testing.assert_allclose(np.asarray(got), want, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(dense(layer, x)), np.asarray(layer(x)))
    with pytest.raises(ValueError, match="matmul_dtype.*float16"):
        dense(layer, x, "float16")


def test_config_rejects_an_unknown_matmul_dtype():
    with pytest.raises(ValueError, match="matmul_dtype.*'float64'"):
        dataclasses.replace(TINY, matmul_dtype="float64")


def bf16_twin(model: GPT) -> GPT:
    """A bfloat16-matmul GPT with ``model``'s weights."""
    twin = GPT(dataclasses.replace(model.config, matmul_dtype="bfloat16"), rngs=nnx.Rngs(1))
    nnx.update(twin, nnx.state(model, nnx.Param))
    return twin


def test_bfloat16_gpt_gives_logits_close_to_float32_but_not_equal():
    model = GPT(TINY, rngs=nnx.Rngs(0))
    for path, var in nnx.iter_graph(model):  # weights large enough for rounding to show
        if isinstance(var, nnx.Param) and path[-1] != "scale":
            var[...] = jnp.asarray(np.random.default_rng(len(path)).normal(
                0, 0.3, var[...].shape), jnp.float32)
    twin = bf16_twin(model)
    tokens = jnp.asarray(np.random.default_rng(3).integers(0, 13, (2, 10)), jnp.int32)
    a, b = np.asarray(model(tokens)), np.asarray(twin(tokens))
    assert b.dtype == np.float32 and b.shape == a.shape
    scale = np.abs(a).max()
    assert 1e-4 * scale < np.abs(a - b).max() < 5e-2 * scale
    # the cached decoder uses the same products
    logits, cache = twin.prefill(tokens[:, :4])
    np.testing.assert_allclose(np.asarray(logits), b[:, 3], rtol=1e-4, atol=1e-4)
    step_logits, _ = twin.decode_step(tokens[:, 4], cache, 4)
    np.testing.assert_allclose(np.asarray(step_logits), b[:, 4], rtol=1e-4, atol=1e-4)


def test_bfloat16_training_follows_the_float32_losses_and_keeps_float32_weights():
    config = dataclasses.replace(TINY)
    tokens = jnp.asarray(np.random.default_rng(4).integers(0, 13, (4, 11)), jnp.int32)
    x, y = tokens[:, :-1], tokens[:, 1:]
    train = TrainConfig(steps=8, batch_size=4, learning_rate=1e-2, warmup_steps=0)
    losses = {}
    for dtype in ("float32", "bfloat16"):
        model = GPT(dataclasses.replace(config, matmul_dtype=dtype), rngs=nnx.Rngs(0))
        optimizer = make_optimizer(model, train)
        losses[dtype] = [float(train_step(model, optimizer, x, y)) for _ in range(8)]
        assert all(p.dtype == jnp.float32 for p in jax.tree.leaves(nnx.state(model, nnx.Param)))
    f32, bf16 = np.array(losses["float32"]), np.array(losses["bfloat16"])
    assert f32[-1] < f32[0] - 0.1 and bf16[-1] < bf16[0] - 0.1  # both learn
    np.testing.assert_allclose(bf16, f32, atol=2e-2)


def test_a_checkpoint_keeps_the_matmul_dtype(tmp_path):
    model = GPT(dataclasses.replace(TINY, matmul_dtype="bfloat16"), rngs=nnx.Rngs(0))
    checkpoint.save(tmp_path / "m.safetensors", model)
    assert checkpoint.load(tmp_path / "m.safetensors").model.config.matmul_dtype == "bfloat16"
