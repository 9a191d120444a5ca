"""One graded course for the grading tests: built, submitted, autograded and exported once per test run.

``test_exercises.py``, ``test_grading_scoring.py`` and ``test_grading_sandbox.py`` each check what
nbgrader's pipeline made of their own simulated students. Grading is what costs (a sandboxed kernel,
and torch, per submission), so they share one course instead of building three (six under
pytest-xdist, where every worker built its own): ``init_course`` → ``generate_assignment "*"`` →
every student of every selected test file submitted → one ``rmlearn course autograde "*" --workers 2``
→ ``generate_feedback "*"`` → ``export``. Each test then asserts on its own students.

The class is graded two submissions at a time (``rmlearn.grading.parallel``: nbgrader's own
``Autograde`` converter per submission, so the same preprocessors, sandbox and writes as
``nbgrader autograde``). Grading is mostly waiting (a sandboxed kernel starting, ``import torch``,
shutting down): two at a time take half the wall time of one after another, which was the longest
wait of the whole suite. That a parallel run gives the grades of a serial ``nbgrader autograde``, on
SQLite and PostgreSQL, is ``test_grading_class.py``'s job.

A test file takes part by defining ``submit_students(root) -> expected``: it writes its students
into ``root/submitted/`` (``students.submit``) and returns what it expects of them, which its tests
find in ``graded_course.expected[<module name>]``. Only the files that have a selected test using
the fixture submit (``pytest tests/test_grading_scoring.py`` grades its own class only).

The grader runs as an attacked one would: secrets planted in its environment, and the course, the
kernelspecs and the gradebook's test cells recorded before and after autograde. What tests compare
as a whole (the export, those records, the processes left) is captured here, before any test adds
a student of its own.

``conftest.py`` puts every test that uses ``graded_course`` in one xdist group: with
``--dist loadgroup`` (``scripts/test.sh``) one worker builds the course and runs those tests while
the other runs the rest of the suite.
"""

from __future__ import annotations

import csv
import hashlib
import os
import re
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
import pytest

from rmlearn.grading.instructor import init_course

CELL_TIMEOUT = 5  # seconds per cell while grading: bounds the infinite-loop submissions. Counted in the
# kernel's CPU seconds (KernelSafeExecute.count_cpu_time): `import torch` in the first cell needs < 1 s of
# CPU however busy the machine, and every reference cell far less than 5 s
WORKERS = 2  # submissions graded at once: no more than these machines' cores, so timeouts are not scaled (the
# suite's other processes share the cores too: hence the starved factor below)
CONFIG = f"""
c.Execute.timeout = {CELL_TIMEOUT}
c.KernelSafeExecute.starved_factor = 12  # a cell starved by the suite's other processes may take 60 s of wall time
c.SandboxProvisioner.tmp_mb = 64
c.RemoveSpecialFiles.max_folder_mb = 20
c.LimitOutputBytes.max_bytes = 100_000
"""  # the limits test_grading_sandbox.py's attackers run into (/tmp and /dev/shm, folder, output)
OUTPUTS = ("autograded", "gradebook.db", "feedback", "grades.csv", ".nbgrader.log")  # what grading writes
MARKER = f"rmlearn-attack-{uuid.uuid4().hex[:8]}"  # attackers put it in every process they start
SECRETS = {name: f"{name.lower()}-{uuid.uuid4().hex}" for name in (
    "PGPASSWORD", "JUPYTERHUB_API_TOKEN", "AWS_SECRET_ACCESS_KEY", "NBGRADER_DB_PASSWORD", "OPENAI_API_KEY")}


