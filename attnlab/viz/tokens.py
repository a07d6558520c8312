"""Notebook 01: tokens per character against vocabulary size, and embeddings as a labelled
2-D scatter.
"""

from __future__ import annotations

import numpy as np

__all__ = ["plot_embedding_2d", "plot_vocab_tradeoff"]


# One colour per character class (attnlab.tokenization.character_class), the same in every figure.
_CLASS_COLOURS = {"lowercase": "tab:blue", "uppercase": "tab:orange", "digit": "tab:green",
                  "punctuation": "tab:red", "whitespace": "tab:purple"}
_VISIBLE_LABELS = {" ": "␣", "\n": "⏎", "\t": "⇥"}


def plot_vocab_tradeoff(series, ax=None, *, title=None, text_name="held-out text"):
    """Tokens per character against vocabulary size, one line or marker per kind of tokenizer.

    Args:
      series: ``{name: [(vocab_size, tokens_per_char), ...]}``, e.g. ``{"characters":
        [(96, 1.0)], "BPE": [(256, 0.48), (1000, 0.33)], "words": [(3733, 0.31)]}``. A series
        with several points is drawn as a line through them; each point is labelled with its V.
      ax: Axes to draw on; a new figure when ``None``.
      title: optional title (a default one says what is shown).
      text_name: what the ratio was measured on, for the y-axis label.

    Returns:
      The matplotlib ``Figure``.

    Raises:
      ValueError: if ``series`` is empty, or a vocabulary size or ratio is not positive.
    """
    import matplotlib.pyplot as plt

    if not series:
        raise ValueError("series is empty; pass {name: [(vocab_size, tokens_per_char), ...]}.")
    for name, points in series.items():
        if not points or any(v <= 0 or r <= 0 for v, r in points):
            raise ValueError(f"series[{name!r}] needs points (vocab_size > 0, tokens_per_char "
                             f"> 0); got {points!r}.")
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4.2))
    else:
        fig = ax.figure
    markers = iter("osD^v<>")
    for name, points in series.items():
        points = sorted(points)
        v, r = zip(*points, strict=True)
        ax.plot(v, r, marker=next(markers, "o"), ms=7, lw=1.5 if len(points) > 1 else 0,
                label=name)
        for vocab_size, ratio in points:
            ax.annotate(f"{vocab_size:,}", (vocab_size, ratio), textcoords="offset points",
                        xytext=(4, 5), fontsize=8)
    ax.set_xscale("log")
    ax.set_xlabel("vocabulary size V (distinct tokens, log scale)")
    ax.set_ylabel(f"tokens per character of {text_name}")
    ax.set_ylim(0, 1.1 * max(r for points in series.values() for _, r in points))  # room for labels
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    ax.set_title(title or "A bigger vocabulary makes shorter sequences")
    fig.tight_layout()
    return fig


def plot_embedding_2d(points, labels, groups=None, ax=None, *, title=None,
                      xlabel="component 1", ylabel="component 2"):
    """Scatter of 2-D token positions (e.g. a PCA of an embedding table), each point labelled
    with its token and coloured by its group.

    Args:
      points: ``(N, 2)`` coordinates.
      labels: N token strings; space, newline and tab are shown as ␣, ⏎ and ⇥.
      groups: optional N group names (e.g. :func:`attnlab.tokenization.character_class`);
        the five character classes get fixed colours, other names the next free ones.
      ax: Axes to draw on; a new figure when ``None``.
      title: optional title.
      xlabel, ylabel: axis labels (say what the axes are, e.g. the variance they explain).

    Returns:
      The matplotlib ``Figure``.

    Raises:
      ValueError: if ``points`` is not ``(N, 2)`` or ``labels``/``groups`` do not have N entries.
    """
    import matplotlib.pyplot as plt

    points = np.asarray(points, dtype=float)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"points must have shape (N, 2); got {points.shape}.")
    N = len(points)
    if len(labels) != N:
        raise ValueError(f"labels has {len(labels)} entries; points has {N} rows.")
    if groups is not None and len(groups) != N:
        raise ValueError(f"groups has {len(groups)} entries; points has {N} rows.")
    groups = ["token"] * N if groups is None else [str(g) for g in groups]
    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 6.5))
    else:
        fig = ax.figure
    spare = iter(c for c in plt.rcParams["axes.prop_cycle"].by_key()["color"]
                 if c not in _CLASS_COLOURS.values())
    colours = {}
    for g in dict.fromkeys(groups):
        colours[g] = _CLASS_COLOURS.get(g) or next(spare, "tab:gray")
        members = [i for i in range(N) if groups[i] == g]
        ax.scatter(points[members, 0], points[members, 1], s=18, color=colours[g], alpha=0.5,
                   label=f"{g} ({len(members)})")
    for (x, y), label, g in zip(points, labels, groups, strict=True):
        ax.annotate(_VISIBLE_LABELS.get(label, label), (x, y), fontsize=9, color=colours[g],
                    ha="center", va="bottom", xytext=(0, 2), textcoords="offset points")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(alpha=0.3)
    ax.legend(loc="best", fontsize=8)
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig
