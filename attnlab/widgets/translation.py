"""Notebooks 02 and 03: the test translations at a chosen input length, with each model's
accuracy there (:func:`length_explorer`), and an attention model's alignment between a
typed date and its translation (:func:`alignment_explorer`).
"""

from __future__ import annotations

import html

import ipywidgets as widgets
import numpy as np

from attnlab.widgets._common import _show_char

__all__ = [
    "AlignmentExplorer",
    "LengthExplorer",
    "alignment_explorer",
    "examples_at_length",
    "length_explorer",
]


def examples_at_length(sources, targets, predictions, length: int, *, n_examples: int = 6):
    """The test pairs whose source has exactly ``length`` characters, and each model's answers.

    Args:
      sources, targets: N source texts and their correct translations.
      predictions: ``{model name: N predicted texts}``.
      length: the source length to show (characters).
      n_examples: how many pairs to list (the first ones of that length).

    Returns:
      ``{"count": n, "accuracy": {name: fraction of the n pairs exactly right},
      "rows": [(source, target, {name: (prediction, correct)}), ...]}`` with at most
      ``n_examples`` rows. With n = 0 the accuracies are NaN and there are no rows.

    Raises:
      ValueError: if the lists differ in length or ``predictions`` is empty.
    """
    sources, targets = list(sources), list(targets)
    if not predictions:
        raise ValueError("predictions is empty; pass {model name: predicted texts}.")
    for name, predicted in predictions.items():
        if len(predicted) != len(sources) or len(targets) != len(sources):
            raise ValueError(f"sources, targets and predictions[{name!r}] must have the same "
                             f"length; got {len(sources)}, {len(targets)}, {len(predicted)}.")
    picked = [i for i, s in enumerate(sources) if len(s) == length]
    accuracy = {
        name: (float(np.mean([predicted[i] == targets[i] for i in picked])) if picked
               else float("nan"))
        for name, predicted in predictions.items()
    }
    rows = [(sources[i], targets[i],
             {name: (predicted[i], predicted[i] == targets[i])
              for name, predicted in predictions.items()})
            for i in picked[:n_examples]]
    return {"count": len(picked), "accuracy": accuracy, "rows": rows}


class LengthExplorer(widgets.VBox):
    """A slider over source lengths; shows each model's translations and accuracy at that length.

    Attributes:
      slider: ``SelectionSlider`` over the source lengths present in the data; set ``.value``.
      output: ``HTML`` with the accuracy line and a table of examples.
      state: the current :func:`examples_at_length` result.
    """

    def __init__(self, sources, targets, predictions, length: int, n_examples: int) -> None:
        self.sources, self.targets = list(sources), list(targets)
        self.predictions = {name: list(p) for name, p in predictions.items()}
        self.n_examples = n_examples
        lengths = sorted({len(s) for s in self.sources})
        self.slider = widgets.SelectionSlider(options=lengths, value=length,
                                              description="input length",
                                              style={"description_width": "initial"},
                                              layout=widgets.Layout(width="90%"))
        self.output = widgets.HTML(value="")
        self.slider.observe(self._on_change, names="value")
        super().__init__(children=[self.slider, self.output])
        self._render()

    def _on_change(self, change: dict) -> None:
        self._render()

    def _render(self) -> None:
        length = self.slider.value
        self.state = examples_at_length(self.sources, self.targets, self.predictions, length,
                                        n_examples=self.n_examples)
        summary = "; ".join(
            f"<b>{html.escape(name)}</b>: {acc:.0%} exactly right"
            for name, acc in self.state["accuracy"].items())
        cell = 'style="text-align: left; padding: 2px 10px; font-family: monospace;"'
        head = "".join(f"<th {cell}>{html.escape(name)}</th>" for name in self.predictions)
        rows = []
        for source, target, answers in self.state["rows"]:
            marks = "".join(
                f'<td {cell}><span style="color: {"#137333" if ok else "#b3261e"};">'
                f'{"✔" if ok else "✘"}</span> {html.escape(pred)}</td>'
                for pred, ok in answers.values())
            rows.append(f"<tr><td {cell}>{html.escape(source)}</td>"
                        f"<td {cell}>{html.escape(target)}</td>{marks}</tr>")
        self.output.value = (
            f"<div>{self.state['count']} test input{'s have' if self.state['count'] != 1 else ' has'} "
            f"{length} characters. {summary}</div>"
            f"<table><tr><th {cell}>input</th><th {cell}>correct</th>{head}</tr>"
            f"{''.join(rows)}</table>")


