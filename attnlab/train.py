"""Training a GPT by next-token prediction: loss, one compiled train step, the loop, evaluation.

The objective needs no labels: at every position of a window of text, the target is simply the
next character. One forward pass scores all T positions of all B windows in parallel, so a
single step learns from B·T predictions.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from tqdm.auto import tqdm

from attnlab.data import Splits, get_batch
from attnlab.gpt import GPT

__all__ = [
    "History",
    "TrainConfig",
    "cross_entropy",
    "evaluate",
    "make_optimizer",
    "train",
    "train_step",
]


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How to train.

    Attributes:
      steps: number of optimizer steps (≥ 1).
      batch_size: windows per step B (≥ 1).
      learning_rate: peak learning rate, reached after ``warmup_steps`` (> 0).
      warmup_steps: linear warm-up from 0 (≥ 0, < steps).
      min_lr_ratio: the cosine decay ends at ``learning_rate * min_lr_ratio`` (in [0, 1]).
      weight_decay: AdamW decoupled weight decay on matrices (biases and LayerNorms excluded).
      beta1, beta2: Adam's moment decay rates.
      grad_clip: clip the global gradient norm to this (> 0).
      eval_interval: validate every this many steps, and at the end (≥ 1).
    """

    steps: int = 2000
    batch_size: int = 16
    learning_rate: float = 3e-3
    warmup_steps: int = 100
    min_lr_ratio: float = 0.1
    weight_decay: float = 0.1
    beta1: float = 0.9
    beta2: float = 0.99
    grad_clip: float = 1.0
    eval_interval: int = 250

    def __post_init__(self):
        for name in ("steps", "batch_size", "eval_interval"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1; got {getattr(self, name)}.")
        if not self.learning_rate > 0:
            raise ValueError(f"learning_rate must be > 0; got {self.learning_rate}.")
        if not 0 <= self.warmup_steps < self.steps:
            raise ValueError(
                f"warmup_steps must be in [0, steps={self.steps}); got {self.warmup_steps}."
            )
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"min_lr_ratio must be in [0, 1]; got {self.min_lr_ratio}.")
        if not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be > 0; got {self.grad_clip}.")


@dataclasses.dataclass
class History:
    """What happened during training; losses in nats per token."""

    steps: list[int] = dataclasses.field(default_factory=list)
    train_loss: list[float] = dataclasses.field(default_factory=list)
    val_steps: list[int] = dataclasses.field(default_factory=list)
    val_loss: list[float] = dataclasses.field(default_factory=list)
    learning_rate: list[float] = dataclasses.field(default_factory=list)
    elapsed_s: float = 0.0
    tokens_seen: int = 0

    def to_dict(self) -> dict:
        """Plain dict (JSON-ready)."""
        return dataclasses.asdict(self)


