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
import itertools
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
      diagnose: optional ``learner_fn -> str | None``, run when the check fails: it probes the
        learner's function on known cases and returns one sentence naming a typical mistake
        (shown first, as "Likely cause: ..."), or ``None`` when it recognises none.
      ratio_hints: passed to :func:`attnlab.checks.check_function`; False where a factor
        such as "2 = the size of axis B" would mislead (a whole block's output).
      describe: optional ``inputs -> str``, one sentence about the failing trial's inputs
        that their shapes do not tell (e.g. which kind of mask), added after them.
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
    diagnose: Callable[[Callable], str | None] | None = None
    ratio_hints: bool = True
    describe: Callable[[Any], str] | None = None


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


def _picked(values, targets):
    """``values[b, t, targets[b, t]]``: ``(B, T, V)``, int ``(B, T)`` -> ``(B, T)``."""
    return jnp.take_along_axis(values, targets[..., None], axis=-1)[..., 0]


def _ce_with_epsilon(epsilon: float) -> Callable:
    def wrong(logits, targets):
        return -jnp.log(_picked(jax.nn.softmax(logits, axis=-1), targets) + epsilon).mean()

    return wrong


def _ce_normalised_over(axis: int) -> Callable:
    def wrong(logits, targets):
        return -_picked(jax.nn.log_softmax(logits, axis=axis), targets).mean()

    return wrong


def _ce_raw_logit(logits, targets):
    return -_picked(logits, targets).mean()


def _ce_minus_max(logits, targets):
    return -_picked(logits - logits.max(axis=-1, keepdims=True), targets).mean()


def _ce_fancy_indexing(logits, targets):  # (B, T, B, T): every target at every position
    return -jax.nn.log_softmax(logits, axis=-1)[:, :, targets].mean()


def _ce_shifted_again(first: bool) -> Callable:
    def wrong(logits, targets):
        logits, targets = (logits[:, :-1], targets[:, 1:]) if first else (logits[:, 1:], targets[:, :-1])
        return -_picked(jax.nn.log_softmax(logits, axis=-1), targets).mean()

    return wrong


_CE_LOG_SOFTMAX = ("compute the log-probabilities directly: logits - jax.nn.logsumexp(logits, "
                   "axis=-1, keepdims=True), or jax.nn.log_softmax(logits, axis=-1)")
_CE_SHIFTED = ("the targets were shifted again: targets[b, t] already is the token that follows "
               "position t, so compare logits[:, t] with targets[:, t] as they are.")

_CE_MISTAKES = (
    *(Mistake(f"log(p + {eps:g}) of a softmax: the epsilon caps each position's loss at "
              f"-log({eps:g}) = {-math.log(eps):.1f} nats, so a very unlikely target (p far below "
              f"{eps:g}) counts for less than it should; {_CE_LOG_SOFTMAX}.", _ce_with_epsilon(eps))
      for eps in (1e-9, 1e-8, 1e-10, 1e-7, 1e-6, 1e-12)),
    Mistake("the log-softmax normalised over axis T (axis 1), not over the vocabulary: each "
            "position's V scores must become probabilities, so use axis=-1.", _ce_normalised_over(1)),
    Mistake("the log-softmax normalised over axis B (axis 0), not over the vocabulary: each "
            "position's V scores must become probabilities, so use axis=-1.", _ce_normalised_over(0)),
    Mistake("the target's raw logit was used as its log-probability: logits are not "
            "log-probabilities until log Σⱼ exp(zⱼ) is subtracted (log softmax(z)ᵢ = zᵢ − "
            "log Σⱼ exp(zⱼ)); use jax.nn.logsumexp.", _ce_raw_logit),
    Mistake("the max was subtracted instead of the log-sum-exp: subtracting max(z) only keeps exp "
            "from overflowing; a log-probability is zᵢ − log Σⱼ exp(zⱼ), so use "
            "jax.nn.logsumexp(logits, axis=-1, keepdims=True).", _ce_minus_max),
    Mistake("log_probs[:, :, targets] picks every target at every position (a (B, T, B, T) block) "
            "and its mean mixes them all; pick one entry per position with "
            "jnp.take_along_axis(log_probs, targets[..., None], axis=-1)[..., 0].",
            _ce_fancy_indexing),
    Mistake(_CE_SHIFTED, _ce_shifted_again(True)),
    Mistake(_CE_SHIFTED, _ce_shifted_again(False)),
)


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
                   project=True, softmax_axis=-1, split="BTHD", merge="transpose",
                   ln_affine=True, ln_axis=-1):
    """A pre-LN block written plainly, with switches that each make one typical mistake.

    ``split``: "BTHD" (right) or "BTDH" (heads taken as (B, T, d_head, H)); ``merge``:
    "transpose" (right: (B, H, T, d_head) -> (B, T, H, d_head) -> (B, T, D)), "none" (reshaped
    without the transpose) or "as_split" (back through (B, T, d_head, H)); ``project``: True,
    False (no W_o, b_o) or "no_bias"; ``ln_axis``: the axis LayerNorm normalises over.
    """
    B, T, D = x.shape
    d_head = D // n_heads

    def layer_norm(h, which):
        mean = h.mean(ln_axis, keepdims=True)
        var = ((h - mean) ** 2).mean(ln_axis, keepdims=True)
        normed = (h - mean) / jnp.sqrt(var + 1e-5)
        return normed * w[f"{which}_scale"] + w[f"{which}_bias"] if ln_affine else normed

    def heads(a):  # (B, T, D) -> (B, T, H, d_head)
        if split == "BTDH":
            return a.reshape(B, T, d_head, n_heads).swapaxes(-1, -2)
        return a.reshape(B, T, n_heads, d_head)

    def attention(h):
        q, k, v = (heads(h @ w[f"W_{n}"] + w[f"b_{n}"]) for n in "qkv")
        scores = jnp.einsum("bthd,bshd->bhts", q, k)
        divisor = {"d_head": math.sqrt(d_head), "d_model": math.sqrt(D), "none": 1.0,
                   "d_head_plain": d_head}[divide_by]
        scores = scores / divisor
        allowed = {"causal": jnp.tril, "future": jnp.triu, "none": lambda m: m}[mask](
            jnp.ones((T, T), bool))
        weights = jax.nn.softmax(jnp.where(allowed, scores, -jnp.inf), axis=softmax_axis)
        z = jnp.einsum("bhts,bshd->bhtd", jnp.where(allowed, weights, 0.0), v)
        z = {"transpose": lambda u: u.transpose(0, 2, 1, 3), "none": lambda u: u,
             "as_split": lambda u: u.transpose(0, 2, 3, 1)}[merge](z).reshape(B, T, D)
        if project == "no_bias":
            return z @ w["W_o"]
        return z @ w["W_o"] + w["b_o"] if project else z

    def mlp(h):
        a = h @ w["W_in"] + w["b_in"]
        a = {"gelu_tanh": lambda u: jax.nn.gelu(u, approximate=True),
             "gelu_exact": lambda u: jax.nn.gelu(u, approximate=False),
             "relu": jax.nn.relu, "none": lambda u: u}[activation](a)
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
    Mistake("the scores are divided by d_head; the scale is its square root, sqrt(d_head).",
            _variant(divide_by="d_head_plain")),
    Mistake("the softmax runs over the wrong axis: each query's row of scores (over the keys, "
            "the last axis of (B, H, T, S)) must sum to 1.", _variant(softmax_axis=-2)),
    Mistake("the output projection W_o (and b_o) is missing: after concatenating the heads, "
            "multiply by W_o and add b_o.", _variant(project=False)),
    Mistake("the output projection's bias b_o is missing: z @ W_o + b_o.",
            _variant(project="no_bias")),
    *(Mistake("the heads were split as (B, T, d_head, H); reshape to (B, T, n_heads, d_head), "
              "so that head i gets columns i·d_head to (i+1)·d_head - 1 of q, k and v.",
              _variant(split="BTDH", merge=merge)) for merge in ("transpose", "as_split")),
    Mistake("the heads were merged without the transpose: (B, H, T, d_head) must become "
            "(B, T, H, d_head) (transpose or einsum '...->bthd') before the reshape to (B, T, D).",
            _variant(merge="none")),
    Mistake("no activation in the feed-forward network: apply GELU between its two linear "
            "layers, jax.nn.gelu(h @ W_in + b_in) @ W_out + b_out.", _variant(activation="none")),
    Mistake("LayerNorm without its learned scale and bias: after normalising, multiply by "
            "ln_1_scale (ln_2_scale) and add ln_1_bias (ln_2_bias).", _variant(ln_affine=False)),
    *(Mistake("LayerNorm normalises over the wrong axis: each token's vector is normalised on "
              "its own, with mean and variance over the last axis D (axis=-1, keepdims=True).",
              _variant(ln_axis=axis)) for axis in (0, 1)),
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
        mistakes=_CE_MISTAKES,
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
        ratio_hints=False,
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
                   axis_names=exercise.axis_names, ratio_hints=exercise.ratio_hints)
    result = check_function(fn, exercise.reference, exercise.inputs, **{**options, **overrides})
    if result.passed:
        return result
    if exercise.describe is not None and result.inputs is not None:
        result = CheckResult(False, f"{result.message} {exercise.describe(result.inputs)}",
                             result.inputs)
    hint = None
    if exercise.mistakes and result.inputs is not None:
        hint = _likely_mistake(exercise, fn, result.inputs)
    if hint is None and exercise.diagnose is not None:
        hint = exercise.diagnose(fn)
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
        # NaN matches NaN (a mistake that makes NaN is recognised by where it makes them).
        if x.shape != y.shape or not np.allclose(x, y, rtol=rtol, atol=atol, equal_nan=True):
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


