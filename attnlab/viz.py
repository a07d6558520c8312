"""Figures the notebooks share, drawn with matplotlib, each the same way everywhere."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["plot_attention", "plot_history"]


def _moving_average(values: Sequence[float], window: int) -> np.ndarray:
    values = np.asarray(values, dtype=float)
    if window <= 1 or len(values) < window:
        return values
    # Centred window, shrinking at the ends, so the curve sits on the points it summarises.
    half = window // 2
    cumsum = np.concatenate([[0.0], np.cumsum(values)])
    lo = np.clip(np.arange(len(values)) - half, 0, len(values))
    hi = np.clip(np.arange(len(values)) + half + 1, 0, len(values))
    return (cumsum[hi] - cumsum[lo]) / (hi - lo)


def plot_history(
    history, ax=None, *, smooth: int = 20, title: str | None = None, unit: str = "token"
):
    """Training and validation loss curves.

    Args:
      history: an :class:`attnlab.train.History` (or anything with ``steps``, ``train_loss``,
        ``val_steps``, ``val_loss`` lists).
      ax: matplotlib Axes to draw on; a new figure is made when ``None``.
      smooth: moving-average window for the noisy per-step training loss (1 = raw).
      title: optional title.
      unit: what one token is, for the y-axis label (e.g. ``"char"``).

    Returns:
      The matplotlib ``Figure``.
    """
    import matplotlib.pyplot as plt

    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4))
    else:
        fig = ax.figure
    steps = np.asarray(history.steps)
    if len(steps):
        ax.plot(steps, history.train_loss, color="tab:blue", alpha=0.25, lw=1,
                label="training (each step's batch)")
        ax.plot(steps, _moving_average(history.train_loss, smooth), color="tab:blue", lw=2,
                label="training (moving average)")
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


def plot_attention(weights, query_labels=None, key_labels=None, ax=None, *, title=None):
    """Heatmap of one attention matrix: rows are queries, columns are keys.

    Args:
      weights: ``(T, S)`` array of attention weights (rows sum to 1).
      query_labels, key_labels: optional tick labels (e.g. the tokens), lengths T and S.
      ax: Axes to draw on; a new figure when ``None``.
      title: optional title.

    Returns:
      The matplotlib ``Figure``.

    Raises:
      ValueError: if ``weights`` is not 2-D or the labels do not match its shape.
    """
    import matplotlib.pyplot as plt

    weights = np.asarray(weights)
    if weights.ndim != 2:
        raise ValueError(f"weights must be 2-D (T, S); got shape {weights.shape}.")
    T, S = weights.shape
    if query_labels is not None and len(query_labels) != T:
        raise ValueError(f"query_labels has {len(query_labels)} labels; weights has {T} rows.")
    if key_labels is not None and len(key_labels) != S:
        raise ValueError(f"key_labels has {len(key_labels)} labels; weights has {S} columns.")
    if ax is None:
        fig, ax = plt.subplots(figsize=(0.35 * S + 2, 0.35 * T + 1.5))
    else:
        fig = ax.figure
    image = ax.imshow(weights, cmap="viridis", vmin=0.0, vmax=max(float(weights.max()), 1e-9))
    if query_labels is not None:
        ax.set_yticks(range(T), [repr(t)[1:-1] for t in query_labels])
    if key_labels is not None:
        ax.set_xticks(range(S), [repr(t)[1:-1] for t in key_labels], rotation=90)
    ax.set_xlabel("key (attended to)")
    ax.set_ylabel("query (attending)")
    if title:
        ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    return fig


# --- many heads, and position tables (notebook 05) --------------------------------------------

__all__ += ["char_labels", "plot_attention_heads", "plot_positional_encoding"]

# Characters that would be invisible (or break a line) as tick labels.
_VISIBLE_CHARS = {" ": "␣", "\n": "⏎", "\t": "⇥"}


def char_labels(text) -> list[str]:
    """One visible tick label per character: space → ␣, newline → ⏎, tab → ⇥."""
    return [_VISIBLE_CHARS.get(c, c) for c in text]


def plot_attention_heads(weights, labels, *, title=None, ncols=None, head_names=None):
    """A grid of attention heatmaps, one per head, with the tokens on both axes of each.

    Args:
      weights: ``(H, T, T)`` attention weights of one layer (one sequence).
      labels: T tick labels (strings, or anything ``str()`` makes readable).
      title: optional title over the whole grid.
      ncols: heads per row (default: all heads in one row, up to 4).
      head_names: optional H subplot titles (default ``"head 0"``, ``"head 1"``, ...).

    Returns:
      The matplotlib ``Figure``; its first H axes are the heads, in order.

    Raises:
      ValueError: if ``weights`` is not ``(H, T, T)`` or the labels or names do not match it.
    """
    import matplotlib.pyplot as plt

    weights = np.asarray(weights)
    if weights.ndim != 3 or weights.shape[1] != weights.shape[2]:
        raise ValueError(f"weights must have shape (H, T, T); got {weights.shape}.")
    H, T, _ = weights.shape
    labels = [str(label) for label in labels]
    if len(labels) != T:
        raise ValueError(f"labels has {len(labels)} entries; weights has T = {T} positions.")
    names = list(head_names) if head_names is not None else [f"head {h}" for h in range(H)]
    if len(names) != H:
        raise ValueError(f"head_names has {len(names)} entries; weights has H = {H} heads.")
    ncols = min(H, 4) if ncols is None else max(1, min(int(ncols), H))
    nrows = -(-H // ncols)
    side = 0.22 * T + 1.6
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * (side + 0.6), nrows * side),
                             squeeze=False)
    for h, ax in enumerate(axes.flat):
        if h < H:
            plot_attention(weights[h], labels, labels, ax=ax, title=names[h])
        else:
            ax.set_visible(False)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig


def plot_positional_encoding(encoding, ax=None, *, title=None):
    """Heatmap of a position table: one row per position, one column per dimension.

    Args:
      encoding: ``(P, D)`` array, e.g. ``attnlab.positional.sinusoidal_encoding(P, D)``.
      ax: Axes to draw on; a new figure when ``None``.
      title: optional title.

    Returns:
      The matplotlib ``Figure``.

    Raises:
      ValueError: if ``encoding`` is not 2-D.
    """
    import matplotlib.pyplot as plt

    encoding = np.asarray(encoding)
    if encoding.ndim != 2:
        raise ValueError(f"encoding must be 2-D (P, D); got shape {encoding.shape}.")
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4))
    else:
        fig = ax.figure
    limit = max(float(np.abs(encoding).max()), 1e-9)
    image = ax.imshow(encoding, cmap="RdBu_r", vmin=-limit, vmax=limit, aspect="auto",
                      interpolation="nearest")
    ax.set_xlabel("dimension j (column of the vector)")
    ax.set_ylabel("position p")
    if title:
        ax.set_title(title)
    fig.colorbar(image, ax=ax, label="value")
    return fig
