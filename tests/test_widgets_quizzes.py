"""Lesson quizzes: questions are data in rmlearn/quizzes/, validated with the file and question named."""

from __future__ import annotations

import json

import pytest

from rmlearn.widgets.quizzes import QUIZZES, QuizError, check_answer, load_quiz, quiz_file, quiz_for

GOOD = {"text": "2 + 2?", "options": ["3", "4"], "answer": 1, "why": ["One short.", "Yes."]}


def _write(tmp_path, records):
    path = tmp_path / "99.json"
    path.write_text(json.dumps(records), encoding="utf-8")
    return path


def test_a_quiz_file_loads_into_questions_and_checks_answers(tmp_path):
    (question,) = load_quiz(_write(tmp_path, [GOOD]))
    assert question.options == ("3", "4") and question.answer == 1
    assert check_answer(question, 1) == (True, "Right. Yes.")
    assert check_answer(question, 0) == (False, "Not quite. One short.")
    assert check_answer(question, None) == (False, "Pick an option first.")


@pytest.mark.parametrize("change, problem", [
    ({"answer": 2}, "answer index 2 out of range"),
    ({"answer": True}, "'answer' must be a int, got True"),
    ({"why": ["only one"]}, "one explanation per option"),
    ({"options": ["4", ""]}, "every item of 'options' must be a non-empty string"),
    ({"hint": "x"}, "needs exactly the keys ['answer', 'options', 'text', 'why']"),
])
def test_malformed_questions_name_the_file_and_the_question(tmp_path, change, problem):
    path = _write(tmp_path, [GOOD, {**GOOD, **change}])
    with pytest.raises(QuizError) as err:
        load_quiz(path)
    assert str(err.value).startswith(f"{path}: question 2: ") and problem in str(err.value)


def test_invalid_json_names_the_line(tmp_path):
    path = tmp_path / "01.json"
    path.write_text('[\n{"text": }\n]', encoding="utf-8")
    with pytest.raises(QuizError, match=r"01\.json:2: invalid JSON"):
        load_quiz(path)


LESSONS = sorted(p.stem for p in QUIZZES.glob("*.json"))


def test_every_lesson_has_a_quiz_of_four_questions():
    assert LESSONS == [f"{n:02d}" for n in range(1, len(LESSONS) + 1)] and len(LESSONS) >= 8
    for lesson in LESSONS:
        assert len(load_quiz(quiz_file(lesson))) == 4, lesson


@pytest.mark.parametrize("lesson", LESSONS)
def test_each_check_button_judges_its_own_question(lesson):
    """Pick every option of every question in turn, press that question's Check: its own feedback says
    Right for its own answer only, with the explanation of the picked option; no verdict is doubled."""
    questions, box = load_quiz(quiz_file(lesson)), quiz_for(lesson)
    assert len(box.children) == len(questions)
    for q, block in zip(questions, box.children):
        title, options, button, feedback = block.children
        assert q.text in title.value
        for choice in range(len(q.options)):
            options.value = choice
            button.click()
            verdict = "Right. " if choice == q.answer else "Not quite. "
            assert f">{verdict}{q.why[choice]}<" in feedback.value
            assert not q.why[choice].startswith(("Right", "Not quite", "No:", "No.", "Yes")), q.why[choice]
        others = [b.children[3].value for b in box.children if b is not block]
        assert all(q.why[q.answer] not in text for text in others)  # the other questions' feedback is untouched
