"""LoRA, low-rank adapters (notebook 09, sections 4 and 5; the section 8 exercise checks a
learner's forward pass against :class:`LoRALinear`): add them to a GPT's attention
projections, train them alone, merge them into the kernels.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from attnlab.finetune.heads import SequenceClassifier, TokenClassifier
from attnlab.gpt import GPT

__all__ = ["LORA_TARGETS", "LoRALinear", "LoRAParam", "add_lora", "merge_lora"]


class LoRAParam(nnx.Param):
    """The type of LoRA's ``A`` and ``B`` arrays, so a filter can select adapters alone."""


#: The attention projections :func:`add_lora` adapts by default.
LORA_TARGETS: tuple[str, ...] = ("W_q", "W_k", "W_v", "W_o")


class LoRALinear(nnx.Module):
    """``y = x @ W + b + (alpha / rank) · (x @ A) @ B``: a linear layer with a low-rank adapter.

    ``W`` (in, out) and ``b`` are the wrapped layer's; ``A`` (in, rank) starts
    normal(0, 1/sqrt(in)) and ``B`` (rank, out) starts at 0, so at first the layer computes
    exactly what the base layer did. Only ``A`` and ``B`` are :class:`LoRAParam`; train them
    with ``wrt=LoRAParam``: ``rank · (in + out)`` numbers instead of ``in · out``.

    Args:
      base: the ``nnx.Linear`` to adapt (kept, not copied).
      rank: r, in ``[1, min(in, out)]``.
      alpha: the scale numerator; the update is multiplied by ``alpha / rank``.
      rngs: draws ``A``.

    Raises:
      TypeError: if ``base`` is not an ``nnx.Linear``.
      ValueError: if ``rank`` is out of range or ``alpha`` is not > 0.

    Source: Hu et al. 2021, "LoRA", §4.1 (B = 0 at init, scale alpha / r).
    """

    def __init__(self, base: nnx.Linear, rank: int, alpha: float, *, rngs: nnx.Rngs):
        if not isinstance(base, nnx.Linear):
            raise TypeError(f"base must be an nnx.Linear; got {type(base).__name__}.")
        d_in, d_out = base.kernel[...].shape
        _check_rank(rank, d_in, d_out)
        if not (isinstance(alpha, (int, float)) and math.isfinite(alpha) and alpha > 0):
            raise ValueError(f"alpha must be a finite number > 0; got {alpha!r}.")
        self.base = base
        self.rank = int(rank)
        self.alpha = float(alpha)
        self.lora_a = LoRAParam(
            jax.random.normal(rngs.params(), (d_in, rank), jnp.float32) / math.sqrt(d_in))
        self.lora_b = LoRAParam(jnp.zeros((rank, d_out), jnp.float32))

    @property
    def scale(self) -> float:
        """``alpha / rank``."""
        return self.alpha / self.rank

    def delta(self) -> jax.Array:
        """The adapter's change to the kernel, ``scale · A @ B``, shape (in, out)."""
        return self.scale * (self.lora_a[...] @ self.lora_b[...])

    def __call__(self, x: jax.Array) -> jax.Array:
        return self.base(x) + self.scale * ((x @ self.lora_a[...]) @ self.lora_b[...])


def _check_rank(rank, d_in, d_out):
    if isinstance(rank, bool) or not isinstance(rank, (int, np.integer)):
        raise TypeError(f"rank must be an int; got {type(rank).__name__}.")
    if not 1 <= rank <= min(d_in, d_out):
        raise ValueError(
            f"rank must be in [1, min(in, out) = {min(d_in, d_out)}] for a {d_in}x{d_out} "
            f"layer; got {rank}. A rank above the layer width adds numbers without adding "
            "any direction the full matrix could not already take.")


def _attention_layers(model: nnx.Module):
    """Yield ``(attention module, block index)`` for every block of a GPT (or a classifier's body)."""
    gpt = model.body if isinstance(model, (SequenceClassifier, TokenClassifier)) else model
    if not isinstance(gpt, GPT):
        raise TypeError(f"model must be a GPT or a classifier on one; got {type(model).__name__}.")
    for i, block in enumerate(gpt.blocks):
        yield block.attention, i


def add_lora(model: nnx.Module, rank: int, alpha: float | None = None, *,
             targets: Sequence[str] = LORA_TARGETS, seed: int = 0) -> nnx.Module:
    """Wrap the attention projections of every block in :class:`LoRALinear`, in place.

    Args:
      model: a :class:`~attnlab.gpt.GPT` or a classifier on one.
      rank: r ≥ 1, at most the layer width (d_model).
      alpha: the scale numerator (default: ``rank``, so the scale is 1).
      targets: which of ``W_q, W_k, W_v, W_o`` to adapt.
      seed: seeds ``A``.

    Returns:
      ``model`` (modified in place); its outputs are unchanged until ``B`` is trained.
      Adapter parameters: ``n_layers · len(targets) · rank · 2 · d_model``.

    Raises:
      ValueError: for a bad rank, alpha or target name; TypeError for a non-GPT model.
    """
    unknown = [t for t in targets if t not in LORA_TARGETS]
    if unknown or not targets:
        raise ValueError(f"targets must be a non-empty subset of {LORA_TARGETS}; got {targets!r}.")
    rngs = nnx.Rngs(params=seed)
    alpha = rank if alpha is None else alpha
    for attention, _ in _attention_layers(model):
        for name in targets:
            layer = getattr(attention, name)
            if isinstance(layer, LoRALinear):
                raise ValueError(f"{name} already has a LoRA adapter; merge_lora first.")
            setattr(attention, name, LoRALinear(layer, rank, alpha, rngs=rngs))
    return model


def merge_lora(model: nnx.Module) -> nnx.Module:
    """A copy of ``model`` with every adapter folded into its base kernel: ``W ← W + scale·A@B``.

    The copy has plain ``nnx.Linear`` layers again (no extra cost at inference) and computes
    the same outputs as ``model`` up to float rounding.

    Raises:
      ValueError: if ``model`` has no LoRA adapter.
    """
    merged = nnx.clone(model)
    found = 0
    for attention, _ in _attention_layers(merged):
        for name in LORA_TARGETS:
            layer = getattr(attention, name)
            if isinstance(layer, LoRALinear):
                layer.base.kernel[...] = layer.base.kernel[...] + layer.delta()
                setattr(attention, name, layer.base)
                found += 1
    if not found:
        raise ValueError("model has no LoRA adapter to merge; call add_lora first.")
    return merged
