"""GPT-2 from the Hugging Face Hub inside attnlab's own :class:`~attnlab.gpt.GPT`.

A model on the Hub is a folder of files. For GPT-2 (``gpt2``, ``distilgpt2``, ``gpt2-medium``,
...) three of them are all attnlab needs:

``config.json``        the sizes (``n_embd``, ``n_layer``, ``n_head``, ``n_positions``,
                       ``vocab_size``, ``n_inner``, ``activation_function``,
                       ``layer_norm_epsilon``, dropout rates);
``model.safetensors``  the weights, one named tensor each (``wte.weight``, ``h.0.attn.c_attn.weight``,
                       ...; a file written by ``transformers`` prefixes them with ``transformer.``);
``tokenizer.json``     the byte-level BPE tokenizer, read by the ``tokenizers`` library.

How GPT-2's tensors map onto attnlab's GPT (D = ``n_embd``, F = ``n_inner`` or 4·D):

=============================  ==========  ================================================
GPT-2 tensor                   shape       attnlab parameter
=============================  ==========  ================================================
``wte.weight``                 (V, D)      ``token_embedding.embedding`` (also the output
                                           head: GPT-2 ties them, as attnlab does)
``wpe.weight``                 (C, D)      ``position_embedding.embedding``
``h.i.ln_1.weight`` / ``bias`` (D,)        ``blocks.i.ln_1.scale`` / ``bias``
``h.i.attn.c_attn.weight``     (D, 3·D)    columns ``[0:D]`` → ``W_q.kernel``, ``[D:2D]`` →
                                           ``W_k.kernel``, ``[2D:3D]`` → ``W_v.kernel``
``h.i.attn.c_attn.bias``       (3·D,)      split the same way into the three biases
``h.i.attn.c_proj.weight``     (D, D)      ``blocks.i.attention.W_o.kernel``
``h.i.ln_2.*``                 (D,)        ``blocks.i.ln_2.*``
``h.i.mlp.c_fc.weight``        (D, F)      ``blocks.i.mlp.fc_in.kernel``
``h.i.mlp.c_proj.weight``      (F, D)      ``blocks.i.mlp.fc_out.kernel``
``ln_f.weight`` / ``bias``     (D,)        ``ln_f.scale`` / ``bias``
=============================  ==========  ================================================

GPT-2's linear layers are ``Conv1D`` modules that store their weight as (in, out), the same
layout as a flax ``nnx.Linear`` kernel, so no weight is transposed. (A PyTorch ``nn.Linear``
stores (out, in); that is the classic mistake when porting GPT-2.) Every GPT-2 linear layer
and LayerNorm has a bias, as attnlab's do: nothing is added or dropped. Heads are the
consecutive ``d_head``-wide column slices of q, k and v in both models. GPT-2 uses LayerNorm
ε = 1e-5 and the tanh approximation of GELU (``activation_function: "gelu_new"``), both read
from the config. Two kinds of stored tensor carry no learned weights and are skipped: the
causal-mask buffers ``h.i.attn.bias`` / ``h.i.attn.masked_bias`` of older files; and an
``lm_head.weight``, which must equal ``wte.weight`` (tied), else the file is refused.

Sources: Radford et al. 2019 (GPT-2); the Hugging Face ``transformers`` GPT-2 configuration
fields and checkpoint names.
"""

from __future__ import annotations

import json
import os
import pathlib
import socket
from collections.abc import Mapping

import jax.numpy as jnp
import numpy as np
import safetensors.numpy
from flax import nnx

from attnlab.gpt import GPT, GPTConfig
from attnlab.tokenization import BPETokenizer, Piece

__all__ = [
    "GPT2Tokenizer",
    "config_from_hf",
    "config_to_hf",
    "gpt2_to_attnlab",
    "attnlab_to_gpt2",
    "split_c_attn",
    "load_gpt2",
    "save_gpt2",
    "train_byte_level_bpe",
    "write_tiny_gpt2",
    "hub_reachable",
]

FILES = ("config.json", "model.safetensors", "tokenizer.json")
_GELU = {"gelu_new": "tanh", "gelu_pytorch_tanh": "tanh", "gelu_fast": "tanh", "gelu": "exact"}
_SKIPPED = (".attn.bias", ".attn.masked_bias")