def python_run(root: Path, *args: str, env: dict | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    """``python ARGS`` in the course ``root``, its output captured (a held pipe would block here)."""
    return subprocess.run([sys.executable, *args], cwd=root, env=env, capture_output=True, text=True, timeout=timeout)


def nbgrader_run(root: Path, *args: str, env: dict | None = None, timeout: float = 900) -> subprocess.CompletedProcess:
    """One stock ``nbgrader`` command on the course ``root``."""
    return python_run(root, "-m", "nbgrader", *args, f"--CourseDirectory.root={root}", env=env, timeout=timeout)


def tree_hashes(root: Path, skip=()) -> dict[str, str]:
    """relative path → sha256 of every file under ``root`` outside the ``skip`` prefixes."""
    hashes = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        if path.is_file() and not any(rel == s or rel.startswith(s + "/") for s in skip):
            hashes[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def kernelspec_hashes() -> dict[str, str]:
    from jupyter_core.paths import jupyter_path

    found = {}
    for folder in jupyter_path("kernels") + [os.path.expanduser("~/.local/share/jupyter/kernels")]:
        if os.path.isdir(folder):
            found.update({f"{folder}/{k}": v for k, v in tree_hashes(Path(folder)).items()})
    return found


def gradebook_sources(root: Path) -> dict[tuple[str, str], str] | str:
    """The test cells the gradebook holds, (notebook, cell) → source (or why it cannot be read)."""
    from nbgrader.api import Gradebook
    from sqlalchemy.exc import DatabaseError

    try:
        with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
            return {(notebook.name, c.name): c.source for assignment in gb.assignments
                    for notebook in assignment.notebooks for c in notebook.source_cells}
    except DatabaseError as error:
        return f"unreadable gradebook: {error}"


def survivors(root: Path) -> list[psutil.Process]:
    """Processes started by an attacker, or any (bwrap, kernel) still working in the course."""
    found = []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        if any(MARKER in part or str(root) in part for part in proc.info["cmdline"] or ()) \
                or str(root) in (proc.info["cwd"] or ""):
            found.append(proc)
    return found


@dataclass
class GradedCourse:
    root: Path
    expected: dict[str, Any]  # test module name → what its submit_students returned
    submitted: set[tuple[str, str]]  # every (assignment, student) in submitted/
    autograde: subprocess.CompletedProcess
    seconds: float  # autograde's wall time
    before: tuple  # (course minus OUTPUTS, kernelspecs, the gradebook's test cells) before autograde…
    after: tuple  # …and after it (before feedback)
    survivors: list[psutil.Process]  # processes left once autograde returned
    feedback: subprocess.CompletedProcess
    export: subprocess.CompletedProcess
    rows: dict[tuple[str, str], dict[str, str]] = field(default_factory=dict)  # grades.csv by (assignment, student)

    @property
    def failed(self) -> list[str]:
        """The students autograde reported a failure for, in its order (``parallel.summary``)."""
        return re.findall(r"^FAILED [^ ]+ / ([^ ]+):$", self.autograde.stdout, flags=re.MULTILINE)

    @property
    def log(self) -> str:
        """What autograde printed: the summary (stdout), then any warnings (stderr)."""
        return self.autograde.stdout + self.autograde.stderr


def _taking_part(session: pytest.Session) -> list:
    """The test modules with a selected test that uses ``graded_course``, by name."""
    modules = {item.module.__name__: item.module for item in session.items
               if "graded_course" in item.fixturenames and hasattr(item, "module")}
    return [modules[name] for name in sorted(modules)]


@pytest.fixture(scope="session")
def graded_course(request, tmp_path_factory):
    root = init_course(tmp_path_factory.mktemp("graded") / "course")
    with open(root / "nbgrader_config.py", "a") as f:
        f.write(CONFIG)
    generated = nbgrader_run(root, "generate_assignment", "*")  # "*": every assignment in one call
    assert generated.returncode == 0, generated.stderr[-3000:]
    expected = {module.__name__: module.submit_students(root) for module in _taking_part(request.session)}
    submitted = {(p.parent.name, p.parent.parent.name) for p in (root / "submitted").glob("*/*/timestamp.txt")}
    before = tree_hashes(root, skip=OUTPUTS), kernelspec_hashes(), gradebook_sources(root)
    env = {**os.environ, **SECRETS}  # planted in the grader's environment
    try:
        start = time.perf_counter()
        autograde = python_run(root, "-m", "rmlearn.cli", "course", "autograde", "*", f"--workers={WORKERS}", "--quiet",
                               env=env)
        seconds = time.perf_counter() - start
        print(f"\nautograde: {len(submitted)} submissions in {seconds:.1f} s ({seconds / len(submitted):.1f} s each)")
        time.sleep(1.0)  # a surviving daemon would write meanwhile
        after = tree_hashes(root, skip=OUTPUTS), kernelspec_hashes(), gradebook_sources(root)
        left = survivors(root)
        feedback = nbgrader_run(root, "generate_feedback", "*", env=env)
        export = nbgrader_run(root, "export", "--to=grades.csv", env=env)
        course = GradedCourse(root, expected, submitted, autograde, seconds, before, after, left, feedback, export)
        if export.returncode == 0:
            with open(root / "grades.csv", newline="") as f:
                course.rows = {(row["assignment"], row["student_id"]): row for row in csv.DictReader(f)}
        yield course
    finally:
        for proc in survivors(root):  # only if a test failed: leave nothing running
            proc.kill()
