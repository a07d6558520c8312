"""The notebooks' exercises: each one's reference, its random inputs, and a one-call checker.

An exercise lives here, not in its notebook, so that the notebook and the tests check a
learner's function in exactly the same way: the notebook calls ``check_exercise(name, fn)``,
and ``tests/test_exercises.py`` feeds the same checker a list of typical wrong solutions and
asserts the hint each one gets.

Example (in a notebook cell)::

    from attnlab.exercises import check_exercise

    check_exercise("cross_entropy", my_cross_entropy)
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable, Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from attnlab.checks import CheckResult, check_function

__all__ = ["EXERCISES", "Exercise", "Mistake", "check_exercise"]


@dataclasses.dataclass(frozen=True)
class Mistake:
    """A typical wrong solution of an exercise and the hint it earns.

    Attributes:
      hint: one sentence that names the mistake and the fix, shown as "Likely cause: ...".
      wrong: a function with the reference's signature that makes exactly this mistake.
    """

    hint: str
    wrong: Callable


@dataclasses.dataclass(frozen=True)
class Exercise:
    """One exercise: what the learner writes and how it is checked.

    Attributes:
      name: the key in :data:`EXERCISES`, e.g. ``"cross_entropy"``.
      notebook: the notebook that asks for it, e.g. ``"07"``.
      task: one line, what the learner's function must do.
      reference: the correct function.
      inputs: ``key -> inputs`` for :func:`attnlab.checks.check_function`; the reference's
        parameter names name them in the checker's messages.
      axis_names: names of the array inputs' axes, e.g. ``{"logits": ("B", "T", "V")}``, so
        that hints say "16 = B·T" rather than "axes 0 and 1".
      n_trials, rtol, atol: passed to :func:`attnlab.checks.check_function`.
      mistakes: typical wrong solutions; a failing learner's output on the failing trial is
        compared with each (within 10 × rtol and atol) and the first match's hint is shown.
    """

    name: str
    notebook: str
    task: str
    reference: Callable
    inputs: Callable[[jax.Array], Any]
    axis_names: Mapping[str, tuple[str, ...]] = dataclasses.field(default_factory=dict)
    n_trials: int = 20
    rtol: float = 1e-5
    atol: float = 1e-6
    mistakes: tuple[Mistake, ...] = ()


# --- 07 · the training loss ---------------------------------------------------------------------

#: Vocabulary size of the cross-entropy exercise (the notebooks' character vocabulary).
_CE_VOCAB = 96


def _cross_entropy_inputs(key: jax.Array):
    """Logits ``(2, 8, 96)`` at one of three scales (1, 10, 200: at 200 a naive ``exp``
    overflows, and softmax probabilities of unlikely targets underflow to 0) and int targets
    ``(2, 8)``."""
    k_scale, k_logits, k_targets = jax.random.split(key, 3)
    scale = jax.random.choice(k_scale, jnp.array([1.0, 10.0, 200.0]))
    logits = scale * jax.random.normal(k_logits, (2, 8, _CE_VOCAB))
    return logits, jax.random.randint(k_targets, (2, 8), 0, _CE_VOCAB)


def _cross_entropy_reference(logits, targets):
    from attnlab.train import cross_entropy

    return cross_entropy(logits, targets)


# --- 06 · one pre-LN decoder block ----------------------------------------------------------

#: (B, T, H, d_head, d_ff) of the block exercise's trials: T >= 2 so that the mask matters,
#: H > 1 so that sqrt(d_head) and sqrt(d_model) differ. Two shapes keep the checker quick (each
#: new shape makes JAX compile the learner's operations again).
_BLOCK_SHAPES = ((2, 5, 2, 4, 24), (1, 6, 4, 2, 16))


def _pre_ln_block_inputs(key: jax.Array):
    """``x (B, T, D)``, a :func:`attnlab.gpt.block_weights`-style dict, and ``n_heads``.

    Weights are drawn at a scale where every part of the block changes the output visibly:
    kernels ``normal / sqrt(fan_in)``, LayerNorm scales ``1 + 0.3·normal``, biases
    ``0.3·normal``; ``x`` has a non-zero mean and spread, so LayerNorm matters too. (NumPy
    draws them, seeded from ``key``: one random op per array would compile per shape.)
    """
    from attnlab.gpt import BLOCK_WEIGHT_NAMES

    typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)  # new-style key or legacy uint32
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key) if typed else key).ravel())
    B, T, H, Dh, F = _BLOCK_SHAPES[rng.integers(len(_BLOCK_SHAPES))]
    D = H * Dh
    special = {"W_in": (D, F), "b_in": (F,), "W_out": (F, D)}
    weights = {}
    for name in BLOCK_WEIGHT_NAMES:
        shape = special.get(name, (D, D) if name.startswith("W_") else (D,))
        noise = rng.standard_normal(shape)
        if name.startswith("W_"):
            value = noise / math.sqrt(shape[0])
        elif name.endswith("_scale"):
            value = 1.0 + 0.3 * noise
        else:
            value = 0.3 * noise
        weights[name] = jnp.asarray(value, jnp.float32)
    x = jnp.asarray(1.0 + 2.0 * rng.standard_normal((B, T, D)), jnp.float32)
    return x, weights, H


@functools.partial(jax.jit, static_argnames="n_heads")
def _pre_ln_block_reference(x, weights, n_heads):
    """The package's own :class:`attnlab.gpt.Block`, loaded with ``weights``, on ``x``.

    Built inside ``jit``: its random initial weights are overwritten, so XLA drops them, and
    the whole block compiles once per shape.
    """
    from flax import nnx

    from attnlab.attention import causal_mask
    from attnlab.gpt import BLOCK_WEIGHT_NAMES, Block, GPTConfig

    _, T, D = x.shape
    config = GPTConfig(vocab_size=1, context_length=T, n_layers=1, n_heads=n_heads,
                       d_model=D, d_ff=weights["W_in"].shape[1])
    block = Block(config, rngs=nnx.Rngs(0))
    for name, path in BLOCK_WEIGHT_NAMES.items():
        functools.reduce(getattr, path, block)[...] = weights[name]
    return block(x, causal_mask(T))[0]


def _block_variant(x, w, n_heads, *, post_ln=False, attention_residual=True, mlp_residual=True,
                   mask="causal", divide_by="d_head", activation="gelu_tanh", second_ln="ln_2",
                   project=True, softmax_axis=-1):
    """A pre-LN block written plainly, with switches that each make one typical mistake."""
    B, T, D = x.shape
    d_head = D // n_heads

    def layer_norm(h, which):
        mean = h.mean(-1, keepdims=True)
        var = ((h - mean) ** 2).mean(-1, keepdims=True)
        return (h - mean) / jnp.sqrt(var + 1e-5) * w[f"{which}_scale"] + w[f"{which}_bias"]

    def attention(h):
        q, k, v = ((h @ w[f"W_{n}"] + w[f"b_{n}"]).reshape(B, T, n_heads, d_head) for n in "qkv")
        scores = jnp.einsum("bthd,bshd->bhts", q, k)
        divisor = {"d_head": math.sqrt(d_head), "d_model": math.sqrt(D), "none": 1.0}[divide_by]
        scores = scores / divisor
        allowed = {"causal": jnp.tril, "future": jnp.triu, "none": lambda m: m}[mask](
            jnp.ones((T, T), bool))
        weights = jax.nn.softmax(jnp.where(allowed, scores, -jnp.inf), axis=softmax_axis)
        z = jnp.einsum("bhts,bshd->bthd", jnp.where(allowed, weights, 0.0), v).reshape(B, T, D)
        return z @ w["W_o"] + w["b_o"] if project else z

    def mlp(h):
        a = h @ w["W_in"] + w["b_in"]
        a = {"gelu_tanh": lambda u: jax.nn.gelu(u, approximate=True),
             "gelu_exact": lambda u: jax.nn.gelu(u, approximate=False),
             "relu": jax.nn.relu}[activation](a)
        return a @ w["W_out"] + w["b_out"]

    if post_ln:
        x = layer_norm(x + attention(x), "ln_1")
        return layer_norm(x + mlp(x), second_ln)
    a = attention(layer_norm(x, "ln_1"))
    x = x + a if attention_residual else a
    m = mlp(layer_norm(x, second_ln))
    return x + m if mlp_residual else m


def _variant(**switches) -> Callable:
    return functools.partial(_block_variant, **switches)


_BLOCK_MISTAKES = (
    Mistake("LayerNorm after the residual addition (post-LN, as in the 2017 transformer); a "
            "GPT-2 block normalises each sub-layer's input instead: x = x + attention(LN(x)).",
            _variant(post_ln=True)),
    Mistake("no residual connections: each sub-layer's output must be added to its input, "
            "x = x + attention(LN(x)), then x = x + MLP(LN(x)).",
            _variant(attention_residual=False, mlp_residual=False)),
    Mistake("no residual connection around attention: add the block's input back, "
            "x = x + attention(LN(x)).", _variant(attention_residual=False)),
    Mistake("no residual connection around the feed-forward network: "
            "x = x + MLP(LN(x)), not MLP(LN(x)) alone.", _variant(mlp_residual=False)),
    Mistake("no causal mask: every position also sees later positions. Set the scores of keys "
            "s > t to -inf (jnp.tril gives the allowed pairs) before the softmax.",
            _variant(mask="none")),
    Mistake("the mask is flipped: positions see later positions instead of earlier ones. "
            "Position t may attend to keys s <= t (jnp.tril, not jnp.triu).",
            _variant(mask="future")),
    Mistake("the scores are not scaled: divide q·k by sqrt(d_head) before the softmax.",
            _variant(divide_by="none")),
    Mistake("the scores are divided by sqrt(d_model); the scale uses one head's width, "
            "sqrt(d_head) = sqrt(d_model / n_heads).", _variant(divide_by="d_model")),
    Mistake("the softmax runs over the wrong axis: each query's row of scores (over the keys, "
            "the last axis of (B, H, T, S)) must sum to 1.", _variant(softmax_axis=-2)),
    Mistake("the output projection W_o (and b_o) is missing: after concatenating the heads, "
            "multiply by W_o and add b_o.", _variant(project=False)),
    Mistake("the second LayerNorm uses ln_1's scale and bias; the feed-forward network has its "
            "own, ln_2_scale and ln_2_bias.", _variant(second_ln="ln_1")),
    Mistake("exact (erf) GELU; GPT-2 and this model use its tanh approximation, "
            "jax.nn.gelu(x, approximate=True), which is jax.nn.gelu's default.",
            _variant(activation="gelu_exact")),
    Mistake("ReLU in the feed-forward network; GPT-2 uses GELU (tanh approximation), "
            "jax.nn.gelu(x).", _variant(activation="relu")),
)


_ALL = [
    Exercise(
        name="cross_entropy",
        notebook="07",
        task="mean next-token cross-entropy in nats: logits (B, T, V), int targets (B, T) -> scalar",
        reference=_cross_entropy_reference,
        inputs=_cross_entropy_inputs,
        axis_names={"logits": ("B", "T", "V"), "targets": ("B", "T")},
    ),
    Exercise(
        name="pre_ln_block",
        notebook="06",
        task="one pre-LN decoder block: x (B, T, D), weights {name: array} as "
        "attnlab.gpt.block_weights gives them, n_heads -> (B, T, D)",
        reference=_pre_ln_block_reference,
        inputs=_pre_ln_block_inputs,
        n_trials=8,
        rtol=1e-4,
        atol=1e-5,
        axis_names={"x": ("B", "T", "D")},
        mistakes=_BLOCK_MISTAKES,
    ),
]

#: Every exercise of the course, by name.
EXERCISES: Mapping[str, Exercise] = {e.name: e for e in _ALL}


def check_exercise(name: str, fn: Callable, **overrides) -> CheckResult:
    """Check a learner's ``fn`` for the exercise ``name`` against its reference.

    Args:
      name: a key of :data:`EXERCISES`.
      fn: the learner's function.
      **overrides: keyword arguments for :func:`attnlab.checks.check_function` (``seed``,
        ``n_trials``, ...), replacing the exercise's own.

    Returns:
      a :class:`attnlab.checks.CheckResult` (a green or red box in a notebook).

    Raises:
      KeyError: if ``name`` is not an exercise; the message lists the ones that exist.
      TypeError, ValueError: for bad ``overrides``, as :func:`attnlab.checks.check_function`.
    """
    if name not in EXERCISES:
        raise KeyError(f"no exercise named {name!r}; the exercises are {sorted(EXERCISES)}.")
    exercise = EXERCISES[name]
    options = dict(n_trials=exercise.n_trials, rtol=exercise.rtol, atol=exercise.atol,
                   axis_names=exercise.axis_names)
    result = check_function(fn, exercise.reference, exercise.inputs, **{**options, **overrides})
    if result.passed or result.inputs is None or not exercise.mistakes:
        return result
    hint = _likely_mistake(exercise, fn, result.inputs)
    if hint is None:
        return result
    return CheckResult(False, f"Likely cause: {hint}\n{result.message}", result.inputs)


def _call(fn: Callable, inputs: Any) -> Any:
    """Call ``fn`` on inputs in the forms an input generator returns (tuple, dict, one value)."""
    if isinstance(inputs, Mapping):
        return fn(**inputs)
    return fn(*inputs) if isinstance(inputs, tuple) else fn(inputs)


def _same(a: Any, b: Any, rtol: float, atol: float) -> bool:
    """Whether two outputs (arrays, numbers or pytrees of them) agree within the tolerances."""
    leaves_a, leaves_b = jax.tree.leaves(a), jax.tree.leaves(b)
    if len(leaves_a) != len(leaves_b):
        return False
    for x, y in zip(leaves_a, leaves_b, strict=True):
        x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
        if x.shape != y.shape or not np.allclose(x, y, rtol=rtol, atol=atol):
            return False
    return True


def _likely_mistake(exercise: Exercise, fn: Callable, inputs: Any) -> str | None:
    """The hint of the first of ``exercise.mistakes`` whose output ``fn`` reproduces."""
    try:
        got = _call(fn, inputs)
    except Exception:  # the learner's error is already in the checker's message
        return None
    for mistake in exercise.mistakes:
        if _same(got, _call(mistake.wrong, inputs), 10 * exercise.rtol, 10 * exercise.atol):
            return mistake.hint
    return None


# --- 04 · scaled dot-product attention ------------------------------------------------------------

#: Sizes of the attention exercise: T tokens of width d (S = T keys: self-attention). d differs
#: from T so that returning (weights, output) in the wrong order, or using k instead of kᵀ,
#: shows up as a wrong shape or an error instead of silently wrong numbers.
_ATTN_T, _ATTN_D = 6, 4


def _attention_inputs(key: jax.Array):
    """q, k, v ``(6, 4)`` and a ``(6, 6)`` bool mask: ``None``, causal, random (each query keeps
    at least itself), or random with one query that may attend to nothing."""
    from attnlab.attention import causal_mask

    k_q, k_k, k_v, k_kind, k_mask, k_row = jax.random.split(key, 6)
    T, d = _ATTN_T, _ATTN_D
    q, k, v = (jax.random.normal(kk, (T, d)) for kk in (k_q, k_k, k_v))
    kind = int(jax.random.randint(k_kind, (), 0, 4))
    if kind == 0:
        mask = None
    elif kind == 1:
        mask = causal_mask(T)
    else:
        mask = jax.random.bernoulli(k_mask, 0.5, (T, T)) | jnp.eye(T, dtype=bool)
        if kind == 3:  # one query row with no allowed key: zero weights, zero output
            mask = mask.at[jax.random.randint(k_row, (), 0, T)].set(False)
    return q, k, v, mask


def _attention_reference(q, k, v, mask=None):
    """One sequence, one head: the package's (B, T, H, Dh) function with B = H = 1."""
    from attnlab.attention import scaled_dot_product_attention

    out, weights = scaled_dot_product_attention(q[None, :, None], k[None, :, None],
                                                v[None, :, None], mask)
    return out[0, :, 0], weights[0, 0]


