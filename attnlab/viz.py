"""Figures the notebooks share, drawn with matplotlib, each the same way everywhere."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["plot_attention", "plot_history"]


def _trailing_average(values: Sequence[float], window: int) -> np.ndarray:
    """Mean of each value and the ``window - 1`` values before it (fewer at the start).

    A trailing window only averages points that are already drawn, so the smoothed curve
    never sits below (or above) every raw point around it: its first value *is* the first
    point. A centred window would average the first point with later, lower losses and start
    below all of them.
    """
    values = np.asarray(values, dtype=float)
    cumsum = np.concatenate([[0.0], np.cumsum(values)])
    hi = np.arange(1, len(values) + 1)
    lo = np.maximum(hi - window, 0)
    return (cumsum[hi] - cumsum[lo]) / (hi - lo)


def plot_history(
    history, ax=None, *, smooth: int = 20, title: str | None = None, unit: str = "token"
):
    """Training and validation loss curves.

    Args:
      history: an :class:`attnlab.train.History` (or anything with ``steps``, ``train_loss``,
        ``val_steps``, ``val_loss`` lists).
      ax: matplotlib Axes to draw on; a new figure is made when ``None``.
      smooth: the thick line at step s is the mean training loss of steps s-smooth+1 .. s
        (a trailing moving average; fewer steps at the start). 1 draws no smoothed line.
      title: optional title.
      unit: what one token is, for the y-axis label (e.g. ``"char"``).

    Returns:
      The matplotlib ``Figure``.

    Raises:
      ValueError: if ``smooth`` is not an integer >= 1.
    """
    import matplotlib.pyplot as plt

    if isinstance(smooth, bool) or not isinstance(smooth, int | np.integer) or smooth < 1:
        raise ValueError(f"smooth must be an integer >= 1 (1 = no smoothing); got {smooth!r}.")
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4))
    else:
        fig = ax.figure
    steps = np.asarray(history.steps)
    if len(steps):
        ax.plot(steps, history.train_loss, color="tab:blue", alpha=0.25, lw=1,
                label="training (each step's batch)")
        if smooth > 1:
            ax.plot(steps, _trailing_average(history.train_loss, smooth), color="tab:blue",
                    lw=2, label=f"training (mean of the last {smooth} steps)")
    if len(history.val_steps):
        # Validation is measured only at the dots; the thin dashed line just guides the eye.
        ax.plot(history.val_steps, history.val_loss, "o--", color="tab:orange", lw=1, ms=6,
                label="validation (held-out text, measured at the dots)")
    ax.set_xlabel("step")
    ax.set_ylabel(f"loss (nats per {unit})")
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def _label_text(label) -> str:
    """A tick label's text: ``str`` of a string, a NumPy string or an integer.

    Newlines and tabs show as ``\\n`` and ``\\t``; spaces at either end (a space token, or a
    GPT-2 piece such as ``" the"``) show as ``␣`` so that they are visible.
    """
    text = str(label).replace("\n", "\\n").replace("\t", "\\t").replace("\r", "\\r")
    stripped = text.strip(" ")
    if not stripped:
        return "␣" * len(text)
    lead = len(text) - len(text.lstrip(" "))
    trail = len(text) - len(text.rstrip(" "))
    return "␣" * lead + stripped + "␣" * trail


def _check_labels(labels, n: int, name: str, what: str) -> list[str] | None:
    if labels is None:
        return None
    if isinstance(labels, str):
        labels = list(labels)  # "abc" labels three positions, one character each
    try:
        labels = list(labels)
    except TypeError:
        raise TypeError(
            f"{name} must be a sequence of labels (str, int or numpy.str_); got "
            f"{type(labels).__name__}."
        ) from None
    if len(labels) != n:
        raise ValueError(f"{name} has {len(labels)} labels; weights has {n} {what}.")
    return [_label_text(label) for label in labels]


def plot_attention(
    weights,
    query_labels=None,
    key_labels=None,
    ax=None,
    *,
    title=None,
    annotate: bool = False,
    vmax: float | None = None,
    colorbar: bool = True,
):
    """Heatmap of one attention matrix: one row per query, one column per key.

    Args:
      weights: ``(T, S)`` array-like of attention weights (each row sums to 1; a fully masked
        row is all zeros). Any float dtype; NumPy or JAX.
      query_labels: ``T`` labels for the rows, e.g. the tokens; each may be a ``str``, an
        ``int`` or a ``numpy.str_`` (a plain string labels one position per character).
        ``None`` numbers the positions 0..T-1.
      key_labels: ``S`` labels for the columns, as ``query_labels``.
      ax: Axes to draw on; a new figure when ``None``.
      title: the title; ``None`` gives "attention weights (T queries × S keys)".
      annotate: write each weight (two decimals) in its cell; readable up to about 12 × 12.
      vmax: weight at the top of the colour scale; ``None`` uses the largest weight. Pass
        ``1.0`` to compare several heatmaps on one scale.
      colorbar: draw a colour bar labelled "attention weight".

    Returns:
      The matplotlib ``Figure``.

    Raises:
      ValueError: if ``weights`` is not 2-D, holds NaN or infinity, or a label list does not
        match its shape.
      TypeError: if a label argument is not a sequence.
    """
    import matplotlib.pyplot as plt

    weights = np.asarray(weights, dtype=float)
    if weights.ndim != 2:
        raise ValueError(
            f"weights must be 2-D (T queries, S keys); got shape {weights.shape}. "
            "For (B, H, T, S) weights pick one: weights[b, h]."
        )
    if not np.all(np.isfinite(weights)):
        raise ValueError("weights contains NaN or infinity; attention weights must be finite.")
    T, S = weights.shape
    row_labels = _check_labels(query_labels, T, "query_labels", "rows (queries)")
    col_labels = _check_labels(key_labels, S, "key_labels", "columns (keys)")
    if ax is None:
        size = (min(max(0.4 * S + 2.5, 4.0), 12.0), min(max(0.4 * T + 1.5, 3.0), 10.0))
        fig, ax = plt.subplots(figsize=size, layout="constrained")  # room for labels
    else:
        fig = ax.figure
    top = float(weights.max()) if vmax is None else float(vmax)
    image = ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=max(top, 1e-9))
    # Every position gets a tick (labelled or numbered) when there are few enough to read.
    if row_labels is not None or T <= 40:
        ax.set_yticks(range(T), row_labels if row_labels is not None else [str(t) for t in range(T)])
    if col_labels is not None or S <= 40:
        labels = col_labels if col_labels is not None else [str(s) for s in range(S)]
        ax.set_xticks(range(S), labels, rotation=90 if max(map(len, labels), default=0) > 2 else 0)
    ax.set_xlabel("key position / token (attended to)")
    ax.set_ylabel("query position / token (attending)")
    ax.set_title(title if title is not None else f"attention weights ({T} queries × {S} keys)")
    if annotate:
        for t in range(T):
            for s in range(S):
                dark = weights[t, s] < 0.6 * max(top, 1e-9)
                ax.text(s, t, f"{weights[t, s]:.2f}", ha="center", va="center", fontsize=8,
                        color="white" if dark else "black")
    if colorbar:
        fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04, label="attention weight")
    return fig
