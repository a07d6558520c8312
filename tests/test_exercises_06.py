"""Notebook 06's exercise, ``pre_ln_block``: typical wrong solutions and the hint each gets.

The solutions below are written the way a learner might, in NumPy with a loop over heads,
independently of the exercise's own reference (the package's ``Block``) and of its list of
mistakes. ``RIGHT_SOLUTIONS`` and ``WRONG_SOLUTIONS`` have the shape of those in
``tests/test_exercises.py``, so they can move there.
"""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from attnlab.exercises import EXERCISES, check_exercise


def learner_block(x, w, n_heads, *, pre_ln=True, residual_attention=True, residual_mlp=True,
                  mask="causal", scale="d_head", activation="tanh", ln_for_mlp="ln_2",
                  use_w_o=True, normalise_over="keys", use_b_o=True, interleaved_heads=False,
                  merge="concatenate", ln_affine=True, ln_axis=-1):
    x = np.asarray(x, np.float64)
    w = {k: np.asarray(v, np.float64) for k, v in w.items()}
    T, D = x.shape[-2:]
    d_head = D // n_heads

    def ln(u, name):
        mu = u.mean(ln_axis, keepdims=True)
        sigma = np.sqrt(u.var(ln_axis, keepdims=True) + 1e-5)
        if not ln_affine:
            return (u - mu) / sigma
        return (u - mu) / sigma * w[name + "_scale"] + w[name + "_bias"]

    def attention(h):
        q, k, v = (h @ w["W_" + n] + w["b_" + n] for n in "qkv")
        allowed = {"causal": np.tri(T, dtype=bool), "none": np.ones((T, T), bool),
                   "upper": np.tri(T, dtype=bool).T}[mask]
        divisor = {"d_head": np.sqrt(d_head), "d_model": np.sqrt(D), "none": 1.0,
                   "d_head_plain": d_head}[scale]
        heads = []
        for i in range(n_heads):
            # (B, T, d_head, H) reshaped: head i would get every H-th column
            cols = slice(i, None, n_heads) if interleaved_heads else slice(i * d_head,
                                                                           (i + 1) * d_head)
            s = q[..., cols] @ np.swapaxes(k[..., cols], -1, -2) / divisor
            s = np.where(allowed, s, -np.inf)
            axis = -1 if normalise_over == "keys" else -2
            e = np.exp(s - s.max(axis, keepdims=True))
            heads.append((e / e.sum(axis, keepdims=True)) @ v[..., cols])
        if merge == "concatenate":
            z = np.concatenate(heads, axis=-1)
        else:  # stacked as (B, H, T, d_head), reshaped without moving H back next to d_head
            z = np.stack(heads, axis=-3).reshape(*h.shape)
        if not use_w_o:
            return z
        return z @ w["W_o"] + (w["b_o"] if use_b_o else 0.0)

    def mlp(h):
        a = h @ w["W_in"] + w["b_in"]
        if activation == "tanh":
            a = 0.5 * a * (1 + np.tanh(np.sqrt(2 / np.pi) * (a + 0.044715 * a**3)))
        elif activation == "erf":
            a = np.asarray(jax.nn.gelu(a, approximate=False))
        elif activation == "relu":
            a = np.maximum(a, 0)
        return a @ w["W_out"] + w["b_out"]

    if not pre_ln:
        x = ln(x + attention(x), "ln_1")
        return ln(x + mlp(x), ln_for_mlp)
    a = attention(ln(x, "ln_1"))
    x = x + a if residual_attention else a
    m = mlp(ln(x, ln_for_mlp))
    return x + m if residual_mlp else m


# --- typical wrong solutions, each a named function (the names show in test ids) -------------


def post_ln(x, w, n_heads):
    return learner_block(x, w, n_heads, pre_ln=False)


def no_residuals(x, w, n_heads):
    return learner_block(x, w, n_heads, residual_attention=False, residual_mlp=False)


def no_attention_residual(x, w, n_heads):
    return learner_block(x, w, n_heads, residual_attention=False)


def no_mlp_residual(x, w, n_heads):
    return learner_block(x, w, n_heads, residual_mlp=False)


