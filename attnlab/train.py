"""Training a GPT by next-token prediction: loss, one compiled train step, the loop, evaluation.

The objective needs no labels: at every position of a window of text, the target is simply the
next character. One forward pass scores all T positions of all B windows in parallel, so a
single step learns from B·T predictions.

On more than one device (``train(..., mesh=...)``) the same compiled step runs data-parallel:
each device holds a full copy of the weights and optimizer state and scores its slice of the
batch; JAX's compiler inserts the all-reduce that averages the gradients.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx
from tqdm.auto import tqdm

from attnlab.data import Splits, get_batch
from attnlab.gpt import GPT

if TYPE_CHECKING:  # attnlab.checkpoint imports this module; only type checkers need the name
    from attnlab.checkpoint import TrainState

__all__ = [
    "STEPS_PER_CALL",
    "History",
    "TrainConfig",
    "cross_entropy",
    "data_parallel_mesh",
    "evaluate",
    "make_optimizer",
    "make_schedule",
    "train",
    "train_step",
    "train_steps",
]


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How to train.

    Attributes:
      steps: number of optimizer steps, i.e. where :func:`train` stops (≥ 1).
      batch_size: windows per step B (≥ 1).
      learning_rate: peak learning rate, reached on update ``warmup_steps`` (> 0).
      warmup_steps: updates of linear warm-up (≥ 0, shorter than the schedule); see
        :func:`make_schedule`.
      decay_steps: length of the learning-rate schedule in updates, warm-up included (≥ 1):
        the cosine reaches its floor on the schedule's last update and stays there after it.
        ``None`` (the default) means ``steps``. Give it when a run may stop before the end of
        its schedule or be resumed with a new ``steps``: the rate of every update then depends
        only on the update's number, never on where the run stops.
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
    decay_steps: int | None = None
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
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(f"learning_rate must be a finite number > 0; got {self.learning_rate}.")
        if self.decay_steps is not None and self.decay_steps < 1:
            raise ValueError(f"decay_steps must be None or >= 1; got {self.decay_steps}.")
        length, name = self.schedule_steps, "steps" if self.decay_steps is None else "decay_steps"
        if not 0 <= self.warmup_steps < length:
            raise ValueError(
                f"warmup_steps must be in [0, {name}={length}); got {self.warmup_steps}."
            )
        if not 0.0 <= self.min_lr_ratio <= 1.0:
            raise ValueError(f"min_lr_ratio must be in [0, 1]; got {self.min_lr_ratio}.")
        if not self.grad_clip > 0:
            raise ValueError(f"grad_clip must be > 0; got {self.grad_clip}.")

    @property
    def schedule_steps(self) -> int:
        """Length of the learning-rate schedule: ``decay_steps``, or ``steps`` when it is None."""
        return self.steps if self.decay_steps is None else self.decay_steps


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

    @classmethod
    def from_dict(cls, fields: dict) -> History:
        """The inverse of :meth:`to_dict`.

        Raises:
          ValueError: for a field that :class:`History` does not have.
        """
        unknown = sorted(set(fields) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"History has no fields {unknown}.")
        return cls(**fields)


def cross_entropy(logits: jax.Array, targets: jax.Array) -> jax.Array:
    """Mean cross-entropy (nats) of ``(..., V)`` logits against ``(...)`` int targets."""
    return optax.softmax_cross_entropy_with_integer_labels(logits, targets).mean()


def make_schedule(config: TrainConfig) -> optax.Schedule:
    """The learning rate of each update: linear warm-up, then cosine decay to a floor.

    With peak η = ``learning_rate``, W = ``warmup_steps``, N = ``config.schedule_steps`` and
    floor η_min = ``learning_rate · min_lr_ratio``, update i (counted from 0, the number optax
    passes to the schedule) uses

    - ``η · (i + 1) / W`` for i < W: the first update already moves the weights (η/W), and
      update W - 1 is the first at the peak;
    - ``η_min + (η - η_min) · (1 + cos(π · (i + 1 - W) / (N - W))) / 2`` for W ≤ i < N: a
      half cosine from the peak down to the floor, reached on the last update i = N - 1;
    - ``η_min`` for i ≥ N (a run that goes on past its schedule).

    That is optax's ``warmup_cosine_decay_schedule`` (warm-up from 0) read one update ahead,
    so that no update gets a rate of 0. Warm-up as in Goyal et al. 2017, "Accurate, Large
    Minibatch SGD"; cosine decay as in Loshchilov & Hutter 2017, "SGDR".

    Returns:
      A function from the update number (an int or int array, 0-based) to the rate (float32).
    """
    curve = optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=config.learning_rate,
        warmup_steps=config.warmup_steps,
        decay_steps=config.schedule_steps,
        end_value=config.learning_rate * config.min_lr_ratio,
    )
    return lambda count: curve(count + 1)


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


#: How many optimizer steps :func:`train` runs in one compiled call (:func:`train_steps`) at most.
STEPS_PER_CALL = 10


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
def train_steps(
    model: GPT, optimizer: nnx.Optimizer, xs: jax.Array, ys: jax.Array
) -> jax.Array:
    """K optimizer steps in one compiled call: :func:`train_step` for each of K batches in turn.

    The K steps run inside the compiled program (``jax.lax.scan`` over the leading axis), so
    what each call costs besides the arithmetic is paid once per K steps: the dispatch from
    Python and, on a CPU above all, the working memory of the call (about 150 MiB for the
    ``default`` preset), which the C library hands back to the system after each call and which
    the kernel must zero again, page by page, for the next. The math of each step is
    :func:`train_step`'s; the losses agree with K separate calls to float rounding. :func:`train`
    runs its steps this way, in blocks of up to :data:`STEPS_PER_CALL`. On 2 CPU cores 10 steps
    per call trained the ``default`` preset 1.7x as fast as one call per step, with a tenth of
    the page faults (``benchmarks/NOTES.md``, ``bench_train.py``). Each new K compiles once.

    Args:
      xs, ys: ``(K, B, T)`` int inputs and next-token targets, K ≥ 1.

    Returns:
      ``(K,)`` float32, each batch's mean loss before its update.

    Raises:
      ValueError: if ``xs`` and ``ys`` are not 3-D arrays of the same shape.
    """
    if xs.ndim != 3 or xs.shape != ys.shape:
        raise ValueError(f"xs and ys must both be (K, B, T); got {xs.shape} and {ys.shape}.")
    graphdef, state = nnx.split((model, optimizer))

    def one_step(state, batch):
        model, optimizer = nnx.merge(graphdef, state)
        x, y = batch
        loss, grads = nnx.value_and_grad(
            lambda model: cross_entropy(model(x, deterministic=False), y))(model)
        optimizer.update(model, grads)
        return nnx.state((model, optimizer)), loss

    state, losses = jax.lax.scan(one_step, state, (xs, ys))
    nnx.update((model, optimizer), state)
    return losses


def _windows(ids, C: int, batch_size: int, caller: str):
    """``ids`` cut into consecutive windows of ``C`` tokens, padded to whole batches.

    Returns ``(x, y, weight)``: ``(n + pad, C)`` int32 inputs and next-token targets, and
    ``(n + pad,)`` float32 weights, 1 for the n real windows and 0 for the padding (one compiled
    shape then serves every batch). The final partial window is dropped.
    """
    ids = np.asarray(ids, dtype=np.int32)
    n = (len(ids) - 1) // C
    if n < 1:
        raise ValueError(f"ids has {len(ids)} tokens; {caller} needs at least {C + 1}.")
    pad = (-n) % batch_size
    x = np.concatenate([ids[: n * C].reshape(n, C), np.zeros((pad, C), np.int32)])
    y = np.concatenate([ids[1 : n * C + 1].reshape(n, C), np.zeros((pad, C), np.int32)])
    weight = np.concatenate([np.ones(n, np.float32), np.zeros(pad, np.float32)])
    return x, y, weight


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
    x, y, weight = _windows(ids, C, batch_size, "evaluate")
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
    key: jax.Array | None = None,
    callback: Callable[[int, History, GPT], None] | None = None,
    progress: bool = True,
    save_to: str | os.PathLike | None = None,
    resume_from: str | os.PathLike | TrainState | None = None,
    metadata: dict | None = None,
    mesh: jax.sharding.Mesh | None = None,
    param_sharding: Literal["replicated", "fsdp"] = "replicated",
) -> History:
    """Train ``model`` in place on ``data.train``, validating on ``data.val``.

    A run can be stopped and continued: with ``save_to`` the whole state of the run is
    written at every validation; ``resume_from`` continues from such a file. A run stopped at
    step k and resumed to step N ends with the same weights (bit for bit, on the same machine
    and versions) as one run straight to N, as long as the learning-rate schedule does not
    depend on where the run stopped: set ``config.decay_steps`` (or keep ``steps``, and so the
    schedule, the same when stopping early).

    Args:
      model: the GPT to train (updated in place).
      data: token-id :class:`~attnlab.data.Splits`.
      config: a :class:`TrainConfig`; ``config.steps`` is the step at which training stops.
      key: ``jax.random`` key for batch sampling; step i (from 1) uses ``fold_in(key, i)``,
        so the same key (and model initialisation) gives the same losses. Required for a new
        run; a resumed run takes the saved key (a different ``key`` is an error).
      callback: called as ``callback(step, history, model)`` after each validation (at step 0,
        before training, then every ``eval_interval`` steps and at the end), e.g. to print a
        text sample. A resumed run does not validate again at its starting step.
      progress: show a ``tqdm.auto`` progress bar with the latest batch's loss.
      save_to: a file to write the run's state to (weights, dropout stream, AdamW moments and
        step counter, key, ``config``, history; see
        :func:`attnlab.checkpoint.save_train_state`) after every validation, including step 0
        and the end. Each write is atomic: a failed or interrupted write leaves the previous
        state intact.
      resume_from: a file written through ``save_to`` (or a
        :class:`~attnlab.checkpoint.TrainState` from
        :func:`~attnlab.checkpoint.load_train_state`). The model's weights and the optimizer's
        state are replaced by the saved ones, the history continues, and training goes on
        from the saved step to ``config.steps``. ``config`` must equal the saved one except for
        ``steps`` and ``eval_interval``.
      metadata: extra JSON-ready facts stored with every ``save_to`` write (e.g. the command).
      mesh: a 1-D ``jax.sharding.Mesh`` (e.g. from :func:`data_parallel_mesh`) to train
        data-parallel on its devices: every batch is split over the mesh's axis (B / n windows
        per device), the weights and the optimizer state are replicated on every device, and
        the steps stay one compiled :func:`train_steps` call per block. Losses equal a one-device run's up
        to float rounding (the mean is summed in a different order). The model's arrays stay
        on the mesh afterwards. With several processes (``jax.distributed.initialize``), every
        process runs the same ``train`` call with the same ``data``, ``key`` and seed, and only
        process 0 writes ``save_to``. A mesh made with ``AxisType.Explicit`` axes (the default
        of ``jax.make_mesh`` on newer jax) is used as ``Auto`` (see :func:`data_parallel_mesh`).
        ``None`` (the default) trains on JAX's default device.
      param_sharding: with a ``mesh``, where the weights and the optimizer state live:
        ``"replicated"`` (the default) keeps a full copy on every device; ``"fsdp"`` splits
        each array along its first axis that the mesh's size divides (arrays without one, such
        as the step counter, stay replicated), so that each device stores about 1/n of them
        and the compiler gathers each weight when a layer needs it (fully sharded data
        parallelism, as in PyTorch's FSDP and ZeRO-3, Rajbhandari et al. 2020). Same losses,
        less memory per device, more communication.

    Returns:
      The :class:`History` (per-step training loss and learning rate, validation losses, time),
      including the saved steps of a resumed run.

    Raises:
      TypeError: if ``key`` is missing for a new run, or ``mesh`` is not a ``Mesh``.
      ValueError: if ``resume_from`` does not fit ``model``, ``config`` or ``key``, or has
        already reached ``config.steps``; if ``mesh`` has more than one axis, or its axis size
        does not divide ``config.batch_size``; if ``param_sharding`` is not one of the two.
      FloatingPointError: if the training loss stops being finite.
      OSError: if ``save_to`` cannot be written (the file's previous state is kept).
    """
    from attnlab import checkpoint  # checkpoint builds on this module, so import it here

    C = model.config.context_length
    start = time.perf_counter()
    if param_sharding not in ("replicated", "fsdp"):
        raise ValueError(f"param_sharding must be 'replicated' or 'fsdp'; got {param_sharding!r}.")
    batch_sharding = None if mesh is None else _data_parallel_sharding(mesh, config.batch_size)
    if batch_sharding is not None:  # (K, B, T) blocks of batches: split B, as for one batch
        steps_sharding = jax.sharding.NamedSharding(
            batch_sharding.mesh, jax.sharding.PartitionSpec(None, *batch_sharding.spec))
    if resume_from is None:
        if key is None:
            raise TypeError("key is required: pass key=jax.random.key(0), for example.")
        optimizer, history, first_step = make_optimizer(model, config), History(), 0
    else:
        state = resume_from
        if not isinstance(state, checkpoint.TrainState):
            state = checkpoint.load_train_state(resume_from)
        _check_resumable(state, model, config, key)
        nnx.update(model, nnx.state(state.model))  # weights and the dropout stream
        optimizer, history, first_step = state.optimizer, copy.deepcopy(state.history), state.step
        key = state.key
    if batch_sharding is not None:  # weights and AdamW state: a full copy per device, or 1/n
        place = functools.partial(_place_state, sharding=batch_sharding,
                                  split=param_sharding == "fsdp")
        for module in (model, optimizer):
            nnx.update(module, jax.tree.map(place, nnx.state(module)))
        if jax.process_index() != 0:
            save_to = None  # the processes hold the same state: one writer is enough
    earlier_s = history.elapsed_s
    schedule = make_schedule(config)
    train_ids = jnp.asarray(data.train)

    def validate(step: int) -> None:
        history.val_steps.append(step)
        history.val_loss.append(evaluate(model, data.val))
        history.elapsed_s = earlier_s + time.perf_counter() - start
        history.tokens_seen = step * config.batch_size * C
        if save_to is not None:
            checkpoint.save_train_state(save_to, model, optimizer, step=step, key=key,
                                        train_config=config, history=history, metadata=metadata)
        if callback is not None:
            callback(step, history, model)

    if first_step == 0:
        validate(0)  # before the first step, so curves and callbacks start from the untrained model
    bar = tqdm(total=config.steps, initial=first_step, desc="training", disable=not progress,
               unit="step")
    step = first_step
    while step < config.steps:
        # One compiled call runs the steps up to the next multiple of STEPS_PER_CALL, the next
        # validation or the end.
        # The blocks' ends depend only on those numbers, so a run resumed at a validation step
        # runs the same blocks as one that never stopped.
        end = min((step // STEPS_PER_CALL + 1) * STEPS_PER_CALL,
                  (step // config.eval_interval + 1) * config.eval_interval, config.steps)
        batches = [get_batch(train_ids, config.batch_size, C, jax.random.fold_in(key, i))
                   for i in range(step + 1, end + 1)]
        xs, ys = (jnp.stack(part) for part in zip(*batches, strict=True))
        if batch_sharding is not None:  # the same windows, each device gets B / n of them
            xs, ys = _place(xs, steps_sharding), _place(ys, steps_sharding)
        losses = np.asarray(jax.device_get(train_steps(model, optimizer, xs, ys)),
                            dtype=float).tolist()
        step = end
        # The rates these updates used: the schedule at the optimizer's own update counter.
        done = int(optimizer.step[...])
        history.steps.extend(range(step - len(losses) + 1, step + 1))
        history.train_loss.extend(losses)
        rates = schedule(np.arange(done - len(losses), done))
        history.learning_rate.extend(np.asarray(rates, dtype=float).tolist())
        bar.set_postfix(loss=f"{losses[-1]:.3f}")
        bar.update(len(losses))
        if not all(math.isfinite(v) for v in losses):
            bar.close()
            raise FloatingPointError(
                f"training loss became {losses[-1]} at step {step}; "
                "lower the learning_rate or grad_clip."
            )
        if step % config.eval_interval == 0 or step == config.steps:
            validate(step)
            bar.set_postfix(loss=f"{history.train_loss[-1]:.3f}", val=f"{history.val_loss[-1]:.3f}")
    bar.close()
    history.elapsed_s = earlier_s + time.perf_counter() - start
    return history


def data_parallel_mesh(devices=None, axis_name: str = "data") -> jax.sharding.Mesh:
    """A 1-D mesh over ``devices`` for data-parallel training with ``train(..., mesh=...)``.

    The axis is ``AxisType.Auto``: the compiler decides where the arrays inside the step live
    and which collectives it needs (here: an all-reduce of the gradients). With
    ``AxisType.Explicit`` every array's sharding is part of its type, and the token-embedding
    lookup (a gather from a replicated table with batch-sharded ids) would need its
    ``out_sharding`` spelled out in the model; ``Auto`` keeps the model code unchanged.

    Args:
      devices: a sequence of ``jax.Device``; defaults to ``jax.devices()``, i.e. every device
        of every process.
      axis_name: the name of the mesh's one axis.

    Returns:
      ``jax.make_mesh((len(devices),), (axis_name,), axis_types=(AxisType.Auto,), ...)``.

    Raises:
      ValueError: if ``devices`` is empty.
    """
    devices = list(jax.devices() if devices is None else devices)
    if not devices:
        raise ValueError("devices must hold at least one jax.Device; got none.")
    return jax.make_mesh((len(devices),), (axis_name,),
                         axis_types=(jax.sharding.AxisType.Auto,), devices=devices)


def _data_parallel_sharding(mesh, batch_size: int) -> jax.sharding.NamedSharding:
    """The sharding of a ``(B, T)`` batch split over ``mesh``'s one axis; checks the sizes."""
    if not isinstance(mesh, jax.sharding.Mesh):
        raise TypeError(f"mesh must be a jax.sharding.Mesh (see data_parallel_mesh); got "
                        f"{type(mesh).__name__}.")
    if len(mesh.axis_names) != 1:
        raise ValueError(f"mesh must have exactly one axis (data parallelism); got axes "
                         f"{dict(mesh.shape)}.")
    (axis,) = mesh.axis_names
    n = mesh.shape[axis]
    if batch_size % n:
        raise ValueError(f"batch_size={batch_size} is not divisible by the size {n} of mesh axis "
                         f"{axis!r}; every device needs the same number of windows: use a "
                         f"multiple of {n}, e.g. {max(n, batch_size // n * n)}.")
    # Auto axes whatever the mesh was made with (see data_parallel_mesh): the model code stays
    # as it is, and the compiler places the gradient all-reduce.
    auto = jax.sharding.Mesh(mesh.devices, mesh.axis_names,
                             axis_types=(jax.sharding.AxisType.Auto,))
    return jax.sharding.NamedSharding(auto, jax.sharding.PartitionSpec(axis))


def _place_state(a: jax.Array, sharding: jax.sharding.NamedSharding, split: bool) -> jax.Array:
    """Replicate ``a`` over ``sharding``'s mesh or, with ``split``, split its first axis that
    the mesh's one axis divides (replicated when none does)."""
    (axis,) = sharding.mesh.axis_names
    n = sharding.mesh.shape[axis]
    spec = jax.sharding.PartitionSpec()
    for i, size in enumerate(a.shape if split else ()):
        if size % n == 0:
            spec = jax.sharding.PartitionSpec(*[None] * i, axis)
            break
    return _place(a, jax.sharding.NamedSharding(sharding.mesh, spec))


def _place(a: jax.Array, sharding: jax.sharding.NamedSharding) -> jax.Array:
    """``a`` (the same value in every process) as one global array with ``sharding``."""
    if jax.process_count() == 1:
        return jax.device_put(a, sharding)
    if jnp.issubdtype(a.dtype, jax.dtypes.prng_key):  # keys travel as their raw bits
        bits = _place(jax.random.key_data(a), sharding)
        return jax.random.wrap_key_data(bits, impl=jax.random.key_impl(a))
    host = np.asarray(a)  # each process fills its own devices' slices from its copy
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def _check_resumable(state, model: GPT, config: TrainConfig, key: jax.Array | None) -> None:
    """Raise ValueError if the saved run ``state`` cannot be continued as asked."""
    if state.model.config != model.config:
        raise ValueError(
            f"resume_from holds a GPT with config {state.model.config}; model has "
            f"{model.config}."
        )
    saved, given = dataclasses.asdict(state.train_config), dataclasses.asdict(config)
    saved["decay_steps"] = state.train_config.schedule_steps  # compare the schedules themselves
    given["decay_steps"] = config.schedule_steps
    diffs = [f"{k}: saved {saved[k]!r}, given {given[k]!r}" for k in saved
             if k not in ("steps", "eval_interval") and saved[k] != given[k]]
    if diffs:
        raise ValueError(
            "config differs from the saved run's TrainConfig (" + "; ".join(diffs) + "); a "
            "resumed run may change only steps and eval_interval."
        )
    if state.step >= config.steps:
        raise ValueError(
            f"the saved run has already done {state.step} steps; config.steps={config.steps} "
            f"must be larger to train further."
        )
    if key is not None and not np.array_equal(_key_bits(key), _key_bits(state.key)):
        raise ValueError("key differs from the saved run's key; pass key=None to use the saved one.")


def _key_bits(key: jax.Array) -> np.ndarray:
    """The raw bits of a typed (``jax.random.key``) or legacy (``PRNGKey``) key."""
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        key = jax.random.key_data(key)
    return np.asarray(key)


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
    x, y, weight = _windows(ids, T, batch_size, "per_position_loss")
    n = int(weight.sum())
    total = np.zeros(T, np.float64)
    for i in range(0, len(x), batch_size):
        s = slice(i, i + batch_size)
        total += np.asarray(_position_sums(model, x[s], y[s], weight[s]), np.float64)
    return total / n
