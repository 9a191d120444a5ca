"""A small self-check quiz: pick an option, press Check, read why it is right or wrong.

Used at the end of every lesson. Practice questions only: graded questions live in exercises/.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Question:
    """A multiple-choice question; ``why[i]`` explains option ``i``, ``answer`` is the right index."""

    text: str
    options: tuple[str, ...]
    answer: int
    why: tuple[str, ...]

    def __post_init__(self) -> None:
        if len(self.options) < 2 or len(self.why) != len(self.options):
            raise ValueError(f"{self.text!r}: need >= 2 options and one explanation per option")
        if not 0 <= self.answer < len(self.options):
            raise ValueError(f"{self.text!r}: answer index {self.answer} out of range")


def check_answer(question: Question, choice: int | None) -> tuple[bool, str]:
    """(correct?, feedback text) for the option index ``choice`` (``None``: nothing picked yet)."""
    if choice is None:
        return False, "Pick an option first."
    if not 0 <= choice < len(question.options):
        raise ValueError(f"choice {choice} out of range for {len(question.options)} options")
    correct = choice == question.answer
    return correct, ("Right. " if correct else "Not quite. ") + question.why[choice]


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
