"""Training runs: loss curves (notebooks 02, 03, 07 and ``python -m attnlab train``) and
fine-tuning methods side by side (notebook 09).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

__all__ = ["plot_finetune_comparison", "plot_history"]


def _trailing_average(values: Sequence[float], window: int) -> np.ndarray:
    """Mean of each value and the ``window - 1`` values before it (fewer at the start).

    A trailing window only averages points that are already drawn, so the smoothed curve
    never sits below (or above) every raw point around it: its first value *is* the first
    point. A centred window would average the first point with later, lower losses and start
    below all of them.
    """
    values = np.asarray(values, dtype=float)
    cumsum = np.concatenate([[0.0], np.cumsum(values)])
    hi = np.arange(1, len(values) + 1)
    lo = np.maximum(hi - window, 0)
    return (cumsum[hi] - cumsum[lo]) / (hi - lo)


def plot_history(
    history, ax=None, *, smooth: int = 20, title: str | None = None, unit: str = "token",
    validation: str = "held-out text",
):
    """Training and validation loss curves.

    Args:
      history: an :class:`attnlab.train.History` (or anything with ``steps``, ``train_loss``,
        ``val_steps``, ``val_loss`` lists).
      ax: matplotlib Axes to draw on; a new figure is made when ``None``.
      smooth: the thick line at step s is the mean training loss of steps s-smooth+1 .. s
        (a trailing moving average; fewer steps at the start). 1 draws no smoothed line.
      title: optional title.
      unit: what one token is, for the y-axis label (e.g. ``"char"``).
      validation: what the validation loss was measured on, for its legend entry (e.g.
        ``"the test dates"``).

    Returns:
      The matplotlib ``Figure``.

    Raises:
      ValueError: if ``smooth`` is not an integer >= 1.
    """
    import matplotlib.pyplot as plt

    if isinstance(smooth, bool) or not isinstance(smooth, int | np.integer) or smooth < 1:
        raise ValueError(f"smooth must be an integer >= 1 (1 = no smoothing); got {smooth!r}.")
    if ax is None:
        fig, ax = plt.subplots(figsize=(7, 4))
    else:
        fig = ax.figure
    steps = np.asarray(history.steps)
    if len(steps):
        ax.plot(steps, history.train_loss, color="tab:blue", alpha=0.25, lw=1,
                label="training (each step's batch)")
        if smooth > 1:
            ax.plot(steps, _trailing_average(history.train_loss, smooth), color="tab:blue",
                    lw=2, label=f"training (mean of the last {smooth} steps)")
    if len(history.val_steps):
        # Validation is measured only at the dots; the thin dashed line just guides the eye.
        ax.plot(history.val_steps, history.val_loss, "o--", color="tab:orange", lw=1, ms=6,
                label=f"validation ({validation}, measured at the dots)")
    ax.set_xlabel("step")
    ax.set_ylabel(f"loss (nats per {unit})")
    ax.grid(alpha=0.3)
    ax.legend()
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_finetune_comparison(names, trainable, seconds, results, *, result_label: str,
                             title: str | None = None, axes=None):
    """Two panels: each method's result against its trainable parameters (log scale), and its
    wall time.

    Args:
      names: method names (N).
      trainable: trainable parameters of each method (N ints > 0).
      seconds: wall time of each method in seconds (N).
      results: each method's result (N numbers, e.g. test accuracy).
      result_label: y-axis label of the result, with its unit.
      title: figure title.
      axes: two matplotlib axes to draw into (default: a new figure).

    Returns:
      the matplotlib ``Figure``.

    Raises:
      ValueError: if the lists differ in length or a trainable count is not > 0.
    """
    import matplotlib.pyplot as plt

    n = len(names)
    if not len(trainable) == len(seconds) == len(results) == n:
        raise ValueError("names, trainable, seconds and results must have the same length; got "
                         f"{n}, {len(trainable)}, {len(seconds)}, {len(results)}.")
    if any(t <= 0 for t in trainable):
        raise ValueError(f"trainable counts must be > 0 (log scale); got {list(trainable)}.")
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    ax_result, ax_time = axes
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    seen: dict[tuple, int] = {}  # methods at the same point get their labels stacked
    for i, (name, t, r) in enumerate(zip(names, trainable, results, strict=True)):
        k = seen[(t, r)] = seen.get((t, r), -1) + 1
        ax_result.scatter([t], [r], s=60 + 60 * k, color=colours[i % len(colours)],
                          zorder=3 - k, alpha=0.8)
        ax_result.annotate(name, (t, r), textcoords="offset points", xytext=(8, 4 - 12 * k),
                           fontsize=9)
    ax_result.set_xscale("log")
    ax_result.set_xlim(min(trainable) / 3, max(trainable) * 3)  # room for the labels
    ax_result.xaxis.set_minor_formatter(plt.NullFormatter())  # minor labels collide
    ax_result.set_xlabel("trainable parameters (log scale)")
    ax_result.set_ylabel(result_label)
    ax_result.set_title("result vs trainable parameters")
    ax_result.grid(alpha=0.3)
    y = np.arange(n)
    ax_time.barh(y, seconds, color=[colours[i % len(colours)] for i in range(n)])
    ax_time.set_yticks(y)
    ax_time.set_yticklabels(names)
    ax_time.invert_yaxis()
    ax_time.set_xlabel("wall time (s)")
    ax_time.set_title("training time")
    fig = ax_result.figure
    if title:
        fig.suptitle(title)
    return fig
