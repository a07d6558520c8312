"""Saving and loading a trained GPT: one ``.safetensors`` file holds everything needed to use it.

A checkpoint is a `safetensors <https://huggingface.co/docs/safetensors>`_ file:

- one tensor per ``nnx.Param`` of the model, named by its dotted path in the module tree
  (``token_embedding.embedding``, ``blocks.0.attention.W_q.kernel``, ``ln_f.scale``, ...),
  stored with the parameter's own shape and dtype (float32 for a freshly built :class:`GPT`);
- string metadata in the file header (safetensors only stores ``str -> str``):

  ``format``     ``"attnlab-gpt/1"``: marks the file as an attnlab GPT checkpoint;
  ``config``     the :class:`GPTConfig` as JSON (``dataclasses.asdict``);
  ``tokenizer``  ``{"type": "char", "vocab": "..."}`` as JSON, when a tokenizer was saved;
  any other key  a user value, JSON-encoded (validation loss, step count, the command, ...).

safetensors holds only arrays and strings: unlike a pickle, loading a file never runs code,
so a checkpoint downloaded from elsewhere is safe to open. Any tool that reads safetensors
(``safetensors.numpy.load_file``, PyTorch, the Hugging Face Hub viewer) can inspect it.

Tensor names come from Flax's own flat view of the state (``nnx.to_flat_state``), whose paths
are the same on flax 0.11 and 0.12.

A training run's state (:func:`save_train_state`, :func:`load_train_state`) is a second kind of
file, format ``"attnlab-train-state/1"``: the model's variables, the optimizer's arrays (AdamW's
moments, the update counters), the batch-sampling key, the :class:`~attnlab.train.TrainConfig`
and the :class:`~attnlab.train.History` so far: all that ``attnlab.train.train(...,
resume_from=...)`` needs to continue the run exactly where it stopped.

Writes are atomic: the bytes go to a temporary file next to the target, are flushed to disk,
then renamed over the target in one step (``os.replace``). A crash or an error mid-save leaves
the previous checkpoint intact, never a half-written file.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import pathlib
import tempfile
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import safetensors
import safetensors.numpy
from flax import nnx

from attnlab.data import CharTokenizer
from attnlab.gpt import GPT, GPTConfig
from attnlab.train import History, TrainConfig, make_optimizer

__all__ = [
    "FORMAT",
    "TRAIN_STATE_FORMAT",
    "Checkpoint",
    "TrainState",
    "assign_params",
    "atomic_write",
    "load",
    "load_into",
    "load_train_state",
    "param_arrays",
    "save",
    "save_train_state",
]

#: Value of the ``format`` metadata entry. The number changes if the layout ever changes.
FORMAT = "attnlab-gpt/1"
#: ``format`` of a training run's state (:func:`save_train_state`).
TRAIN_STATE_FORMAT = "attnlab-train-state/1"
_RESERVED = ("format", "config", "tokenizer")
_TRAIN_RESERVED = (*_RESERVED, "train_config", "history", "step", "random_keys")


@dataclasses.dataclass(frozen=True)
class Checkpoint:
    """What :func:`load` returns.

    Attributes:
      model: the :class:`GPT` with the saved weights.
      tokenizer: the saved :class:`CharTokenizer`, or ``None`` if none was saved.
      config: the model's :class:`GPTConfig` (also ``model.config``).
      metadata: the user metadata passed to :func:`save`, decoded from JSON.
    """

    model: GPT = dataclasses.field(repr=False)
    tokenizer: CharTokenizer | None
    config: GPTConfig
    metadata: dict[str, Any]


# --- names ---------------------------------------------------------------------------------


def _flat_variables(state: nnx.State) -> list[tuple[tuple, str, nnx.Variable]]:
    """``(path, name, variable)`` for every Variable in ``state``, in Flax's flat-state order.

    ``nnx.to_flat_state`` gives paths such as ``('blocks', 0, 'attention', 'W_q', 'kernel')``
    (the same on flax 0.11 and 0.12); the name joins them with dots:
    ``blocks.0.attention.W_q.kernel``.
    """
    entries = [(path, ".".join(map(str, path)), variable)
               for path, variable in nnx.to_flat_state(state)]
    names = [name for _, name, _ in entries]
    if len(set(names)) != len(names):  # cannot happen for GPT; guards future modules
        raise ValueError(f"variable names are not unique: {sorted(names)}")
    return entries


def _is_key(value) -> bool:
    return jnp.issubdtype(value.dtype, jax.dtypes.prng_key)


def _to_numpy(value) -> np.ndarray:
    """A variable's array as NumPy; a typed random key becomes its raw uint32 bits."""
    if _is_key(value):
        value = jax.random.key_data(value)
    return np.asarray(jax.device_get(value), order="C")  # (ascontiguousarray makes 0-d 1-d)


