"""Text in, text out: :func:`generate_text` with its ``stop`` string.

Notebooks 05, 08 and 09 continue text prompts with it.
"""

from __future__ import annotations

from collections.abc import Sequence

import jax
import numpy as np
from flax import nnx

from attnlab.sampling.generation import _generate


def generate_text(
    model: nnx.Module,
    tokenizer,
    prompt: str | Sequence[str],
    max_new_tokens: int,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    key: jax.Array,
    stop: str | None = None,
) -> str | list[str]:
    """Text in, text out: encode, :func:`generate`, decode.

    Args:
      model: a GPT whose vocabulary matches ``tokenizer``.
      tokenizer: has ``encode(str) -> (P,) int array`` and ``decode(ids) -> str``, e.g.
        :class:`attnlab.data.CharTokenizer`.
      prompt: non-empty text, or a list of them (generated together in one batch, row b with
        its own key as in :func:`generate`; for several samples of one prompt, repeat it).
      max_new_tokens, temperature, top_k, top_p, key: as in :func:`generate`.
      stop: None, or non-empty text that ends a continuation: the continuation is cut right
        after the first place where its new text contains ``stop`` (``stop`` included), and
        generation stops early once its tokens have been generated.

    Returns:
      ``prompt`` followed by the decoded continuation (the whole prompt, even when only its end
      fitted in the context window); a list of them for a list of prompts.

    Raises:
      ValueError: if ``prompt`` is empty, or ``prompt`` or ``stop`` has characters the
        tokenizer does not know, or any argument of :func:`generate` is invalid.
    """
    single = isinstance(prompt, str)
    prompts = [prompt] if single else list(prompt) if isinstance(prompt, list | tuple) else None
    if not prompts or not all(isinstance(p, str) and p for p in prompts):
        raise ValueError(
            f"prompt must be a non-empty str or a non-empty list of them; got {prompt!r}."
        )
    if stop is not None and (not isinstance(stop, str) or not stop):
        raise ValueError(f"stop must be None or a non-empty str; got {stop!r}.")
    encoded = [_encode(tokenizer, text, "prompt") for text in prompts]
    stop_ids = None if stop is None else _encode(tokenizer, stop, "stop")
    lengths = np.array([len(ids) for ids in encoded])
    ids = np.zeros((len(encoded), lengths.max()), np.int64)
    for row, row_ids in zip(ids, encoded, strict=True):
        row[: len(row_ids)] = row_ids
    tokens, total, kept = _generate(
        model, ids, max_new_tokens, temperature=temperature, top_k=top_k, top_p=top_p, key=key,
        prompt_lengths=lengths, stop_token=stop_ids, stacklevel=3,
    )  # fmt: skip
    tokens, total = np.asarray(tokens), np.asarray(total)
    texts = []
    for text, row, start, end in zip(prompts, tokens, kept, total, strict=True):
        new = tokenizer.decode(row[start:end])
        if stop is not None and stop in new:  # also catches a stop text split across tokens
            new = new[: new.index(stop) + len(stop)]
        texts.append(text + new)
    return texts[0] if single else texts


def _encode(tokenizer, text: str, name: str) -> np.ndarray:
    """``tokenizer.encode(text)``, its ValueError reworded to name the argument ``name``."""
    try:
        ids = np.asarray(tokenizer.encode(text))
    except ValueError as error:
        raise ValueError(f"{name} {text[:40]!r} cannot be encoded: {error}") from None
    if ids.size == 0:
        raise ValueError(f"{name} {text[:40]!r} encodes to no tokens.")
    return ids
