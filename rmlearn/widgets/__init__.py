"""ipywidgets explorers for the lessons. UI only: every number comes from the rmlearn library.

Each explorer returns an ipywidgets container that works in JupyterLab, Notebook 7 and Voila.
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
}
__all__ = sorted(_WHERE)


def __getattr__(name: str) -> Any:
    if name in _WHERE:
        return getattr(import_module(f".{_WHERE[name]}", __name__), name)
    raise AttributeError(f"module 'rmlearn.widgets' has no attribute {name!r}")
