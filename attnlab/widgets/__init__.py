"""Interactive views for the notebooks, built with ipywidgets on the package's pure functions.

Each builder returns its widget, so a test (or a curious learner) can set ``.value`` on a
control and read the state it produced, without a browser. Only what ipywidgets 7.7.1 (Google
Colab) and 8.x share is used: explicit controls, ``HTML`` outputs and ``.observe``; nothing
depends on when, or whether, a widget is displayed.
"""

from __future__ import annotations

import html
from collections.abc import Mapping

import ipywidgets as widgets
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from attnlab.widgets._common import _png, _show_char
from attnlab.widgets.next_token import (
    NextTokenExplorer,
    _encode,
    _last_logits,
    next_token_explorer,
    next_token_probabilities,
)
from attnlab.widgets.timeline import SampleTimeline, sample_timeline

__all__ = [
    "NextTokenExplorer",
    "SampleTimeline",
    "next_token_explorer",
    "next_token_probabilities",
    "sample_timeline",
]


# --- one query's attention, step by step (notebook 04) -----------------------------------------

__all__ += ["SelfAttentionExplorer", "attention_row", "self_attention_explorer"]  # merge-friendly

#: The similarity functions the explorer offers: (label shown, value).
SIMILARITIES = (("dot product", "dot"), ("cosine", "cosine"), ("additive", "additive"))


def attention_row(q, k, v, index: int, *, causal: bool = False, scaled: bool = True,
                  similarity: str = "dot", additive_params=None):
    """One query's attention over all keys: its scores, which keys it may see, weights, output.

    Args:
      q: ``(T, d)`` queries; k: ``(T, d)`` keys; v: ``(T, d_v)`` values (one sequence, one head).
      index: the query position t, ``0 <= t < T``.
      causal: hide the keys after position t.
      scaled: divide dot-product scores by ``sqrt(d)`` (ignored by the other similarities).
      similarity: ``"dot"``, ``"cosine"`` or ``"additive"`` (see :mod:`attnlab.attention`).
      additive_params: ``(W_a, U_a, v_a)`` for ``"additive"``.

    Returns:
      ``(scores, allowed, weights, output)`` as NumPy arrays: scores ``(T,)`` before masking,
      allowed ``(T,)`` bool, weights ``(T,)`` (0 where not allowed, summing to 1), output
      ``(d_v,)`` = ``weights @ v``.

    Raises:
      ValueError: for an unknown similarity, or ``"additive"`` without parameters.
    """
    from attnlab.attention import additive_score, cosine_score, dot_product_score, masked_softmax

    q_t = jnp.asarray(q)[index : index + 1]  # (1, d): this query only
    if similarity == "dot":
        scores = dot_product_score(q_t, k, scale=None if scaled else 1.0)
    elif similarity == "cosine":
        scores = cosine_score(q_t, k)
    elif similarity == "additive":
        if additive_params is None:
            raise ValueError("similarity 'additive' needs additive_params=(W_a, U_a, v_a).")
        scores = additive_score(q_t, k, *additive_params)
    else:
        raise ValueError(
            f"similarity must be one of {[value for _, value in SIMILARITIES]}; got {similarity!r}."
        )
    T = scores.shape[-1]
    allowed = np.arange(T) <= index if causal else np.ones(T, bool)
    weights = masked_softmax(scores[0], jnp.asarray(allowed))
    return (np.asarray(scores[0]), allowed, np.asarray(weights),
            np.asarray(weights @ jnp.asarray(v)))


class SelfAttentionExplorer(widgets.VBox):
    """Pick a query token and switches; see its score row, weight row and output vector.

    Attributes:
      query: ``Dropdown`` of positions (labels ``"t · token"``, values ``t``).
      causal: ``Checkbox``, hide later tokens.
      scaled: ``Checkbox``, divide dot products by sqrt(d_head) (disabled for other similarities).
      similarity: ``ToggleButtons`` with values ``"dot"``, ``"cosine"`` and, when parameters
        were given, ``"additive"``.
      output: ``HTML`` with the table that the controls update.
      scores, allowed, weights, z: the current row, as returned by :func:`attention_row`
        (all ``None`` while no query token is selected).
    """

    def __init__(self, tokens, q, k, v, *, additive_params, value_labels, query, causal,
                 scaled, similarity) -> None:
        self.tokens = [str(t) for t in tokens]
        self.q, self.k, self.v = np.asarray(q), np.asarray(k), np.asarray(v)
        self.additive_params = additive_params
        self.value_labels = value_labels
        style = {"description_width": "initial"}
        self.query = widgets.Dropdown(
            options=[(f"{t} · {token}", t) for t, token in enumerate(self.tokens)],
            value=query, description="query token", style=style)
        self.causal = widgets.Checkbox(value=causal, description="causal mask", style=style)
        self.scaled = widgets.Checkbox(value=scaled, description="divide by √d_head",
                                       style=style)
        offered = [s for s in SIMILARITIES if s[1] != "additive" or additive_params is not None]
        self.similarity = widgets.ToggleButtons(options=offered, value=similarity,
                                                description="similarity", style=style)
        self.output = widgets.HTML(value="")
        for control in (self.query, self.causal, self.scaled, self.similarity):
            control.observe(self._on_change, names="value")
        super().__init__(children=[
            widgets.HBox([self.query, self.causal, self.scaled]), self.similarity, self.output])
        self._render()

    def _on_change(self, change: dict) -> None:
        self._render()

    def _render(self) -> None:
        similarity = self.similarity.value
        self.scaled.disabled = similarity != "dot"
        if self.query.value is None:  # a Dropdown can be cleared (ipywidgets 8)
            self.scores = self.allowed = self.weights = self.z = None
            self.output.value = "<i>Pick a query token to see its scores and weights.</i>"
            return
        self.scores, self.allowed, self.weights, self.z = attention_row(
            self.q, self.k, self.v, self.query.value, causal=self.causal.value,
            scaled=self.scaled.value, similarity=similarity,
            additive_params=self.additive_params)
        cell = 'style="text-align: right; padding: 2px 8px;"'
        head = "".join(f"<th {cell}>{html.escape(t)}</th>" for t in self.tokens)
        score_cells, weight_cells = [], []
        for s, score in enumerate(self.scores):
            if not self.allowed[s]:
                score_cells.append(f'<td {cell}><span style="color: #999;">masked</span></td>')
                weight_cells.append(f'<td {cell}><span style="color: #999;">0</span></td>')
                continue
            w = float(self.weights[s])
            score_cells.append(f"<td {cell}>{score:.2f}</td>")
            text = "white" if w > 0.5 else "black"  # readable on the dark blue of large weights
            weight_cells.append(
                f'<td style="text-align: right; padding: 2px 8px; color: {text}; '
                f'background: rgba(31, 119, 180, {w:.2f});">{w:.2f}</td>')
        labels = self.value_labels or [f"z[{i}]" for i in range(len(self.z))]
        z_text = ", ".join(f"{html.escape(str(n))} = {x:.3f}"
                           for n, x in zip(labels, self.z, strict=True))
        what = {"dot": "q·k" + (" / √d_head" if self.scaled.value else " (not scaled)"),
                "cosine": "cos(q, k)", "additive": "v_a · tanh(q W_a + k U_a)"}[similarity]
        token = html.escape(self.tokens[self.query.value])
        self.output.value = (
            f"<table><tr><th {cell}>key →</th>{head}</tr>"
            f"<tr><th {cell}>score ({html.escape(what)})</th>{''.join(score_cells)}</tr>"
            f"<tr><th {cell}>weight (softmax)</th>{''.join(weight_cells)}</tr></table>"
            f"<div>output z for <b>{token}</b> = Σ weight · v: {z_text}</div>")


