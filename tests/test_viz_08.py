"""viz.plot_next_token_distribution: what the bars, colours, ticks and texts show."""

import matplotlib.colors as mcolors
import numpy as np
import pytest

from attnlab.viz import plot_next_token_distribution

LABELS = ["a", " ", "\n", "b", "c", "d", "e", "f"]
PROBS = np.array([0.05, 0.30, 0.10, 0.02, 0.25, 0.08, 0.12, 0.08])  # sums to 1; 0.08 twice
KEPT = np.array([False, True, False, False, True, False, True, False])  # 0.30, 0.25, 0.12


def _parts(fig):
    ax = fig.axes[0]
    return ax, ax._attnlab_next_token


def test_bars_are_the_most_likely_tokens_in_descending_order():
    fig = plot_next_token_distribution(PROBS, LABELS, KEPT, top=5)
    ax, parts = _parts(fig)
    heights = [bar.get_height() for bar in parts["bars"]]
    assert heights == pytest.approx([0.30, 0.25, 0.12, 0.10, 0.08])
    # the two tokens at 0.08 tie: the one with the smaller id (5, "d") is shown first
    assert [t.get_text() for t in ax.get_xticklabels()] == ["␣", "c", "e", "⏎", "d"]


def test_kept_bars_are_coloured_and_filtered_bars_grey():
    fig = plot_next_token_distribution(PROBS, LABELS, KEPT, top=8)
    _, parts = _parts(fig)
    colors = [mcolors.to_hex(bar.get_facecolor()) for bar in parts["bars"]]
    kept_color, grey = mcolors.to_hex("tab:blue"), mcolors.to_hex("#c8c8c8")
    # shown order: 0.30 (kept), 0.25 (kept), 0.12 (kept), 0.10, 0.08, 0.08, 0.05, 0.02
    assert colors == [kept_color] * 3 + [grey] * 5


def test_the_kept_mass_is_written_on_the_chart():
    fig = plot_next_token_distribution(PROBS, LABELS, KEPT)
    _, parts = _parts(fig)
    assert parts["summary"].get_text() == "kept 3 of 8 tokens: 67.0% of the mass"


def test_ticks_mark_the_renormalised_probabilities_of_kept_tokens_only():
    fig = plot_next_token_distribution(PROBS, LABELS, KEPT, top=4)
    _, parts = _parts(fig)
    y = np.asarray(parts["ticks"].get_ydata(), dtype=float)
    np.testing.assert_allclose(y[:3], np.array([0.30, 0.25, 0.12]) / 0.67)
    assert np.isnan(y[3])  # a filtered token has no tick


def test_kept_tokens_beyond_the_shown_bars_are_counted():
    kept = KEPT.copy()
    kept[3] = True  # the least likely token (0.02), not among the top 4
    fig = plot_next_token_distribution(PROBS, LABELS, kept, top=4)
    _, parts = _parts(fig)
    assert "(1 kept beyond the 4 shown)" in parts["summary"].get_text()


def test_no_mask_keeps_everything_and_fewer_tokens_than_top_shows_all():
    fig = plot_next_token_distribution(PROBS, LABELS, None, top=24)
    ax, parts = _parts(fig)
    assert len(parts["bars"]) == 8
    assert "kept 8 of 8 tokens: 100.0% of the mass" == parts["summary"].get_text()
    assert ax.get_ylabel() == "probability"
    assert ax.get_xlabel() and ax.get_title() == "next-token distribution"


def test_redrawing_on_the_same_axes_updates_the_same_bars():
    fig = plot_next_token_distribution(PROBS, LABELS, KEPT, top=5)
    ax, parts = _parts(fig)
    bars = list(parts["bars"])
    flatter = np.full(8, 1 / 8)
    again = plot_next_token_distribution(flatter, LABELS, np.ones(8, bool), ax=ax, top=5)
    assert again is fig
    assert ax._attnlab_next_token["bars"] == bars  # the same artists, not new ones
    assert [bar.get_height() for bar in bars] == pytest.approx([0.125] * 5)
    assert len(ax.patches) == 5
    assert ax._attnlab_next_token["summary"].get_text().startswith("kept 8 of 8 tokens")
    assert ax.get_ylim()[1] >= 0.125


def test_the_y_axis_covers_the_renormalised_ticks():
    kept = np.zeros(8, bool)
    kept[1] = True  # one token kept: renormalised to 1.0
    fig = plot_next_token_distribution(PROBS, LABELS, kept)
    assert fig.axes[0].get_ylim()[1] >= 1.0


def test_bad_input_is_named():
    with pytest.raises(ValueError, match="probs must be 1-D"):
        plot_next_token_distribution(PROBS[None], LABELS, KEPT)
    with pytest.raises(ValueError, match="labels has 3 entries; probs has V = 8"):
        plot_next_token_distribution(PROBS, LABELS[:3], KEPT)
    with pytest.raises(ValueError, match="kept_mask must be a bool array of shape"):
        plot_next_token_distribution(PROBS, LABELS, KEPT[:4])
    with pytest.raises(ValueError, match="kept_mask must be a bool array"):
        plot_next_token_distribution(PROBS, LABELS, KEPT.astype(int))
    with pytest.raises(ValueError, match="probabilities, not logits"):
        plot_next_token_distribution(PROBS - 0.1, LABELS, KEPT)
    with pytest.raises(ValueError, match="probabilities, not logits"):
        plot_next_token_distribution(np.where(KEPT, np.nan, PROBS), LABELS, KEPT)
    with pytest.raises(ValueError, match="keeps no probability"):
        plot_next_token_distribution(PROBS, LABELS, np.zeros(8, bool))
    with pytest.raises(ValueError, match="top must be an integer >= 1"):
        plot_next_token_distribution(PROBS, LABELS, KEPT, top=0)
