"""Notebooks 05 and 10: one attention head's weights on a typed text as a heatmap, with a
layer and head picker and a line on where the head looks
(:func:`attention_head_explorer`); :func:`attention_weights` gives every head's weights
on a text (notebook 10).
"""

from __future__ import annotations

import html

import ipywidgets as widgets
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from attnlab.widgets._common import _png

__all__ = ["AttentionHeadExplorer", "attention_head_explorer", "attention_weights"]


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
