"""The whole class at once: ``rmlearn course autograde`` gives exactly the grades of a serial
``nbgrader autograde``, on the SQLite gradebook and on a real PostgreSQL server.

One course (the cheapest assignment, ps3: no torch import) holds one simulated student of every
kind (``students.class_students``) plus one whose notebook is not even JSON. Copies
of it are graded serially by stock nbgrader and in parallel by rmlearn; every row of both
gradebooks is compared, and every cell's score is checked against what each student earned.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat
import pytest
from students import HARD_KINDS, SLOW_SECONDS, cell_points, class_students, submit, wrong_grades

from rmlearn.grading.instructor import ASSIGNMENTS, exercises_dir, init_course
from rmlearn.grading.parallel import autograde_class, gradebook_rows, kill_stray_kernels

ASSIGNMENT = "ps3_bias_and_segments"
CELL_TIMEOUT = 15
TABLES = ("student", "submitted_assignment", "submitted_notebook", "grade", "comment")


def run(root: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, *args], cwd=root, capture_output=True, text=True, timeout=600)
    if ok:
        assert proc.returncode == 0, f"{args} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


def sqlite_url(root: Path) -> str:
    return f"sqlite:///{root / 'gradebook.db'}"


@pytest.fixture(scope="module")
def course(tmp_path_factory) -> tuple[Path, dict[str, set[str]]]:
    """A generated course with every kind of student submitted (nothing graded yet), and
    student → test cells expected to score 0."""
    root = init_course(tmp_path_factory.mktemp("class") / "course")
    with open(root / "nbgrader_config.py", "a") as f:
        f.write(f"\nc.Execute.timeout = {CELL_TIMEOUT}\n")
    run(root, "-m", "nbgrader", "generate_assignment", ASSIGNMENT, f"--CourseDirectory.root={root}")
    source = nbformat.read(root / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    released = nbformat.read(root / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    zeros = {}
    for kind, (notebook, failing) in class_students(released, source).items():
        submit(root, kind, ASSIGNMENT, notebook)
        zeros[kind] = failing
    corrupt = submit(root, "corrupt", ASSIGNMENT, released)  # nbgrader cannot read this one
    (corrupt / f"{ASSIGNMENT}.ipynb").write_text('{"cells": [')
    return root, zeros


@pytest.fixture(scope="module")
def serial(course, tmp_path_factory) -> Path:
    """The course graded by stock ``nbgrader autograde``, one student after another."""
    root = tmp_path_factory.mktemp("serial") / "course"
    shutil.copytree(course[0], root)
    proc = run(root, "-m", "nbgrader", "autograde", ASSIGNMENT, f"--CourseDirectory.root={root}", ok=False)
    assert proc.returncode == 1 and "for student 'corrupt'" in proc.stderr, proc.stderr[-3000:]
    return root


def autograde_in_parallel(root: Path, workers: int) -> subprocess.CompletedProcess:
    proc = run(root, "-m", "rmlearn.cli", "course", "autograde", ASSIGNMENT, "--root", str(root),
               "--workers", str(workers), ok=False)
    # the unreadable notebook fails alone, is named, and the command says so by its exit status
    assert proc.returncode == 1, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "FAILED ps3_bias_and_segments / corrupt" in proc.stdout, proc.stdout[-3000:]
    assert "5 of 6 submissions graded" in proc.stdout, proc.stdout[-3000:]
    return proc


def check_same_as_serial(db_url: str, root: Path, serial: Path, zeros: dict[str, set[str]]) -> None:
    """Every gradebook row equal to the serial run's, every score the one each student earned."""
    expected, got = gradebook_rows(sqlite_url(serial)), gradebook_rows(db_url)
    assert {t: len(got[t]) for t in TABLES} == {t: len(expected[t]) for t in TABLES}
    for table in TABLES:
        assert got[table] == expected[table], table
    # the same autograded folders (the failed submission's is removed in both)
    graded = sorted(os.path.relpath(p, root) for p in glob.glob(str(root / "autograded" / "*" / "*" / "*.ipynb")))
    assert graded == sorted(os.path.relpath(p, serial) for p in
                            glob.glob(str(serial / "autograded" / "*" / "*" / "*.ipynb")))
    assert len(graded) == len(zeros)
    # and the grades are the right ones, cell by cell
    points = {ASSIGNMENT: cell_points(nbformat.read(root / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4))}
    assert wrong_grades(db_url, {(ASSIGNMENT, s): zeros for s, zeros in zeros.items()}, points) == []


