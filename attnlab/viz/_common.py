"""What several figure modules share: a token as a readable tick label."""

from __future__ import annotations

# Tokens that are invisible or break a tick label when shown bare.
_READABLE = {" ": "␣ (space)", "\n": "⏎ (newline)", "\t": "⇥ (tab)", "": "(empty)"}


def readable_token(token) -> str:
    """A token as a tick label: space, newline and tab spelled out, other text as it is."""
    token = str(token)
    return _READABLE.get(token, token.replace("\n", "⏎"))
