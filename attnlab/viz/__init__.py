"""Figures the notebooks share, drawn with matplotlib, each the same way everywhere.

matplotlib is imported only inside the functions that draw, so ``import attnlab.viz`` stays
light (``tests/test_imports.py``).

One module per kind of figure (import the functions from here, e.g.
``from attnlab.viz import plot_attention``):

- :mod:`attnlab.viz.tokens` — 01: tokens per character by vocabulary size, embeddings in 2-D;
- :mod:`attnlab.viz.rnn` — 02, 03: hidden states, vanishing gradients, accuracy by input
  length, translation alignments, RNN against attention timings;
- :mod:`attnlab.viz.training` — 02, 03, 07, 09: loss curves (also ``python -m attnlab
  train``), fine-tuning methods side by side;
- :mod:`attnlab.viz.tables` — 04: small labelled matrices as text and as heatmaps;
- :mod:`attnlab.viz.attention` — 04, 05, 06, 10: attention heatmaps, a grid of heads,
  attention masks;
- :mod:`attnlab.viz.positions` — 05: the position-encoding table;
- :mod:`attnlab.viz.next_token` — 06, 08, 10: next-token bar charts, what sampling's filters
  keep;
- ``_common`` — what several of them share (:func:`readable_token`).
"""

from attnlab.viz._common import readable_token
from attnlab.viz.attention import char_labels, plot_attention, plot_attention_heads, plot_masks
from attnlab.viz.next_token import plot_next_token, plot_next_token_distribution
from attnlab.viz.positions import plot_positional_encoding
from attnlab.viz.rnn import (
    plot_accuracy_by_length,
    plot_alignment,
    plot_gradient_decay,
    plot_hidden_states,
    plot_timings,
)
from attnlab.viz.tables import format_table, plot_matrix
from attnlab.viz.tokens import plot_embedding_2d, plot_vocab_tradeoff
from attnlab.viz.training import plot_finetune_comparison, plot_history

__all__ = [
    # 01
    "plot_embedding_2d", "plot_vocab_tradeoff",
    # 02, 03
    "plot_accuracy_by_length", "plot_alignment", "plot_gradient_decay", "plot_hidden_states",
    "plot_timings",
    # 02, 03, 07, 09
    "plot_finetune_comparison", "plot_history",
    # 04
    "format_table", "plot_matrix",
    # 04, 05, 06, 10
    "char_labels", "plot_attention", "plot_attention_heads", "plot_masks",
    # 05
    "plot_positional_encoding",
    # 06, 08, 10
    "plot_next_token", "plot_next_token_distribution", "readable_token",
]
