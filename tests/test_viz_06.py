"""Figures of notebook 06: next-token bar chart and mask panels, read back from matplotlib."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from attnlab.viz import plot_masks, plot_next_token, readable_token  # noqa: E402


def tick_texts(ticks):
    return [t.get_text() for t in ticks]


def test_readable_token_spells_out_invisible_characters():
    assert readable_token(" ") == "␣ (space)"
    assert readable_token("\n") == "⏎ (newline)"
    assert readable_token("\t") == "⇥ (tab)"
    assert readable_token("a") == "a"
    assert readable_token(7) == "7"
    assert readable_token(np.str_("é")) == "é"


def test_next_token_bars_are_the_top_k_most_likely_first():
    labels = ["a", " ", "\n", "b", "c"]
    probs = np.array([0.1, 0.4, 0.3, 0.15, 0.05])
    fig = plot_next_token(probs, labels, k=3)
    ax = fig.axes[0]
    # the y-axis is inverted, so tick order top to bottom is the order of the labels
    assert tick_texts(ax.get_yticklabels()) == ["␣ (space)", "⏎ (newline)", "b"]
    widths = [patch.get_width() for patch in ax.patches]
    np.testing.assert_allclose(widths, [0.4, 0.3, 0.15])
    assert [t.get_text() for t in ax.texts] == ["40.0%", "30.0%", "15.0%"]
    assert ax.get_xlabel() == "probability of being the next token"
    assert ax.get_ylabel() == "next token"
    assert ax.get_title() == "The 3 most likely next tokens"
    assert ax.yaxis_inverted()


def test_next_token_accepts_integer_and_numpy_labels_and_k_above_v():
    fig = plot_next_token([0.2, 0.8], np.array([5, 6]), k=10, title="two tokens")
    ax = fig.axes[0]
    assert tick_texts(ax.get_yticklabels()) == ["6", "5"]
    assert ax.get_title() == "two tokens"


def test_next_token_draws_on_a_given_axes():
    fig, (left, right) = plt.subplots(1, 2)
    assert plot_next_token([0.5, 0.5], ["x", "y"], k=1, ax=right) is fig
    assert len(right.patches) == 1 and len(left.patches) == 0


@pytest.mark.parametrize(
    "probs,labels,k,message",
    [
        (np.ones((2, 2)), ["a", "b"], 1, "probs must be 1-D"),
        ([0.5, -0.1], ["a", "b"], 1, "finite and >= 0"),
        ([0.5, np.nan], ["a", "b"], 1, "finite and >= 0"),
        ([0.5, 0.5], ["a"], 1, "labels has 1 entries; probs has 2"),
        ([0.5, 0.5], ["a", "b"], 0, "k must be an integer >= 1"),
        ([0.5, 0.5], ["a", "b"], 2.0, "k must be an integer >= 1"),
    ],
)
def test_next_token_rejects_bad_input(probs, labels, k, message):
    with pytest.raises(ValueError, match=message):
        plot_next_token(probs, labels, k=k)


def test_mask_panels_show_titles_token_labels_and_the_masks():
    causal = np.tril(np.ones((3, 3), bool))
    cross = np.ones((2, 3), bool)
    fig = plot_masks(
        [("causal", causal, ["a", " ", "c"], ["a", " ", "c"]),
         ("cross", cross, ["x", "y"], ["a", "b", "c"])],
        title="who sees whom",
    )
    left, right = fig.axes[:2]
    assert left.get_title() == "causal" and right.get_title() == "cross"
    assert tick_texts(left.get_yticklabels()) == ["a", "␣ (space)", "c"]
    assert tick_texts(left.get_xticklabels()) == ["a", "␣ (space)", "c"]
    assert tick_texts(right.get_yticklabels()) == ["x", "y"]
    assert tick_texts(right.get_xticklabels()) == ["a", "b", "c"]
    np.testing.assert_array_equal(left.images[0].get_array(), causal)
    np.testing.assert_array_equal(right.images[0].get_array(), cross)
    assert left.get_xlabel() == "key (attended to)" and left.get_ylabel() == "query (attending)"
    assert fig._suptitle.get_text() == "who sees whom"
    legend = [t.get_text() for t in fig.legends[0].get_texts()]
    assert legend == ["may attend", "hidden (masked)"]


@pytest.mark.parametrize(
    "panels,message",
    [
        ([], "panels is empty"),
        ([("m", np.ones(3, bool), ["a"] * 3, ["a"] * 3)], "must be 2-D"),
        ([("m", np.ones((2, 3), bool), ["a"] * 3, ["a"] * 3)], "2 rows|query labels"),
    ],
)
def test_mask_panels_reject_bad_input(panels, message):
    with pytest.raises(ValueError, match=message):
        plot_masks(panels)
