"""The student's face of the course: where the lessons are (inside the wheel, or in a checkout).

``rmlearn lessons`` opens them. The instructor's side (an nbgrader course directory, grading)
is ``rmlearn.grading``, which this module does not import.
"""

from __future__ import annotations

from pathlib import Path


def course_path(name: str) -> Path:
    """A course folder: ``lessons`` (inside the wheel, or beside the package in a checkout);
    ``exercises`` only beside the package in a checkout (the wheel ships no instructor materials)."""
    package = Path(__file__).resolve().parent
    candidates = (package / "_course" / name, package.parent / name)
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    raise FileNotFoundError(
        f"the course's {name}/ folder is missing: looked in {candidates[0]} and {candidates[1]}; "
        "reinstall rmlearn"
    )