def _tensors(state: nnx.State, prefix: str = "") -> tuple[dict[str, np.ndarray], dict[str, str]]:
    """``({name: array}, {name: key implementation})`` of every Variable in ``state``."""
    tensors, keys = {}, {}
    for _, name, variable in _flat_variables(state):
        value = variable[...]
        tensors[prefix + name] = _to_numpy(value)
        if _is_key(value):
            keys[prefix + name] = str(jax.random.key_impl(value))
    return tensors, keys


def param_arrays(model: nnx.Module) -> dict[str, np.ndarray]:
    """Every parameter of ``model`` as ``{name: NumPy array}``, named as checkpoints name them.

    Names join ``nnx.to_flat_state``'s path with dots (``blocks.0.attention.W_q.kernel``);
    the arrays are host copies in the parameters' own dtype and shape.
    """
    return _tensors(nnx.state(model, nnx.Param))[0]


def assign_params(model: nnx.Module, arrays: dict[str, Any], *, dtype=None) -> None:
    """Replace every parameter of ``model`` in place by ``arrays[name]`` (names as in
    :func:`param_arrays`), cast to ``dtype`` (default: each parameter's own dtype).

    Raises:
      ValueError: naming the first parameter that ``arrays`` lacks or whose shape differs, or
        the first name in ``arrays`` that ``model`` has no parameter for.
    """
    entries = _flat_variables(nnx.state(model, nnx.Param))
    names = {name for _, name, _ in entries}
    unknown = sorted(set(arrays) - names)
    if unknown:
        raise ValueError(f"arrays has {len(unknown)} name(s) the model has no parameter for: "
                         f"{', '.join(map(repr, unknown[:5]))}.")
    updated = []
    for path, name, variable in entries:
        if name not in arrays:
            raise ValueError(f"arrays lacks the parameter {name!r}.")
        value = jnp.asarray(arrays[name], dtype=dtype or variable[...].dtype)
        if value.shape != variable[...].shape:
            raise ValueError(f"parameter {name!r} has shape {variable[...].shape}; arrays gives "
                             f"{value.shape}.")
        updated.append((path, variable.replace(value)))
    nnx.update(model, nnx.from_flat_state(updated))


# --- save ---------------------------------------------------------------------------------


