"""Small labelled matrices: the printed table and the annotated heatmap of notebook 04."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

from attnlab.viz import format_table, plot_matrix


def test_format_table_aligns_labels_and_numbers():
    text = format_table([[1.0, -0.5], [2.25, 3.0]], ["the", "novel"], ["q0", "q1"], digits=2,
                        title="Q")
    lines = text.splitlines()
    assert lines[0] == "Q"
    assert lines[1].split() == ["q0", "q1"]
    assert lines[2].split() == ["the", "1.00", "-0.50"]
    assert lines[3].split() == ["novel", "2.25", "3.00"]
    assert len({len(line) for line in lines[1:]}) == 1  # every row as wide as the header


def test_format_table_shows_minus_infinity_and_one_row():
    text = format_table(np.array([0.5, -np.inf]), ["score"], ["a", "b"], digits=1)
    assert text.splitlines()[1].split() == ["score", "0.5", "-inf"]


def test_format_table_rejects_wrong_labels():
    with pytest.raises(ValueError, match="row_labels has 1 labels"):
        format_table(np.zeros((2, 2)), ["x"])
    with pytest.raises(ValueError, match="1-D or 2-D"):
        format_table(np.zeros((2, 2, 2)))


@pytest.mark.parametrize(
    "labels",
    [["she", "read", "it"], [3, 7, 11], list(np.array(["she", "read", "it"]))],
    ids=["str", "int", "numpy str"],
)
def test_plot_matrix_shows_label_text_on_both_axes(labels):
    fig = plot_matrix(np.arange(9.0).reshape(3, 3) - 4, labels, labels, title="scores",
                      xlabel="key", ylabel="query")
    ax = fig.axes[0]
    expected = [str(label) for label in labels]
    assert [t.get_text() for t in ax.get_xticklabels()] == expected
    assert [t.get_text() for t in ax.get_yticklabels()] == expected
    assert ax.get_title() == "scores"
    assert ax.get_xlabel() == "key" and ax.get_ylabel() == "query"
    plt.close(fig)


def test_plot_matrix_writes_values_and_minus_infinity_in_the_cells():
    values = np.array([[1.234, -np.inf], [0.0, -2.5]])
    fig = plot_matrix(values, ["a", "b"], ["c", "d"], digits=1)
    texts = [t.get_text() for t in fig.axes[0].texts]
    assert texts == ["1.2", "-inf", "0.0", "-2.5"]  # row by row
    plt.close(fig)


def test_plot_matrix_rejects_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        plot_matrix(np.zeros(3))
    with pytest.raises(ValueError, match="col_labels has 2 labels"):
        plot_matrix(np.zeros((2, 3)), ["a", "b"], ["x", "y"])


def test_plot_matrix_colour_scale_can_be_fixed():
    fig = plot_matrix(np.ones((2, 2)), cmap="viridis", vmin=0, vmax=1)  # an all-True mask
    assert fig.axes[0].images[0].get_clim() == (0, 1)
    plt.close(fig)
    fig = plot_matrix(np.array([[-1.0, 3.0]]))  # diverging default: symmetric around 0
    assert fig.axes[0].images[0].get_clim() == (-3.0, 3.0)
    plt.close(fig)