def _attention_variant(*, power=0.5, axis=-1, mask="use", zero_masked=True) -> Callable:
    """A single-head attention that makes one chosen mistake (for :class:`Mistake`)."""

    def attention(q, k, v, mask_=None):
        scores = q @ k.T / q.shape[-1] ** power
        keep = None if mask_ is None or mask == "ignore" else (~mask_ if mask == "invert" else mask_)
        if keep is not None:
            scores = jnp.where(keep, scores, jnp.finfo(scores.dtype).min)
        weights = jax.nn.softmax(scores, axis=axis)
        if keep is not None and zero_masked:
            weights = jnp.where(keep, weights, 0.0)
        return weights @ v, weights

    return attention


_ATTENTION_MISTAKES = (
    Mistake("the scores were not scaled: divide q kᵀ by sqrt(d) before the softmax.",
            _attention_variant(power=0.0)),
    Mistake("the scores were divided by d, not by sqrt(d) (use math.sqrt(q.shape[-1])).",
            _attention_variant(power=1.0)),
    Mistake("the softmax ran over the queries (axis 0), so each key's column sums to 1; "
            "normalise each query's row instead (axis=-1).", _attention_variant(axis=0)),
    Mistake("the mask was not applied: hide the scores where mask is False before the softmax.",
            _attention_variant(mask="ignore")),
    Mistake("the mask was read the wrong way round: True means 'may attend', so hide the keys "
            "where the mask is False.", _attention_variant(mask="invert")),
    Mistake("a query with no allowed key must get zero weights and a zero output; set the "
            "weights of masked keys to 0 after the softmax (jnp.where(mask, weights, 0)).",
            _attention_variant(zero_masked=False)),
)