@pytest.mark.slow
def test_parallel_autograde_on_sqlite_equals_a_serial_run(course, serial, tmp_path):
    root = tmp_path / "course"
    shutil.copytree(course[0], root)
    autograde_in_parallel(root, workers=2)
    zeros = course[1]
    check_same_as_serial(sqlite_url(root), root, serial, zeros)

    # graded submissions are skipped the second time, as nbgrader skips them; nothing changes
    before = gradebook_rows(sqlite_url(root))
    results = autograde_class(ASSIGNMENT, root, workers=1, progress=False)
    assert [(r.student, r.success) for r in results] == [(s, s != "corrupt") for s in sorted([*zeros, "corrupt"])]
    assert all("Skipping existing assignment" in r.log for r in results if r.success)
    assert gradebook_rows(sqlite_url(root)) == before


def test_the_simulated_class_has_every_kind_of_student_for_every_assignment():
    """benchmarks/bench_class.py grades every assignment (ps5 has no plain letter question)."""
    for assignment in ASSIGNMENTS:
        source = nbformat.read(exercises_dir() / "source" / assignment / f"{assignment}.ipynb", 4)
        students = class_students(source, source, HARD_KINDS)
        assert list(students) == list(HARD_KINDS)
        points = cell_points(source)
        assert students["partial"][1] and students["partial"][1] < set(points), assignment
        assert students["honest"][1] == students["slow"][1] == students["linker"][1] == set()


