"""Tests for attnlab.quiz: question validation, grading, and the widget's live feedback."""

import ipywidgets as widgets
import pytest

from attnlab.quiz import Question, Quiz, grade, quiz

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
        hints={0: "only when the queries attend to themselves (S = T)."},
    )


def scale_question() -> Question:
    return Question(
        "Why divide the scores by sqrt(d_head)?",
        ["To keep softmax out of its flat regions", "To save memory"],
        answer=0,
        explanation="large dot products push softmax towards one-hot outputs.",
    )


def mask_question() -> Question:
    return Question("A causal mask lets position t see…", ["0..t", "t..T-1"], answer=0)


# --- Question validation ---------------------------------------------------------------


def test_question_stores_options_and_hints_as_tuples():
    q = shape_question()
    assert q.options == ("(T, T)", "(T, S)", "(S, T)")
    assert q.hints == ("only when the queries attend to themselves (S = T).", None, None)


def test_hints_as_a_list_with_one_entry_per_option():
    q = Question("p", ["a", "b", "c"], answer=0, hints=[None, "not b", ""])
    assert q.hints == (None, "not b", None)


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


def test_grade_wrong_choice_without_a_hint_says_try_again():
    assert grade(shape_question(), 2) == (False, "Not quite — try again.")


def test_grade_rejects_a_choice_that_is_not_an_option():
    with pytest.raises(ValueError, match="choice_index"):
        grade(shape_question(), 3)
    with pytest.raises(TypeError, match="choice_index"):
        grade(shape_question(), None)


# --- the widget --------------------------------------------------------------------------


def test_quiz_starts_with_nothing_selected_and_no_feedback():
    w = quiz([shape_question(), scale_question(), mask_question()])
    assert isinstance(w, widgets.VBox) and isinstance(w, Quiz)
    assert all(isinstance(r, widgets.RadioButtons) for r in w.radios)
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
    assert "Not quite — try again." in w.feedback[0].value
    assert "2 of 3 correct" in w.score.value
    w.radios[0].value = None
    assert w.feedback[0].value == ""
    assert "2 of 3 correct" in w.score.value


def test_feedback_text_is_escaped_for_html():
    q = Question("Is T < S allowed?", ["yes", "no"], answer=0, explanation="<b> is not bold")
    w = quiz(q)
    w.radios[0].value = "yes"
    assert "&lt;b&gt; is not bold" in w.feedback[0].value


def test_quiz_rejects_an_empty_list_and_non_questions():
    with pytest.raises(ValueError, match="questions"):
        quiz([])
    with pytest.raises(TypeError, match=r"questions\[1\]"):
        quiz([mask_question(), "not a question"])