# --- the tokenizer --------------------------------------------------------------------------


class GPT2Tokenizer(BPETokenizer):
    """GPT-2's byte-level BPE tokenizer (any ``tokenizer.json``), through ``tokenizers``.

    Byte-level: text is first turned into its UTF-8 bytes, each byte shown as one printable
    character (a space is ``Ġ``, a newline ``Ċ``), then BPE merges those; so any text encodes,
    with no unknown token, and ``decode(encode(text)) == text`` (runs of spaces, emoji and all).
    A subclass of :class:`~attnlab.tokenization.BPETokenizer`, so
    :func:`~attnlab.tokenization.token_pieces` and the token viewer accept it.

    Attributes:
      tokenizer: the underlying ``tokenizers.Tokenizer``.
    """

    def __init__(self, tokenizer):
        super().__init__(tokenizer)
        # Byte-level tokenizers cover every character (and may trim spaces out of offsets);
        # others can lack a character, which tokenizers would drop silently.
        self.byte_level: bool = '"ByteLevel"' in tokenizer.to_str()

    def encode(self, text: str) -> np.ndarray:
        """Text → ``(N,)`` int32 ids.

        Raises:
          TypeError: if ``text`` is not a str.
          ValueError: if some characters have no token (possible only for a tokenizer that is
            not byte-level, e.g. a character vocabulary saved by :func:`save_gpt2`); the
            message lists them. ``tokenizers`` itself would drop them silently.
        """
        if not isinstance(text, str):
            raise TypeError(f"text must be a str; got {type(text).__name__}.")
        encoding = self.tokenizer.encode(text)
        if self.byte_level:
            return np.array(encoding.ids, dtype=np.int32)
        covered = np.zeros(len(text), bool)
        for start, end in encoding.offsets:
            covered[start:end] = True
        if not covered.all():
            missing = sorted({text[i] for i in np.flatnonzero(~covered)} - {""})
            raise ValueError(f"text has characters this tokenizer cannot encode: {missing}.")
        return np.array(encoding.ids, dtype=np.int32)

    def decode(self, ids) -> str:
        """Ids → text, bytes joined back by the tokenizer's decoder.

        Raises:
          ValueError: if an id is outside ``[0, vocab_size)``.
        """
        ids = np.asarray(ids).reshape(-1).tolist()
        bad = [i for i in ids if not 0 <= int(i) < self.vocab_size]
        if bad:
            raise ValueError(f"ids must be in [0, {self.vocab_size}); got {bad[:5]}.")
        return self.tokenizer.decode([int(i) for i in ids], skip_special_tokens=False)

    def pieces(self, text: str) -> list[Piece]:
        """The tokens of ``text`` with the characters each covers (a multi-byte character split
        over several byte tokens gives each of them that whole character)."""
        if not isinstance(text, str):
            raise TypeError(f"text must be a str; got {type(text).__name__}.")
        encoding = self.tokenizer.encode(text)
        return [Piece(i, token, text[start:end], start, end)
                for i, token, (start, end) in zip(encoding.ids, encoding.tokens,
                                                  encoding.offsets, strict=True)]

    def __repr__(self) -> str:
        return f"GPT2Tokenizer(vocab_size={self.vocab_size})"


def _read_tokenizer(path: pathlib.Path) -> GPT2Tokenizer:
    from tokenizers import Tokenizer

    return GPT2Tokenizer(Tokenizer.from_file(str(path)))


# --- configs --------------------------------------------------------------------------------


