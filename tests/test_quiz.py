"""Tests for attnlab.quiz: question validation, grading, the widget's live feedback, and
every question in the notebooks."""

import ast
import json
from pathlib import Path

import pytest

from attnlab.quiz import Question, grade, quiz

# ipywidgets 7.7.1 (Colab's pin) creates its comms through a class that newer ipykernel
# deprecates; the warning comes from inside ipywidgets, once per widget.
pytestmark = pytest.mark.filterwarnings(
    "ignore:The `ipykernel.comm.Comm` class has been deprecated:DeprecationWarning"
)


def shape_question() -> Question:
    return Question(
        "Attention weights for T queries and S keys have which shape?",
        ["(T, T)", "(T, S)", "(S, T)"],
        answer=1,
        explanation="one row per query, one column per key.",
        hints={
            0: "only when the queries attend to themselves (S = T).",
            2: "rows are queries: one row per query, not per key.",
        },
    )


def scale_question() -> Question:
    return Question(
        "Why divide the scores by sqrt(d_head)?",
        ["To keep softmax out of its flat regions", "To save memory"],
        answer=0,
        explanation="large dot products push softmax towards one-hot outputs.",
        hints={1: "the scaling changes values, not how many are stored."},
    )


def mask_question() -> Question:
    return Question(
        "A causal mask lets position t see…", ["0..t", "t..T-1"], answer=0,
        hints={1: "that is the future; a causal mask hides it."},
    )


# --- Question validation ---------------------------------------------------------------


def test_question_stores_options_and_hints_as_tuples():
    q = shape_question()
    assert q.options == ("(T, T)", "(T, S)", "(S, T)")
    assert q.hints == (
        "only when the queries attend to themselves (S = T).",
        None,
        "rows are queries: one row per query, not per key.",
    )


def test_hints_as_a_list_with_one_entry_per_option():
    q = Question("p", ["a", "b", "c"], answer=0, hints=["", "not b", "not c"])
    assert q.hints == (None, "not b", "not c")


@pytest.mark.parametrize(
    ("hints", "named"),
    [
        (None, "options 1 ('b'), 2 ('c') have none"),
        ({1: "not b"}, "option 2 ('c') has none"),
        ([None, "not b", "   "], "option 2 ('c') has none"),
    ],
)
def test_a_wrong_option_without_a_hint_is_rejected(hints, named):
    with pytest.raises(ValueError) as error:
        Question("Pick a", ["a", "b", "c"], answer=0, hints=hints)
    message = str(error.value)
    assert "'Pick a'" in message and "every wrong option needs a hint" in message
    assert named in message
    assert "hints={" in message  # shows how to add them


def test_a_hint_must_be_text():
    with pytest.raises(TypeError, match=r"hints\[1\]"):
        Question("p", ["a", "b"], answer=0, hints={1: 3})


@pytest.mark.parametrize("answer", [3, -1])
def test_answer_out_of_range_is_rejected(answer):
    with pytest.raises(ValueError, match="answer"):
        Question("p", ["a", "b", "c"], answer=answer)


def test_answer_must_be_an_integer():
    with pytest.raises(TypeError, match="answer"):
        Question("p", ["a", "b"], answer="a")
    with pytest.raises(TypeError, match="answer"):
        Question("p", ["a", "b"], answer=True)


def test_fewer_than_two_options_is_rejected():
    with pytest.raises(ValueError, match="options"):
        Question("p", ["only one"], answer=0)


def test_duplicate_options_are_rejected():
    with pytest.raises(ValueError, match="options.*'b'"):
        Question("p", ["a", "b", "b "], answer=0)


def test_empty_option_is_rejected():
    with pytest.raises(ValueError, match=r"options\[1\]"):
        Question("p", ["a", "  "], answer=0)


def test_options_given_as_one_string_is_rejected():
    with pytest.raises(TypeError, match="options"):
        Question("p", "ab", answer=0)


def test_empty_prompt_is_rejected():
    with pytest.raises(ValueError, match="prompt"):
        Question("   ", ["a", "b"], answer=0)