def no_causal_mask(x, w, n_heads):
    return learner_block(x, w, n_heads, mask="none")


def mask_flipped(x, w, n_heads):
    return learner_block(x, w, n_heads, mask="upper")


def scores_not_scaled(x, w, n_heads):
    return learner_block(x, w, n_heads, scale="none")


def scaled_by_sqrt_d_model(x, w, n_heads):
    return learner_block(x, w, n_heads, scale="d_model")


def softmax_over_queries(x, w, n_heads):
    return learner_block(x, w, n_heads, normalise_over="queries")


def forgot_w_o(x, w, n_heads):
    return learner_block(x, w, n_heads, use_w_o=False)


def ln_1_used_twice(x, w, n_heads):
    return learner_block(x, w, n_heads, ln_for_mlp="ln_1")


def exact_gelu(x, w, n_heads):
    return learner_block(x, w, n_heads, activation="erf")


def relu_instead_of_gelu(x, w, n_heads):
    return learner_block(x, w, n_heads, activation="relu")


def divided_by_d_head(x, w, n_heads):
    return learner_block(x, w, n_heads, scale="d_head_plain")


def forgot_b_o(x, w, n_heads):
    return learner_block(x, w, n_heads, use_b_o=False)


def heads_split_as_btdh(x, w, n_heads):
    return learner_block(x, w, n_heads, interleaved_heads=True)


def heads_split_and_merged_as_btdh(x, w, n_heads):
    x = jnp.asarray(x)
    B, T, D = x.shape
    d_head = D // n_heads
    w = {k: jnp.asarray(v) for k, v in w.items()}

    def ln(u, name):
        return ((u - u.mean(-1, keepdims=True)) / jnp.sqrt(u.var(-1, keepdims=True) + 1e-5)
                * w[name + "_scale"] + w[name + "_bias"])

    h = ln(x, "ln_1")
    q, k, v = ((h @ w["W_" + n] + w["b_" + n]).reshape(B, T, d_head, n_heads) for n in "qkv")
    s = jnp.einsum("btdh,bsdh->bhts", q, k) / np.sqrt(d_head)
    s = jnp.where(jnp.tril(jnp.ones((T, T), bool)), s, -jnp.inf)
    z = jnp.einsum("bhts,bsdh->btdh", jax.nn.softmax(s, axis=-1), v).reshape(B, T, D)
    x = x + z @ w["W_o"] + w["b_o"]
    return x + jax.nn.gelu(ln(x, "ln_2") @ w["W_in"] + w["b_in"]) @ w["W_out"] + w["b_out"]


def merged_without_transpose(x, w, n_heads):
    return learner_block(x, w, n_heads, merge="reshape")


def no_activation(x, w, n_heads):
    return learner_block(x, w, n_heads, activation="none")


def layer_norm_without_scale_and_bias(x, w, n_heads):
    return learner_block(x, w, n_heads, ln_affine=False)


def layer_norm_over_positions(x, w, n_heads):
    return learner_block(x, w, n_heads, ln_axis=1)


def layer_norm_over_the_batch(x, w, n_heads):
    return learner_block(x, w, n_heads, ln_axis=0)


def not_started(x, w, n_heads):
    raise NotImplementedError


# --- correct solutions written other ways -------------------------------------------------------


