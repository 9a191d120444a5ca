"""Answers recorded in the student's kernel and compared outside it (``rmlearn.grading.scoring``).

Kernel side: a hidden test calls ``record(name, value)``, which displays the value in a private
mimetype. Grader side: ``records_in`` finds those records in a cell's outputs and ``mismatches``
compares them with the expected answers at ``answers_path``. Imports neither nbgrader nor torch,
so a grading kernel stays light.

>>> plain_answer((1, 2.5))
{'type': 'tuple', 'value': [1, 2.5]}
>>> same_value(0.1 + 0.2, 0.3), same_value(True, 1)
(True, False)
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

ANSWER_MIME = "application/vnd.rmlearn.answer+json"  # the private output a hidden test records
MAX_RECORD_BYTES = 1_000_000  # a larger record is ignored (the check fails)
ABS_TOL = REL_TOL = 1e-6  # default float tolerance; an answers file may set "tol" per check


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


# resources keys the nbgrader preprocessors share
UNGRADED = "rmlearn_ungraded"  # resources key: grade_ids that must go to manual grading
REMOVED = "rmlearn_removed"  # resources key: links and special files removed from the kernel's folder