def config_from_hf(hf: Mapping) -> GPTConfig:
    """A :class:`GPTConfig` from the fields of a GPT-2 ``config.json``.

    ``n_embd`` → ``d_model``, ``n_layer`` → ``n_layers``, ``n_head`` → ``n_heads``,
    ``n_positions`` → ``context_length``, ``vocab_size``, ``n_inner`` (``null`` = 4·``n_embd``)
    → ``d_ff``, ``layer_norm_epsilon``, ``activation_function`` (``gelu_new`` → ``"tanh"``,
    ``gelu`` → ``"exact"``), ``resid_pdrop`` → ``dropout`` (attnlab has one rate; GPT-2's
    dropout on the attention weights, ``attn_pdrop``, has no counterpart and only matters in
    training).

    Raises:
      ValueError: for a missing field, an activation other than those above, or a GPT-2
        variant attnlab does not compute (``scale_attn_weights: false``,
        ``scale_attn_by_inverse_layer_idx: true``, cross-attention).
    """
    if not isinstance(hf, Mapping):
        raise TypeError(f"hf must be a mapping (config.json's fields); got {type(hf).__name__}.")
    if hf.get("model_type", "gpt2") != "gpt2":
        raise ValueError(f"config.json has model_type {hf['model_type']!r}; expected 'gpt2'.")
    missing = [k for k in ("n_embd", "n_layer", "n_head", "vocab_size") if k not in hf]
    if "n_positions" not in hf and "n_ctx" not in hf:
        missing.append("n_positions")
    if missing:
        raise ValueError(f"config.json lacks the GPT-2 field(s) {missing}.")
    activation = hf.get("activation_function", "gelu_new")
    if activation not in _GELU:
        raise ValueError(
            f"activation_function {activation!r} is not supported; expected one of {sorted(_GELU)}."
        )
    for key, ok in (("scale_attn_weights", True), ("scale_attn_by_inverse_layer_idx", False),
                    ("add_cross_attention", False)):
        if hf.get(key, ok) != ok:
            raise ValueError(f"config.json sets {key}={hf[key]!r}; attnlab's GPT computes "
                             f"{key}={ok} only.")
    d_model = int(hf["n_embd"])
    return GPTConfig(
        vocab_size=int(hf["vocab_size"]),
        context_length=int(hf.get("n_positions", hf.get("n_ctx"))),
        n_layers=int(hf["n_layer"]),
        n_heads=int(hf["n_head"]),
        d_model=d_model,
        d_ff=int(hf.get("n_inner") or 4 * d_model),
        dropout=float(hf.get("resid_pdrop", 0.0)),
        layer_norm_epsilon=float(hf.get("layer_norm_epsilon", 1e-5)),
        gelu=_GELU[activation],
    )


def config_to_hf(config: GPTConfig) -> dict:
    """The GPT-2 ``config.json`` fields of a :class:`GPTConfig` (inverse of :func:`config_from_hf`)."""
    return {
        "model_type": "gpt2",
        "architectures": ["GPT2LMHeadModel"],
        "vocab_size": config.vocab_size,
        "n_positions": config.context_length,
        "n_ctx": config.context_length,
        "n_embd": config.d_model,
        "n_layer": config.n_layers,
        "n_head": config.n_heads,
        "n_inner": config.d_ff,
        "activation_function": "gelu_new" if config.gelu == "tanh" else "gelu",
        "layer_norm_epsilon": config.layer_norm_epsilon,
        "resid_pdrop": config.dropout,
        "embd_pdrop": config.dropout,
        "attn_pdrop": 0.0,
        "tie_word_embeddings": True,
        "bos_token_id": config.vocab_size - 1,
        "eos_token_id": config.vocab_size - 1,
    }


# --- tensors --------------------------------------------------------------------------------


def _expected_shapes(config: GPTConfig) -> dict[str, tuple[int, ...]]:
    V, C, D, F = config.vocab_size, config.context_length, config.d_model, config.d_ff
    shapes = {"wte.weight": (V, D), "wpe.weight": (C, D), "ln_f.weight": (D,), "ln_f.bias": (D,)}
    for i in range(config.n_layers):
        h = f"h.{i}."
        shapes.update({
            h + "ln_1.weight": (D,), h + "ln_1.bias": (D,),
            h + "attn.c_attn.weight": (D, 3 * D), h + "attn.c_attn.bias": (3 * D,),
            h + "attn.c_proj.weight": (D, D), h + "attn.c_proj.bias": (D,),
            h + "ln_2.weight": (D,), h + "ln_2.bias": (D,),
            h + "mlp.c_fc.weight": (D, F), h + "mlp.c_fc.bias": (F,),
            h + "mlp.c_proj.weight": (F, D), h + "mlp.c_proj.bias": (D,),
        })
    return shapes


