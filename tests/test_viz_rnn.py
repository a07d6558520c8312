"""Figures of notebooks 02 and 03, read back from matplotlib: hidden states, gradient decay,
accuracy by length, attention alignments and timings."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from attnlab.viz import (  # noqa: E402
    plot_accuracy_by_length,
    plot_alignment,
    plot_gradient_decay,
    plot_hidden_states,
    plot_timings,
)


def tick_texts(ticks):
    return [t.get_text() for t in ticks]


def test_hidden_states_put_units_down_and_steps_across():
    states = np.linspace(-1, 1, 12).reshape(4, 3)  # S = 4 steps, H = 3 units
    fig = plot_hidden_states(states, ["a", " ", "b", "c"])
    ax, bar = fig.axes
    np.testing.assert_allclose(ax.images[0].get_array(), states.T)
    assert tick_texts(ax.get_xticklabels()) == ["a", "␣", "b", "c"]
    assert "input step" in ax.get_xlabel() and ax.get_ylabel() == "hidden unit (of 3)"
    assert ax.get_title() and bar.get_ylabel() == "activation"
    assert ax.images[0].get_clim() == (-1.0, 1.0)  # tanh's range, whatever the data
    with pytest.raises(ValueError, match="tokens has 3 entries; states has 4 steps"):
        plot_hidden_states(states, ["a", "b", "c"])


def test_gradient_decay_plots_the_median_against_distance_on_a_log_scale():
    norms = np.array([[1e-6, 1e-3, 1.0], [1e-4, 1e-1, 3.0], [1e-5, 1e-2, 2.0]])  # B=3, S=3
    fig = plot_gradient_decay({"RNN": norms, "one curve": np.array([0.5, 0.6, 0.7])})
    ax = fig.axes[0]
    (rnn, single) = ax.get_lines()
    np.testing.assert_array_equal(rnn.get_xdata(), [2, 1, 0])  # step t is S-1-t steps back
    np.testing.assert_allclose(rnn.get_ydata(), [1e-5, 1e-2, 2.0])  # the median of the 3
    np.testing.assert_allclose(single.get_ydata(), [0.5, 0.6, 0.7])
    assert ax.get_yscale() == "log"
    assert "distance" in ax.get_xlabel() and "log scale" in ax.get_ylabel()
    assert len(ax.collections) == 1  # a quartile band for the batch only
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["RNN", "one curve"]
    with pytest.raises(ValueError, match="norms is empty"):
        plot_gradient_decay({})


def test_accuracy_by_length_in_percent_with_bin_labels():
    edges = [8, 12, 20, 65]
    fig = plot_accuracy_by_length(edges, {"plain": [1.0, 0.5, np.nan], "attention": [1, 1, 0.9]},
                                  counts=[10, 4, 0])
    ax = fig.axes[0]
    plain, attention = ax.get_lines()
    np.testing.assert_allclose(plain.get_ydata(), [100, 50, np.nan])
    np.testing.assert_allclose(attention.get_ydata(), [100, 100, 90])
    assert tick_texts(ax.get_xticklabels()) == ["8–11\n(n=10)", "12–19\n(n=4)", "20–64\n(n=0)"]
    assert ax.get_xlabel() == "source length (characters)"
    assert ax.get_ylabel() == "exact-match accuracy (%)"
    with pytest.raises(ValueError, match=r"expected \(3,\)"):
        plot_accuracy_by_length(edges, {"plain": [1.0, 0.5]})


def test_alignment_heatmap_names_its_axes_and_labels_every_character():
    weights = np.full((3, 4), 0.25)
    fig = plot_alignment(weights, list("3 Se"), list("202"))
    ax, bar = fig.axes
    assert tick_texts(ax.get_xticklabels()) == ["3", "␣", "S", "e"]
    assert tick_texts(ax.get_yticklabels()) == ["2", "0", "2"]
    assert ax.get_xlabel() == "source character (attended to)"
    assert ax.get_ylabel() == "output character (being written)"
    assert "output step" in ax.get_title() and "source character" in ax.get_title()
    assert bar.get_ylabel() == "attention weight"
    fig2, (left, right) = plt.subplots(1, 2)
    assert plot_alignment(weights, list("abcd"), list("xyz"), ax=right, title="one") is fig2
    assert right.get_title() == "one" and left.get_title() == ""
    with pytest.raises(ValueError, match="key_labels has 2 labels"):
        plot_alignment(weights, list("ab"), list("xyz"))


def test_a_long_flat_alignment_gets_a_flat_figure():
    """57 source characters by 10 output ones: the cells shrink to fit 12 inches of width, and
    the figure's height shrinks with them instead of leaving an empty band (it was 5.5 inches)."""
    fig = plot_alignment(np.full((10, 57), 1 / 57), ["a"] * 57, list("2045-01-17"))
    width, height = fig.get_size_inches()
    assert width <= 12.0 and height < 3.5
    small = plot_alignment(np.full((3, 4), 0.25), list("3 Se"), list("202"))
    np.testing.assert_allclose(small.get_size_inches(), (4.1, 3.0))  # 0.4 inch a cell, as before
    plt.close("all")


def test_timings_in_milliseconds_on_log_axes():
    result = {"length": np.array([16, 64]), "rnn_s": np.array([0.001, 0.004]),
              "attention_s": np.array([0.0005, 0.001])}
    ax = plot_timings(result).axes[0]
    rnn, attention = ax.get_lines()
    np.testing.assert_allclose(rnn.get_ydata(), [1.0, 4.0])
    np.testing.assert_allclose(attention.get_ydata(), [0.5, 1.0])
    assert ax.get_xscale() == ax.get_yscale() == "log"
    assert "ms" in ax.get_ylabel() and ax.get_xlabel() == "sequence length (steps)"
    with pytest.raises(ValueError, match="result lacks"):
        plot_timings({"length": [1]})
