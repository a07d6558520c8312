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

from attnlab import runtime

__all__ = [
    "ASCII_CHARS",
    "CORPUS_SHA256_PY311",
    "CharTokenizer",
    "Splits",
    "get_batch",
    "load_corpus",
    "split_tokens",
]

runtime.tune_memory_unless_disabled()  # glibc's allocator for XLA (runtime.tune_memory)

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


# --- notebooks 02 and 03: dates written by people -> ISO dates ---------------------------------

__all__ += [  # appended here, so that edits to the list above merge cleanly
    "DATE_SOURCE_CHARS",
    "DATE_STYLES",
    "DATE_TARGET_CHARS",
    "DateArrays",
    "date_source_tokenizer",
    "date_target_tokenizer",
    "encode_dates",
    "format_date",
    "make_dates",
]

import datetime as _dt  # noqa: E402  (kept with the code that needs it)

_MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August",
           "September", "October", "November", "December")
_WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_UNITS = ("", "first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth",
          "ninth", "tenth", "eleventh", "twelfth", "thirteenth", "fourteenth", "fifteenth",
          "sixteenth", "seventeenth", "eighteenth", "nineteenth")


def _ordinal_digits(day: int) -> str:
    """3 -> '3rd', 11 -> '11th', 22 -> '22nd'."""
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def _ordinal_words(day: int) -> str:
    """3 -> 'third', 20 -> 'twentieth', 31 -> 'thirty-first' (1 <= day <= 31)."""
    if day < 20:
        return _UNITS[day]
    tens = {2: "twent", 3: "thirt"}[day // 10]
    return f"{tens}ieth" if day % 10 == 0 else f"{tens}y-{_UNITS[day % 10]}"


def _styles() -> dict:
    """Each style: a function ``date -> str``. Examples are for Friday, 3 September 2021."""
    def month(d):
        return _MONTHS[d.month - 1]

    def weekday(d):
        return _WEEKDAYS[d.weekday()]

    return {
        "9/3/2021": lambda d: f"{d.month}/{d.day}/{d.year}",
        "03.09.2021": lambda d: f"{d.day:02d}.{d.month:02d}.{d.year}",
        "3 Sep 2021": lambda d: f"{d.day} {month(d)[:3]} {d.year}",
        "Sep 3, 2021": lambda d: f"{month(d)[:3]} {d.day}, {d.year}",
        "3 september 2021": lambda d: f"{d.day} {month(d)} {d.year}".lower(),
        "September 3, 2021": lambda d: f"{month(d)} {d.day}, {d.year}",
        "FRI 03 SEP 2021": lambda d: f"{weekday(d)[:3]} {d.day:02d} {month(d)[:3]} {d.year}".upper(),
        "3rd of September 2021": lambda d: f"{_ordinal_digits(d.day)} of {month(d)} {d.year}",
        "3 September 2021 (Friday)": lambda d: f"{d.day} {month(d)} {d.year} ({weekday(d)})",
        "the third of September 2021":
            lambda d: f"the {_ordinal_words(d.day)} of {month(d)} {d.year}",
        "the 3rd of September 2021, a Friday":
            lambda d: f"the {_ordinal_digits(d.day)} of {month(d)} {d.year}, a {weekday(d)}",
        "the third of September 2021, which falls on a Friday":
            lambda d: f"the {_ordinal_words(d.day)} of {month(d)} {d.year}, which falls on a "
                      f"{weekday(d)}",
    }


_DATE_STYLES = _styles()

#: The date styles of :func:`make_dates`, each named by how it writes Friday, 3 September 2021.
DATE_STYLES: tuple[str, ...] = tuple(_DATE_STYLES)

#: Source characters of the date task: id 0, ``"_"``, pads short inputs and never occurs in one;
#: then space, punctuation, brackets, digits and the letters of both cases.
DATE_SOURCE_CHARS: str = ("_ ,./-()0123456789abcdefghijklmnopqrstuvwxyz"
                          "ABCDEFGHIJKLMNOPQRSTUVWXYZ")

#: Target characters: id 0, ``"^"``, starts every decoder input; then the ten digits and ``"-"``.
DATE_TARGET_CHARS: str = "^0123456789-"


def format_date(date: _dt.date, style: str) -> str:
    """Write ``date`` in one of :data:`DATE_STYLES`, e.g. ``"the third of September 2021"``.

    Raises:
      ValueError: if ``style`` is not one of :data:`DATE_STYLES`.
      TypeError: if ``date`` is not a ``datetime.date``.
    """
    if style not in _DATE_STYLES:
        raise ValueError(f"style must be one of {DATE_STYLES}; got {style!r}.")
    if not isinstance(date, _dt.date):
        raise TypeError(f"date must be a datetime.date; got {type(date).__name__}.")
    return _DATE_STYLES[style](date)


def make_dates(n: int, seed: int = 0, *, styles: Sequence[str] | None = None,
               first: _dt.date = _dt.date(1950, 1, 1),
               last: _dt.date = _dt.date(2049, 12, 31)) -> list[tuple[str, str]]:
    """``n`` random dates, each written in a random human style, paired with its ISO form.

    Each pair is ``(source, target)``, e.g. ``("Friday, the third of September, 2021",
    "2021-09-03")``. Days are drawn uniformly from ``first`` to ``last``, styles uniformly from
    ``styles``. The same ``seed`` gives the same list on every machine (NumPy's PCG64).

    Args:
      n: number of pairs (>= 0).
      seed: seed of the random generator.
      styles: the styles to draw from (default: all of :data:`DATE_STYLES`).
      first, last: the range of dates, inclusive.

    Returns:
      a list of ``n`` ``(source, target)`` string pairs; every target has 10 characters.

    Raises:
      ValueError: if ``n`` < 0, ``styles`` is empty or names an unknown style, or
        ``last < first``.
    """
    if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
        raise ValueError(f"n must be an integer >= 0; got {n!r}.")
    styles = DATE_STYLES if styles is None else tuple(styles)
    unknown = [s for s in styles if s not in _DATE_STYLES]
    if not styles or unknown:
        raise ValueError(f"styles must be a non-empty selection of {DATE_STYLES}; got {styles!r}.")
    if last < first:
        raise ValueError(f"last ({last}) must not be before first ({first}).")
    rng = np.random.default_rng(seed)
    offsets = rng.integers(0, (last - first).days + 1, size=n)
    picks = rng.integers(0, len(styles), size=n)
    pairs = []
    for offset, pick in zip(offsets.tolist(), picks.tolist(), strict=True):
        date = first + _dt.timedelta(days=offset)
        pairs.append((format_date(date, styles[pick]), date.isoformat()))
    return pairs


def date_source_tokenizer() -> CharTokenizer:
    """Character tokenizer over :data:`DATE_SOURCE_CHARS` (id 0 = ``"_"``, the padding)."""
    return CharTokenizer(DATE_SOURCE_CHARS)


def date_target_tokenizer() -> CharTokenizer:
    """Character tokenizer over :data:`DATE_TARGET_CHARS` (id 0 = ``"^"``, the start token)."""
    return CharTokenizer(DATE_TARGET_CHARS)


class DateArrays(NamedTuple):
    """Date pairs as padded id arrays, ready for :mod:`attnlab.rnn`.

    Attributes:
      source: ``(N, S)`` int32 source ids, padded at the end with 0.
      lengths: ``(N,)`` int32 number of real source characters of each row.
      target: ``(N, 10)`` int32 target ids (``YYYY-MM-DD``), no start token.
    """

    source: np.ndarray
    lengths: np.ndarray
    target: np.ndarray


def encode_dates(pairs: Sequence[tuple[str, str]], max_len: int | None = None) -> DateArrays:
    """Encode ``(source, target)`` pairs with the date tokenizers and pad the sources.

    Args:
      pairs: from :func:`make_dates` (or typed by hand).
      max_len: the padded source length S; default the longest source.

    Returns:
      a :class:`DateArrays`.

    Raises:
      ValueError: if ``pairs`` is empty, a source is empty or longer than ``max_len``, a
        target is not 10 characters, or a character is outside the date vocabularies.
    """
    if len(pairs) == 0:
        raise ValueError("pairs is empty; pass at least one (source, target) pair.")
    longest = max(len(s) for s, _ in pairs)
    S = longest if max_len is None else int(max_len)
    source_tok, target_tok = date_source_tokenizer(), date_target_tokenizer()
    source = np.zeros((len(pairs), S), np.int32)
    lengths = np.zeros(len(pairs), np.int32)
    target = np.zeros((len(pairs), 10), np.int32)
    for i, (src, tgt) in enumerate(pairs):
        if not 1 <= len(src) <= S:
            raise ValueError(f"source {i} ({src!r}) has {len(src)} characters; allowed 1 to {S}.")
        if len(tgt) != 10:
            raise ValueError(f"target {i} ({tgt!r}) must be 10 characters, YYYY-MM-DD.")
        if "^" in tgt or "_" in src:
            raise ValueError(f"pair {i} uses a reserved character ('_' pads, '^' starts).")
        source[i, : len(src)] = source_tok.encode(src)
        lengths[i] = len(src)
        target[i] = target_tok.encode(tgt)
    return DateArrays(source, lengths, target)