def test_hints_of_the_wrong_length_are_rejected():
    with pytest.raises(ValueError, match="hints"):
        Question("p", ["a", "b", "c"], answer=0, hints=["x", "y"])


def test_hint_for_a_missing_option_is_rejected():
    with pytest.raises(ValueError, match="hints"):
        Question("p", ["a", "b"], answer=0, hints={5: "no such option"})


# --- grade -------------------------------------------------------------------------------


def test_grade_right_choice_gives_the_explanation():
    ok, message = grade(shape_question(), 1)
    assert ok
    assert message == "Correct — one row per query, one column per key."


def test_grade_wrong_choice_gives_its_hint():
    ok, message = grade(shape_question(), 0)
    assert not ok
    assert message == "Not quite — only when the queries attend to themselves (S = T)."


def test_grade_every_wrong_choice_explains_itself():
    q = shape_question()
    for i in range(len(q.options)):
        ok, message = grade(q, i)
        if i != q.answer:
            assert not ok and message == f"Not quite — {q.hints[i]}"


def test_grade_rejects_a_choice_that_is_not_an_option():
    with pytest.raises(ValueError, match="choice_index"):
        grade(shape_question(), 3)
    with pytest.raises(TypeError, match="choice_index"):
        grade(shape_question(), None)


# --- the widget --------------------------------------------------------------------------


def test_quiz_starts_with_nothing_selected_and_no_feedback():
    w = quiz([shape_question(), scale_question(), mask_question()])
    assert [tuple(r.options) for r in w.radios] == [q.options for q in w.questions]
    assert [r.value for r in w.radios] == [None, None, None]
    assert [f.value for f in w.feedback] == ["", "", ""]
    assert "0 of 3 correct" in w.score.value


def test_widgets_are_all_in_the_displayed_tree():
    w = quiz([shape_question(), scale_question()])

    def descendants(widget):
        for child in getattr(widget, "children", ()):
            yield child
            yield from descendants(child)

    shown = list(descendants(w))
    for part in (*w.radios, *w.feedback, w.score):
        assert any(part is s for s in shown)


def test_picking_the_right_option_shows_correct_and_raises_the_score():
    w = quiz([shape_question(), scale_question(), mask_question()])
    w.radios[0].value = "(T, S)"
    assert "Correct — one row per query, one column per key." in w.feedback[0].value
    assert "1 of 3 correct" in w.score.value
    assert w.feedback[1].value == ""


def test_picking_a_wrong_option_shows_its_hint_and_keeps_the_score():
    w = quiz([shape_question(), scale_question(), mask_question()])
    w.radios[0].value = "(T, T)"
    assert "Not quite — only when the queries attend to themselves" in w.feedback[0].value
    assert "Correct" not in w.feedback[0].value
    assert "0 of 3 correct" in w.score.value


def test_changing_an_answer_updates_feedback_and_score():
    w = quiz([shape_question(), scale_question(), mask_question()])
    w.radios[0].value = "(T, S)"
    w.radios[1].value = "To keep softmax out of its flat regions"
    w.radios[2].value = "t..T-1"
    assert "2 of 3 correct" in w.score.value
    assert w.n_correct == 2
    w.radios[2].value = "0..t"
    assert "Correct!" in w.feedback[2].value
    assert "3 of 3 correct" in w.score.value
    w.radios[0].value = "(S, T)"
    assert "Not quite — rows are queries" in w.feedback[0].value
    assert "2 of 3 correct" in w.score.value
    w.radios[0].value = None
    assert w.feedback[0].value == ""
    assert "2 of 3 correct" in w.score.value


def test_feedback_text_is_escaped_for_html():
    q = Question("Is T < S allowed?", ["yes", "no"], answer=0, explanation="<b> is not bold",
                 hints={1: "cross-attention has T < S <i>often</i>."})
    w = quiz(q)
    w.radios[0].value = "yes"
    assert "&lt;b&gt; is not bold" in w.feedback[0].value
    w.radios[0].value = "no"
    assert "&lt;i&gt;often&lt;/i&gt;" in w.feedback[0].value


