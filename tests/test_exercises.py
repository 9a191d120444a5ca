"""The nbgrader exercises: they release cleanly and their whole instructor pipeline grades exactly.

Simulated students (the reference solution, the untouched release, partly wrong answers and
several hostile submissions) of every assignment are autograded, given feedback and exported in the
graded course (``graded_course.py``: a course written by ``rmlearn.grading.instructor.init_course``, shared with
the other grading tests); the exported CSV and the gradebook must hold exactly the expected scores.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat
import pytest
from students import (
    SOLUTION_MARKERS,
    cell,
    cell_points,
    hostile_students,
    nbgrader_meta,
    ps5_students,
    ps6_students,
    ps7_students,
    solved,
    submit,
)

from rmlearn.grading.instructor import ASSIGNMENTS, init_course, next_steps

HIDDEN_MARKERS = ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------

def cell_grades(root: Path, assignment: str, student: str) -> dict[str, tuple[float | None, bool]]:
    """grade_id → (score, needs_manual_grade) from the gradebook."""
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        notebook = gb.find_submission_notebook(assignment, assignment, student)
        return {g.name: (g.score, g.needs_manual_grade) for g in notebook.grades}


# ------------------------------------------------------------------------------------------
# the course directory
# ------------------------------------------------------------------------------------------

def test_init_course_writes_config_and_every_assignment(tmp_path):
    root = init_course(tmp_path / "course")
    assert (root / "nbgrader_config.py").is_file()
    for assignment in ASSIGNMENTS:
        assert (root / "source" / assignment / f"{assignment}.ipynb").is_file()
    text = next_steps(root)
    assert str(root) in text and "nbgrader generate_assignment ps1_reward_scores" in text
    assert "nbgrader autograde" in text and "nbgrader export" in text


def test_init_course_refuses_a_non_empty_directory_unless_forced(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(FileExistsError, match="not empty"):
        init_course(tmp_path)
    init_course(tmp_path, force=True)
    assert (tmp_path / "notes.txt").read_text() == "mine"  # force overwrites only what it ships
    assert (tmp_path / "source" / "ps4_value_model").is_dir()


def test_every_assignment_has_points_and_at_most_a_few_per_cell():
    from rmlearn.grading.instructor import exercises_dir

    totals = {}
    for assignment in ASSIGNMENTS:
        notebook = nbformat.read(exercises_dir() / "source" / assignment / f"{assignment}.ipynb", 4)
        points = cell_points(notebook)
        totals[assignment] = sum(points.values())
        assert all(0 < p <= 3 for p in points.values()), points
        for c in notebook.cells:  # every test hides part of its checks
            if nbgrader_meta(c).get("grade"):
                assert HIDDEN_MARKERS[0] in c.source, nbgrader_meta(c)["grade_id"]
    assert totals == {"ps1_reward_scores": 10, "ps2_preference_training": 10,
                      "ps3_bias_and_segments": 12, "ps4_value_model": 11,
                      "ps5_reward_in_the_loop": 10, "ps6_trust_the_score": 9,
                      "ps7_beyond_pairs": 10}


def test_hidden_tests_only_record_and_the_expected_answers_live_outside_the_notebooks():
    """The grader, not the student's kernel, compares answers with expected ones
    (rmlearn.grading.scoring). Hidden tests hold inputs and record() calls, never an expected value."""
    from rmlearn.grading.instructor import exercises_dir
    from rmlearn.grading.scoring import answers_path

    for assignment in ASSIGNMENTS:
        notebook = nbformat.read(exercises_dir() / "source" / assignment / f"{assignment}.ipynb", 4)
        expected = json.loads(answers_path(exercises_dir(), assignment, assignment).read_text())
        tests = {nbgrader_meta(c)["grade_id"]: c.source for c in notebook.cells if nbgrader_meta(c).get("grade")}
        assert set(expected) == set(tests), assignment  # every test cell is judged outside the kernel
        for grade_id, source in tests.items():
            hidden = "\n".join(_between(source, *HIDDEN_MARKERS))
            recorded = re.findall(r'_record\("([^"]+)"', hidden)
            assert sorted(recorded) == sorted(expected[grade_id]), grade_id
            assert "assert" not in hidden, grade_id
            for check in expected[grade_id].values():
                if isinstance(check["value"], (list, dict, float)) and len(json.dumps(check["value"])) > 8:
                    assert json.dumps(check["value"]) not in hidden and repr(check["value"]) not in hidden, grade_id


# ------------------------------------------------------------------------------------------
# the pipeline
# ------------------------------------------------------------------------------------------

def submit_students(root: Path) -> dict[tuple[str, str], set[str]]:
    """This file's class in the graded course (graded_course.py): for every assignment the reference
    solution and the untouched release; on ps1 partly wrong and hostile students (``hostile_students``),
    on ps5 a student who games the visible examples. Returns (assignment, student) → test cells
    expected to score 0."""
    zero_cells: dict[tuple[str, str], set[str]] = {}
    for assignment in ASSIGNMENTS:
        source = nbformat.read(root / "source" / assignment / f"{assignment}.ipynb", 4)
        released = nbformat.read(root / "release" / assignment / f"{assignment}.ipynb", 4)
        if assignment == "ps1_reward_scores":
            students = hostile_students(released, source)
        elif assignment == "ps5_reward_in_the_loop":
            students = ps5_students(released, source)
        elif assignment == "ps6_trust_the_score":
            students = ps6_students(released, source)
        elif assignment == "ps7_beyond_pairs":
            students = ps7_students(released, source)
        else:
            students = {"ref": (solved(released, source), set()), "blank": (released, set(cell_points(source)))}
        for student, (notebook, zeros) in students.items():
            submit(root, student, assignment, notebook)
            zero_cells[assignment, student] = zeros
    return zero_cells


@pytest.mark.slow
def test_whole_pipeline_grades_every_submission_exactly(graded_course):
    root, zero_cells = graded_course.root, graded_course.expected[__name__]
    points = {a: cell_points(nbformat.read(root / "source" / a / f"{a}.ipynb", 4)) for a in ASSIGNMENTS}
    totals = {a: sum(p.values()) for a, p in points.items()}
    expected = {key: totals[key[0]] - sum(points[key[0]][g] for g in zeros) for key, zeros in zero_cells.items()}
    # autograde "*" graded every student of every assignment: none of these failed
    assert not {s for _, s in zero_cells} & set(graded_course.failed), graded_course.log[-6000:]
    assert graded_course.autograde.returncode == (1 if graded_course.failed else 0), graded_course.log[-6000:]
    assert graded_course.feedback.returncode == 0, graded_course.feedback.stderr[-6000:]

    # export has a row for every student and assignment; one that was not submitted scores 0
    assert graded_course.export.returncode == 0, graded_course.export.stderr[-3000:]
    scores = {key: (float(row["score"]), float(row["max_score"])) for key, row in graded_course.rows.items()}
    assert {key: score for key, (score, _) in scores.items() if key in expected} == expected
    assert {score for key, (score, _) in scores.items() if key not in graded_course.submitted} == {0.0}
    assert all(max_score == totals[a] for (a, _), (_, max_score) in scores.items())

    # per cell: exactly the expected tests failed, and nothing waits for a human
    for (assignment, student), zeros in zero_cells.items():
        grades = cell_grades(root, assignment, student)
        assert set(grades) == set(cell_points(nbformat.read(
            root / "source" / assignment / f"{assignment}.ipynb", 4)))
        assert {g for g, (score, _) in grades.items() if score == 0} == zeros, (assignment, student)
        assert not any(manual for _, manual in grades.values()), (assignment, student)
        assert (root / "feedback" / student / assignment / f"{assignment}.html").is_file()

    # ps3's optional model-training cell stays quiet while grading (NBGRADER_EXECUTION is set)
    ps3 = nbformat.read(root / "autograded" / "ref" / "ps3_bias_and_segments" / "ps3_bias_and_segments.ipynb", 4)
    optional = next(c for c in ps3.cells if "NBGRADER_EXECUTION" in c.source)
    assert optional.outputs == []
    # the flood was cut down; the graded notebook stays small
    flooded = root / "autograded" / "partial" / "ps1_reward_scores" / "ps1_reward_scores.ipynb"
    assert flooded.stat().st_size < 200_000
    # the deleted test cell was put back and run
    tampered = nbformat.read(root / "autograded" / "tamper" / "ps1_reward_scores" / "ps1_reward_scores.ipynb", 4)
    restored = cell(tampered, "ps1-ex2-test")
    assert '_record("left padding", reward_from_hidden' in restored.source  # with its hidden tests
    assert any(o.output_type == "error" for o in restored.outputs)
    assert "pass  # nothing to see here" not in cell(tampered, "ps1-q3-test").source


# ------------------------------------------------------------------------------------------
# releases
# ------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_released_notebooks_hold_no_solution_and_no_hidden_test(graded_course):
    root = graded_course.root
    for assignment in ASSIGNMENTS:
        source = nbformat.read(root / "source" / assignment / f"{assignment}.ipynb", 4)
        text = (root / "release" / assignment / f"{assignment}.ipynb").read_text()
        released = "\n".join(c.source for c in nbformat.reads(text, 4).cells)
        for marker in SOLUTION_MARKERS + HIDDEN_MARKERS:
            assert marker not in text, (assignment, marker)
        for c in source.cells:
            meta = nbgrader_meta(c)
            if meta.get("solution"):  # no line of any solution body survives
                body = [ln.strip() for ln in _between(c.source, *SOLUTION_MARKERS) if ln.strip()]
                assert body and not any(ln in released for ln in body if len(ln) > 12), (assignment, meta["grade_id"])
            if meta.get("grade"):  # no hidden assert survives
                hidden = [ln.strip() for ln in _between(c.source, *HIDDEN_MARKERS) if ln.strip()]
                assert hidden and not any(ln in released for ln in hidden if len(ln) > 12), \
                    (assignment, meta["grade_id"])
        assert re.search(r"raise NotImplementedError", text)
        # the expected answers stay with the instructor: in no release, in no autograded folder
        assert not list((root / "release").rglob("*answers*"))
        for check in (c for checks in json.loads(
                (root / "answers" / assignment / f"{assignment}.json").read_text()).values() for c in checks.values()):
            if isinstance(check["value"], list) and len(json.dumps(check["value"])) > 12:
                assert json.dumps(check["value"])[1:-1] not in text and str(check["value"])[1:-1] not in text


def _between(source: str, begin: str, end: str) -> list[str]:
    lines, inside = [], False
    for line in source.splitlines():
        if line.strip() == begin:
            inside = True
        elif line.strip() == end:
            inside = False
        elif inside:
            lines.append(line)
    return lines
