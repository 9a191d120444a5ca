"""ipywidgets explorers for the lessons: controls wired to the library, and redrawn.

Every number an explorer shows comes from the library: the pooling and length-bias explorers call
``rmlearn.views``; the loss, ranking and segment explorers keep a small view function beside the
widget that only calls ``rmlearn.losses`` or ``rmlearn.segments`` and arranges the result. Lessons
import only the explorers and ``quiz_for`` from here. Each explorer returns an ipywidgets
container that works in JupyterLab, Notebook 7 and Voila.

Plots are ``ipywidgets.Image`` PNGs, never an ``Output`` widget written while a cell runs. Headless
runners (nbclient, hence ``jupyter nbconvert --execute`` and Voila) mimic an ``Output`` widget by
sending its new state back to the kernel on the shell channel, the same socket on which they are
waiting for the cell's reply; about 1 such cell in 100 then misses the reply's wake-up and, without
a cell timeout, waits forever with kernel and client idle (``docs/voila.md``, troubleshooting).
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_WHERE = {
    "quiz": "quizzes",
    "Question": "quizzes",
    "check_answer": "quizzes",
    "quiz_for": "quizzes",
    "load_quiz": "quizzes",
    "pooling_explorer": "pooling",
    "loss_explorer": "loss",
    "ranking_explorer": "ranking",
    "length_bias_explorer": "length_bias",
    "segment_explorer": "segments",
    "overoptimization_explorer": "overoptimization",
    "calibration_explorer": "calibration",
    "ties_explorer": "ties",
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module 'rmlearn.widgets' has no attribute {name!r}")
