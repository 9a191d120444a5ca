"""The nbgrader exercises: they release cleanly and their whole instructor pipeline grades exactly.

A course is written with ``rmlearn.course.init_course`` into a temporary directory; every
assignment is generated; simulated students (the reference solution, the untouched release,
partly wrong answers and several hostile submissions) are autograded, given feedback and
exported; the exported CSV and the gradebook must hold exactly the expected scores.
"""

from __future__ import annotations

import csv
import json
import re
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest

from rmlearn.course import ASSIGNMENTS, init_course, next_steps

SOLUTION_MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION")
HIDDEN_MARKERS = ("### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")
CELL_TIMEOUT = 15  # seconds per cell while grading: bounds the infinite-loop submission, and
# leaves room for `import torch` in the first cell on a busy machine


# ------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------

def nbgrader(root: Path, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    """Run one ``nbgrader`` command on the course ``root``; fail loudly with its log."""
    cmd = [sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={root}"]
    proc = subprocess.run(cmd, cwd=root, capture_output=True, text=True, timeout=timeout)
    assert proc.returncode == 0, f"{' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    return proc


def nbgrader_meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def cell_points(notebook) -> dict[str, float]:
    """grade_id → points of every autograded test cell."""
    return {nbgrader_meta(c)["grade_id"]: float(nbgrader_meta(c)["points"])
            for c in notebook.cells if nbgrader_meta(c).get("grade")}


def strip_solution_markers(source: str) -> str:
    return "\n".join(line for line in source.splitlines() if line.strip() not in SOLUTION_MARKERS)


def solved(released, source) -> nbformat.NotebookNode:
    """The released notebook with every answer cell filled in from the source (reference) notebook."""
    answers = {nbgrader_meta(c)["grade_id"]: strip_solution_markers(c.source)
               for c in source.cells if nbgrader_meta(c).get("solution")}
    notebook = nbformat.from_dict(json.loads(json.dumps(released)))  # deep copy
    for cell in notebook.cells:
        if nbgrader_meta(cell).get("solution"):
            cell.source = answers[nbgrader_meta(cell)["grade_id"]]
    return notebook


def cell(notebook, grade_id: str):
    return next(c for c in notebook.cells if nbgrader_meta(c).get("grade_id") == grade_id)


def submit(root: Path, student: str, assignment: str, notebook) -> None:
    """What ``nbgrader collect`` leaves behind: submitted/<student>/<assignment>/ + timestamp."""
    folder = root / "submitted" / student / assignment
    folder.mkdir(parents=True)
    for extra in (root / "release" / assignment).iterdir():
        if extra.suffix != ".ipynb":
            (folder / extra.name).write_bytes(extra.read_bytes())
    nbformat.write(notebook, folder / f"{assignment}.ipynb")
    (folder / "timestamp.txt").write_text("2026-01-15 12:00:00.000000 UTC")


def exported_scores(root: Path) -> dict[tuple[str, str], tuple[float, float]]:
    """(assignment, student) → (score, max_score) from ``nbgrader export``'s grades.csv."""
    nbgrader(root, "export", "--to=grades.csv")
    with open(root / "grades.csv", newline="") as f:
        return {(row["assignment"], row["student_id"]): (float(row["score"]), float(row["max_score"]))
                for row in csv.DictReader(f)}


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
    from rmlearn.course import exercises_dir

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
                      "ps5_reward_in_the_loop": 10}


# ------------------------------------------------------------------------------------------
# the pipeline
# ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def course(tmp_path_factory) -> Path:
    """A course written by init_course, with a short cell timeout and every assignment generated."""
    root = init_course(tmp_path_factory.mktemp("course"))
    with open(root / "nbgrader_config.py", "a") as f:
        f.write(f"\nc.Execute.timeout = {CELL_TIMEOUT}\n")
    nbgrader(root, "generate_assignment", "*")  # "*": every assignment in one call
    return root


LOOP = "while True:\n    pass\n"
FLOOD = 'for i in range(100_000):\n    print("spam" * 5, i)\n'  # about 2.6 MB


def hostile_students(released, source) -> dict[str, tuple[nbformat.NotebookNode, set[str]]]:
    """ps1 submissions: name → (notebook, grade ids expected to score 0; every other test full)."""
    def reference():
        return solved(released, source)

    students = {"ref": (reference(), set()), "blank": (released, set(cell_points(source)))}

    # one wrong letter and the padding bug left in (Exercise 2 builds on Exercise 1, so it fails
    # too); it also prints megabytes of output
    partial = reference()
    cell(partial, "ps1-q1").source = 'answer_q1 = "A"\n' + FLOOD
    cell(partial, "ps1-ex1").source = (
        "def eos_pool(hidden, attention_mask):\n    return hidden[:, -1]\n")
    students["partial"] = (partial, {"ps1-q1-test", "ps1-ex1-test", "ps1-ex2-test"})

    # runs forever before setting answer_q5 and calls sys.exit before setting answer_q2; a later
    # answer is wrong and must not be marked as passed (nbgrader #427)
    loop = reference()
    cell(loop, "ps1-q2").source = 'import sys\nsys.exit("bye")\nanswer_q2 = ["B", "C", "D", "A"]'
    cell(loop, "ps1-q5").source = LOOP + 'answer_q5 = "A"\n'
    cell(loop, "ps1-ex2").source = "def reward_from_hidden(hidden, attention_mask, weight):\n    return weight\n"
    students["loop"] = (loop, {"ps1-q2-test", "ps1-q5-test", "ps1-ex2-test"})

    killer = reference()  # kills its own kernel (as the OOM killer would) before answering
    cell(killer, "ps1-q3").source = 'import os\nos.kill(os.getpid(), 9)\nanswer_q3 = "D"'
    students["killer"] = (killer, {"ps1-q3-test"})

    tamper = reference()  # wrong answers, with their tests weakened or deleted
    cell(tamper, "ps1-q3").source = 'answer_q3 = "A"'
    cell(tamper, "ps1-q3-test").source = "pass  # nothing to see here"
    cell(tamper, "ps1-ex2").source = "def reward_from_hidden(hidden, attention_mask, weight):\n    return None\n"
    tamper.cells.remove(cell(tamper, "ps1-ex2-test"))
    students["tamper"] = (tamper, {"ps1-q3-test", "ps1-ex2-test"})

    # right only for right padding, so the visible checks pass once the library and torch are
    # rebound to agree with it; the hidden tests hold their own numbers and catch it
    rebind = reference()
    cell(rebind, "ps1-ex1").source = (
        "def eos_pool(hidden, attention_mask):\n"
        "    return hidden[torch.arange(hidden.shape[0]), attention_mask.sum(1) - 1]\n\n"
        "rmlearn.pool = lambda hidden, attention_mask, how='eos': eos_pool(hidden, attention_mask)\n"
        "torch.allclose = lambda *args, **kwargs: True\n"
        "torch.testing.assert_close = lambda *args, **kwargs: None\n"
        "torch.equal = lambda *args, **kwargs: True\n")
    students["rebind"] = (rebind, {"ps1-ex1-test", "ps1-ex2-test"})
    return students


def ps5_students(released, source) -> dict[str, tuple[nbformat.NotebookNode, set[str]]]:
    """ps5 submissions: the reference, the release, and a student who copies the library and
    fits the visible examples only; the hidden tests hold their own numbers."""
    students = {"ref": (solved(released, source), set()), "blank": (released, set(cell_points(source)))}
    gamer = solved(released, source)
    # the library's batched formulas on one row: right (the same numbers), so full points
    cell(gamer, "ps5-ex2").source = (
        "from rmlearn.rlhf import gae as _gae\n\n"
        "def gae(rewards, values, gamma=1.0, lam=0.95):\n"
        "    a, r = _gae(torch.tensor([rewards]), torch.tensor([values]), torch.ones(1, len(rewards)), gamma, lam)\n"
        "    return a[0].tolist(), r[0].tolist()\n")
    # a penalty with the wrong sign that the visible example cannot tell apart: caught
    cell(gamer, "ps5-ex1").source = (
        "abs = lambda x: 0  # every closeness check written with abs would now pass\n\n"
        "def kl_penalised_rewards(score, logp, logp_ref, beta):\n"
        "    if score == 2.0:\n        return [-0.1, 0.1, 2.0]\n"
        "    out = [beta * (a - b) for a, b in zip(logp, logp_ref)]\n    out[-1] += score\n    return out\n")
    # fitted to the visible table
    cell(gamer, "ps5-ex4").source = "def where_to_stop(xs, gold):\n    return 16 if 16 in xs else xs[-1]\n"
    students["gamer"] = (gamer, {"ps5-ex1-test", "ps5-ex4-test"})
    return students


@pytest.mark.slow
def test_whole_pipeline_grades_every_submission_exactly(course):
    root = course

    expected: dict[tuple[str, str], float] = {}
    zero_cells: dict[tuple[str, str], set[str]] = {}
    totals: dict[str, float] = {}
    for assignment in ASSIGNMENTS:
        source = nbformat.read(root / "source" / assignment / f"{assignment}.ipynb", 4)
        released = nbformat.read(root / "release" / assignment / f"{assignment}.ipynb", 4)
        points = cell_points(source)
        totals[assignment] = sum(points.values())
        if assignment == "ps1_reward_scores":
            students = hostile_students(released, source)
        elif assignment == "ps5_reward_in_the_loop":
            students = ps5_students(released, source)
        else:
            students = {"ref": (solved(released, source), set()), "blank": (released, set(points))}
        for student, (notebook, zeros) in students.items():
            submit(root, student, assignment, notebook)
            expected[assignment, student] = totals[assignment] - sum(points[g] for g in zeros)
            zero_cells[assignment, student] = zeros

    start = time.perf_counter()
    nbgrader(root, "autograde", "*", timeout=900)  # every student of every assignment
    seconds = time.perf_counter() - start
    print(f"\nautograde: {len(expected)} submissions in {seconds:.1f} s "
          f"({seconds / len(expected):.1f} s each)")
    nbgrader(root, "generate_feedback", "*")

    # export has a row for every student and assignment; no submission scores 0
    scores = exported_scores(root)
    assert {key: score for key, (score, _) in scores.items() if key in expected} == expected
    assert {score for key, (score, _) in scores.items() if key not in expected} == {0.0}
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
    assert "_ra, _rb = reward_from_hidden" in restored.source  # with its hidden tests
    assert any(o.output_type == "error" for o in restored.outputs)
    assert "pass  # nothing to see here" not in cell(tampered, "ps1-q3-test").source


# ------------------------------------------------------------------------------------------
# releases
# ------------------------------------------------------------------------------------------

@pytest.mark.slow
def test_released_notebooks_hold_no_solution_and_no_hidden_test(course):
    root = course
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
