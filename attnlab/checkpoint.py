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

__all__ = ["FORMAT", "Checkpoint", "atomic_write", "load", "load_into", "save"]

#: Value of the ``format`` metadata entry. The number changes if the layout ever changes.
FORMAT = "attnlab-gpt/1"
_RESERVED = ("format", "config", "tokenizer")


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


# --- names --------------------------------------------------------------------------------


def _key_name(key) -> str | None:
    """One step of a pytree path as text; ``None`` for the step into a Variable's value."""
    if isinstance(key, jax.tree_util.DictKey):
        return str(key.key)
    if isinstance(key, jax.tree_util.SequenceKey):
        return str(key.idx)
    if isinstance(key, jax.tree_util.GetAttrKey):
        # ``nnx.State`` is a nested dict; the only attribute step is Variable -> its array.
        return None if key.name == "value" else key.name
    return None  # FlattenedIndexKey: a Variable's single child, not a module name


def _named_params(model: GPT):
    """``(names, arrays, treedef)`` of every ``nnx.Param`` in ``model``, in tree order.

    ``nnx.state(model, nnx.Param)`` flattens (on flax 0.11 and 0.12 alike) to paths such as
    ``DictKey('blocks'), DictKey(0), DictKey('attention'), DictKey('W_q'), DictKey('kernel'),
    GetAttrKey('value')``; the last step enters the ``Param`` wrapper and is not part of the
    name. ``treedef`` rebuilds the same ``State`` (with its ``Param`` wrappers) from arrays.
    """
    leaves, treedef = jax.tree_util.tree_flatten_with_path(nnx.state(model, nnx.Param))
    names = []
    for path, _ in leaves:
        parts = [name for name in map(_key_name, path) if name is not None]
        names.append(".".join(parts))
    if len(set(names)) != len(names):  # cannot happen for GPT; guards future modules
        raise ValueError(f"parameter names are not unique: {sorted(names)}")
    return names, [leaf for _, leaf in leaves], treedef


# --- save ---------------------------------------------------------------------------------


def _json_default(value):
    """Let numpy and JAX scalars/arrays (e.g. a loss) pass through ``json.dumps``."""
    if hasattr(value, "tolist"):
        return value.tolist()
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


def _encode_metadata(model: GPT, tokenizer, metadata) -> dict[str, str]:
    header = {"format": FORMAT, "config": json.dumps(dataclasses.asdict(model.config))}
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
        if not isinstance(key, str) or key in _RESERVED:
            raise ValueError(
                f"metadata keys must be strings other than {list(_RESERVED)}; got {key!r}."
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
    names, arrays, _ = _named_params(model)
    tensors = {
        name: np.ascontiguousarray(jax.device_get(a)) for name, a in zip(names, arrays, strict=True)
    }
    atomic_write(path, safetensors.numpy.save(tensors, metadata=header))
    return path


# --- load ---------------------------------------------------------------------------------


def _read(path: pathlib.Path):
    """``(tensors, config, tokenizer, user_metadata)`` of a checkpoint, or a clear error."""
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
            "checkpoint written by attnlab.checkpoint.save."
        ) from error
    if not header or "format" not in header:
        raise ValueError(
            f"{str(path)!r} is a safetensors file but not an attnlab checkpoint: its metadata "
            f"has no 'format' entry (found keys {sorted(header or {})}); expected "
            f"format={FORMAT!r}. Files from other tools (e.g. Hugging Face GPT-2) need a loader "
            "that maps their tensor names, such as attnlab.hub."
        )
    if header["format"] != FORMAT:
        raise ValueError(
            f"{str(path)!r} has format {header['format']!r}; this attnlab reads {FORMAT!r}."
        )
    config = _decode_config(header, path)
    tokenizer = _decode_tokenizer(header, path)
    return tensors, config, tokenizer, _decode_user_metadata(header)


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
    out = {}
    for key, text in header.items():
        if key in _RESERVED:
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


def _update_params(model: GPT, tensors: dict[str, np.ndarray], path: pathlib.Path) -> None:
    """Check names, shapes and dtypes of ``tensors`` against ``model``, then copy them in."""
    names, arrays, treedef = _named_params(model)
    missing, unexpected = set(names) - set(tensors), set(tensors) - set(names)
    if missing or unexpected:
        problems = []
        if missing:
            problems.append(f"missing {len(missing)} tensor(s): {_listing(missing)}")
        if unexpected:
            problems.append(f"{len(unexpected)} unexpected tensor(s): {_listing(unexpected)}")
        raise ValueError(
            f"{str(path)!r} does not match a GPT with config {model.config}: "
            + "; ".join(problems)
            + "."
        )
    new_arrays = []
    for name, current in zip(names, arrays, strict=True):
        stored = tensors[name]
        if stored.shape != current.shape:
            raise ValueError(
                f"{str(path)!r}: tensor {name!r} has shape {stored.shape} in the file; the model "
                f"expects {tuple(current.shape)} (config {model.config})."
            )
        if stored.dtype != current.dtype:
            raise ValueError(
                f"{str(path)!r}: tensor {name!r} has dtype {stored.dtype} in the file; the model "
                f"expects {current.dtype}."
            )
        sharding = getattr(current, "sharding", None)  # keep a replicated/sharded placement
        new_arrays.append(jax.device_put(stored, sharding) if sharding else jnp.asarray(stored))
    nnx.update(model, jax.tree_util.tree_unflatten(treedef, new_arrays))


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
    tensors, config, tokenizer, metadata = _read(path)
    model = GPT(config, rngs=nnx.Rngs(0))  # random weights, all replaced just below
    _update_params(model, tensors, path)
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
    tensors, config, tokenizer, metadata = _read(path)
    if config != model.config:
        saved, have = dataclasses.asdict(config), dataclasses.asdict(model.config)
        diffs = [
            f"{k}: file {saved[k]!r} vs model {have[k]!r}" for k in saved if saved[k] != have[k]
        ]
        raise ValueError(f"{str(path)!r} was saved with a different config: {'; '.join(diffs)}.")
    _update_params(model, tensors, path)
    return Checkpoint(model, tokenizer, config, metadata)
