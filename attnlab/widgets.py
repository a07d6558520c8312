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

__all__ = [
    "NextTokenExplorer",
    "SampleTimeline",
    "next_token_explorer",
    "next_token_probabilities",
    "sample_timeline",
]

# Characters that are invisible or break the layout when shown bare.
_VISIBLE = {" ": "␣ (space)", "\n": "⏎ (newline)", "\t": "⇥ (tab)"}


def _show_char(token: str) -> str:
    return _VISIBLE.get(token, token)


# --- text the model wrote during training ------------------------------------------------------


class SampleTimeline(widgets.VBox):
    """A slider over training steps that shows the text the model wrote at the chosen step.

    Attributes:
      slider: ``SelectionSlider`` whose options are the steps (ints, ascending); set its
        ``.value`` to a step to show that step's sample.
      output: ``HTML`` holding the step, its validation loss (if known) and the sample.
      samples: the ``{step: text}`` mapping shown, sorted by step.
    """

    def __init__(
        self,
        samples: Mapping[int, str],
        val_loss: Mapping[int, float] | None = None,
        prompt: str | None = None,
    ) -> None:
        self.samples = dict(sorted(samples.items()))
        self.val_loss = dict(val_loss or {})
        self.prompt = prompt
        steps = list(self.samples)
        self.slider = widgets.SelectionSlider(
            options=steps,
            value=steps[-1],
            description="step",
            continuous_update=True,
            layout=widgets.Layout(width="90%"),
        )
        self.output = widgets.HTML(value="")
        self.slider.observe(self._on_change, names="value")
        super().__init__(children=[self.slider, self.output])
        self._render(steps[-1])

    def _on_change(self, change: dict) -> None:
        self._render(change["new"])

    def _render(self, step: int) -> None:
        text = self.samples[step]
        loss = self.val_loss.get(step)
        heading = f"step {step}" + (
            f" · validation loss {loss:.3f} nats/char" if loss is not None else ""
        )
        if self.prompt and text.startswith(self.prompt):  # the prompt in bold, the rest as written
            body = f"<b>{html.escape(self.prompt)}</b>{html.escape(text[len(self.prompt) :])}"
        else:
            body = html.escape(text)
        self.output.value = (
            f"<div><i>{heading}</i></div>"
            f'<pre style="white-space: pre-wrap; margin: 4px 0;">{body}</pre>'
        )


def sample_timeline(
    samples: Mapping[int, str],
    *,
    val_loss: Mapping[int, float] | None = None,
    prompt: str | None = None,
) -> SampleTimeline:
    """Slider over training steps showing the sample the model wrote at each step.

    Args:
      samples: ``{step: text}``, e.g. filled by a ``train(..., callback=...)`` that generates a
        sample after each validation. At least one entry.
      val_loss: optional ``{step: validation loss in nats/char}`` shown above the sample.
      prompt: optional prompt that starts every sample; it is shown in bold.

    Returns:
      a :class:`SampleTimeline` (an ``ipywidgets.VBox``), starting at the last step.

    Raises:
      ValueError: if ``samples`` is empty.
      TypeError: if a step is not an int or a sample is not a str.
    """
    if not samples:
        raise ValueError("samples is empty; pass {step: text} with at least one entry.")
    for step, text in samples.items():
        if isinstance(step, bool) or not isinstance(step, int | np.integer):
            raise TypeError(f"samples keys must be int steps; got {step!r}.")
        if not isinstance(text, str):
            raise TypeError(f"samples[{step}] must be a str; got {type(text).__name__}.")
    return SampleTimeline({int(k): v for k, v in samples.items()}, val_loss, prompt)


# --- next-token probabilities for typed text ---------------------------------------------------


@nnx.jit
def _logits_at(model, tokens: jax.Array, index: jax.Array) -> jax.Array:
    """Logits ``(V,)`` after position ``index`` of ``tokens`` ``(1, C)``; one compiled shape."""
    logits = model(tokens)  # (1, C, V)
    return jax.lax.dynamic_index_in_dim(logits[0], index, axis=0, keepdims=False)


