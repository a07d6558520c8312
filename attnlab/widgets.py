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
