"""Multiple-choice self-check questions with instant feedback.

A notebook section ends with a few questions. Each :class:`Question` holds a prompt, its
options, the index of the correct one, an explanation shown once the learner picks it, and a
hint for every wrong option that names the mistake the option stands for (required).
:func:`grade` decides whether a choice is right and what to say; :func:`quiz` wraps a list
of questions in an ipywidgets UI that calls :func:`grade` every time the learner clicks an
option.

Example (in a notebook cell)::

    from attnlab.quiz import Question, quiz

    quiz([
        Question(
            "What shape do the attention weights of one head have for T queries and S keys?",
            ["(T, T)", "(T, S)", "(S, D)"],
            answer=1,
            explanation="one row per query, one column per key.",
            hints={
                0: "that is only true for self-attention, where S = T.",
                2: "D is the width of a vector; the weights have one entry per query-key pair.",
            },
        ),
    ])

The widget uses only what ipywidgets 7.7.1 (Google Colab) and 8.x share: ``RadioButtons``
created with ``value=None`` (nothing preselected), ``HTML`` and ``VBox``, and ``.observe``.
"""

from __future__ import annotations

import html
import operator
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import ipywidgets as widgets

__all__ = ["Question", "Quiz", "grade", "quiz"]

_CORRECT_COLOR = "#137333"  # dark green, readable on light and dark themes
_WRONG_COLOR = "#b3261e"  # dark red


def _index(value: object, name: str) -> int:
    """Return ``value`` as a Python int, or raise TypeError naming the argument."""
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an integer index, not a bool; got {value!r}.")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(
            f"{name} must be an integer index; got {value!r} of type {type(value).__name__}."
        ) from None


