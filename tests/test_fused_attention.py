"""The fused attention path: jax.nn.dot_product_attention, chosen by device (XLA on this CPU)."""

from __future__ import annotations

import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from attnlab.attention import (
    attention_implementation,
    causal_mask,
    fused_causal_attention,
    scaled_dot_product_attention,
)
from attnlab.gpt import GPT, GPTConfig
from attnlab.train import cross_entropy


def _device(platform: str, version: str = "", capability: str | None = None):
    device = types.SimpleNamespace(platform=platform,
                                   client=types.SimpleNamespace(platform_version=version))
    if capability is not None:
        device.compute_capability = capability
    return device


def test_this_cpu_takes_the_xla_path():
    assert jax.default_backend() == "cpu"
    assert attention_implementation() == "xla"


@pytest.mark.parametrize("devices, expected", [
    ([_device("cpu")], "xla"),
    ([_device("tpu")], "xla"),
    ([_device("gpu", "cuda 12080", "9.0")], "cudnn"),  # H100, H200
    ([_device("cuda", "cuda 13000", "8.0")], "cudnn"),  # A100
    ([_device("gpu", "cuda 12080", "7.5")], "xla"),  # T4: cuDNN's flash attention needs 8.0
    ([_device("gpu", "cuda 12080")], "xla"),  # capability unknown: the safe path
    ([_device("gpu", "rocm 6.2", "9.0")], "xla"),  # cuDNN is NVIDIA's
    ([_device("cpu"), _device("gpu", "cuda 12080", "8.6")], "cudnn"),
])
def test_the_implementation_follows_the_devices(devices, expected):
    assert attention_implementation(devices) == expected


@pytest.mark.parametrize("d_head, expected", [(64, "cudnn"), (128, "cudnn"), (8, "cudnn"),
                                              (160, "xla"), (100, "xla"), (None, "cudnn")])
def test_head_widths_the_kernel_does_not_take_go_to_xla(d_head, expected):
    assert attention_implementation([_device("gpu", "cuda 12080", "9.0")], d_head) == expected


@pytest.mark.parametrize("seed, shape", [(0, (2, 7, 3, 4)), (1, (1, 16, 2, 8)), (2, (3, 1, 1, 5))])
def test_fused_equals_the_step_by_step_causal_attention(seed, shape):
    q, k, v = (jax.random.normal(key, shape) * 2
               for key in jax.random.split(jax.random.key(seed), 3))
    expected, _ = scaled_dot_product_attention(q, k, v, causal_mask(shape[1]))
    got = fused_causal_attention(q, k, v)
    assert got.dtype == q.dtype and got.shape == shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
    # the first position sees only itself: its output is its own value
    np.testing.assert_allclose(got[:, 0], v[:, 0], rtol=1e-5, atol=1e-6)


def test_fused_rejects_bad_arguments():
    q = jnp.zeros((1, 4, 2, 3))
    with pytest.raises(ValueError, match="one shape"):
        fused_causal_attention(q, q[:, :3], q[:, :3])
    with pytest.raises(ValueError, match="one shape"):
        fused_causal_attention(q[0], q[0], q[0])
    with pytest.raises(ValueError, match="implementation must be 'xla' or 'cudnn'"):
        fused_causal_attention(q, q, q, implementation="flash")


def test_gpt_config_names_the_allowed_attention_kinds():
    with pytest.raises(ValueError, match=r"attention must be one of \('attnlab', 'fused'\)"):
        GPTConfig(attention="flash")


def _pair(**overrides):
    config = GPTConfig(vocab_size=11, context_length=9, n_layers=2, n_heads=2, d_model=8,
                       d_ff=16, **overrides)
    fused = GPT(config, rngs=nnx.Rngs(3))
    plain = GPT(GPTConfig(**{**config.__dict__, "attention": "attnlab"}), rngs=nnx.Rngs(3))
    return fused, plain


def test_a_fused_gpt_gives_the_same_logits_and_gradients():
    fused, plain = _pair(attention="fused")
    tokens = jax.random.randint(jax.random.key(0), (3, 9), 0, 11)
    np.testing.assert_allclose(fused(tokens), plain(tokens), rtol=1e-5, atol=1e-5)

    def grads(model):
        return nnx.grad(lambda m: cross_entropy(m(tokens[:, :-1]), tokens[:, 1:]))(model)

    for g_fused, g_plain in zip(jax.tree.leaves(grads(fused)), jax.tree.leaves(grads(plain)),
                                strict=True):
        np.testing.assert_allclose(g_fused, g_plain, rtol=1e-4, atol=1e-6)


def test_a_fused_gpt_still_returns_the_weights_when_asked():
    fused, plain = _pair(attention="fused")
    tokens = jnp.arange(6)[None] % 11
    logits, weights = fused(tokens, return_attention=True)
    logits_p, weights_p = plain(tokens, return_attention=True)
    assert len(weights) == 2 and weights[0].shape == (1, 2, 6, 6)
    for w, w_p in zip(weights, weights_p, strict=True):
        np.testing.assert_allclose(w, w_p, rtol=1e-6)
    np.testing.assert_allclose(logits, fused(tokens), rtol=1e-5, atol=1e-6)


def test_with_bfloat16_matmuls_fused_and_step_by_step_attention_agree():
    fused, plain = _pair(attention="fused", matmul_dtype="bfloat16")
    tokens = jax.random.randint(jax.random.key(1), (2, 9), 0, 11)
    np.testing.assert_allclose(fused(tokens), plain(tokens), rtol=1e-5, atol=1e-5)