def _describe_attention_inputs(inputs) -> str:
    """Which of the four kinds of mask the failing trial had."""
    mask = inputs[3]
    if mask is None:
        return "The mask was None (every key allowed)."
    allowed = np.asarray(mask)
    if np.array_equal(allowed, np.tril(np.ones(allowed.shape, bool))):
        return "The mask was causal (each query sees itself and earlier keys)."
    empty = np.flatnonzero(~allowed.any(axis=1))
    if empty.size:
        return (f"The mask was random, and query row {int(empty[0])} may attend to nothing "
                "(expected: zero weights and a zero output there).")
    return "The mask was random (each query may attend at least to itself)."


def _attention_reference(q, k, v, mask=None):
    """One sequence, one head: the package's (B, T, H, Dh) function with B = H = 1."""
    from attnlab.attention import scaled_dot_product_attention

    out, weights = scaled_dot_product_attention(q[None, :, None], k[None, :, None],
                                                v[None, :, None], mask)
    return out[0, :, 0], weights[0, 0]


def _attention_variant(*, power=0.5, axis=-1, mask="use", zero_masked=True, fill="min",
                       width="d", scale_after=False) -> Callable:
    """A single-head attention that makes one chosen mistake (for :class:`Mistake`).

    ``mask``: "use", "ignore", "invert" or "weights" (softmax of
    all scores, then weights * mask, not renormalised); ``fill``: what masked scores become
    ("min": the float's lowest, "-inf", "zero"); ``width``: "d" or "S" (divide by a power of
    the number of keys); ``scale_after``: divide the weights, not the scores.
    """

    def attention(q, k, v, mask_=None):
        n = (q.shape[-1] if width == "d" else k.shape[0]) ** power
        scores = q @ k.T if scale_after else q @ k.T / n
        keep = None if mask_ is None or mask == "ignore" else (~mask_ if mask == "invert" else mask_)
        if keep is not None and mask != "weights":
            value = {"min": jnp.finfo(scores.dtype).min, "-inf": -jnp.inf, "zero": 0.0}[fill]
            scores = jnp.where(keep, scores, value)
        weights = jax.nn.softmax(scores, axis=axis)
        if scale_after:
            weights = weights / n
        if keep is not None and (zero_masked or mask == "weights"):
            weights = jnp.where(keep, weights, 0.0)
        return weights @ v, weights

    return attention


_ZERO_FILL_HINT = (
    "masked scores were set to 0 (jnp.where(mask, scores, 0) or scores * mask), but 0 is an "
    "ordinary score (e^0 = 1 still gets weight); hide them with a very negative number, e.g. "
    "jnp.where(mask, scores, -1e30).")

_ATTENTION_MISTAKES = (
    Mistake("the scores were not scaled: divide q kᵀ by sqrt(d) before the softmax.",
            _attention_variant(power=0.0)),
    Mistake("the scores were divided by d, not by sqrt(d) (use math.sqrt(q.shape[-1])).",
            _attention_variant(power=1.0)),
    Mistake("the scores were divided by sqrt(S), the number of keys (k.shape[0]); the scale "
            "is sqrt(d), the width of each vector (q.shape[-1]).",
            _attention_variant(width="S")),
    Mistake("the weights were divided by sqrt(d) after the softmax; divide the scores before "
            "it (the softmax's rows then still sum to 1).", _attention_variant(scale_after=True)),
    Mistake("the softmax ran over the queries (axis 0), so each key's column sums to 1; "
            "normalise each query's row instead (axis=-1).", _attention_variant(axis=0)),
    Mistake("the mask was not applied: hide the scores where mask is False before the softmax.",
            _attention_variant(mask="ignore")),
    Mistake("the mask was read the wrong way round: True means 'may attend', so hide the keys "
            "where the mask is False.", _attention_variant(mask="invert")),
    *(Mistake(_ZERO_FILL_HINT, _attention_variant(fill="zero", zero_masked=z))
      for z in (False, True)),
    Mistake("the weights were multiplied by the mask after a softmax over all keys, so the "
            "allowed weights no longer sum to 1; hide the scores before the softmax instead.",
            _attention_variant(mask="weights")),
    Mistake("masked scores were filled with -inf and the weights were not zeroed afterwards: a "
            "query with no allowed key gets softmax of all -inf = 0/0 = NaN. Set those weights "
            "to 0 after the softmax (jnp.where(mask, weights, 0)).",
            _attention_variant(fill="-inf", zero_masked=False)),
    Mistake("a query with no allowed key must get zero weights and a zero output; set the "
            "weights of masked keys to 0 after the softmax (jnp.where(mask, weights, 0)).",
            _attention_variant(zero_masked=False)),
)


