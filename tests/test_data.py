"""Tests for attnlab.data: the embedded corpus, the character tokenizer, splits and batches."""

import hashlib

import hypothesis.strategies as st
import jax
import numpy as np
import pytest
from hypothesis import given, settings

from attnlab.data import (
    ASCII_CHARS,
    CORPUS_SHA256_PY311,
    CharTokenizer,
    get_batch,
    load_corpus,
    split_tokens,
)

FAST = settings(max_examples=25, deadline=None)


@pytest.fixture(scope="module")
def corpus():
    return load_corpus()


# --- the corpus ---------------------------------------------------------------------------


def test_corpus_is_the_python_reference_and_large(corpus):
    assert isinstance(corpus, str)
    assert len(corpus) > 400_000
    assert "Assert statements are a convenient way to insert debugging assertions" in corpus
    assert "for_stmt ::=" in corpus  # grammar from the "for" statement topic


def test_corpus_is_deterministic(corpus):
    assert load_corpus() == corpus
    assert load_corpus("python-reference") == corpus


def test_corpus_uses_only_ascii_chars(corpus):
    assert ASCII_CHARS == "\n" + "".join(chr(c) for c in range(32, 127))
    assert len(ASCII_CHARS) == 96
    assert set(corpus) <= set(ASCII_CHARS)
    assert "\t" not in corpus and "\u2019" not in corpus


def is_the_measured_corpus(text: str) -> bool:
    """True where load_corpus() is the Python 3.11.7 text the stated figures were measured on."""
    return hashlib.sha256(text.encode()).hexdigest() == CORPUS_SHA256_PY311


def test_the_measured_corpus_has_the_stated_length(corpus):
    # The length stated beside the hash (and in the README) describes the same text.
    if not is_the_measured_corpus(corpus):
        pytest.skip(f"this Python's reference text differs ({len(corpus):,} characters)")
    assert len(corpus) == 465_118


def repeat_fraction(ids: np.ndarray) -> float:
    """How often the next token equals the current one."""
    return float(np.mean(ids[1:] == ids[:-1]))


def test_held_out_text_repeats_the_current_character_more_often(corpus):
    # Notebook 07's explanation of why validation starts below training: the held-out 10%
    # is rich in table rules (runs of '-' and ' ').
    splits = split_tokens(CharTokenizer.ascii().encode(corpus))
    train, val = repeat_fraction(splits.train), repeat_fraction(splits.val)
    # Measured: 3.11.7 0.102 vs 0.231; 3.12.1 0.115 vs 0.225; 3.13.0 0.127 vs 0.219.
    assert val > 1.5 * train
    if is_the_measured_corpus(corpus):
        assert train == pytest.approx(0.102, abs=5e-4)
        assert val == pytest.approx(0.231, abs=5e-4)


def test_unknown_corpus_name_raises():
    with pytest.raises(ValueError, match="shakespeare"):
        load_corpus("shakespeare")


# --- the character tokenizer ------------------------------------------------------------


def test_encode_known_answer():
    tok = CharTokenizer("abc")
    ids = tok.encode("cabbage"[:4])
    assert ids.dtype == np.int32
    np.testing.assert_array_equal(ids, [2, 0, 1, 1])
    assert tok.decode([2, 0, 1, 1]) == "cabb"
    assert tok.vocab_size == 3


def test_from_text_collects_the_sorted_characters():
    tok = CharTokenizer.from_text("hello world")
    assert tok.vocab == " dehlorw"
    np.testing.assert_array_equal(tok.encode("held"), [3, 2, 4, 1])


def test_ascii_tokenizer_ids_are_positions_in_ascii_chars():
    tok = CharTokenizer.ascii()
    assert tok.vocab_size == 96
    np.testing.assert_array_equal(tok.encode("\n A~"), [0, 1, ord("A") - 31, 95])


@settings(FAST)
@given(text=st.text(alphabet=ASCII_CHARS, max_size=200))
def test_ascii_tokenizer_round_trips_exactly(text):
    tok = CharTokenizer.ascii()
    ids = tok.encode(text)
    assert ids.shape == (len(text),)
    assert np.all((ids >= 0) & (ids < tok.vocab_size))
    assert tok.decode(ids) == text
    assert tok.decode(jax.numpy.asarray(ids)) == text  # jax arrays decode too


