"""Tests for attnlab.gpt: configuration, initialisation, parameter and FLOP counts, causality,
weight tying, GELU, KV cache.

Models here are tiny, and most have their weights redrawn at a large scale (``randomize``) so
that every position and every layer visibly matters; a test that passes on a near-zero model
would prove little.
"""

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx

from attnlab.attention import causal_mask
from attnlab.gpt import GPT, GPTConfig
from attnlab.train import TrainConfig, make_optimizer, train_step

TINY = GPTConfig(vocab_size=13, context_length=10, n_layers=2, n_heads=2, d_model=16, d_ff=24)
B, T = 3, 8


@pytest.fixture(autouse=True, scope="module")
def full_float32_matmuls():
    """Exact float32 products, so the tight comparisons also hold on GPUs that default to TF32."""
    with jax.default_matmul_precision("highest"):
        yield


def params_by_path(model):
    """{path: array} for every nnx.Param, read with ``[...]``."""
    return {path: var[...] for path, var in nnx.iter_graph(model) if isinstance(var, nnx.Param)}


def randomize(model, seed, std=0.5):
    """Redraw every parameter from normal(0, std) (LayerNorm scales around 1), in place."""
    rng = np.random.default_rng(seed)  # NumPy: no compilation per parameter shape
    for path, var in nnx.iter_graph(model):
        if isinstance(var, nnx.Param):
            noise = std * rng.normal(size=var[...].shape)
            var[...] = jnp.asarray(noise + (1.0 if path[-1] == "scale" else 0.0), jnp.float32)
    return model


def random_tokens(seed, batch=B, length=T, vocab=TINY.vocab_size):
    return jnp.asarray(np.random.default_rng(seed).integers(0, vocab, (batch, length)), jnp.int32)


@nnx.jit
def forward(model, tokens):
    return model(tokens)


@nnx.jit
def forward_with_attention(model, tokens):
    return model(tokens, return_attention=True)


@pytest.fixture(scope="module")
def model():
    return randomize(GPT(TINY, rngs=nnx.Rngs(0)), seed=1)


# --- configuration ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "changes,name",
    [
        (dict(n_heads=3), "n_heads must divide d_model"),
        (dict(n_heads=5, d_model=12), "n_heads must divide d_model"),
        (dict(dropout=-0.1), "dropout"),
        (dict(dropout=1.0), "dropout"),
        (dict(dropout=float("nan")), "dropout"),
        (dict(vocab_size=0), "vocab_size"),
        (dict(context_length=-4), "context_length"),
        (dict(n_layers=0), "n_layers"),
        (dict(n_heads=0), "n_heads"),
        (dict(d_model=0), "d_model"),
        (dict(d_ff=-1), "d_ff"),
        (dict(d_model=16.0), "d_model"),
        (dict(n_layers=True), "n_layers"),
        (dict(layer_norm_epsilon=0.0), "layer_norm_epsilon"),
        (dict(gelu="relu"), "gelu"),
    ],
)
def test_config_rejects_bad_values(changes, name):
    with pytest.raises(ValueError, match=name):
        dataclasses.replace(TINY, **changes)


def test_config_error_names_the_value():
    with pytest.raises(ValueError, match=r"d_model=16, n_heads=3"):
        dataclasses.replace(TINY, n_heads=3)
    with pytest.raises(ValueError, match=r"got 1.5"):
        dataclasses.replace(TINY, dropout=1.5)


def test_each_head_of_the_model_is_d_model_over_n_heads_wide():
    """48 columns shared by 6 heads: q, k, v and the cache hold 6 heads of 8 columns each."""
    config = GPTConfig(vocab_size=5, context_length=4, n_layers=1, n_heads=6, d_model=48, d_ff=8)
    model = GPT(config, rngs=nnx.Rngs(0))
    q, k, v = model.blocks[0].attention.qkv(jnp.ones((2, 3, 48)))
    assert q.shape == k.shape == v.shape == (2, 3, 6, 8)
    assert model.init_cache(2)["k"].shape == (1, 2, 4, 6, 8)


# --- parameter count ----------------------------------------------------------------------