def next_token_probabilities(model, tokenizer, text: str) -> np.ndarray:
    """Probabilities ``(V,)`` the model gives to each token following ``text``.

    The ids are written into a buffer of ``context_length`` positions, padded on the right, and
    the logits are read at the last real position. The causal mask keeps the padding invisible
    to that position, so the result equals running the model on ``text`` alone, while every
    length shares one compiled shape (typing does not recompile). Text longer than the context
    window keeps its last ``context_length`` tokens.

    Args:
      model: a :class:`attnlab.gpt.GPT`.
      tokenizer: its tokenizer (``encode(str) -> (P,) ids``), e.g. a ``CharTokenizer``.
      text: at least one token's worth of text.

    Returns:
      ``(V,)`` float32 NumPy array, non-negative, summing to 1.

    Raises:
      ValueError: if ``text`` is empty or has characters the tokenizer does not know.
    """
    if not text:
        raise ValueError("text is empty; a GPT needs at least one token to predict the next.")
    C = model.config.context_length
    ids = np.asarray(tokenizer.encode(text), dtype=np.int32)[-C:]
    tokens = np.zeros((1, C), np.int32)
    tokens[0, : len(ids)] = ids
    logits = _logits_at(model, jnp.asarray(tokens), jnp.asarray(len(ids) - 1))
    return np.asarray(jax.nn.softmax(logits.astype(jnp.float32)))


class NextTokenExplorer(widgets.VBox):
    """A text box; as you type, the most likely next tokens appear as horizontal bars.

    Attributes:
      text: the ``Text`` box; set its ``.value`` to change the context.
      chart: ``HTML`` with one bar per likely token (or a message for empty/unknown text).
      top: the current ``[(token, probability), ...]``, most likely first; empty when the
        text cannot be scored.
      probs: the full ``(V,)`` probabilities for the current text, or ``None``.
    """

    def __init__(self, model, tokenizer, text: str, k: int) -> None:
        self.model, self.tokenizer, self.k = model, tokenizer, k
        self.top: list[tuple[str, float]] = []
        self.probs: np.ndarray | None = None
        self.text = widgets.Text(
            value=text,
            description="context",
            continuous_update=True,
            layout=widgets.Layout(width="90%"),
        )
        self.chart = widgets.HTML(value="")
        self.text.observe(self._on_change, names="value")
        super().__init__(children=[self.text, self.chart])
        self._render(text)

    def _on_change(self, change: dict) -> None:
        self._render(change["new"])

    def _render(self, text: str) -> None:
        try:
            probs = next_token_probabilities(self.model, self.tokenizer, text)
        except ValueError as error:
            self.probs, self.top = None, []
            self.chart.value = f"<i>{html.escape(str(error))}</i>"
            return
        order = np.argsort(-probs, kind="stable")[: self.k]
        self.probs = probs
        self.top = [(self.tokenizer.decode([int(i)]), float(probs[i])) for i in order]
        rows = []
        for token, p in self.top:
            rows.append(
                "<tr>"
                f'<td style="text-align: right; padding-right: 8px;"><code>'
                f"{html.escape(_show_char(token))}</code></td>"
                f'<td style="width: 320px;"><div style="background: #1f77b4; height: 14px; '
                f'width: {max(p * 100, 0.5):.1f}%;"></div></td>'
                f'<td style="padding-left: 8px;">{p:6.1%}</td>'
                "</tr>"
            )
        C = self.model.config.context_length
        seen = (f" (the model sees only the last {C} of your {len(text)} characters: its "
                "context window)" if len(text) > C else "")
        self.chart.value = (
            f"<div><i>the {len(self.top)} most likely next tokens{seen}</i></div>"
            f"<table>{''.join(rows)}</table>"
        )


def next_token_explorer(model, tokenizer, *, text: str = "The ", k: int = 10) -> NextTokenExplorer:
    """Type a context and see the model's ``k`` most likely next tokens as a bar chart.

    Args:
      model: a trained :class:`attnlab.gpt.GPT`.
      tokenizer: the tokenizer it was trained with.
      text: the starting context.
      k: how many tokens to show (>= 1).

    Returns:
      a :class:`NextTokenExplorer` (an ``ipywidgets.VBox``).

    Raises:
      ValueError: if ``k`` < 1.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an integer >= 1; got {k!r}.")
    return NextTokenExplorer(model, tokenizer, text, k)


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
      scores, allowed, weights, z: the current row, as returned by :func:`attention_row`.
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
            weight_cells.append(
                f'<td style="text-align: right; padding: 2px 8px; '
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
        "trained to predict the <b>next token</b>. The output is written one token at a time."
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
        "token."
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
        source = self.source.value.split()[:MAX_WORDS]
        target = self.target.value.split()[:MAX_WORDS]
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
        grids = "".join(_mask_table(*panel) for panel in self.panels)
        self.output.value = f'<div style="max-width: 60em; margin: 6px 0;">{about}</div>{grids}'


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
            f"<div>{self.state['count']} test inputs have {length} characters. {summary}</div>"
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