# --- 01 · cosine similarity between token embeddings --------------------------------------------

#: Sizes of the cosine-similarity exercise: V vectors of width D. D differs from V so that
#: normalising along the wrong axis without keepdims, or a missing transpose, shows as a shape
#: error instead of silently wrong numbers.
_COS_V, _COS_D = 12, 5


def _cosine_inputs(key: jax.Array):
    """Embeddings ``(12, 5)``: standard normal times a scale of 0.1, 1 or 10 (cosine does not
    depend on length, so a solution that forgets to normalise fails at every scale); on about
    a third of the trials one row is all zeros, a vector with no direction."""
    k_scale, k_rows, k_zero, k_which = jax.random.split(key, 4)
    scale = jax.random.choice(k_scale, jnp.array([0.1, 1.0, 10.0]))
    embeddings = scale * jax.random.normal(k_rows, (_COS_V, _COS_D))
    if jax.random.uniform(k_zero) < 1 / 3:
        embeddings = embeddings.at[jax.random.randint(k_which, (), 0, _COS_V)].set(0.0)
    return (embeddings,)


def _cosine_reference(embeddings):
    from attnlab.tokenization import cosine_similarity

    return cosine_similarity(embeddings)


def _cosine_variant(kind: str) -> Callable:
    """A cosine similarity that makes one chosen mistake (for :class:`Mistake`)."""

    def similarity(embeddings):
        e = jnp.asarray(embeddings, jnp.float32)
        norms = jnp.linalg.norm(e, axis=-1, keepdims=True)
        safe = jnp.where(norms == 0, 1.0, norms)
        if kind == "dot":
            return e @ e.T
        if kind == "squared":
            squared = jnp.where(norms == 0, 1.0, norms**2)
            return e @ e.T / (squared * squared.T)
        if kind == "columns":
            columns = jnp.linalg.norm(e, axis=0, keepdims=True)
            unit = e / jnp.where(columns == 0, 1.0, columns)
            return unit @ unit.T
        if kind == "one_side":
            return (e / safe) @ e.T
        if kind == "whole":
            return e @ e.T / jnp.sum(e**2)
        unit = e / safe
        if kind == "features":
            return unit.T @ unit  # (D, D): the wrong side transposed
        if kind == "distance":
            return 1.0 - unit @ unit.T
        if kind == "self_one":
            return jnp.where(jnp.eye(e.shape[0], dtype=bool), 1.0, unit @ unit.T)
        raise ValueError(kind)

    return similarity


_COSINE_MISTAKES = (
    Mistake("a plain dot product: cosine similarity divides each dot product by the lengths "
            "of both vectors (normalise every row first).", _cosine_variant("dot")),
    Mistake("divided by the squared lengths: the length is the square root of the sum of "
            "squares (jnp.linalg.norm), not the sum itself.", _cosine_variant("squared")),
    Mistake("normalised the columns (axis 0): each token's vector is a row, so normalise along "
            "axis=-1 (with keepdims=True).", _cosine_variant("columns")),
    Mistake("only one side was normalised: divide by the length of both vectors, the row's and "
            "the column's.", _cosine_variant("one_side")),
    Mistake("divided by the norm of the whole matrix: each pair needs the lengths of its own two "
            "vectors.", _cosine_variant("whole")),
    Mistake("the product is (D, D), one entry per pair of features: with unit rows of shape "
            "(V, D), the (V, V) matrix of all pairs of tokens is unit @ unit.T.",
            _cosine_variant("features")),
    Mistake("this is the cosine distance 1 - cos (what scipy.spatial.distance.cosine returns); "
            "the exercise asks for the similarity itself, 1 for rows pointing the same way.",
            _cosine_variant("distance")),
    Mistake("a row of zeros got similarity 1 with itself: it has no direction, so its "
            "similarity with every row, itself included, is 0.", _cosine_variant("self_one")),
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
        describe=_describe_attention_inputs,
    )
)
_ALL.append(
    Exercise(
        name="cosine_similarity",
        notebook="01",
        task="cosine similarity between every pair of rows: embeddings (V, D) -> (V, V); a row "
        "of zeros has similarity 0 with every row, itself included",
        reference=_cosine_reference,
        inputs=_cosine_inputs,
        axis_names={"embeddings": ("V", "D")},
        mistakes=_COSINE_MISTAKES,
    )
)

# --- 05 · multi-head attention and positions --------------------------------------------------


def _numpy_rng(key: jax.Array):
    """A NumPy generator seeded from a JAX key: cheap draws, no compilation per shape."""
    import numpy as np

    return np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())


def _split_heads_inputs(key: jax.Array):
    """float32 x ``(3, T, H·Dh)`` with T in {5, 7} and (H, Dh) in {(2, 8), (4, 6)}; ``n_heads``.

    B, T, H and Dh never equal one another, so putting an axis in the wrong place shows up as
    a wrong shape. Few distinct shapes, so a learner's JAX code compiles only a few times."""
    rng = _numpy_rng(key)
    T = int(rng.choice([5, 7]))
    H, Dh = [(2, 8), (4, 6)][int(rng.integers(2))]
    return rng.standard_normal((3, T, H * Dh)).astype("float32"), H


def _split_heads_reference(x, n_heads):
    from attnlab.attention import split_heads

    return split_heads(x, n_heads)


def _sinusoidal_inputs(key: jax.Array):
    """``seq_len`` in {9, 33, 64} and an even ``d_model`` in {2, 6, 16, 64}, as Python ints."""
    rng = _numpy_rng(key)
    return int(rng.choice([9, 33, 64])), int(rng.choice([2, 6, 16, 64]))


def _sinusoidal_reference(seq_len, d_model):
    from attnlab.positional import sinusoidal_encoding

    return sinusoidal_encoding(seq_len, d_model)


