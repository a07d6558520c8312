"""Interactive views for the notebooks, built with ipywidgets on the package's pure functions.

Each builder returns its widget, so a test (or a curious learner) can set ``.value`` on a
control and read the state it produced, without a browser. Only what ipywidgets 7.7.1 (Google
Colab) and 8.x share is used: explicit controls, ``HTML`` outputs and ``.observe``; nothing
depends on when, or whether, a widget is displayed.

One module per view, in notebook order (import the builders from here, e.g.
``from attnlab.widgets import sampling_playground``):

- :mod:`attnlab.widgets.tokens` — 01: a text's tokens under a choice of tokenizers;
- :mod:`attnlab.widgets.translation` — 02, 03: translations by input length, attention alignments;
- :mod:`attnlab.widgets.self_attention` — 04: one query's scores, weights and output;
- :mod:`attnlab.widgets.heads` — 05, 10: one attention head as a heatmap, every head's weights;
- :mod:`attnlab.widgets.positions` — 05: the sinusoidal position table;
- :mod:`attnlab.widgets.architectures` — 06: the attention masks of GPT, BERT and T5;
- :mod:`attnlab.widgets.timeline` — 07: the text the model wrote during training;
- :mod:`attnlab.widgets.next_token` — 07, 10: the most likely next tokens for typed text;
- :mod:`attnlab.widgets.playground` — 08: temperature, top-k and top-p, live;
- :mod:`attnlab.widgets.sentiment` — 09: a fine-tuned classifier on a typed sentence;
- ``_common`` — what several of them share.
"""

from attnlab.widgets.architectures import (
    ARCHITECTURES,
    ArchitectureExplorer,
    architecture_explorer,
    architecture_panels,
)
from attnlab.widgets.architectures import MAX_WORDS as MAX_WORDS
from attnlab.widgets.heads import AttentionHeadExplorer, attention_head_explorer, attention_weights
from attnlab.widgets.next_token import (
    NextTokenExplorer,
    next_token_explorer,
    next_token_probabilities,
)
from attnlab.widgets.playground import SamplingPlayground, sampling_playground
from attnlab.widgets.positions import PositionalEncodingExplorer, positional_encoding_explorer
from attnlab.widgets.self_attention import SIMILARITIES as SIMILARITIES
from attnlab.widgets.self_attention import (
    SelfAttentionExplorer,
    attention_row,
    self_attention_explorer,
)
from attnlab.widgets.sentiment import SentimentPredictor, sentiment_predictor
from attnlab.widgets.timeline import SampleTimeline, sample_timeline
from attnlab.widgets.tokens import TokenViewer, token_pieces_html, token_viewer
from attnlab.widgets.translation import (
    AlignmentExplorer,
    LengthExplorer,
    alignment_explorer,
    examples_at_length,
    length_explorer,
)

__all__ = [
    # 01
    "TokenViewer", "token_pieces_html", "token_viewer",
    # 02, 03
    "AlignmentExplorer", "LengthExplorer", "alignment_explorer", "examples_at_length",
    "length_explorer",
    # 04
    "SelfAttentionExplorer", "attention_row", "self_attention_explorer",
    # 05, 10
    "AttentionHeadExplorer", "attention_head_explorer", "attention_weights",
    "PositionalEncodingExplorer", "positional_encoding_explorer",
    # 06
    "ARCHITECTURES", "ArchitectureExplorer", "architecture_explorer", "architecture_panels",
    # 07
    "SampleTimeline", "sample_timeline",
    # 07, 10
    "NextTokenExplorer", "next_token_explorer", "next_token_probabilities",
    # 08
    "SamplingPlayground", "sampling_playground",
    # 09
    "SentimentPredictor", "sentiment_predictor",
]