def _strip(tensors: Mapping[str, np.ndarray], source: str) -> dict[str, np.ndarray]:
    """GPT-2 names without ``transformer.``, mask buffers dropped, a tied ``lm_head`` checked."""
    out = {}
    for name, value in tensors.items():
        short = name.removeprefix("transformer.")
        if short.endswith(_SKIPPED):
            continue
        out[short] = np.asarray(value)
    head = out.pop("lm_head.weight", None)
    if head is not None and "wte.weight" in out and not (
        head.shape == out["wte.weight"].shape and np.array_equal(head, out["wte.weight"])
    ):
        raise ValueError(
            f"{source}: tensor 'lm_head.weight' differs from 'wte.weight'; attnlab's GPT ties "
            "its output head to the token embedding, as GPT-2 does, and cannot hold a separate one."
        )
    return out


def split_c_attn(weight, bias):
    """Split GPT-2's fused query/key/value projection into its three parts.

    ``c_attn`` computes ``[q | k | v] = x · weight + bias`` in one product: its output axis
    holds all of q, then all of k, then all of v, each ``D`` wide (and within each, head h is
    columns ``h·d_head`` to ``(h+1)·d_head``). Conv1D stores ``weight`` as (in, out), so the
    parts are column slices, not transposed.

    Args:
      weight: ``(D, 3·D)`` array, ``h.i.attn.c_attn.weight``.
      bias: ``(3·D,)`` array, ``h.i.attn.c_attn.bias``.

    Returns:
      ``(W_q, W_k, W_v, b_q, b_k, b_v)``: kernels ``(D, D)`` (in, out), biases ``(D,)``.

    Raises:
      ValueError: if the shapes are not ``(D, 3·D)`` and ``(3·D,)``.
    """
    D = weight.shape[0]
    if weight.ndim != 2 or weight.shape[1] != 3 * D or tuple(bias.shape) != (3 * D,):
        raise ValueError(f"c_attn weight must be (D, 3*D) and bias (3*D,); got "
                         f"{tuple(weight.shape)} and {tuple(bias.shape)}.")
    kernels = tuple(weight[:, j * D:(j + 1) * D] for j in range(3))
    biases = tuple(bias[j * D:(j + 1) * D] for j in range(3))
    return (*kernels, *biases)


def _one_to_one(n_layers: int) -> list[tuple[str, str]]:
    """``(GPT-2 name, attnlab name)`` of every tensor that maps one to one (all but ``c_attn``)."""
    pairs = [("wte.weight", "token_embedding.embedding"),
             ("wpe.weight", "position_embedding.embedding"),
             ("ln_f.weight", "ln_f.scale"), ("ln_f.bias", "ln_f.bias")]
    for i in range(n_layers):
        h, b = f"h.{i}.", f"blocks.{i}."
        pairs += [(h + "attn.c_proj.weight", b + "attention.W_o.kernel"),
                  (h + "attn.c_proj.bias", b + "attention.W_o.bias"),
                  (h + "mlp.c_fc.weight", b + "mlp.fc_in.kernel"),
                  (h + "mlp.c_fc.bias", b + "mlp.fc_in.bias"),
                  (h + "mlp.c_proj.weight", b + "mlp.fc_out.kernel"),
                  (h + "mlp.c_proj.bias", b + "mlp.fc_out.bias")]
        for ln in ("ln_1", "ln_2"):
            pairs += [(f"{h}{ln}.weight", f"{b}{ln}.scale"), (f"{h}{ln}.bias", f"{b}{ln}.bias")]
    return pairs