_ALL.append(
    Exercise(
        name="scaled_dot_product_attention",
        notebook="04",
        task="single-head attention: q (T, d), k (S, d), v (S, d), optional bool mask (T, S) "
        "(True = may attend) -> (output (T, d), weights (T, S)); softmax(q kᵀ / sqrt(d)) row by "
        "row; a query with no allowed key gets zero weights and a zero output",
        reference=_attention_reference,
        inputs=_attention_inputs,
        mistakes=_ATTENTION_MISTAKES,
    )
)
EXERCISES = {e.name: e for e in _ALL}


# --- 02 · one LSTM step -------------------------------------------------------------------------

#: (B, d_in, H) of the LSTM exercise: three different sizes, so that a matrix taken for another
#: (W_h for W_x) or an answer returned in the wrong shape shows up as a shape, not as numbers.
_LSTM_B, _LSTM_D_IN, _LSTM_H = 2, 5, 3


def _lstm_step_inputs(key: jax.Array):
    """h, c ``(2, 3)``, x ``(2, 5)``, W_x ``(5, 12)``, W_h ``(3, 12)``, b ``(12,)``.

    Drawn at a scale where every gate is neither fully open nor fully shut, and c is not small
    next to the candidate, so that each part of the step changes the result visibly."""
    k_h, k_c, k_x, k_wx, k_wh, k_b = jax.random.split(key, 6)
    B, D, H = _LSTM_B, _LSTM_D_IN, _LSTM_H
    return (jnp.tanh(jax.random.normal(k_h, (B, H))),
            2.0 * jax.random.normal(k_c, (B, H)),
            jax.random.normal(k_x, (B, D)),
            jax.random.normal(k_wx, (D, 4 * H)) / math.sqrt(D),
            jax.random.normal(k_wh, (H, 4 * H)) / math.sqrt(H),
            0.5 * jax.random.normal(k_b, (4 * H,)))


