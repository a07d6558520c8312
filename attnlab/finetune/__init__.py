"""Adapting a pretrained GPT: choose what trains, low-rank adapters, masked losses, task heads.

Fine-tuning starts from trained weights and trains on a new task. What differs between the
methods is *which* numbers change:

- **full fine-tuning**: every parameter (:func:`make_finetune_optimizer` with ``nnx.Param``);
- **freezing**: only the parameters a filter selects, e.g. :func:`top_blocks` (the others stay
  bit-identical, weight decay included: the optimizer never sees them);
- **LoRA** (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models", eq. 3):
  each chosen ``x @ W + b`` becomes ``x @ W + b + (alpha / r) · x @ A @ B`` with ``A (in, r)``
  random, ``B (r, out)`` zero at the start, ``W`` frozen; :func:`add_lora`, :func:`merge_lora`;
- **new tokens**: :func:`extend_vocab` appends rows for characters the model never saw to its
  (tied) token embedding; only those rows (:class:`NewTokenParam`) train, the old rows stay
  bit-identical; :func:`merge_new_tokens` gives a plain GPT again;
- **a task head**: a small layer on the GPT's hidden states, one label per sentence
  (:class:`SequenceClassifier`) or per token (:class:`TokenClassifier`).

Also: :func:`masked_cross_entropy` (prompt → completion training counts only completion
tokens), :func:`encode_pairs` (pairs in a fixed template with their loss mask),
:func:`load_sentiment` and :func:`load_prompt_pairs` (the small datasets written for the
course, shipped under ``attnlab/datasets/``), and :func:`bag_of_words_predict` (a word-count
baseline for the sentiment classifiers, no neural network).

Pure and jit-able; imports neither viz nor widgets.
"""

from __future__ import annotations

import csv
import dataclasses
import functools
import math
import re
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from attnlab.attention import causal_mask
from attnlab.data import CharTokenizer
from attnlab.gpt import GPT, gpt2_init_std
from attnlab.train import TrainConfig, make_schedule

__all__ = [
    "LORA_TARGETS",
    "PAIR_TEMPLATE",
    "LoRALinear",
    "LoRAParam",
    "NewTokenParam",
    "SequenceClassifier",
    "TokenClassifier",
    "add_lora",
    "bag_of_words_predict",
    "classify_step",
    "count_params",
    "extend_vocab",
    "ExtendedEmbed",
    "encode_pairs",
    "encode_sentences",
    "finetune_step",
    "greedy_completions",
    "hidden_states",
    "load_french_text",
    "load_prompt_pairs",
    "load_sentiment",
    "make_finetune_optimizer",
    "masked_cross_entropy",
    "merge_lora",
    "merge_new_tokens",
    "predict_proba",
    "top_blocks",
    "words_of",
]

Filter = Any  # an nnx filter: a Variable type, nnx.PathContains, nnx.All, a (path, value) callable


# --- choosing what trains ------------------------------------------------------------------------


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


# --- losses --------------------------------------------------------------------------------------


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


# --- LoRA ----------------------------------------------------------------------------------------


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


# --- new tokens ----------------------------------------------------------------------------------


class NewTokenParam(nnx.Param):
    """The type of the embedding rows :func:`extend_vocab` adds, so a filter can select them alone."""


