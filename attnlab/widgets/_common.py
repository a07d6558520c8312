"""What several widgets share: invisible characters made visible, and a matplotlib figure
as PNG bytes for an ``ipywidgets.Image``.
"""

from __future__ import annotations

# Characters that are invisible or break the layout when shown bare.
_VISIBLE = {" ": "␣ (space)", "\n": "⏎ (newline)", "\t": "⇥ (tab)"}


def _show_char(token: str) -> str:
    return _VISIBLE.get(token, token)


def _png(fig) -> bytes:
    """A matplotlib Figure as PNG bytes (for an ``ipywidgets.Image``)."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return buffer.getvalue()