def _lstm_step_reference(h, c, x, W_x, W_h, b):
    from attnlab.rnn import lstm_step

    return lstm_step(h, c, x, W_x, W_h, b)


def _lstm_variant(*, order="ifgo", g_fn="tanh", h_from="new", squash_h=True, use_i=True,
                  use_f=True, bias=True, swap_out=False) -> Callable:
    """An LSTM step that makes one chosen mistake (for :class:`Mistake`)."""

    def step(h, c, x, W_x, W_h, b):
        z = x @ W_x + h @ W_h + (b if bias else 0.0)
        parts = dict(zip(order, jnp.split(z, 4, axis=-1), strict=True))
        i, f, o = (jax.nn.sigmoid(parts[n]) for n in "ifo")
        g = jnp.tanh(parts["g"]) if g_fn == "tanh" else jax.nn.sigmoid(parts["g"])
        c_new = (f * c if use_f else c) + (i * g if use_i else g)
        cell = c_new if h_from == "new" else c
        h_new = o * (jnp.tanh(cell) if squash_h else cell)
        return (c_new, h_new) if swap_out else (h_new, c_new)

    return step


_LSTM_MISTAKES = (
    Mistake("the input gate and the forget gate are swapped: z splits into four H-wide parts "
            "in the order i, f, g, o, so i = sigmoid(z[:, :H]) and f = sigmoid(z[:, H:2H]).",
            _lstm_variant(order="figo")),
    Mistake("the gates are read in the order i, f, o, g; here the third part of z is the "
            "candidate g and the fourth the output gate o.", _lstm_variant(order="ifog")),
    Mistake("the candidate g uses a sigmoid; it takes tanh, so that it can be negative "
            "(only the three gates i, f, o use the sigmoid).", _lstm_variant(g_fn="sigmoid")),
    Mistake("h = o * c: the cell state must be squashed first, h = o * tanh(c_new).",
            _lstm_variant(squash_h=False)),
    Mistake("h is computed from the old cell state; use the new one, h = o * tanh(c_new).",
            _lstm_variant(h_from="old")),
    Mistake("the input gate is missing: c_new = f * c + i * g, not f * c + g.",
            _lstm_variant(use_i=False)),
    Mistake("the forget gate is missing: c_new = f * c + i * g, not c + i * g.",
            _lstm_variant(use_f=False)),
    Mistake("the bias b is missing: z = x @ W_x + h @ W_h + b.", _lstm_variant(bias=False)),
    Mistake("the results are returned as (c, h); return the new hidden state first: "
            "(h_new, c_new).", _lstm_variant(swap_out=True)),
)

