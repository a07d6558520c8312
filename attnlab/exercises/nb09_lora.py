"""Notebook 09's exercise (``lora_forward``): a LoRA layer's forward pass.

The learner computes ``x @ W + b + (alpha / r) * x @ A @ B`` from a frozen layer ``W, b`` and
the adapters ``A (d_in, r)``, ``B (r, d_out)``; the reference is the package's
:class:`attnlab.finetune.LoRALinear`.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np

from attnlab.exercises._core import Exercise, Mistake, _same

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


LORA_FORWARD = Exercise(
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

#: This notebook's exercises, for :data:`attnlab.exercises.EXERCISES`.
NOTEBOOK_EXERCISES: tuple[Exercise, ...] = (LORA_FORWARD,)