@pytest.mark.slow
def test_more_workers_than_cores_gives_slow_honest_students_their_serial_grades(course, tmp_path):
    """Two graders share one core; each slow but honest cell needs SLOW_SECONDS of CPU
    under a cell timeout it meets alone (1.5 × SLOW_SECONDS), not at half a core."""
    root = tmp_path / "course"
    shutil.copytree(course[0], root)
    shutil.rmtree(root / "submitted")
    source = nbformat.read(root / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    released = nbformat.read(root / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    kinds = class_students(released, source, HARD_KINDS)
    expected = {}
    for student in ("slow1", "slow2", "linker"):
        notebook, zeros = kinds["linker" if student == "linker" else "slow"]
        submit(root, student, ASSIGNMENT, notebook)
        expected[ASSIGNMENT, student] = zeros
    one_core = {min(os.sched_getaffinity(0))}
    proc = subprocess.run(
        [sys.executable, "-m", "rmlearn.cli", "course", "autograde", ASSIGNMENT, "--root", str(root), "--workers", "2",
         "--set", f"Execute.timeout={int(1.5 * SLOW_SECONDS)}", "--quiet"],
        cwd=root, capture_output=True, text=True, timeout=600, preexec_fn=lambda: os.sched_setaffinity(0, one_core))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    points = {ASSIGNMENT: cell_points(source)}
    assert wrong_grades(sqlite_url(root), expected, points) == []
    folder = root / "autograded" / "linker" / ASSIGNMENT
    assert not [p for p in folder.iterdir() if p.is_symlink()]  # the links were removed, not followed
    assert nbformat.read(folder / f"{ASSIGNMENT}.ipynb", 4).cells


@pytest.mark.slow
def test_course_report_gives_pass_shares_a_histogram_and_the_common_wrong_answers(course, serial, tmp_path):
    """The item analysis an instructor reads after grading, from the serial run's course."""
    proc = run(serial, "-m", "rmlearn.cli", "course", "report", ASSIGNMENT, "--root", str(serial),
               "--plot", str(tmp_path / "report.png"))
    text = proc.stdout
    zeros = course[1]  # student → test cells expected to score 0 (corrupt: not graded)
    points = cell_points(nbformat.read(serial / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4))
    assert f"{ASSIGNMENT}: {len(zeros)} submissions graded (1 not graded: needs manual grading)" in text, text
    for grade_id in points:  # the share of students with full points, per check
        share = sum(grade_id not in z for z in zeros.values()) / len(zeros)
        assert re.search(rf"^{re.escape(grade_id)}\s+\S+\s+{share:.0%}$", text, re.M), (grade_id, text)
    totals = sorted(sum(p for g, p in points.items() if g not in z) for z in zeros.values())
    for total in set(totals):  # the histogram: one row per total, with its count
        assert re.search(rf"^\s*{total:g} \| #+ {totals.count(total)}$", text, re.M), (total, text)
    # partial and malicious both answered the first letter question with the same wrong letter
    source = nbformat.read(serial / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    partial, _ = class_students(source, source)["partial"]
    wrong = re.search(r'^answer_q\w+\s*=\s*"([A-D])"', next(c.source for c in partial.cells if '= "' in c.source
                                                            and c.metadata.get("nbgrader", {}).get("solution")), re.M)[1]
    first_test = sorted(zeros["partial"])[0]
    assert re.search(rf'^  {re.escape(first_test)} / \w+: "{wrong}" ×2$', text, re.M), text
    assert (tmp_path / "report.png").stat().st_size > 10_000


@pytest.mark.slow
def test_course_report_names_an_unknown_assignment_or_a_missing_gradebook(course, tmp_path):
    proc = run(course[0], "-m", "rmlearn.cli", "course", "report", "ps9", "--root", str(course[0]), ok=False)
    assert proc.returncode == 2 and "no assignment 'ps9' in the gradebook" in proc.stderr, proc.stderr
    root = init_course(tmp_path / "course")
    proc = run(root, "-m", "rmlearn.cli", "course", "report", ASSIGNMENT, "--root", str(root), ok=False)
    assert proc.returncode == 2 and "no gradebook yet" in proc.stderr, proc.stderr


KILL_GRADER = """
import os


def _kill_grader(assignment, student, notebooks):
    if student == "crasher":
        os._exit(3)  # as a student's code that reaches its grading process would


c.Autograde.pre_convert_hook = _kill_grader
"""


@pytest.mark.slow
def test_a_submission_that_kills_its_grading_process_fails_alone(course, tmp_path):
    root = tmp_path / "course"
    shutil.copytree(course[0], root)
    for folder in (root / "submitted").iterdir():
        if folder.name not in ("blank", "corrupt"):
            shutil.rmtree(folder)
    shutil.copytree(root / "submitted" / "blank", root / "submitted" / "crasher")
    with open(root / "nbgrader_config.py", "a") as f:
        f.write(KILL_GRADER)

    results = {r.student: r for r in autograde_class(ASSIGNMENT, root, workers=2, progress=False)}
    assert "grading process died" in results["crasher"].error and not results["crasher"].success
    assert not results["corrupt"].success and "died" not in results["corrupt"].error  # nbgrader's own failure
    assert results["blank"].success  # in flight when the pool broke: graded again, alone
    points = {ASSIGNMENT: cell_points(nbformat.read(root / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4))}
    assert wrong_grades(sqlite_url(root), {(ASSIGNMENT, "blank"): set(points[ASSIGNMENT])}, points) == []
    assert _sandboxes_in(root / "autograded") == []  # no kernel outlives the run that started it


def _sandboxes_in(folder: Path) -> list[int]:
    import psutil

    found = []
    for proc in psutil.process_iter(["name"]):
        try:
            if proc.info["name"] == "bwrap" and proc.cwd().removesuffix(" (deleted)").startswith(str(folder)):
                found.append(proc.pid)
        except psutil.Error:
            continue
    return found


def test_stray_sandboxed_kernels_in_the_graded_folder_are_killed_and_no_other(tmp_path):
    import psutil

    from rmlearn.grading.sandbox import find_bwrap

    graded, elsewhere = tmp_path / "autograded" / "student" / "ps1", tmp_path / "other"
    graded.mkdir(parents=True)
    elsewhere.mkdir()
    sandbox = [find_bwrap(), "--die-with-parent", "--unshare-all", "--ro-bind", "/", "/", "--dev", "/dev",
               "--proc", "/proc", "sleep", "120"]
    stray, other = (subprocess.Popen(sandbox, cwd=folder) for folder in (graded, elsewhere))
    try:
        assert kill_stray_kernels(tmp_path / "autograded") == 1
        stray.wait(timeout=10)  # ended (raises if still running), and the sleep inside it with it
        assert not [p for p in psutil.process_iter(["cmdline"]) if p.info["cmdline"] == ["sleep", "120"]
                    and p.cwd() == str(graded)]
        assert other.poll() is None and _sandboxes_in(tmp_path / "autograded") == []
    finally:
        for proc in (stray, other):
            proc.kill()
            proc.wait()


# ------------------------------------------------------------------------------------------
# PostgreSQL: a throwaway server started by the test
# ------------------------------------------------------------------------------------------

def _postgres_bin() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@pytest.fixture(scope="module")
def postgres_url():
    """A PostgreSQL server in a temporary directory, on a private unix socket (no TCP), with a
    throwaway database; stopped and deleted afterwards. initdb refuses to run as root, so as root
    the server runs as the ``postgres`` user that Debian's package creates (``runuser``)."""
    bindir = _postgres_bin()
    if bindir is None:
        message = "PostgreSQL is not installed: run scripts/install_postgres.sh (apt-get install postgresql)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    as_user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    home = Path(tempfile.mkdtemp(prefix="rmlearn-pg-"))  # in /tmp, which the postgres user can reach
    data, sockets = home / "data", home / "sockets"
    sockets.mkdir()
    if as_user:
        shutil.chown(home, "postgres")
        shutil.chown(sockets, "postgres")
    with socket.socket() as s:  # the port only names the socket file; a free one avoids confusion
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]

    def pg(*args: str) -> None:
        proc = subprocess.run([*as_user, *args], capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"{args[0]} failed:\n{proc.stdout}\n{proc.stderr}"

    pg(str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
    pg(str(bindir / "pg_ctl"), "-D", str(data), "-l", str(home / "server.log"), "-w", "-o",
       f"-k {sockets} -p {port} -c listen_addresses='' -c fsync=off", "start")
    try:
        pg(str(bindir / "createdb"), "-h", str(sockets), "-p", str(port), "-U", "postgres", "gradebook")
        yield f"postgresql+psycopg://postgres@/gradebook?host={sockets}&port={port}"
    finally:
        pg(str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(home, ignore_errors=True)


@pytest.mark.slow
def test_parallel_autograde_on_postgresql_equals_a_serial_run(course, serial, postgres_url, tmp_path):
    root = tmp_path / "course"
    shutil.copytree(course[0], root)
    (root / "gradebook.db").unlink()  # the gradebook now lives on the server
    with open(root / "nbgrader_config.py", "a") as f:
        f.write(f"\nc.CourseDirectory.db_url = {postgres_url!r}\n")
    run(root, "-m", "nbgrader", "generate_assignment", ASSIGNMENT, "--force", f"--CourseDirectory.root={root}")
    autograde_in_parallel(root, workers=2)
    assert not (root / "gradebook.db").exists()
    check_same_as_serial(postgres_url, root, serial, course[1])


# ------------------------------------------------------------------------------------------
# the merge itself, on a hand-made gradebook (fast)
# ------------------------------------------------------------------------------------------

def _gradebook_with_one_submission(url: str) -> None:
    from nbgrader.api import Gradebook

    with Gradebook(url, "c") as gb:
        gb.add_assignment("a")
        gb.add_notebook("n", "a")
        for name in ("t1", "t2"):
            gb.add_grade_cell(name, "n", "a", max_score=2, cell_type="code")
        gb.add_solution_cell("s1", "n", "a")
        gb.add_student("ann")
        gb.add_submission("a", "ann")
        grade = gb.find_grade("t1", "n", "a", "ann")
        grade.auto_score, grade.manual_score = 2.0, 1.5  # a grader corrected it by hand
        gb.db.commit()


def _grade_in_private_copy(snapshot: Path, private: Path, student: str, t1: float) -> None:
    from nbgrader.api import Gradebook

    shutil.copyfile(snapshot, private)
    with Gradebook(f"sqlite:///{private}", "c") as gb:
        gb.update_or_create_student(student)
        gb.update_or_create_submission("a", student)
        for name, score in (("t1", t1), ("t2", 0.0)):
            gb.find_grade(name, "n", "a", student).auto_score = score
        gb.find_comment("s1", "n", "a", student).auto_comment = f"{student} graded"
        gb.db.commit()


@pytest.mark.slow
def test_merge_writes_one_submission_and_leaves_every_other_row(tmp_path, monkeypatch):
    from rmlearn.grading.parallel import merge_submission, snapshot_gradebook

    # a new gradebook asks the `alembic` command for its schema version (the course config does this)
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"])

    main = f"sqlite:///{tmp_path / 'main.db'}"
    _gradebook_with_one_submission(main)
    snapshot = snapshot_gradebook(main, "c", tmp_path / "snapshot.db")
    assert gradebook_rows(f"sqlite:///{snapshot}") == gradebook_rows(main)
    before = gradebook_rows(main)

    # a new student graded in a private copy arrives whole; ann's rows are untouched
    _grade_in_private_copy(snapshot, tmp_path / "bob.db", "bob", t1=2.0)
    merge_submission(main, tmp_path / "bob.db", "c", "a", "bob")
    after = gradebook_rows(main)
    assert after == gradebook_rows(f"sqlite:///{tmp_path / 'bob.db'}")
    assert {t: len(after[t]) for t in TABLES} == {"student": 2, "submitted_assignment": 2,
                                                 "submitted_notebook": 2, "grade": 4, "comment": 2}
    assert all(row in after[t] for t in TABLES for row in before[t])

    # ann regraded: her rows are replaced, not duplicated; the hand-given score survives as in nbgrader
    _grade_in_private_copy(snapshot, tmp_path / "ann.db", "ann", t1=1.0)
    merge_submission(main, tmp_path / "ann.db", "c", "a", "ann")
    from nbgrader.api import Gradebook

    with Gradebook(main, "c") as gb:
        t1 = gb.find_grade("t1", "n", "a", "ann")
        assert (t1.auto_score, t1.manual_score) == (1.0, 1.5)
        assert gb.find_comment("s1", "n", "a", "ann").auto_comment == "ann graded"
        assert gb.find_grade("t1", "n", "a", "bob").auto_score == 2.0
    assert {t: len(gradebook_rows(main)[t]) for t in TABLES} == {t: len(after[t]) for t in TABLES}


def test_course_autograde_command_line_reads_every_option():
    from rmlearn.cli import _parser

    args = _parser().parse_args(["course", "autograde", "*", "--root", "my-course", "--workers", "4",
                                 "--force", "--set", "Execute.timeout=60", "--set", "Autograde.create_student=False"])
    assert (args.assignment, args.root, args.workers, args.force) == ("*", "my-course", 4, True)
    assert args.set == ["Execute.timeout=60", "Autograde.create_student=False"]