_ALL.append(
    Exercise(
        name="lstm_step",
        notebook="02",
        task="one LSTM step: h, c (B, H), x (B, d_in), W_x (d_in, 4H), W_h (H, 4H), b (4H,) "
        "with the gates in the order i, f, g, o -> (h_new, c_new), each (B, H)",
        reference=_lstm_step_reference,
        inputs=_lstm_step_inputs,
        axis_names={"h": ("B", "H"), "c": ("B", "H"), "x": ("B", "d_in"),
                    "W_x": ("d_in", "4H"), "W_h": ("H", "4H"), "b": ("4H",)},
        mistakes=_LSTM_MISTAKES,
    )
)


# --- 03 · additive attention over encoder states, padding masked -------------------------------

#: (B, S, d_q, d_k, d_a) of the attention exercise: all different, so that W_a and U_a taken for
#: each other, or (weights, context) returned in the wrong order, show up as shapes.
_ADD_B, _ADD_S, _ADD_DQ, _ADD_DK, _ADD_DA = 3, 6, 2, 4, 5


def _additive_attention_inputs(key: jax.Array):
    """query ``(3, 2)``, keys ``(3, 6, 4)``, a padding mask ``(3, 6)`` (row b True for its
    first ``length_b`` positions, lengths from 1 to 6, one row always full and one short),
    W_a ``(2, 5)``, U_a ``(4, 5)``, v_a ``(5,)``."""
    k_q, k_k, k_len, k_wa, k_ua, k_va = jax.random.split(key, 6)
    B, S, dq, dk, da = _ADD_B, _ADD_S, _ADD_DQ, _ADD_DK, _ADD_DA
    lengths = jnp.concatenate([jnp.array([S, 2]), jax.random.randint(k_len, (B - 2,), 1, S + 1)])
    mask = jnp.arange(S)[None, :] < lengths[:, None]
    return (jax.random.normal(k_q, (B, dq)), jax.random.normal(k_k, (B, S, dk)), mask,
            jax.random.normal(k_wa, (dq, da)), jax.random.normal(k_ua, (dk, da)),
            jax.random.normal(k_va, (da,)))


