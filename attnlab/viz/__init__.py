"""Figures the notebooks share, drawn with matplotlib, each the same way everywhere."""

from __future__ import annotations

import numpy as np

from attnlab.viz.tables import format_table, plot_matrix
from attnlab.viz.tokens import plot_embedding_2d, plot_vocab_tradeoff
from attnlab.viz.training import plot_finetune_comparison, plot_history

__all__ = ["plot_attention", "plot_history"]
# moved to attnlab/viz/tables.py, tokens.py and training.py:
__all__ += ["format_table", "plot_matrix", "plot_embedding_2d", "plot_vocab_tradeoff",
            "plot_finetune_comparison"]


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


# --- notebook 06: next-token probabilities and mask patterns ---------------------------------

# Tokens that are invisible or break a tick label when shown bare.
_READABLE = {" ": "␣ (space)", "\n": "⏎ (newline)", "\t": "⇥ (tab)", "": "(empty)"}


def readable_token(token) -> str:
    """A token as a tick label: space, newline and tab spelled out, other text as it is."""
    token = str(token)
    return _READABLE.get(token, token.replace("\n", "⏎"))


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


__all__ += ["plot_masks", "plot_next_token", "readable_token"]


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


# --- notebooks 02 and 03: recurrent networks and attention for translation ---------------------

__all__ += [  # appended here, so that edits to the list above merge cleanly
    "plot_accuracy_by_length",
    "plot_alignment",
    "plot_gradient_decay",
    "plot_hidden_states",
    "plot_timings",
]


def plot_hidden_states(states, tokens, ax=None, *, title=None):
    """Heatmap of an RNN's hidden state at every step: hidden units down, input steps across.

    Args:
      states: ``(S, H)`` hidden states h_1..h_S of one sequence.
      tokens: the S inputs (e.g. characters), the x tick labels (a space is drawn as "␣").
      ax: Axes to draw on; a new figure when ``None``.
      title: optional title (default says what the axes are).

    Returns:
      The matplotlib ``Figure``; the colour bar is labelled "activation".

    Raises:
      ValueError: if ``states`` is not 2-D or ``tokens`` does not have S entries.
    """
    import matplotlib.pyplot as plt

    states = np.asarray(states, dtype=float)
    if states.ndim != 2:
        raise ValueError(f"states must be 2-D (S, H); got shape {states.shape}.")
    S, H = states.shape
    if len(tokens) != S:
        raise ValueError(f"tokens has {len(tokens)} entries; states has {S} steps.")
    if ax is None:
        fig, ax = plt.subplots(figsize=(0.3 * S + 2.5, 0.15 * H + 1.8))
    else:
        fig = ax.figure
    image = ax.imshow(states.T, cmap="RdBu_r", vmin=-1.0, vmax=1.0, aspect="auto")
    # one narrow column per step: a space is shown as "␣", a newline as "⏎"
    ax.set_xticks(range(S), [{" ": "␣", "\n": "⏎"}.get(str(t), str(t)) for t in tokens])
    ax.set_xlabel("input step t (the character read at that step) →")
    ax.set_ylabel(f"hidden unit (of {H})")
    ax.set_title(title or "hidden state h_t after each step (one column per step)")
    fig.colorbar(image, ax=ax, fraction=0.046, pad=0.04).set_label("activation")
    return fig


def plot_gradient_decay(norms, ax=None, *, title=None):
    """How the gradient reaching each earlier input shrinks with distance, on a log scale.

    Args:
      norms: ``{label: (B, S) or (S,) array}`` of gradient norms, entry ``[..., t]`` for the
        input at step t (as :func:`attnlab.rnn.input_gradient_norms` returns them). Each curve
        is the median over the B sequences, with the band from the 25th to the 75th percentile.
      ax: Axes to draw on; a new figure when ``None``.
      title: optional title.

    Returns:
      The matplotlib ``Figure``: x = distance from the last step (steps), y = gradient norm
      (log scale).

    Raises:
      ValueError: if ``norms`` is empty or an entry is not 1-D or 2-D.
    """
    import matplotlib.pyplot as plt

    if not norms:
        raise ValueError("norms is empty; pass {label: array of gradient norms}.")
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4))
    else:
        fig = ax.figure
    for label, values in norms.items():
        values = np.asarray(values, dtype=float)
        if values.ndim == 1:
            values = values[None]
        if values.ndim != 2:
            raise ValueError(f"norms[{label!r}] must be (B, S) or (S,); got {values.shape}.")
        distance = np.arange(values.shape[1])[::-1]  # step t is S - 1 - t steps before the end
        low, mid, high = np.percentile(values, [25, 50, 75], axis=0)
        (line,) = ax.plot(distance, mid, lw=2, label=label)
        if values.shape[0] > 1:
            ax.fill_between(distance, low, high, color=line.get_color(), alpha=0.2, lw=0)
    ax.set_yscale("log")
    ax.set_xlabel("distance: how many steps before the last one the input was read")
    ax.set_ylabel("gradient norm ‖∂h_last / ∂x_t‖ (log scale)")
    ax.set_title(title or "how much the last hidden state still depends on each earlier input")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    return fig