@dataclass(frozen=True)
class Question:
    """One multiple-choice question.

    Args:
      prompt: the question text (plain text; text between `backticks` is shown as code).
      options: the choices, at least 2, all different, none empty. Stored as a tuple.
      answer: index into ``options`` of the correct choice (0-based).
      explanation: why the correct choice is right; shown after "Correct — ".
      hints: required in practice: one sentence for EVERY wrong option, naming the mistake
        that option stands for; shown after "Not quite — ". Either a mapping
        ``{option index: hint}`` or a sequence with one entry per option (``None`` or ``""``
        for the correct option). Stored as a tuple with one entry per option (``None`` where
        there is no hint). A hint for the correct option is allowed but never shown.

    Raises:
      TypeError: if ``prompt``, an option or a hint is not a string, ``options`` is a single
        string, or ``answer`` is not an integer.
      ValueError: if ``prompt`` is empty, there are fewer than 2 options, an option is empty
        or repeated, ``answer`` is out of range, ``hints`` does not match ``options``, or a
        wrong option has no hint (the message names those options and shows how to add
        their hints).
    """

    prompt: str
    options: Sequence[str]
    answer: int
    explanation: str = ""
    hints: Sequence[str | None] | Mapping[int, str] | None = field(default=None)

    def __post_init__(self) -> None:
        if not isinstance(self.prompt, str):
            raise TypeError(f"prompt must be a string; got {type(self.prompt).__name__}.")
        if not self.prompt.strip():
            raise ValueError("prompt must not be empty; write the question the learner sees.")
        if isinstance(self.options, str) or not isinstance(self.options, Sequence):
            raise TypeError(
                f"options must be a list of strings, one per choice; got {self.options!r}."
            )
        options = tuple(self.options)
        if len(options) < 2:
            raise ValueError(
                f"options needs at least 2 choices for a multiple-choice question; "
                f"got {len(options)}."
            )
        seen: set[str] = set()
        for i, option in enumerate(options):
            if not isinstance(option, str):
                raise TypeError(
                    f"options[{i}] must be a string; got {option!r} "
                    f"of type {type(option).__name__}."
                )
            if not option.strip():
                raise ValueError(f"options[{i}] is empty; every choice needs some text.")
            if option.strip() in seen:
                raise ValueError(
                    f"options must all be different; {option.strip()!r} appears more than once."
                )
            seen.add(option.strip())
        answer = _index(self.answer, "answer")
        if not 0 <= answer < len(options):
            raise ValueError(
                f"answer must be the index of the correct option, from 0 to {len(options) - 1} "
                f"(there are {len(options)} options); got {answer}."
            )
        if not isinstance(self.explanation, str):
            raise TypeError(
                f"explanation must be a string; got {type(self.explanation).__name__}."
            )
        hints = self._normalise_hints(self.hints, len(options))
        missing = [i for i, hint in enumerate(hints) if hint is None and i != answer]
        if missing:
            which = ", ".join(f"{i} ({options[i]!r})" for i in missing)
            example = ", ".join(f'{i}: "<the mistake option {i} stands for>"' for i in missing)
            raise ValueError(
                f"Question {self.prompt!r}: every wrong option needs a hint, one sentence "
                f"naming the mistake it stands for; option{'s' if len(missing) > 1 else ''} "
                f"{which} {'have' if len(missing) > 1 else 'has'} none. Add "
                f"hints={{{example}}} (merged with the hints already given)."
            )
        object.__setattr__(self, "options", options)
        object.__setattr__(self, "answer", answer)
        object.__setattr__(self, "hints", hints)

    @staticmethod
    def _normalise_hints(hints: object, n_options: int) -> tuple[str | None, ...]:
        """Turn the accepted ``hints`` forms into one entry per option (None = no hint)."""
        if hints is None:
            return (None,) * n_options
        if isinstance(hints, Mapping):
            out: list[str | None] = [None] * n_options
            for key, hint in hints.items():
                i = _index(key, "hints key")
                if not 0 <= i < n_options:
                    raise ValueError(
                        f"hints has a hint for option {i}, but options only has indices "
                        f"0 to {n_options - 1}."
                    )
                out[i] = hint
        elif isinstance(hints, Sequence) and not isinstance(hints, str):
            if len(hints) != n_options:
                raise ValueError(
                    f"hints must have one entry per option ({n_options}); got {len(hints)}. "
                    "Use None for options without a hint, or pass a dict {index: hint}."
                )
            out = list(hints)
        else:
            raise TypeError(
                f"hints must be a list with one entry per option or a dict {{index: hint}}; "
                f"got {hints!r}."
            )
        for i, hint in enumerate(out):
            if hint is not None and not isinstance(hint, str):
                raise TypeError(f"hints[{i}] must be a string or None; got {hint!r}.")
        return tuple((hint or "").strip() or None for hint in out)

    def __str__(self) -> str:
        """Plain-text form: the prompt and lettered options (for places without widgets)."""
        lines = [self.prompt]
        lines += [f"  ({chr(ord('a') + i)}) {option}" for i, option in enumerate(self.options)]
        return "\n".join(lines)


def grade(question: Question, choice_index: int) -> tuple[bool, str]:
    """Grade one answer to a question.

    Args:
      question: the question being answered.
      choice_index: index into ``question.options`` of the learner's choice.

    Returns:
      ``(correct, message)``: ``correct`` is True when the choice is the right one; the message
      is ``"Correct — <explanation>"`` (``"Correct!"`` without one) or
      ``"Not quite — <hint for that option>"``; every wrong option has a hint (see
      :class:`Question`).

    Raises:
      TypeError: if ``choice_index`` is not an integer.
      ValueError: if ``choice_index`` is not an index into ``question.options``.
    """
    i = _index(choice_index, "choice_index")
    n = len(question.options)
    if not 0 <= i < n:
        raise ValueError(f"choice_index must be from 0 to {n - 1} for this question; got {i}.")
    if i == question.answer:
        explanation = question.explanation.strip()
        return True, f"Correct — {explanation}" if explanation else "Correct!"
    return False, f"Not quite — {question.hints[i]}"