def _additive_attention_reference(query, keys, mask, W_a, U_a, v_a):
    from attnlab.attention import additive_score, masked_softmax

    scores = additive_score(query[:, None, :], keys, W_a, U_a, v_a)[:, 0]  # (B, S)
    weights = masked_softmax(scores, mask)
    return jnp.einsum("bs,bsd->bd", weights, keys), weights


def _additive_variant(*, mask_mode="before", axis=-1, squash=True, use_v=True,
                      normalise=True) -> Callable:
    """An additive attention that makes one chosen mistake (for :class:`Mistake`)."""
    from attnlab.attention import masked_softmax

    def attention(query, keys, mask, W_a, U_a, v_a):
        hidden = (query @ W_a)[:, None, :] + keys @ U_a  # (B, S, d_a)
        hidden = jnp.tanh(hidden) if squash else hidden
        scores = hidden @ v_a if use_v else hidden.sum(-1)
        if not normalise:
            weights = jnp.where(mask, scores, 0.0)
        elif mask_mode == "before":
            weights = masked_softmax(scores, mask, axis=axis)
        elif mask_mode == "inverted":
            weights = masked_softmax(scores, ~mask, axis=axis)
        elif mask_mode == "after":
            weights = jax.nn.softmax(scores, axis=axis) * mask
        else:  # "ignored"
            weights = jax.nn.softmax(scores, axis=axis)
        return jnp.einsum("bs,bsd->bd", weights, keys), weights

    return attention