def count_from_architecture(V, C, L, D, F):
    """Counted from the description: embeddings, L pre-LN blocks, final LN, tied head."""
    token_embedding = V * D
    position_embedding = C * D
    layer_norm = D + D  # scale and bias
    linear = lambda n_in, n_out: n_in * n_out + n_out  # noqa: E731 - weight + bias
    block = (
        layer_norm  # ln_1
        + 4 * linear(D, D)  # W_q, W_k, W_v, W_o
        + layer_norm  # ln_2
        + linear(D, F)  # MLP in
        + linear(F, D)  # MLP out
    )
    output_head = 0  # tied: logits reuse the token embedding
    return token_embedding + position_embedding + L * block + layer_norm + output_head


CONFIGS = [
    TINY,
    GPTConfig(vocab_size=7, context_length=3, n_layers=1, n_heads=1, d_model=4, d_ff=4),
    GPTConfig(vocab_size=50, context_length=16, n_layers=3, n_heads=4, d_model=8, d_ff=40),
    GPTConfig(vocab_size=96, context_length=32, n_layers=1, n_heads=3, d_model=24, d_ff=96),
]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"L{c.n_layers}D{c.d_model}")
def test_num_params_matches_the_closed_form_and_an_independent_count(config):
    # eval_shape builds the model with abstract arrays: the same parameter shapes, no compute.
    model = nnx.eval_shape(lambda: GPT(config, rngs=nnx.Rngs(0)))
    by_hand = count_from_architecture(
        config.vocab_size, config.context_length, config.n_layers, config.d_model, config.d_ff
    )
    assert model.num_params() == config.num_params() == by_hand


def test_num_params_of_a_real_model(model):
    """Counted from the materialised arrays (not abstract shapes) against the count by hand."""
    V, C, L, D, F = (TINY.vocab_size, TINY.context_length, TINY.n_layers, TINY.d_model, TINY.d_ff)
    assert model.num_params() == count_from_architecture(V, C, L, D, F)


def test_flops_per_token_equals_a_count_by_hand():
    config = GPTConfig(vocab_size=10, context_length=4, n_layers=2, n_heads=2, d_model=6, d_ff=8)
    # Multiply-adds per token in one forward pass, matrix products only, attention over a full
    # context of C = 4 keys (the convention of Kaplan et al. 2020, Table 1):
    q_k_v = 3 * 6 * 6  # W_q, W_k, W_v: D × D each                          108
    scores = 4 * 6  # q · k against 4 keys, all heads together: C × D           24
    mix = 4 * 6  # weights · v over 4 values: C × D                              24
    w_o = 6 * 6  # output projection: D × D                                     36
    mlp = 6 * 8 + 8 * 6  # D × d_ff in, d_ff × D out                             96
    per_layer = q_k_v + scores + mix + w_o + mlp  # 288
    head = 6 * 10  # logits: D × V (the tied embedding)                          60
    forward_multiply_adds = 2 * per_layer + head  # 2 layers: 636
    forward_flops = 2 * forward_multiply_adds  # one multiply-add = 2 FLOPs: 1272
    training_flops = 3 * forward_flops  # backward ≈ 2 × forward: 3816
    assert training_flops == 3816
    assert config.flops_per_token() == training_flops


def multiply_adds(jaxpr) -> int:
    """Multiply-adds of every matrix product (dot_general) in a jaxpr, nested ones included."""
    total = 0
    for eqn in jaxpr.eqns:
        if eqn.primitive.name == "dot_general":
            (contracted, _), _ = eqn.params["dimension_numbers"]
            lhs_shape = eqn.invars[0].aval.shape
            total += math.prod(eqn.outvars[0].aval.shape) * math.prod(
                lhs_shape[d] for d in contracted
            )
        for param in eqn.params.values():
            for sub in param if isinstance(param, tuple | list) else [param]:
                sub = getattr(sub, "jaxpr", sub)  # a closed jaxpr holds its jaxpr
                if hasattr(sub, "eqns"):
                    total += multiply_adds(sub)
    return total


def test_flops_per_token_counts_the_matrix_products_the_model_runs(model):
    """The forward pass over a full window, as traced by JAX, does flops_per_token() / 3."""
    tokens = random_tokens(10, batch=2, length=TINY.context_length)
    jaxpr = jax.make_jaxpr(lambda tokens: model(tokens))(tokens).jaxpr
    per_token = multiply_adds(jaxpr) / tokens.size
    assert 2 * per_token == TINY.flops_per_token() / 3


