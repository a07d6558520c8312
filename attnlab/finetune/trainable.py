"""Choosing what trains (notebook 09, sections 1 and 2, and every later optimizer).

A filter picks the parameters that train: ``nnx.Param`` (everything), :func:`top_blocks` (the
top decoder blocks), or a parameter type such as
:class:`~attnlab.finetune.lora.LoRAParam`; :func:`make_finetune_optimizer` builds an optimizer
that updates only those, and :func:`count_params` counts them.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

import jax
import optax
from flax import nnx

from attnlab.train import TrainConfig, make_schedule

__all__ = ["count_params", "make_finetune_optimizer", "top_blocks"]


Filter = Any  # an nnx filter: a Variable type, nnx.PathContains, nnx.All, a (path, value) callable


def _selected(model: nnx.Module, wrt: Filter) -> list:
    """The parameter arrays of ``model`` that ``nnx.All(nnx.Param, wrt)`` selects."""
    return jax.tree.leaves(nnx.state(model, nnx.All(nnx.Param, wrt)))


def count_params(model: nnx.Module, wrt: Filter = nnx.Param) -> int:
    """Number of trainable scalars of ``model`` that the filter ``wrt`` selects.

    Args:
      model: any nnx module (a GPT, a classifier, a model with LoRA adapters).
      wrt: an nnx filter; only ``nnx.Param`` variables (and subclasses such as
        :class:`LoRAParam`) are counted.

    Returns:
      an int (0 if nothing matches).
    """
    return int(sum(p.size for p in _selected(model, wrt)))


def top_blocks(n: int, n_layers: int, *, final_norm: bool = True) -> Callable:
    """A filter for the top ``n`` decoder blocks of a GPT (and its final LayerNorm ``ln_f``).

    Args:
      n: how many blocks, counted from the top, in ``[0, n_layers]``.
      n_layers: the model's number of blocks.
      final_norm: also select ``ln_f`` (and any classifier head, whose path contains ``head``).

    Returns:
      a ``(path, value) -> bool`` nnx filter.

    Raises:
      ValueError: if ``n`` is outside ``[0, n_layers]``.
    """
    if not 0 <= n <= n_layers:
        raise ValueError(f"n must be in [0, n_layers={n_layers}]; got {n}.")
    first = n_layers - n

    def selects(path, value) -> bool:
        path = tuple(path)
        for i, part in enumerate(path[:-1]):
            if part == "blocks" and isinstance(path[i + 1], int):
                return path[i + 1] >= first
        return final_norm and ("ln_f" in path or "head" in path)

    return selects


def make_finetune_optimizer(
    model: nnx.Module, config: TrainConfig, wrt: Filter = nnx.Param
) -> nnx.Optimizer:
    """AdamW with clipping and warm-up/cosine schedule (as :func:`attnlab.train.make_optimizer`),
    updating ONLY the parameters that ``wrt`` selects.

    The optimizer is built with ``nnx.Optimizer(model, tx, wrt=nnx.All(nnx.Param, wrt))``: the
    parameters outside the filter get no state and no update at all, so they stay bit-identical
    even with weight decay > 0. (Masking only the decay would not freeze them: Adam would still
    move them along their gradients.) Decay applies to the selected matrices (ndim ≥ 2).

    Args:
      model: the model to fine-tune.
      config: learning rate, schedule, decay, clipping (``steps`` sets the schedule's length).
      wrt: an nnx filter for the trainable parameters, e.g. ``nnx.Param`` (everything),
        :func:`top_blocks`, :class:`LoRAParam`, ``nnx.PathContains("head")``.

    Returns:
      an ``nnx.Optimizer`` whose ``wrt`` is the combined filter; pass it to
      :func:`finetune_step` or :func:`classify_step`.

    Raises:
      ValueError: if the filter selects no parameter ("nothing to train").
    """
    full = nnx.All(nnx.Param, wrt)
    if count_params(model, wrt) == 0:
        names = sorted({"/".join(map(str, p)) for p, _ in nnx.to_flat_state(nnx.state(model, nnx.Param))})
        raise ValueError(
            f"wrt={wrt!r} selects no parameter of the model: nothing to train. Parameter paths "
            f"look like {names[:3]} ..."
        )
    tx = _make_tx(config)
    return nnx.Optimizer(model, tx, wrt=full)


@functools.lru_cache(maxsize=32)
def _make_tx(config: TrainConfig) -> optax.GradientTransformation:
    """The optax chain for ``config``, one object per config: optimizers built from equal
    configs then share it, so a compiled step can be reused instead of compiled again."""
    return optax.chain(
        optax.clip_by_global_norm(config.grad_clip),
        optax.adamw(make_schedule(config), b1=config.beta1, b2=config.beta2,
                    weight_decay=config.weight_decay,
                    mask=lambda params: jax.tree.map(lambda p: p.ndim >= 2, params)),
    )
