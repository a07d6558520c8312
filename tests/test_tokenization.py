"""Tests for attnlab.tokenization: three tokenizers, their pieces, and comparing embeddings."""

import re
from collections import Counter

import hypothesis.strategies as st
import numpy as np
import pytest
from hypothesis import given, settings

import attnlab.data
from attnlab.data import ASCII_CHARS, load_corpus
from attnlab.tokenization import (
    UNK,
    BPETokenizer,
    CharTokenizer,
    Piece,
    WordTokenizer,
    character_class,
    cosine_similarity,
    nearest_neighbours,
    pca,
    token_pieces,
    train_bpe,
)

FAST = settings(max_examples=40, deadline=None)


@pytest.fixture(scope="module")
def corpus():
    text = load_corpus()
    cut = int(len(text) * 0.9)
    return text[:cut], text[cut:]


@pytest.fixture(scope="module")
def bpe(corpus):
    return train_bpe(corpus[0], 500)


# --- the character tokenizer, seen through token_pieces --------------------------------------


def test_char_tokenizer_is_the_one_from_data():
    assert CharTokenizer is attnlab.data.CharTokenizer


def test_char_pieces_are_one_per_character():
    tokenizer = CharTokenizer.ascii()
    pieces = token_pieces(tokenizer, "Hi, you.")
    assert [p.text for p in pieces] == list("Hi, you.")
    assert [p.id for p in pieces] == tokenizer.encode("Hi, you.").tolist()
    assert [(p.start, p.end) for p in pieces] == [(i, i + 1) for i in range(8)]


def test_char_pieces_reject_unknown_characters_by_name():
    with pytest.raises(ValueError, match="not in the tokenizer's vocabulary: 'é'"):
        token_pieces(CharTokenizer.ascii(), "café")


@pytest.mark.parametrize("make", [CharTokenizer.ascii, lambda: WordTokenizer(["a"]),
                                  lambda: train_bpe("ab ab", 98)])
def test_empty_text_has_no_pieces(make):
    tokenizer = make()
    assert token_pieces(tokenizer, "") == []
    assert tokenizer.encode("").shape == (0,)


def test_token_pieces_rejects_other_objects():
    with pytest.raises(TypeError, match="tokenizer must be"):
        token_pieces(object(), "abc")
    with pytest.raises(TypeError, match="text must be a str"):
        token_pieces(CharTokenizer.ascii(), b"abc")


# --- words ---------------------------------------------------------------------------------------


def test_word_vocabulary_is_most_frequent_first_with_unk_as_zero():
    tokenizer = WordTokenizer.from_text("b a b, c b a.")
    assert tokenizer.vocab == [UNK, "b", "a", ",", ".", "c"]
    assert WordTokenizer.from_text("b a b, c b a.", max_vocab=2).vocab == [UNK, "b", "a"]


def test_words_numbers_and_each_punctuation_mark_are_tokens_and_spaces_vanish():
    tokenizer = WordTokenizer.from_text("x")
    pieces = tokenizer.pieces("Don't  stop: f(x) == 42!")
    assert [p.text for p in pieces] == ["Don", "'", "t", "stop", ":", "f", "(", "x", ")",
                                        "=", "=", "42", "!"]
    assert all(p.text == "Don't  stop: f(x) == 42!"[p.start:p.end] for p in pieces)


def test_unknown_words_are_id_zero_and_decode_joins_with_spaces():
    tokenizer = WordTokenizer.from_text("the cat sat")
    ids = tokenizer.encode("the dog  sat.")
    assert ids.tolist() == [tokenizer.vocab.index("the"), 0, tokenizer.vocab.index("sat"), 0]
    assert tokenizer.decode(ids) == "the [UNK] sat [UNK]"
    assert [p.token for p in tokenizer.pieces("dog")] == [UNK]


def test_word_tokenizer_rejects_bad_vocab_and_ids():
    with pytest.raises(ValueError, match="repeats"):
        WordTokenizer(["a", "b", "a"])
    with pytest.raises(ValueError, match=r"\[UNK\]"):
        WordTokenizer(["a", UNK])
    with pytest.raises(ValueError, match=r"ids must be in \[0, 2\)"):
        WordTokenizer(["a"]).decode([2])
    with pytest.raises(ValueError, match="max_vocab"):
        WordTokenizer.from_text("a", max_vocab=0)


# --- byte-pair encoding --------------------------------------------------------------------------


def test_bpe_round_trips_text_from_its_corpus(corpus, bpe):
    train, held_out = corpus
    for text in (train[:20_000], train[-20_000:], held_out):
        assert bpe.decode(bpe.encode(text)) == text