def test_gpt2_small_has_about_124_million_parameters():
    gpt2 = GPTConfig(
        vocab_size=50257, context_length=1024, n_layers=12, n_heads=12, d_model=768, d_ff=3072
    )
    assert gpt2.num_params() == 124_439_808  # the published count of GPT-2 small (tied head)


def test_output_head_is_tied_so_there_is_no_separate_output_matrix(model):
    shapes = {path: arr.shape for path, arr in params_by_path(model).items()}
    V, D = TINY.vocab_size, TINY.d_model
    vocab_sized = [path for path, shape in shapes.items() if V in shape]
    assert vocab_sized == [("token_embedding", "embedding")]
    assert shapes[("token_embedding", "embedding")] == (V, D)


# --- initialisation -----------------------------------------------------------------------

# Big enough that each group holds >= 8,192 numbers: the sample standard deviation is then
# within about 0.8% of the true one (one standard error, 1/sqrt(2n)), so the 5% tolerance below
# is > 6 standard errors, while a wrong scheme is off by far more (q/k/v at 0.05: +150%; W_o
# without the residual scaling: +145%; scaled by 1/sqrt(n_layers): +41%; by 1/n_layers: -18%).
# n_layers = 3 keeps these alternatives apart (with 2 layers, 1/sqrt(2·2) = 1/2).
INIT_CONFIG = GPTConfig(
    vocab_size=96, context_length=64, n_layers=3, n_heads=4, d_model=128, d_ff=512
)
GPT2_STD = 0.02  # Radford et al. 2018, §4.1
RESIDUAL_STD = 0.02 / math.sqrt(2 * 3)  # Radford et al. 2019, §2.3: 1/sqrt(N), N = 2 · n_layers


def init_group(path):
    """The group of GPT-2's initialisation that a parameter path belongs to."""
    name = "/".join(str(part) for part in path)
    if path[-1] == "embedding":
        return path[0]  # token_embedding or position_embedding
    if path[-1] == "bias":
        return "layer norm bias" if "ln_" in name else "bias"
    if path[-1] == "scale":
        return "layer norm scale"
    if name.endswith(("W_o/kernel", "fc_out/kernel")):
        return "residual projection"
    if name.endswith(("W_q/kernel", "W_k/kernel", "W_v/kernel", "fc_in/kernel")):
        return path[-2]  # W_q, W_k, W_v or fc_in: one group each
    raise AssertionError(f"parameter {name} is in no group of the initialisation scheme")


@pytest.mark.parametrize("seed", [0, 1])
def test_initialisation_follows_gpt2(seed):
    groups = {}
    for path, array in params_by_path(GPT(INIT_CONFIG, rngs=nnx.Rngs(seed))).items():
        groups.setdefault(init_group(path), []).append(np.asarray(array, np.float64).ravel())
    groups = {name: np.concatenate(arrays) for name, arrays in groups.items()}
    expected_std = {
        "token_embedding": GPT2_STD,
        "position_embedding": GPT2_STD,
        "W_q": GPT2_STD,
        "W_k": GPT2_STD,
        "W_v": GPT2_STD,
        "fc_in": GPT2_STD,
        "residual projection": RESIDUAL_STD,
    }
    constant = {"bias": 0.0, "layer norm bias": 0.0, "layer norm scale": 1.0}
    assert set(groups) == set(expected_std) | set(constant)
    for name, std in expected_std.items():
        x = groups[name]
        assert x.size >= 8192, name
        assert abs(x.mean()) < 5 * std / math.sqrt(x.size), name  # centred on 0
        np.testing.assert_allclose(np.sqrt(np.mean(x**2)), std, rtol=0.05, err_msg=name)
        # Normal, not uniform or truncated: 68.3% of the draws lie within one std of 0
        # (a uniform distribution of the same std puts 57.7% there).
        assert abs(np.mean(np.abs(x) < std) - 0.6827) < 0.025, name
    for name, value in constant.items():
        np.testing.assert_array_equal(groups[name], value, err_msg=name)


# --- forward pass -------------------------------------------------------------------------


