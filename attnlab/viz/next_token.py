"""Next-token distributions as bar charts: the most likely tokens (notebooks 06, 10), and
what temperature, top-k and top-p keep of them (08, redrawn in place by its widget).
"""

from __future__ import annotations

import numpy as np

from attnlab.viz._common import readable_token

__all__ = ["plot_next_token", "plot_next_token_distribution"]


def plot_next_token(probs, labels, k: int = 10, ax=None, *, title=None):
    """Horizontal bar chart of the ``k`` most likely next tokens, most likely at the top.

    Args:
      probs: ``(V,)`` next-token probabilities (non-negative; typically summing to 1).
      labels: ``V`` token texts (str, int or NumPy str), ``labels[i]`` naming ``probs[i]``;
        spaces and newlines are spelled out (``␣ (space)``, ``⏎ (newline)``).
      k: number of bars, ``1 <= k``; more than V shows all V.
      ax: Axes to draw on; a new figure when ``None``.
      title: optional title (default: "The k most likely next tokens").

    Returns:
      The matplotlib ``Figure``. Bars are labelled with their probability in percent.

    Raises:
      ValueError: if ``probs`` is not 1-D, has negative or non-finite entries, ``labels`` has
        a different length, or ``k`` < 1.
    """
    import matplotlib.pyplot as plt

    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 1:
        raise ValueError(f"probs must be 1-D (V,); got shape {probs.shape}.")
    if not np.all(np.isfinite(probs)) or np.any(probs < 0):
        raise ValueError("probs must be finite and >= 0; apply softmax to logits first.")
    if len(labels) != len(probs):
        raise ValueError(f"labels has {len(labels)} entries; probs has {len(probs)}.")
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ValueError(f"k must be an integer >= 1; got {k!r}.")
    order = np.argsort(-probs, kind="stable")[:k]
    shown = [readable_token(labels[i]) for i in order]
    if ax is None:
        fig, ax = plt.subplots(figsize=(6, 0.35 * len(order) + 1.2))
    else:
        fig = ax.figure
    y = np.arange(len(order))
    bars = ax.barh(y, probs[order], color="tab:blue")
    ax.set_yticks(y, shown)
    ax.invert_yaxis()  # most likely at the top
    ax.bar_label(bars, [f"{p:.1%}" for p in probs[order]], padding=3, fontsize=8)
    ax.set_xlim(0, min(1.0, probs[order].max() * 1.25 + 1e-9))
    ax.set_xlabel("probability of being the next token")
    ax.set_ylabel("next token")
    ax.set_title(title or f"The {len(order)} most likely next tokens")
    fig.tight_layout()
    return fig


#: Token texts that would be invisible (or break the layout) as tick labels.
_SHOWN_AS = {" ": "␣", "\n": "⏎", "\t": "⇥", "\r": "\\r"}
_KEPT_COLOR, _FILTERED_COLOR = "tab:blue", "#c8c8c8"
_YLIM_LEVELS = (0.02, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.1)


def _token_label(token: str) -> str:
    return _SHOWN_AS.get(token, token if token.isprintable() else repr(token)[1:-1])


