"""Tokenizers: text → integer ids, three ways; and how the resulting token vectors compare.

A token is an integer that stands for a piece of text. What a piece is depends on the tokenizer:

- :class:`CharTokenizer` (defined in :mod:`attnlab.data`, re-exported here): one character,
  one token. Small vocabulary, long sequences.
- :class:`WordTokenizer`: one word, number or punctuation mark, one token; whitespace is
  dropped. Huge vocabulary, short sequences, and every word it never saw is ``[UNK]``.
- :class:`BPETokenizer`, made by :func:`train_bpe`: byte-pair encoding with the Hugging Face
  ``tokenizers`` library. It starts from characters and learns to merge the most frequent
  adjacent pairs into longer pieces, so common words are one token and rare words several.

:func:`token_pieces` shows which piece of a text each token covers, for any of the three.
The last part compares token embeddings: :func:`cosine_similarity`,
:func:`nearest_neighbours` and :func:`pca` (the 2-D view of notebook 01).

Source: Sennrich, Haddow & Birch 2016, "Neural Machine Translation of Rare Words with Subword
Units" (BPE for tokenization).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from typing import NamedTuple

import numpy as np

from attnlab.data import ASCII_CHARS, CharTokenizer

__all__ = [
    "SPLIT_PATTERN",
    "UNK",
    "BPETokenizer",
    "CharTokenizer",
    "Piece",
    "WordTokenizer",
    "character_class",
    "cosine_similarity",
    "nearest_neighbours",
    "pca",
    "token_pieces",
    "train_bpe",
]

#: The unknown token of the word and BPE tokenizers (always id 0): it stands for any word
#: (WordTokenizer) or character (BPETokenizer) that the tokenizer never saw in training.
UNK = "[UNK]"

#: How :func:`train_bpe` cuts text into words before BPE runs on each word (an Oniguruma regex,
#: ``\p{L}`` = any letter, ``\p{N}`` = any digit): a run of letters, of digits or of other
#: symbols, each with the one space in front of it, and runs of whitespace (leaving the last
#: space of a run to the word after it). A token never crosses a cut, and every character
#: lands in exactly one word, so the words join back into the text.
SPLIT_PATTERN = r" ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"

# Words for WordTokenizer: runs of letters, runs of digits, or one punctuation mark.
_WORD = re.compile(r"[^\W\d_]+|\d+|[^\w\s]|_")


class Piece(NamedTuple):
    """One token of a text: its ``id``, its vocabulary entry ``token`` (``"[UNK]"`` for an
    unknown piece), and the characters ``text == source[start:end]`` that it covers."""

    id: int
    token: str
    text: str
    start: int
    end: int


def _check_text(text: object) -> str:
    if not isinstance(text, str):
        raise TypeError(f"text must be a str; got {type(text).__name__}.")
    return text


def _check_ids(ids, vocab_size: int) -> list[int]:
    ids = np.asarray(ids).reshape(-1)
    if ids.size and not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"ids must be integers; got dtype {ids.dtype}.")
    bad = ids[(ids < 0) | (ids >= vocab_size)]
    if bad.size:
        raise ValueError(f"ids must be in [0, {vocab_size}); got {bad[:5].tolist()}.")
    return ids.tolist()


# --- words --------------------------------------------------------------------------------------


class WordTokenizer:
    """One token per word, number or punctuation mark; whitespace is dropped.

    Words are runs of letters, numbers are runs of digits, and every other non-space
    character (``.``, ``,``, ``(``, ``'``...) is a token of its own. Id 0 is ``[UNK]``: every
    word not in the vocabulary. Decoding joins the tokens with single spaces, so it does not
    give back the original spacing: word tokenization loses information.

    Args:
      vocab: the words, each once, without ``[UNK]`` (it is added as id 0). Use
        :meth:`from_text` to collect them from a text.

    Raises:
      ValueError: if ``vocab`` repeats a word or contains ``[UNK]``.
    """

    def __init__(self, vocab: Iterable[str]):
        words = list(vocab)
        if UNK in words:
            raise ValueError(f"vocab must not contain {UNK!r}; it is added as id 0.")
        if len(set(words)) != len(words):
            repeated = sorted(w for w, n in Counter(words).items() if n > 1)[:5]
            raise ValueError(f"vocab repeats words {repeated!r}; each must appear once.")
        self.vocab: list[str] = [UNK, *words]
        self._ids = {w: i for i, w in enumerate(self.vocab)}

    @classmethod
    def from_text(cls, text: str, max_vocab: int | None = None) -> WordTokenizer:
        """Vocabulary of the words of ``text``, most frequent first (ties alphabetical),
        at most ``max_vocab`` of them (all when ``None``)."""
        counts = Counter(_WORD.findall(_check_text(text)))
        words = sorted(counts, key=lambda w: (-counts[w], w))
        if max_vocab is not None:
            if max_vocab < 1:
                raise ValueError(f"max_vocab must be >= 1 or None; got {max_vocab}.")
            words = words[:max_vocab]
        return cls(words)

    @property
    def vocab_size(self) -> int:
        """Number of distinct tokens V, ``[UNK]`` included."""
        return len(self.vocab)

    def pieces(self, text: str) -> list[Piece]:
        """The tokens of ``text`` with the characters each covers."""
        return [
            Piece(self._ids.get(m[0], 0), m[0] if m[0] in self._ids else UNK, m[0],
                  m.start(), m.end())
            for m in _WORD.finditer(_check_text(text))
        ]

    def encode(self, text: str) -> np.ndarray:
        """Text → ``(N,)`` int32 ids, 0 for every unknown word."""
        return np.array([p.id for p in self.pieces(text)], dtype=np.int32)

    def decode(self, ids) -> str:
        """Ids → the words joined by single spaces (``[UNK]`` where a word was unknown).

        Raises:
          ValueError: if an id is outside ``[0, vocab_size)``.
        """
        return " ".join(self.vocab[i] for i in _check_ids(ids, self.vocab_size))

    def __repr__(self) -> str:
        return f"WordTokenizer(vocab_size={self.vocab_size})"


# --- byte-pair encoding -------------------------------------------------------------------------


class BPETokenizer:
    """A byte-pair-encoding tokenizer: a thin wrapper over a Hugging Face
    ``tokenizers.Tokenizer`` with a BPE model, made by :func:`train_bpe`.

    Every character of the training alphabet is a token, so any text made of those characters
    encodes, and ``decode(encode(text)) == text``. A character outside the alphabet (``é`` for
    a tokenizer trained on ASCII text) becomes the unknown token ``[UNK]``, id 0, one per
    character: that information is lost, and decoding gives ``"[UNK]"`` in its place.

    Attributes:
      tokenizer: the underlying ``tokenizers.Tokenizer``.
    """

    def __init__(self, tokenizer):
        self.tokenizer = tokenizer
        self.unk_id: int = tokenizer.token_to_id(UNK)

    @property
    def vocab_size(self) -> int:
        """Number of distinct tokens V: ``[UNK]``, the alphabet, one per merge."""
        return self.tokenizer.get_vocab_size()

    @property
    def merges(self) -> list[tuple[str, str]]:
        """The learned merges in the order they were learned: ``("t", "h")`` means the
        adjacent pieces ``t`` and ``h`` became the piece ``th``."""
        merges = json.loads(self.tokenizer.to_str())["model"]["merges"]
        if not merges or not isinstance(merges[0], str):
            return [tuple(m) for m in merges]
        # tokenizers < 0.20 writes "a b", and our pieces may hold spaces themselves: keep the
        # cut whose halves are tokens made before their merge (lower ids), else any whose
        # halves and whole are tokens.
        vocab = self.tokenizer.get_vocab()
        out = []
        for merge in merges:
            cuts = [(merge[:i], merge[i + 1:]) for i, c in enumerate(merge)
                    if c == " " and 0 < i < len(merge) - 1]
            cuts = [(a, b) for a, b in cuts if a in vocab and b in vocab and a + b in vocab]
            older = [(a, b) for a, b in cuts if max(vocab[a], vocab[b]) < vocab[a + b]]
            out.append((older or cuts or [tuple(merge.split(" ", 1))])[0])
        return out

    def id_to_token(self, i: int) -> str:
        """The piece of text (vocabulary entry) of id ``i``."""
        return self.tokenizer.id_to_token(_check_ids([i], self.vocab_size)[0])

    def pre_tokenize(self, text: str) -> list[str]:
        """The words (see :data:`SPLIT_PATTERN`) that BPE then splits into tokens."""
        return [w for w, _ in self.tokenizer.pre_tokenizer.pre_tokenize_str(_check_text(text))]

    def pieces(self, text: str) -> list[Piece]:
        """The tokens of ``text`` with the characters each covers."""
        encoding = self.tokenizer.encode(_check_text(text))
        return [Piece(i, token, text[start:end], start, end)
                for i, token, (start, end) in zip(encoding.ids, encoding.tokens,
                                                  encoding.offsets, strict=True)]

    def encode(self, text: str) -> np.ndarray:
        """Text → ``(N,)`` int32 ids; each unknown character is ``unk_id`` (0)."""
        return np.array(self.tokenizer.encode(_check_text(text)).ids, dtype=np.int32)

    def decode(self, ids) -> str:
        """Ids → text: the pieces joined with nothing between them.

        Raises:
          ValueError: if an id is outside ``[0, vocab_size)``.
        """
        return "".join(self.tokenizer.id_to_token(i) for i in _check_ids(ids, self.vocab_size))

    def __repr__(self) -> str:
        return f"BPETokenizer(vocab_size={self.vocab_size})"


def train_bpe(
    text: str | Iterable[str], vocab_size: int, *, alphabet: str = ASCII_CHARS,
    min_frequency: int = 2,
) -> BPETokenizer:
    """Train a byte-pair-encoding tokenizer on ``text`` with the ``tokenizers`` library.

    The text is cut into words by :data:`SPLIT_PATTERN`; each word starts as a sequence of
    characters. Training then repeats one step: count every pair of adjacent pieces inside the
    words, and merge the most frequent pair into one new piece (a new token). It stops when
    the vocabulary holds ``vocab_size`` tokens or no pair occurs ``min_frequency`` times.
    Takes well under a second for the 465 kB embedded corpus.

    Args:
      text: the training text, one ``str`` or an iterable of them.
      vocab_size: the vocabulary size to reach: ``[UNK]`` + the alphabet + one token per
        merge. At least ``len(alphabet) + 1``.
      alphabet: characters that are tokens even if ``text`` lacks them (default: newline and
        printable ASCII, the 96 characters of :func:`attnlab.data.load_corpus`). Characters of
        ``text`` outside it join the alphabet too.
      min_frequency: a pair must occur at least this often to be merged.

    Returns:
      a :class:`BPETokenizer` with ``[UNK]`` as id 0.

    Raises:
      TypeError: if ``text`` is not a str or an iterable of str.
      ValueError: if ``vocab_size`` is too small for the alphabet or ``min_frequency`` < 0.

    Source: Sennrich et al. 2016, §3.2 (learning BPE merge operations).
    """
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers

    texts = [text] if isinstance(text, str) else list(text)
    if not all(isinstance(t, str) for t in texts):
        raise TypeError("text must be a str or an iterable of str.")
    chars = sorted(set(alphabet))
    if isinstance(vocab_size, bool) or not isinstance(vocab_size, int) or vocab_size < len(chars) + 1:
        raise ValueError(
            f"vocab_size must be an int >= {len(chars) + 1} ([UNK] + the {len(chars)}-character "
            f"alphabet); got {vocab_size!r}."
        )
    if min_frequency < 0:
        raise ValueError(f"min_frequency must be >= 0; got {min_frequency}.")
    tokenizer = Tokenizer(models.BPE(unk_token=UNK))
    tokenizer.pre_tokenizer = pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior="isolated")
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, min_frequency=min_frequency, special_tokens=[UNK],
        initial_alphabet=chars, show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return BPETokenizer(tokenizer)


# --- showing the pieces -------------------------------------------------------------------------


def token_pieces(tokenizer, text: str) -> list[Piece]:
    """The tokens of ``text`` with the characters each covers, for any of the tokenizers here.

    Args:
      tokenizer: a :class:`CharTokenizer`, :class:`WordTokenizer` or :class:`BPETokenizer`.
      text: any text; ``""`` gives ``[]``.

    Returns:
      a list of :class:`Piece` in text order. For the character and BPE tokenizers the pieces'
      ``text`` joins back into ``text``; the word tokenizer skips whitespace.

    Raises:
      TypeError: if ``text`` is not a str or ``tokenizer`` is none of the three.
      ValueError: for a :class:`CharTokenizer`, if ``text`` has characters outside its
        vocabulary (it has no unknown token; the message lists them).
    """
    text = _check_text(text)
    if isinstance(tokenizer, CharTokenizer):
        ids = tokenizer.encode(text)
        return [Piece(int(i), c, c, t, t + 1) for t, (i, c) in enumerate(zip(ids, text, strict=True))]
    if isinstance(tokenizer, WordTokenizer | BPETokenizer):
        return tokenizer.pieces(text)
    raise TypeError(
        "tokenizer must be a CharTokenizer, WordTokenizer or BPETokenizer; "
        f"got {type(tokenizer).__name__}."
    )


# --- token embeddings ---------------------------------------------------------------------------


def character_class(char: str) -> str:
    """``"lowercase"``, ``"uppercase"``, ``"digit"``, ``"whitespace"`` or ``"punctuation"``
    (everything else) for a single character."""
    if not isinstance(char, str) or len(char) != 1:
        raise ValueError(f"char must be a single character; got {char!r}.")
    if char.isspace():
        return "whitespace"
    if char.isdigit():
        return "digit"
    if char.isalpha():
        return "lowercase" if char.islower() else "uppercase"
    return "punctuation"


def cosine_similarity(embeddings) -> np.ndarray:
    """Cosine of the angle between every pair of rows.

    ``cos(a, b) = a·b / (|a| |b|)``: 1 for the same direction, 0 at right angles, -1 opposite.
    A row of zeros has no direction: its similarity with every row (itself included) is 0.

    Args:
      embeddings: ``(V, D)`` float array, one vector per row.

    Returns:
      ``(V, V)`` float array; entry ``[i, j]`` is the cosine between rows i and j.

    Raises:
      ValueError: if ``embeddings`` is not 2-D.
    """
    import jax.numpy as jnp

    embeddings = jnp.asarray(embeddings)
    if embeddings.ndim != 2:
        raise ValueError(f"embeddings must be 2-D (V, D); got shape {embeddings.shape}.")
    norms = jnp.linalg.norm(embeddings, axis=-1, keepdims=True)  # (V, 1)
    unit = embeddings / jnp.maximum(norms, 1e-12)  # zero rows stay zero
    return unit @ unit.T


def nearest_neighbours(embeddings, index: int, k: int = 5) -> list[tuple[int, float]]:
    """The ``k`` rows most similar (by cosine) to row ``index``, itself excluded.

    Args:
      embeddings: ``(V, D)`` float array.
      index: a row, ``0 <= index < V``.
      k: how many neighbours, ``1 <= k < V``.

    Returns:
      ``[(row, cosine), ...]``, most similar first (ties: lower row first).

    Raises:
      ValueError: if ``index`` or ``k`` is out of range.
    """
    similarity = np.asarray(cosine_similarity(embeddings))
    V = similarity.shape[0]
    if not 0 <= index < V:
        raise ValueError(f"index must be in [0, {V}); got {index}.")
    if not 1 <= k < V:
        raise ValueError(f"k must be in [1, {V - 1}]; got {k}.")
    row = similarity[index].astype(np.float64)
    row[index] = -np.inf
    order = np.argsort(-row, kind="stable")[:k]
    return [(int(j), float(row[j])) for j in order]


def pca(x, n_components: int = 2) -> tuple[np.ndarray, np.ndarray]:
    """Principal component analysis: project rows onto the directions of largest variance.

    Args:
      x: ``(N, D)`` float array.
      n_components: how many directions, ``1 <= n_components <= min(N, D)``.

    Returns:
      ``(projected, explained)``: ``(N, n_components)`` coordinates of the centred rows, and
      ``(n_components,)`` fractions of the total variance each direction explains. The sign
      of each direction is fixed so that its largest-magnitude coordinate is positive.

    Raises:
      ValueError: if ``x`` is not 2-D or ``n_components`` is out of range.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"x must be 2-D (N, D); got shape {x.shape}.")
    if not 1 <= n_components <= min(x.shape):
        raise ValueError(f"n_components must be in [1, {min(x.shape)}]; got {n_components}.")
    centred = x - x.mean(axis=0)
    u, s, _ = np.linalg.svd(centred, full_matrices=False)
    projected = u[:, :n_components] * s[:n_components]
    signs = np.sign(projected[np.abs(projected).argmax(axis=0), range(n_components)])
    variance = s**2
    total = variance.sum()
    explained = variance[:n_components] / total if total > 0 else np.zeros(n_components)
    return projected * np.where(signs == 0, 1.0, signs), explained
