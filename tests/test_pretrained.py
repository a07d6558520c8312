"""The shipped mini GPT loads instantly and is as good as the README says."""

import re
from pathlib import Path

import jax
import numpy as np
import pytest

import attnlab
from attnlab.data import load_corpus, split_tokens
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


def test_pretrained_validation_loss_matches_the_readme(pretrained):
    data = split_tokens(pretrained.tokenizer.encode(load_corpus()))
    measured = evaluate(pretrained.model, data.val)
    assert measured == pytest.approx(stated_val_loss(), abs=0.02)
    assert measured == pytest.approx(pretrained.metadata["val_loss"], abs=1e-3)
    assert measured <= 1.30  # the walking-skeleton target, nats/char


def test_pretrained_writes_mostly_real_words(pretrained):
    tok = pretrained.tokenizer
    text = tok.decode(generate(pretrained.model, tok.encode("The "), 300, temperature=0.5,
                               key=jax.random.key(0)))
    words = re.findall(r"[a-z]{3,}", text.lower())
    vocabulary = set(re.findall(r"[a-z]{3,}", load_corpus().lower()))
    known = np.mean([w in vocabulary for w in words])
    assert len(words) > 20 and known > 0.7, text
