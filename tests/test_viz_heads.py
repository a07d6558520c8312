"""Figures of notebook 05: a grid of attention heads and the position table."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from attnlab.positional import sinusoidal_encoding  # noqa: E402
from attnlab.viz import char_labels, plot_attention_heads, plot_positional_encoding  # noqa: E402


def _weights(H, T, seed=0):
    w = np.tril(np.random.default_rng(seed).random((H, T, T)))
    return w / w.sum(-1, keepdims=True)


def test_char_labels_make_whitespace_visible():
    assert char_labels("a b\n\tc") == ["a", "␣", "b", "⏎", "⇥", "c"]


@pytest.mark.parametrize("H,ncols,rows", [(4, None, 1), (6, 3, 2), (3, 2, 2)])
def test_one_heatmap_per_head_with_the_tokens_on_both_axes(H, ncols, rows):
    labels = char_labels("ab c")
    fig = plot_attention_heads(_weights(H, 4), labels, ncols=ncols, title="layer 0")
    heads = [ax for ax in fig.axes if ax.get_visible() and ax.get_title().startswith("head")]
    assert [ax.get_title() for ax in heads] == [f"head {h}" for h in range(H)]
    for ax in heads:
        assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "b", "␣", "c"]
        assert [t.get_text() for t in ax.get_yticklabels()] == ["a", "b", "␣", "c"]
        assert ax.get_xlabel() and ax.get_ylabel()
    assert fig._suptitle.get_text() == "layer 0"
    assert len({round(ax.get_position().y0, 3) for ax in heads}) == rows
    plt.close(fig)


def test_heatmap_shows_the_weights_of_its_head():
    w = _weights(2, 5)
    fig = plot_attention_heads(w, list("abcde"), head_names=["prev", "self"])
    for ax, name, h in zip(fig.axes[:2], ["prev", "self"], range(2), strict=True):
        assert ax.get_title() == name
        np.testing.assert_allclose(ax.images[0].get_array(), w[h])
    plt.close(fig)


@pytest.mark.parametrize("shape,labels", [((4, 4), "abcd"), ((2, 3, 4), "abc"),
                                          ((2, 3, 3), "ab")])
def test_bad_shapes_or_labels_raise(shape, labels):
    with pytest.raises(ValueError):
        plot_attention_heads(np.zeros(shape), list(labels))


def test_position_table_heatmap_is_labelled_and_shows_the_table():
    pe = np.asarray(sinusoidal_encoding(50, 16))
    fig = plot_positional_encoding(pe, title="sinusoidal")
    ax = fig.axes[0]
    assert ax.get_title() == "sinusoidal"
    assert "position" in ax.get_ylabel() and "dimension" in ax.get_xlabel()
    np.testing.assert_allclose(ax.images[0].get_array(), pe)
    with pytest.raises(ValueError, match="2-D"):
        plot_positional_encoding(pe[0])
    plt.close(fig)
