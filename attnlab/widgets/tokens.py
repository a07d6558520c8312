"""Notebook 01: the pieces a tokenizer cuts a text into, as coloured boxes with their ids,
for a choice of tokenizers (:func:`token_viewer`, :func:`token_pieces_html`).
"""

from __future__ import annotations

import html
from collections.abc import Mapping

import ipywidgets as widgets

__all__ = ["TokenViewer", "token_pieces_html", "token_viewer"]


# Light backgrounds with dark text, readable on light and dark themes; a token's colour
# follows its id, so the same token has the same colour wherever it appears.
_PIECE_COLOURS = ("#fde2a8", "#c8e6c9", "#bbdefb", "#f8bbd0", "#d1c4e9", "#ffccbc",
                  "#b2ebf2", "#e6ee9c")
_UNK_STYLE = "background: #ffffff; border: 2px solid #b3261e; color: #b3261e;"


def _visible(text: str) -> str:
    return html.escape(text.replace(" ", "␣").replace("\n", "⏎").replace("\t", "⇥"))


def token_pieces_html(pieces) -> str:
    """HTML that shows each token as a box: the characters it covers (space as ␣, newline as
    ⏎), its id beneath, a background colour that follows the id, and a red frame for an
    unknown token (``piece.token == "[UNK]"``).

    Args:
      pieces: :class:`attnlab.tokenization.Piece` items, e.g. from
        :func:`attnlab.tokenization.token_pieces`.

    Returns:
      an HTML ``str`` (empty pieces give an empty ``<div>``).
    """
    from attnlab.tokenization import UNK

    boxes = []
    for piece in pieces:
        unknown = piece.token == UNK
        style = (_UNK_STYLE if unknown else
                 f"background: {_PIECE_COLOURS[piece.id % len(_PIECE_COLOURS)]}; "
                 "border: 1px solid #9e9e9e; color: #202124;")
        tip = f"id {piece.id}: {piece.token!r}" + (f" (for {piece.text!r})" if unknown else "")
        boxes.append(
            f'<span title="{html.escape(tip)}" style="display: inline-block; margin: 2px 1px; '
            f'padding: 0 3px; border-radius: 3px; text-align: center; {style}">'
            f'<code style="white-space: pre; background: none; color: inherit;">'
            f"{_visible(piece.text)}</code><br>"
            f'<small style="color: inherit;">{piece.id}</small></span>'
        )
    return f'<div style="line-height: 1.1;">{"".join(boxes)}</div>'


class TokenViewer(widgets.VBox):
    """Pick a tokenizer, type a text, and see the tokens: the pieces, coloured, with their ids.

    Attributes:
      choice: ``Dropdown`` of the tokenizers' names; set ``.value`` to switch.
      text: ``Textarea`` with the text; set ``.value`` to change it.
      output: ``HTML`` with a summary line and the pieces (or the tokenizer's error message).
      tokenizers: the ``{name: tokenizer}`` mapping offered.
      pieces: the current :class:`attnlab.tokenization.Piece` list (empty on an error).
      error: ``None``, or the message of the ``ValueError`` the tokenizer raised (the character
        tokenizer refuses characters outside its vocabulary).
    """

    def __init__(self, tokenizers: Mapping, text: str, name: str) -> None:
        self.tokenizers = dict(tokenizers)
        self.pieces: list = []
        self.error: str | None = None
        self.choice = widgets.Dropdown(options=list(self.tokenizers), value=name,
                                       description="tokenizer")
        self.text = widgets.Textarea(value=text, description="text", continuous_update=True,
                                     layout=widgets.Layout(width="90%", height="60px"))
        self.output = widgets.HTML(value="")
        self.choice.observe(self._on_change, names="value")
        self.text.observe(self._on_change, names="value")
        super().__init__(children=[self.choice, self.text, self.output])
        self._render()

    @property
    def ids(self) -> list[int]:
        """The current token ids."""
        return [p.id for p in self.pieces]

    def _on_change(self, change: dict) -> None:
        self._render()

    def _render(self) -> None:
        from attnlab.tokenization import UNK, token_pieces

        name, text = self.choice.value, self.text.value
        try:
            self.pieces, self.error = token_pieces(self.tokenizers[name], text), None
        except ValueError as error:
            self.pieces, self.error = [], str(error)
            self.output.value = (f'<div style="color: #b3261e;"><b>{html.escape(name)} cannot '
                                 f"encode this text:</b> {html.escape(self.error)}</div>")
            return
        n_chars, n_tokens = len(text), len(self.pieces)
        summary = f"{n_chars} characters → {n_tokens} tokens"
        if n_chars:
            summary += f" ({n_tokens / n_chars:.2f} tokens per character)"
        unknown = [p for p in self.pieces if p.token == UNK]
        if unknown:
            what = ", ".join(repr(u) for u in dict.fromkeys(p.text for p in unknown))
            summary += (f"; {len(unknown)} unknown, framed in red: {UNK} (id {unknown[0].id}) "
                        f"stands for {what}")
        covered = sum(p.end - p.start for p in self.pieces)
        if covered < n_chars:
            summary += f"; {n_chars - covered} characters (whitespace) belong to no token"
        self.output.value = f"<div><i>{html.escape(summary)}</i></div>" + token_pieces_html(
            self.pieces)


def token_viewer(tokenizers: Mapping, *, text: str = "Tokenizers cut text into pieces.",
                 tokenizer: str | None = None) -> TokenViewer:
    """A dropdown of tokenizers and a text box; shows the text's tokens as coloured pieces
    with their ids.

    Args:
      tokenizers: ``{name: tokenizer}``, each a ``CharTokenizer``, ``WordTokenizer`` or
        ``BPETokenizer`` (see :mod:`attnlab.tokenization`); at least one.
      text: the starting text (any text: empty, or with characters a tokenizer never saw).
      tokenizer: the name to start with (default: the first).

    Returns:
      a :class:`TokenViewer` (an ``ipywidgets.VBox``).

    Raises:
      ValueError: if ``tokenizers`` is empty or ``tokenizer`` is not one of its names.
      TypeError: if ``text`` is not a str.
    """
    if not tokenizers:
        raise ValueError("tokenizers is empty; pass {name: tokenizer} with at least one entry.")
    if not isinstance(text, str):
        raise TypeError(f"text must be a str; got {type(text).__name__}.")
    name = next(iter(tokenizers)) if tokenizer is None else tokenizer
    if name not in tokenizers:
        raise ValueError(f"tokenizer must be one of {list(tokenizers)}; got {tokenizer!r}.")
    return TokenViewer(tokenizers, text, name)
