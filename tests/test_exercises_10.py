"""Notebook 10's exercise, ``split_c_attn``: typical wrong solutions and the hint each gets.

The solutions are written the way a learner might, in NumPy with a loop over heads,
independently of the exercise's reference (``attnlab.hub.split_c_attn``) and of its mistakes.
"""

import jax
import numpy as np

from attnlab.exercises import EXERCISES


def learner_split(c_attn_weight, c_attn_bias, n_heads, *, order="qkv", transpose=False,
                  layout="thirds", head_axis="outer", bias="own"):
    w, b = np.asarray(c_attn_weight), np.asarray(c_attn_bias)
    D = w.shape[0]
    d_head = D // n_heads
    kernels, biases = {}, {}
    for j, name in enumerate(order):
        if layout == "thirds":
            kernels[name] = w[:, j * D:(j + 1) * D]
        elif layout == "rows":
            kernels[name] = w.reshape(3, D, D)[j]
        biases[name] = b[j * D:(j + 1) * D] if bias == "own" else b[:D]
    if layout == "interleaved":  # [q0 k0 v0 | q1 k1 v1 | ...]
        out_w, out_b = [], []
        for j in range(3):
            out_w.append(np.stack([w[:, (3 * h + j) * d_head:(3 * h + j + 1) * d_head]
                                   for h in range(n_heads)], axis=1))
            out_b.append(np.stack([b[(3 * h + j) * d_head:(3 * h + j + 1) * d_head]
                                   for h in range(n_heads)]))
        return (*out_w, *out_b)
    heads_w, heads_b = [], []
    for name in "qkv":
        W = kernels[name].T if transpose else kernels[name]
        if head_axis == "outer":
            heads_w.append(np.stack([W[:, h * d_head:(h + 1) * d_head] for h in range(n_heads)], 1))
            heads_b.append(np.stack([biases[name][h * d_head:(h + 1) * d_head]
                                     for h in range(n_heads)]))
        else:  # columns h, h + H, h + 2H, ... for head h
            heads_w.append(np.stack([W[:, h::n_heads] for h in range(n_heads)], 1))
            heads_b.append(np.stack([biases[name][h::n_heads] for h in range(n_heads)]))
    return (*heads_w, *heads_b)


def with_jnp_split(c_attn_weight, c_attn_bias, n_heads):
    """Correct, written with jnp.split and reshape."""
    import jax.numpy as jnp

    D = c_attn_weight.shape[0]
    Ws = jnp.split(c_attn_weight, 3, axis=1)
    bs = jnp.split(c_attn_bias, 3)
    return (*(W.reshape(D, n_heads, -1) for W in Ws), *(v.reshape(n_heads, -1) for v in bs))


def transposed_like_nn_linear(c_attn_weight, c_attn_bias, n_heads):
    return learner_split(c_attn_weight, c_attn_bias, n_heads, transpose=True)


def k_before_q(c_attn_weight, c_attn_bias, n_heads):
    return learner_split(c_attn_weight, c_attn_bias, n_heads, order="kqv")


def interleaved_per_head(c_attn_weight, c_attn_bias, n_heads):
    return learner_split(c_attn_weight, c_attn_bias, n_heads, layout="interleaved")


def strided_heads(c_attn_weight, c_attn_bias, n_heads):
    return learner_split(c_attn_weight, c_attn_bias, n_heads, head_axis="strided")


def reshaped_rows(c_attn_weight, c_attn_bias, n_heads):
    return learner_split(c_attn_weight, c_attn_bias, n_heads, layout="rows")


def query_bias_everywhere(c_attn_weight, c_attn_bias, n_heads):
    return learner_split(c_attn_weight, c_attn_bias, n_heads, bias="q")


def values_keys_queries(c_attn_weight, c_attn_bias, n_heads):  # thirds read back to front
    return learner_split(c_attn_weight, c_attn_bias, n_heads, order="vkq")


def not_split_into_heads(c_attn_weight, c_attn_bias, n_heads):  # (D, D) kernels, as in the cell above
    w, b = np.asarray(c_attn_weight), np.asarray(c_attn_bias)
    D = w.shape[0]
    return (w[:, :D], w[:, D:2 * D], w[:, 2 * D:], b[:D], b[D:2 * D], b[2 * D:])


def heads_stacked_first(c_attn_weight, c_attn_bias, n_heads):  # np.stack(..., axis=0): (H, D, Dh)
    W_q, W_k, W_v, b_q, b_k, b_v = learner_split(c_attn_weight, c_attn_bias, n_heads)
    return (*(np.moveaxis(W, 1, 0) for W in (W_q, W_k, W_v)), b_q, b_k, b_v)


def reshaped_d_head_before_heads(c_attn_weight, c_attn_bias, n_heads):  # (D, Dh, H)
    w, b = np.asarray(c_attn_weight), np.asarray(c_attn_bias)
    D = w.shape[0]
    d_head = D // n_heads
    return (*(w[:, j * D:(j + 1) * D].reshape(D, d_head, n_heads) for j in range(3)),
            *(b[j * D:(j + 1) * D].reshape(d_head, n_heads) for j in range(3)))


def not_started(c_attn_weight, c_attn_bias, n_heads):
    raise NotImplementedError


RIGHT_SOLUTIONS_10 = [learner_split, with_jnp_split]

WRONG_SOLUTIONS_10 = [
    (transposed_like_nn_linear, "Likely cause: the kernels are transposed"),
    (k_before_q, "Likely cause: q and k are swapped"),
    (interleaved_per_head, "Likely cause: the columns were read as interleaved per head"),
    (strided_heads, "Likely cause: the heads came out in the wrong order"),
    (reshaped_rows, "Likely cause: the rows were split"),
    (query_bias_everywhere, "Likely cause: every projection got the query bias"),
    (values_keys_queries,
     "Likely cause: W_q, W_k, W_v were taken from c_attn's values, keys, queries"),
    (not_split_into_heads, "Likely cause: the kernels are (D, D) and the biases (D,)"),
    (heads_stacked_first, "Likely cause: the head axis came first, (n_heads, D, d_head)"),
    (reshaped_d_head_before_heads, "Likely cause: reshaped to (D, d_head, n_heads)"),
    (not_started, "not implemented yet"),
]


def test_the_exercise_is_registered_for_notebook_10():
    exercise = EXERCISES["split_c_attn"]
    assert exercise.notebook == "10" and len(exercise.mistakes) >= 5


def test_trials_have_heads_that_tell_the_layouts_apart():
    for seed in range(6):
        weight, bias, n_heads = EXERCISES["split_c_attn"].inputs(jax.random.key(seed))
        D = weight.shape[0]
        assert weight.shape == (D, 3 * D) and bias.shape == (3 * D,)
        assert 1 < n_heads != D // n_heads

