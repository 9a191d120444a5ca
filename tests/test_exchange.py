"""The exchange round trip on one machine, as on JupyterHub: the instructor releases, two students
(each with their own HOME, USER and student id) fetch and submit, the instructor collects,
autogrades, generates and releases feedback, and each student fetches their own feedback.

The nbgrader configuration is the one docs/instructor.md gives for a hub (its ``hub-config``
blocks), with the paths swapped for temporary ones.
"""

from __future__ import annotations

import os
import pwd
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
from conftest import unavailable
from students import cell_points, class_students

from rmlearn.grading.instructor import init_course

ASSIGNMENT = "ps3_bias_and_segments"  # the cheapest to grade: no torch import
DOCS = Path(__file__).resolve().parent.parent / "docs" / "instructor.md"
STUDENTS = ("honest", "partial", "nobody")  # student id = kind of simulated student; "nobody" is a
# local user (uid 65534) whose honest work a classmate ("daemon", another local user) tries to replace
WORK = {"honest": "honest", "partial": "partial", "nobody": "honest"}


def hub_config(name: str) -> str:
    """The ```python block after ``<!-- hub-config: NAME -->`` in docs/instructor.md."""
    found = re.search(rf"<!-- hub-config: {name} -->\s*```python\n(.*?)```", DOCS.read_text(), re.S)
    assert found, f"{DOCS}: no python block after <!-- hub-config: {name} -->"
    return found[1]


def nbgrader(cwd: Path, env: dict, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, f"nbgrader {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    return proc


def forge_inbound(inbound: Path, root: Path, students: dict) -> None:
    """Played by classmates with write access to the inbound folder: "linker" submits a
    folder whose notebook is a link to the solutions; "daemon" (a local user) puts a blank notebook in
    a folder named as nobody's, with a later timestamp. nobody's own submission is made theirs."""
    if os.geteuid() != 0:
        unavailable("the exchange forgery needs root, to give each forged folder its owner")
    nobody, daemon = pwd.getpwnam("nobody"), pwd.getpwnam("daemon")
    mine = next(inbound.glob(f"nobody+{ASSIGNMENT}+*"))
    for path in [mine, *mine.rglob("*")]:
        os.chown(path, nobody.pw_uid, nobody.pw_gid)
    later = inbound / f"nobody+{ASSIGNMENT}+2099-01-01 00:00:00.000000 UTC+forged"
    shutil.copytree(mine, later)
    nbformat.write(students["blank"][0], later / f"{ASSIGNMENT}.ipynb")
    (later / "timestamp.txt").write_text("2099-01-01 00:00:00.000000 UTC")
    for path in [later, *later.rglob("*")]:
        os.chown(path, daemon.pw_uid, daemon.pw_gid)
    linker = inbound / f"linker+{ASSIGNMENT}+2026-01-15 12:00:00.000000 UTC+links"
    linker.mkdir()
    (linker / "timestamp.txt").write_text("2026-01-15 12:00:00.000000 UTC")
    (linker / f"{ASSIGNMENT}.ipynb").symlink_to(root / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb")


@pytest.mark.slow
def test_release_fetch_submit_collect_grade_and_feedback_round_trip(tmp_path):
    exchange, etc = tmp_path / "exchange", tmp_path / "etc-jupyter"
    exchange.mkdir(mode=0o777)
    etc.mkdir()
    (etc / "nbgrader_config.py").write_text(  # the hub's global /etc/jupyter/nbgrader_config.py
        hub_config("global").replace("/srv/nbgrader/exchange", str(exchange)))
    root = init_course(tmp_path / "instructor" / "rmlearn-course")
    with open(root / "nbgrader_config.py", "a") as f:
        f.write("\n" + hub_config("instructor").replace("/home/instructor/rmlearn-course", str(root)))
        f.write("\nc.Execute.timeout = 15\n")

    base = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "NBGRADER"))}
    base["JUPYTER_CONFIG_PATH"] = str(etc)  # read by everyone, like /etc/jupyter

    def identity(name: str) -> tuple[Path, dict]:
        home = tmp_path / name
        home.mkdir(exist_ok=True)
        return home, {**base, "HOME": str(home), "USER": name, "LOGNAME": name}

    _, instructor = identity("instructor")
    nbgrader(root, instructor, "generate_assignment", ASSIGNMENT)
    nbgrader(root, instructor, "release_assignment", ASSIGNMENT)

    source = nbformat.read(root / "source" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4)
    students = class_students(nbformat.read(root / "release" / ASSIGNMENT / f"{ASSIGNMENT}.ipynb", 4), source)
    for student in STUDENTS:  # nbgrader reads the student id from the OS user (or JUPYTERHUB_USER
        home, env = identity(student)  # as jovyan); one uid here, so each passes --student
        nbgrader(home, env, "fetch_assignment", ASSIGNMENT)
        fetched = home / ASSIGNMENT / f"{ASSIGNMENT}.ipynb"
        assert "raise NotImplementedError" in fetched.read_text()  # the student version
        nbformat.write(students[WORK[student]][0], fetched)  # the student's work
        nbgrader(home, env, "submit", ASSIGNMENT, f"--student={student}")
    inbound = exchange / "rmlearn" / "inbound"
    assert len(list(inbound.iterdir())) == len(STUDENTS)
    forge_inbound(inbound, root, students)

    collect = nbgrader(root, instructor, "collect", ASSIGNMENT)
    assert sorted(p.name for p in (root / "submitted").iterdir()) == sorted(STUDENTS)
    # the forgeries are refused, each named with its reason
    log = collect.stdout + collect.stderr
    assert "linker+" in log and "symbolic link" in log, log[-3000:]
    assert "belongs to daemon, not to nobody" in log, log[-3000:]
    nbgrader(root, instructor, "autograde", ASSIGNMENT)
    nbgrader(root, instructor, "generate_feedback", ASSIGNMENT)
    nbgrader(root, instructor, "release_feedback", ASSIGNMENT)

    from nbgrader.api import Gradebook

    points = cell_points(source)
    with Gradebook(f"sqlite:///{root / 'gradebook.db'}", "rmlearn") as gb:
        for student in STUDENTS:
            zeros = students[WORK[student]][1]
            notebook = gb.find_submission_notebook(ASSIGNMENT, ASSIGNMENT, student)
            assert {g.name: g.score for g in notebook.grades} == \
                {g: 0.0 if g in zeros else p for g, p in points.items()}, student

    total = sum(points.values())
    for student in STUDENTS:
        home, env = identity(student)
        nbgrader(home, env, "fetch_feedback", ASSIGNMENT, f"--student={student}")
        files = list((home / ASSIGNMENT / "feedback").glob(f"*/{ASSIGNMENT}.html"))
        assert len(files) == 1, files  # one submission, one feedback, and only their own
        html = files[0].read_text()
        score = total - sum(points[g] for g in students[WORK[student]][1])
        assert f"{ASSIGNMENT} (Score: {score} / {total})" in html, student
        failed_tests = html.count("Test cell</a> (Score: 0.0 /")
        assert failed_tests == len(students[WORK[student]][1]), (student, failed_tests)