class ExtendedEmbed(nnx.Module):
    """A token embedding whose table is a frozen base table followed by new trainable rows.

    ``table = concat([E_base (V, D), E_new (n, D)])``, shape ``(V + n, D)``. Like ``nnx.Embed``
    it embeds ids (``table[ids]``) and, because the GPT's output head is tied to it, scores
    hidden states against every row (``attend``: ``x · tableᵀ``, ``(..., V + n)`` logits). Old
    and new rows are separate arrays: an optimizer built with ``wrt=NewTokenParam`` holds no
    state for ``E_base`` and never writes it, so the old rows stay bit-identical, weight decay
    included. (A gradient mask on one ``(V + n, D)`` table would also need AdamW's decay kept
    off the old rows; two arrays make the question disappear.)

    Args:
      base: the model's ``nnx.Embed`` (kept, not copied).
      new_rows: ``(n, D)`` float32 start values of the new rows.
    """

    def __init__(self, base: nnx.Embed, new_rows: jax.Array):
        self.base = base
        self.new_rows = NewTokenParam(jnp.asarray(new_rows, jnp.float32))

    @property
    def embedding(self) -> jax.Array:
        """The whole ``(V + n, D)`` table, old rows first."""
        return jnp.concatenate([self.base.embedding[...], self.new_rows[...]], axis=0)

    def __call__(self, ids: jax.Array) -> jax.Array:
        """``ids (...)`` int in ``[0, V + n)`` → ``(..., D)`` vectors."""
        return jnp.take(self.embedding, ids, axis=0)

    def attend(self, x: jax.Array) -> jax.Array:
        """``x (..., D)`` → ``(..., V + n)`` scores, one per row (the tied output head)."""
        return x @ self.embedding.T


def extend_vocab(model: GPT, tokenizer: CharTokenizer, new_chars: Sequence[str] | str, *,
                 seed: int = 0) -> tuple[GPT, CharTokenizer]:
    """A copy of ``model`` and ``tokenizer`` that know ``new_chars`` as extra tokens.

    The new characters get ids ``V, V + 1, ...`` (V = the old vocabulary size) in the order
    given. The model's token embedding becomes an :class:`ExtendedEmbed`: the old ``(V, D)``
    rows unchanged, ``n`` new rows drawn normal(0, 0.02) as at GPT initialisation. The output
    head is tied to the embedding (logits = ``h · Eᵀ``), so each new row is at once the new
    token's input vector and its output vector; ``logits`` grow from ``(B, T, V)`` to
    ``(B, T, V + n)``. On text made of old characters only, the copy's logits for the old
    tokens equal the original's (to float rounding).

    To train only the new rows: ``make_finetune_optimizer(model, config, wrt=NewTokenParam)``
    (``n · D`` numbers).

    Args:
      model: a :class:`~attnlab.gpt.GPT` whose token embedding has ``tokenizer.vocab_size``
        rows (not modified: the result is a copy).
      tokenizer: its :class:`~attnlab.data.CharTokenizer`.
      new_chars: the characters to add, each once, none already in the vocabulary (a string
        such as ``"éèà"`` or a list of single characters).
      seed: seeds the new rows.

    Returns:
      ``(extended_model, extended_tokenizer)``; ``extended_model.config.vocab_size`` is V + n.

    Raises:
      ValueError: if ``new_chars`` is empty, repeats a character, holds something other than
        single characters, or holds characters the vocabulary already has; if the model's
        embedding does not match the tokenizer, or was already extended.
      TypeError: if ``model`` is not a GPT.
    """
    if not isinstance(model, GPT):
        raise TypeError(f"model must be an attnlab.gpt.GPT; got {type(model).__name__}.")
    chars = list(new_chars)
    if not chars:
        raise ValueError("new_chars is empty: give at least one character to add.")
    if any(not isinstance(c, str) or len(c) != 1 for c in chars):
        raise ValueError(f"new_chars must be single characters; got {chars!r}.")
    known = sorted({c for c in chars if c in tokenizer.vocab})
    if known:
        raise ValueError(f"new_chars holds characters the vocabulary already has: "
                         f"{''.join(known)!r}. Add only characters the model never saw.")
    if len(set(chars)) != len(chars):
        repeated = sorted({c for c in chars if chars.count(c) > 1})
        raise ValueError(f"new_chars repeats {''.join(repeated)!r}; give each character once.")
    if isinstance(model.token_embedding, ExtendedEmbed):
        raise ValueError("model's vocabulary was already extended; call merge_new_tokens first.")
    V, D = model.token_embedding.embedding[...].shape
    if V != tokenizer.vocab_size:
        raise ValueError(f"the model's embedding has {V} rows but the tokenizer has "
                         f"{tokenizer.vocab_size} tokens; pass the model's own tokenizer.")
    extended = nnx.clone(model)
    std = gpt2_init_std(model.config.n_layers)[0]
    new_rows = std * jax.random.normal(jax.random.key(seed), (len(chars), D), jnp.float32)
    extended.token_embedding = ExtendedEmbed(extended.token_embedding, new_rows)
    extended.config = dataclasses.replace(model.config, vocab_size=V + len(chars))
    return extended, CharTokenizer(tokenizer.vocab + "".join(chars))


