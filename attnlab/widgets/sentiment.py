"""Notebook 09: type a sentence and see a fine-tuned classifier's label and its class
probabilities (:func:`sentiment_predictor`).
"""

from __future__ import annotations

import html

import ipywidgets as widgets
import numpy as np

__all__ = ["SentimentPredictor", "sentiment_predictor"]


class SentimentPredictor(widgets.VBox):
    """A text box; as you type, a sentence classifier's label and probabilities appear.

    Attributes:
      text: the ``Text`` box; set its ``.value`` to classify another sentence.
      output: ``HTML`` with the predicted label and one bar per class.
      label: the predicted class name, or ``None`` when the text cannot be classified.
      probability: the predicted class's probability (float), or ``None``.
      probs: ``{class name: probability}`` for the current text (empty when it cannot be read).
    """

    def __init__(self, classifier, tokenizer, classes, text: str) -> None:
        self.classifier, self.tokenizer, self.classes = classifier, tokenizer, tuple(classes)
        self.label: str | None = None
        self.probability: float | None = None
        self.probs: dict[str, float] = {}
        self.text = widgets.Text(value=text, description="sentence", continuous_update=True,
                                 layout=widgets.Layout(width="90%"))
        self.output = widgets.HTML(value="")
        self.text.observe(self._on_change, names="value")
        super().__init__(children=[self.text, self.output])
        self._render(text)

    def _on_change(self, change: dict) -> None:
        self._render(change["new"])

    def _render(self, text: str) -> None:
        from attnlab.finetune import predict_proba

        try:
            if not text:
                raise ValueError("Type a sentence in the box.")
            probs = predict_proba(self.classifier, self.tokenizer, [text])[0]
        except ValueError as error:
            self.label = self.probability = None
            self.probs = {}
            self.output.value = f"<i>{html.escape(str(error))}</i>"
            return
        best = int(np.argmax(probs))
        self.label, self.probability = self.classes[best], float(probs[best])
        self.probs = {c: float(p) for c, p in zip(self.classes, probs, strict=True)}
        colours = {"negative": "#d62728", "positive": "#2ca02c"}
        rows = "".join(
            f'<tr><td style="text-align: right; padding-right: 8px;">{html.escape(c)}</td>'
            f'<td style="width: 320px;"><div style="background: {colours.get(c, "#1f77b4")}; '
            f'height: 14px; width: {max(p * 100, 0.5):.1f}%;"></div></td>'
            f'<td style="padding-left: 8px;">{p:6.1%}</td></tr>'
            for c, p in self.probs.items())
        self.output.value = (f"<div><b>{html.escape(self.label)}</b> "
                             f"({self.probability:.1%})</div><table>{rows}</table>")


def sentiment_predictor(classifier, tokenizer, classes=("negative", "positive"), *,
                        text: str = "The soup was lovely.") -> SentimentPredictor:
    """Type a sentence and see the classifier's predicted label and its probability.

    Args:
      classifier: a trained :class:`attnlab.finetune.SequenceClassifier`.
      tokenizer: the tokenizer of its body.
      classes: the class names, in label order (as many as the classifier has).
      text: the starting sentence.

    Returns:
      a :class:`SentimentPredictor` (an ``ipywidgets.VBox``).

    Raises:
      ValueError: if ``classes`` does not have one name per class.
    """
    if len(classes) != classifier.n_classes:
        raise ValueError(f"classes must name the {classifier.n_classes} classes; got {classes!r}.")
    return SentimentPredictor(classifier, tokenizer, classes, text)
