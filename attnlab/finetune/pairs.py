"""Prompt → completion pairs (notebook 09, section 6): the template, the pairs with a loss
mask that counts only the completion (for :func:`~attnlab.finetune.training.finetune_step`),
the stored pairs, and greedy completions to test the result.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from flax import nnx

from attnlab.finetune.training import _read_tsv
from attnlab.gpt import GPT

__all__ = ["PAIR_TEMPLATE", "encode_pairs", "greedy_completions", "load_prompt_pairs"]


#: The template of prompt → completion examples; the loss counts the completion and the final
#: newline only.
PAIR_TEMPLATE = ("Q: ", "\nA: ", "\n")


def encode_pairs(tokenizer, pairs: Sequence[tuple[str, str]], length: int
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Prompt → completion pairs in :data:`PAIR_TEMPLATE` → ``(x, y, mask)``, each ``(N, length)``.

    ``text = "Q: " + prompt + "\\nA: " + completion + "\\n"``, padded with spaces to
    ``length + 1`` characters; ``x = text[:-1]``, ``y = text[1:]``. ``mask[n, t]`` is 1 where
    ``y[n, t]`` is a character of the completion or its final newline, 0 on the prompt, the
    template and the padding.

    Raises:
      ValueError: if a formatted pair is longer than ``length + 1`` characters.
    """
    start, middle, end = PAIR_TEMPLATE
    pad = tokenizer.encode(" ")[0]
    n = len(pairs)
    ids = np.full((n, length + 1), pad, np.int32)
    mask = np.zeros((n, length), np.float32)
    for i, (prompt, completion) in enumerate(pairs):
        head = start + prompt + middle
        text = head + completion + end
        if len(text) > length + 1:
            raise ValueError(f"pair {i} needs {len(text)} characters; length + 1 = {length + 1}.")
        ids[i, : len(text)] = tokenizer.encode(text)
        # y[t] = text[t + 1]: completion characters sit at text positions len(head) .. len(text)-1
        mask[i, len(head) - 1: len(text) - 1] = 1.0
    return ids[:, :-1], ids[:, 1:], mask


def load_prompt_pairs() -> dict[str, list[tuple[str, str]]]:
    """The 154 prompt → completion pairs written for notebook 09 (commands such as
    ``greet Anna``, ``spell lemon``, ``plural of city`` and their replies), split as stored.

    ``attnlab/datasets/prompt_pairs.tsv`` has the columns split, prompt, completion.

    Returns:
      ``{"train": [(prompt, completion), ...], "test": [...]}`` in stored order.
    """
    pairs = {"train": [], "test": []}
    for split, prompt, completion in _read_tsv("prompt_pairs.tsv"):
        pairs[split].append((prompt, completion))
    return pairs


@nnx.jit
def _logits(model, tokens):
    return model(tokens)


def greedy_completions(model: GPT, tokenizer, prompts: Sequence[str], length: int,
                       max_new_tokens: int) -> list[str]:
    """Complete each prompt in :data:`PAIR_TEMPLATE` greedily (most likely character each time).

    All prompts run as one batch in a fixed ``(N, length)`` buffer, so the model compiles once.
    Each completion is cut at its first newline (the template's end).

    Args:
      model: a GPT (with or without adapters).
      prompts: the prompts, without the template.
      length: buffer length, at most the context window; ``"Q: " + prompt + "\\nA: "`` plus
        ``max_new_tokens`` must fit.
      max_new_tokens: how many characters to generate at most.

    Returns:
      the completions, one string per prompt.

    Raises:
      ValueError: if a prompt does not fit.
    """
    start, middle, end = PAIR_TEMPLATE
    heads = [start + p + middle for p in prompts]
    if any(len(h) + max_new_tokens > length for h in heads) or length > model.config.context_length:
        raise ValueError(f"length={length} must hold each prompt plus max_new_tokens="
                         f"{max_new_tokens} and fit the context window.")
    pad = tokenizer.encode(" ")[0]
    buffer = np.full((len(prompts), length), pad, np.int32)
    cursor = np.array([len(h) for h in heads])
    for i, h in enumerate(heads):
        buffer[i, : len(h)] = tokenizer.encode(h)
    rows = np.arange(len(prompts))
    for _ in range(max_new_tokens):
        logits = np.asarray(_logits(model, buffer))  # (N, length, V)
        buffer[rows, cursor] = logits[rows, cursor - 1].argmax(-1)
        cursor += 1
    texts = [tokenizer.decode(buffer[i, len(h):]) for i, h in enumerate(heads)]
    return [t.split(end, 1)[0] for t in texts]
