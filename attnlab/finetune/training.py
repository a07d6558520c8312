"""What the fine-tuning methods share (notebook 09): the masked next-token loss, the compiled
fine-tuning step, a GPT's hidden states (the input of a task head) and the reader of the
course's small TSV datasets under ``attnlab/datasets/``.
"""

from __future__ import annotations

import csv
import functools
from importlib import resources

import jax
import jax.numpy as jnp
import optax
from flax import nnx

from attnlab.attention import causal_mask
from attnlab.gpt import GPT

__all__ = ["finetune_step", "hidden_states", "masked_cross_entropy"]


def masked_cross_entropy(logits: jax.Array, targets: jax.Array, mask: jax.Array | None = None
                         ) -> jax.Array:
    """Mean next-token cross-entropy (nats) over the positions where ``mask`` is 1.

    Args:
      logits: ``(B, T, V)`` float.
      targets: ``(B, T)`` int ids.
      mask: ``(B, T)`` 0/1 (or bool) weights; ``None`` counts every position. Prompt positions
        carry 0, so only completion tokens are learned.

    Returns:
      float32 scalar: ``sum(mask · loss) / max(sum(mask), 1)`` (0 when the mask is all 0).
    """
    losses = optax.softmax_cross_entropy_with_integer_labels(logits.astype(jnp.float32), targets)
    if mask is None:
        return losses.mean()
    mask = jnp.asarray(mask, jnp.float32)
    return (losses * mask).sum() / jnp.maximum(mask.sum(), 1.0)


@functools.partial(nnx.jit, static_argnames="wrt")
def _finetune_step(model, optimizer, x, y, mask, wrt):
    def loss_fn(model):
        return masked_cross_entropy(model(x, deterministic=False), y, mask)

    loss, grads = nnx.value_and_grad(loss_fn, argnums=nnx.DiffState(0, wrt))(model)
    optimizer.update(model, grads)
    return loss


def finetune_step(model: nnx.Module, optimizer: nnx.Optimizer, x: jax.Array, y: jax.Array,
                  mask: jax.Array | None = None) -> jax.Array:
    """One compiled step of next-token training with gradients for the optimizer's parameters only.

    Args:
      model: a :class:`~attnlab.gpt.GPT` (possibly with LoRA adapters), updated in place.
      optimizer: from :func:`make_finetune_optimizer` for this model.
      x, y: ``(B, T)`` int inputs and targets.
      mask: optional ``(B, T)`` loss weights (see :func:`masked_cross_entropy`).

    Returns:
      the batch's masked loss before the update (float32 scalar).
    """
    if mask is None:
        mask = jnp.ones(jnp.shape(y), jnp.float32)
    return _finetune_step(model, optimizer, x, y, mask, optimizer.wrt)


def hidden_states(model: GPT, tokens: jax.Array, *, deterministic: bool = True) -> jax.Array:
    """The GPT's last hidden states, after the final LayerNorm: ``(B, T, D)``.

    The same computation as :meth:`attnlab.gpt.GPT.__call__` without the output layer
    (``logits = hidden_states · Eᵀ``).
    """
    T = tokens.shape[1]
    x = model.token_embedding(tokens) + model.position_embedding(jnp.arange(T))[None]
    x = model.dropout(x, deterministic=deterministic)
    mask = causal_mask(T)
    for block in model.blocks:
        x, _ = block(x, mask, deterministic=deterministic)
    return model.ln_f(x)


def _read_tsv(name: str) -> list[list[str]]:
    path = resources.files("attnlab") / "datasets" / name
    with path.open(encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [r for r in rows[1:] if r]  # first row: the column names
