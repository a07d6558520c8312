"""New tokens (notebook 09, section 3): characters the model never saw get new rows in its
tied token embedding, and only those rows train; :func:`load_french_text` is the text that
needs them.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from importlib import resources

import jax
import jax.numpy as jnp
from flax import nnx

from attnlab.data import CharTokenizer
from attnlab.gpt import GPT, gpt2_init_std

__all__ = ["ExtendedEmbed", "NewTokenParam", "extend_vocab", "load_french_text", "merge_new_tokens"]


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


def load_french_text() -> str:
    """A short French text (about 2,000 characters) written for notebook 09, with letters the
    shipped model never saw (``é è à ç ê ô ù î â œ`` ...): ``attnlab/datasets/french.txt``."""
    path = resources.files("attnlab") / "datasets" / "french.txt"
    return path.read_text(encoding="utf-8").strip() + "\n"
