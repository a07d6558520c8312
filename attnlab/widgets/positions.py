"""Notebook 05: sliders over the sinusoidal position table: one dimension over all
positions, and the whole vector of one position (:func:`positional_encoding_explorer`).
"""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from attnlab.widgets._common import _png

__all__ = ["PositionalEncodingExplorer", "positional_encoding_explorer"]


class PositionalEncodingExplorer(widgets.VBox):
    """Sliders for position p, dimension j and ``d_model``; shows the sinusoidal table there.

    Left panel: dimension j as a curve over all positions, with p marked. Right panel: the
    whole vector of position p, dimension j highlighted.

    Attributes:
      position, dimension, d_model: ``IntSlider`` controls; set ``.value`` to move them
        (``dimension`` is kept below ``d_model``).
      image: ``Image`` with the two panels (PNG).
      readout: ``HTML`` with the formula, its value and the wavelength.
      encoding: the current ``(max_position, d_model)`` table.
      value: ``encoding[p, j]``.
      wavelength: positions per full cycle of dimension j, ``2π · base^(2i/d_model)``,
        ``i = j // 2``.
    """

    def __init__(self, max_position: int, position: int, dimension: int, d_model: int,
                 base: float) -> None:
        self.max_position, self.base = max_position, base
        self.position = widgets.IntSlider(value=position, min=0, max=max_position - 1,
                                          description="position p")
        self.d_model = widgets.IntSlider(value=d_model, min=2, max=256, step=2,
                                         description="d_model")
        self.dimension = widgets.IntSlider(value=dimension, min=0, max=d_model - 1,
                                           description="dimension j")
        self.image = widgets.Image(format="png")
        self.readout = widgets.HTML(value="")
        for control in (self.position, self.dimension, self.d_model):
            control.observe(self._on_change, names="value")
        super().__init__(children=[self.position, self.dimension, self.d_model, self.readout,
                                   self.image])
        self._render()

    def _on_change(self, change: dict) -> None:
        if change["owner"] is self.d_model:
            # Lowering max also lowers the value if needed (and fires its own render).
            self.dimension.max = self.d_model.value - 1
        self._render()

    def _render(self) -> None:
        from matplotlib.figure import Figure

        from attnlab.positional import sinusoidal_encoding

        p, j, d = self.position.value, self.dimension.value, self.d_model.value
        j = min(j, d - 1)
        self.encoding = np.asarray(sinusoidal_encoding(self.max_position, d, self.base))
        self.value = float(self.encoding[p, j])
        i = j // 2
        self.wavelength = 2 * np.pi * self.base ** (2 * i / d)
        kind = "sin" if j % 2 == 0 else "cos"
        self.readout.value = (
            f"PE[{p}, {j}] = {kind}({p} / {self.base:g}<sup>{2 * i}/{d}</sup>) = "
            f"<b>{self.value:+.3f}</b> · dimension {j} is the {kind} of pair i = {i}; it "
            f"repeats every {self.wavelength:,.1f} positions"
        )
        fig = Figure(figsize=(10, 3.2))
        left, right = fig.subplots(1, 2)
        left.plot(self.encoding[:, j], color="tab:blue")
        left.plot([p], [self.value], "o", color="tab:red")
        left.set_xlabel("position p")
        left.set_ylabel(f"PE[p, {j}]")
        left.set_ylim(-1.1, 1.1)
        left.set_title(f"dimension {j} over positions")
        colors = ["tab:red" if k == j else "tab:gray" for k in range(d)]
        right.bar(range(d), self.encoding[p], color=colors, width=1.0)
        right.set_xlabel("dimension j")
        right.set_ylabel(f"PE[{p}, j]")
        right.set_ylim(-1.1, 1.1)
        right.set_title(f"the vector of position {p} (d_model = {d})")
        fig.tight_layout()
        self.image.value = _png(fig)


def positional_encoding_explorer(
    *, max_position: int = 200, position: int = 10, dimension: int = 0, d_model: int = 64,
    base: float = 10000.0,
) -> PositionalEncodingExplorer:
    """Sliders over the sinusoidal position table: position, dimension and ``d_model``.

    Args:
      max_position: number of positions drawn (≥ 2).
      position: starting position, in ``[0, max_position)``.
      dimension: starting dimension, in ``[0, d_model)``.
      d_model: starting width, even, in ``[2, 256]``.
      base: the table's wavelength scale (10000 in the paper).

    Returns:
      a :class:`PositionalEncodingExplorer` (an ``ipywidgets.VBox``).

    Raises:
      ValueError: if an argument is out of range.
    """
    if not isinstance(max_position, int) or max_position < 2:
        raise ValueError(f"max_position must be an integer >= 2; got {max_position!r}.")
    if not isinstance(d_model, int) or d_model % 2 or not 2 <= d_model <= 256:
        raise ValueError(f"d_model must be an even integer in [2, 256]; got {d_model!r}.")
    if not isinstance(position, int) or not 0 <= position < max_position:
        raise ValueError(f"position must be an integer in [0, {max_position}); got {position!r}.")
    if not isinstance(dimension, int) or not 0 <= dimension < d_model:
        raise ValueError(f"dimension must be an integer in [0, {d_model}); got {dimension!r}.")
    if not base > 0:
        raise ValueError(f"base must be > 0; got {base!r}.")
    return PositionalEncodingExplorer(max_position, position, dimension, d_model, float(base))