@functools.partial(jax.jit, static_argnums=2)
def with_jax_attention(x, w, n_heads):
    """jnp, with jax.nn.dot_product_attention doing the masked softmax."""
    B, T, D = x.shape

    def ln(u, name):
        return (u - u.mean(-1, keepdims=True)) / jnp.sqrt(u.var(-1, keepdims=True) + 1e-5) * w[
            name + "_scale"] + w[name + "_bias"]

    h = ln(x, "ln_1")
    q, k, v = ((h @ w["W_" + n] + w["b_" + n]).reshape(B, T, n_heads, D // n_heads) for n in "qkv")
    z = jax.nn.dot_product_attention(q, k, v, is_causal=True).reshape(B, T, D)
    x = x + z @ w["W_o"] + w["b_o"]
    return x + jax.nn.gelu(ln(x, "ln_2") @ w["W_in"] + w["b_in"]) @ w["W_out"] + w["b_out"]


RIGHT_SOLUTIONS = {"pre_ln_block": [learner_block, with_jax_attention]}

# name -> [(wrong function, text its hint must contain)], in tests/test_exercises.py's shape
WRONG_SOLUTIONS = {
    "pre_ln_block": [
        (post_ln, "Likely cause: LayerNorm after the residual addition (post-LN"),
        (no_residuals, "Likely cause: no residual connections"),
        (no_attention_residual, "Likely cause: no residual connection around attention"),
        (no_mlp_residual, "Likely cause: no residual connection around the feed-forward"),
        (no_causal_mask, "Likely cause: no causal mask"),
        (mask_flipped, "Likely cause: the mask is flipped"),
        (scores_not_scaled, "Likely cause: the scores are not scaled"),
        (scaled_by_sqrt_d_model, "Likely cause: the scores are divided by sqrt(d_model)"),
        (softmax_over_queries, "Likely cause: the softmax runs over the wrong axis"),
        (forgot_w_o, "Likely cause: the output projection W_o"),
        (ln_1_used_twice, "Likely cause: the second LayerNorm uses ln_1's scale and bias"),
        (exact_gelu, "Likely cause: exact (erf) GELU"),
        (relu_instead_of_gelu, "Likely cause: ReLU in the feed-forward network"),
        (divided_by_d_head, "Likely cause: the scores are divided by d_head;"),
        (forgot_b_o, "Likely cause: the output projection's bias b_o is missing"),
        (heads_split_as_btdh, "Likely cause: the heads were split as (B, T, d_head, H)"),
        (heads_split_and_merged_as_btdh,
         "Likely cause: the heads were split as (B, T, d_head, H)"),
        (merged_without_transpose, "Likely cause: the heads were merged without the transpose"),
        (no_activation, "Likely cause: no activation in the feed-forward network"),
        (layer_norm_without_scale_and_bias, "Likely cause: LayerNorm without its learned scale"),
        (layer_norm_over_positions, "Likely cause: LayerNorm normalises over the wrong axis"),
        (layer_norm_over_the_batch, "Likely cause: LayerNorm normalises over the wrong axis"),
        (not_started, "not implemented yet"),
    ],
}


def test_the_exercise_is_registered_for_notebook_06():
    exercise = EXERCISES["pre_ln_block"]
    assert exercise.notebook == "06"
    assert len(exercise.mistakes) >= 10



def test_trials_use_several_heads_and_positions():
    # Otherwise sqrt(d_head) vs sqrt(d_model), and masks, could not be told apart.
    for seed in range(6):
        x, w, n_heads = EXERCISES["pre_ln_block"].inputs(jax.random.key(seed))
        assert n_heads > 1 and x.shape[1] >= 2
        assert w["W_q"].shape == (x.shape[2], x.shape[2])


@pytest.mark.parametrize(
    "wrong,hint", WRONG_SOLUTIONS["pre_ln_block"],
    ids=[f.__name__ for f, _ in WRONG_SOLUTIONS["pre_ln_block"]],
)
def test_typical_wrong_solutions_get_their_hint(wrong, hint):
    result = check_exercise("pre_ln_block", wrong)
    assert not result.passed
    assert hint in result.message, result.message
    if hint.startswith("Likely cause"):
        assert result.message.startswith(hint)  # the named cause comes first ...
        assert "Trial" in result.message  # ... then the checker's own details
        assert result.inputs is not None


def test_an_unrecognised_mistake_gets_the_plain_difference():
    result = check_exercise("pre_ln_block", lambda x, w, n_heads: 2 * learner_block(x, w, n_heads))
    assert not result.passed
    assert "Likely cause" not in result.message
    assert "differs from the reference" in result.message
    assert "size of axis" not in result.message  # no factor hint for a whole block


def test_a_crashing_solution_is_reported_without_a_hint():
    def crashing(x, w, n_heads):
        return x @ w["W_in"] @ w["W_q"]  # (D, d_ff) then (D, D): shapes do not fit

    result = check_exercise("pre_ln_block", crashing)
    assert not result.passed and "raised" in result.message
    assert "Likely cause" not in result.message
