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
import math
from pathlib import Path
from typing import Any

ANSWER_MIME = "application/vnd.rmlearn.answer+json"  # the private output a hidden test records
MAX_RECORD_BYTES = 1_000_000  # a larger record is ignored (the check fails)
ABS_TOL = REL_TOL = 1e-6  # default float tolerance; an answers file may set "tol" per check


# ------------------------------------------------------------------------------------------
# kernel side: hidden tests record answers
# ------------------------------------------------------------------------------------------

def plain_answer(value: Any) -> dict:
    """``{"type": <type name>, "value": <JSON>}``: tensors and arrays become nested lists, tuples
    lists, dict keys strings; anything else is recorded by its ``repr``."""
    return {"type": type(value).__name__, "value": _jsonable(value)}


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if hasattr(value, "tolist") and callable(value.tolist):  # torch.Tensor, numpy arrays/scalars
        return _jsonable(value.tolist())
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return repr(value)


def record(name: str, value: Any) -> None:
    """Record one answer for the grader (called by hidden tests, inside the student's kernel).

    Shows ``answer recorded: <name>`` and carries ``plain_answer(value)`` in a private mimetype;
    the grader compares it with the expected value outside the kernel.
    """
    from IPython.display import display

    payload = {"name": str(name), **plain_answer(value)}
    display({ANSWER_MIME: payload, "text/plain": f"answer recorded: {name}"}, raw=True)


# ------------------------------------------------------------------------------------------
# grader side: compare records with expected answers
# ------------------------------------------------------------------------------------------

def answers_path(root: str | Path, assignment: str, notebook: str) -> Path:
    """Where a notebook's expected answers live: ``<root>/answers/<assignment>/<notebook>.json``."""
    return Path(root) / "answers" / assignment / f"{notebook}.json"


def records_in(outputs: list) -> list[dict]:
    """The answer records among a cell's outputs (malformed or oversized ones are dropped)."""
    found = []
    for output in outputs:
        data = output.get("data") if isinstance(output, dict) else None
        if output.get("output_type") != "display_data" or not isinstance(data, dict):
            continue
        payload = data.get(ANSWER_MIME)
        if isinstance(payload, str):  # nbformat may store JSON mimetypes as text
            try:
                payload = json.loads(payload)
            except ValueError:
                continue
        try:
            small = isinstance(payload, dict) and len(json.dumps(payload, default=str)) <= MAX_RECORD_BYTES
        except (RecursionError, ValueError):
            small = False
        if small:
            found.append(payload)
    return found


def same_value(got: Any, want: Any, tol: float = ABS_TOL) -> bool:
    """Equal JSON values; floats within ``tol`` (absolute or relative), bools never equal numbers."""
    if isinstance(want, bool) or isinstance(got, bool):
        return isinstance(want, bool) and isinstance(got, bool) and got == want
    if isinstance(want, (int, float)) and isinstance(got, (int, float)):
        if isinstance(want, float) and math.isnan(want):
            return isinstance(got, float) and math.isnan(got)
        return math.isclose(got, want, rel_tol=max(tol, REL_TOL), abs_tol=tol)
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(
            same_value(g, w, tol) for g, w in zip(got, want))
    if isinstance(want, dict):
        return isinstance(got, dict) and got.keys() == want.keys() and all(
            same_value(got[k], want[k], tol) for k in want)
    return type(got) is type(want) and got == want


def mismatches(expected: dict[str, dict], records: list[dict]) -> list[str]:
    """What is wrong with one test cell's records, as messages that never show an expected value.

    Each expected check must be recorded exactly once, with the same type and an equal value.
    """
    problems = []
    for name, want in expected.items():
        got = [r for r in records if r.get("name") == name]
        if not got:
            problems.append(f"hidden check {name} was not recorded (the cell did not reach it)")
        elif len(got) > 1:
            problems.append(f"hidden check {name} was recorded {len(got)} times")
        else:
            try:
                ok = got[0].get("type") == want["type"] and same_value(
                    got[0].get("value"), want["value"], float(want.get("tol", ABS_TOL)))
            except (ArithmeticError, RecursionError, TypeError, ValueError):  # 10**400 vs a float: wrong
                ok = False
            if not ok:
                problems.append(f"hidden check {name} failed")
    return problems


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

UNGRADED = "rmlearn_ungraded"  # resources key: grade_ids that must go to manual grading
REMOVED = "rmlearn_removed"  # resources key: links and special files removed from the kernel's folder


def _make_classes() -> dict[str, type]:
    from ._scoring_steps import make_classes

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
