"""The verdict of a check, :class:`CheckResult`: passed or not, the message, the failing
inputs; a green or red box in a notebook.
"""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import Any

__all__ = ["CheckResult"]


@dataclass(frozen=True, eq=False)
class CheckResult:
    """The verdict of a check.

    Attributes:
      passed: True when every trial matched the reference.
      message: what was checked, or the first difference found, in plain words.
      inputs: the failing trial's inputs exactly as the generator returned them (a tuple of
        positional arguments or a dict of keyword arguments), so the learner can call their
        function on them by hand; None when the check passed.

    ``bool(result)`` is ``result.passed``. In a notebook the result shows as a green (passed)
    or red (not yet) box; ``str(result)`` gives the same text.
    """

    passed: bool
    message: str
    inputs: Any = None

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return f"{'✔ Passed' if self.passed else '✘ Not yet'}: {self.message}"

    __repr__ = __str__

    def _repr_html_(self) -> str:
        if self.passed:
            mark, title, border, background = "✔", "Passed", "#34a853", "#e6f4ea"
        else:
            mark, title, border, background = "✘", "Not yet", "#d93025", "#fce8e6"
        return (
            f'<div style="border-left: 6px solid {border}; background: {background}; '
            f'color: #202124; padding: 6px 10px; margin: 4px 0;">'
            f'<b style="color: {border}">{mark} {title}</b>'
            f'<div style="white-space: pre-wrap; font-family: inherit;">'
            f"{html.escape(self.message)}</div></div>"
        )
