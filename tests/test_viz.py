"""attnlab.viz: the figures say what they show, and what they draw can be read back."""

import matplotlib

matplotlib.use("Agg")  # no display needed; must come before pyplot is imported

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from attnlab.train import History  # noqa: E402
from attnlab.viz import plot_attention, plot_history  # noqa: E402
from attnlab.viz.training import _trailing_average  # noqa: E402


def tick_texts(labels):
    return [label.get_text() for label in labels]


# --- the loss curve's smoothed line ---------------------------------------------------------


def test_trailing_average_known_answer():
    np.testing.assert_allclose(_trailing_average([4.0, 2.0, 0.0, 6.0], 2), [4.0, 3.0, 1.0, 3.0])
    np.testing.assert_allclose(_trailing_average([4.0, 2.0, 0.0, 6.0], 3), [4.0, 3.0, 2.0, 8 / 3])


def test_trailing_average_matches_a_loop_and_stays_inside_its_window():
    values = np.random.default_rng(0).normal(size=57)
    window = 10
    smoothed = _trailing_average(values, window)
    for i in range(len(values)):
        seen = values[max(0, i - window + 1) : i + 1]  # this point and the ones before it
        assert smoothed[i] == pytest.approx(seen.mean())
        assert seen.min() <= smoothed[i] <= seen.max()


def falling_history(n=60):
    """A loss that falls steeply: a centred average would start below every raw point."""
    steps = list(range(1, n + 1))
    history = History(steps=steps, train_loss=[4.5 * 0.97**s for s in steps])
    history.val_steps, history.val_loss = [0, n], [4.4, 4.5 * 0.97**n]
    return history


def test_smoothed_loss_never_starts_below_the_raw_points():
    history = falling_history()
    fig = plot_history(history, smooth=20)
    raw, smoothed = (line for line in fig.axes[0].lines if line.get_label().startswith("training"))
    np.testing.assert_array_equal(smoothed.get_xdata(), history.steps)
    y = np.asarray(smoothed.get_ydata())
    assert y[0] == pytest.approx(history.train_loss[0])  # the first point is itself
    # A falling loss: the trailing mean lags, so it is never below the point it is drawn at.
    assert np.all(y >= np.asarray(raw.get_ydata()) - 1e-12)
    assert "last 20 steps" in smoothed.get_label()


def test_plot_history_labels_its_axes_and_marks_validation_points():
    history = falling_history()
    fig = plot_history(history, title="a run", unit="character")
    ax = fig.axes[0]
    assert ax.get_xlabel() == "step"
    assert ax.get_ylabel() == "loss (nats per character)"
    assert ax.get_title() == "a run"
    (val,) = (line for line in ax.lines if line.get_label().startswith("validation"))
    np.testing.assert_array_equal(val.get_xdata(), history.val_steps)
    assert val.get_marker() == "o"


def test_smooth_one_draws_only_the_raw_line():
    fig = plot_history(falling_history(), smooth=1)
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert labels == ["training (each step's batch)", "validation (held-out text, measured at the dots)"]


def test_plot_history_names_what_validation_was_measured_on():
    fig = plot_history(falling_history(), validation="the test dates")
    labels = [line.get_label() for line in fig.axes[0].lines]
    assert "validation (the test dates, measured at the dots)" in labels


@pytest.mark.parametrize("smooth", [0, -3, 2.5, True])
def test_plot_history_rejects_bad_smooth(smooth):
    with pytest.raises(ValueError, match="smooth"):
        plot_history(falling_history(), smooth=smooth)


# --- attention heatmaps ---------------------------------------------------------------------


def test_int_labels_show_their_text():
    fig = plot_attention([[1.0]], [0], [0])
    ax = fig.axes[0]
    fig.canvas.draw()
    assert tick_texts(ax.get_yticklabels()) == ["0"]
    assert tick_texts(ax.get_xticklabels()) == ["0"]


def test_str_int_and_numpy_labels_show_their_text_on_both_axes():
    weights = np.full((3, 3), 1 / 3)
    labels = ["the", np.str_("cat"), 7]
    keys = [np.int64(5), np.str_("sat"), "on"]
    fig = plot_attention(weights, labels, keys)
    ax = fig.axes[0]
    fig.canvas.draw()
    assert tick_texts(ax.get_yticklabels()) == ["the", "cat", "7"]
    assert tick_texts(ax.get_xticklabels()) == ["5", "sat", "on"]


def test_numpy_string_array_labels():
    tokens = np.array(["a", "b"])  # elements are numpy.str_
    fig = plot_attention(np.eye(2), tokens, tokens)
    fig.canvas.draw()
    assert tick_texts(fig.axes[0].get_xticklabels()) == ["a", "b"]


def test_invisible_characters_are_shown():
    fig = plot_attention(np.eye(4), [" ", "\n", " the", "a b"], "ab c")
    ax = fig.axes[0]
    fig.canvas.draw()
    assert tick_texts(ax.get_yticklabels()) == ["␣", "\\n", "␣the", "a b"]
    assert tick_texts(ax.get_xticklabels()) == ["a", "b", "␣", "c"]


def test_heatmap_draws_the_weights_with_labelled_axes_title_and_colourbar():
    weights = np.array([[1.0, 0.0], [0.25, 0.75]])
    fig = plot_attention(weights, ["x", "y"], ["x", "y"])
    ax, cbar_ax = fig.axes
    np.testing.assert_array_equal(np.asarray(ax.images[0].get_array()), weights)
    assert ax.get_xlabel().startswith("key position / token")
    assert ax.get_ylabel().startswith("query position / token")
    assert ax.get_title() == "attention weights (2 queries × 2 keys)"
    assert cbar_ax.get_ylabel() == "attention weight"


def test_without_labels_positions_are_numbered():
    fig = plot_attention(np.full((2, 3), 1 / 3), title="head 0")
    ax = fig.axes[0]
    fig.canvas.draw()
    assert tick_texts(ax.get_yticklabels()) == ["0", "1"]
    assert tick_texts(ax.get_xticklabels()) == ["0", "1", "2"]
    assert ax.get_title() == "head 0"


def test_draws_on_a_given_axes_and_can_annotate_and_skip_the_colourbar():
    fig, (left, right) = plt.subplots(1, 2)
    weights = np.array([[1.0, 0.0], [0.5, 0.5]])
    assert plot_attention(weights, ax=right, annotate=True, colorbar=False, vmax=1.0) is fig
    assert len(fig.axes) == 2 and not left.images and right.images
    assert [t.get_text() for t in right.texts] == ["1.00", "0.00", "0.50", "0.50"]
    assert right.images[0].get_clim() == (0.0, 1.0)


@pytest.mark.parametrize(
    "weights,queries,keys,match",
    [
        (np.ones(3), None, None, "2-D"),
        (np.ones((1, 2, 2)), None, None, "2-D"),
        (np.ones((2, 3)) / 3, ["a"], None, "query_labels has 1 labels; weights has 2"),
        (np.ones((2, 3)) / 3, None, ["a", "b"], "key_labels has 2 labels; weights has 3"),
        ([[np.nan, 1.0]], None, None, "NaN"),
    ],
)
def test_plot_attention_rejects_bad_input(weights, queries, keys, match):
    with pytest.raises(ValueError, match=match):
        plot_attention(weights, queries, keys)


def test_plot_attention_rejects_a_label_that_is_not_a_sequence():
    with pytest.raises(TypeError, match="query_labels"):
        plot_attention([[1.0]], 5)