def merge_new_tokens(model: GPT) -> GPT:
    """A copy of an :func:`extend_vocab` model with one plain ``(V + n, D)`` ``nnx.Embed`` again,
    so that it saves, loads and samples like any GPT. Same outputs (same table).

    Raises:
      ValueError: if the model's vocabulary was not extended.
    """
    if not isinstance(model.token_embedding, ExtendedEmbed):
        raise ValueError("model has no new tokens to merge; call extend_vocab first.")
    merged = nnx.clone(model)
    table = merged.token_embedding.embedding
    embed = nnx.Embed(*table.shape, rngs=nnx.Rngs(0))
    embed.embedding[...] = table
    merged.token_embedding = embed
    return merged


# --- heads on the hidden states ------------------------------------------------------------------


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


class _HeadOnBody(nnx.Module):
    """A GPT body (kept, not copied) and a linear head ``d_model -> n_classes``."""

    def __init__(self, body: GPT, n_classes: int, *, rngs: nnx.Rngs):
        if isinstance(n_classes, bool) or not isinstance(n_classes, int) or n_classes < 2:
            raise ValueError(f"n_classes must be an int >= 2; got {n_classes!r}.")
        self.body = body
        self.n_classes = n_classes
        self.head = nnx.Linear(body.config.d_model, n_classes,
                               kernel_init=nnx.initializers.normal(0.02), rngs=rngs)


class SequenceClassifier(_HeadOnBody):
    """A GPT body and a linear head on the mean of its hidden states over each sentence's tokens.

    ``logits = mean_{t < length} h_t · W + b`` with ``h = hidden_states(body, tokens)``.
    Padding after a sentence does not change its logits (the attention is causal and the mean
    covers only the first ``length`` positions).

    Args:
      body: a :class:`~attnlab.gpt.GPT` (kept, not copied: clone it first to keep the original).
      n_classes: ≥ 2.
      rngs: initialises the head (normal(0, 0.02), bias 0).
    """

    def __call__(self, tokens: jax.Array, lengths: jax.Array, *, deterministic: bool = True
                 ) -> jax.Array:
        """``tokens (B, T)`` int, ``lengths (B,)`` int in [1, T] → class logits ``(B, n_classes)``."""
        h = hidden_states(self.body, tokens, deterministic=deterministic)  # (B, T, D)
        keep = (jnp.arange(tokens.shape[1])[None] < lengths[:, None]).astype(h.dtype)  # (B, T)
        pooled = (h * keep[..., None]).sum(1) / jnp.maximum(keep.sum(1, keepdims=True), 1.0)
        return self.head(pooled)


class TokenClassifier(_HeadOnBody):
    """A GPT body and a linear head on every position: one label per token ``(B, T, n_classes)``.

    Each position sees only itself and earlier tokens (causal attention).
    """

    def __call__(self, tokens: jax.Array, *, deterministic: bool = True) -> jax.Array:
        return self.head(hidden_states(self.body, tokens, deterministic=deterministic))


def _check_labels(labels, n_classes):
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        bad = sorted({int(v) for v in labels.ravel() if not 0 <= v < n_classes})
        raise ValueError(f"labels must be in [0, {n_classes}); got {bad[:5]}.")