def test_logits_shape_and_dtype(model):
    logits = forward(model, random_tokens(0))
    assert logits.shape == (B, T, TINY.vocab_size)
    assert logits.dtype == jnp.float32
    assert np.all(np.isfinite(np.asarray(logits)))


@pytest.mark.parametrize("t", [0, 3, 6])
def test_changing_a_future_token_leaves_earlier_logits_unchanged(model, t):
    tokens = random_tokens(1)
    changed = tokens.at[:, t + 1].set((tokens[:, t + 1] + 1 + jnp.arange(B)) % TINY.vocab_size)
    before = np.asarray(forward(model, tokens))
    after = np.asarray(forward(model, changed))
    np.testing.assert_allclose(after[:, : t + 1], before[:, : t + 1], atol=1e-6, rtol=0)
    # ...while the changed position itself does see the change (the test is not vacuous).
    assert np.abs(after[:, t + 1] - before[:, t + 1]).max() > 1e-2


def test_logits_use_the_token_embedding_as_the_output_head(model):
    tokens = random_tokens(2)

    @nnx.jit
    def final_hidden_state(model, tokens):
        """Embeddings, blocks and final LayerNorm, stopping short of the output head."""
        P = model.position_embedding.embedding[...]  # (C, D)
        x = model.token_embedding.embedding[...][tokens] + P[:T][None]
        for block in model.blocks:
            x, _ = block(x, causal_mask(T))
        return model.ln_f(x)

    E = np.asarray(model.token_embedding.embedding[...], np.float64)  # (V, D)
    hidden = np.asarray(final_hidden_state(model, tokens), np.float64)  # (B, T, D)
    np.testing.assert_allclose(
        np.asarray(forward(model, tokens)), hidden @ E.T, atol=1e-4, rtol=1e-5
    )


def test_return_attention_gives_causal_distributions(model):
    logits, weights = forward_with_attention(model, random_tokens(3))
    np.testing.assert_allclose(np.asarray(logits), np.asarray(forward(model, random_tokens(3))))
    assert isinstance(weights, list) and len(weights) == TINY.n_layers
    upper = np.triu(np.ones((T, T), bool), k=1)
    for w in weights:
        w = np.asarray(w)
        assert w.shape == (B, TINY.n_heads, T, T)
        assert np.all(w >= 0)
        np.testing.assert_allclose(w.sum(-1), 1.0, atol=1e-5)
        assert np.all(w[..., upper] == 0)


@pytest.mark.parametrize("length", [TINY.context_length + 1, 0])
def test_input_outside_the_context_window_raises(model, length):
    with pytest.raises(ValueError, match="context window"):
        model(jnp.zeros((1, length), jnp.int32))


def test_tokens_must_be_two_dimensional(model):
    with pytest.raises(ValueError, match="2-D"):
        model(jnp.zeros((T,), jnp.int32))


def test_full_context_window_is_accepted(model):
    tokens = random_tokens(4, length=TINY.context_length)
    assert forward(model, tokens).shape == (B, TINY.context_length, TINY.vocab_size)


def gelu_exact(x):
    """x · Φ(x), with Φ the standard normal CDF written with math.erf (Hendrycks & Gimpel 2016)."""
    erf = np.vectorize(math.erf)
    return 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))


