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


# --- the next-token distribution after temperature, top-k and top-p (notebook 08) ---------------

__all__ += ["plot_next_token_distribution"]

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