def length_explorer(sources, targets, predictions, *, length: int | None = None,
                    n_examples: int = 6) -> LengthExplorer:
    """Slide through input lengths and see how the models translate inputs of that length.

    Args:
      sources, targets: the test inputs and their correct outputs (N texts each).
      predictions: ``{model name: N predicted texts}``, e.g. from
        :func:`attnlab.rnn.translate_texts`.
      length: the starting length (default: the longest).
      n_examples: rows shown per length.

    Returns:
      a :class:`LengthExplorer` (an ``ipywidgets.VBox``).

    Raises:
      ValueError: if the lists do not match, are empty, or ``length`` is not a length of
        one of the sources.
    """
    sources = list(sources)
    if not sources:
        raise ValueError("sources is empty; pass at least one test input.")
    examples_at_length(sources, targets, predictions, 0)  # checks the lengths of the lists
    lengths = {len(s) for s in sources}
    length = max(lengths) if length is None else length
    if length not in lengths:
        raise ValueError(f"length must be the length of one of the sources "
                         f"({min(lengths)} to {max(lengths)}); got {length!r}.")
    return LengthExplorer(sources, targets, predictions, length, n_examples)


def _alignment_table(weights: np.ndarray, source: str, output: str) -> str:
    """Attention weights as an HTML grid: rows = output characters, columns = source ones."""
    cell = "width: 16px; height: 16px; border: 1px solid #eee; text-align: center;"
    head = "".join(
        f'<th style="font-family: monospace; font-weight: normal;">'
        f"{html.escape(_show_char(c)[0] if c == ' ' else c)}</th>" for c in source)
    rows = []
    for out_char, row in zip(output, weights, strict=True):
        cells = "".join(
            f'<td style="{cell} background: rgba(31, 119, 180, {w:.2f});" '
            f'title="{w:.2f}"></td>' for w in row)
        rows.append(f'<tr><th style="font-family: monospace; padding-right: 6px;">'
                    f"{html.escape(out_char)}</th>{cells}</tr>")
    return (f'<table style="border-collapse: collapse;"><tr><th></th>{head}</tr>'
            f"{''.join(rows)}</table>")


class AlignmentExplorer(widgets.VBox):
    """Pick a test date or type one; see the translation and where each output step looked.

    Attributes:
      example: ``Dropdown`` of example inputs; choosing one copies it into ``text``.
      text: ``Text`` with the date to translate; set ``.value`` to translate another.
      output: ``HTML`` with the translation and the attention grid (rows: output characters,
        columns: input characters; darker = more weight).
      prediction: the current translation (``""`` when the text cannot be translated).
      weights: the current ``(T, len(text))`` attention weights (``None`` when not translated).
      message: ``""``, or why the text cannot be translated.
    """

    def __init__(self, model, examples, text: str, max_len: int) -> None:
        self.model, self.max_len = model, max_len
        self.example = widgets.Dropdown(options=list(examples), value=None,
                                        description="example",
                                        layout=widgets.Layout(width="60%"))
        self.text = widgets.Text(value=text, description="date",
                                 layout=widgets.Layout(width="60%"))
        self.output = widgets.HTML(value="")
        self.example.observe(self._on_example, names="value")
        self.text.observe(self._on_change, names="value")
        super().__init__(children=[self.example, self.text, self.output])
        self._render()

    def _on_example(self, change: dict) -> None:
        if change["new"] is not None:
            self.text.value = change["new"]

    def _on_change(self, change: dict) -> None:
        self._render()

    def _render(self) -> None:
        from attnlab.rnn import translate_texts

        text = self.text.value
        try:
            (self.prediction,), (weights,) = translate_texts(self.model, [text],
                                                             max_len=self.max_len)
        except ValueError as error:
            self.prediction, self.weights, self.message = "", None, str(error)
            self.output.value = f"<i>{html.escape(self.message)}</i>"
            return
        self.weights, self.message = weights, ""
        self.output.value = (
            f"<div><code>{html.escape(text)}</code> → <b><code>"
            f"{html.escape(self.prediction)}</code></b></div>"
            f"<div>Each row is one output character; the shaded cells show how much attention "
            f"it paid to each input character when it was written (hover for the weight).</div>"
            f"{_alignment_table(weights, text, self.prediction)}")


def alignment_explorer(model, examples, *, text: str | None = None,
                       max_len: int = 64) -> AlignmentExplorer:
    """Translate a chosen or typed date with an attention model and show its alignment.

    Args:
      model: a trained :class:`attnlab.rnn.AttentionSeq2Seq` on the date task.
      examples: input texts offered in the drop-down.
      text: the date shown first (default: the first example).
      max_len: the longest input accepted (the training data's padded length).

    Returns:
      an :class:`AlignmentExplorer` (an ``ipywidgets.VBox``).

    Raises:
      ValueError: if ``examples`` is empty.
      TypeError: if ``model`` returns no attention weights (a plain ``Seq2Seq``).
    """
    from attnlab.rnn import AttentionSeq2Seq

    examples = list(examples)
    if not examples:
        raise ValueError("examples is empty; pass at least one input text.")
    if not isinstance(model, AttentionSeq2Seq):
        raise TypeError(f"model must be an AttentionSeq2Seq (it has attention weights to "
                        f"show); got {type(model).__name__}.")
    return AlignmentExplorer(model, examples, examples[0] if text is None else text, max_len)