def plot_next_token_distribution(probs, labels, kept_mask=None, ax=None, *, top: int = 24,
                                 title: str | None = None):
    """Bar chart of a next-token distribution: kept tokens in colour, filtered ones in grey.

    The bars are the ``top`` most likely tokens, most likely first, at their probability in
    ``probs`` (the distribution the filters look at, i.e. after temperature). Tokens that
    ``kept_mask`` keeps are blue, the others grey. A black tick on each kept bar marks its
    probability after renormalising (``probs * kept / kept mass``): what is actually sampled
    from. The text in the corner gives the kept probability mass and how many tokens are kept.

    Redrawing is cheap: when ``ax`` already holds a chart made by this function with the same
    number of bars, the bars, ticks and texts are updated in place instead of drawn anew (what
    a widget does on every slider move).

    Args:
      probs: ``(V,)`` probabilities, finite, ``>= 0`` (they need not sum exactly to 1).
      labels: ``V`` token texts (space, newline and tab are shown as ␣, ⏎, ⇥).
      kept_mask: ``(V,)`` bool, True for the tokens that survive the filters; ``None`` keeps
        every token. Must keep at least one token with probability > 0.
      ax: matplotlib Axes to draw on; a new figure when ``None``.
      top: how many bars to show (the most likely tokens), ``>= 1``; fewer if ``V < top``.
      title: the title; by default "next-token distribution".

    Returns:
      The matplotlib ``Figure``.

    Raises:
      ValueError: if ``probs`` is not 1-D or has negative or non-finite values, ``labels`` or
        ``kept_mask`` do not have ``V`` entries, ``kept_mask`` keeps no probability, or
        ``top < 1``.
    """
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 1 or probs.size == 0:
        raise ValueError(f"probs must be 1-D (V,) with V >= 1; got shape {probs.shape}.")
    if not np.all(np.isfinite(probs)) or np.any(probs < 0):
        raise ValueError("probs must be finite and >= 0 (probabilities, not logits); got "
                         f"min {np.nanmin(probs):.3g}, max {np.nanmax(probs):.3g}.")
    V = probs.size
    labels = [str(label) for label in labels]
    if len(labels) != V:
        raise ValueError(f"labels has {len(labels)} entries; probs has V = {V}.")
    kept = np.ones(V, bool) if kept_mask is None else np.asarray(kept_mask)
    if kept.shape != (V,) or kept.dtype != bool:
        raise ValueError(f"kept_mask must be a bool array of shape ({V},); got "
                         f"{kept.dtype} {kept.shape}.")
    mass = float(probs[kept].sum())
    if not mass > 0:
        raise ValueError("kept_mask keeps no probability: at least one kept token needs "
                         "probability > 0 (top-k and top-p always keep the most likely one).")
    if isinstance(top, bool) or not isinstance(top, int | np.integer) or top < 1:
        raise ValueError(f"top must be an integer >= 1; got {top!r}.")

    n = min(int(top), V)
    shown = np.argsort(-probs, kind="stable")[:n]  # most likely first; ties by token id
    heights = probs[shown]
    renormalised = np.where(kept[shown], heights / mass, np.nan)  # NaN: no tick
    colors = [_KEPT_COLOR if k else _FILTERED_COLOR for k in kept[shown]]
    n_kept, hidden = int(kept.sum()), int(kept.sum() - kept[shown].sum())
    summary = f"kept {n_kept} of {V} tokens: {mass:.1%} of the mass"
    if hidden:
        summary += f"\n({hidden} kept beyond the {n} shown)"
    top_y = max(float(heights.max()), float(np.nanmax(renormalised)))
    # The y-axis steps through a few fixed heights, so it does not twitch at every slider move.
    ylim = (0.0, next(level for level in _YLIM_LEVELS if level >= 1.05 * top_y))
    tick_labels = [_token_label(labels[i]) for i in shown]

    parts = getattr(ax, "_attnlab_next_token", None) if ax is not None else None
    if parts is not None and len(parts["bars"]) == n:  # update the chart in place
        for bar, height, color in zip(parts["bars"], heights, colors, strict=True):
            bar.set_height(height)
            bar.set_color(color)
        parts["ticks"].set_ydata(renormalised)
        parts["summary"].set_text(summary)
        ax.set_xticks(range(n), tick_labels)
        ax.set_ylim(*ylim)
        if title is not None:
            ax.set_title(title)
        return ax.figure

    if ax is None:
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(max(7.0, 0.3 * n + 3.5), 3.6))
    else:
        fig = ax.figure
        ax.clear()
    from matplotlib.patches import Patch

    bars = ax.bar(range(n), heights, color=colors, width=0.8)
    (ticks,) = ax.plot(range(n), renormalised, linestyle="none", marker="_", markersize=10,
                       markeredgewidth=2, color="black")
    ax.set_xticks(range(n), tick_labels)
    ax.set_xlim(-0.6, n - 0.4)
    ax.set_ylim(*ylim)
    ax.set_xlabel("next token, most likely first")
    ax.set_ylabel("probability")
    ax.set_title(title if title is not None else "next-token distribution")
    # Legend and summary sit right of the axes, where no bar can hide under them.
    summary_text = ax.text(1.02, 0.45, summary, transform=ax.transAxes, ha="left", va="top",
                           fontsize=9)
    ax.legend(handles=[Patch(color=_KEPT_COLOR, label="kept"),
                       Patch(color=_FILTERED_COLOR, label="filtered out"),
                       ticks], labels=["kept", "filtered out", "kept, renormalised\n(what is sampled from)"],
              loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    if fig.get_layout_engine() is None:
        fig.tight_layout()
    ax._attnlab_next_token = {"bars": list(bars), "ticks": ticks, "summary": summary_text}
    return fig
