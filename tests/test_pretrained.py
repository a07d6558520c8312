"""The shipped mini GPT loads instantly and is as good as the README says."""

import hashlib
import re
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import attnlab
from attnlab.data import CORPUS_SHA256_PY311, load_corpus, split_tokens
from attnlab.gpt import GPT
from attnlab.pretrained import PRETRAINED_PATH
from attnlab.sampling import generate
from attnlab.train import evaluate

README = Path(__file__).resolve().parents[1] / "README.md"


def stated_val_loss() -> float:
    match = re.search(r"validation loss is\s+\*\*(\d+\.\d+) nats/char\*\*", README.read_text())
    assert match, "README.md should state the shipped checkpoint's validation loss"
    return float(match.group(1))


@pytest.fixture(scope="module")
def pretrained():
    return attnlab.load_pretrained()


def test_asset_is_small_enough_to_ship():
    assert PRETRAINED_PATH.stat().st_size < 5 * 2**20


def test_pretrained_loads_with_its_tokenizer(pretrained):
    assert isinstance(pretrained.model, GPT)
    assert pretrained.tokenizer.vocab_size == pretrained.config.vocab_size
    assert pretrained.metadata["command"].startswith("python -m attnlab train")


@pytest.fixture(scope="module")
def corpus():
    return load_corpus()


@pytest.fixture(scope="module")
def measured_val_loss(pretrained, corpus):
    data = split_tokens(pretrained.tokenizer.encode(corpus))
    return evaluate(pretrained.model, data.val)


def test_pretrained_validation_loss_matches_the_readme(pretrained, measured_val_loss, corpus):
    # The README's figure was measured on Python 3.11.7's edition of the reference. Other
    # Pythons ship a longer text (3.12, 3.13: about 492,000 and 511,000 characters) whose last
    # 10% is different held-out text, so the exact figure only applies to the same text.
    if hashlib.sha256(corpus.encode()).hexdigest() != CORPUS_SHA256_PY311:
        pytest.skip(f"Python {sys.version.split()[0]}'s corpus ({len(corpus):,} characters) is "
                    "not the text the README's figure was measured on; see the looser bound")
    assert measured_val_loss == pytest.approx(stated_val_loss(), abs=0.002)
    assert measured_val_loss == pytest.approx(pretrained.metadata["val_loss"], abs=1e-3)
    assert measured_val_loss <= 1.30  # the walking-skeleton target, nats/char


def test_pretrained_validation_loss_is_good_on_any_python(pretrained, measured_val_loss):
    # On any Python's corpus the shipped model is far better than guessing (ln 96 = 4.56) and
    # near its stated figure: 1.2596 on 3.11.7, 1.2593 on 3.12.1, 1.2621 on 3.13.0 (measured).
    assert measured_val_loss < 1.40
    assert measured_val_loss == pytest.approx(pretrained.metadata["val_loss"], abs=0.1)


def test_metadata_records_the_readme_figure(pretrained):
    # The checkpoint and the README state the same validation loss (README rounds to 3 places).
    assert round(pretrained.metadata["val_loss"], 3) == stated_val_loss()


def test_pretrained_writes_mostly_real_words(pretrained):
    tok = pretrained.tokenizer
    text = tok.decode(generate(pretrained.model, tok.encode("The "), 300, temperature=0.5,
                               key=jax.random.key(0)))
    words = re.findall(r"[a-z]{3,}", text.lower())
    vocabulary = set(re.findall(r"[a-z]{3,}", load_corpus().lower()))
    known = np.mean([w in vocabulary for w in words])
    assert len(words) > 20 and known > 0.7, text
