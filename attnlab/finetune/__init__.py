"""Adapting a pretrained GPT: choose what trains, low-rank adapters, masked losses, task heads.

Fine-tuning starts from trained weights and trains on a new task. What differs between the
methods is *which* numbers change:

- **full fine-tuning**: every parameter (:func:`make_finetune_optimizer` with ``nnx.Param``);
- **freezing**: only the parameters a filter selects, e.g. :func:`top_blocks` (the others stay
  bit-identical, weight decay included: the optimizer never sees them);
- **LoRA** (Hu et al. 2021, "LoRA: Low-Rank Adaptation of Large Language Models", eq. 3):
  each chosen ``x @ W + b`` becomes ``x @ W + b + (alpha / r) · x @ A @ B`` with ``A (in, r)``
  random, ``B (r, out)`` zero at the start, ``W`` frozen; :func:`add_lora`, :func:`merge_lora`;
- **new tokens**: :func:`extend_vocab` appends rows for characters the model never saw to its
  (tied) token embedding; only those rows (:class:`NewTokenParam`) train, the old rows stay
  bit-identical; :func:`merge_new_tokens` gives a plain GPT again;
- **a task head**: a small layer on the GPT's hidden states, one label per sentence
  (:class:`SequenceClassifier`) or per token (:class:`TokenClassifier`).

Also: :func:`masked_cross_entropy` (prompt → completion training counts only completion
tokens), :func:`encode_pairs` (pairs in a fixed template with their loss mask),
:func:`load_sentiment` and :func:`load_prompt_pairs` (the small datasets written for the
course, shipped under ``attnlab/datasets/``), and :func:`bag_of_words_predict` (a word-count
baseline for the sentiment classifiers, no neural network).

One module per idea, in notebook 09's order (import from here, e.g.
``from attnlab.finetune import add_lora``):

- :mod:`attnlab.finetune.trainable` — §1–2: the filters that choose what trains
  (:func:`top_blocks`), :func:`count_params`, :func:`make_finetune_optimizer`;
- :mod:`attnlab.finetune.training` — what the methods share: :func:`masked_cross_entropy`,
  :func:`finetune_step`, :func:`hidden_states`, the reader of the TSV datasets;
- :mod:`attnlab.finetune.new_tokens` — §3: :func:`extend_vocab`, :class:`NewTokenParam`,
  :class:`ExtendedEmbed`, :func:`merge_new_tokens`, :func:`load_french_text`;
- :mod:`attnlab.finetune.lora` — §4: :class:`LoRAParam`, :class:`LoRALinear`, :func:`add_lora`,
  :func:`merge_lora`;
- :mod:`attnlab.finetune.heads` — §5: :class:`SequenceClassifier`, :class:`TokenClassifier`,
  :func:`classify_step`, :func:`predict_proba`, the sentiment sentences and
  :func:`bag_of_words_predict`;
- :mod:`attnlab.finetune.pairs` — §6: :data:`PAIR_TEMPLATE`, :func:`encode_pairs`,
  :func:`load_prompt_pairs`, :func:`greedy_completions`.

Pure and jit-able; imports neither viz nor widgets.
"""

from attnlab.finetune.heads import Sentiment as Sentiment
from attnlab.finetune.heads import (
    SequenceClassifier,
    TokenClassifier,
    bag_of_words_predict,
    classify_step,
    encode_sentences,
    load_sentiment,
    predict_proba,
    words_of,
)
from attnlab.finetune.lora import LORA_TARGETS, LoRALinear, LoRAParam, add_lora, merge_lora
from attnlab.finetune.new_tokens import (
    ExtendedEmbed,
    NewTokenParam,
    extend_vocab,
    load_french_text,
    merge_new_tokens,
)
from attnlab.finetune.pairs import (
    PAIR_TEMPLATE,
    encode_pairs,
    greedy_completions,
    load_prompt_pairs,
)
from attnlab.finetune.trainable import Filter as Filter
from attnlab.finetune.trainable import count_params, make_finetune_optimizer, top_blocks
from attnlab.finetune.training import finetune_step, hidden_states, masked_cross_entropy

__all__ = [
    # choosing what trains (§1–2)
    "count_params", "make_finetune_optimizer", "top_blocks",
    # shared: the masked loss, the step, the hidden states
    "finetune_step", "hidden_states", "masked_cross_entropy",
    # new tokens (§3)
    "ExtendedEmbed", "NewTokenParam", "extend_vocab", "load_french_text", "merge_new_tokens",
    # LoRA (§4)
    "LORA_TARGETS", "LoRALinear", "LoRAParam", "add_lora", "merge_lora",
    # heads on a body (§5)
    "SequenceClassifier", "TokenClassifier", "bag_of_words_predict", "classify_step",
    "encode_sentences", "load_sentiment", "predict_proba", "words_of",
    # prompt → completion pairs (§6)
    "PAIR_TEMPLATE", "encode_pairs", "greedy_completions", "load_prompt_pairs",
]
