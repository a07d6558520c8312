"""Notebook 07: a slider over training steps that shows the text the model wrote at each
step (:func:`sample_timeline`).
"""

from __future__ import annotations

import html
from collections.abc import Mapping

import ipywidgets as widgets
import numpy as np

__all__ = ["SampleTimeline", "sample_timeline"]


class SampleTimeline(widgets.VBox):
    """A slider over training steps that shows the text the model wrote at the chosen step.

    Attributes:
      slider: ``SelectionSlider`` whose options are the steps (ints, ascending); set its
        ``.value`` to a step to show that step's sample.
      output: ``HTML`` holding the step, its validation loss (if known) and the sample.
      samples: the ``{step: text}`` mapping shown, sorted by step.
    """

    def __init__(
        self,
        samples: Mapping[int, str],
        val_loss: Mapping[int, float] | None = None,
        prompt: str | None = None,
    ) -> None:
        self.samples = dict(sorted(samples.items()))
        self.val_loss = dict(val_loss or {})
        self.prompt = prompt
        steps = list(self.samples)
        self.slider = widgets.SelectionSlider(
            options=steps,
            value=steps[-1],
            description="step",
            continuous_update=True,
            layout=widgets.Layout(width="90%"),
        )
        self.output = widgets.HTML(value="")
        self.slider.observe(self._on_change, names="value")
        super().__init__(children=[self.slider, self.output])
        self._render(steps[-1])

    def _on_change(self, change: dict) -> None:
        self._render(change["new"])

    def _render(self, step: int) -> None:
        text = self.samples[step]
        loss = self.val_loss.get(step)
        heading = f"step {step}" + (
            f" · validation loss {loss:.3f} nats/char" if loss is not None else ""
        )
        if self.prompt and text.startswith(self.prompt):  # the prompt in bold, the rest as written
            body = f"<b>{html.escape(self.prompt)}</b>{html.escape(text[len(self.prompt) :])}"
        else:
            body = html.escape(text)
        self.output.value = (
            f"<div><i>{heading}</i></div>"
            f'<pre style="white-space: pre-wrap; margin: 4px 0;">{body}</pre>'
        )


def sample_timeline(
    samples: Mapping[int, str],
    *,
    val_loss: Mapping[int, float] | None = None,
    prompt: str | None = None,
) -> SampleTimeline:
    """Slider over training steps showing the sample the model wrote at each step.

    Args:
      samples: ``{step: text}``, e.g. filled by a ``train(..., callback=...)`` that generates a
        sample after each validation. At least one entry.
      val_loss: optional ``{step: validation loss in nats/char}`` shown above the sample.
      prompt: optional prompt that starts every sample; it is shown in bold.

    Returns:
      a :class:`SampleTimeline` (an ``ipywidgets.VBox``), starting at the last step.

    Raises:
      ValueError: if ``samples`` is empty.
      TypeError: if a step is not an int or a sample is not a str.
    """
    if not samples:
        raise ValueError("samples is empty; pass {step: text} with at least one entry.")
    for step, text in samples.items():
        if isinstance(step, bool) or not isinstance(step, int | np.integer):
            raise TypeError(f"samples keys must be int steps; got {step!r}.")
        if not isinstance(text, str):
            raise TypeError(f"samples[{step}] must be a str; got {type(text).__name__}.")
    return SampleTimeline({int(k): v for k, v in samples.items()}, val_loss, prompt)