def self_attention_explorer(tokens, q, k, v, *, additive_params=None, value_labels=None,
                            query: int = 0, causal: bool = False, scaled: bool = True,
                            similarity: str = "dot") -> SelfAttentionExplorer:
    """Explore one query's attention over a sentence: its scores, weights and output.

    Args:
      tokens: the T tokens (labels of positions).
      q, k: ``(T, d)`` queries and keys; v: ``(T, d_v)`` values (one sequence, one head).
      additive_params: optional ``(W_a, U_a, v_a)`` for :func:`attnlab.attention.additive_score`;
        without them the "additive" choice is not offered.
      value_labels: optional d_v names of the output's dimensions.
      query, causal, scaled, similarity: the starting state of the controls.

    Returns:
      a :class:`SelfAttentionExplorer` (an ``ipywidgets.VBox``).

    Raises:
      ValueError: if the shapes or labels disagree, ``query`` is not a position, or
        ``similarity`` is not one that is offered.
    """
    q, k, v = np.asarray(q), np.asarray(k), np.asarray(v)
    T = len(tokens)
    if q.ndim != 2 or k.shape != q.shape or v.ndim != 2 or q.shape[0] != T or v.shape[0] != T:
        raise ValueError(
            f"q and k must be (T, d) and v (T, d_v), with T = len(tokens) = {T}; got "
            f"q {q.shape}, k {k.shape}, v {v.shape}.")
    if value_labels is not None and len(value_labels) != v.shape[1]:
        raise ValueError(f"value_labels has {len(value_labels)} names; v has {v.shape[1]} columns.")
    if isinstance(query, bool) or not isinstance(query, int | np.integer) or not 0 <= query < T:
        raise ValueError(f"query must be a position from 0 to {T - 1}; got {query!r}.")
    offered = [value for _, value in SIMILARITIES
               if value != "additive" or additive_params is not None]
    if similarity not in offered:
        raise ValueError(f"similarity must be one of {offered}; got {similarity!r}.")
    return SelfAttentionExplorer(tokens, q, k, v, additive_params=additive_params,
                                 value_labels=value_labels, query=int(query), causal=causal,
                                 scaled=scaled, similarity=similarity)


# --- decoder-only, encoder-only, encoder–decoder: the same text under each --------------------

#: The three transformer families, as the architecture buttons name them.
ARCHITECTURES = ("decoder-only (GPT)", "encoder-only (BERT)", "encoder–decoder (T5)")

#: Word-level tokens shown per text box (more would make the grids unreadable).
MAX_WORDS = 10

_ABOUT = {
    ARCHITECTURES[0]: (
        "GPT reads the input and the output as <b>one sequence</b>: the prompt is just its first "
        "tokens. Every position sees itself and the positions before it (causal mask) and is "
        "trained to predict the <b>next token</b>. The output is written one token at a time. "
        "(Simplified: a real prompt marks where the output starts, e.g. with a separator "
        "token.)"
    ),
    ARCHITECTURES[1]: (
        "BERT reads only the input, and every position sees <b>every</b> position, left and "
        "right. It is trained to recover tokens hidden behind <code>[MASK]</code> (here "
        "<b>{hidden}</b>) from both sides. It writes no output text, so the output box is "
        "not used; its vectors feed a task head (classification, tagging, answer spans)."
    ),
    ARCHITECTURES[2]: (
        "T5's <b>encoder</b> reads the whole input with bidirectional attention. Its "
        "<b>decoder</b> writes the output one token at a time: each output position sees the "
        "earlier output positions (causal) and, through <b>cross-attention</b>, every input "
        "token. (Simplified: a real decoder's output is shifted right by one position and "
        "starts with a start token.)"
    ),
}


