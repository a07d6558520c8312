"""Training and evaluating the encoder–decoders on the date task: the training loop, greedy
translation, exact match and accuracy by input length, and translating typed date texts
(notebooks 02 and 03).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from attnlab.rnn.cells import _check_sizes
from attnlab.rnn.seq2seq import Seq2Seq

__all__ = ["accuracy_by_length", "exact_match", "train_seq2seq", "translate", "translate_texts"]


# --- training and evaluation on the date task -------------------------------------------------


def _loss(model: Seq2Seq, source, lengths, target):
    target_in = jnp.concatenate([jnp.zeros_like(target[:, :1]), target[:, :-1]], axis=1)
    logits = model(source, lengths, target_in)
    return optax.softmax_cross_entropy_with_integer_labels(logits, target).mean()


@nnx.jit
def _train_step(model, optimizer, source, lengths, target):
    loss, grads = nnx.value_and_grad(_loss)(model, source, lengths, target)
    optimizer.update(model, grads)
    return loss


@nnx.jit
def _eval_loss(model, source, lengths, target):
    return _loss(model, source, lengths, target)


def train_seq2seq(model: Seq2Seq, data, *, steps: int, batch_size: int = 64,
                  learning_rate: float = 3e-3, seed: int = 0, validation=None,
                  eval_interval: int = 100, progress: bool = True):
    """Train an encoder–decoder in place with Adam on random batches of ``data``.

    Args:
      model: a :class:`Seq2Seq` or :class:`AttentionSeq2Seq`.
      data: an :class:`attnlab.data.DateArrays` (``source (N, S)``, ``lengths (N,)``,
        ``target (N, T)``).
      steps: optimizer steps (≥ 1); batch_size: pairs per step (≥ 1).
      learning_rate: Adam's first step size; it decays along a cosine to a tenth of that by
        the last step. The gradient's global norm is clipped to 1 (recurrent networks
        occasionally produce very large gradients).
      seed: seeds the batch order; same seed and model initialisation, same losses.
      validation: optional ``DateArrays`` whose loss is measured every ``eval_interval`` steps
        and at the end.
      progress: show a ``tqdm.auto`` progress bar.

    Returns:
      an :class:`attnlab.train.History` (per-step training loss in nats per output
      character, validation losses, time), ready for :func:`attnlab.viz.plot_history`.

    Raises:
      ValueError: if ``steps``, ``batch_size`` or ``eval_interval`` is below 1.
    """
    from tqdm.auto import tqdm

    from attnlab.train import History

    _check_sizes(steps=steps, batch_size=batch_size, eval_interval=eval_interval)
    schedule = optax.cosine_decay_schedule(learning_rate, steps, alpha=0.1)
    optimizer = nnx.Optimizer(
        model, optax.chain(optax.clip_by_global_norm(1.0), optax.adam(schedule)), wrt=nnx.Param)
    source, lengths, target = (jnp.asarray(a) for a in data[:3])
    rng = np.random.default_rng(seed)
    history = History()
    start = time.perf_counter()

    def validate(step):
        if validation is not None:
            history.val_steps.append(step)
            history.val_loss.append(float(_eval_loss(model, *(jnp.asarray(a)
                                                              for a in validation[:3]))))

    validate(0)
    pending = []
    for step in (bar := tqdm(range(1, steps + 1), disable=not progress, desc="training")):
        rows = jnp.asarray(rng.integers(0, len(source), batch_size))
        pending.append(_train_step(model, optimizer, source[rows], lengths[rows], target[rows]))
        if step % eval_interval == 0 or step == steps:
            losses = np.asarray(jax.device_get(jnp.stack(pending)), float).tolist()
            history.steps.extend(range(step - len(losses) + 1, step + 1))
            history.train_loss.extend(losses)
            pending.clear()
            validate(step)
            bar.set_postfix(loss=f"{losses[-1]:.3f}")
    history.elapsed_s = time.perf_counter() - start
    history.tokens_seen = steps * batch_size * int(target.shape[1])
    return history


@nnx.jit(static_argnames="n_steps")
def _greedy(model, source, lengths, n_steps):
    logits, weights = model.decode(source, lengths, None, n_steps=n_steps)
    return jnp.argmax(logits, -1), weights


def translate(model: Seq2Seq, source, lengths, *, n_steps: int = 10, batch_size: int = 512):
    """Greedy translation: at each step take the most likely character and feed it back.

    Args:
      model: a trained :class:`Seq2Seq` or :class:`AttentionSeq2Seq`.
      source: ``(N, S)`` int ids; lengths: ``(N,)`` int.
      n_steps: output length T (10 for ISO dates).
      batch_size: rows per compiled call (the last chunk is padded, so there is one compile).

    Returns:
      ``(ids, weights)``: ids ``(N, T)`` int NumPy array; weights ``(N, T, S)`` NumPy attention
      weights for an :class:`AttentionSeq2Seq`, else ``None``.

    Raises:
      ValueError: if the shapes do not fit, N is 0, or a length is outside ``[1, S]``.
    """
    source, lengths = np.asarray(source, np.int32), np.asarray(lengths, np.int32)
    if source.ndim != 2 or lengths.shape != source.shape[:1] or len(source) == 0:
        raise ValueError(f"source must be (N, S) and lengths (N,) with N >= 1; got "
                         f"{source.shape} and {lengths.shape}.")
    if lengths.min() < 1 or lengths.max() > source.shape[1]:
        raise ValueError(f"lengths must be between 1 and S = {source.shape[1]}; got "
                         f"{lengths.min()} to {lengths.max()}.")
    N = len(source)
    chunk = min(batch_size, N)
    pad = (-N) % chunk
    source = np.concatenate([source, np.zeros((pad, source.shape[1]), np.int32)])
    lengths = np.concatenate([lengths, np.ones(pad, np.int32)])
    ids, weights = [], []
    for i in range(0, len(source), chunk):
        out, w = _greedy(model, source[i : i + chunk], lengths[i : i + chunk], n_steps)
        ids.append(np.asarray(out))
        weights.append(None if w is None else np.asarray(w))
    ids = np.concatenate(ids)[:N]
    return ids, (None if weights[0] is None else np.concatenate(weights)[:N])


def exact_match(model: Seq2Seq, data) -> np.ndarray:
    """Per pair: did greedy translation write the whole target right? ``(N,)`` bool."""
    ids, _ = translate(model, data[0], data[1], n_steps=int(np.shape(data[2])[1]))
    return (ids == np.asarray(data[2])).all(axis=1)


def accuracy_by_length(correct, lengths, edges: Sequence[int]):
    """Exact-match accuracy of pairs grouped by source length.

    Args:
      correct: ``(N,)`` bool, e.g. from :func:`exact_match`; lengths: ``(N,)`` source lengths.
      edges: increasing bin edges; bin k holds lengths in ``[edges[k], edges[k+1])``.

    Returns:
      ``(accuracy, counts)``, each ``(len(edges) - 1,)``: the fraction correct in each bin
      (NaN for an empty bin) and the number of pairs in it.

    Raises:
      ValueError: if the shapes differ or ``edges`` is not increasing with at least 2 entries.
    """
    correct, lengths = np.asarray(correct, bool), np.asarray(lengths)
    edges = np.asarray(edges)
    if correct.shape != lengths.shape or correct.ndim != 1:
        raise ValueError(f"correct and lengths must be 1-D of the same length; got "
                         f"{correct.shape} and {lengths.shape}.")
    if edges.ndim != 1 or len(edges) < 2 or np.any(np.diff(edges) <= 0):
        raise ValueError(f"edges must be increasing, at least 2 of them; got {edges.tolist()}.")
    bins = np.digitize(lengths, edges) - 1
    counts = np.array([(bins == k).sum() for k in range(len(edges) - 1)])
    hits = np.array([correct[bins == k].sum() for k in range(len(edges) - 1)])
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, hits / np.maximum(counts, 1), np.nan), counts


# --- the date task as text --------------------------------------------------------------------


def translate_texts(model: Seq2Seq, texts: Sequence[str], *, max_len: int = 64):
    """Translate date texts with a model trained on :func:`attnlab.data.make_dates` pairs.

    Args:
      model: a trained :class:`Seq2Seq` or :class:`AttentionSeq2Seq`.
      texts: the inputs, e.g. ``["3 Sep 2021"]``; each 1 to ``max_len`` characters from
        :data:`attnlab.data.DATE_SOURCE_CHARS` (``"_"`` excepted).
      max_len: the padded source length (that of the training data, so that no new shape is
        compiled).

    Returns:
      ``(predictions, weights)``: the N output texts, and for an :class:`AttentionSeq2Seq` a
      list of N ``(10, len(text))`` NumPy attention weights (padding columns dropped), else a
      list of N ``None``.

    Raises:
      ValueError: if a text is empty, longer than ``max_len``, or has characters the model
        cannot read; the message says which.
    """
    from attnlab.data import date_source_tokenizer, date_target_tokenizer

    source_tok, target_tok = date_source_tokenizer(), date_target_tokenizer()
    texts = list(texts)
    source = np.zeros((len(texts), max_len), np.int32)
    for i, text in enumerate(texts):
        if not text:
            raise ValueError("The text is empty: type a date, e.g. '3 Sep 2021'.")
        if len(text) > max_len:
            raise ValueError(f"The text has {len(text)} characters; the model reads at most "
                             f"{max_len}.")
        unknown = sorted(set(text) - set(source_tok.vocab[1:]))
        if unknown:
            raise ValueError(f"The model cannot read {''.join(unknown)!r}: it knows letters, "
                             "digits, spaces and , . / - ( ).")
        source[i, : len(text)] = source_tok.encode(text)
    lengths = np.array([len(t) for t in texts], np.int32)
    ids, weights = translate(model, source, lengths)
    predictions = [target_tok.decode(row) for row in ids]
    if weights is None:
        return predictions, [None] * len(texts)
    return predictions, [w[:, : len(t)] for w, t in zip(weights, texts, strict=True)]