def test_quiz_rejects_an_empty_list_and_non_questions():
    with pytest.raises(ValueError, match="questions"):
        quiz([])
    with pytest.raises(TypeError, match=r"questions\[1\]"):
        quiz([mask_question(), "not a question"])


# --- every question in the notebooks --------------------------------------------------------

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))


def _question_calls(notebook: Path):
    """Yield (cell number, line, ast.Call) for each ``Question(...)`` in the code cells."""
    cells = json.loads(notebook.read_text(encoding="utf-8"))["cells"]
    for number, cell in enumerate(cells):
        if cell["cell_type"] != "code":
            continue
        source = "".join(cell["source"])
        # IPython magics and shell escapes are not Python: blank those lines out.
        source = "\n".join(
            "" if line.lstrip().startswith(("%", "!")) else line for line in source.splitlines()
        )
        try:
            tree = ast.parse(source)
        except SyntaxError:
            if "Question(" in source:
                raise
            continue
        for node in ast.walk(tree):
            func = getattr(node, "func", None)
            name = getattr(func, "id", None) or getattr(func, "attr", None)
            if isinstance(node, ast.Call) and name == "Question":
                yield number, node.lineno, node


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=[n.name for n in NOTEBOOKS])
def test_every_notebook_question_has_a_hint_for_each_wrong_option(notebook):
    calls = list(_question_calls(notebook))
    if not calls:
        pytest.skip(f"{notebook.name} has no quiz questions")
    problems = []
    for cell, line, call in calls:
        where = f"{notebook.name}, cell {cell}, line {line}"
        try:
            args = [ast.literal_eval(arg) for arg in call.args]
            kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in call.keywords}
        except ValueError:
            problems.append(f"{where}: write Question(...) with literal arguments only")
            continue
        if None in kwargs:  # Question(**something)
            problems.append(f"{where}: write Question(...) without ** arguments")
            continue
        try:
            Question(*args, **kwargs)
        except (TypeError, ValueError) as error:
            problems.append(f"{where}: {error}")
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("notebook", NOTEBOOKS, ids=lambda p: p.name)
def test_right_answers_do_not_all_sit_in_one_place(notebook):
    """A learner must not be able to pass a notebook's quizzes by always clicking option 1."""
    answers = []
    for _, _, call in _question_calls(notebook):
        answer = [kw.value for kw in call.keywords if kw.arg == "answer"] or call.args[2:3]
        if answer:
            answers.append(ast.literal_eval(answer[0]))
    if len(answers) < 4:
        pytest.skip(f"{notebook.name} has {len(answers)} quiz questions")
    most = max(answers.count(i) for i in set(answers))
    assert most <= 0.6 * len(answers), (
        f"{notebook.name}: {most} of {len(answers)} right answers are option {max(set(answers), key=answers.count)}"
        "; vary where the right answer sits"
    )


def test_the_notebook_scan_finds_questions_and_reads_their_literals(tmp_path):
    cells = [
        {"cell_type": "markdown", "source": ["Question(not code)"]},
        {"cell_type": "code", "source": ["%pip install -q attnlab\n", "x = 1"]},
        {"cell_type": "code", "source": [
            "from attnlab import quiz as q\n",
            "q.quiz([q.Question('p', ['a', 'b'], answer=0, hints={1: 'not b'}),\n",
            "        Question('p2', ['a', 'b'], 1)])",
        ]},
    ]
    notebook = tmp_path / "00_scan.ipynb"
    notebook.write_text(json.dumps({"cells": cells}), encoding="utf-8")
    calls = list(_question_calls(notebook))
    assert [(cell, line) for cell, line, _ in calls] == [(2, 2), (2, 3)]
    kwargs = {kw.arg: ast.literal_eval(kw.value) for kw in calls[0][2].keywords}
    assert Question(*map(ast.literal_eval, calls[0][2].args), **kwargs).hints == (None, "not b")
    with pytest.raises(ValueError, match="option 0"):  # the second question lacks its hint
        Question(*map(ast.literal_eval, calls[1][2].args))
