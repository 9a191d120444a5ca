"""rmlearn.grading.scoring: honest scores for messy submissions, answers judged outside the kernel.

The pipeline test grades one class of simulated ps1 students in the single autograde run of the
graded course (``graded_course.py``: init_course → generate_assignment → submitted/ → ``rmlearn
course autograde``, two at a time → generate_feedback → export) and checks every grade exactly,
the honest controls' (``s00``, ``s99``, whose names sort first and last) among them.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import nbformat
import pytest
from students import cell, messy_and_tricky_students, submit

from rmlearn.grading.scoring import mismatches, plain_answer, records_in, same_value

PS1 = "ps1_reward_scores"


# ------------------------------------------------------------------------------------------
# the comparison, without nbgrader
# ------------------------------------------------------------------------------------------

def test_plain_answer_keeps_the_type_and_turns_tensors_into_lists():
    import torch

    assert plain_answer(torch.tensor([[1.0, 2.0]])) == {"type": "Tensor", "value": [[1.0, 2.0]]}
    assert plain_answer(("a", 1)) == {"type": "tuple", "value": ["a", 1]}
    assert plain_answer({1: True}) == {"type": "dict", "value": {"1": True}}


def test_same_value_tolerates_round_off_but_not_bools_for_numbers():
    assert same_value([0.30000000000000004, 1], [0.3, 1])
    assert not same_value([0.3001], [0.3])
    assert same_value(0.3001, 0.3, tol=1e-3)
    assert not same_value(1, True) and not same_value(True, 1) and not same_value(0, False)
    assert not same_value("C", "c") and not same_value([1, 2], [1, 2, 3])
    assert same_value(float("nan"), float("nan")) and not same_value(0.0, float("nan"))


def test_every_expected_check_must_be_recorded_exactly_once_with_its_type():
    want = {"a": {"type": "Tensor", "value": [1.0]}, "b": {"type": "str", "value": "C"}}
    good = [{"name": "a", "type": "Tensor", "value": [1.0]}, {"name": "b", "type": "str", "value": "C"}]
    assert mismatches(want, good) == []
    assert mismatches(want, good + [{"name": "b", "type": "str", "value": "A"}]) == [
        "hidden check b was recorded 2 times"]  # one guess per check: extra records fail
    assert mismatches(want, [{"name": "a", "type": "list", "value": [1.0]}]) == [
        "hidden check a failed", "hidden check b was not recorded (the cell did not reach it)"]
    assert not any("C" in problem for problem in mismatches(want, [{"name": "b", "value": "D"}]))


def test_records_are_read_only_from_display_outputs_of_the_private_mimetype():
    mime = "application/vnd.rmlearn.answer+json"
    rec = {"name": "q1", "type": "str", "value": "C"}
    outputs = [{"output_type": "display_data", "data": {mime: rec}},
               {"output_type": "execute_result", "data": {mime: {**rec, "value": "D"}}},
               {"output_type": "display_data", "data": {mime: json.dumps(rec)}},
               {"output_type": "display_data", "data": {mime: {"name": "big", "value": "x" * 2_000_000}}}]
    assert records_in(outputs) == [rec, rec]


def test_the_grader_judges_records_and_sends_a_test_without_expected_answers_to_a_human(tmp_path):
    from rmlearn.grading.scoring import ANSWER_MIME, UNGRADED, JudgeAnswers

    (tmp_path / "ps" ).mkdir()
    (tmp_path / "ps" / "nb.json").write_text(json.dumps({"t1": {"x": {"type": "int", "value": 3}}}))

    def test_cell(grade_id, source, *values):
        meta = {"nbgrader": {"grade": True, "grade_id": grade_id, "points": 1, "solution": False,
                             "locked": True, "schema_version": 3}}
        outputs = [nbformat.v4.new_output("display_data", data={ANSWER_MIME: {"name": "x", **plain_answer(v)}})
                   for v in values]
        return nbformat.v4.new_code_cell(source, metadata=meta, outputs=outputs)

    right, wrong, orphan = test_cell("t1", '_record("x", f())', 3), test_cell("t1", "", 4), \
        test_cell("t2", '_record("y", g())')
    for cells, errors, ungraded in (([right], [], set()), ([wrong], ["hidden check x failed"], set()),
                                    ([orphan], [], {"t2"})):
        resources = {"nbgrader": {"assignment": "ps", "notebook": "nb"}}
        nb = nbformat.v4.new_notebook(cells=cells)
        JudgeAnswers(answers_directory=str(tmp_path)).preprocess(nb, resources)
        assert [o.evalue for o in nb.cells[0].outputs if o.output_type == "error"] == errors
        assert resources.get(UNGRADED, set()) == ungraded  # no expected answers: a human decides


# ------------------------------------------------------------------------------------------
# the class
# ------------------------------------------------------------------------------------------

def submit_students(root: Path) -> dict[str, float | None]:
    """This file's class in the graded course (graded_course.py): ``messy_and_tricky_students`` on
    ps1, each notebook written as raw JSON (nbformat would repair the mess), one of them with a stray
    rmlearn.py beside it. Returns student → expected ps1 score (None: needs manual grading)."""
    source = nbformat.read(root / "source" / PS1 / f"{PS1}.ipynb", 4)
    released = nbformat.read(root / "release" / PS1 / f"{PS1}.ipynb", 4)
    students = messy_and_tricky_students(released, source)
    for name, (notebook, _) in students.items():
        submit(root, name, PS1, released)
        raw = notebook if isinstance(notebook, bytes) else json.dumps(notebook).encode()
        (root / "submitted" / name / PS1 / f"{PS1}.ipynb").write_bytes(raw)
    (root / "submitted" / "s06_stderr_and_warning" / PS1 / "rmlearn.py").write_text(
        'raise ImportError("the submitted rmlearn.py shadowed the installed rmlearn")\n')
    return {name: expected for name, (_, expected) in students.items()}


@pytest.mark.slow
def test_a_class_of_messy_and_tricky_students_gets_exact_grades(graded_course):
    root, expected = graded_course.root, graded_course.expected[__name__]
    # autograde reports the one notebook nbgrader could not read, with nbgrader's own error, and
    # grades everybody else
    assert graded_course.autograde.returncode == 1, graded_course.log[-3000:]
    assert graded_course.failed == ["s08_not_a_notebook"], graded_course.log[-3000:]
    assert [line.strip() for line in graded_course.log.splitlines() if "error processing assignment '" in line] == [
        f"[ERROR] There was an error processing assignment '{PS1}' for student 's08_not_a_notebook'"]
    assert graded_course.feedback.returncode == 0, graded_course.feedback.stderr[-3000:]
    assert graded_course.export.returncode == 0, graded_course.export.stderr[-3000:]
    rows = {student: row for (assignment, student), row in graded_course.rows.items() if assignment == PS1}

    got = {name: (None if rows[name]["needs_manual_grading"] == "yes" else float(rows[name]["score"]))
           for name in expected}
    assert got == expected

    # the swallowed interrupt cost one cell, recorded where the student sees it
    stuck = nbformat.read(root / "autograded" / "s05_swallowed_interrupt" / PS1 / f"{PS1}.ipynb", 4)
    assert [o.ename for o in cell(stuck, "ps1-q5").outputs] == ["RunawayCellError"]
    # the honest stderr and warning stay visible to the student and cost nothing
    noisy = nbformat.read(root / "autograded" / "s06_stderr_and_warning" / PS1 / f"{PS1}.ipynb", 4)
    stderr = "".join(o.get("text", "") for o in cell(noisy, "ps1-ex1-test").outputs if o.get("name") == "stderr")
    assert "debug: pooling" in stderr and "UserWarning" in stderr

    # feedback names the failed hidden checks, but shows no expected value
    answers = json.loads((root / "answers" / PS1 / f"{PS1}.json").read_text())
    feedback = (root / "feedback" / "s01_displayhook" / PS1 / f"{PS1}.html").read_text()
    assert "hidden check right padding" in feedback
    for checks in answers.values():
        for check in checks.values():
            if isinstance(check["value"], list):
                assert json.dumps(check["value"])[1:-1] not in feedback
                assert str(check["value"])[1:-1] not in feedback


@pytest.mark.slow
def test_the_time_budget_stops_a_slow_submission_and_sends_unrun_tests_to_manual_grading():
    from rmlearn.grading.scoring import UNGRADED, KernelSafeExecute

    test_meta = {"nbgrader": {"grade": True, "grade_id": "t1", "points": 1, "solution": False,
                              "locked": True, "schema_version": 3}}
    nb = nbformat.v4.new_notebook(cells=[
        nbformat.v4.new_code_cell("import time\ntime.sleep(60)"),  # each cell may run 60 s...
        nbformat.v4.new_code_cell("assert True", metadata=test_meta)])
    resources = {"metadata": {"path": "."}}
    start = time.monotonic()
    KernelSafeExecute(timeout=60, submission_timeout=8).preprocess(nb, resources)
    assert time.monotonic() - start < 40  # ...but the whole notebook has 8 s, kernel start included
    assert nb.cells[0].outputs[-1].ename == "CellTimeoutError"  # interrupted when the budget ran out
    assert [o.ename for o in nb.cells[1].outputs] == ["SubmissionTimeout"]
    assert resources[UNGRADED] == {"t1"}


@pytest.mark.slow
def test_a_cell_starved_of_cpu_is_not_cut_but_a_sleeping_one_is():
    """Cell timeouts count the kernel's CPU time, so a slow honest cell keeps its points on
    a core shared with another busy process; a cell that only waits is stopped at its timeout,
    not after ``starved_factor`` times it (its kernel uses almost no CPU: ``waiting_share``)."""
    import os
    import subprocess

    from rmlearn.grading.scoring import KernelSafeExecute

    burn = ("import time\n_t = time.process_time()\nwhile time.process_time() - _t < 3:\n    pass\n"
            "print('done', time.time())")  # when the sleeping cell starts
    core = {min(os.sched_getaffinity(0))}
    before = os.sched_getaffinity(0)
    hog = subprocess.Popen([sys.executable, "-c", "while True:\n    pass"])
    try:
        os.sched_setaffinity(hog.pid, core)
        os.sched_setaffinity(0, core)  # the kernel inherits it: it shares one core with the hog
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(burn), nbformat.v4.new_code_cell("import time\ntime.sleep(600)")])
        executor = KernelSafeExecute(timeout=4, starved_factor=10, submission_timeout=300, kernel_name="python3")
        start = time.monotonic()
        executor.preprocess(nb, {"metadata": {"path": "."}})
    finally:
        os.sched_setaffinity(0, before)
        hog.kill()
    assert [o.output_type for o in nb.cells[0].outputs if o.output_type != "stream"] == []  # no timeout error
    done, sleep_started = "".join(o.get("text", "") for o in nb.cells[0].outputs).split()
    assert done == "done"  # 3 CPU s took > 4 s of wall time
    assert [o.get("ename") for o in nb.cells[1].outputs][-1] == "CellTimeoutError"
    assert time.time() - float(sleep_started) < 20  # cut at 4 s (+ interrupt, shutdown), not at 40 s
    assert time.monotonic() - start < 120
