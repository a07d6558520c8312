"""Notebook 06: the same input and output text under GPT, BERT and T5, and the attention
masks each family uses, drawn as grids (:func:`architecture_explorer`,
:func:`architecture_panels`).
"""

from __future__ import annotations

import html

import ipywidgets as widgets
import numpy as np

from attnlab.widgets._common import _show_char

__all__ = ["ARCHITECTURES", "ArchitectureExplorer", "architecture_explorer", "architecture_panels"]


#: The three transformer families, as the architecture buttons name them.
ARCHITECTURES = ("decoder-only (GPT)", "encoder-only (BERT)", "encoder–decoder (T5)")

#: Word-level tokens shown per text box (more would make the grids unreadable).
MAX_WORDS = 10

_ABOUT = {
    ARCHITECTURES[0]: (
        "GPT reads the input and the output as <b>one sequence</b>: the prompt is just its first "
        "tokens. Every position sees itself and the positions before it (causal mask) and is "
        "trained to predict the <b>next token</b>. The output is written one token at a time. "
        "(Simplified: a real prompt marks where the output starts, e.g. with a separator "
        "token.)"
    ),
    ARCHITECTURES[1]: (
        "BERT reads only the input, and every position sees <b>every</b> position, left and "
        "right. It is trained to recover tokens hidden behind <code>[MASK]</code> (here "
        "<b>{hidden}</b>) from both sides. It writes no output text, so the output box is "
        "not used; its vectors feed a task head (classification, tagging, answer spans)."
    ),
    ARCHITECTURES[2]: (
        "T5's <b>encoder</b> reads the whole input with bidirectional attention. Its "
        "<b>decoder</b> writes the output one token at a time: each output position sees the "
        "earlier output positions (causal) and, through <b>cross-attention</b>, every input "
        "token. (Simplified: a real decoder's output is shifted right by one position and "
        "starts with a start token.)"
    ),
}


