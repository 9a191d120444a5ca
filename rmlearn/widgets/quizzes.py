"""A small self-check quiz: pick an option, press Check, read why it is right or wrong.

Used at the end of every lesson. Practice questions only: graded questions live in exercises/.
The questions are data inside the package, ``rmlearn/quizzes/NN.json``, so that neither the
notebook nor the students' file browser shows the answers and explanations; a lesson renders its
quiz with ``quiz_for("NN")``. The file is a list of questions::

    [{"text": "…", "options": ["…", "…"], "answer": 1, "why": ["…", "…"]}, …]

``answer`` is the index of the right option; ``why[i]`` explains option ``i`` (the widget prefixes
"Right." or "Not quite.", so an explanation does not start with a verdict of its own).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


class QuizError(ValueError):
    """A quiz file is malformed; the message names the file, the question and the problem."""


@dataclass(frozen=True)
class Question:
    """A multiple-choice question; ``why[i]`` explains option ``i``, ``answer`` is the right index."""

    text: str
    options: tuple[str, ...]
    answer: int
    why: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "options", tuple(self.options))
        object.__setattr__(self, "why", tuple(self.why))
        if len(self.options) < 2 or len(self.why) != len(self.options):
            raise ValueError(f"{self.text!r}: need >= 2 options and one explanation per option")
        if not (isinstance(self.answer, int) and 0 <= self.answer < len(self.options)):
            raise ValueError(f"{self.text!r}: answer index {self.answer!r} out of range")


def check_answer(question: Question, choice: int | None) -> tuple[bool, str]:
    """(correct?, feedback text) for the option index ``choice`` (``None``: nothing picked yet)."""
    if choice is None:
        return False, "Pick an option first."
    if not 0 <= choice < len(question.options):
        raise ValueError(f"choice {choice} out of range for {len(question.options)} options")
    correct = choice == question.answer
    return correct, ("Right. " if correct else "Not quite. ") + question.why[choice]


QUIZZES = Path(__file__).parents[1] / "quizzes"
FIELDS = {"text": str, "options": list, "answer": int, "why": list}


def load_quiz(path: str | Path) -> list[Question]:
    """The questions of one quiz file; raises ``QuizError`` (``file: question N: problem``)."""
    path = Path(path)
    try:
        records = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise QuizError(f"{path}:{err.lineno}: invalid JSON ({err.msg})") from None
    if not isinstance(records, list) or not records:
        raise QuizError(f"{path}: expected a non-empty list of questions")
    questions = []
    for number, record in enumerate(records, start=1):
        where = f"{path}: question {number}"
        if not isinstance(record, dict) or set(record) != set(FIELDS):
            keys = sorted(record) if isinstance(record, dict) else type(record).__name__
            raise QuizError(f"{where}: needs exactly the keys {sorted(FIELDS)}, got {keys}")
        for key, kind in FIELDS.items():
            if not isinstance(record[key], kind) or isinstance(record[key], bool):
                raise QuizError(f"{where}: {key!r} must be a {kind.__name__}, got {record[key]!r}")
        for key in ("options", "why"):
            if not all(isinstance(item, str) and item.strip() for item in record[key]):
                raise QuizError(f"{where}: every item of {key!r} must be a non-empty string")
        try:
            questions.append(Question(record["text"], record["options"], record["answer"], record["why"]))
        except ValueError as err:
            raise QuizError(f"{where}: {err}") from None
    return questions


def quiz_file(lesson: str) -> Path:
    """Where lesson ``lesson``'s quiz lives: ``rmlearn/quizzes/NN.json``, package data."""
    return QUIZZES / f"{lesson}.json"


def quiz(questions: Sequence[Question]):
    """An ipywidgets VBox with one block per question (radio buttons, Check button, feedback)."""
    import ipywidgets as w

    blocks = []
    for number, q in enumerate(questions, start=1):
        options = w.RadioButtons(options=[(o, i) for i, o in enumerate(q.options)], value=None,
                                 layout=w.Layout(width="auto"))
        button = w.Button(description="Check", button_style="info")
        feedback = w.HTML()

        def on_click(_, q=q, options=options, feedback=feedback):
            correct, text = check_answer(q, options.value)
            colour = "green" if correct else "#b00"
            feedback.value = f"<span style='color:{colour}'>{text}</span>"

        button.on_click(on_click)
        blocks.append(w.VBox([w.HTML(f"<b>{number}. {q.text}</b>"), options, button, feedback]))
    return w.VBox(blocks)


def quiz_for(lesson: str):
    """The quiz widget of lesson ``lesson`` (e.g. ``"01"``), read from ``rmlearn/quizzes/``."""
    return quiz(load_quiz(quiz_file(lesson)))