@settings(FAST)
@given(text=st.text(min_size=1, max_size=100))
def test_tokenizer_from_any_text_round_trips(text):
    tok = CharTokenizer.from_text(text)
    assert tok.vocab_size == len(set(text))
    assert tok.decode(tok.encode(text)) == text


def test_corpus_round_trips_through_the_ascii_tokenizer(corpus):
    tok = CharTokenizer.ascii()
    assert tok.decode(tok.encode(corpus)) == corpus


def test_unknown_characters_raise_and_are_listed():
    tok = CharTokenizer("abc ")
    with pytest.raises(ValueError, match="2 character") as info:
        tok.encode("a cab\u00e9 x")
    assert "'x\u00e9'" in str(info.value)  # both unknown characters, sorted
    assert "from_text" in str(info.value)


@pytest.mark.parametrize("ids", [[0, 3], [-1], [1, 2, 100]])
def test_decode_out_of_range_raises(ids):
    with pytest.raises(ValueError, match=r"ids must be in \[0, 3\)"):
        CharTokenizer("abc").decode(ids)


def test_duplicate_vocab_raises_naming_the_repeats():
    with pytest.raises(ValueError, match="repeats") as info:
        CharTokenizer("abcab")
    assert "['a', 'b']" in str(info.value)


@pytest.mark.parametrize("vocab", ["", [], ["ab", "c"]])
def test_empty_or_multi_character_vocab_raises(vocab):
    with pytest.raises(ValueError, match="vocab"):
        CharTokenizer(vocab)


# --- train/validation split ---------------------------------------------------------------


def test_split_is_ninety_ten_and_contiguous():
    ids = np.arange(1000, dtype=np.int32)
    splits = split_tokens(ids)
    assert len(splits.train) == 900 and len(splits.val) == 100
    np.testing.assert_array_equal(splits.train, ids[:900])
    np.testing.assert_array_equal(splits.val, ids[900:])
    assert splits.train.dtype == np.int32 and splits.val.dtype == np.int32


def test_split_of_the_corpus_is_deterministic(corpus):
    ids = CharTokenizer.ascii().encode(corpus)
    a, b = split_tokens(ids), split_tokens(ids)
    np.testing.assert_array_equal(a.train, b.train)
    np.testing.assert_array_equal(a.val, b.val)
    np.testing.assert_array_equal(np.concatenate([a.train, a.val]), ids)
    assert abs(len(a.val) / len(ids) - 0.1) < 1e-4


@settings(FAST)
@given(n=st.integers(20, 5000), val_fraction=st.floats(0.05, 0.95))
def test_split_keeps_every_token_once_in_order(n, val_fraction):
    ids = np.arange(n)
    splits = split_tokens(ids, val_fraction)
    np.testing.assert_array_equal(np.concatenate([splits.train, splits.val]), ids)
    assert abs(len(splits.val) - n * val_fraction) <= 0.5 + 1e-9


@pytest.mark.parametrize("val_fraction", [0.0, 1.0, -0.1, 1.5, float("nan")])
def test_split_rejects_bad_val_fraction(val_fraction):
    with pytest.raises(ValueError, match="val_fraction"):
        split_tokens(np.arange(100), val_fraction)


def test_split_rejects_too_few_tokens():
    with pytest.raises(ValueError, match="too few"):
        split_tokens(np.arange(3), 0.1)


# --- batches ------------------------------------------------------------------------------

N, BATCH, CONTEXT = 500, 4, 16


@pytest.fixture(scope="module")
def shuffled_ids():
    """Distinct ids in random order: each id's position in the source is unambiguous."""
    return np.random.default_rng(0).permutation(N).astype(np.int32)


