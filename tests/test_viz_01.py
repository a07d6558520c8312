"""Figures of notebook 01: tokens per character against vocabulary size, and token embeddings
in 2-D. Each test reads back what the figure shows."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.colors as mcolors  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from attnlab.viz import plot_embedding_2d, plot_vocab_tradeoff  # noqa: E402

SERIES = {"characters": [(96, 1.0)], "BPE": [(1000, 0.33), (256, 0.48), (4000, 0.25)],
          "words": [(3733, 0.31)]}


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_tradeoff_plot_draws_each_series_sorted_by_vocabulary_size():
    fig = plot_vocab_tradeoff(SERIES)
    ax = fig.axes[0]
    lines = {line.get_label(): line for line in ax.get_lines()}
    assert set(lines) == set(SERIES)
    np.testing.assert_array_equal(lines["BPE"].get_xdata(), [256, 1000, 4000])
    np.testing.assert_array_equal(lines["BPE"].get_ydata(), [0.48, 0.33, 0.25])
    assert lines["BPE"].get_linewidth() > 0 and lines["words"].get_linewidth() == 0


def test_tradeoff_plot_has_labelled_log_axis_title_and_point_labels():
    ax = plot_vocab_tradeoff(SERIES, text_name="the last 10%").axes[0]
    assert ax.get_xscale() == "log"
    assert "vocabulary size" in ax.get_xlabel()
    assert ax.get_ylabel() == "tokens per character of the last 10%"
    assert ax.get_title() == "A bigger vocabulary makes shorter sequences"
    assert ax.get_ylim()[0] == 0
    annotations = sorted(t.get_text() for t in ax.texts)
    assert annotations == sorted(["96", "256", "1,000", "4,000", "3,733"])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == list(SERIES)


def test_tradeoff_plot_rejects_empty_or_non_positive_points():
    with pytest.raises(ValueError, match="series is empty"):
        plot_vocab_tradeoff({})
    with pytest.raises(ValueError, match="series\\['BPE'\\]"):
        plot_vocab_tradeoff({"BPE": [(0, 0.5)]})


def test_embedding_scatter_places_and_labels_every_token_by_class():
    points = np.array([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0], [6.0, 7.0]])
    labels = ["a", "B", " ", "\n"]
    groups = ["lowercase", "uppercase", "whitespace", "whitespace"]
    fig = plot_embedding_2d(points, labels, groups, title="t", xlabel="PC 1", ylabel="PC 2")
    ax = fig.axes[0]
    texts = {t.get_text(): t for t in ax.texts}
    assert set(texts) == {"a", "B", "␣", "⏎"}
    assert texts["␣"].xy == (4.0, 5.0)
    collections = ax.collections
    assert len(collections) == 3  # one scatter per class
    np.testing.assert_array_equal(collections[2].get_offsets(), points[2:])
    assert mcolors.same_color(collections[0].get_facecolor()[0][:3], "tab:blue")
    assert mcolors.same_color(texts["B"].get_color(), "tab:orange")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "lowercase (1)", "uppercase (1)", "whitespace (2)"]
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("PC 1", "PC 2", "t")


def test_embedding_scatter_without_groups_and_with_new_group_names():
    ax = plot_embedding_2d(np.zeros((2, 2)), ["x", "y"]).axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["token (2)"]
    ax = plot_embedding_2d(np.zeros((2, 2)), ["x", "y"], ["vowel", "consonant"]).axes[0]
    colours = [tuple(c.get_facecolor()[0]) for c in ax.collections]
    assert colours[0] != colours[1]


def test_embedding_scatter_rejects_mismatched_input():
    with pytest.raises(ValueError, match=r"shape \(N, 2\)"):
        plot_embedding_2d(np.zeros((3, 3)), ["a", "b", "c"])
    with pytest.raises(ValueError, match="labels has 2 entries"):
        plot_embedding_2d(np.zeros((3, 2)), ["a", "b"])
    with pytest.raises(ValueError, match="groups has 1 entries"):
        plot_embedding_2d(np.zeros((3, 2)), ["a", "b", "c"], ["x"])
