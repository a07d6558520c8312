"""Attention heatmaps with token labels on both axes: one matrix (notebooks 04, 06, 10, and
03's alignments through :mod:`attnlab.viz.rnn`), every head of a layer in a grid (05), and
attention masks side by side (06).
"""

from __future__ import annotations

import numpy as np

from attnlab.viz._common import readable_token

__all__ = ["char_labels", "plot_attention", "plot_attention_heads", "plot_masks"]


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
        # 0.4 inch a cell, smaller when that would pass 12 x 10 inches; the figure's height
        # follows the cells', so a long, flat grid leaves no empty band around it.
        cell = min(0.4, 9.5 / S, 8.5 / T)
        size = (max(cell * S + 2.5, 4.0), max(cell * T + 1.5, 3.0))
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


def plot_masks(panels, *, title=None, axes=None):
    """Attention masks side by side: dark = may attend, white = hidden.

    Args:
      panels: a sequence of ``(panel_title, mask, query_labels, key_labels)``: ``mask`` a
        ``(T, S)`` bool array (True = may attend), labels ``T`` and ``S`` token texts.
      title: optional title over all panels (the figure's suptitle).
      axes: optional sequence of Axes, one per panel; a new row of panels when ``None``.

    Returns:
      The matplotlib ``Figure``.

    Raises:
      ValueError: if ``panels`` is empty, a mask is not 2-D, or labels do not match its shape.
    """
    import matplotlib.pyplot as plt
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    panels = list(panels)
    if not panels:
        raise ValueError("panels is empty; pass at least one (title, mask, labels, labels).")
    masks = []
    for name, mask, query_labels, key_labels in panels:
        mask = np.asarray(mask, dtype=bool)
        if mask.ndim != 2:
            raise ValueError(f"mask {name!r} must be 2-D (T, S); got shape {mask.shape}.")
        if len(query_labels) != mask.shape[0] or len(key_labels) != mask.shape[1]:
            raise ValueError(
                f"mask {name!r} has shape {mask.shape}; got {len(query_labels)} query labels "
                f"and {len(key_labels)} key labels."
            )
        masks.append(mask)
    if axes is None:
        widths = [m.shape[1] + 2 for m in masks]
        height = max(m.shape[0] for m in masks)
        fig, axes = plt.subplots(
            1, len(panels), figsize=(0.3 * sum(widths) + 1.5, 0.25 * height + 2.3),
            gridspec_kw={"width_ratios": widths}, squeeze=False,
        )
        axes = axes[0]
    fig = axes[0].figure
    colors = ListedColormap(["white", "tab:blue"])
    for ax, mask, (name, _, query_labels, key_labels) in zip(axes, masks, panels, strict=True):
        T, S = mask.shape
        ax.imshow(mask, cmap=colors, vmin=0, vmax=1)
        ax.set_xticks(range(S), [readable_token(t) for t in key_labels], rotation=90)
        ax.set_yticks(range(T), [readable_token(t) for t in query_labels])
        ax.set_xticks(np.arange(S + 1) - 0.5, minor=True)
        ax.set_yticks(np.arange(T + 1) - 0.5, minor=True)
        ax.grid(which="minor", color="0.8", lw=0.5)
        ax.tick_params(which="minor", length=0)
        ax.set_xlabel("key (attended to)")
        ax.set_ylabel("query (attending)")
        ax.set_title(name, fontsize=10)
    legend = [Patch(color="tab:blue", label="may attend"),
              Patch(facecolor="white", edgecolor="0.5", label="hidden (masked)")]
    fig.legend(handles=legend, loc="lower center", ncol=2, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.06, 1, 1))
    return fig