@functools.partial(nnx.jit, static_argnames="wrt")
def _classify_step(classifier, optimizer, tokens, lengths, labels, wrt):
    def loss_fn(classifier):
        if isinstance(classifier, TokenClassifier):
            logits = classifier(tokens, deterministic=False)  # (B, T, K)
            return masked_cross_entropy(logits, labels, lengths)  # lengths is a (B, T) mask here
        logits = classifier(tokens, lengths, deterministic=False)  # (B, K)
        return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

    loss, grads = nnx.value_and_grad(loss_fn, argnums=nnx.DiffState(0, wrt))(classifier)
    optimizer.update(classifier, grads)
    return loss


def classify_step(classifier: SequenceClassifier | TokenClassifier, optimizer: nnx.Optimizer,
                  tokens: jax.Array, lengths_or_mask: jax.Array, labels: jax.Array) -> jax.Array:
    """One compiled training step of a classifier (cross-entropy on its labels).

    Args:
      classifier: a :class:`SequenceClassifier` or :class:`TokenClassifier`, updated in place.
      optimizer: from :func:`make_finetune_optimizer` for this classifier.
      tokens: ``(B, T)`` int ids.
      lengths_or_mask: for a sequence classifier the ``(B,)`` sentence lengths; for a token
        classifier a ``(B, T)`` 0/1 mask of the positions that count.
      labels: ``(B,)`` (sequence) or ``(B, T)`` (token) ints in ``[0, n_classes)``.

    Returns:
      the batch's mean loss before the update.

    Raises:
      ValueError: if a label is outside ``[0, n_classes)``.
    """
    _check_labels(labels, classifier.n_classes)
    return _classify_step(classifier, optimizer, tokens, lengths_or_mask, labels, optimizer.wrt)


@nnx.jit
def _class_probs(classifier, tokens, lengths):
    return jax.nn.softmax(classifier(tokens, lengths), axis=-1)


def predict_proba(classifier: SequenceClassifier, tokenizer, sentences: Sequence[str]
                  ) -> np.ndarray:
    """Class probabilities ``(N, n_classes)`` float32 for each sentence.

    Sentences are padded to the body's context length (one compiled shape for any sentence).

    Raises:
      ValueError: for an empty sentence, one longer than the context window, or characters
        outside the tokenizer's vocabulary.
    """
    tokens, lengths = encode_sentences(tokenizer, list(sentences),
                                       classifier.body.config.context_length)
    return np.asarray(_class_probs(classifier, tokens, lengths))


# --- the course's small datasets -----------------------------------------------------------------

#: The template of prompt → completion examples; the loss counts the completion and the final
#: newline only.
PAIR_TEMPLATE = ("Q: ", "\nA: ", "\n")


