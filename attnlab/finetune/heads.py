"""A task head on a GPT body (notebook 09, section 5): one label per sentence or per token,
the training step and probabilities of such classifiers, and the sentiment sentences they
learn with :func:`bag_of_words_predict`, a word-count baseline, to compare against.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from attnlab.finetune.training import _read_tsv, hidden_states, masked_cross_entropy
from attnlab.gpt import GPT

__all__ = [
    "SequenceClassifier", "TokenClassifier", "bag_of_words_predict", "classify_step",
    "encode_sentences", "load_sentiment", "predict_proba", "words_of",
]


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