def architecture_panels(architecture: str, source_tokens, target_tokens):
    """The attention masks of one transformer family for an input and an output text.

    Args:
      architecture: one of :data:`ARCHITECTURES`.
      source_tokens: the input's tokens (≥ 1), e.g. the words of a sentence to translate.
      target_tokens: the output's tokens; needed (≥ 1) by the encoder–decoder, appended to the
        input by the decoder-only model, unused by the encoder-only model.

    Returns:
      a list of ``(title, mask, query_labels, key_labels)``, one per attention kind the family
      has, ``mask`` a ``(T, S)`` bool NumPy array (True = may attend); ready for
      :func:`attnlab.viz.plot_masks`. The encoder-only model's input has its middle token
      (index ``len // 2``) replaced by ``"[MASK]"``.

    Raises:
      ValueError: if ``architecture`` is unknown, ``source_tokens`` is empty, or
        ``target_tokens`` is empty for the encoder–decoder.

    Sources: Radford et al. 2019 (GPT-2); Devlin et al. 2019 (BERT); Raffel et al. 2020 (T5).
    """
    from attnlab.attention import bidirectional_mask, causal_mask, encoder_decoder_masks

    source, target = [str(t) for t in source_tokens], [str(t) for t in target_tokens]
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {ARCHITECTURES}; got {architecture!r}.")
    if not source:
        raise ValueError("source_tokens is empty; every model needs at least one input token.")
    if architecture == ARCHITECTURES[0]:
        sequence = source + target
        mask = np.asarray(causal_mask(len(sequence)))
        return [("GPT: causal self-attention (input + output)", mask, sequence, sequence)]
    if architecture == ARCHITECTURES[1]:
        hidden = list(source)
        hidden[len(hidden) // 2] = "[MASK]"
        mask = np.asarray(bidirectional_mask(len(hidden)))
        return [("BERT: bidirectional self-attention", mask, hidden, hidden)]
    if not target:
        raise ValueError("target_tokens is empty; the encoder–decoder needs an output to write.")
    masks = encoder_decoder_masks(len(source), len(target))
    labels = {
        "encoder self-attention": (source, source),
        "decoder self-attention": (target, target),
        "cross-attention": (target, source),
    }
    return [(f"T5: {name}", np.asarray(mask), *labels[name]) for name, mask in masks.items()]


def _mask_table(title: str, mask: np.ndarray, query_labels, key_labels) -> str:
    """One mask as an HTML grid: a filled square where the row's token may attend."""
    head = "".join(
        f'<th style="writing-mode: vertical-rl; font-weight: normal; padding: 0 2px;">'
        f"{html.escape(_show_char(k))}</th>" for k in key_labels
    )
    rows = []
    for label, row in zip(query_labels, mask, strict=True):
        cells = "".join(
            '<td style="width: 14px; height: 14px; border: 1px solid #ccc; background: '
            f'{"#1f77b4" if allowed else "white"};"></td>' for allowed in row
        )
        rows.append(
            f'<tr><td style="text-align: right; padding-right: 6px;">'
            f"{html.escape(_show_char(label))}</td>{cells}</tr>"
        )
    return (
        f'<div style="display: inline-block; vertical-align: top; margin: 0 18px 8px 0;">'
        f"<div><b>{html.escape(title)}</b></div>"
        f'<table style="border-collapse: collapse;"><tr><td></td>{head}</tr>{"".join(rows)}'
        f"</table></div>"
    )


class ArchitectureExplorer(widgets.VBox):
    """Buttons for GPT, BERT and T5, two text boxes, and the attention masks each model uses.

    Attributes:
      architecture: ``ToggleButtons`` over :data:`ARCHITECTURES`; set ``.value`` to switch.
      source: ``Text`` with the input (split into words, at most :data:`MAX_WORDS`).
      target: ``Text`` with the output (same splitting).
      output: ``HTML``: what the model reads and predicts, then one grid per mask (rows are
        queries, columns keys; a filled square = may attend).
      panels: the current :func:`architecture_panels` result (empty when the text is invalid).
    """

    def __init__(self, source: str, target: str, architecture: str) -> None:
        self.panels: list = []
        self.architecture = widgets.ToggleButtons(
            options=list(ARCHITECTURES), value=architecture, description="model"
        )
        layout = widgets.Layout(width="90%")
        self.source = widgets.Text(value=source, description="input", layout=layout)
        self.target = widgets.Text(value=target, description="output", layout=layout)
        self.output = widgets.HTML(value="")
        for control in (self.architecture, self.source, self.target):
            control.observe(self._on_change, names="value")
        super().__init__(children=[self.architecture, self.source, self.target, self.output])
        self._render()

    def _on_change(self, change: dict) -> None:
        self._render()

    def _render(self) -> None:
        typed = {"input": self.source.value.split(), "output": self.target.value.split()}
        source, target = typed["input"][:MAX_WORDS], typed["output"][:MAX_WORDS]
        cut = [f"the {name} has {len(words)} words; showing the first {MAX_WORDS}."
               for name, words in typed.items() if len(words) > MAX_WORDS
               and (name == "input" or self.architecture.value != ARCHITECTURES[1])]
        notes = "".join(f"<div><i>{html.escape(line[0].upper() + line[1:])}</i></div>"
                        for line in cut)
        missing = None
        if not source:
            missing = "Type an input text: every model needs at least one token."
        elif not target and self.architecture.value == ARCHITECTURES[2]:
            missing = "Type an output text: the encoder–decoder needs an output to write."
        if missing:
            self.panels = []
            self.output.value = f"<i>{missing}</i>"
            return
        self.panels = architecture_panels(self.architecture.value, source, target)
        hidden = html.escape(source[len(source) // 2])
        about = _ABOUT[self.architecture.value].format(hidden=hidden)
        if self.architecture.value == ARCHITECTURES[1] and len(source) == 1:
            about += (" <b>With a one-word input, that word is the only token, so it becomes "
                      "<code>[MASK]</code> and nothing is left to guess it from: type two or "
                      "more words.</b>")
        grids = "".join(_mask_table(*panel) for panel in self.panels)
        self.output.value = (f'<div style="max-width: 60em; margin: 6px 0;">{about}</div>'
                             f"{notes}{grids}")


def architecture_explorer(
    *,
    source: str = "the cat sat on the mat",
    target: str = "le chat était assis",
    architecture: str = ARCHITECTURES[0],
) -> ArchitectureExplorer:
    """Compare the attention masks of GPT, BERT and T5 on the same input and output text.

    Args:
      source: the input text (words are the tokens here, for readability).
      target: the output text, e.g. a translation of ``source``.
      architecture: the family shown first, one of :data:`ARCHITECTURES`.

    Returns:
      an :class:`ArchitectureExplorer` (an ``ipywidgets.VBox``).

    Raises:
      ValueError: if ``architecture`` is not one of :data:`ARCHITECTURES`.
    """
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {ARCHITECTURES}; got {architecture!r}.")
    return ArchitectureExplorer(source, target, architecture)


__all__ += ["ARCHITECTURES", "ArchitectureExplorer", "architecture_explorer", "architecture_panels"]


# --- 01 · the pieces a tokenizer cuts a text into ----------------------------------------------

__all__ += ["TokenViewer", "token_pieces_html", "token_viewer"]

# Light backgrounds with dark text, readable on light and dark themes; a token's colour
# follows its id, so the same token has the same colour wherever it appears.
_PIECE_COLOURS = ("#fde2a8", "#c8e6c9", "#bbdefb", "#f8bbd0", "#d1c4e9", "#ffccbc",
                  "#b2ebf2", "#e6ee9c")
_UNK_STYLE = "background: #ffffff; border: 2px solid #b3261e; color: #b3261e;"


def _visible(text: str) -> str:
    return html.escape(text.replace(" ", "␣").replace("\n", "⏎").replace("\t", "⇥"))


def token_pieces_html(pieces) -> str:
    """HTML that shows each token as a box: the characters it covers (space as ␣, newline as
    ⏎), its id beneath, a background colour that follows the id, and a red frame for an
    unknown token (``piece.token == "[UNK]"``).

    Args:
      pieces: :class:`attnlab.tokenization.Piece` items, e.g. from
        :func:`attnlab.tokenization.token_pieces`.

    Returns:
      an HTML ``str`` (empty pieces give an empty ``<div>``).
    """
    from attnlab.tokenization import UNK

    boxes = []
    for piece in pieces:
        unknown = piece.token == UNK
        style = (_UNK_STYLE if unknown else
                 f"background: {_PIECE_COLOURS[piece.id % len(_PIECE_COLOURS)]}; "
                 "border: 1px solid #9e9e9e; color: #202124;")
        tip = f"id {piece.id}: {piece.token!r}" + (f" (for {piece.text!r})" if unknown else "")
        boxes.append(
            f'<span title="{html.escape(tip)}" style="display: inline-block; margin: 2px 1px; '
            f'padding: 0 3px; border-radius: 3px; text-align: center; {style}">'
            f'<code style="white-space: pre; background: none; color: inherit;">'
            f"{_visible(piece.text)}</code><br>"
            f'<small style="color: inherit;">{piece.id}</small></span>'
        )
    return f'<div style="line-height: 1.1;">{"".join(boxes)}</div>'


class TokenViewer(widgets.VBox):
    """Pick a tokenizer, type a text, and see the tokens: the pieces, coloured, with their ids.

    Attributes:
      choice: ``Dropdown`` of the tokenizers' names; set ``.value`` to switch.
      text: ``Textarea`` with the text; set ``.value`` to change it.
      output: ``HTML`` with a summary line and the pieces (or the tokenizer's error message).
      tokenizers: the ``{name: tokenizer}`` mapping offered.
      pieces: the current :class:`attnlab.tokenization.Piece` list (empty on an error).
      error: ``None``, or the message of the ``ValueError`` the tokenizer raised (the character
        tokenizer refuses characters outside its vocabulary).
    """

    def __init__(self, tokenizers: Mapping, text: str, name: str) -> None:
        self.tokenizers = dict(tokenizers)
        self.pieces: list = []
        self.error: str | None = None
        self.choice = widgets.Dropdown(options=list(self.tokenizers), value=name,
                                       description="tokenizer")
        self.text = widgets.Textarea(value=text, description="text", continuous_update=True,
                                     layout=widgets.Layout(width="90%", height="60px"))
        self.output = widgets.HTML(value="")
        self.choice.observe(self._on_change, names="value")
        self.text.observe(self._on_change, names="value")
        super().__init__(children=[self.choice, self.text, self.output])
        self._render()

    @property
    def ids(self) -> list[int]:
        """The current token ids."""
        return [p.id for p in self.pieces]

    def _on_change(self, change: dict) -> None:
        self._render()

    def _render(self) -> None:
        from attnlab.tokenization import UNK, token_pieces

        name, text = self.choice.value, self.text.value
        try:
            self.pieces, self.error = token_pieces(self.tokenizers[name], text), None
        except ValueError as error:
            self.pieces, self.error = [], str(error)
            self.output.value = (f'<div style="color: #b3261e;"><b>{html.escape(name)} cannot '
                                 f"encode this text:</b> {html.escape(self.error)}</div>")
            return
        n_chars, n_tokens = len(text), len(self.pieces)
        summary = f"{n_chars} characters → {n_tokens} tokens"
        if n_chars:
            summary += f" ({n_tokens / n_chars:.2f} tokens per character)"
        unknown = [p for p in self.pieces if p.token == UNK]
        if unknown:
            what = ", ".join(repr(u) for u in dict.fromkeys(p.text for p in unknown))
            summary += (f"; {len(unknown)} unknown, framed in red: {UNK} (id {unknown[0].id}) "
                        f"stands for {what}")
        covered = sum(p.end - p.start for p in self.pieces)
        if covered < n_chars:
            summary += f"; {n_chars - covered} characters (whitespace) belong to no token"
        self.output.value = f"<div><i>{html.escape(summary)}</i></div>" + token_pieces_html(
            self.pieces)


def token_viewer(tokenizers: Mapping, *, text: str = "Tokenizers cut text into pieces.",
                 tokenizer: str | None = None) -> TokenViewer:
    """A dropdown of tokenizers and a text box; shows the text's tokens as coloured pieces
    with their ids.

    Args:
      tokenizers: ``{name: tokenizer}``, each a ``CharTokenizer``, ``WordTokenizer`` or
        ``BPETokenizer`` (see :mod:`attnlab.tokenization`); at least one.
      text: the starting text (any text: empty, or with characters a tokenizer never saw).
      tokenizer: the name to start with (default: the first).

    Returns:
      a :class:`TokenViewer` (an ``ipywidgets.VBox``).

    Raises:
      ValueError: if ``tokenizers`` is empty or ``tokenizer`` is not one of its names.
      TypeError: if ``text`` is not a str.
    """
    if not tokenizers:
        raise ValueError("tokenizers is empty; pass {name: tokenizer} with at least one entry.")
    if not isinstance(text, str):
        raise TypeError(f"text must be a str; got {type(text).__name__}.")
    name = next(iter(tokenizers)) if tokenizer is None else tokenizer
    if name not in tokenizers:
        raise ValueError(f"tokenizer must be one of {list(tokenizers)}; got {tokenizer!r}.")
    return TokenViewer(tokenizers, text, name)


# --- attention heads and position tables (notebook 05) ----------------------------------------

__all__ += [
    "AttentionHeadExplorer",
    "PositionalEncodingExplorer",
    "attention_head_explorer",
    "positional_encoding_explorer",
]


@nnx.jit
def _all_attention(model, tokens: jax.Array) -> jax.Array:
    """Attention weights of every layer, ``(L, H, C, C)``, for a ``(1, C)`` buffer."""
    _, weights = model(tokens, return_attention=True)
    return jnp.stack([w[0] for w in weights])


class AttentionHeadExplorer(widgets.VBox):
    """Pick a layer, a head and a text; see that head's attention as a heatmap.

    The text is padded to the context window (one compiled shape for every length; the causal
    mask keeps the padding invisible), and only its real characters are shown.

    Attributes:
      layer, head: ``Dropdown`` controls (ints); set ``.value`` to switch.
      text: ``Text`` box (updates when you press Enter or leave the box).
      image: ``Image`` with the heatmap (PNG).
      summary: ``HTML``: how much weight this head puts on the token itself and on the
        previous token, and how far back it looks, averaged over the queries.
      tokens: the characters shown (the last ``context_length`` of the text).
      all_weights: ``(L, H, T, T)`` NumPy weights of every layer and head for ``tokens``.
      weights: ``(T, T)``, the chosen layer and head.
      profile: ``{"itself": ..., "previous": ..., "distance": ...}`` for the chosen head:
        mean weight at offsets 0 and 1 (:func:`attnlab.attention.mean_weight_at_offset`), and
        the mean over queries t of ``Σ_s weights[t, s]·(t − s)``, in tokens.
    """

    def __init__(self, model, tokenizer, text: str, layer: int, head: int) -> None:
        self.model, self.tokenizer = model, tokenizer
        c = model.config
        self.layer = widgets.Dropdown(options=list(range(c.n_layers)), value=layer,
                                      description="layer")
        self.head = widgets.Dropdown(options=list(range(c.n_heads)), value=head,
                                     description="head")
        self.text = widgets.Text(value=text, description="text", continuous_update=False,
                                 layout=widgets.Layout(width="90%"))
        self.image = widgets.Image(format="png")
        self.summary = widgets.HTML(value="")
        self.tokens: list[str] = []
        self.all_weights: np.ndarray | None = None
        self.weights: np.ndarray | None = None
        self.profile: dict[str, float] = {}
        self._cut = False
        self.text.observe(self._on_text, names="value")
        self.layer.observe(self._on_choice, names="value")
        self.head.observe(self._on_choice, names="value")
        super().__init__(children=[widgets.HBox([self.layer, self.head]), self.text,
                                   self.summary, self.image])
        self._compute(text)
        self._render()

    def _on_text(self, change: dict) -> None:
        self._compute(change["new"])
        self._render()

    def _on_choice(self, change: dict) -> None:
        self._render()

    def _compute(self, text: str) -> None:
        C = self.model.config.context_length
        try:
            if not text:
                raise ValueError("the text is empty; type at least two characters.")
            ids = np.asarray(self.tokenizer.encode(text), np.int32)
            self._cut = len(ids) > C
            ids = ids[-C:]
        except ValueError as error:
            self.tokens, self.all_weights = [], None
            self._error = str(error)
            return
        self._error = None
        buffer = np.zeros((1, C), np.int32)
        buffer[0, : len(ids)] = ids
        weights = np.asarray(_all_attention(self.model, jnp.asarray(buffer)), np.float64)
        self.all_weights = weights[:, :, : len(ids), : len(ids)]
        self.tokens = [self.tokenizer.decode([int(i)]) for i in ids]

    def _render(self) -> None:
        if self.all_weights is None:
            self.weights, self.profile = None, {}
            self.image.value = b""
            self.summary.value = f"<i>{html.escape(self._error or '')}</i>"
            return
        from attnlab.attention import mean_weight_at_offset
        from attnlab.viz import char_labels, plot_attention

        layer, head = self.layer.value, self.head.value
        self.weights = w = self.all_weights[layer, head]
        T = len(self.tokens)
        back = np.maximum(np.arange(T)[:, None] - np.arange(T)[None, :], 0)  # t - s
        self.profile = {
            "itself": float(mean_weight_at_offset(w, 0)),
            "previous": float(mean_weight_at_offset(w, 1)) if T > 1 else float("nan"),
            "distance": float((w * back).sum(axis=-1).mean()),
        }
        # "character" for a character-level tokenizer (notebook 05), "token" otherwise (GPT-2)
        unit = "character" if all(len(t) == 1 for t in self.tokens) else "token"
        previous = (f"on the previous one {self.profile['previous']:.0%}" if T > 1
                    else f"no previous {unit} to weigh (type more text)")
        cut = (f" (your text is longer than the context window: these are its last {T} "
               f"{unit}s)" if self._cut else "")
        self.summary.value = (
            f"<i>layer {layer}, head {head}: average weight on the {unit} itself "
            f"{self.profile['itself']:.0%}, {previous}; "
            f"it looks {self.profile['distance']:.1f} {unit}s back on average{cut}</i>"
        )
        from matplotlib.figure import Figure

        side = 0.3 * T + 2
        fig = Figure(figsize=(side + 1, side))
        labels = char_labels(self.tokens)
        plot_attention(w, labels, labels, ax=fig.subplots(),
                       title=f"layer {layer}, head {head}")
        self.image.value = _png(fig)


def attention_head_explorer(
    model, tokenizer, *, text: str = "The value of x is 1.", layer: int = 0, head: int = 0
) -> AttentionHeadExplorer:
    """A layer/head/text picker showing one head's attention weights as a heatmap.

    Args:
      model: a :class:`attnlab.gpt.GPT`.
      tokenizer: its tokenizer (``encode``/``decode``), e.g. a ``CharTokenizer``.
      text: the starting text; text longer than the context window keeps its last
        ``context_length`` characters.
      layer, head: the starting choice, ``0 <= layer < n_layers``, ``0 <= head < n_heads``.

    Returns:
      an :class:`AttentionHeadExplorer` (an ``ipywidgets.VBox``).

    Raises:
      ValueError: if ``layer`` or ``head`` is out of range.
    """
    c = model.config
    for name, value, n in (("layer", layer, c.n_layers), ("head", head, c.n_heads)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < n:
            raise ValueError(f"{name} must be an integer in [0, {n}); got {value!r}.")
    return AttentionHeadExplorer(model, tokenizer, text, layer, head)


class PositionalEncodingExplorer(widgets.VBox):
    """Sliders for position p, dimension j and ``d_model``; shows the sinusoidal table there.

    Left panel: dimension j as a curve over all positions, with p marked. Right panel: the
    whole vector of position p, dimension j highlighted.

    Attributes:
      position, dimension, d_model: ``IntSlider`` controls; set ``.value`` to move them
        (``dimension`` is kept below ``d_model``).
      image: ``Image`` with the two panels (PNG).
      readout: ``HTML`` with the formula, its value and the wavelength.
      encoding: the current ``(max_position, d_model)`` table.
      value: ``encoding[p, j]``.
      wavelength: positions per full cycle of dimension j, ``2π · base^(2i/d_model)``,
        ``i = j // 2``.
    """

    def __init__(self, max_position: int, position: int, dimension: int, d_model: int,
                 base: float) -> None:
        self.max_position, self.base = max_position, base
        self.position = widgets.IntSlider(value=position, min=0, max=max_position - 1,
                                          description="position p")
        self.d_model = widgets.IntSlider(value=d_model, min=2, max=256, step=2,
                                         description="d_model")
        self.dimension = widgets.IntSlider(value=dimension, min=0, max=d_model - 1,
                                           description="dimension j")
        self.image = widgets.Image(format="png")
        self.readout = widgets.HTML(value="")
        for control in (self.position, self.dimension, self.d_model):
            control.observe(self._on_change, names="value")
        super().__init__(children=[self.position, self.dimension, self.d_model, self.readout,
                                   self.image])
        self._render()

    def _on_change(self, change: dict) -> None:
        if change["owner"] is self.d_model:
            # Lowering max also lowers the value if needed (and fires its own render).
            self.dimension.max = self.d_model.value - 1
        self._render()

    def _render(self) -> None:
        from matplotlib.figure import Figure

        from attnlab.positional import sinusoidal_encoding

        p, j, d = self.position.value, self.dimension.value, self.d_model.value
        j = min(j, d - 1)
        self.encoding = np.asarray(sinusoidal_encoding(self.max_position, d, self.base))
        self.value = float(self.encoding[p, j])
        i = j // 2
        self.wavelength = 2 * np.pi * self.base ** (2 * i / d)
        kind = "sin" if j % 2 == 0 else "cos"
        self.readout.value = (
            f"PE[{p}, {j}] = {kind}({p} / {self.base:g}<sup>{2 * i}/{d}</sup>) = "
            f"<b>{self.value:+.3f}</b> · dimension {j} is the {kind} of pair i = {i}; it "
            f"repeats every {self.wavelength:,.1f} positions"
        )
        fig = Figure(figsize=(10, 3.2))
        left, right = fig.subplots(1, 2)
        left.plot(self.encoding[:, j], color="tab:blue")
        left.plot([p], [self.value], "o", color="tab:red")
        left.set_xlabel("position p")
        left.set_ylabel(f"PE[p, {j}]")
        left.set_ylim(-1.1, 1.1)
        left.set_title(f"dimension {j} over positions")
        colors = ["tab:red" if k == j else "tab:gray" for k in range(d)]
        right.bar(range(d), self.encoding[p], color=colors, width=1.0)
        right.set_xlabel("dimension j")
        right.set_ylabel(f"PE[{p}, j]")
        right.set_ylim(-1.1, 1.1)
        right.set_title(f"the vector of position {p} (d_model = {d})")
        fig.tight_layout()
        self.image.value = _png(fig)


def positional_encoding_explorer(
    *, max_position: int = 200, position: int = 10, dimension: int = 0, d_model: int = 64,
    base: float = 10000.0,
) -> PositionalEncodingExplorer:
    """Sliders over the sinusoidal position table: position, dimension and ``d_model``.

    Args:
      max_position: number of positions drawn (≥ 2).
      position: starting position, in ``[0, max_position)``.
      dimension: starting dimension, in ``[0, d_model)``.
      d_model: starting width, even, in ``[2, 256]``.
      base: the table's wavelength scale (10000 in the paper).

    Returns:
      a :class:`PositionalEncodingExplorer` (an ``ipywidgets.VBox``).

    Raises:
      ValueError: if an argument is out of range.
    """
    if not isinstance(max_position, int) or max_position < 2:
        raise ValueError(f"max_position must be an integer >= 2; got {max_position!r}.")
    if not isinstance(d_model, int) or d_model % 2 or not 2 <= d_model <= 256:
        raise ValueError(f"d_model must be an even integer in [2, 256]; got {d_model!r}.")
    if not isinstance(position, int) or not 0 <= position < max_position:
        raise ValueError(f"position must be an integer in [0, {max_position}); got {position!r}.")
    if not isinstance(dimension, int) or not 0 <= dimension < d_model:
        raise ValueError(f"dimension must be an integer in [0, {d_model}); got {dimension!r}.")
    if not base > 0:
        raise ValueError(f"base must be > 0; got {base!r}.")
    return PositionalEncodingExplorer(max_position, position, dimension, d_model, float(base))


# --- the sampling playground (notebook 08) ------------------------------------------------------

__all__ += ["SamplingPlayground", "sampling_playground"]


@jax.jit
def _filtered_view(logits: jax.Array, temperature, top_k, top_p):
    """For ``(V,)`` logits: probabilities after temperature, the kept mask, the renormalised
    probabilities. The settings are traced: moving a slider never recompiles."""
    from attnlab.sampling import apply_temperature, top_k_filter, top_p_filter

    logits = logits - logits.max()  # changes no probability; no overflow at tiny temperatures
    scaled = apply_temperature(logits, temperature)
    filtered = top_p_filter(top_k_filter(scaled, top_k), top_p)  # the order generate uses
    return jax.nn.softmax(scaled), jnp.isfinite(filtered), jax.nn.softmax(filtered)


def _unescape(stop: str) -> str:
    """The stop box takes ``\\n`` and ``\\t`` for a newline and a tab (a Text box cannot hold
    a newline)."""
    return stop.replace("\\n", "\n").replace("\\t", "\t")


class SamplingPlayground(widgets.VBox):
    """Sliders for temperature, top-k and top-p over a live bar chart of the next token.

    The chart (drawn by :func:`attnlab.viz.plot_next_token_distribution`) shows the model's
    distribution of the token after the prompt, after temperature; kept tokens blue, filtered
    ones grey, with the kept probability mass. "generate" writes ``n samples`` continuations
    side by side, each with its own random draws, from the seed in the seed box.

    A slider move reruns only the filters (one compiled function with traced settings) and
    redraws the chart in place; editing the prompt also reruns the model (one compiled shape
    for every prompt length). Nothing raises: an empty prompt, unknown characters or a failed
    generation show their message in ``info`` (and ``error``) instead.

    Attributes:
      prompt: ``Textarea`` with the context.
      temperature, top_k, top_p: the sliders (``top_k = 0`` and ``top_p = 1`` switch that
        filter off; ``temperature = 0`` is greedy decoding).
      max_new_tokens, n_samples, seed, stop: generation settings; ``stop`` is an optional
        stop string (type ``\\n`` for a newline): a sample ends right after the stop string
        first appears in its new text (see :func:`attnlab.sampling.generate_text`).
      button: the "generate" ``Button`` (``button.click()`` generates, as a click does).
      chart: ``Image`` holding the PNG bar chart (empty while there is an error).
      info: ``HTML`` line under the chart: kept tokens and mass, or the error text.
      output: ``HTML`` with the generated samples.
      logits: ``(V,)`` logits for the current prompt, or ``None``.
      probs, kept, final_probs: ``(V,)`` probabilities after temperature, the kept mask and the
        renormalised distribution that is sampled from; ``None`` while there is an error.
      kept_mass: probability mass of the kept tokens (after temperature), or ``None``.
      error: the text of the current error, or ``None``.
      samples: the generated texts (prompt + continuation, ending with the stop string where
        it appeared); ``stopped``: for each, whether the stop string ended it.
      last_update_ms: wall time of the last chart update (filters + drawing), in ms.
    """

    def __init__(self, model, tokenizer, *, text: str, temperature: float, top_k: int,
                 top_p: float, max_new_tokens: int, n_samples: int, seed: int, stop: str,
                 top: int) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.model, self.tokenizer, self.top = model, tokenizer, top
        V = model.config.vocab_size
        self._labels = [tokenizer.decode([i]) for i in range(V)]
        self.logits = self.probs = self.kept = self.final_probs = None
        self.kept_mass: float | None = None
        self.error: str | None = None
        self.samples: list[str] = []
        self.stopped: list[bool] = []
        self.last_update_ms = float("nan")
        self._seen = ""
        # One figure for the widget's life, drawn without pyplot: nothing to close, no leak.
        self._figure = Figure(figsize=(9.0, 3.4), dpi=80)
        FigureCanvasAgg(self._figure)
        self._ax = self._figure.add_subplot()
        self._background, self._background_ylim = None, None  # see _png

        wide = widgets.Layout(width="95%")
        style = {"description_width": "initial"}
        self.prompt = widgets.Textarea(value=text, description="prompt", continuous_update=True,
                                       layout=widgets.Layout(width="95%", height="4em"))
        self.temperature = widgets.FloatSlider(
            value=temperature, min=0.0, max=3.0, step=0.05, description="temperature",
            readout_format=".2f", continuous_update=True, style=style)
        self.top_k = widgets.IntSlider(value=top_k, min=0, max=V, step=1,
                                       description="top-k (0 = off)", continuous_update=True,
                                       style=style)
        self.top_p = widgets.FloatSlider(value=top_p, min=0.01, max=1.0, step=0.01,
                                         description="top-p (1 = off)", readout_format=".2f",
                                         continuous_update=True, style=style)
        self.chart = widgets.Image(format="png")
        self.info = widgets.HTML(value="")
        self.max_new_tokens = widgets.IntSlider(value=max_new_tokens, min=1, max=400,
                                                description="max new tokens", style=style)
        self.n_samples = widgets.IntSlider(value=n_samples, min=1, max=4,
                                           description="samples", style=style)
        self.seed = widgets.IntText(value=seed, description="seed", style=style,
                                    layout=widgets.Layout(width="160px"))
        self.stop = widgets.Text(value=stop, description="stop string", style=style,
                                 placeholder=r"optional, e.g. \n")
        self.button = widgets.Button(description="generate", button_style="primary")
        self.output = widgets.HTML(value="")

        self.prompt.observe(self._on_prompt, names="value")
        for slider in (self.temperature, self.top_k, self.top_p):
            slider.observe(self._on_slider, names="value")
        self.button.on_click(self._on_click)
        super().__init__(children=[
            self.prompt,
            widgets.HBox([self.temperature, self.top_k, self.top_p]),
            self.chart,
            self.info,
            widgets.HBox([self.max_new_tokens, self.n_samples, self.seed]),
            widgets.HBox([self.stop, self.button]),
            self.output,
        ], layout=wide)
        self._on_prompt({"new": text})

    # --- the chart ----------------------------------------------------------------------------

    def _fail(self, error: Exception) -> None:
        self.logits = self.probs = self.kept = self.final_probs = self.kept_mass = None
        message = str(error) if isinstance(error, ValueError) else (
            f"unexpected {type(error).__name__}: {error}")
        self.error = message
        self.chart.value = b""
        self.info.value = f'<span style="color: #b3261e">{html.escape(message)}</span>'

    def _on_prompt(self, change: dict) -> None:
        text = change["new"]
        try:
            if not text:
                raise ValueError("The prompt is empty: type at least one character; the model "
                                 "needs a context to predict the next token.")
            ids = _encode(self.tokenizer, text)
            C = self.model.config.context_length
            self.logits = _last_logits(self.model, ids)
            self._seen = (f" · the model sees only the last {C} of your {len(ids)} characters "
                          "(its context window)" if len(ids) > C else "")
        except Exception as error:  # shown in the widget, never raised into the notebook
            self._fail(error)
            return
        self._redraw()

    def _on_slider(self, change: dict) -> None:
        if self.logits is not None:
            self._redraw()

    def _redraw(self) -> None:
        import time

        from attnlab.viz import plot_next_token_distribution

        start = time.perf_counter()
        try:
            probs, kept, final = _filtered_view(
                jnp.asarray(self.logits), jnp.float32(self.temperature.value),
                jnp.int32(self.top_k.value), jnp.float32(self.top_p.value))
            probs, kept, final = (np.asarray(a) for a in (probs, kept, final))
            self.probs, self.kept, self.final_probs = probs, kept, final
            self.kept_mass = float(probs[kept].sum())
            plot_next_token_distribution(probs, self._labels, kept, ax=self._ax, top=self.top,
                                         title="next token after the prompt")
            self.chart.value = self._png()
        except Exception as error:
            self._fail(error)
            return
        self.error = None
        self.last_update_ms = 1e3 * (time.perf_counter() - start)
        best = int(np.argmax(final))
        self.info.value = (
            f"kept {int(kept.sum())} of {kept.size} tokens ({self.kept_mass:.1%} of the mass); "
            f"most likely after renormalising: <code>{html.escape(_show_char(self._labels[best]))}"
            f"</code> at {final[best]:.1%}{self._seen}")

    def _png(self) -> bytes:
        """The chart as PNG bytes. Only what changes with the sliders is drawn again (bars,
        ticks, token labels, the summary) over a saved picture of the rest (frame, title,
        legend, y-axis); the whole figure is drawn when the y-axis range changes."""
        import io

        from PIL import Image

        canvas, ax = self._figure.canvas, self._ax
        parts = ax._attnlab_next_token
        changing = [*parts["bars"], parts["ticks"], parts["summary"], ax.xaxis]
        if self._background is None or ax.get_ylim() != self._background_ylim:
            for artist in changing:
                artist.set_animated(True)  # left out of canvas.draw(): not in the background
            canvas.draw()
            self._background = canvas.copy_from_bbox(self._figure.bbox)
            self._background_ylim = ax.get_ylim()
        else:
            canvas.restore_region(self._background)
        for artist in changing:
            self._figure.draw_artist(artist)
        image = Image.frombuffer("RGBA", canvas.get_width_height(), canvas.buffer_rgba(),
                                 "raw", "RGBA", 0, 1)
        buffer = io.BytesIO()
        image.save(buffer, format="png", compress_level=1)  # fast; the chart is small anyway
        return buffer.getvalue()

    # --- generation ---------------------------------------------------------------------------

    def _on_click(self, _button=None) -> None:
        self.generate()

    def generate(self) -> None:
        """Generate ``n_samples`` continuations with the current settings (what a click does)."""
        import time
        import warnings

        from attnlab.sampling import generate_text

        text, n, max_new = self.prompt.value, self.n_samples.value, self.max_new_tokens.value
        stop = _unescape(self.stop.value) or None
        start = time.perf_counter()
        try:
            if not text:
                raise ValueError("The prompt is empty: type at least one character to continue.")
            ids = _encode(self.tokenizer, text)
            if stop is not None:
                try:
                    _encode(self.tokenizer, stop)
                except ValueError as error:
                    raise ValueError(f"stop string {stop!r}: {error}") from None
            with warnings.catch_warnings():  # a prompt longer than the context is cropped
                warnings.simplefilter("ignore")
                texts = generate_text(
                    self.model, self.tokenizer, [text] * n, max_new,
                    temperature=self.temperature.value, top_k=self.top_k.value,
                    top_p=self.top_p.value, key=jax.random.key(int(self.seed.value) % 2**32),
                    stop=stop)
        except Exception as error:
            self.samples, self.stopped = [], []
            message = str(error) if isinstance(error, ValueError) else (
                f"unexpected {type(error).__name__}: {error}")
            self.error = message
            self.output.value = f'<span style="color: #b3261e">{html.escape(message)}</span>'
            return
        self.error = None
        self.samples, self.stopped, boxes = texts, [], []
        for i, sample in enumerate(texts, start=1):
            continuation = sample[len(text):]
            stopped = stop is not None and continuation.endswith(stop)
            self.stopped.append(stopped)
            end = (f"stopped at the stop string after {len(continuation)} characters" if stopped
                   else f"max new tokens reached ({max_new})")
            boxes.append(
                '<div style="flex: 1; min-width: 200px; border: 1px solid #ccc; padding: 4px;">'
                f"<div><i>sample {i}</i></div>"
                f'<pre style="white-space: pre-wrap; margin: 2px 0;"><b>{html.escape(text)}</b>'
                f"{html.escape(continuation)}</pre><div><i>{end}</i></div></div>")
        seconds = time.perf_counter() - start
        C = self.model.config.context_length
        cropped = (f" · the model saw only the last {C} of the {len(ids)} prompt characters"
                   if len(ids) > C else "")
        top_k = self.top_k.value or "off"
        top_p = self.top_p.value if self.top_p.value < 1 else "off"
        self.output.value = (
            f"<div><i>{n} sample{'s' if n > 1 else ''} · seed {self.seed.value} · temperature "
            f"{self.temperature.value:.2f} · top-k {top_k} · top-p {top_p} · {seconds:.1f} s "
            f"(a new prompt length or max tokens compiles first){cropped}</i></div>"
            f'<div style="display: flex; gap: 8px; flex-wrap: wrap;">{"".join(boxes)}</div>')


def sampling_playground(model, tokenizer, *, text: str = "The value of ",
                        temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                        max_new_tokens: int = 100, n_samples: int = 3, seed: int = 0,
                        stop: str = "", top: int = 24) -> SamplingPlayground:
    """A prompt, sliders for temperature, top-k and top-p, a live next-token bar chart and a
    "generate" button: how the sampling settings change the next token and the text.

    Args:
      model: a trained :class:`attnlab.gpt.GPT`.
      tokenizer: its tokenizer (``encode``/``decode``), e.g. a ``CharTokenizer``.
      text: the starting prompt.
      temperature: in ``[0, 3]``; top_k: in ``[0, V]`` (0 = off); top_p: in ``[0.01, 1]``
        (1 = off): the sliders' starting positions.
      max_new_tokens: in ``[1, 400]``; n_samples: in ``[1, 4]``; seed: any int; stop: a stop
        string (``\\n`` = newline) or ``""``: the generation settings.
      top: how many bars the chart shows (the most likely tokens).

    Returns:
      a :class:`SamplingPlayground` (an ``ipywidgets.VBox``); its chart is drawn already.

    Raises:
      ValueError: if a starting value is outside its slider's range or ``top < 1``.
    """
    V = model.config.vocab_size
    ranges = {"temperature": (temperature, 0.0, 3.0), "top_k": (top_k, 0, V),
              "top_p": (top_p, 0.01, 1.0), "max_new_tokens": (max_new_tokens, 1, 400),
              "n_samples": (n_samples, 1, 4), "top": (top, 1, V)}
    for name, (value, low, high) in ranges.items():
        if isinstance(value, bool) or not isinstance(value, int | float | np.number) or not (
                low <= value <= high):
            raise ValueError(f"{name} must be in [{low}, {high}]; got {value!r}.")
    return SamplingPlayground(model, tokenizer, text=text, temperature=temperature,
                              top_k=int(top_k), top_p=top_p, max_new_tokens=int(max_new_tokens),
                              n_samples=int(n_samples), seed=int(seed), stop=stop, top=int(top))


# --- a pretrained model's attention heads (notebook 10) ----------------------------------------

__all__ += ["attention_weights"]


def attention_weights(model, tokenizer, text: str) -> tuple[np.ndarray, list[str]]:
    """Every layer's and head's attention weights on ``text``, with its tokens as labels.

    Args:
      model: a :class:`attnlab.gpt.GPT`.
      tokenizer: its tokenizer (``encode``, ``decode``).
      text: 1 to ``context_length`` tokens of text.

    Returns:
      ``(weights, labels)``: weights ``(n_layers, n_heads, T, T)`` float32 NumPy, row t the
      weights query t gives to keys 0..t; labels the ``T`` tokens' texts.

    Raises:
      ValueError: if ``text`` is empty or longer than the context window.
    """
    if not text:
        raise ValueError("text is empty; type at least one token.")
    ids = np.asarray(tokenizer.encode(text), dtype=np.int32)
    C = model.config.context_length
    if len(ids) > C:
        raise ValueError(f"text has {len(ids)} tokens; the context window holds {C}.")
    _, weights = model(jnp.asarray(ids)[None], return_attention=True)
    labels = [tokenizer.decode([int(i)]) for i in ids]
    return np.stack([np.asarray(w[0], np.float32) for w in weights]), labels


# --- a sentence classifier, live (notebook 09) -----------------------------------------------

__all__ += ["SentimentPredictor", "sentiment_predictor"]


class SentimentPredictor(widgets.VBox):
    """A text box; as you type, a sentence classifier's label and probabilities appear.

    Attributes:
      text: the ``Text`` box; set its ``.value`` to classify another sentence.
      output: ``HTML`` with the predicted label and one bar per class.
      label: the predicted class name, or ``None`` when the text cannot be classified.
      probability: the predicted class's probability (float), or ``None``.
      probs: ``{class name: probability}`` for the current text (empty when it cannot be read).
    """

    def __init__(self, classifier, tokenizer, classes, text: str) -> None:
        self.classifier, self.tokenizer, self.classes = classifier, tokenizer, tuple(classes)
        self.label: str | None = None
        self.probability: float | None = None
        self.probs: dict[str, float] = {}
        self.text = widgets.Text(value=text, description="sentence", continuous_update=True,
                                 layout=widgets.Layout(width="90%"))
        self.output = widgets.HTML(value="")
        self.text.observe(self._on_change, names="value")
        super().__init__(children=[self.text, self.output])
        self._render(text)

    def _on_change(self, change: dict) -> None:
        self._render(change["new"])

    def _render(self, text: str) -> None:
        from attnlab.finetune import predict_proba

        try:
            if not text:
                raise ValueError("Type a sentence in the box.")
            probs = predict_proba(self.classifier, self.tokenizer, [text])[0]
        except ValueError as error:
            self.label = self.probability = None
            self.probs = {}
            self.output.value = f"<i>{html.escape(str(error))}</i>"
            return
        best = int(np.argmax(probs))
        self.label, self.probability = self.classes[best], float(probs[best])
        self.probs = {c: float(p) for c, p in zip(self.classes, probs, strict=True)}
        colours = {"negative": "#d62728", "positive": "#2ca02c"}
        rows = "".join(
            f'<tr><td style="text-align: right; padding-right: 8px;">{html.escape(c)}</td>'
            f'<td style="width: 320px;"><div style="background: {colours.get(c, "#1f77b4")}; '
            f'height: 14px; width: {max(p * 100, 0.5):.1f}%;"></div></td>'
            f'<td style="padding-left: 8px;">{p:6.1%}</td></tr>'
            for c, p in self.probs.items())
        self.output.value = (f"<div><b>{html.escape(self.label)}</b> "
                             f"({self.probability:.1%})</div><table>{rows}</table>")


def sentiment_predictor(classifier, tokenizer, classes=("negative", "positive"), *,
                        text: str = "The soup was lovely.") -> SentimentPredictor:
    """Type a sentence and see the classifier's predicted label and its probability.

    Args:
      classifier: a trained :class:`attnlab.finetune.SequenceClassifier`.
      tokenizer: the tokenizer of its body.
      classes: the class names, in label order (as many as the classifier has).
      text: the starting sentence.

    Returns:
      a :class:`SentimentPredictor` (an ``ipywidgets.VBox``).

    Raises:
      ValueError: if ``classes`` does not have one name per class.
    """
    if len(classes) != classifier.n_classes:
        raise ValueError(f"classes must name the {classifier.n_classes} classes; got {classes!r}.")
    return SentimentPredictor(classifier, tokenizer, classes, text)


# --- notebooks 02 and 03: translations by input length, and attention alignments ---------------

__all__ += ["AlignmentExplorer", "LengthExplorer", "alignment_explorer", "examples_at_length",
            "length_explorer"]


def examples_at_length(sources, targets, predictions, length: int, *, n_examples: int = 6):
    """The test pairs whose source has exactly ``length`` characters, and each model's answers.

    Args:
      sources, targets: N source texts and their correct translations.
      predictions: ``{model name: N predicted texts}``.
      length: the source length to show (characters).
      n_examples: how many pairs to list (the first ones of that length).

    Returns:
      ``{"count": n, "accuracy": {name: fraction of the n pairs exactly right},
      "rows": [(source, target, {name: (prediction, correct)}), ...]}`` with at most
      ``n_examples`` rows. With n = 0 the accuracies are NaN and there are no rows.

    Raises:
      ValueError: if the lists differ in length or ``predictions`` is empty.
    """
    sources, targets = list(sources), list(targets)
    if not predictions:
        raise ValueError("predictions is empty; pass {model name: predicted texts}.")
    for name, predicted in predictions.items():
        if len(predicted) != len(sources) or len(targets) != len(sources):
            raise ValueError(f"sources, targets and predictions[{name!r}] must have the same "
                             f"length; got {len(sources)}, {len(targets)}, {len(predicted)}.")
    picked = [i for i, s in enumerate(sources) if len(s) == length]
    accuracy = {
        name: (float(np.mean([predicted[i] == targets[i] for i in picked])) if picked
               else float("nan"))
        for name, predicted in predictions.items()
    }
    rows = [(sources[i], targets[i],
             {name: (predicted[i], predicted[i] == targets[i])
              for name, predicted in predictions.items()})
            for i in picked[:n_examples]]
    return {"count": len(picked), "accuracy": accuracy, "rows": rows}


class LengthExplorer(widgets.VBox):
    """A slider over source lengths; shows each model's translations and accuracy at that length.

    Attributes:
      slider: ``SelectionSlider`` over the source lengths present in the data; set ``.value``.
      output: ``HTML`` with the accuracy line and a table of examples.
      state: the current :func:`examples_at_length` result.
    """

    def __init__(self, sources, targets, predictions, length: int, n_examples: int) -> None:
        self.sources, self.targets = list(sources), list(targets)
        self.predictions = {name: list(p) for name, p in predictions.items()}
        self.n_examples = n_examples
        lengths = sorted({len(s) for s in self.sources})
        self.slider = widgets.SelectionSlider(options=lengths, value=length,
                                              description="input length",
                                              style={"description_width": "initial"},
                                              layout=widgets.Layout(width="90%"))
        self.output = widgets.HTML(value="")
        self.slider.observe(self._on_change, names="value")
        super().__init__(children=[self.slider, self.output])
        self._render()

    def _on_change(self, change: dict) -> None:
        self._render()

    def _render(self) -> None:
        length = self.slider.value
        self.state = examples_at_length(self.sources, self.targets, self.predictions, length,
                                        n_examples=self.n_examples)
        summary = "; ".join(
            f"<b>{html.escape(name)}</b>: {acc:.0%} exactly right"
            for name, acc in self.state["accuracy"].items())
        cell = 'style="text-align: left; padding: 2px 10px; font-family: monospace;"'
        head = "".join(f"<th {cell}>{html.escape(name)}</th>" for name in self.predictions)
        rows = []
        for source, target, answers in self.state["rows"]:
            marks = "".join(
                f'<td {cell}><span style="color: {"#137333" if ok else "#b3261e"};">'
                f'{"✔" if ok else "✘"}</span> {html.escape(pred)}</td>'
                for pred, ok in answers.values())
            rows.append(f"<tr><td {cell}>{html.escape(source)}</td>"
                        f"<td {cell}>{html.escape(target)}</td>{marks}</tr>")
        self.output.value = (
            f"<div>{self.state['count']} test input{'s have' if self.state['count'] != 1 else ' has'} "
            f"{length} characters. {summary}</div>"
            f"<table><tr><th {cell}>input</th><th {cell}>correct</th>{head}</tr>"
            f"{''.join(rows)}</table>")


def length_explorer(sources, targets, predictions, *, length: int | None = None,
                    n_examples: int = 6) -> LengthExplorer:
    """Slide through input lengths and see how the models translate inputs of that length.

    Args:
      sources, targets: the test inputs and their correct outputs (N texts each).
      predictions: ``{model name: N predicted texts}``, e.g. from
        :func:`attnlab.rnn.translate_texts`.
      length: the starting length (default: the longest).
      n_examples: rows shown per length.

    Returns:
      a :class:`LengthExplorer` (an ``ipywidgets.VBox``).

    Raises:
      ValueError: if the lists do not match, are empty, or ``length`` is not a length of
        one of the sources.
    """
    sources = list(sources)
    if not sources:
        raise ValueError("sources is empty; pass at least one test input.")
    examples_at_length(sources, targets, predictions, 0)  # checks the lengths of the lists
    lengths = {len(s) for s in sources}
    length = max(lengths) if length is None else length
    if length not in lengths:
        raise ValueError(f"length must be the length of one of the sources "
                         f"({min(lengths)} to {max(lengths)}); got {length!r}.")
    return LengthExplorer(sources, targets, predictions, length, n_examples)


def _alignment_table(weights: np.ndarray, source: str, output: str) -> str:
    """Attention weights as an HTML grid: rows = output characters, columns = source ones."""
    cell = "width: 16px; height: 16px; border: 1px solid #eee; text-align: center;"
    head = "".join(
        f'<th style="font-family: monospace; font-weight: normal;">'
        f"{html.escape(_show_char(c)[0] if c == ' ' else c)}</th>" for c in source)
    rows = []
    for out_char, row in zip(output, weights, strict=True):
        cells = "".join(
            f'<td style="{cell} background: rgba(31, 119, 180, {w:.2f});" '
            f'title="{w:.2f}"></td>' for w in row)
        rows.append(f'<tr><th style="font-family: monospace; padding-right: 6px;">'
                    f"{html.escape(out_char)}</th>{cells}</tr>")
    return (f'<table style="border-collapse: collapse;"><tr><th></th>{head}</tr>'
            f"{''.join(rows)}</table>")


class AlignmentExplorer(widgets.VBox):
    """Pick a test date or type one; see the translation and where each output step looked.

    Attributes:
      example: ``Dropdown`` of example inputs; choosing one copies it into ``text``.
      text: ``Text`` with the date to translate; set ``.value`` to translate another.
      output: ``HTML`` with the translation and the attention grid (rows: output characters,
        columns: input characters; darker = more weight).
      prediction: the current translation (``""`` when the text cannot be translated).
      weights: the current ``(T, len(text))`` attention weights (``None`` when not translated).
      message: ``""``, or why the text cannot be translated.
    """

    def __init__(self, model, examples, text: str, max_len: int) -> None:
        self.model, self.max_len = model, max_len
        self.example = widgets.Dropdown(options=list(examples), value=None,
                                        description="example",
                                        layout=widgets.Layout(width="60%"))
        self.text = widgets.Text(value=text, description="date",
                                 layout=widgets.Layout(width="60%"))
        self.output = widgets.HTML(value="")
        self.example.observe(self._on_example, names="value")
        self.text.observe(self._on_change, names="value")
        super().__init__(children=[self.example, self.text, self.output])
        self._render()

    def _on_example(self, change: dict) -> None:
        if change["new"] is not None:
            self.text.value = change["new"]

    def _on_change(self, change: dict) -> None:
        self._render()

    def _render(self) -> None:
        from attnlab.rnn import translate_texts

        text = self.text.value
        try:
            (self.prediction,), (weights,) = translate_texts(self.model, [text],
                                                             max_len=self.max_len)
        except ValueError as error:
            self.prediction, self.weights, self.message = "", None, str(error)
            self.output.value = f"<i>{html.escape(self.message)}</i>"
            return
        self.weights, self.message = weights, ""
        self.output.value = (
            f"<div><code>{html.escape(text)}</code> → <b><code>"
            f"{html.escape(self.prediction)}</code></b></div>"
            f"<div>Each row is one output character; the shaded cells show how much attention "
            f"it paid to each input character when it was written (hover for the weight).</div>"
            f"{_alignment_table(weights, text, self.prediction)}")


def alignment_explorer(model, examples, *, text: str | None = None,
                       max_len: int = 64) -> AlignmentExplorer:
    """Translate a chosen or typed date with an attention model and show its alignment.

    Args:
      model: a trained :class:`attnlab.rnn.AttentionSeq2Seq` on the date task.
      examples: input texts offered in the drop-down.
      text: the date shown first (default: the first example).
      max_len: the longest input accepted (the training data's padded length).

    Returns:
      an :class:`AlignmentExplorer` (an ``ipywidgets.VBox``).

    Raises:
      ValueError: if ``examples`` is empty.
      TypeError: if ``model`` returns no attention weights (a plain ``Seq2Seq``).
    """
    from attnlab.rnn import AttentionSeq2Seq

    examples = list(examples)
    if not examples:
        raise ValueError("examples is empty; pass at least one input text.")
    if not isinstance(model, AttentionSeq2Seq):
        raise TypeError(f"model must be an AttentionSeq2Seq (it has attention weights to "
                        f"show); got {type(model).__name__}.")
    return AlignmentExplorer(model, examples, examples[0] if text is None else text, max_len)
