"""Notebook 10's exercise (``split_c_attn``): splitting GPT-2's fused ``c_attn`` into heads.

The learner cuts ``c_attn_weight (D, 3D)`` and ``c_attn_bias (3D,)`` into the query, key and
value thirds and splits each into heads: kernels ``(D, H, d_head)``, biases ``(H, d_head)``.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

from attnlab.exercises._core import Exercise, Mistake

#: (n_heads, d_head) of the c_attn exercise's trials: H != d_head and D = H·d_head not a
#: multiple of 3, so that a per-head interleaving, a (d_head, H) head order or a reshape of
#: rows each gives different numbers (and no shape happens to fit two readings).
_C_ATTN_SHAPES = ((4, 3), (2, 5))


def _c_attn_inputs(key: jax.Array):
    """``c_attn_weight (D, 3·D)``, ``c_attn_bias (3·D,)`` standard normal, and ``n_heads``."""
    k_shape, k_w, k_b = jax.random.split(key, 3)
    H, Dh = _C_ATTN_SHAPES[int(jax.random.randint(k_shape, (), 0, len(_C_ATTN_SHAPES)))]
    D = H * Dh
    return (jax.random.normal(k_w, (D, 3 * D)), jax.random.normal(k_b, (3 * D,)), H)


def _heads(kernels_and_biases, n_heads):
    W_q, W_k, W_v, b_q, b_k, b_v = kernels_and_biases
    D = W_q.shape[0]
    d_head = D // n_heads
    return (*(W.reshape(D, n_heads, d_head) for W in (W_q, W_k, W_v)),
            *(b.reshape(n_heads, d_head) for b in (b_q, b_k, b_v)))


def _c_attn_reference(c_attn_weight, c_attn_bias, n_heads):
    from attnlab.hub import split_c_attn

    return _heads(split_c_attn(c_attn_weight, c_attn_bias), n_heads)


def _c_attn_variant(kind: str) -> Callable:
    """A c_attn split that makes one chosen mistake (for :class:`Mistake`)."""

    def split(c_attn_weight, c_attn_bias, n_heads):
        w, b = jnp.asarray(c_attn_weight), jnp.asarray(c_attn_bias)
        D = w.shape[0]
        d_head = D // n_heads
        order = _C_ATTN_ORDERS.get(kind, (1, 0, 2) if kind == "swap_qk" else (0, 1, 2))
        Ws = [w[:, j * D:(j + 1) * D] for j in order]
        bs = [b[j * D:(j + 1) * D] for j in order]
        if kind == "transpose":
            Ws = [W.T for W in Ws]
        elif kind == "rows":
            Ws = list(w.reshape(3, D, D))
        elif kind == "bias_q":
            bs = [b[:D]] * 3
        if kind == "interleaved":
            per_head = w.reshape(D, n_heads, 3, d_head)
            bias_head = b.reshape(n_heads, 3, d_head)
            return (*(per_head[:, :, j] for j in range(3)),
                    *(bias_head[:, j] for j in range(3)))
        if kind == "head_order":
            return (*(W.reshape(D, d_head, n_heads).transpose(0, 2, 1) for W in Ws),
                    *(v.reshape(d_head, n_heads).T for v in bs))
        if kind == "no_heads":
            return (*Ws, *bs)
        if kind == "heads_first":
            return (*(W.reshape(D, n_heads, d_head).transpose(1, 0, 2) for W in Ws),
                    *(v.reshape(n_heads, d_head) for v in bs))
        if kind == "d_head_then_heads":
            return (*(W.reshape(D, d_head, n_heads) for W in Ws),
                    *(v.reshape(d_head, n_heads) for v in bs))
        return _heads((*Ws, *bs), n_heads)

    return split


_THIRDS = ("queries", "keys", "values")
#: The orders of c_attn's thirds, other than [q | k | v] and the q/k swap, that a learner may
#: read them in: (which third became W_q, W_k, W_v).
_C_ATTN_ORDERS = {f"order_{''.join('qkv'[j] for j in order)}": order
                  for order in ((0, 2, 1), (1, 2, 0), (2, 0, 1), (2, 1, 0))}

_C_ATTN_MISTAKES = (
    Mistake("the kernels are transposed: GPT-2's Conv1D stores weights as (in, out), like a "
            "flax kernel, so take the columns as they are (no .T; that is PyTorch nn.Linear's "
            "(out, in) habit).", _c_attn_variant("transpose")),
    Mistake("q and k are swapped: c_attn's output is [q | k | v], queries first "
            "(columns 0:D), then keys (D:2D), then values (2D:3D).", _c_attn_variant("swap_qk")),
    Mistake("the columns were read as interleaved per head (q, k, v of head 0, then head 1...); "
            "c_attn holds all queries, then all keys, then all values: slice thirds first, "
            "then split each into heads.", _c_attn_variant("interleaved")),
    Mistake("the heads came out in the wrong order: head h is the consecutive columns "
            "h·d_head to (h+1)·d_head, so reshape (D, D) to (D, n_heads, d_head), not "
            "(D, d_head, n_heads).", _c_attn_variant("head_order")),
    Mistake("the rows were split (reshape (D, 3·D) to (3, D, D) mixes the input axis); the three "
            "projections are thirds of the columns: weight[:, 0:D], weight[:, D:2D], "
            "weight[:, 2D:3D].", _c_attn_variant("rows")),
    Mistake("every projection got the query bias: k and v have their own thirds of c_attn.bias, "
            "bias[D:2D] and bias[2D:3D].", _c_attn_variant("bias_q")),
    Mistake("the kernels are (D, D) and the biases (D,), as hub.split_c_attn returns them; this "
            "exercise also splits each into heads: reshape to (D, n_heads, d_head) and "
            "(n_heads, d_head).", _c_attn_variant("no_heads")),
    Mistake("the head axis came first, (n_heads, D, d_head); a kernel keeps its input axis D "
            "first: reshape (D, D) to (D, n_heads, d_head), with no transpose.",
            _c_attn_variant("heads_first")),
    Mistake("reshaped to (D, d_head, n_heads): head h is the consecutive columns h·d_head to "
            "(h+1)·d_head, so the head axis comes before d_head: (D, n_heads, d_head).",
            _c_attn_variant("d_head_then_heads")),
    *(Mistake(f"W_q, W_k, W_v were taken from c_attn's {', '.join(_THIRDS[j] for j in order)}: "
              "its output is [q | k | v], queries first (columns 0:D), then keys (D:2D), then "
              "values (2D:3D).", _c_attn_variant(kind))
      for kind, order in _C_ATTN_ORDERS.items()),
)


SPLIT_C_ATTN = Exercise(
    name="split_c_attn",
    notebook="10",
    task="split GPT-2's fused c_attn into heads: c_attn_weight (D, 3D) (in, out), "
    "c_attn_bias (3D,), n_heads -> (W_q, W_k, W_v) each (D, H, d_head) and (b_q, b_k, b_v) "
    "each (H, d_head)",
    reference=_c_attn_reference,
    inputs=_c_attn_inputs,
    axis_names={"c_attn_weight": ("D", "3D"), "c_attn_bias": ("3D",)},
    n_trials=8,
    mistakes=_C_ATTN_MISTAKES,
)

#: This notebook's exercises, for :data:`attnlab.exercises.EXERCISES`.
NOTEBOOK_EXERCISES: tuple[Exercise, ...] = (SPLIT_C_ATTN,)