def _json_default(value):
    """Let numpy and JAX scalars/arrays (e.g. a loss) pass through ``json.dumps``."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _encode_metadata(
    model: GPT, tokenizer, metadata, *, fmt: str = FORMAT, reserved=_RESERVED
) -> dict[str, str]:
    header = {"format": fmt, "config": json.dumps(dataclasses.asdict(model.config))}
    if tokenizer is not None:
        if not isinstance(tokenizer, CharTokenizer):
            raise TypeError(
                f"tokenizer must be a CharTokenizer or None; got {type(tokenizer).__name__}."
            )
        if tokenizer.vocab_size > model.config.vocab_size:
            raise ValueError(
                f"tokenizer has {tokenizer.vocab_size} tokens but the model's vocab_size is "
                f"{model.config.vocab_size}; its larger ids could never be embedded."
            )
        header["tokenizer"] = json.dumps({"type": "char", "vocab": tokenizer.vocab})
    for key, value in (metadata or {}).items():
        if not isinstance(key, str) or key in reserved:
            raise ValueError(
                f"metadata keys must be strings other than {list(reserved)}; got {key!r}."
            )
        try:
            header[key] = json.dumps(value, default=_json_default)
        except (TypeError, ValueError) as error:
            raise TypeError(f"metadata[{key!r}] cannot be stored as JSON: {error}.") from None
    return header


def atomic_write(path: str | os.PathLike, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a mix.

    Missing parent folders are created. On any error the temporary file is removed and an
    existing file at ``path`` is left as it was. Used for checkpoints and the CLI's other outputs.
    """
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    tmp = pathlib.Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())  # the bytes are on disk before the rename makes them visible
        # mkstemp creates the file readable by its owner only; keep an existing file's mode.
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    with contextlib.suppress(OSError):  # persist the rename itself (POSIX; no-op elsewhere)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def save(
    path: str | os.PathLike,
    model: GPT,
    tokenizer: CharTokenizer | None = None,
    *,
    metadata: dict[str, Any] | None = None,
) -> pathlib.Path:
    """Write a GPT's parameters, config and tokenizer to one ``.safetensors`` file.

    Args:
      path: where to write. Used as given (no suffix is added; ``.safetensors`` is the
        convention). Missing parent folders are created; an existing file is replaced
        atomically.
      model: a :class:`GPT`. Every ``nnx.Param`` is saved with its shape and dtype, e.g.
        ``token_embedding.embedding`` ``(V, D)``, ``blocks.0.attention.W_q.kernel`` ``(D, D)``.
        Other state (the dropout random stream) is not saved.
      tokenizer: optional :class:`CharTokenizer` saved alongside, so text can be encoded
        exactly as in training. Its vocabulary must not exceed ``model.config.vocab_size``.
      metadata: optional extra facts, e.g. ``{"val_loss": 1.42, "steps": 2000}``. Keys are
        strings other than ``"format"``, ``"config"``, ``"tokenizer"``; values anything
        ``json.dumps`` accepts (numpy/JAX scalars and arrays become numbers and lists).

    Returns:
      The path written, as a ``pathlib.Path``.

    Raises:
      TypeError: if ``model`` is not a GPT, ``tokenizer`` is not a CharTokenizer, or a metadata
        value is not JSON-serializable.
      ValueError: for a reserved or non-string metadata key, or a tokenizer larger than the
        model's vocabulary.
      OSError: if the file cannot be written; an existing file at ``path`` is then unchanged
        and no temporary file is left behind.
    """
    if not isinstance(model, GPT):
        raise TypeError(f"model must be an attnlab GPT; got {type(model).__name__}.")
    path = pathlib.Path(path).expanduser()
    header = _encode_metadata(model, tokenizer, metadata)
    tensors, _ = _tensors(nnx.state(model, nnx.Param))
    atomic_write(path, safetensors.numpy.save(tensors, metadata=header))
    return path


# --- load ---------------------------------------------------------------------------------


def _read(path: pathlib.Path, expected: str = FORMAT):
    """``(tensors, config, tokenizer, user_metadata, header)`` of a file, or a clear error.

    ``expected`` is the ``format`` the file must have: :data:`FORMAT` for a model checkpoint,
    :data:`TRAIN_STATE_FORMAT` for the state of a training run.
    """
    writer = "save" if expected == FORMAT else "save_train_state"
    if not path.exists():
        raise FileNotFoundError(f"no checkpoint at {str(path)!r}: the file does not exist.")
    if path.is_dir():
        raise IsADirectoryError(f"{str(path)!r} is a folder; expected a .safetensors file.")
    try:
        with safetensors.safe_open(str(path), framework="np") as f:
            header = f.metadata()
            tensors = {name: f.get_tensor(name) for name in f.keys()}
    except Exception as error:  # safetensors raises its own SafetensorError for bad headers
        raise ValueError(
            f"{str(path)!r} is not a readable safetensors file ({error}); expected a "
            f"file written by attnlab.checkpoint.{writer}."
        ) from error
    if not header or "format" not in header:
        raise ValueError(
            f"{str(path)!r} is a safetensors file but not an attnlab checkpoint: its metadata "
            f"has no 'format' entry (found keys {sorted(header or {})}); expected "
            f"format={expected!r}. Files from other tools (e.g. Hugging Face GPT-2) need a "
            "loader that maps their tensor names to attnlab's."
        )
    if header["format"] != expected:
        hint = {
            (TRAIN_STATE_FORMAT, FORMAT): " It holds a training run's state: load it with "
            "attnlab.checkpoint.load_train_state (or resume the run).",
            (FORMAT, TRAIN_STATE_FORMAT): " It holds a model's weights only; a run is "
            "resumed from the training state saved beside them (python -m attnlab train "
            "writes train_state.safetensors).",
        }.get((header["format"], expected), "")
        raise ValueError(
            f"{str(path)!r} has format {header['format']!r}; expected {expected!r}.{hint}"
        )
    config = _decode_config(header, path)
    tokenizer = _decode_tokenizer(header, path)
    return tensors, config, tokenizer, _decode_user_metadata(header), header