@FAST
@given(st.text(alphabet=ASCII_CHARS, max_size=200))
def test_bpe_round_trips_any_text_of_its_alphabet(bpe, text):
    assert bpe.decode(bpe.encode(text)) == text
    pieces = bpe.pieces(text)
    assert "".join(p.text for p in pieces) == text
    assert [p.id for p in pieces] == bpe.encode(text).tolist()
    assert all(text[p.start:p.end] == p.text == p.token for p in pieces)


def test_bpe_has_the_asked_vocabulary_unk_first_and_every_character(bpe):
    assert isinstance(bpe, BPETokenizer) and bpe.vocab_size == 500
    assert bpe.unk_id == 0 and bpe.id_to_token(0) == UNK
    vocab = bpe.tokenizer.get_vocab()
    assert set(ASCII_CHARS) <= set(vocab)
    assert len(bpe.merges) == 500 - 1 - len(ASCII_CHARS)


def test_unknown_characters_become_one_unk_each(bpe):
    pieces = bpe.pieces("café → ok")
    unknown = [p for p in pieces if p.id == bpe.unk_id]
    assert [p.text for p in unknown] == ["é", "→"]
    assert all(p.token == UNK for p in unknown)
    assert bpe.decode(bpe.encode("café")) == "caf[UNK]"


def test_no_token_mixes_letters_digits_and_punctuation(bpe):
    kinds = re.compile(r" ?[A-Za-z]+| ?[0-9]+| ?[^\sA-Za-z0-9]+|\s+")
    for token in bpe.tokenizer.get_vocab():
        if token != UNK:
            assert kinds.fullmatch(token), token


def _plain_bpe(words: Counter, alphabet: str, n_merges: int):
    """Independent BPE: recount all adjacent pairs, merge the most frequent; on a tie, the
    pair whose pieces entered the vocabulary first (characters in code-point order)."""
    vocab = sorted(alphabet)
    words = Counter({tuple(w): n for w, n in words.items()})
    merges = []
    for _ in range(n_merges):
        counts = Counter()
        for symbols, n in words.items():
            for pair in zip(symbols, symbols[1:], strict=False):
                counts[pair] += n
        best = max(counts, key=lambda p: (counts[p], -vocab.index(p[0]), -vocab.index(p[1])))
        merges.append(best)
        vocab.append(best[0] + best[1])
        merged = Counter()
        for symbols, n in words.items():
            out, i = [], 0
            while i < len(symbols):
                if symbols[i:i + 2] == best:
                    out.append(best[0] + best[1])
                    i += 2
                else:
                    out.append(symbols[i])
                    i += 1
            merged[tuple(out)] += n
        words = merged
    return merges


def test_bpe_learns_the_same_merges_as_a_plain_python_bpe(corpus):
    text = corpus[0][:30_000]
    library = train_bpe(text, 97 + 40, min_frequency=0)
    words = Counter(library.pre_tokenize(text))
    assert library.merges == _plain_bpe(words, ASCII_CHARS, 40)


def test_bpe_encodes_a_word_by_applying_the_merges_in_order(bpe):
    merges = bpe.merges
    for word in [" interpreter", " unsurprisingly", " __init__", "    "]:
        symbols = list(word)
        for a, b in merges:
            i = 0
            while i < len(symbols) - 1:
                if symbols[i] == a and symbols[i + 1] == b:
                    symbols[i:i + 2] = [a + b]
                i += 1
        assert [p.token for p in bpe.pieces(word)] == symbols


def test_pre_tokenize_keeps_one_space_before_a_word(bpe):
    assert bpe.pre_tokenize("a  b, c\n") == ["a", " ", " b", ",", " c", "\n"]
    assert bpe.pre_tokenize("x:\n    def f(1.5)") == ["x", ":", "\n   ", " def", " f", "(", "1",
                                                      ".", "5", ")"]


def test_a_bigger_vocabulary_gives_shorter_sequences(corpus):
    train, held_out = corpus
    lengths = [len(train_bpe(train, v).encode(held_out)) for v in (128, 512, 2000)]
    assert lengths[0] > lengths[1] > lengths[2]
    assert lengths[0] < len(held_out)  # even 31 merges beat one token per character


def test_min_frequency_stops_merging_early():
    tokenizer = train_bpe("ab ab ab ab cd", 200, min_frequency=3)  # ' ab' 3 times, ' cd' once
    assert tokenizer.merges == [("a", "b"), (" ", "ab")]
    assert tokenizer.vocab_size == 1 + len(ASCII_CHARS) + 2


