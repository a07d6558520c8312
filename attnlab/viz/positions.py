"""Notebook 05: a table of position encodings as a heatmap, positions down, dimensions
across.
"""

from __future__ import annotations

import numpy as np

__all__ = ["plot_positional_encoding"]


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