def _table(seq_len, d_model, *, base=10000.0, exponent=None, first=0, multiply=False,
           layout="interleaved"):
    """A sinusoidal table with one deliberate change: the wrong solutions of the exercise.

    ``exponent(j, d)`` gives column j's exponent (the paper: ``2 * (j // 2) / d``)."""
    import numpy as np

    j = np.arange(d_model)
    e = exponent(j, d_model) if exponent else 2 * (j // 2) / d_model
    p = np.arange(first, first + seq_len, dtype=np.float64)[:, None]
    angle = p * base**e if multiply else p / base**e
    if layout == "halves":  # sin of every pair, then cos of every pair
        pair_angle = angle[:, 0::2]
        return np.concatenate([np.sin(pair_angle), np.cos(pair_angle)], axis=1)
    if layout == "sines":  # a sine in every column
        return np.sin(angle)
    even = j % 2 == 0
    if layout == "swapped":
        even = ~even
    return np.where(even, np.sin(angle), np.cos(angle))


def _mistake(**change):
    return lambda seq_len, d_model: _table(seq_len, d_model, **change)


_SINUSOIDAL_MISTAKES = tuple(Mistake(hint, wrong) for hint, wrong in (
    ("sines and cosines must alternate column by column (sin in columns 0, 2, 4, ..., cos in "
     "1, 3, 5, ...); yours puts all the sines first and all the cosines after them.",
     _mistake(layout="halves")),
    ("sin and cos are swapped: even columns (0, 2, ...) hold the sine, odd columns the cosine.",
     _mistake(layout="swapped")),
    ("the exponent uses the column index j; it should use the pair index i = j // 2 (2i/d_model),"
     " so that columns 2i and 2i+1 share one frequency.",
     _mistake(exponent=lambda j, d: j / d)),
    ("the exponent uses the column index j; it should use the pair index i = j // 2 (2i/d_model),"
     " so that columns 2i and 2i+1 share one frequency.",
     _mistake(exponent=lambda j, d: 2 * j / d)),
    ("the exponent is 2i/d_model; yours looks like i/d_model (the factor 2 is missing).",
     _mistake(exponent=lambda j, d: (j // 2) / d)),
    ("every pair turns at the same speed (1 radian per position): 2 * i // d_model is integer "
     "division and gives 0; divide with / instead.",
     _mistake(exponent=lambda j, d: 0 * j)),
    ("odd columns (1, 3, 5, ...) hold the cosine of the pair's angle; yours has a sine there "
     "too.",
     _mistake(layout="sines")),
    ("the position must be divided by 10000^(2i/d_model); yours multiplies by it.",
     _mistake(multiply=True)),
    ("the base is 10000; yours looks like 1000 (a zero missing?).", _mistake(base=1000.0)),
    ("the base is 10000; yours looks like 100000 (a zero too many?).", _mistake(base=100000.0)),
    ("positions start at 0 (the first row is sin 0 = 0, cos 0 = 1); yours start at 1.",
     _mistake(first=1)),
))


def _sinusoidal_diagnosis(fn: Callable) -> str | None:
    """Name a table whose angles are all about 0 (a missing bracket in the exponent), or None.

    ``p / 10000 ** 2 * i / d_model`` is ``p·i / (10000²·d_model)``: tiny angles, so every sine
    is about 0 and every cosine about 1, where the right table turns by 1 radian per position
    in its first pair."""
    try:
        table = np.asarray(fn(64, 16), dtype=np.float64)
    except Exception:  # the checker's own message says what went wrong
        return None
    if table.shape != (64, 16):
        return None
    if np.allclose(table[:, 0::2], 0, atol=0.05) and np.allclose(table[:, 1::2], 1, atol=0.05):
        return ("every angle in your table is close to 0 (sines about 0, cosines about 1): "
                "check the brackets of the exponent. Python reads 10000 ** 2 * i / d_model as "
                "(10000²)·i / d_model; write 10000 ** (2 * i / d_model).")
    return None


def _split_heads_mistake(order):
    def wrong(x, n_heads):
        B, T, D = x.shape
        Dh = D // n_heads
        if order == "no-transpose":
            return x.reshape(B, n_heads, T, Dh)
        if order == "head-fastest":
            return x.reshape(B, T, Dh, n_heads).transpose(0, 3, 1, 2)
        if order == "head-first":
            return x.reshape(B, T, n_heads, Dh).transpose(2, 0, 1, 3)
        if order == "sizes-swapped":
            return x.reshape(B, T, Dh, n_heads).transpose(0, 2, 1, 3)
        if order == "last-two-swapped":
            return x.reshape(B, T, n_heads, Dh).transpose(0, 2, 3, 1)
        if order == "slice-one-short":
            return jnp.stack([x[:, :, h * Dh:(h + 1) * Dh - 1] for h in range(n_heads)], axis=1)
        if order == "scaled":
            return x.reshape(B, T, n_heads, Dh).transpose(0, 2, 1, 3) / math.sqrt(Dh)
        return x.reshape(B, T, n_heads, Dh)  # "forgot-transpose"

    return wrong


_SPLIT_HEADS_MISTAKES = tuple(Mistake(hint, _split_heads_mistake(order)) for hint, order in (
    ("reshaping straight to (B, H, T, Dh) keeps the numbers in memory order, so a 'head' gets "
     "pieces of several positions. Reshape to (B, T, H, Dh) first, then swap axes 1 and 2.",
     "no-transpose"),
    ("head h should get the consecutive features h*Dh to (h+1)*Dh - 1 of each vector; yours "
     "deals them out in turn (reshape to (B, T, Dh, H)). Reshape to (B, T, H, Dh) instead.",
     "head-fastest"),
    ("the split into (B, T, H, Dh) is right, but the head axis must come before the time "
     "axis: transpose to (B, H, T, Dh).",
     "forgot-transpose"),
    ("the head axis goes second, after the batch axis: (B, H, T, Dh); yours puts it first, "
     "(H, B, T, Dh), as transpose(2, 0, 1, 3) or stacking the heads on axis 0 does.",
     "head-first"),
    ("n_heads and d_head are swapped: reshape to (B, T, n_heads, D // n_heads), so that the "
     "head axis has n_heads entries.",
     "sizes-swapped"),
    ("each head's matrix must be (T, Dh), one row per position; yours is (Dh, T): transpose "
     "with (0, 2, 1, 3), not (0, 2, 3, 1).",
     "last-two-swapped"),
    ("each head gets one number too few: a Python slice leaves out its end, so "
     "x[..., h*Dh:(h+1)*Dh] already holds the Dh numbers h*Dh to (h+1)*Dh - 1.",
     "slice-one-short"),
    ("splitting into heads only moves numbers, it must not change them: the 1/√d_head scaling "
     "belongs to the scores q·kᵀ, not to the split.",
     "scaled"),
))


def _split_heads_diagnosis(fn: Callable) -> str | None:
    """Name the float-division mistake (``D / n_heads`` inside a reshape), or None.

    NumPy says "'float' object cannot be interpreted as an integer", JAX "Shapes must be 1D
    sequences of concrete values of integer type, got (3, 5, 2, 8.0)"."""
    for x in (np.zeros((3, 5, 16), np.float32), jnp.zeros((3, 5, 16), jnp.float32)):
        try:
            fn(x, 2)
        except TypeError as error:
            if "float" in str(error) or "8.0" in str(error):
                return ("D / n_heads is a float (16 / 2 = 8.0), and a reshape needs whole "
                        "numbers: use integer division, D // n_heads.")
        except Exception:  # any other error: the checker's message shows it
            pass
    return None


_ALL += [
        Exercise(
            name="split_heads",
            notebook="05",
            task="split (B, T, D) into n_heads heads: -> (B, H, T, Dh), head h = features "
                 "h*Dh:(h+1)*Dh",
            reference=_split_heads_reference,
            inputs=_split_heads_inputs,
            n_trials=6,
            mistakes=_SPLIT_HEADS_MISTAKES,
            diagnose=_split_heads_diagnosis,
        ),
        Exercise(
            name="sinusoidal_encoding",
            notebook="05",
            task="the (seq_len, d_model) sinusoidal position table, sin/cos interleaved, even "
                 "d_model",
            reference=_sinusoidal_reference,
            inputs=_sinusoidal_inputs,
            n_trials=8,
            atol=1e-4,  # a float32 computation of the angles is fine for positions < 64
            mistakes=_SINUSOIDAL_MISTAKES,
            diagnose=_sinusoidal_diagnosis,
        ),
]


# --- 08 · top-p (nucleus) filtering ---------------------------------------------------------------


def _top_p_inputs(key: jax.Array):
    """probs ``(4, 12)`` float32, each row a softmax of random logits at one of three
    sharpnesses (rows sum to 1, no zeros, no ties), and a float ``top_p`` drawn from
    {0.05 (below every row's largest probability here), 0.3, 0.6, 0.9, 1.0} or uniform in
    (0, 1), rounded to 3 digits so that messages show a readable number. Drawn with NumPy
    from the key: nothing to compile."""
    import numpy as np

    rng = np.random.default_rng(np.asarray(jax.random.key_data(key)).ravel().tolist())
    logits = rng.choice([0.5, 1.5, 3.0]) * rng.standard_normal((4, 12))
    probs = np.exp(logits - logits.max(axis=-1, keepdims=True))
    probs = (probs / probs.sum(axis=-1, keepdims=True)).astype(np.float32)
    top_p = (0.05, 0.3, 0.6, 0.9, 1.0, None)[int(rng.integers(6))]
    if top_p is None:
        top_p = round(float(rng.uniform(0.01, 0.99)), 3)
    return jnp.asarray(probs), top_p


@jax.jit
def _top_p_reference(probs, top_p):
    """The package's top-p (on log-probabilities, so softmax gives back ``probs``), then the
    softmax that renormalises. Jitted with a traced ``top_p``: one compilation."""
    from attnlab.sampling import top_p_filter

    return jax.nn.softmax(top_p_filter(jnp.log(probs), top_p), axis=-1)


#: Two rows of the same five probabilities in different orders, so that the likely mistakes
#: keep different, recognisable sets of tokens. Sorted: 0.4, 0.25, 0.2, 0.1, 0.05; running
#: totals 0.4, 0.65, 0.85, 0.95, 1. So top_p = 0.6 keeps {0.4, 0.25}, 0.75 keeps
#: {0.4, 0.25, 0.2}, and 0.3 (below the largest probability) keeps {0.4}.
_TOP_P_PROBE = ((0.2, 0.05, 0.4, 0.1, 0.25), (0.1, 0.25, 0.05, 0.4, 0.2))


def _top_p_diagnosis(fn: Callable) -> str | None:
    """Name a typical top-p mistake from ``fn``'s outputs on :data:`_TOP_P_PROBE`, or None."""
    import numpy as np

    probs = np.asarray(_TOP_P_PROBE, dtype=np.float32)

    def run(x, top_p):
        with np.errstate(all="ignore"):
            out = np.asarray(fn(jnp.asarray(x), top_p), dtype=np.float64)
        if out.shape != x.shape:
            raise ValueError("another shape: the checker's message covers it")
        return out

    def kept(out):  # per row, the set of tokens given a positive probability
        return [set(np.flatnonzero(np.nan_to_num(row, nan=0.0, neginf=0.0) > 0)) for row in out]

    def first(order, row, top_p, *, crossing):  # the first tokens of `order` a rule keeps
        mass = np.cumsum(row[order])
        before = mass - row[order]
        return set(order[: int(np.sum((before if crossing else mass) < top_p))].tolist())

    def every_row(out, top_p, rule) -> bool:  # rule(row, kept set, top_p) holds on each row
        return all(rule(row, got, top_p) for row, got in zip(probs, kept(out), strict=True))

    def expected(top_p):
        return np.asarray(_top_p_reference(jnp.asarray(probs), top_p), dtype=np.float64)

    try:
        out = {top_p: run(probs, top_p) for top_p in (0.3, 0.45, 0.6, 0.75)}
        same_rows = run(np.repeat(probs[:1], 3, axis=0), 0.6)
    except Exception:  # the checker's own message says what went wrong
        return None
    if all(np.allclose(out[p], expected(p), rtol=1e-4, atol=1e-6) for p in out):
        return None  # right on the probes: whatever differs, these hints do not fit
    if not np.allclose(same_rows, same_rows[:1], rtol=1e-4, atol=1e-6, equal_nan=True):
        return ("Your function gives different answers for identical rows, so the rows "
                "influence each other: a sort, cumsum, sum or max runs over the wrong axis. "
                "Each row is one distribution: work along the last axis (axis=-1), with "
                "keepdims=True where you divide.")
    if any(np.isneginf(o).any() for o in out.values()):
        return ("Your function gives -inf to the filtered tokens. This exercise returns "
                "probabilities: a filtered token gets probability 0 (-inf is what a filter on "
                "logits uses).")
    nothing_for_small_p = any(not s for s in kept(out[0.3]))
    small_p_text = ("On a test row whose largest probability is 0.4, top_p = 0.3 keeps no token "
                    "at all, so there is nothing left to sample from.")

    def strict(row, got, top_p):
        return got == first(np.argsort(-row), row, top_p, crossing=False)

    if every_row(out[0.6], 0.6, strict) and every_row(out[0.75], 0.75, strict):
        return ("Your function drops the token that crosses top_p. Keep a token while the mass "
                "of the tokens *before* it is still below top_p (cumsum - probs < top_p): the "
                "token that brings the total to top_p or above belongs to the nucleus."
                + (f" {small_p_text}" if nothing_for_small_p else ""))
    if nothing_for_small_p:
        return (f"{small_p_text} The most likely token must always stay: keep a token while "
                "the mass of the tokens before it is below top_p.")

    def descending(row, n):  # the n most likely tokens of row
        return set(np.argsort(-row)[: max(1, min(n, len(row)))].tolist())

    def n_right(row, top_p):
        return len(first(np.argsort(-row), row, top_p, crossing=True))

    def everywhere(rule) -> bool:  # rule(row, kept set, top_p) holds for every row and top_p
        return all(every_row(o, p, rule) for p, o in out.items())

    if everywhere(lambda row, got, p: got == descending(row, n_right(row, p) + 1)):
        return ("Your function keeps one token too many: the token that brings the total to "
                "top_p or above is the last one in. Keep a token while the mass of the tokens "
                "*before* it is below top_p (cumsum - probs < top_p).")

    def as_logits(row, got, p):  # the right rule, run on softmax(probs)
        soft = np.exp(row) / np.exp(row).sum()
        return got == first(np.argsort(-soft), soft, p, crossing=True)

    if everywhere(as_logits):
        return ("Your function applies a softmax to probs, as if they were logits. They are "
                "probabilities already (each row adds up to 1); a softmax flattens them, so the "
                "nucleus comes out too big. Sort and add up probs itself.")
    if everywhere(lambda row, got, p: got == set(np.flatnonzero(row >= p).tolist())
                  | {int(np.argmax(row))}):
        return ("Your function compares each probability with top_p on its own. Top-p adds the "
                "probabilities up: take tokens from the most likely down until their total "
                "reaches top_p.")
    for rounding in (np.floor, np.round):
        if everywhere(lambda row, got, p, r=rounding: got == descending(row, int(r(p * len(row))))):
            return ("Your function keeps a fixed share of the vocabulary (top_p × V tokens): "
                    "that is top-k with k = top_p·V. Top-p adds up probabilities from the most "
                    "likely token down until the total reaches top_p, so how many tokens it "
                    "keeps depends on the row.")

    def ascending(row, got, top_p):
        return any(got == first(np.argsort(row), row, top_p, crossing=c) for c in (True, False))

    if every_row(out[0.6], 0.6, ascending):
        return ("Your function keeps the least likely tokens: the probabilities were sorted in "
                "ascending order (jnp.sort and jnp.argsort sort ascending). Go from the most "
                "likely down: jnp.argsort(-probs), or reverse with [..., ::-1].")

    def sorted_positions(row, got, top_p):
        return any(got == set(range(len(first(np.argsort(-row), row, top_p, crossing=c))))
                   for c in (True, False))

    if every_row(out[0.6], 0.6, sorted_positions):
        return ("Your function keeps the right number of tokens, but at the wrong places: the "
                "mask was made in sorted order and applied in vocabulary order. Put it back "
                "with the sort indices (e.g. jnp.zeros_like(mask).at[order].set(mask_sorted)), "
                "or keep the tokens whose probability is at least the smallest kept one.")
    right = expected(0.6)
    if kept(out[0.6]) == kept(right):
        masked = np.where(right > 0, probs, 0.0)
        if np.allclose(out[0.6], masked, rtol=1e-4, atol=1e-6):
            return (f"Your function keeps the right tokens but does not renormalise: on a test "
                    f"row with top_p = 0.6 its output adds up to {out[0.6][0].sum():.2f}, not 1. "
                    "Divide the kept probabilities by their sum, so that they form a "
                    "distribution to sample from.")
        sums = out[0.6].sum(-1)
        if np.allclose(out[0.6], masked * (sums / masked.sum(-1))[:, None], rtol=1e-4,
                       atol=1e-6):
            return (f"Your function keeps the right tokens, but on a test row with top_p = 0.6 "
                    f"its output adds up to {sums[0]:.2f}, not 1. Divide the kept probabilities "
                    "by their own sum (not by top_p: the kept mass is at least top_p, rarely "
                    "exactly top_p).")
        soft = np.where(right > 0, np.exp(probs), 0.0)
        if np.allclose(out[0.6], soft / soft.sum(-1, keepdims=True), rtol=1e-4, atol=1e-6):
            return ("Your function keeps the right tokens, but renormalises with a softmax of "
                    "the probabilities; softmax is for logits. Divide the kept probabilities "
                    "by their sum instead.")
    return None


_ALL.append(
    Exercise(
        name="top_p",
        notebook="08",
        task="nucleus (top-p) filter on probabilities: probs (B, V) rows summing to 1, top_p in "
        "(0, 1] -> (B, V): in each row the fewest most likely tokens whose probabilities add up "
        "to >= top_p keep their probability, renormalised to sum to 1; every other token 0",
        reference=_top_p_reference,
        inputs=_top_p_inputs,
        axis_names={"probs": ("B", "V")},
        diagnose=_top_p_diagnosis,
    )
)


# --- 10 · splitting GPT-2's fused c_attn into per-head W_q, W_k, W_v ---------------------------

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

_ALL.append(
    Exercise(
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
)
EXERCISES = {e.name: e for e in _ALL}


# --- 09 · a LoRA layer's forward pass -------------------------------------------------------------

#: (N, d_in, d_out, rank, alpha) of the LoRA exercise's trials: alpha / rank, alpha and
#: rank / alpha all differ from each other and from 1, so each wrong scale shows.
_LORA_SHAPES = ((3, 6, 5, 2, 8.0), (4, 7, 6, 3, 12.0), (2, 5, 8, 4, 2.0))


def _lora_inputs(key: jax.Array):
    """``x (N, d_in)``, ``W (d_in, d_out)``, ``b (d_out,)``, ``A (d_in, r)``, ``B (r, d_out)``
    (non-zero, as after some training) and ``alpha``, drawn by NumPy seeded from ``key``."""
    typed = jnp.issubdtype(key.dtype, jax.dtypes.prng_key)
    rng = np.random.default_rng(np.asarray(jax.random.key_data(key) if typed else key).ravel())
    N, d_in, d_out, r, alpha = _LORA_SHAPES[rng.integers(len(_LORA_SHAPES))]

    def normal(*shape, scale=1.0):
        return jnp.asarray(scale * rng.standard_normal(shape), jnp.float32)

    return (normal(N, d_in), normal(d_in, d_out, scale=d_in**-0.5), normal(d_out, scale=0.5),
            normal(d_in, r, scale=d_in**-0.5), normal(r, d_out, scale=0.5), alpha)


def _lora_reference(x, W, b, A, B, alpha):
    """The package's :class:`attnlab.finetune.LoRALinear`, loaded with these arrays."""
    from flax import nnx

    from attnlab.finetune import LoRALinear

    base = nnx.Linear(W.shape[0], W.shape[1], rngs=nnx.Rngs(0))
    base.kernel[...], base.bias[...] = W, b
    layer = LoRALinear(base, A.shape[1], alpha, rngs=nnx.Rngs(0))
    layer.lora_a[...], layer.lora_b[...] = A, B
    return layer(x)


def _lora_variant(*, scale="alpha/r", base=True, bias=True, scale_all=False) -> Callable:
    """A LoRA forward pass that makes one chosen mistake (for :class:`Mistake`)."""

    def forward(x, W, b, A, B, alpha):
        r = A.shape[1]
        s = {"alpha/r": alpha / r, "alpha": alpha, "r/alpha": r / alpha, "1": 1.0,
             "alpha/d_in": alpha / A.shape[0], "alpha/d_out": alpha / B.shape[1]}[scale]
        out = (x @ W if base else 0.0) + (b if bias else 0.0)
        if scale_all:
            return s * (out + x @ A @ B)
        return out + s * (x @ A @ B)

    return forward


_LORA_MISTAKES = (
    Mistake("the adapter was scaled by alpha, not alpha / r: divide by the rank "
            "(r = A.shape[1]).", _lora_variant(scale="alpha")),
    Mistake("the scale is upside down (r / alpha): LoRA multiplies the adapter's output by "
            "alpha / r.", _lora_variant(scale="r/alpha")),
    Mistake("the adapter was not scaled: multiply x @ A @ B by alpha / r.", _lora_variant(scale="1")),
    Mistake("the frozen weight's term x @ W is missing: the output is x @ W + b plus the "
            "adapter's low-rank update.", _lora_variant(base=False)),
    Mistake("the base layer's bias b is missing: keep x @ W + b and add the adapter to it.",
            _lora_variant(bias=False)),
    Mistake("only the adapter's term is returned: the frozen layer's output x @ W + b must be "
            "there too, with the low-rank update added to it.",
            _lora_variant(base=False, bias=False)),
    Mistake("r was read from the wrong axis (A.shape[0] is d_in): the rank is A.shape[1], "
            "the width of the narrow middle.", _lora_variant(scale="alpha/d_in")),
    Mistake("r was read from the wrong axis (B.shape[1] is d_out): the rank is A.shape[1] "
            "(= B.shape[0]), the width of the narrow middle.", _lora_variant(scale="alpha/d_out")),
    Mistake("the scale was applied to the whole output: only the adapter's term x @ A @ B is "
            "multiplied by alpha / r, the frozen x @ W + b is not.", _lora_variant(scale_all=True)),
)

def _lora_diagnosis(fn: Callable) -> str | None:
    """Name a mistake that breaks the shapes (factors in the wrong order, a transposed factor,
    the update added to the input), or None.

    With the exercise's shapes these raise an error; on square inputs (d_in = d_out = r) they
    run, and their numbers tell them apart."""
    rng = np.random.default_rng(0)
    n, alpha = 4, 6.0
    x, W, A, B = (jnp.asarray(rng.standard_normal((n, n)), jnp.float32) for _ in range(4))
    b = jnp.asarray(rng.standard_normal(n), jnp.float32)
    s = alpha / n
    candidates = (
        ("the factors are in the wrong order: x @ A comes first (d_in -> r), then @ B "
         "(r -> d_out).", x @ W + b + s * (x @ B @ A)),
        ("A is already (d_in, r), so x @ A needs no transpose; likewise B (r, d_out).",
         x @ W + b + s * (x @ A.T @ B)),
        ("A is already (d_in, r), so x @ A needs no transpose; likewise B (r, d_out).",
         x @ W + b + s * (x @ A @ B.T)),
        ("W is already (d_in, d_out), so x @ W needs no transpose.",
         x @ W.T + b + s * (x @ A @ B)),
        ("the low-rank update was added to the input x; LoRA adds it to the layer's output: "
         "x @ W + b + (alpha / r) * x @ A @ B.", (x + s * (x @ A @ B)) @ W + b),
    )
    try:
        got = fn(x, W, b, A, B, alpha)
    except Exception:  # any other error: the checker's message shows it
        return None
    for hint, wrong in candidates:
        if _same(got, wrong, 1e-4, 1e-4):
            return hint
    return None


_ALL.append(
    Exercise(
        name="lora_forward",
        notebook="09",
        task="a LoRA layer: x (N, d_in), frozen W (d_in, d_out) and b (d_out,), adapters "
        "A (d_in, r) and B (r, d_out), alpha -> x @ W + b + (alpha / r) * x @ A @ B, (N, d_out)",
        reference=_lora_reference,
        inputs=_lora_inputs,
        n_trials=6,
        rtol=1e-4,
        atol=1e-5,
        axis_names={"x": ("N", "d_in"), "W": ("d_in", "d_out"), "A": ("d_in", "r"),
                    "B": ("r", "d_out")},
        mistakes=_LORA_MISTAKES,
        diagnose=_lora_diagnosis,
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


def _elman_variant(c_out: str) -> Callable:
    """An Elman step in place of the LSTM's: ``h_new = tanh(z)``, all 4H columns of z, no gates;
    ``c_out`` says what comes back as the second value (``"c"``: the old cell, ``"h"``: h_new)."""

    def step(h, c, x, W_x, W_h, b):
        h_new = jnp.tanh(x @ W_x + h @ W_h + b)
        return h_new, (c if c_out == "c" else h_new)

    return step


_ELMAN_HINT = ("this is an Elman step, h_new = tanh(x @ W_x + h @ W_h + b) over all 4H columns "
               "of z; an LSTM splits z into its four H-wide parts i, f, g, o, updates the cell "
               "c_new = f * c + i * g, and returns h_new = o * tanh(c_new), both (B, H).")


def _lstm_variant(*, order="ifgo", g_fn="tanh", h_from="new", squash_h=True, use_i=True,
                  use_f=True, bias=True, swap_out=False, acts="sstst", use_h=True,
                  strided=False, coupled=False, h_twice=False) -> Callable:
    """An LSTM step that makes one chosen mistake (for :class:`Mistake`).

    ``acts`` names the squashing function of i, f, g, o and of the cell in h, in that order,
    ``s`` for sigmoid and ``t`` for tanh; the right one is ``"sstst"``."""
    fns = {"s": jax.nn.sigmoid, "t": jnp.tanh}

    def step(h, c, x, W_x, W_h, b):
        z = x @ W_x + (h @ W_h if use_h else 0.0) + (b if bias else 0.0)
        if strided:  # every fourth column instead of four consecutive blocks
            blocks = [z[:, k::4] for k in range(4)]
        else:
            blocks = jnp.split(z, 4, axis=-1)
        parts = dict(zip(order, blocks, strict=True))
        i, f, g, o = (fns[a](parts[n]) for a, n in zip(acts[:4], "ifgo", strict=True))
        if g_fn != "tanh":
            g = jax.nn.sigmoid(parts["g"])
        c_new = (f * c if use_f else c) + (i * g if use_i else g)
        if coupled:
            c_new = f * c + (1.0 - f) * g
        cell = c_new if h_from == "new" else c
        h_new = o * (fns[acts[4]](cell) if squash_h else cell)
        if h_twice:
            return h_new, h_new
        return (c_new, h_new) if swap_out else (h_new, c_new)

    return step


_GATE_NAMES = {"i": "the input gate i", "f": "the forget gate f", "g": "the candidate g",
               "o": "the output gate o", "c": "the cell in h = o * tanh(c_new)"}


def _activation_mistakes() -> tuple[Mistake, ...]:
    """Every mix-up of sigmoid and tanh among i, f, g, o and the cell (g alone has its own)."""
    mistakes = []
    for acts in itertools.product("st", repeat=5):
        acts = "".join(acts)
        wrong = [n for n, a, r in zip("ifgoc", acts, "sstst", strict=True) if a != r]
        if not wrong or wrong == ["g"]:
            continue
        names = [_GATE_NAMES[n] for n in wrong]
        listed = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
        mistakes.append(Mistake(
            f"sigmoid and tanh are mixed up for {listed}: the gates i, f, o take the sigmoid "
            "(a share between 0 and 1); g and the cell in h take tanh (between -1 and 1).",
            _lstm_variant(acts=acts)))
    return tuple(mistakes)


def _order_mistakes() -> tuple[Mistake, ...]:
    """Every order of the four parts of z but the right one (i, f and g, o have their own)."""
    return tuple(
        Mistake(f"the four parts of z are read in the order {', '.join(order)}; they come in "
                "the order i, f, g, o (input gate, forget gate, candidate, output gate), each "
                "H columns wide.", _lstm_variant(order="".join(order)))
        for order in itertools.permutations("ifgo")
        if "".join(order) not in ("ifgo", "figo", "ifog")
    )


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
    Mistake("h_new is returned twice; the second value is the new cell state c_new = "
            "f * c + i * g.", _lstm_variant(h_twice=True)),
    Mistake("the previous hidden state is missing: z = x @ W_x + h @ W_h + b; h @ W_h is how "
            "the step sees what it has read before.", _lstm_variant(use_h=False)),
    Mistake("the input gate was replaced by 1 - f (as in a GRU); an LSTM has its own input "
            "gate i, the first H columns of z: c_new = f * c + i * g.",
            _lstm_variant(coupled=True)),
    Mistake("z was split by taking every fourth column (z[:, 0::4], ...); the four parts are "
            "consecutive blocks of H columns: jnp.split(z, 4, axis=-1).",
            _lstm_variant(strided=True)),
    Mistake(_ELMAN_HINT, _elman_variant("c")),
    Mistake(_ELMAN_HINT, _elman_variant("h")),
    *_order_mistakes(),
    *_activation_mistakes(),
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
#: each other, or (weights, context) returned in the wrong order, show up as shapes; S = 7 is no
#: product of the others, so that a context divided by S is named as a mean over S.
_ADD_B, _ADD_S, _ADD_DQ, _ADD_DK, _ADD_DA = 3, 7, 2, 4, 5


def _additive_attention_inputs(key: jax.Array):
    """query ``(3, 2)``, keys ``(3, 7, 4)``, a padding mask ``(3, 7)`` (row b True for its
    first ``length_b`` positions, lengths from 1 to 7, one row always full and one short),
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
                      normalise=True, tanh_outside=False, scale=False, mean=False,
                      dot=None) -> Callable:
    """An additive attention that makes one chosen mistake (for :class:`Mistake`).

    ``dot`` replaces the additive score by a dot product of the projections (q W_a)·(k U_a):
    ``"plain"``, or ``"scaled"`` by 1/sqrt(d_a)."""
    from attnlab.attention import masked_softmax

    def attention(query, keys, mask, W_a, U_a, v_a):
        hidden = (query @ W_a)[:, None, :] + keys @ U_a  # (B, S, d_a)
        hidden = jnp.tanh(hidden) if squash and not tanh_outside else hidden
        scores = hidden @ v_a if use_v else hidden.sum(-1)
        if dot is not None:
            scores = jnp.einsum("ba,bsa->bs", query @ W_a, keys @ U_a)
            scores = scores / math.sqrt(W_a.shape[-1]) if dot == "scaled" else scores
        scores = jnp.tanh(scores) if tanh_outside else scores
        scores = scores / math.sqrt(keys.shape[-1]) if scale else scores
        if not normalise:
            weights = jnp.where(mask, scores, 0.0)
        elif mask_mode == "before":
            weights = masked_softmax(scores, mask, axis=axis)
        elif mask_mode == "inverted":
            weights = masked_softmax(scores, ~mask, axis=axis)
        elif mask_mode == "after":
            weights = jax.nn.softmax(scores, axis=axis) * mask
        elif mask_mode == "zero":
            weights = jax.nn.softmax(jnp.where(mask, scores, 0.0), axis=axis)
        else:  # "ignored"
            weights = jax.nn.softmax(scores, axis=axis)
        context = jnp.einsum("bs,bsd->bd", weights, keys)
        return (context / keys.shape[1] if mean else context), weights

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
    Mistake("the padding scores were set to 0 before the softmax, but e^0 = 1, so padding "
            "still gets weight; set them to -inf (jnp.where(mask, scores, -jnp.inf)).",
            _additive_variant(mask_mode="zero")),
    Mistake("tanh was applied to the score after v_a; it belongs inside: "
            "score = v_a · tanh(q W_a + k U_a).", _additive_variant(tanh_outside=True)),
    Mistake("the scores were divided by sqrt(d_k); additive attention has no scaling (the "
            "1/sqrt(d) belongs to the dot-product score of notebook 04).",
            _additive_variant(scale=True)),
    Mistake("the context was divided by S (a mean over positions); the weights already sum "
            "to 1, so the context is their weighted sum, (weights[:, :, None] * keys).sum(1).",
            _additive_variant(mean=True)),
    *(Mistake("this is a dot-product score, (q W_a) · (k U_a); additive attention adds the two "
              "projections and scores the sum with a small network: "
              "score = v_a · tanh(q W_a + k U_a).", _additive_variant(dot=kind))
      for kind in ("plain", "scaled")),
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