@settings(FAST)
@given(seed=st.integers(0, 2**31 - 1))
def test_targets_are_the_next_tokens_in_the_source(shuffled_ids, seed):
    x, y = get_batch(shuffled_ids, BATCH, CONTEXT, jax.random.key(seed))
    assert x.shape == y.shape == (BATCH, CONTEXT)
    assert x.dtype == np.int32 and y.dtype == np.int32
    where = np.argsort(shuffled_ids)  # id -> its index in the source
    x, y = np.asarray(x), np.asarray(y)
    for b in range(BATCH):
        start = where[x[b, 0]]
        assert start + CONTEXT + 1 <= N  # the target window fits in the text
        np.testing.assert_array_equal(x[b], shuffled_ids[start : start + CONTEXT])
        np.testing.assert_array_equal(y[b], shuffled_ids[start + 1 : start + CONTEXT + 1])


def test_batches_of_the_corpus_are_windows_of_the_text(corpus):
    tok = CharTokenizer.ascii()
    ids = tok.encode(corpus)
    x, y = get_batch(ids, 3, 64, jax.random.key(0))
    for b in range(3):
        window = tok.decode(x[b]) + tok.decode(y[b])[-1]
        assert window in corpus
        assert tok.decode(y[b]) == window[1:]


def test_same_key_same_batch_different_key_different_batch(shuffled_ids):
    key = jax.random.key(42)
    x1, y1 = get_batch(shuffled_ids, BATCH, CONTEXT, key)
    x2, y2 = get_batch(shuffled_ids, BATCH, CONTEXT, key)
    np.testing.assert_array_equal(np.asarray(x1), np.asarray(x2))
    np.testing.assert_array_equal(np.asarray(y1), np.asarray(y2))
    x3, _ = get_batch(shuffled_ids, BATCH, CONTEXT, jax.random.key(43))
    assert not np.array_equal(np.asarray(x1), np.asarray(x3))


def test_shortest_possible_text_gives_the_only_window():
    ids = np.arange(CONTEXT + 1, dtype=np.int32)
    x, y = get_batch(ids, 2, CONTEXT, jax.random.key(0))
    np.testing.assert_array_equal(np.asarray(x), np.tile(ids[:-1], (2, 1)))
    np.testing.assert_array_equal(np.asarray(y), np.tile(ids[1:], (2, 1)))


@pytest.mark.parametrize(
    "batch_size,context_length,n,name",
    [
        (0, 8, 100, "batch_size"),
        (-2, 8, 100, "batch_size"),
        (4, 0, 100, "context_length"),
        (4, 8, 8, "context_length"),
        (4, 8, 3, "context_length"),
    ],
)
def test_get_batch_rejects_bad_sizes(batch_size, context_length, n, name):
    with pytest.raises(ValueError, match=name):
        get_batch(np.arange(n), batch_size, context_length, jax.random.key(0))


# --- the date-translation data (notebooks 02 and 03) ---------------------------------------------

import calendar  # noqa: E402
import datetime  # noqa: E402

from attnlab.data import (  # noqa: E402
    DATE_SOURCE_CHARS,
    DATE_STYLES,
    DATE_TARGET_CHARS,
    date_source_tokenizer,
    date_target_tokenizer,
    encode_dates,
    format_date,
    make_dates,
)

FRIDAY = datetime.date(2021, 9, 3)


def test_each_style_writes_friday_3_september_2021_as_its_name_says():
    # every style is named by how it writes this date
    for style in DATE_STYLES:
        assert format_date(FRIDAY, style) == style


@pytest.mark.parametrize(("day", "words", "digits"), [
    (1, "first", "1st"), (2, "second", "2nd"), (11, "eleventh", "11th"), (12, "twelfth", "12th"),
    (13, "thirteenth", "13th"), (20, "twentieth", "20th"), (21, "twenty-first", "21st"),
    (22, "twenty-second", "22nd"), (23, "twenty-third", "23rd"), (30, "thirtieth", "30th"),
    (31, "thirty-first", "31st"),
])
def test_ordinal_days_in_words_and_digits(day, words, digits):
    date = datetime.date(2000, 1, day)
    assert format_date(date, "the third of September 2021") == f"the {words} of January 2000"
    assert format_date(date, "3rd of September 2021") == f"{digits} of January 2000"


