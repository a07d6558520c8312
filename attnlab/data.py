"""Text data for the notebooks: the embedded corpus, a character tokenizer, splits and batches.

The default corpus is the Python language reference that ships inside every CPython
installation (module ``pydoc_data.topics``): about 465 kB of English prose and code examples
written by people, available offline, in Colab and in CI alike. Nothing here touches the
network. Each Python release ships its own edition of the reference, so the text (and every
figure measured on it) depends on the Python version; :data:`CORPUS_SHA256_PY311` identifies
the edition the project's stated figures were measured on.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = [
    "ASCII_CHARS",
    "CORPUS_SHA256_PY311",
    "CharTokenizer",
    "Splits",
    "get_batch",
    "load_corpus",
    "split_tokens",
]

# Typographic characters that appear a handful of times in the reference text. Folding them to
# ASCII keeps the character vocabulary identical on every Python version (3.11, 3.12, 3.13 ship
# slightly different texts), so a checkpoint trained on one reads the corpus of another.
_FOLD = {
    "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"',
    "\u2013": "-", "\u2014": "--", "\u2026": "...", "\u00b0": " degrees", "\u00df": "ss",
    "\t": "    ",
}

#: Newline plus the 95 printable ASCII characters: the vocabulary of the default corpus.
ASCII_CHARS: str = "\n" + "".join(chr(c) for c in range(32, 127))

#: SHA-256 (hex digest of the UTF-8 bytes) of ``load_corpus()`` on Python 3.11.7: 465,118
#: characters. The README's and the notebooks' corpus-dependent figures (the shipped model's
#: validation loss, how often a character repeats) were measured on this text; tests compare
#: against them exactly only where ``load_corpus()`` hashes to this value.
CORPUS_SHA256_PY311: str = "6d0d55459bef6bcf1e7c5ccfde12be142cd281f718bca263f5fc9f095e8ac132"


def load_corpus(name: str | None = None) -> str:
    """Return the text of a corpus.

    Args:
      name: ``None`` or ``"python-reference"`` for the embedded default corpus: the Python
        language reference shipped with CPython (``pydoc_data.topics``), its topics joined in
        alphabetical order with blank lines between them. Typographic quotes, dashes and the
        few other non-ASCII characters are folded to ASCII, so every character is in
        :data:`ASCII_CHARS`.

    Returns:
      The corpus as one ``str``: 465,118 characters on Python 3.11.7, 492,302 on 3.12.1,
      510,734 on 3.13.0 (each Python release ships its own edition of the reference).

    Raises:
      ValueError: if ``name`` is not a known corpus.
    """
    if name not in (None, "python-reference"):
        raise ValueError(f"name must be None or 'python-reference'; got {name!r}.")
    from pydoc_data.topics import topics

    text = "\n\n".join(topics[key].strip("\n") for key in sorted(topics))
    for char, replacement in _FOLD.items():
        text = text.replace(char, replacement)
    return "".join(c if c in ASCII_CHARS else "?" for c in text)


class CharTokenizer:
    """Maps each character to an integer id and back: the simplest possible tokenizer.

    Ids are assigned in the order of ``vocab``. ``decode(encode(text)) == text`` for any text
    made of vocabulary characters.

    Args:
      vocab: the characters, each once. Use :meth:`from_text` to collect them from a text.

    Raises:
      ValueError: if ``vocab`` is empty or repeats a character.
    """

    def __init__(self, vocab: Iterable[str]):
        chars = list(vocab)
        if not chars:
            raise ValueError("vocab must contain at least one character; got an empty vocab.")
        if any(not isinstance(c, str) or len(c) != 1 for c in chars):
            raise ValueError("vocab must be single characters.")
        if len(set(chars)) != len(chars):
            repeated = sorted({c for c in chars if chars.count(c) > 1})
            raise ValueError(f"vocab repeats characters {repeated!r}; each must appear once.")
        self.vocab: str = "".join(chars)
        self._ids = {c: i for i, c in enumerate(chars)}

    @classmethod
    def from_text(cls, text: str) -> CharTokenizer:
        """Tokenizer whose vocabulary is the sorted set of characters in ``text``."""
        return cls(sorted(set(text)))

    @classmethod
    def ascii(cls) -> CharTokenizer:
        """Tokenizer over :data:`ASCII_CHARS` (96 characters): fits :func:`load_corpus`."""
        return cls(ASCII_CHARS)

    @property
    def vocab_size(self) -> int:
        """Number of distinct tokens V."""
        return len(self.vocab)

    def encode(self, text: str) -> np.ndarray:
        """Text → ``(len(text),)`` int32 ids.

        Raises:
          ValueError: if ``text`` has characters outside the vocabulary; the message lists them.
        """
        try:
            return np.fromiter((self._ids[c] for c in text), dtype=np.int32, count=len(text))
        except KeyError:
            unknown = sorted(set(text) - set(self._ids))
            raise ValueError(
                f"text contains {len(unknown)} character(s) not in the tokenizer's vocabulary: "
                f"{''.join(unknown)!r}. Replace or remove them: a trained model only knows the "
                "characters it was trained on. (Before training, CharTokenizer.from_text(text) "
                "builds a vocabulary that covers a new text.)"
            ) from None

    def decode(self, ids: Sequence[int] | np.ndarray | jax.Array) -> str:
        """Ids (any 1-D integer sequence) → text.

        Raises:
          ValueError: if an id is outside ``[0, vocab_size)``.
        """
        ids = np.asarray(ids).reshape(-1)
        if ids.size and not np.issubdtype(ids.dtype, np.integer):
            raise ValueError(f"ids must be integers; got dtype {ids.dtype}.")
        bad = ids[(ids < 0) | (ids >= self.vocab_size)]
        if bad.size:
            raise ValueError(
                f"ids must be in [0, {self.vocab_size}); got {bad[:5].tolist()}."
            )
        return "".join(self.vocab[i] for i in ids.tolist())

    def __repr__(self) -> str:
        return f"CharTokenizer(vocab_size={self.vocab_size})"


class Splits(NamedTuple):
    """Token ids split for training: ``train`` and ``val`` are 1-D int32 arrays."""

    train: np.ndarray
    val: np.ndarray


def split_tokens(ids: np.ndarray, val_fraction: float = 0.1) -> Splits:
    """Deterministic split: the first ``1 - val_fraction`` of the ids train, the rest validate.

    A contiguous split (rather than a random one) keeps validation text unseen: no sentence
    straddles both halves except at the single cut.

    Raises:
      ValueError: if ``val_fraction`` is not in (0, 1) or either part would be empty.
    """
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must be in (0, 1); got {val_fraction}.")
    ids = np.asarray(ids, dtype=np.int32).reshape(-1)
    cut = int(round(len(ids) * (1.0 - val_fraction)))
    if cut == 0 or cut == len(ids):
        raise ValueError(f"{len(ids)} tokens are too few to split with val_fraction={val_fraction}.")
    return Splits(train=ids[:cut], val=ids[cut:])


def get_batch(
    ids: np.ndarray | jax.Array, batch_size: int, context_length: int, key: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Sample ``batch_size`` random windows for next-token prediction.

    Args:
      ids: ``(N,)`` int token ids, N > context_length.
      batch_size: B ≥ 1.
      context_length: T ≥ 1, the window length.
      key: a ``jax.random`` key; the same key gives the same batch.

    Returns:
      ``(x, y)``, both ``(B, T)`` int32, where ``y[b, t] = x[b, t + 1]`` in the text: each
      position's target is the character that follows it.

    Raises:
      ValueError: if the sizes are not positive or ``ids`` is too short.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1; got {batch_size}.")
    if context_length < 1:
        raise ValueError(f"context_length must be >= 1; got {context_length}.")
    if len(ids) <= context_length:
        raise ValueError(
            f"ids has {len(ids)} tokens; need more than context_length={context_length}."
        )
    return _get_batch(jnp.asarray(ids), key, batch_size, context_length)


def _get_batch_impl(ids, key, batch_size, context_length):
    starts = jax.random.randint(key, (batch_size,), 0, ids.shape[0] - context_length)
    offsets = jnp.arange(context_length + 1)
    windows = ids[starts[:, None] + offsets[None, :]]
    return windows[:, :-1].astype(jnp.int32), windows[:, 1:].astype(jnp.int32)


_get_batch = jax.jit(_get_batch_impl, static_argnames=("batch_size", "context_length"))