def test_train_bpe_accepts_an_iterable_and_extends_the_alphabet():
    tokenizer = train_bpe(["naïve naïve", "naïve"], 150)
    assert tokenizer.encode("ï").tolist() != [tokenizer.unk_id]
    assert tokenizer.decode(tokenizer.encode("naïve")) == "naïve"


def test_train_bpe_rejects_bad_arguments():
    with pytest.raises(ValueError, match=r"vocab_size must be an int >= 97"):
        train_bpe("abc", 96)
    with pytest.raises(ValueError, match="min_frequency"):
        train_bpe("abc", 200, min_frequency=-1)
    with pytest.raises(TypeError, match="text must be a str"):
        train_bpe([b"abc"], 200)
    with pytest.raises(ValueError, match=r"ids must be in \[0, "):
        train_bpe("abc", 100).decode([-1])


# --- embeddings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("char", "kind"), [("a", "lowercase"), ("Q", "uppercase"),
                                            ("7", "digit"), (" ", "whitespace"),
                                            ("\n", "whitespace"), (".", "punctuation"),
                                            ("_", "punctuation")])
def test_character_class(char, kind):
    assert character_class(char) == kind


def test_character_class_rejects_strings():
    with pytest.raises(ValueError, match="single character"):
        character_class("ab")


def test_cosine_similarity_matches_the_formula_and_gives_zero_rows_zero():
    rng = np.random.default_rng(0)
    e = rng.normal(size=(6, 4))
    e[3] = 0.0
    got = np.asarray(cosine_similarity(e))
    for i in range(6):
        for j in range(6):
            norms = np.linalg.norm(e[i]) * np.linalg.norm(e[j])
            want = e[i] @ e[j] / norms if norms else 0.0
            assert got[i, j] == pytest.approx(want, abs=1e-6)
    assert np.allclose(np.diag(got)[[0, 1, 2, 4, 5]], 1.0, atol=1e-6)


def test_cosine_similarity_ignores_length():
    e = np.array([[1.0, 0.0], [10.0, 0.0], [0.0, 3.0], [-2.0, 0.0]])
    np.testing.assert_allclose(np.asarray(cosine_similarity(e))[0], [1, 1, 0, -1], atol=1e-6)
    with pytest.raises(ValueError, match=r"2-D \(V, D\)"):
        cosine_similarity(np.zeros(3))


def test_nearest_neighbours_excludes_itself_and_sorts_by_cosine():
    e = np.array([[1.0, 0.0], [0.9, 0.1], [0.0, 1.0], [-1.0, 0.0], [0.7, 0.7]])
    got = nearest_neighbours(e, 0, k=3)
    assert [j for j, _ in got] == [1, 4, 2]
    assert got[0][1] == pytest.approx(0.9 / np.hypot(0.9, 0.1))
    with pytest.raises(ValueError, match="index"):
        nearest_neighbours(e, 5)
    with pytest.raises(ValueError, match="k must be"):
        nearest_neighbours(e, 0, k=5)


def test_pca_finds_the_direction_of_largest_variance():
    rng = np.random.default_rng(1)
    t = rng.normal(size=200)
    direction = np.array([3.0, 4.0, 0.0]) / 5.0
    x = 5.0 + t[:, None] * direction + 0.01 * rng.normal(size=(200, 3))
    projected, explained = pca(x, 2)
    assert projected.shape == (200, 2) and explained.shape == (2,)
    assert explained[0] > 0.99 and explained.sum() <= 1.0 + 1e-12
    # Coordinate 1 is the centred position along the line (up to sign).
    assert abs(np.corrcoef(projected[:, 0], t)[0, 1]) > 0.999
    # Same variances as the eigenvalues of the covariance matrix.
    eigenvalues = np.sort(np.linalg.eigvalsh(np.cov(x.T, bias=True)))[::-1]
    np.testing.assert_allclose(projected.var(axis=0), eigenvalues[:2], rtol=1e-8)
    # Sign convention: each column's largest-magnitude entry is positive.
    assert all(projected[np.abs(projected[:, c]).argmax(), c] > 0 for c in range(2))


def test_pca_rejects_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        pca(np.zeros(4))
    with pytest.raises(ValueError, match="n_components"):
        pca(np.zeros((4, 3)), 4)


def test_piece_is_a_named_tuple():
    piece = Piece(5, "ab", "ab", 0, 2)
    assert piece.id == 5 and piece.text == "ab" and tuple(piece) == (5, "ab", "ab", 0, 2)
