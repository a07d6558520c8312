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


# --- small labelled matrices (notebook 04) ------------------------------------------------------

__all__ += ["format_table", "plot_matrix"]  # appended here, so edits above merge cleanly

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
