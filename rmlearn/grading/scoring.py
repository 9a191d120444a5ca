"""Honest scores for messy submissions, with the expected answers kept out of the student's kernel.

nbgrader runs a student's notebook and scores each test cell from its outputs. Stock nbgrader
reads a non-numeric ``execute_result`` as full credit and any stderr line as a failure, gives up
on the whole notebook for one copied cell or one garbled metadata field, and has every hidden
expected value sitting in the kernel that the student's code controls. This module changes
that, step by step of ``nbgrader autograde`` (``exercises/nbgrader_config.py`` wires it in):

1. ``TolerantNotebookExporter`` reads a submission whose metadata nbformat would refuse, and
   ``NormalizeSubmission`` (first sanitize step) rebuilds every cell's nbgrader metadata from the
   gradebook. Duplicate grade_ids (a copied cell) keep the last copy, unknown or renamed grade_ids
   and unreadable metadata become plain cells, so no cell can abort the run.
2. ``KernelSafeExecute`` (execute step): a cell that kills the kernel, or that swallows the
   timeout's interrupt (``except KeyboardInterrupt: pass``), costs that cell only: the notebook
   is run again in a fresh kernel with the cell replaced by an error. Every submission has a time
   budget (``submission_timeout``); cells it leaves unrun are sent to manual grading.
3. ``JudgeAnswers`` (in the grader process, after execution): hidden tests do not assert, they
   ``record(name, value)`` the student's answers as private display outputs. The expected values
   live in ``answers/<assignment>/<notebook>.json`` at the course root, which nbgrader never
   copies into a release or an autograded folder. A test cell whose records are missing,
   repeated or different gets an error output (naming the check, never the expected value).
4. ``ScoreAutoGrades`` (replaces ``SaveAutoGrades``): a test cell scores full points when it has
   no error output, else 0; ``execute_result``, stdout and stderr earn and cost nothing.
5. ``GradesCsvExportPlugin`` (``nbgrader export``): grades.csv with a ``needs_manual_grading``
   column, ``yes`` for any submission with an unscored test (including one nbgrader failed on).

Expected answers are written from the reference solution with
``python -m rmlearn.grading.scoring record-answers COURSE_DIR ASSIGNMENT``.

The nbgrader classes are built on first use (``rmlearn.grading.scoring.KernelSafeExecute``), so
importing this module, which a grading kernel does for ``record``, never imports nbgrader.

>>> plain_answer(3) == {"type": "int", "value": 3}
True
>>> mismatches({"q1": {"type": "str", "value": "C"}}, [{"name": "q1", "type": "str", "value": "B"}])
['hidden check q1 failed']
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .answers import (
    ABS_TOL,
    ANSWER_MIME,
    REMOVED,
    UNGRADED,
    answers_path,
    mismatches,
    plain_answer,
    record,
    records_in,
    same_value,
)

# a hidden test cell imports ``record`` from here; tests and the preprocessors use the rest
__all__ = ["ABS_TOL", "ANSWER_MIME", "REMOVED", "UNGRADED", "answers_path", "capture_answers", "main",
           "mismatches", "plain_answer", "record", "records_in", "same_value", "write_answers"]

def capture_answers(notebook_path: str | Path, timeout: int = 120) -> dict[str, dict[str, dict]]:
    """Run a source notebook (the reference solution, trusted) and collect its records.

    Returns ``{grade_id: {name: {"type", "value"}}}`` for every test cell that records.
    """
    import nbformat
    from nbclient import NotebookClient

    path = Path(notebook_path)
    nb = nbformat.read(path, as_version=4)
    NotebookClient(nb, timeout=timeout, resources={"metadata": {"path": str(path.parent)}}).execute()
    answers: dict[str, dict[str, dict]] = {}
    for cell in nb.cells:
        meta = cell.metadata.get("nbgrader", {})
        if not meta.get("grade") or cell.cell_type != "code":
            continue
        errors = [o for o in cell.outputs if o.output_type == "error"]
        if errors:
            raise RuntimeError(f"{path}: the reference solution fails {meta['grade_id']}: "
                               f"{errors[0].ename}: {errors[0].evalue}")
        records = records_in(cell.outputs)
        names = [r["name"] for r in records]
        if len(set(names)) != len(names):
            raise RuntimeError(f"{path}: {meta['grade_id']} records a name twice: {names}")
        if records:
            answers[meta["grade_id"]] = {r["name"]: {"type": r["type"], "value": r["value"]} for r in records}
    return answers


def write_answers(root: str | Path, assignment: str) -> list[Path]:
    """Capture the expected answers of every notebook of ``source/<assignment>/`` into
    ``answers/<assignment>/``, keeping any ``tol`` already set there. Returns the files written."""
    root = Path(root)
    written = []
    for notebook in sorted((root / "source" / assignment).glob("*.ipynb")):
        target = answers_path(root, assignment, notebook.stem)
        old = json.loads(target.read_text()) if target.is_file() else {}
        new = capture_answers(notebook)
        for grade_id, checks in new.items():
            for name, check in checks.items():
                if "tol" in old.get(grade_id, {}).get(name, {}):
                    check["tol"] = old[grade_id][name]["tol"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(new, indent=1, sort_keys=True) + "\n")
        written.append(target)
    return written


# ------------------------------------------------------------------------------------------
# nbgrader preprocessors and the export plugin (built on first use)
# ------------------------------------------------------------------------------------------

def _make_classes() -> dict[str, type]:
    from .preprocessors import make_classes

    return make_classes()


_CLASS_NAMES = ("KernelSafeExecute", "NormalizeSubmission", "RemoveSpecialFiles", "OutputsAsText",
                "LimitOutputBytes", "JudgeAnswers",
                "ScoreAutoGrades",
                "GradesCsvExportPlugin", "TolerantNotebookExporter")


def __getattr__(name: str) -> Any:
    if name in _CLASS_NAMES:  # nbgrader imports them by name from nbgrader_config.py
        globals().update(_make_classes())
        return globals()[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main(argv: list[str] | None = None) -> int:
    """``python -m rmlearn.grading.scoring record-answers COURSE_DIR ASSIGNMENT [...]``."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m rmlearn.grading.scoring")
    sub = parser.add_subparsers(dest="command", required=True)
    rec = sub.add_parser("record-answers", help="write answers/<assignment>/*.json from the solutions")
    rec.add_argument("course_dir")
    rec.add_argument("assignments", nargs="+")
    args = parser.parse_args(argv)
    for assignment in args.assignments:
        for path in write_answers(args.course_dir, assignment):
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