def _format_text(text: str) -> str:
    """Escape plain text for HTML, showing `backticked` spans as code."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


class Quiz(widgets.VBox):
    """The widget that :func:`quiz` returns: a VBox with one block per question and a score.

    Attributes:
      questions: the questions, in display order.
      radios: one ``RadioButtons`` per question; set ``.value`` to an option's text (or
        ``None`` to clear) to answer it, as the learner's click would.
      feedback: one ``HTML`` per question; its ``.value`` holds the latest feedback
        ("Correct — …" / "Not quite — …"), empty before an answer.
      score: an ``HTML`` whose ``.value`` reads "<k> of <n> correct".
    """

    def __init__(self, questions: Sequence[Question], title: str | None = None) -> None:
        self.questions = tuple(questions)
        radios, feedback, blocks = [], [], []
        for number, question in enumerate(self.questions, start=1):
            prompt = widgets.HTML(value=f"<b>{number}. {_format_text(question.prompt)}</b>")
            radio = widgets.RadioButtons(
                options=list(question.options),
                value=None,  # nothing preselected; works on ipywidgets 7.7.1 and 8
                layout=widgets.Layout(width="auto"),
            )
            note = widgets.HTML(value="")
            radio.observe(self._on_change(len(radios)), names="value")
            radios.append(radio)
            feedback.append(note)
            blocks.append(widgets.VBox([prompt, radio, note]))
        self.radios = tuple(radios)
        self.feedback = tuple(feedback)
        self.correct = [False] * len(self.questions)
        self.score = widgets.HTML(value="")
        header = [widgets.HTML(value=f"<h4>{_format_text(title)}</h4>")] if title else []
        super().__init__(children=[*header, *blocks, self.score])
        self._update_score()

    @property
    def n_correct(self) -> int:
        """Number of questions whose current choice is the correct one."""
        return sum(self.correct)

    def _on_change(self, i: int):
        """Make the observer for question ``i``; it re-grades whenever the choice changes."""

        def observer(change: dict) -> None:
            question, value = self.questions[i], change["new"]
            if value is None:
                self.correct[i] = False
                self.feedback[i].value = ""
            else:
                ok, message = grade(question, question.options.index(value))
                self.correct[i] = ok
                color = _CORRECT_COLOR if ok else _WRONG_COLOR
                self.feedback[i].value = (
                    f'<span style="color: {color}">{_format_text(message)}</span>'
                )
            self._update_score()

        return observer

    def _update_score(self) -> None:
        self.score.value = f"<i>{self.n_correct} of {len(self.questions)} correct</i>"


def quiz(questions: Question | Sequence[Question], *, title: str | None = None) -> Quiz:
    """Build an interactive multiple-choice quiz.

    Each question is shown as its prompt, radio buttons with nothing selected, and a feedback
    line that :func:`grade` fills in as soon as the learner picks an option. A score line at
    the bottom counts the questions currently answered correctly ("2 of 3 correct"). Nothing
    needs a live frontend: the returned widget works (and can be tested) without being
    displayed.

    Args:
      questions: one :class:`Question` or a non-empty sequence of them.
      title: optional heading shown above the questions.

    Returns:
      a :class:`Quiz` (an ``ipywidgets.VBox``); see its ``radios``, ``feedback`` and ``score``.

    Raises:
      TypeError: if an item is not a :class:`Question`.
      ValueError: if ``questions`` is empty.
    """
    if isinstance(questions, Question):
        questions = [questions]
    questions = list(questions)
    if not questions:
        raise ValueError("questions is empty; pass at least one Question.")
    for i, question in enumerate(questions):
        if not isinstance(question, Question):
            raise TypeError(
                f"questions[{i}] must be a Question; got {type(question).__name__}. "
                "Build it with Question(prompt, options, answer, explanation, hints)."
            )
    return Quiz(questions, title=title)