def gpt2_to_attnlab(tensors: Mapping[str, np.ndarray], config: GPTConfig, *,
                    source: str = "the checkpoint") -> dict[str, np.ndarray]:
    """Rename (and split) GPT-2 tensors into attnlab's parameter names (table in the module doc).

    Args:
      tensors: ``{name: array}`` as stored in a GPT-2 ``model.safetensors`` (with or without
        the ``transformer.`` prefix).
      config: the :class:`GPTConfig` the tensors must fit.
      source: how error messages name the file.

    Returns:
      ``{attnlab name: array}``, e.g. ``blocks.0.attention.W_q.kernel`` ``(D, D)``.

    Raises:
      ValueError: naming the tensor, if one is missing, unexpected, or misshapen.
    """
    tensors = _strip(tensors, source)
    expected = _expected_shapes(config)
    missing = [n for n in expected if n not in tensors]
    if missing:
        raise ValueError(f"{source}: missing tensor {missing[0]!r}"
                         + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else "")
                         + f"; a GPT-2 with {config} needs it.")
    unexpected = sorted(set(tensors) - set(expected))
    if unexpected:
        raise ValueError(f"{source}: unexpected tensor {unexpected[0]!r}"
                         + (f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else "")
                         + f"; it has no place in a GPT-2 with {config}.")
    for name, shape in expected.items():
        if tensors[name].shape != shape:
            raise ValueError(f"{source}: tensor {name!r} has shape {tensors[name].shape}; a GPT-2 "
                             f"with {config} needs {shape}.")
    out = {ours: tensors[theirs] for theirs, ours in _one_to_one(config.n_layers)}
    for i in range(config.n_layers):
        h, b = f"h.{i}.", f"blocks.{i}."
        parts = split_c_attn(tensors[h + "attn.c_attn.weight"], tensors[h + "attn.c_attn.bias"])
        for j, part in enumerate(("W_q", "W_k", "W_v")):  # c_attn's output is [q | k | v]
            out[f"{b}attention.{part}.kernel"] = parts[j]
            out[f"{b}attention.{part}.bias"] = parts[3 + j]
    return {name: np.ascontiguousarray(value) for name, value in out.items()}


def attnlab_to_gpt2(model: GPT) -> dict[str, np.ndarray]:
    """A GPT's parameters under GPT-2's names (``wte.weight``, ``h.0.attn.c_attn.weight``, ...),
    q, k and v fused back into ``c_attn``; inverse of :func:`gpt2_to_attnlab`."""
    from attnlab.checkpoint import param_arrays

    p = param_arrays(model)
    out = {theirs: p[ours] for theirs, ours in _one_to_one(model.config.n_layers)}
    for i in range(model.config.n_layers):
        a = f"blocks.{i}.attention."
        out[f"h.{i}.attn.c_attn.weight"] = np.concatenate(
            [p[a + f"{w}.kernel"] for w in ("W_q", "W_k", "W_v")], axis=1)
        out[f"h.{i}.attn.c_attn.bias"] = np.concatenate(
            [p[a + f"{w}.bias"] for w in ("W_q", "W_k", "W_v")])
    return {name: np.ascontiguousarray(value) for name, value in out.items()}


# --- loading and saving ----------------------------------------------------------------------


def hub_reachable(timeout: float = 2.0) -> bool:
    """Whether ``huggingface.co`` answers on port 443 within ``timeout`` seconds.

    False at once when ``HF_HUB_OFFLINE=1`` or ``ATTNLAB_OFFLINE=1`` is set. Used to skip the
    Hub client's retries (about 25 s) on a machine without network.
    """
    if os.environ.get("HF_HUB_OFFLINE") == "1" or os.environ.get("ATTNLAB_OFFLINE") == "1":
        return False
    try:
        with socket.create_connection(("huggingface.co", 443), timeout=timeout):
            return True
    except OSError:
        return False


def _fetch(name: str, revision: str | None, offline: bool) -> pathlib.Path:
    """The folder holding ``name``'s files in the Hugging Face cache, downloading when online."""
    try:
        from huggingface_hub import hf_hub_download
    except ImportError:
        raise ImportError(
            "loading from the Hub needs huggingface_hub: pip install 'attnlab[hub]' (or pass "
            "local_dir= to load a folder you already have)."
        ) from None
    paths = []
    for filename in FILES:
        try:
            paths.append(hf_hub_download(name, filename, revision=revision,
                                         local_files_only=offline))
        except Exception as error:  # the Hub client's many error classes, all explained below
            where = ("not in the local Hugging Face cache and the Hub is not reachable (offline)"
                     if offline else f"could not be fetched ({type(error).__name__})")
            raise OSError(
                f"model {name!r}: {filename} is {where}. Check the name (e.g. 'gpt2', "
                "'distilgpt2', 'gpt2-medium'), connect to the internet once to fill the cache, "
                "or pass local_dir= a folder holding config.json, model.safetensors and "
                "tokenizer.json."
            ) from None
    return pathlib.Path(paths[0]).parent


