"""Notebooks 07 and 10: type a context and see the model's most likely next tokens as bars
(:func:`next_token_explorer`); :func:`next_token_probabilities` is the computation
behind it. Its compiled forward pass (one shape for every text length) also feeds
notebook 08's sampling playground.
"""

from __future__ import annotations

import html

import ipywidgets as widgets
import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from attnlab.widgets._common import _show_char

__all__ = ["NextTokenExplorer", "next_token_explorer", "next_token_probabilities"]


def _logits_at_impl(graphdef, state, tokens: jax.Array, index: jax.Array) -> jax.Array:
    """Logits ``(V,)`` after position ``index`` of ``tokens`` ``(1, C)``: one compiled shape.

    A plain ``jax.jit`` over ``nnx.split(model)`` rather than ``nnx.jit``: it writes nothing
    back into the model. (``nnx.jit`` returns the model's dropout RNG state as committed
    arrays, so the second call with a freshly loaded model compiles again: a second's pause
    at the first keystroke.)"""
    model = nnx.merge(graphdef, state)
    logits = model(tokens, deterministic=True)  # (1, C, V)
    return jax.lax.dynamic_index_in_dim(logits[0], index, axis=0, keepdims=False)


_logits_at = jax.jit(_logits_at_impl, static_argnums=0)


def _last_logits(model, ids: np.ndarray) -> np.ndarray:
    """Float32 logits ``(V,)`` after the last of ``ids`` ``(P,)`` (P >= 1), of which the model
    sees the last ``context_length``; the ids sit in a right-padded buffer of ``context_length``
    positions, so every length shares one compiled shape."""
    C = model.config.context_length
    ids = np.asarray(ids, dtype=np.int32)[-C:]
    tokens = np.zeros((1, C), np.int32)
    tokens[0, : len(ids)] = ids
    graphdef, state = nnx.split(model)  # the model as it is now (it may train on)
    logits = _logits_at(graphdef, state, jnp.asarray(tokens), jnp.asarray(len(ids) - 1, jnp.int32))
    return np.asarray(logits, dtype=np.float32)


def _encode(tokenizer, text: str) -> np.ndarray:
    """``tokenizer.encode(text)``; for a character tokenizer, unknown characters raise a
    ``ValueError`` that says only what a learner typing into a widget can do about them."""
    vocab = getattr(tokenizer, "vocab", None)
    if isinstance(vocab, str):  # CharTokenizer: one character per token
        unknown = sorted(set(text) - set(vocab))
        if unknown:
            raise ValueError(
                f"text contains {len(unknown)} character(s) not in the tokenizer's vocabulary: "
                f"{''.join(unknown)!r}. Remove them or replace them with characters the model "
                "was trained on.")
    return np.asarray(tokenizer.encode(text), dtype=np.int32)


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
    return np.asarray(jax.nn.softmax(_last_logits(model, _encode(tokenizer, text))))


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
        V = len(probs)
        which = (f"all {V} tokens of the vocabulary, most likely first (k={self.k} is more than "
                 f"the vocabulary's {V})" if self.k > V else
                 f"the {len(self.top)} most likely next tokens")
        self.chart.value = (
            f"<div><i>{which}{seen}</i></div>"
            f"<table>{''.join(rows)}</table>"
        )


def next_token_explorer(model, tokenizer, *, text: str = "The ", k: int = 10) -> NextTokenExplorer:
    """Type a context and see the model's ``k`` most likely next tokens as a bar chart.

    Args:
      model: a trained :class:`attnlab.gpt.GPT`.
      tokenizer: the tokenizer it was trained with.
      text: the starting context.
      k: how many tokens to show (>= 1); a ``k`` above the vocabulary size V shows all V
        tokens, and the chart says so.

    Returns:
      a :class:`NextTokenExplorer` (an ``ipywidgets.VBox``).

    Raises:
      ValueError: if ``k`` < 1.
    """
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be an integer >= 1; got {k!r}.")
    return NextTokenExplorer(model, tokenizer, text, k)
