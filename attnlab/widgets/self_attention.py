"""Notebook 04: one query's attention over a sentence, step by step: its scores, the
softmax weights and the output vector, for a choice of similarity, scaling and causal
mask (:func:`self_attention_explorer`, :func:`attention_row`).
"""

from __future__ import annotations

import html

import ipywidgets as widgets
import jax.numpy as jnp
import numpy as np

__all__ = ["SelfAttentionExplorer", "attention_row", "self_attention_explorer"]


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