_ADDITIVE_MISTAKES = (
    Mistake("the padding was not masked: padded positions must get weight 0, so set their "
            "scores to a very negative number before the softmax.",
            _additive_variant(mask_mode="ignored")),
    Mistake("the mask was read the wrong way round: True marks a real character (may attend), "
            "False marks padding.", _additive_variant(mask_mode="inverted")),
    Mistake("the padding weights were zeroed after the softmax, so the remaining weights no "
            "longer sum to 1; mask the scores before the softmax instead.",
            _additive_variant(mask_mode="after")),
    Mistake("the softmax ran over the batch axis (axis 0); each example's weights over its "
            "source positions (axis -1) must sum to 1.", _additive_variant(axis=0)),
    Mistake("tanh is missing: score = v_a · tanh(q W_a + k U_a).", _additive_variant(squash=False)),
    Mistake("v_a is missing: the hidden vector tanh(q W_a + k U_a) must be multiplied by v_a "
            "(hidden @ v_a), not summed.", _additive_variant(use_v=False)),
    Mistake("the scores were used as weights without a softmax; softmax turns them into "
            "weights >= 0 that sum to 1.", _additive_variant(normalise=False)),
)

_ALL.append(
    Exercise(
        name="additive_attention",
        notebook="03",
        task="additive (Bahdanau) attention of one decoder state over encoder states: query "
        "(B, d_q), keys (B, S, d_k), bool mask (B, S) (False = padding), W_a (d_q, d_a), U_a "
        "(d_k, d_a), v_a (d_a,) -> (context (B, d_k), weights (B, S)); padding gets weight 0",
        reference=_additive_attention_reference,
        inputs=_additive_attention_inputs,
        axis_names={"query": ("B", "d_q"), "keys": ("B", "S", "d_k"), "mask": ("B", "S"),
                    "W_a": ("d_q", "d_a"), "U_a": ("d_k", "d_a"), "v_a": ("d_a",)},
        rtol=1e-4,
        atol=1e-5,
        mistakes=_ADDITIVE_MISTAKES,
    )
)
EXERCISES = {e.name: e for e in _ALL}