def load_gpt2(name: str = "gpt2", *, local_dir: str | os.PathLike | None = None,
              dtype=jnp.float32, revision: str | None = None, offline: bool | None = None):
    """Load a GPT-2 checkpoint in the Hugging Face layout into attnlab's :class:`GPT`.

    Args:
      name: a Hub model id (``"gpt2"``, ``"distilgpt2"``, ``"gpt2-medium"``, ...), used when
        ``local_dir`` is None: files come from the Hugging Face cache, downloaded if missing.
      local_dir: a folder with ``config.json`` and ``model.safetensors`` (and optionally
        ``tokenizer.json``); no network is used.
      dtype: the parameters' dtype (default float32; the Hub's GPT-2 files are float32).
      revision: a Hub branch, tag or commit (default the main branch).
      offline: ``True`` reads the cache only; ``None`` decides with :func:`hub_reachable`.

    Returns:
      ``(model, tokenizer)``: a :class:`GPT` whose ``model(ids)`` gives GPT-2's next-token
      logits ``(B, T, V)``, and a :class:`GPT2Tokenizer` (``None`` if there is no
      ``tokenizer.json``).

    Raises:
      OSError: if the files cannot be found (offline and not cached, unknown name) — one
        sentence, not the Hub client's traceback; FileNotFoundError for a missing local file.
      ImportError: if ``huggingface_hub`` is needed and missing.
      ValueError: if config.json is not a GPT-2 config attnlab computes, or a tensor is
        missing, unexpected or misshapen (the message names it).
    """
    if local_dir is None:
        if offline is None:
            offline = not hub_reachable()
        folder = _fetch(name, revision, offline)
    else:
        folder = pathlib.Path(local_dir).expanduser()
        for filename in FILES[:2]:
            if not (folder / filename).is_file():
                raise FileNotFoundError(f"{str(folder)!r} has no {filename}; a GPT-2 folder "
                                        f"holds {', '.join(FILES)}.")
    config = config_from_hf(json.loads((folder / "config.json").read_text()))
    source = repr(str(folder / "model.safetensors"))
    try:
        stored = safetensors.numpy.load_file(str(folder / "model.safetensors"))
    except Exception as error:
        raise ValueError(f"{source} is not a readable safetensors file ({error}).") from None
    params = gpt2_to_attnlab(stored, config, source=source)
    model = GPT(config, rngs=nnx.Rngs(0))  # random weights, each replaced just below
    from attnlab.checkpoint import assign_params

    assign_params(model, params, dtype=dtype)
    tokenizer_file = folder / "tokenizer.json"
    tokenizer = _read_tokenizer(tokenizer_file) if tokenizer_file.is_file() else None
    if tokenizer is not None and tokenizer.vocab_size > config.vocab_size:
        raise ValueError(f"{str(tokenizer_file)!r} has {tokenizer.vocab_size} tokens but the "
                         f"model's vocab_size is {config.vocab_size}.")
    return model, tokenizer


def _tokenizer_json(tokenizer) -> str:
    """``tokenizer.json`` text for a GPT2Tokenizer/BPETokenizer, a ``tokenizers.Tokenizer``, or
    a :class:`~attnlab.data.CharTokenizer` (as a BPE with one token per character, no merges)."""
    from attnlab.data import CharTokenizer

    if isinstance(tokenizer, BPETokenizer):
        return tokenizer.tokenizer.to_str()
    if isinstance(tokenizer, CharTokenizer):
        from tokenizers import Tokenizer, decoders, models

        vocab = {c: i for i, c in enumerate(tokenizer.vocab)}
        hf = Tokenizer(models.BPE(vocab=vocab, merges=[]))
        hf.decoder = decoders.Fuse()
        return hf.to_str()
    if hasattr(tokenizer, "to_str"):
        return tokenizer.to_str()
    raise TypeError(f"tokenizer must be a GPT2Tokenizer, BPETokenizer, CharTokenizer or "
                    f"tokenizers.Tokenizer; got {type(tokenizer).__name__}.")


