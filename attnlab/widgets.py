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


_trace_count = 0  # grows once per compilation of _logits_at (tests check typing reuses it)


@nnx.jit
def _logits_at(model, tokens: jax.Array, index: jax.Array) -> jax.Array:
    """Logits ``(V,)`` after position ``index`` of ``tokens`` ``(1, C)``; one compiled shape."""
    global _trace_count
    _trace_count += 1  # runs only while tracing
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


# --- attention heads and position tables (notebook 05) ----------------------------------------

__all__ += [
    "AttentionHeadExplorer",
    "PositionalEncodingExplorer",
    "attention_head_explorer",
    "positional_encoding_explorer",
]


def _png(fig) -> bytes:
    """A matplotlib Figure as PNG bytes (for an ``ipywidgets.Image``)."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return buffer.getvalue()


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
            ids = np.asarray(self.tokenizer.encode(text), np.int32)[-C:]
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
        self.summary.value = (
            f"<i>layer {layer}, head {head}: average weight on the character itself "
            f"{self.profile['itself']:.0%}, on the previous one {self.profile['previous']:.0%}; "
            f"it looks {self.profile['distance']:.1f} characters back on average</i>"
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