def _decode_config(header: dict[str, str], path: pathlib.Path) -> GPTConfig:
    try:
        fields = json.loads(header["config"])
    except (KeyError, json.JSONDecodeError) as error:
        raise ValueError(f"{str(path)!r} has no readable 'config' metadata ({error}).") from None
    if not isinstance(fields, dict):
        raise ValueError(f"{str(path)!r}: 'config' must be a JSON object; got {fields!r}.")
    known = {f.name for f in dataclasses.fields(GPTConfig)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise ValueError(
            f"{str(path)!r}: config has unknown fields {unknown}; GPTConfig has {sorted(known)}. "
            "Was it written by a newer attnlab?"
        )
    try:
        return GPTConfig(**fields)  # missing fields take GPTConfig's defaults
    except (TypeError, ValueError) as error:
        raise ValueError(f"{str(path)!r}: invalid config in checkpoint: {error}") from None


def _decode_tokenizer(header: dict[str, str], path: pathlib.Path) -> CharTokenizer | None:
    if "tokenizer" not in header:
        return None
    try:
        spec = json.loads(header["tokenizer"])
        if spec.get("type") != "char":
            raise ValueError(f"unknown tokenizer type {spec.get('type')!r}; expected 'char'")
        return CharTokenizer(spec["vocab"])
    except (AttributeError, KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{str(path)!r}: unreadable tokenizer metadata: {error}") from None


def _decode_user_metadata(header: dict[str, str]) -> dict[str, Any]:
    reserved = _TRAIN_RESERVED if header.get("format") == TRAIN_STATE_FORMAT else _RESERVED
    out = {}
    for key, text in header.items():
        if key in reserved:
            continue
        try:
            out[key] = json.loads(text)
        except json.JSONDecodeError:
            out[key] = text  # written by another tool: keep the raw string
    return out


def _listing(names, limit: int = 5) -> str:
    names = sorted(names)
    more = f" and {len(names) - limit} more" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _restore(
    target, state: nnx.State, tensors: dict[str, np.ndarray], path: pathlib.Path, *,
    prefix: str = "", keys: dict[str, str] | None = None, what: str = "the model",
) -> None:
    """Check names, shapes and dtypes of ``tensors`` against ``state``, then copy them into
    ``target`` (the module or optimizer ``state`` came from). Only names starting with
    ``prefix`` are considered; ``keys`` gives the implementation of stored random keys.
    On error ``target`` is unchanged."""
    entries = _flat_variables(state)
    expected = {prefix + name for _, name, _ in entries}
    stored = {name for name in tensors if name.startswith(prefix)}
    missing, unexpected = expected - stored, stored - expected
    if missing or unexpected:
        problems = []
        if missing:
            problems.append(f"missing {len(missing)} tensor(s): {_listing(missing)}")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected tensor(s): {_listing(unexpected)}")
        config = getattr(target, "config", None)
        fits = f"a GPT with config {config}" if config is not None else what
        raise ValueError(f"{str(path)!r} does not match {fits}: " + "; ".join(problems) + ".")
    updated = []
    for var_path, name, variable in entries:
        value, current = tensors[prefix + name], variable[...]
        want = jax.random.key_data(current) if _is_key(current) else current
        where = f"{str(path)!r}: tensor {prefix + name!r}"
        if value.shape != want.shape:
            raise ValueError(
                f"{where} has shape {value.shape} in the file; {what} expects "
                f"{tuple(want.shape)}" + (f" (config {target.config})." if what == "the model"
                                          else ".")
            )
        if value.dtype != want.dtype:
            raise ValueError(f"{where} has dtype {value.dtype} in the file; {what} expects "
                             f"{want.dtype}.")
        sharding = getattr(current, "sharding", None)  # keep a replicated/sharded placement
        new = jax.device_put(value, sharding) if sharding else jnp.asarray(value)
        if _is_key(current):
            new = jax.random.wrap_key_data(new, impl=(keys or {}).get(prefix + name))
        updated.append((var_path, variable.replace(new)))
    nnx.update(target, nnx.from_flat_state(updated))


def load(path: str | os.PathLike) -> Checkpoint:
    """Read a checkpoint written by :func:`save` and rebuild the model.

    The model is built from the saved config (``GPT(config, rngs=nnx.Rngs(0))``, so its dropout
    stream starts from seed 0), then every parameter is replaced by the saved array, bit for
    bit: the loaded model returns exactly the logits the saved one did.

    Args:
      path: a ``.safetensors`` file written by :func:`save`.

    Returns:
      A :class:`Checkpoint` ``(model, tokenizer, config, metadata)``.

    Raises:
      FileNotFoundError: if ``path`` does not exist (IsADirectoryError if it is a folder).
      ValueError: if the file is not safetensors; is safetensors without attnlab metadata; has
        an unknown format version; has an unknown or invalid config; or its tensors do not
        match that config (missing or unexpected names, or a shape or dtype that differs —
        the message names the tensor and both shapes).
    """
    path = pathlib.Path(path).expanduser()
    tensors, config, tokenizer, metadata, _ = _read(path)
    model = GPT(config, rngs=nnx.Rngs(0))  # random weights, all replaced just below
    _restore(model, nnx.state(model, nnx.Param), tensors, path)
    return Checkpoint(model, tokenizer, config, metadata)


def load_into(model: GPT, path: str | os.PathLike) -> Checkpoint:
    """Copy a checkpoint's weights into an existing ``model`` (e.g. one an optimizer holds).

    Arrays keep the placement (device or sharding) of the parameters they replace.

    Args:
      model: a :class:`GPT` whose ``config`` equals the saved one.
      path: a ``.safetensors`` file written by :func:`save`.

    Returns:
      A :class:`Checkpoint` whose ``model`` is ``model`` itself, now holding the saved weights.

    Raises:
      TypeError: if ``model`` is not a GPT.
      ValueError: if the saved config differs from ``model.config`` (the message lists the
        differing fields), plus everything :func:`load` raises. On error ``model`` is unchanged.
    """
    if not isinstance(model, GPT):
        raise TypeError(f"model must be an attnlab GPT; got {type(model).__name__}.")
    path = pathlib.Path(path).expanduser()
    tensors, config, tokenizer, metadata, _ = _read(path)
    if config != model.config:
        saved, have = dataclasses.asdict(config), dataclasses.asdict(model.config)
        diffs = [
            f"{k}: file {saved[k]!r} vs model {have[k]!r}" for k in saved if saved[k] != have[k]
        ]
        raise ValueError(f"{str(path)!r} was saved with a different config: {'; '.join(diffs)}.")
    _restore(model, nnx.state(model, nnx.Param), tensors, path)
    return Checkpoint(model, tokenizer, config, metadata)


# --- the state of a training run ----------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class TrainState:
    """A training run as :func:`load_train_state` reads it: all that ``train`` needs to go on.

    Attributes:
      model: the :class:`GPT` with the saved weights and dropout stream.
      optimizer: an ``nnx.Optimizer`` built by :func:`attnlab.train.make_optimizer` for
        ``model`` and ``train_config``, holding the saved AdamW moments and update counters.
      step: updates done so far.
      key: the run's batch-sampling key (step i's batch comes from ``fold_in(key, i)``).
      train_config: the run's :class:`~attnlab.train.TrainConfig`.
      history: the :class:`~attnlab.train.History` up to ``step``.
      tokenizer: the saved :class:`CharTokenizer`, or ``None``.
      metadata: the user metadata passed to :func:`save_train_state`.
    """

    model: GPT = dataclasses.field(repr=False)
    optimizer: nnx.Optimizer = dataclasses.field(repr=False)
    step: int
    key: jax.Array
    train_config: TrainConfig
    history: History = dataclasses.field(repr=False)
    tokenizer: CharTokenizer | None = None
    metadata: dict[str, Any] = dataclasses.field(default_factory=dict)


def save_train_state(
    path: str | os.PathLike,
    model: GPT,
    optimizer: nnx.Optimizer,
    *,
    step: int,
    key: jax.Array,
    train_config: TrainConfig,
    history: History,
    tokenizer: CharTokenizer | None = None,
    metadata: dict[str, Any] | None = None,
) -> pathlib.Path:
    """Write the whole state of a training run to one ``.safetensors`` file, atomically.

    Tensors: ``model.<name>`` for every variable of the model (its ``nnx.Param`` weights under
    the names :func:`save` uses, and the dropout stream's key and counter), ``optimizer.<name>``
    for every array of the optimizer (``step``, and per parameter AdamW's first and second
    moments ``opt_state.1.0.mu.<param name>`` / ``.nu.``, plus optax's update counters), and
    ``train_key``. Random keys are stored as their raw uint32 bits, their implementation in the
    ``random_keys`` metadata entry. Metadata: ``format`` (:data:`TRAIN_STATE_FORMAT`),
    ``config``, ``tokenizer``, ``train_config`` and ``history`` (JSON), ``step``, and any
    user metadata.

    Args:
      path: where to write (e.g. ``runs/x/train_state.safetensors``); folders are created.
      model, optimizer: the run's :class:`GPT` and the ``nnx.Optimizer`` that trains it.
      step: updates done so far (≥ 0).
      key: the run's batch-sampling key.
      train_config: the run's :class:`~attnlab.train.TrainConfig`.
      history: the :class:`~attnlab.train.History` so far.
      tokenizer, metadata: as in :func:`save` (metadata may not use the keys above).

    Returns:
      The path written.

    Raises:
      TypeError, ValueError: as :func:`save` does.
      OSError: if the file cannot be written; a previous file at ``path`` is then unchanged.
    """
    if not isinstance(model, GPT):
        raise TypeError(f"model must be an attnlab GPT; got {type(model).__name__}.")
    path = pathlib.Path(path).expanduser()
    header = _encode_metadata(model, tokenizer, metadata, fmt=TRAIN_STATE_FORMAT,
                              reserved=_TRAIN_RESERVED)
    model_tensors, keys = _tensors(nnx.state(model), "model.")
    optimizer_tensors, optimizer_keys = _tensors(nnx.state(optimizer), "optimizer.")
    tensors = {**model_tensors, **optimizer_tensors, "train_key": _to_numpy(key)}
    keys.update(optimizer_keys)
    if _is_key(key):
        keys["train_key"] = str(jax.random.key_impl(key))
    header.update(
        train_config=json.dumps(dataclasses.asdict(train_config)),
        history=json.dumps(history.to_dict()),
        step=json.dumps(int(step)),
        random_keys=json.dumps(keys),
    )
    atomic_write(path, safetensors.numpy.save(tensors, metadata=header))
    return path


def load_train_state(path: str | os.PathLike) -> TrainState:
    """Read a file written by :func:`save_train_state`: the model, its optimizer and the rest.

    The model is rebuilt from the saved config and the optimizer from the saved
    :class:`~attnlab.train.TrainConfig`; then every saved array replaces its counterpart, bit
    for bit, so training goes on exactly as if it had never stopped.

    Raises:
      FileNotFoundError: if ``path`` does not exist (IsADirectoryError if it is a folder).
      ValueError: if the file is not a training state (a model checkpoint is named as such),
        or its config, training config, history or arrays do not fit together.
    """
    path = pathlib.Path(path).expanduser()
    tensors, config, tokenizer, metadata, header = _read(path, TRAIN_STATE_FORMAT)
    try:
        train_config = TrainConfig(**json.loads(header["train_config"]))
        history = History.from_dict(json.loads(header["history"]))
        step = int(json.loads(header["step"]))
        keys = json.loads(header["random_keys"])
    except (KeyError, TypeError, ValueError) as error:
        raise ValueError(f"{str(path)!r}: unreadable training metadata: {error!r}") from None
    if "train_key" not in tensors:
        raise ValueError(f"{str(path)!r} has no 'train_key' tensor.")
    model = GPT(config, rngs=nnx.Rngs(0))  # every variable is replaced just below
    _restore(model, nnx.state(model), tensors, path, prefix="model.", keys=keys)
    optimizer = make_optimizer(model, train_config)
    _restore(optimizer, nnx.state(optimizer), tensors, path, prefix="optimizer.", keys=keys,
             what="the optimizer")
    key = jnp.asarray(tensors["train_key"])
    if "train_key" in keys:
        key = jax.random.wrap_key_data(key, impl=keys["train_key"])
    return TrainState(model, optimizer, step, key, train_config, history, tokenizer, metadata)
