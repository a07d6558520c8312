"""Notebooks 02 and 03: recurrent networks and attention for translation: hidden states,
vanishing gradients, accuracy by input length, alignments, and RNN against attention
timings.
"""

from __future__ import annotations

import numpy as np

from attnlab.viz.attention import plot_attention

__all__ = [
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