def test_make_dates_is_deterministic_per_seed():
    assert make_dates(50, seed=7) == make_dates(50, seed=7)
    assert make_dates(50, seed=7) != make_dates(50, seed=8)
    assert make_dates(0) == []


def test_every_target_is_the_iso_form_of_its_source():
    pairs = make_dates(600, seed=1)
    seen_styles = set()
    for source, target in pairs:
        date = datetime.date.fromisoformat(target)  # raises on an invalid date
        assert len(target) == 10 and target[4] == target[7] == "-"
        assert datetime.date(1950, 1, 1) <= date <= datetime.date(2049, 12, 31)
        matches = [st for st in DATE_STYLES if format_date(date, st) == source]
        assert matches, (source, target)
        seen_styles.update(matches)
        # independent checks of the numbers and names that appear in the source
        assert str(date.year) in source
        lowered = source.lower()
        month = calendar.month_name[date.month].lower()
        assert month in lowered or month[:3] in lowered or f"{date.month:d}" in source
        weekday = calendar.day_name[date.weekday()].lower()
        if any(name.lower()[:3] in lowered for name in calendar.day_name):
            assert weekday[:3] in lowered
    assert seen_styles == set(DATE_STYLES)


def test_make_dates_respects_its_range_and_styles():
    first, last = datetime.date(2020, 2, 28), datetime.date(2020, 3, 1)
    pairs = make_dates(40, seed=0, styles=["03.09.2021"], first=first, last=last)
    assert {t for _, t in pairs} == {"2020-02-28", "2020-02-29", "2020-03-01"}
    assert all(s == f"{t[8:]}.{t[5:7]}.{t[:4]}" for s, t in pairs)


def test_make_dates_rejects_bad_arguments():
    with pytest.raises(ValueError, match="n must be an integer >= 0"):
        make_dates(-1)
    with pytest.raises(ValueError, match="styles must be a non-empty selection"):
        make_dates(3, styles=["Sept. 3"])
    with pytest.raises(ValueError, match="must not be before"):
        make_dates(3, first=datetime.date(2001, 1, 1), last=datetime.date(2000, 1, 1))
    with pytest.raises(ValueError, match="style must be one of"):
        format_date(FRIDAY, "iso")
    with pytest.raises(TypeError, match="datetime.date"):
        format_date("2021-09-03", "03.09.2021")


def test_encode_dates_pads_with_zero_and_decodes_back():
    pairs = make_dates(30, seed=2)
    arrays = encode_dates(pairs, max_len=64)
    assert arrays.source.shape == (30, 64) and arrays.target.shape == (30, 10)
    assert arrays.source.dtype == arrays.lengths.dtype == arrays.target.dtype == np.int32
    src_tok, tgt_tok = date_source_tokenizer(), date_target_tokenizer()
    assert src_tok.vocab == DATE_SOURCE_CHARS and tgt_tok.vocab == DATE_TARGET_CHARS
    for (source, target), row, n, tgt in zip(pairs, arrays.source, arrays.lengths, arrays.target,
                                             strict=True):
        assert n == len(source)
        assert src_tok.decode(row[:n]) == source
        assert (row[n:] == 0).all()  # "_" pads
        assert tgt_tok.decode(tgt) == target
    assert 0 not in arrays.target  # "^" is only ever the decoder's start token
    assert encode_dates(pairs).source.shape[1] == max(len(s) for s, _ in pairs)


def test_encode_dates_rejects_bad_pairs():
    with pytest.raises(ValueError, match="pairs is empty"):
        encode_dates([])
    with pytest.raises(ValueError, match="has 10 characters; allowed 1 to 5"):
        encode_dates([("03.09.2021", "2021-09-03")], max_len=5)
    with pytest.raises(ValueError, match="must be 10 characters"):
        encode_dates([("3 Sep 2021", "2021-9-3")])
    with pytest.raises(ValueError, match="not in the tokenizer's vocabulary"):
        encode_dates([("3 Sep 2021 é", "2021-09-03")])
    with pytest.raises(ValueError, match="reserved character"):
        encode_dates([("3_Sep_2021", "2021-09-03")])