def gelu_tanh(x):
    """GPT-2's tanh approximation of the GELU (Hendrycks & Gimpel 2016, §2)."""
    return 0.5 * x * (1.0 + np.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


@pytest.mark.parametrize("gelu", ["exact", "tanh"])
def test_mlp_applies_the_gelu_the_config_names(gelu):
    model = randomize(GPT(dataclasses.replace(TINY, gelu=gelu), rngs=nnx.Rngs(0)), seed=3)
    mlp = model.blocks[0].mlp
    x = np.random.default_rng(4).normal(size=(2, 5, TINY.d_model))
    W_in, b_in, W_out, b_out = (
        np.asarray(p[...], np.float64)
        for p in (mlp.fc_in.kernel, mlp.fc_in.bias, mlp.fc_out.kernel, mlp.fc_out.bias)
    )
    hidden = x @ W_in + b_in  # reaches |hidden| > 3, where the two forms differ most
    by_formula = {name: f(hidden) @ W_out + b_out for name, f in
                  [("exact", gelu_exact), ("tanh", gelu_tanh)]}  # fmt: skip
    out = np.asarray(mlp(jnp.asarray(x, jnp.float32)), np.float64)
    np.testing.assert_allclose(out, by_formula[gelu], atol=2e-5, rtol=0)
    other = "tanh" if gelu == "exact" else "exact"
    assert np.abs(out - by_formula[other]).max() > 2e-4  # the test tells the two apart


def test_dropout_changes_outputs_only_in_training():
    config = dataclasses.replace(TINY, n_layers=1, dropout=0.3)
    model = randomize(GPT(config, rngs=nnx.Rngs(0)), seed=2)
    tokens = random_tokens(5)

    @nnx.jit
    def train_mode(model, tokens):
        return model(tokens, deterministic=False)

    eval_1, eval_2 = forward(model, tokens), forward(model, tokens)
    np.testing.assert_array_equal(np.asarray(eval_1), np.asarray(eval_2))
    train_1, train_2 = train_mode(model, tokens), train_mode(model, tokens)
    assert np.abs(np.asarray(train_1) - np.asarray(eval_1)).max() > 1e-3
    assert np.abs(np.asarray(train_1) - np.asarray(train_2)).max() > 1e-3  # fresh masks
    np.testing.assert_array_equal(np.asarray(forward(model, tokens)), np.asarray(eval_1))


def test_decode_step_reproduces_the_full_forward(model):
    T = TINY.context_length  # fill the whole cache
    tokens = random_tokens(6, length=T)
    full = np.asarray(forward(model, tokens))

    @nnx.jit
    def step(model, token, cache, position):
        return model.decode_step(token, cache, position)

    cache = model.init_cache(B)
    c = TINY
    assert cache["k"].shape == (c.n_layers, B, c.context_length, c.n_heads, c.d_head)
    for t in range(T):
        logits, cache = step(model, tokens[:, t], cache, jnp.int32(t))
        assert logits.shape == (B, TINY.vocab_size)
        np.testing.assert_allclose(np.asarray(logits), full[:, t], atol=1e-5, rtol=0)


def test_same_seed_gives_identical_parameters():
    a = params_by_path(GPT(TINY, rngs=nnx.Rngs(7)))
    b = params_by_path(GPT(TINY, rngs=nnx.Rngs(7)))
    c = params_by_path(GPT(TINY, rngs=nnx.Rngs(8)))
    assert a.keys() == b.keys() == c.keys()
    for path in a:
        np.testing.assert_array_equal(np.asarray(a[path]), np.asarray(b[path]), err_msg=str(path))
    kernel = ("blocks", 0, "attention", "W_q", "kernel")
    assert not np.array_equal(np.asarray(a[kernel]), np.asarray(c[kernel]))


# --- training -----------------------------------------------------------------------------


def test_a_few_train_steps_on_one_batch_reduce_the_loss():
    config = GPTConfig(vocab_size=13, context_length=8, n_layers=1, n_heads=2, d_model=16, d_ff=32)
    model = GPT(config, rngs=nnx.Rngs(0))
    optimizer = make_optimizer(
        model, TrainConfig(steps=20, batch_size=4, learning_rate=1e-2, warmup_steps=1)
    )
    x = random_tokens(9, batch=4, length=8, vocab=13)
    y = jnp.roll(x, -1, axis=1)
    losses = [float(train_step(model, optimizer, x, y)) for _ in range(20)]
    assert all(np.isfinite(losses))
    assert abs(losses[0] - np.log(13)) < 0.1  # a fresh model is nearly uniform over 13 tokens
    assert losses[-1] < 0.7 * losses[0], losses


# --- notebook 06: a block by hand, and parameter counts at scale ------------------------------

from attnlab.gpt import BLOCK_WEIGHT_NAMES, Block, block_weights  # noqa: E402


def block_by_hand(x, w, n_heads, eps=1e-5):
    """A pre-LN block in NumPy float64 with a loop over heads: independent of attnlab's code."""
    x = np.asarray(x, np.float64)
    w = {name: np.asarray(value, np.float64) for name, value in w.items()}
    T, D = x.shape[-2:]
    d_head = D // n_heads

    def layer_norm(u, name):
        centred = u - u.mean(-1, keepdims=True)
        return centred / np.sqrt((centred**2).mean(-1, keepdims=True) + eps) * w[
            f"{name}_scale"] + w[f"{name}_bias"]

    h = layer_norm(x, "ln_1")
    q, k, v = (h @ w[f"W_{n}"] + w[f"b_{n}"] for n in "qkv")
    heads = []
    for i in range(n_heads):
        part = slice(i * d_head, (i + 1) * d_head)
        scores = q[..., part] @ np.swapaxes(k[..., part], -1, -2) / np.sqrt(d_head)
        scores = np.where(np.tri(T, dtype=bool), scores, -np.inf)
        weights = np.exp(scores - scores.max(-1, keepdims=True))
        heads.append(weights / weights.sum(-1, keepdims=True) @ v[..., part])
    x = x + np.concatenate(heads, -1) @ w["W_o"] + w["b_o"]
    a = layer_norm(x, "ln_2") @ w["W_in"] + w["b_in"]
    gelu = 0.5 * a * (1 + np.tanh(np.sqrt(2 / np.pi) * (a + 0.044715 * a**3)))
    return x + gelu @ w["W_out"] + w["b_out"]


def test_block_weights_names_and_shapes(model):
    w = block_weights(model.blocks[1])
    D, F = TINY.d_model, TINY.d_ff
    assert list(w) == list(BLOCK_WEIGHT_NAMES)
    assert len(w) == 16
    expected = {"W_in": (D, F), "b_in": (F,), "W_out": (F, D)}
    for name, value in w.items():
        default = (D, D) if name.startswith("W_") else (D,)
        assert value.shape == expected.get(name, default), name
    # they are the block's own arrays (path from BLOCK_WEIGHT_NAMES), e.g. W_q's kernel
    kernel = params_by_path(model)[("blocks", 1, "attention", "W_q", "kernel")]
    np.testing.assert_array_equal(np.asarray(w["W_q"]), np.asarray(kernel))
    # every parameter of the block appears exactly once
    assert sum(v.size for v in w.values()) == sum(
        p.size for path, p in params_by_path(model).items() if path[:2] == ("blocks", 1)
    )


@pytest.mark.parametrize("layer", [0, 1])
def test_a_block_written_out_by_hand_equals_the_block(model, layer):
    x = np.random.default_rng(layer).normal(size=(B, T, TINY.d_model)).astype(np.float32)
    block = model.blocks[layer]
    ours = block_by_hand(x, block_weights(block), TINY.n_heads)
    theirs, _ = block(jnp.asarray(x), causal_mask(T))
    np.testing.assert_allclose(np.asarray(theirs), ours, atol=2e-4, rtol=1e-4)


def test_the_whole_model_by_hand_equals_model(model):
    tokens = random_tokens(21)
    E = np.asarray(model.token_embedding.embedding[...], np.float64)
    P = np.asarray(model.position_embedding.embedding[...], np.float64)
    x = E[np.asarray(tokens)] + P[:T]
    for block in model.blocks:
        x = block_by_hand(x, block_weights(block), TINY.n_heads)
    mean, var = x.mean(-1, keepdims=True), x.var(-1, keepdims=True)
    final = (x - mean) / np.sqrt(var + 1e-5) * np.asarray(model.ln_f.scale[...]) + np.asarray(
        model.ln_f.bias[...])
    logits = np.asarray(forward(model, tokens))
    np.testing.assert_allclose(logits, final @ E.T, atol=5e-4, rtol=1e-4)


def test_block_weights_rejects_other_modules(model):
    with pytest.raises(TypeError, match="must be an attnlab.gpt.Block"):
        block_weights(model)
    assert isinstance(model.blocks[0], Block)


GPT2_SMALL = GPTConfig(
    vocab_size=50257, context_length=1024, n_layers=12, n_heads=12, d_model=768, d_ff=3072
)
GPT3 = GPTConfig(
    vocab_size=50257, context_length=2048, n_layers=96, n_heads=96, d_model=12288, d_ff=49152
)


def test_gpt2_small_arrays_hold_124_439_808_parameters():
    # Counted from the model's actual (abstract: shapes only, no memory) arrays.
    abstract = nnx.eval_shape(lambda: GPT(GPT2_SMALL, rngs=nnx.Rngs(0)))
    assert abstract.num_params() == 124_439_808


@pytest.mark.parametrize(
    "config", [*CONFIGS, GPT2_SMALL, GPT3], ids=lambda c: f"L{c.n_layers}D{c.d_model}"
)
def test_notebook_06_formula_with_d_ff_four_times_d_model(config):
    # The notebook's short form: with F = 4D a block holds 12·D² + 13·D parameters.
    config = dataclasses.replace(config, d_ff=4 * config.d_model)
    V, C, L, D = config.vocab_size, config.context_length, config.n_layers, config.d_model
    assert (V + C) * D + L * (12 * D * D + 13 * D) + 2 * D == config.num_params()
    assert config.num_params() == count_from_architecture(V, C, L, D, 4 * D)


def test_gpt3_configuration_has_about_175_billion_parameters():
    by_hand = count_from_architecture(50257, 2048, 96, 12288, 49152)
    assert GPT3.num_params() == by_hand == 174_604_259_328
    assert round(by_hand / 1e9) == 175  # "GPT-3 175B" (Brown et al. 2020, Table 2.1)


# --- position="sinusoidal" (notebook 05) ------------------------------------------------------

import math  # noqa: E402

from attnlab import checkpoint  # noqa: E402
from attnlab.gpt import extend_context  # noqa: E402
from attnlab.sampling import generate  # noqa: E402

SINE = dataclasses.replace(TINY, position="sinusoidal")


def sine_table(P, D):
    """The paper's table, float64 loops, independent of attnlab.positional."""
    pe = np.zeros((P, D))
    for p in range(P):
        for i in range(D // 2):
            pe[p, 2 * i] = math.sin(p / 10000 ** (2 * i / D))
            pe[p, 2 * i + 1] = math.cos(p / 10000 ** (2 * i / D))
    return pe


@pytest.fixture(scope="module")
def sine_model():
    return randomize(GPT(SINE, rngs=nnx.Rngs(0)), seed=3)


def test_position_must_be_learned_or_sinusoidal():
    with pytest.raises(ValueError, match="position must be 'learned' or 'sinusoidal'; got 'rope'"):
        dataclasses.replace(TINY, position="rope")


def test_default_position_is_learned_and_keeps_its_table():
    assert GPTConfig().position == "learned"
    model = GPT(TINY, rngs=nnx.Rngs(0))
    assert ("position_embedding", "embedding") in params_by_path(model)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"L{c.n_layers}D{c.d_model}")
def test_sinusoidal_positions_add_no_parameters(config):
    sine = dataclasses.replace(config, position="sinusoidal")
    model = nnx.eval_shape(lambda: GPT(sine, rngs=nnx.Rngs(0)))
    by_hand = count_from_architecture(
        config.vocab_size, config.context_length, config.n_layers, config.d_model, config.d_ff
    ) - config.context_length * config.d_model  # no position table
    assert model.num_params() == sine.num_params() == by_hand
    assert not any(
        "position" in str(path)
        for path, var in nnx.iter_graph(model) if isinstance(var, nnx.Param)
    )
    # Adding positions is no matrix product: the FLOP estimate does not depend on the choice.
    assert sine.flops_per_token() == config.flops_per_token()


def test_sinusoidal_input_is_scaled_tokens_plus_the_fixed_table(sine_model):
    tokens = random_tokens(11)
    E = np.asarray(sine_model.token_embedding.embedding[...], np.float64)
    expected = math.sqrt(SINE.d_model) * E[np.asarray(tokens)] + sine_table(T, SINE.d_model)
    got = np.asarray(sine_model.embed(tokens, jnp.arange(T)[None]))
    np.testing.assert_allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("t", [0, 3, T - 2])
def test_sinusoidal_model_is_causal_and_uses_positions(sine_model, t):
    tokens = random_tokens(12)
    logits = np.asarray(forward(sine_model, tokens))
    changed = tokens.at[:, t + 1].set((tokens[:, t + 1] + 1) % SINE.vocab_size)
    np.testing.assert_allclose(np.asarray(forward(sine_model, changed))[:, : t + 1],
                               logits[:, : t + 1], atol=1e-5)
    # Positions matter: the same token repeated gets different logits at different positions.
    same = jnp.full((1, T), 5, jnp.int32)
    repeated = np.asarray(forward(sine_model, same))[0]
    assert np.abs(repeated[1:] - repeated[0]).max(axis=-1).min() > 1e-3


def test_sinusoidal_decode_step_reproduces_the_full_forward(sine_model):
    tokens = random_tokens(13, length=SINE.context_length)
    full = np.asarray(forward(sine_model, tokens))

    @nnx.jit
    def step(model, token, cache, position):
        return model.decode_step(token, cache, position)

    cache = sine_model.init_cache(B)
    for t in range(SINE.context_length):
        logits, cache = step(sine_model, tokens[:, t], cache, jnp.int32(t))
        np.testing.assert_allclose(np.asarray(logits), full[:, t], atol=1e-5)


def test_sinusoidal_generation_equals_a_slow_greedy_loop_past_the_window(sine_model):
    C = SINE.context_length
    prompt = [3, 1, 4]
    out = np.asarray(generate(sine_model, prompt, 2 * C, temperature=0, key=jax.random.key(0)))
    tokens = list(prompt)
    while len(tokens) < len(out):
        window = tokens[-C:]  # slides once the window is full
        padded = np.zeros((1, C), np.int32)  # one compiled shape; causal: padding is unseen
        padded[0, : len(window)] = window
        logits = np.asarray(forward(sine_model, jnp.asarray(padded)))[0, len(window) - 1]
        tokens.append(int(np.argmax(logits)))
    assert len(set(tokens[3:])) >= 3, "test model too dull to prove anything"
    np.testing.assert_array_equal(out, tokens)


def test_sinusoidal_checkpoint_round_trip(tmp_path, sine_model):
    path = checkpoint.save(tmp_path / "sine.safetensors", sine_model)
    restored = checkpoint.load(path)
    assert restored.config == SINE and restored.config.position == "sinusoidal"
    tokens = random_tokens(14)
    np.testing.assert_array_equal(np.asarray(forward(restored.model, tokens)),
                                  np.asarray(forward(sine_model, tokens)))
    import safetensors.numpy

    stored = safetensors.numpy.load_file(str(path))
    assert not any("position" in name for name in stored), sorted(stored)
    checkpoint.load_into(GPT(SINE, rngs=nnx.Rngs(0)), path)  # the same config loads
    with pytest.raises(ValueError, match="position: file 'sinusoidal' vs model 'learned'"):
        checkpoint.load_into(GPT(TINY, rngs=nnx.Rngs(0)), path)


def test_a_checkpoint_without_a_position_field_loads_as_learned(tmp_path):
    """Files written before the field existed (such as the shipped model) stay learned."""
    import json

    import safetensors
    import safetensors.numpy

    path = checkpoint.save(tmp_path / "old.safetensors", GPT(TINY, rngs=nnx.Rngs(0)))
    with safetensors.safe_open(str(path), framework="np") as f:
        header, tensors = f.metadata(), {name: f.get_tensor(name) for name in f.keys()}
    config = json.loads(header["config"])
    del config["position"]
    header["config"] = json.dumps(config)
    path.write_bytes(safetensors.numpy.save(tensors, metadata=header))
    assert checkpoint.load(path).config.position == "learned"


def test_extend_context_keeps_the_logits_and_accepts_longer_input(sine_model):
    longer = extend_context(sine_model, 3 * SINE.context_length)
    assert longer.config == dataclasses.replace(SINE, context_length=3 * SINE.context_length)
    tokens = random_tokens(15, length=3 * SINE.context_length)
    long_logits = np.asarray(forward(longer, tokens))
    short_logits = np.asarray(forward(sine_model, tokens[:, : SINE.context_length]))
    np.testing.assert_allclose(long_logits[:, : SINE.context_length], short_logits, atol=1e-5)
    assert np.all(np.isfinite(long_logits))


def test_extend_context_refuses_learned_positions_and_shrinking(model, sine_model):
    with pytest.raises(ValueError, match="only a GPT with position='sinusoidal'"):
        extend_context(model, 2 * TINY.context_length)
    with pytest.raises(ValueError, match="context_length must be >= the current 10; got 4"):
        extend_context(sine_model, 4)