def encode_sentences(tokenizer, sentences: Sequence[str], length: int
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Sentences → ``(tokens (N, length) int32, lengths (N,) int32)``, padded with spaces.

    Raises:
      ValueError: if a sentence is empty or longer than ``length``, or has characters the
        tokenizer lacks.
    """
    pad = tokenizer.encode(" ")[0]
    tokens = np.full((len(sentences), length), pad, np.int32)
    lengths = np.zeros(len(sentences), np.int32)
    for i, s in enumerate(sentences):
        if not 1 <= len(s) <= length:
            raise ValueError(f"sentence {i} has {len(s)} characters; allowed 1 to {length}: {s!r}.")
        tokens[i, : len(s)] = tokenizer.encode(s)
        lengths[i] = len(s)
    return tokens, lengths


def encode_pairs(tokenizer, pairs: Sequence[tuple[str, str]], length: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Prompt → completion pairs in :data:`PAIR_TEMPLATE` → ``(x, y, mask)``, each ``(N, length)``.

    ``text = "Q: " + prompt + "\\nA: " + completion + "\\n"``, padded with spaces to
    ``length + 1`` characters; ``x = text[:-1]``, ``y = text[1:]``. ``mask[n, t]`` is 1 where
    ``y[n, t]`` is a character of the completion or its final newline, 0 on the prompt, the
    template and the padding.

    Raises:
      ValueError: if a formatted pair is longer than ``length + 1`` characters.
    """
    start, middle, end = PAIR_TEMPLATE
    pad = tokenizer.encode(" ")[0]
    n = len(pairs)
    ids = np.full((n, length + 1), pad, np.int32)
    mask = np.zeros((n, length), np.float32)
    for i, (prompt, completion) in enumerate(pairs):
        head = start + prompt + middle
        text = head + completion + end
        if len(text) > length + 1:
            raise ValueError(f"pair {i} needs {len(text)} characters; length + 1 = {length + 1}.")
        ids[i, : len(text)] = tokenizer.encode(text)
        # y[t] = text[t + 1]: completion characters sit at text positions len(head) .. len(text)-1
        mask[i, len(head) - 1: len(text) - 1] = 1.0
    return ids[:, :-1], ids[:, 1:], mask


def _read_tsv(name: str) -> list[list[str]]:
    path = resources.files("attnlab") / "datasets" / name
    with path.open(encoding="utf-8") as f:
        rows = list(csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
    return [r for r in rows[1:] if r]  # first row: the column names


@dataclasses.dataclass(frozen=True)
class Sentiment:
    """The sentiment sentences: ``labels`` 0 = negative, 1 = positive."""

    train_sentences: tuple[str, ...]
    train_labels: np.ndarray
    test_sentences: tuple[str, ...]
    test_labels: np.ndarray
    classes: tuple[str, ...] = ("negative", "positive")


def load_sentiment() -> Sentiment:
    """The short positive/negative sentences written for notebook 09, split as stored
    (``attnlab/datasets/sentiment.tsv``: columns label, split, sentence)."""
    rows = _read_tsv("sentiment.tsv")
    classes = ("negative", "positive")
    parts = {"train": ([], []), "test": ([], [])}
    for label, split, sentence in rows:
        parts[split][0].append(sentence)
        parts[split][1].append(classes.index(label))
    return Sentiment(tuple(parts["train"][0]), np.array(parts["train"][1], np.int32),
                     tuple(parts["test"][0]), np.array(parts["test"][1], np.int32))


def words_of(text: str) -> list[str]:
    """The lowercase words of ``text``: runs of letters (an apostrophe inside a word is kept,
    ``"don't"``); digits, punctuation and spaces separate them."""
    return _WORD.findall(text.lower())


_WORD = re.compile(r"[a-z]+(?:'[a-z]+)*")


def bag_of_words_predict(train_sentences: Sequence[str], train_labels, sentences: Sequence[str],
                         *, n_classes: int = 2, smoothing: float = 1.0) -> np.ndarray:
    """A baseline without any neural network: multinomial naive Bayes on word counts.

    Each class gets a probability per word, ``p(w | c) = (count(w, c) + smoothing) /
    (words in c + smoothing · |vocabulary|)`` from the training sentences; a sentence gets the
    class with the largest ``log p(c) + sum over its words of log p(w | c)``. Word order and
    spelling are ignored; a word never seen in training is skipped.

    Args:
      train_sentences: N training sentences.
      train_labels: N ints in ``[0, n_classes)``.
      sentences: the M sentences to classify.
      n_classes: number of classes (≥ 2).
      smoothing: the add-``smoothing`` (Laplace) count, > 0.

    Returns:
      ``(M,)`` int32 predicted labels (ties go to the lower label).

    Raises:
      ValueError: if the labels do not match the sentences or lie outside ``[0, n_classes)``,
        or ``smoothing`` is not > 0.

    Source: Manning, Raghavan and Schütze 2008, "Introduction to Information Retrieval",
    §13.2 (multinomial naive Bayes).
    """
    labels = np.asarray(train_labels)
    if labels.shape != (len(train_sentences),):
        raise ValueError(f"train_labels must hold one label per training sentence "
                         f"({len(train_sentences)}); got shape {labels.shape}.")
    _check_labels(labels, n_classes)
    if not smoothing > 0:
        raise ValueError(f"smoothing must be > 0; got {smoothing!r}.")
    vocab = {w: i for i, w in enumerate(sorted({w for s in train_sentences for w in words_of(s)}))}

    def counts(texts):  # (len(texts), |vocabulary|) word counts
        out = np.zeros((len(texts), len(vocab)))
        for n, text in enumerate(texts):
            for w in words_of(text):
                if w in vocab:
                    out[n, vocab[w]] += 1
        return out

    train = counts(train_sentences)
    per_class = np.stack([train[labels == c].sum(0) for c in range(n_classes)]) + smoothing
    log_p_word = np.log(per_class / per_class.sum(1, keepdims=True))  # (n_classes, |vocabulary|)
    log_prior = np.log(np.maximum(np.bincount(labels, minlength=n_classes), 1e-12) / len(labels))
    scores = counts(list(sentences)) @ log_p_word.T + log_prior  # (M, n_classes)
    return scores.argmax(1).astype(np.int32)


def load_french_text() -> str:
    """A short French text (about 2,000 characters) written for notebook 09, with letters the
    shipped model never saw (``é è à ç ê ô ù î â œ`` ...): ``attnlab/datasets/french.txt``."""
    path = resources.files("attnlab") / "datasets" / "french.txt"
    return path.read_text(encoding="utf-8").strip() + "\n"


def load_prompt_pairs() -> dict[str, list[tuple[str, str]]]:
    """The 154 prompt → completion pairs written for notebook 09 (commands such as
    ``greet Anna``, ``spell lemon``, ``plural of city`` and their replies), split as stored.

    ``attnlab/datasets/prompt_pairs.tsv`` has the columns split, prompt, completion.

    Returns:
      ``{"train": [(prompt, completion), ...], "test": [...]}`` in stored order.
    """
    pairs = {"train": [], "test": []}
    for split, prompt, completion in _read_tsv("prompt_pairs.tsv"):
        pairs[split].append((prompt, completion))
    return pairs


@nnx.jit
def _logits(model, tokens):
    return model(tokens)


def greedy_completions(model: GPT, tokenizer, prompts: Sequence[str], length: int,
                       max_new_tokens: int) -> list[str]:
    """Complete each prompt in :data:`PAIR_TEMPLATE` greedily (most likely character each time).

    All prompts run as one batch in a fixed ``(N, length)`` buffer, so the model compiles once.
    Each completion is cut at its first newline (the template's end).

    Args:
      model: a GPT (with or without adapters).
      prompts: the prompts, without the template.
      length: buffer length, at most the context window; ``"Q: " + prompt + "\\nA: "`` plus
        ``max_new_tokens`` must fit.
      max_new_tokens: how many characters to generate at most.

    Returns:
      the completions, one string per prompt.

    Raises:
      ValueError: if a prompt does not fit.
    """
    start, middle, end = PAIR_TEMPLATE
    heads = [start + p + middle for p in prompts]
    if any(len(h) + max_new_tokens > length for h in heads) or length > model.config.context_length:
        raise ValueError(f"length={length} must hold each prompt plus max_new_tokens="
                         f"{max_new_tokens} and fit the context window.")
    pad = tokenizer.encode(" ")[0]
    buffer = np.full((len(prompts), length), pad, np.int32)
    cursor = np.array([len(h) for h in heads])
    for i, h in enumerate(heads):
        buffer[i, : len(h)] = tokenizer.encode(h)
    rows = np.arange(len(prompts))
    for _ in range(max_new_tokens):
        logits = np.asarray(_logits(model, buffer))  # (N, length, V)
        buffer[rows, cursor] = logits[rows, cursor - 1].argmax(-1)
        cursor += 1
    texts = [tokenizer.decode(buffer[i, len(h):]) for i, h in enumerate(heads)]
    return [t.split(end, 1)[0] for t in texts]