def cross_entropy(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """Mean cross-entropy (nats) of ``(..., V)`` logits against ``(...)`` int targets."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()


def make_schedule(config: TrainConfig) -> optax.Schedule:
    """Linear warm-up to ``learning_rate``, then cosine decay to ``learning_rate·min_lr_ratio``."""
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=config.learning_rate,
        warmup_steps=config.warmup_steps,
        decay_steps=config.steps,
        end_value=config.learning_rate * config.min_lr_ratio,
    )


def make_optimizer(model: GPT, config: TrainConfig) -> nnx.Optimizer:
    """AdamW (Loshchilov & Hutter 2019) with global-norm clipping and the warm-up/cosine schedule.

    Weight decay applies to matrices only (ndim ≥ 2: projections and embeddings).
    """
    tx = optax.chain(
        optax.clip_by_global_norm(config.grad_clip),
        optax.adamw(
            make_schedule(config),
            b1=config.beta1,
            b2=config.beta2,
            weight_decay=config.weight_decay,
            mask=lambda params: jax.tree.map(lambda p: p.ndim >= 2, params),
        ),
    )
    return nnx.Optimizer(model, tx, wrt=nnx.Param)


@nnx.jit
def train_step(
    model: GPT, optimizer: nnx.Optimizer, x: jax.Array, y: jax.Array
) -> jax.Array:
    """One compiled step: loss and gradients for a batch, then an AdamW update in place.

    Args:
      x, y: ``(B, T)`` int inputs and next-token targets.

    Returns:
      The batch's mean loss before the update (float32 scalar).
    """

    def loss_fn(model):
        return cross_entropy(model(x, deterministic=False), y)

    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return loss


@nnx.jit
def _eval_sums(model: GPT, x: jax.Array, y: jax.Array, weight: jax.Array):
    losses = optax.softmax_cross_entropy_with_integer_labels(model(x), y)  # (B, T)
    return (losses * weight[:, None]).sum(), weight.sum() * x.shape[1]


def evaluate(
    model: GPT, ids: np.ndarray, *, context_length: int | None = None, batch_size: int = 32
) -> float:
    """Mean next-token loss (nats/token) over all of ``ids``, deterministically.

    The ids are cut into consecutive, non-overlapping windows of ``context_length`` tokens
    (the model's context window by default); every position of every window is scored. The
    final partial window is dropped. The same model and ids always give the same number.

    Raises:
      ValueError: if ``ids`` holds fewer than ``context_length + 1`` tokens.
    """
    C = context_length or model.config.context_length
    ids = np.asarray(ids, dtype=np.int32)
    n = (len(ids) - 1) // C
    if n < 1:
        raise ValueError(f"ids has {len(ids)} tokens; evaluate needs at least {C + 1}.")
    x = ids[: n * C].reshape(n, C)
    y = ids[1 : n * C + 1].reshape(n, C)
    pad = (-n) % batch_size  # pad to whole batches so one compiled shape serves every batch
    weight = np.concatenate([np.ones(n, np.float32), np.zeros(pad, np.float32)])
    x = np.concatenate([x, np.zeros((pad, C), np.int32)])
    y = np.concatenate([y, np.zeros((pad, C), np.int32)])
    total, count = 0.0, 0.0
    for i in range(0, len(x), batch_size):
        s, c = _eval_sums(model, x[i : i + batch_size], y[i : i + batch_size], weight[i : i + batch_size])
        total += float(s)
        count += float(c)
    return total / count


def train(
    model: GPT,
    data: Splits,
    config: TrainConfig,
    *,
    key: jax.Array,
    callback: Callable[[int, History, GPT], None] | None = None,
    progress: bool = True,
) -> History:
    """Train ``model`` in place on ``data.train``, validating on ``data.val``.

    Args:
      model: the GPT to train (updated in place).
      data: token-id :class:`~attnlab.data.Splits`.
      config: a :class:`TrainConfig`.
      key: ``jax.random`` key for batch sampling; step i uses ``fold_in(key, i)``, so the same
        key (and model initialisation) gives the same losses.
      callback: called as ``callback(step, history, model)`` after each validation (at step 0,
        before training, then every ``eval_interval`` steps and at the end), e.g. to print a
        text sample.
      progress: show a ``tqdm.auto`` progress bar with the running loss.

    Returns:
      The :class:`History` (per-step training loss, validation losses, learning rates, time).
    """
    C = model.config.context_length
    optimizer = make_optimizer(model, config)
    schedule = make_schedule(config)
    train_ids = jnp.asarray(data.train)
    history = History()
    pending: list[jax.Array] = []  # losses not yet copied to the host (avoids a sync per step)
    start = time.perf_counter()
    # Validate once before the first step, so curves and callbacks start from the untrained model.
    history.val_steps.append(0)
    history.val_loss.append(evaluate(model, data.val))
    if callback is not None:
        callback(0, history, model)
    bar = tqdm(total=config.steps, desc="training", disable=not progress, unit="step")
    for step in range(1, config.steps + 1):
        x, y = get_batch(train_ids, config.batch_size, C, jax.random.fold_in(key, step))
        pending.append(train_step(model, optimizer, x, y))
        if step % 10 == 0 or step % config.eval_interval == 0 or step == config.steps:
            losses = np.asarray(jax.device_get(jnp.stack(pending)), dtype=float).tolist()
            first = step - len(losses) + 1
            history.steps.extend(range(first, step + 1))
            history.train_loss.extend(losses)
            history.learning_rate.extend(np.asarray(schedule(np.arange(first - 1, step))).tolist())
            pending.clear()
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
            bar.update(len(losses))
            if not all(math.isfinite(v) for v in losses):
                bar.close()
                raise FloatingPointError(
                    f"training loss became {losses[-1]} at step {step}; "
                    "lower the learning_rate or grad_clip."
                )
        if step % config.eval_interval == 0 or step == config.steps:
            history.val_steps.append(step)
            history.val_loss.append(evaluate(model, data.val))
            bar.set_postfix(loss=f"{history.train_loss[-1]:.3f}", val=f"{history.val_loss[-1]:.3f}")
            if callback is not None:
                callback(step, history, model)
    bar.close()
    history.elapsed_s = time.perf_counter() - start
    history.tokens_seen = config.steps * config.batch_size * C
    return history


# --- loss position by position (notebook 05) --------------------------------------------------

__all__ += ["per_position_loss"]


@nnx.jit
def _position_sums(model: GPT, x: jax.Array, y: jax.Array, weight: jax.Array) -> jax.Array:
    losses = optax.softmax_cross_entropy_with_integer_labels(model(x), y)  # (B, T)
    return (losses * weight[:, None]).sum(axis=0)  # (T,)


def per_position_loss(
    model: GPT, ids: np.ndarray, *, context_length: int | None = None, batch_size: int = 32
) -> np.ndarray:
    """Mean next-token loss (nats/token) at each position of the window, over all of ``ids``.

    The windows are those of :func:`evaluate` (consecutive, non-overlapping, the last partial
    one dropped), so ``per_position_loss(...).mean()`` equals ``evaluate(...)``. Position t's
    loss is that of predicting token t+1 of a window from its tokens 0..t: early positions have
    little context, later ones more.

    Args:
      model: a :class:`GPT`.
      ids: ``(N,)`` int token ids.
      context_length: window length T (default and maximum: the model's context window).
      batch_size: windows per compiled call.

    Returns:
      ``(T,)`` float64 NumPy array, nats per token at positions 0..T-1.

    Raises:
      ValueError: if ``ids`` holds fewer than ``T + 1`` tokens.
    """
    T = context_length or model.config.context_length
    ids = np.asarray(ids, dtype=np.int32)
    n = (len(ids) - 1) // T
    if n < 1:
        raise ValueError(f"ids has {len(ids)} tokens; per_position_loss needs at least {T + 1}.")
    x = ids[: n * T].reshape(n, T)
    y = ids[1 : n * T + 1].reshape(n, T)
    pad = (-n) % batch_size  # whole batches: one compiled shape
    weight = np.concatenate([np.ones(n, np.float32), np.zeros(pad, np.float32)])
    x = np.concatenate([x, np.zeros((pad, T), np.int32)])
    y = np.concatenate([y, np.zeros((pad, T), np.int32)])
    total = np.zeros(T, np.float64)
    for i in range(0, len(x), batch_size):
        s = slice(i, i + batch_size)
        total += np.asarray(_position_sums(model, x[s], y[s], weight[s]), np.float64)
    return total / n