def plot_accuracy_by_length(edges, accuracies, ax=None, *, counts=None, title=None):
    """Exact-match accuracy against source length, one line per model.

    Args:
      edges: increasing bin edges; bin k holds lengths in ``[edges[k], edges[k+1])``.
      accuracies: ``{model name: (len(edges) - 1,) accuracies in [0, 1]}`` (NaN = empty bin),
        as :func:`attnlab.rnn.accuracy_by_length` returns them.
      ax: Axes to draw on; a new figure when ``None``.
      counts: optional ``(len(edges) - 1,)`` numbers of test pairs per bin, written under the
        tick labels.
      title: optional title.

    Returns:
      The matplotlib ``Figure``: x = source length in characters (bins), y = accuracy in %.

    Raises:
      ValueError: if ``accuracies`` is empty or an entry does not have one value per bin.
    """
    import matplotlib.pyplot as plt

    edges = np.asarray(edges)
    if not accuracies:
        raise ValueError("accuracies is empty; pass {model name: accuracies per bin}.")
    n_bins = len(edges) - 1
    if ax is None:
        fig, ax = plt.subplots(figsize=(8, 4))
    else:
        fig = ax.figure
    x = np.arange(n_bins)
    for (label, acc), marker in zip(accuracies.items(), "os^Dv" * 4, strict=False):
        acc = np.asarray(acc, dtype=float)
        if acc.shape != (n_bins,):
            raise ValueError(f"accuracies[{label!r}] has shape {acc.shape}; expected ({n_bins},).")
        ax.plot(x, 100 * acc, marker=marker, lw=2, label=label)
    ticks = [f"{lo}–{hi - 1}" for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
    if counts is not None:
        ticks = [f"{t}\n(n={n})" for t, n in zip(ticks, np.asarray(counts), strict=True)]
    ax.set_xticks(x, ticks, fontsize=8)
    ax.set_ylim(-3, 103)
    ax.set_xlabel("source length (characters)")
    ax.set_ylabel("exact-match accuracy (%)")
    ax.set_title(title or "whole date right, by input length (test dates)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    return fig


def plot_alignment(weights, source_tokens, output_tokens, ax=None, *, title=None):
    """Attention weights of a translation: one row per output step, one column per source token.

    Draws with :func:`plot_attention` and names the axes for an encoder–decoder.

    Args:
      weights: ``(T, S)`` attention weights (rows sum to 1).
      source_tokens: the S source tokens (x labels); output_tokens: the T output tokens
        (y labels). A space is drawn as "␣".
      ax: Axes to draw on; a new figure when ``None``.
      title: optional title (default says what the axes are).

    Returns:
      The matplotlib ``Figure``.

    Raises:
      ValueError: as :func:`plot_attention`, if the labels do not fit ``weights``.
    """
    compact = {" ": "␣", "\n": "⏎"}  # one narrow column per character
    source = [compact.get(str(t), str(t)) for t in source_tokens]
    output = [compact.get(str(t), str(t)) for t in output_tokens]
    fig = plot_attention(weights, output, source, ax=ax,
                         title=title or "attention: output step (rows) × source character "
                         "(columns)")
    axes = fig.axes[0] if ax is None else ax
    axes.set_xlabel("source character (attended to)")
    axes.set_ylabel("output character (being written)")
    fig.axes[-1].set_ylabel("attention weight")
    return fig


def plot_timings(result, ax=None, *, title=None):
    """Time of one forward pass against sequence length, for an RNN and for self-attention.

    Args:
      result: ``{"length": (n,), "rnn_s": (n,), "attention_s": (n,)}`` in seconds, as
        :func:`attnlab.rnn.time_rnn_and_attention` returns it.
      ax: Axes to draw on; a new figure when ``None``.
      title: optional title.

    Returns:
      The matplotlib ``Figure`` (both axes logarithmic; times in milliseconds).

    Raises:
      ValueError: if a key is missing or the arrays differ in length.
    """
    import matplotlib.pyplot as plt

    missing = {"length", "rnn_s", "attention_s"} - set(result)
    if missing:
        raise ValueError(f"result lacks {sorted(missing)}; pass time_rnn_and_attention's dict.")
    length = np.asarray(result["length"])
    if not len(length) == len(result["rnn_s"]) == len(result["attention_s"]):
        raise ValueError("result's arrays must all have one entry per length.")
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4))
    else:
        fig = ax.figure
    ax.plot(length, 1e3 * np.asarray(result["rnn_s"]), "o-", lw=2,
            label="LSTM (one step after another)")
    ax.plot(length, 1e3 * np.asarray(result["attention_s"]), "s-", lw=2,
            label="self-attention (all positions at once)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(length, [str(n) for n in length])
    ax.set_xlabel("sequence length (steps)")
    ax.set_ylabel("time per forward pass (ms, log scale)")
    ax.set_title(title or "one forward pass, compiled, on this machine")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    return fig