def save_gpt2(model: GPT, path: str | os.PathLike, tokenizer=None) -> pathlib.Path:
    """Write ``model`` in the Hugging Face GPT-2 layout: ``config.json``, ``model.safetensors``
    (GPT-2's tensor names, float32 as stored, ``{"format": "pt"}`` metadata as ``transformers``
    expects) and, with a tokenizer, ``tokenizer.json``. ``load_gpt2(local_dir=path)`` reads it
    back to the same logits; ``transformers.GPT2LMHeadModel.from_pretrained(path)`` reads it too.

    Args:
      model: a :class:`GPT`.
      path: the folder to write (created if missing; files in it are replaced atomically).
      tokenizer: optional; see :func:`_tokenizer_json` for the kinds accepted.

    Returns:
      The folder, as a ``pathlib.Path``.
    """
    from attnlab.checkpoint import atomic_write

    if not isinstance(model, GPT):
        raise TypeError(f"model must be an attnlab GPT; got {type(model).__name__}.")
    folder = pathlib.Path(path).expanduser()
    tensors = attnlab_to_gpt2(model)
    atomic_write(folder / "model.safetensors",
                 safetensors.numpy.save(tensors, metadata={"format": "pt"}))
    atomic_write(folder / "config.json",
                 json.dumps(config_to_hf(model.config), indent=2).encode())
    if tokenizer is not None:
        atomic_write(folder / "tokenizer.json", _tokenizer_json(tokenizer).encode())
    return folder


def train_byte_level_bpe(text: str, vocab_size: int) -> GPT2Tokenizer:
    """A GPT-2-style byte-level BPE tokenizer trained on ``text``, ``vocab_size`` tokens in all,
    the last being ``<|endoftext|>`` (as in GPT-2, whose real merges come from 40 GB of web
    text). At least 257 tokens: the 256 byte symbols and ``<|endoftext|>``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    if not isinstance(vocab_size, int) or vocab_size < 257:
        raise ValueError(f"vocab_size must be an int >= 257; got {vocab_size!r}.")
    hf = Tokenizer(models.BPE())
    hf.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    hf.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size - 1, min_frequency=2, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
    )
    hf.train_from_iterator([text], trainer=trainer)
    hf.add_special_tokens(["<|endoftext|>"])
    return GPT2Tokenizer(hf)


def write_tiny_gpt2(path: str | os.PathLike, *, vocab_size: int = 1000, context_length: int = 64,
                    n_layers: int = 2, n_heads: int = 4, d_model: int = 64, seed: int = 0,
                    tokenizer: bool = True, prefix: str = "") -> pathlib.Path:
    """Write a tiny random GPT-2 in the Hugging Face layout, with our own code (no download).

    Tensors are normal(0, 0.02) (LayerNorm weights around 1, biases small but non-zero, so a
    wrong mapping of any of them shows), float32, under GPT-2's names with ``prefix``
    (``"transformer."`` imitates a file from ``transformers``' ``save_pretrained``). With
    ``tokenizer``, a byte-level BPE of ``vocab_size`` tokens trained on attnlab's embedded
    corpus is written as ``tokenizer.json`` (needs the ``tokenizers`` library).

    Returns:
      The folder.
    """
    from attnlab.checkpoint import atomic_write

    config = GPTConfig(vocab_size=vocab_size, context_length=context_length, n_layers=n_layers,
                       n_heads=n_heads, d_model=d_model, d_ff=4 * d_model, dropout=0.0)
    rng = np.random.default_rng(seed)
    tensors = {}
    for name, shape in _expected_shapes(config).items():
        if name.endswith(("ln_1.weight", "ln_2.weight", "ln_f.weight")):
            value = 1.0 + 0.1 * rng.standard_normal(shape)
        else:  # matrices and biases alike
            value = 0.02 * rng.standard_normal(shape)
        tensors[prefix + name] = value.astype(np.float32)
    folder = pathlib.Path(path).expanduser()
    atomic_write(folder / "model.safetensors",
                 safetensors.numpy.save(tensors, metadata={"format": "pt"}))
    atomic_write(folder / "config.json", json.dumps(config_to_hf(config), indent=2).encode())
    if tokenizer:
        from attnlab.data import load_corpus

        bpe = train_byte_level_bpe(load_corpus(), vocab_size)
        atomic_write(folder / "tokenizer.json", bpe.tokenizer.to_str().encode())
    return folder
