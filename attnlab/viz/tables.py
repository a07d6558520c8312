"""Notebook 04: small labelled matrices, printed as aligned text or drawn as a heatmap with
their numbers in the cells.
"""

from __future__ import annotations

import numpy as np

__all__ = ["format_table", "plot_matrix"]


_DIVERGING = {"RdBu_r", "RdBu", "coolwarm", "bwr", "seismic", "PiYG", "PRGn"}


def _labels(labels, n: int, name: str) -> list[str]:
    """``n`` tick labels as plain text (str, int or NumPy str all shown as their text)."""
    if labels is None:
        return [str(i) for i in range(n)]
    labels = [str(label) for label in labels]
    if len(labels) != n:
        raise ValueError(f"{name} has {len(labels)} labels; the matrix has {n} along that axis.")
    return labels


def format_table(values, row_labels=None, col_labels=None, *, digits: int = 2,
                 title: str | None = None) -> str:
    """A small matrix as aligned plain text with row and column labels, for ``print``.

    Args:
      values: ``(R, C)`` numbers (a 1-D array is shown as one row). ``-inf`` prints as ``-inf``.
      row_labels: R labels (e.g. tokens); default ``0 .. R-1``.
      col_labels: C labels (e.g. dimension names or tokens); default ``0 .. C-1``.
      digits: digits after the decimal point.
      title: optional first line.

    Returns:
      the table as one string.

    Raises:
      ValueError: if ``values`` is not 1-D or 2-D, or a label list has the wrong length.
    """
    values = np.asarray(values, dtype=float)
    if values.ndim == 1:
        values = values[None]
    if values.ndim != 2:
        raise ValueError(f"values must be 1-D or 2-D; got shape {values.shape}.")
    rows = _labels(row_labels, values.shape[0], "row_labels")
    cols = _labels(col_labels, values.shape[1], "col_labels")
    cells = [[f"{x:.{digits}f}" for x in row] for row in values]
    width = max(len(c) for c in cols + [c for row in cells for c in row])
    left = max(len(r) for r in rows)
    lines = [title] if title else []
    lines.append(" " * left + " " + " ".join(c.rjust(width) for c in cols))
    for label, row in zip(rows, cells, strict=True):
        lines.append(label.rjust(left) + " " + " ".join(c.rjust(width) for c in row))
    return "\n".join(lines)


def plot_matrix(values, row_labels=None, col_labels=None, ax=None, *, title=None,
                xlabel=None, ylabel=None, cmap="RdBu_r", digits: int = 2, colorbar_label=None,
                vmin=None, vmax=None):
    """Heatmap of a small matrix with its numbers written in the cells and labels on both axes.

    Colours are centred on 0 (blue negative, red positive) unless ``cmap`` is a one-sided map
    such as ``"viridis"``. Entries that are ``-inf`` (masked scores) are drawn grey and
    written as ``-inf``; NaN entries are grey and left blank.

    Args:
      values: ``(R, C)`` numbers.
      row_labels, col_labels: R and C labels (strings, ints or NumPy strings; shown as text).
      ax: Axes to draw on; a new figure when ``None``.
      title, xlabel, ylabel: the title and axis labels.
      cmap: matplotlib colormap name.
      digits: digits after the decimal point in the cells.
      colorbar_label: optional label of the colour bar.
      vmin, vmax: optional ends of the colour scale (e.g. 0 and 1 for a mask); by default the
        data's range, or symmetric around 0 for a diverging ``cmap``.

    Returns:
      The matplotlib ``Figure``.

    Raises:
      ValueError: if ``values`` is not 2-D or a label list has the wrong length.
    """
    import matplotlib
    import matplotlib.pyplot as plt

    values = np.asarray(values, dtype=float)
    if values.ndim != 2:
        raise ValueError(f"values must be 2-D (R, C); got shape {values.shape}.")
    R, C = values.shape
    rows = _labels(row_labels, R, "row_labels")
    cols = _labels(col_labels, C, "col_labels")
    if ax is None:
        fig, ax = plt.subplots(figsize=(0.75 * C + 2.2, 0.5 * R + 1.4))
    else:
        fig = ax.figure
    finite = np.isfinite(values)
    shown = np.where(finite, values, np.nan)  # grey where -inf or NaN
    diverging = cmap in _DIVERGING
    if not finite.any():
        low, high = -1.0, 1.0
    elif diverging:
        high = max(float(np.nanmax(np.abs(shown))), 1e-9)
        low = -high
    else:
        low, high = float(np.nanmin(shown)), float(np.nanmax(shown))
        high = max(high, low + 1e-9)
    vmin = low if vmin is None else vmin
    vmax = high if vmax is None else vmax
    image = ax.imshow(shown, cmap=matplotlib.colormaps[cmap].with_extremes(bad="0.85"),
                      vmin=vmin, vmax=vmax)
    for r in range(R):
        for c in range(C):
            x = values[r, c]
            if np.isfinite(x):
                level = float(image.norm(x))
                dark = abs(level - 0.5) > 0.3 if diverging else level < 0.5
                text = f"{x:.{digits}f}"
            else:
                dark, text = False, "-inf" if x == -np.inf else ""
            ax.text(c, r, text, ha="center", va="center", fontsize=8,
                    color="white" if dark else "black")
    ax.set_xticks(range(C), cols, rotation=90 if max(len(s) for s in cols) > 3 else 0)
    ax.set_yticks(range(R), rows)
    if xlabel:
        ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    bar = fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04)
    if colorbar_label:
        bar.set_label(colorbar_label)
    return fig