def architecture_panels(architecture: str, source_tokens, target_tokens):
    """The attention masks of one transformer family for an input and an output text.

    Args:
      architecture: one of :data:`ARCHITECTURES`.
      source_tokens: the input's tokens (≥ 1), e.g. the words of a sentence to translate.
      target_tokens: the output's tokens; needed (≥ 1) by the encoder–decoder, appended to the
        input by the decoder-only model, unused by the encoder-only model.

    Returns:
      a list of ``(title, mask, query_labels, key_labels)``, one per attention kind the family
      has, ``mask`` a ``(T, S)`` bool NumPy array (True = may attend); ready for
      :func:`attnlab.viz.plot_masks`. The encoder-only model's input has its middle token
      (index ``len // 2``) replaced by ``"[MASK]"``.

    Raises:
      ValueError: if ``architecture`` is unknown, ``source_tokens`` is empty, or
        ``target_tokens`` is empty for the encoder–decoder.

    Sources: Radford et al. 2019 (GPT-2); Devlin et al. 2019 (BERT); Raffel et al. 2020 (T5).
    """
    from attnlab.attention import bidirectional_mask, causal_mask, encoder_decoder_masks

    source, target = [str(t) for t in source_tokens], [str(t) for t in target_tokens]
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {ARCHITECTURES}; got {architecture!r}.")
    if not source:
        raise ValueError("source_tokens is empty; every model needs at least one input token.")
    if architecture == ARCHITECTURES[0]:
        sequence = source + target
        mask = np.asarray(causal_mask(len(sequence)))
        return [("GPT: causal self-attention (input + output)", mask, sequence, sequence)]
    if architecture == ARCHITECTURES[1]:
        hidden = list(source)
        hidden[len(hidden) // 2] = "[MASK]"
        mask = np.asarray(bidirectional_mask(len(hidden)))
        return [("BERT: bidirectional self-attention", mask, hidden, hidden)]
    if not target:
        raise ValueError("target_tokens is empty; the encoder–decoder needs an output to write.")
    masks = encoder_decoder_masks(len(source), len(target))
    labels = {
        "encoder self-attention": (source, source),
        "decoder self-attention": (target, target),
        "cross-attention": (target, source),
    }
    return [(f"T5: {name}", np.asarray(mask), *labels[name]) for name, mask in masks.items()]


def _mask_table(title: str, mask: np.ndarray, query_labels, key_labels) -> str:
    """One mask as an HTML grid: a filled square where the row's token may attend."""
    head = "".join(
        f'<th style="writing-mode: vertical-rl; font-weight: normal; padding: 0 2px;">'
        f"{html.escape(_show_char(k))}</th>" for k in key_labels
    )
    rows = []
    for label, row in zip(query_labels, mask, strict=True):
        cells = "".join(
            '<td style="width: 14px; height: 14px; border: 1px solid #ccc; background: '
            f'{"#1f77b4" if allowed else "white"};"></td>' for allowed in row
        )
        rows.append(
            f'<tr><td style="text-align: right; padding-right: 6px;">'
            f"{html.escape(_show_char(label))}</td>{cells}</tr>"
        )
    return (
        f'<div style="display: inline-block; vertical-align: top; margin: 0 18px 8px 0;">'
        f"<div><b>{html.escape(title)}</b></div>"
        f'<table style="border-collapse: collapse;"><tr><td></td>{head}</tr>{"".join(rows)}'
        f"</table></div>"
    )


class ArchitectureExplorer(widgets.VBox):
    """Buttons for GPT, BERT and T5, two text boxes, and the attention masks each model uses.

    Attributes:
      architecture: ``ToggleButtons`` over :data:`ARCHITECTURES`; set ``.value`` to switch.
      source: ``Text`` with the input (split into words, at most :data:`MAX_WORDS`).
      target: ``Text`` with the output (same splitting).
      output: ``HTML``: what the model reads and predicts, then one grid per mask (rows are
        queries, columns keys; a filled square = may attend).
      panels: the current :func:`architecture_panels` result (empty when the text is invalid).
    """

    def __init__(self, source: str, target: str, architecture: str) -> None:
        self.panels: list = []
        self.architecture = widgets.ToggleButtons(
            options=list(ARCHITECTURES), value=architecture, description="model"
        )
        layout = widgets.Layout(width="90%")
        self.source = widgets.Text(value=source, description="input", layout=layout)
        self.target = widgets.Text(value=target, description="output", layout=layout)
        self.output = widgets.HTML(value="")
        for control in (self.architecture, self.source, self.target):
            control.observe(self._on_change, names="value")
        super().__init__(children=[self.architecture, self.source, self.target, self.output])
        self._render()

    def _on_change(self, change: dict) -> None:
        self._render()

    def _render(self) -> None:
        typed = {"input": self.source.value.split(), "output": self.target.value.split()}
        source, target = typed["input"][:MAX_WORDS], typed["output"][:MAX_WORDS]
        cut = [f"the {name} has {len(words)} words; showing the first {MAX_WORDS}."
               for name, words in typed.items() if len(words) > MAX_WORDS
               and (name == "input" or self.architecture.value != ARCHITECTURES[1])]
        notes = "".join(f"<div><i>{html.escape(line[0].upper() + line[1:])}</i></div>"
                        for line in cut)
        missing = None
        if not source:
            missing = "Type an input text: every model needs at least one token."
        elif not target and self.architecture.value == ARCHITECTURES[2]:
            missing = "Type an output text: the encoder–decoder needs an output to write."
        if missing:
            self.panels = []
            self.output.value = f"<i>{missing}</i>"
            return
        self.panels = architecture_panels(self.architecture.value, source, target)
        hidden = html.escape(source[len(source) // 2])
        about = _ABOUT[self.architecture.value].format(hidden=hidden)
        if self.architecture.value == ARCHITECTURES[1] and len(source) == 1:
            about += (" <b>With a one-word input, that word is the only token, so it becomes "
                      "<code>[MASK]</code> and nothing is left to guess it from: type two or "
                      "more words.</b>")
        grids = "".join(_mask_table(*panel) for panel in self.panels)
        self.output.value = (f'<div style="max-width: 60em; margin: 6px 0;">{about}</div>'
                             f"{notes}{grids}")


def architecture_explorer(
    *,
    source: str = "the cat sat on the mat",
    target: str = "le chat était assis",
    architecture: str = ARCHITECTURES[0],
) -> ArchitectureExplorer:
    """Compare the attention masks of GPT, BERT and T5 on the same input and output text.

    Args:
      source: the input text (words are the tokens here, for readability).
      target: the output text, e.g. a translation of ``source``.
      architecture: the family shown first, one of :data:`ARCHITECTURES`.

    Returns:
      an :class:`ArchitectureExplorer` (an ``ipywidgets.VBox``).

    Raises:
      ValueError: if ``architecture`` is not one of :data:`ARCHITECTURES`.
    """
    if architecture not in ARCHITECTURES:
        raise ValueError(f"architecture must be one of {ARCHITECTURES}; got {architecture!r}.")
    return ArchitectureExplorer(source, target, architecture)
