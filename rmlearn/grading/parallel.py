"""The whole class graded at once: ``nbgrader autograde`` on many students in parallel.

nbgrader grades one submission after another (nbgrader's GitHub issue #174, open since 2015). Here each
submission is graded by nbgrader's own ``Autograde`` converter, in a pool of worker processes that
load the course's configuration exactly as ``nbgrader autograde`` does (``nbgrader_config.py`` in
the working directory and in the course root, plus ``nbgrader_args``), so the configured
preprocessors, timeouts and kernel sandbox apply unchanged in every worker.

Why the grades equal a serial run's, and why nothing is lost in the gradebook, on SQLite as on
PostgreSQL:

1. Before grading, the gradebook (whatever ``CourseDirectory.db_url`` names) is copied row by row
   into a snapshot, a private SQLite file.
2. Each submission is graded against its *own* copy of that snapshot: the worker never opens the
   real gradebook, so no two processes ever write the same database ("database is locked" cannot
   happen) and no worker sees another student's half-written rows.
3. When a submission is done, the main process (the only writer) replaces that submission's rows
   in the real gradebook (``submitted_assignment``, ``submitted_notebook``, ``grade``, ``comment``,
   and the ``student`` row if it is new) by the rows nbgrader wrote in the private copy, in one
   transaction. Every column is copied, so a column nbgrader adds later is not dropped.

Cell timeouts are wall-clock seconds, so kernels that share a core would run out of time where a
serial run does not: with more workers than CPUs, every worker multiplies the cell timeout and the
submission budget by ``ceil(workers / CPUs)`` (``timeout_factor``); the default is one worker per
CPU, which needs no scaling.

The autograded notebooks are written by the workers straight to ``autograded/<student>/…`` (one
folder per student, so workers never share a file). A submission that fails is reported with its
log and never stops the others; its rows are merged all the same, as a serial run leaves them. If
a grading process itself dies, the submissions it was grading beside are graded again, each alone,
and only the one that kills its grader fails.
Do not grade or edit the same submissions from another process while this runs.

    >>> from rmlearn.grading.parallel import SubmissionResult
    >>> SubmissionResult("ps1", "alice", success=True, seconds=4.2).status
    'graded'
"""

from __future__ import annotations

import contextlib
import glob
import math
import multiprocessing
import os
import re
import shutil
import tempfile
import time
import traceback
from collections import deque
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SUBMISSION_TABLES = ("submitted_assignment", "submitted_notebook", "grade", "comment")


@dataclass
class SubmissionResult:
    """What grading one (assignment, student) submission gave."""

    assignment: str
    student: str
    success: bool
    seconds: float
    log: str = ""  # nbgrader's log for this submission
    error: str = ""  # the traceback when grading failed

    @property
    def status(self) -> str:
        return "graded" if self.success else "failed"


# ------------------------------------------------------------------------------------------
# configuration: the same as `nbgrader autograde` would load
# ------------------------------------------------------------------------------------------

def autograde_app(argv: list[str]):
    """An initialised ``AutogradeApp`` (not the singleton): config files and command-line flags
    loaded exactly as ``nbgrader autograde <argv>`` loads them."""
    from nbgrader.apps import AutogradeApp

    app = AutogradeApp()
    app.initialize(argv)
    return app


def _argv(root: Path, nbgrader_args: tuple[str, ...] | list[str]) -> list[str]:
    return [f"--CourseDirectory.root={root}", *nbgrader_args]


def usable_cpus() -> int:
    """CPUs this process may run on (the default number of workers)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def find_submissions(coursedir, assignment: str) -> list[tuple[str, str]]:
    """(assignment, student) pairs under ``submitted/`` in nbgrader's order (sorted folders).

    ``assignment`` may be a glob such as ``"*"``, as for ``nbgrader autograde``. Students listed in
    ``CourseDirectory.student_id_exclude`` and folders without a notebook are left out.
    """
    pattern = coursedir.format_path(coursedir.submitted_directory, coursedir.student_id or "*", assignment)
    regexp = re.compile(coursedir.format_path(
        coursedir.submitted_directory, "(?P<student_id>.*)", "(?P<assignment_id>.*)", escape=True) + "$")
    excluded = set(filter(None, coursedir.student_id_exclude.split(",")))
    found = []
    for folder in sorted(glob.glob(pattern)):
        match = regexp.match(folder)
        if match is None or not glob.glob(os.path.join(folder, coursedir.notebook_id + ".ipynb")):
            continue
        if match["student_id"] not in excluded:
            found.append((match["assignment_id"], match["student_id"]))
    return found


# ------------------------------------------------------------------------------------------
# the gradebook: snapshot out, one submission's rows back in
# ------------------------------------------------------------------------------------------

def snapshot_gradebook(db_url: str, course_id: str, path: Path) -> Path:
    """Copy every row of the gradebook at ``db_url`` (any SQLAlchemy backend) into a new SQLite
    file ``path`` that nbgrader opens as an up-to-date gradebook of the same course."""
    from nbgrader.api import Base, Gradebook
    from sqlalchemy import create_engine, insert, select, text

    with Gradebook(db_url, course_id):  # creates or upgrades it, as nbgrader autograde would
        pass
    source, target = create_engine(db_url), create_engine(f"sqlite:///{path}")
    try:
        Base.metadata.create_all(target)
        with source.connect() as src, target.begin() as dst:
            version = src.execute(text("SELECT version_num FROM alembic_version")).scalar_one()
            dst.execute(text("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL)"))
            dst.execute(text("INSERT INTO alembic_version (version_num) VALUES (:v)"), {"v": version})
            for table in Base.metadata.sorted_tables:  # parents before children
                rows = [dict(r._mapping) for r in src.execute(select(table))]
                if rows:
                    dst.execute(insert(table), rows)
    finally:
        source.dispose()
        target.dispose()
    return path


def _submission_rows(conn, course_id: str, assignment: str, student: str) -> dict[str, list[dict]]:
    """Every row that belongs to one submission, table by table (parents first)."""
    from nbgrader.api import Base
    from sqlalchemy import select

    t = Base.metadata.tables
    assignment_ids = select(t["assignment"].c.id).where(
        t["assignment"].c.name == assignment, t["assignment"].c.course_id == course_id)
    sa = t["submitted_assignment"]
    rows = {"submitted_assignment": [dict(r._mapping) for r in conn.execute(
        select(sa).where(sa.c.assignment_id.in_(assignment_ids), sa.c.student_id == student))]}
    sn = t["submitted_notebook"]
    rows["submitted_notebook"] = [dict(r._mapping) for r in conn.execute(
        select(sn).where(sn.c.assignment_id.in_([r["id"] for r in rows["submitted_assignment"]])))]
    notebook_ids = [r["id"] for r in rows["submitted_notebook"]]
    for name in ("grade", "comment"):
        rows[name] = [dict(r._mapping) for r in conn.execute(
            select(t[name]).where(t[name].c.notebook_id.in_(notebook_ids)))]
    return rows


def merge_submission(db_url: str, private_db: Path, course_id: str, assignment: str, student: str) -> int:
    """Replace one submission's rows in the gradebook at ``db_url`` by those in ``private_db``
    (a graded copy of the snapshot), in one transaction. Returns the number of rows written."""
    from nbgrader.api import Base
    from sqlalchemy import create_engine, delete, insert, select

    t = Base.metadata.tables
    graded, main = create_engine(f"sqlite:///{private_db}"), create_engine(db_url)
    try:
        with graded.connect() as conn:
            new = _submission_rows(conn, course_id, assignment, student)
            student_row = conn.execute(select(t["student"]).where(t["student"].c.id == student)).first()
        with main.begin() as conn:
            old = _submission_rows(conn, course_id, assignment, student)
            for name in reversed(SUBMISSION_TABLES):  # children first
                ids = [r["id"] for r in old[name]]
                if ids:
                    conn.execute(delete(t[name]).where(t[name].c.id.in_(ids)))
            known = conn.execute(select(t["student"].c.id).where(t["student"].c.id == student)).first()
            if student_row is not None and known is None:
                conn.execute(insert(t["student"]), [dict(student_row._mapping)])
            for name in SUBMISSION_TABLES:
                if new[name]:
                    conn.execute(insert(t[name]), new[name])
    finally:
        graded.dispose()
        main.dispose()
    return sum(len(rows) for rows in new.values())


def gradebook_rows(db_url: str) -> dict[str, list[tuple]]:
    """Every student and submission row of a gradebook, sorted, with each random row id replaced
    by the names it stands for (assignment, notebook, cell, student): two gradebooks hold the same
    grades, comments, timestamps and flags exactly when these are equal."""
    from nbgrader.api import Base
    from sqlalchemy import create_engine, select

    t = Base.metadata.tables
    engine = create_engine(db_url)
    try:
        with engine.connect() as conn:
            def rows(name):
                return [dict(r._mapping) for r in conn.execute(select(t[name]))]

            names: dict[str, Any] = {}
            for name, key in (("assignment", lambda r: r["name"]),
                              ("notebook", lambda r: (names[r["assignment_id"]], r["name"])),
                              ("base_cell", lambda r: (names[r["notebook_id"]], r["name"], r["type"])),
                              ("submitted_assignment", lambda r: (names[r["assignment_id"]], r["student_id"])),
                              ("submitted_notebook", lambda r: (names[r["assignment_id"]], names[r["notebook_id"]]))):
                names.update({r["id"]: key(r) for r in rows(name)})
            found = {}
            for name in ("student", *SUBMISSION_TABLES):
                found[name] = sorted(
                    tuple((column, repr(names.get(value, value) if column.endswith("_id") else value))
                          for column, value in sorted(row.items()) if column != "id" or name == "student")
                    for row in rows(name))
    finally:
        engine.dispose()
    return found


# ------------------------------------------------------------------------------------------
# the workers
# ------------------------------------------------------------------------------------------

_worker: dict[str, Any] = {}


def timeout_factor(workers: int, cpus: int | None = None) -> int:
    """How much longer a cell may run when ``workers`` kernels share ``cpus`` cores: each gets about
    1/factor of a core, so a cell that fits its timeout alone fits ``factor`` × the timeout here.

    >>> timeout_factor(2, 2), timeout_factor(4, 2), timeout_factor(3, 2)
    (1, 2, 2)
    """
    return max(1, math.ceil(workers / (cpus or usable_cpus())))


def scale_timeouts(app, factor: int) -> None:
    """Multiply the cell timeout and the submission budget that the loaded configuration gives the
    course's executor (``rmlearn.grading.scoring.KernelSafeExecute``) by ``factor``, in ``app``'s
    config, so every converter made from it grades as a serial run would on an idle core."""
    if factor == 1:
        return
    from .scoring import KernelSafeExecute

    executor = KernelSafeExecute(parent=app)  # reads the same config sections the graders will
    if executor.timeout:
        app.config.Execute.timeout = app.config.KernelSafeExecute.timeout = executor.timeout * factor
    if executor.submission_timeout:
        app.config.KernelSafeExecute.submission_timeout = executor.submission_timeout * factor


def _start_worker(argv: list[str], factor: int = 1) -> None:
    """Pool initializer: load the course configuration once per worker process, with its timeouts
    scaled by ``factor`` (``timeout_factor``); keep the worker's own console output (nbgrader's
    log, kernels' stderr) off the instructor's terminal: each submission's log comes back in its
    result."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    _worker["app"] = autograde_app(argv)
    scale_timeouts(_worker["app"], factor)


def _grade(assignment: str, student: str, snapshot: str, private_db: str, force: bool) -> SubmissionResult:
    """Grade one submission against ``private_db``, a fresh copy of ``snapshot``, with nbgrader's
    ``Autograde`` (what ``NbGraderAPI.autograde``, the formgrader's button, runs)."""
    from nbgrader.converters import Autograde
    from nbgrader.utils import capture_log, temp_attrs

    app = _worker["app"]
    start = time.perf_counter()
    shutil.copyfile(snapshot, private_db)
    with temp_attrs(app.coursedir, assignment_id=assignment, student_id=student,
                    db_url=f"sqlite:///{private_db}"):
        converter = Autograde(coursedir=app.coursedir, parent=app)
        converter.force = force
        outcome = capture_log(converter)
    return SubmissionResult(assignment, student, success=bool(outcome["success"]),
                            seconds=time.perf_counter() - start,
                            log=outcome.get("log", ""), error=outcome.get("error", "") or "")


# ------------------------------------------------------------------------------------------
# the class
# ------------------------------------------------------------------------------------------

def _grade_in_pool(submissions: list[tuple[str, str]], workers: int, argv: list[str], snapshot: Path,
                   work: Path, force: bool, fresh: set[int]):
    """Yield (index, SubmissionResult) as submissions finish; submission ``k`` is graded against
    ``work/submission{k}.db``. At most ``workers`` submissions are in flight. A grading process
    that dies (not a kernel: the grader itself) breaks the pool; the submissions then in flight are
    graded again, each alone in a fresh pool, so only the one that kills its grader fails. A retried
    submission in ``fresh`` (not graded before this run) is regraded over what the killed attempt
    left in ``autograded/``, which nbgrader would otherwise skip as done."""
    queue, suspects = deque(range(len(submissions))), deque()
    while queue or suspects:
        source, size = (suspects, 1) if suspects else (queue, workers)
        retry = source is suspects
        with ProcessPoolExecutor(size, mp_context=multiprocessing.get_context("spawn"),
                                 initializer=_start_worker, initargs=(argv, timeout_factor(size))) as pool:
            running: dict = {}
            broken = False
            while source or running:
                while source and len(running) < size and not broken:
                    k = source.popleft()
                    running[pool.submit(_grade, *submissions[k], str(snapshot), str(work / f"submission{k:05d}.db"),
                                        force or (retry and k in fresh))] = k
                if not running:
                    break
                done, _ = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    k = running.pop(future)
                    try:
                        result = future.result()
                    except BrokenProcessPool as err:
                        broken = True
                        if size > 1:  # which of those in flight did it? each is retried alone
                            suspects.append(k)
                            continue
                        result = SubmissionResult(*submissions[k], success=False, seconds=0.0,
                                                  error=f"its grading process died: {err}")
                    except Exception:  # one submission's failure stops no other
                        result = SubmissionResult(*submissions[k], success=False, seconds=0.0,
                                                  error=traceback.format_exc())
                    yield k, result
                if broken:  # this pool is unusable: the rest waits for a fresh one
                    suspects.extend(running.values())
                    break


def autograde_class(assignment: str, root: str | Path = ".", workers: int | None = None, *,
                    force: bool = False, nbgrader_args: tuple[str, ...] | list[str] = (),
                    progress: bool = True) -> list[SubmissionResult]:
    """Autograde every submission of ``assignment`` in ``root``, ``workers`` at a time.

    Args:
        assignment: an assignment id or a glob (``"*"``: every assignment), as for
            ``nbgrader autograde``.
        root: the course directory (``CourseDirectory.root``).
        workers: parallel grading processes (default: the CPUs this process may use). With more
            workers than CPUs, every cell timeout and submission budget is multiplied by
            ``timeout_factor(workers)``, so a slow but honest cell that passes in a serial run
            passes here too.
        force: regrade submissions that were graded already (``nbgrader autograde --force``).
        nbgrader_args: extra nbgrader flags, e.g. ``["--Execute.timeout=15"]``.
        progress: show a tqdm progress bar on stderr.

    Returns:
        One ``SubmissionResult`` per submission, in nbgrader's order (by student folder).
        Already graded submissions that nbgrader skips count as graded.
    """
    from tqdm.auto import tqdm

    root = Path(root).expanduser().resolve()
    argv = _argv(root, list(nbgrader_args))
    app = autograde_app(argv)  # fails here, once, if the configuration cannot load (e.g. no sandbox)
    coursedir = app.coursedir
    db_url, course_id = coursedir.db_url, coursedir.course_id
    submissions = find_submissions(coursedir, assignment)
    if not submissions:
        pattern = coursedir.format_path(coursedir.submitted_directory, "*", assignment)
        raise FileNotFoundError(f"no submission of {assignment!r} to grade: nothing matches {pattern}")
    workers = max(1, min(workers or usable_cpus(), len(submissions)))
    Path(coursedir.format_path(coursedir.autograded_directory, ".", ".")).mkdir(parents=True, exist_ok=True)

    fresh = {k for k, (a, s) in enumerate(submissions)
             if not os.path.exists(coursedir.format_path(coursedir.autograded_directory, s, a))}
    work = Path(tempfile.mkdtemp(prefix="rmlearn-autograde-"))
    bar = tqdm(total=len(submissions), desc=f"autograde {assignment}", unit="submission", disable=not progress)
    results: dict[tuple[str, str], SubmissionResult] = {}
    try:
        snapshot = snapshot_gradebook(db_url, course_id, work / "snapshot.db")
        for k, result in _grade_in_pool(submissions, workers, argv, snapshot, work, force, fresh):
            private = work / f"submission{k:05d}.db"
            if private.exists():  # as after a serial run, the gradebook keeps what nbgrader wrote
                merge_submission(db_url, private, course_id, result.assignment, result.student)
                private.unlink()
            results[result.assignment, result.student] = result
            bar.update(1)
            bar.set_postfix(failed=sum(not r.success for r in results.values()))
    finally:
        bar.close()
        shutil.rmtree(work, ignore_errors=True)
        kill_stray_kernels(coursedir.format_path(coursedir.autograded_directory, ".", "."))
    return [results[key] for key in submissions]


def kill_stray_kernels(folder: str | Path) -> int:
    """Kill every sandboxed kernel (a ``bwrap`` process and what it runs) still working in ``folder``;
    return how many sandboxes were killed.

    A grader that dies while its kernel runs (a submission that kills its grading process takes the
    pool's other workers down with it) can leave that kernel behind: bwrap's ``--die-with-parent``
    did not reach one such kernel in our tests, which then ran on, adopted by pid 1, with a student's
    code in it. ``autograde_class`` calls this when it ends, for the course's ``autograded/`` folder.
    """
    import psutil

    inside = str(Path(folder).resolve())
    killed = 0
    for proc in psutil.process_iter(["name"]):
        try:
            if proc.info["name"] != "bwrap":
                continue
            cwd = proc.cwd().removesuffix(" (deleted)")  # the kernel's folder may be gone already
            if cwd != inside and not cwd.startswith(inside + os.sep):
                continue
            tree = [*proc.children(recursive=True), proc]
        except psutil.Error:  # it ended meanwhile, or is not ours to inspect
            continue
        for member in tree:  # each on its own: a child that ends meanwhile must not spare the sandbox
            with contextlib.suppress(psutil.Error):
                member.kill()
        psutil.wait_procs(tree, timeout=5)
        killed += 1
    return killed


def summary(results: list[SubmissionResult], seconds: float) -> str:
    """A printable account: counts, throughput and, for each failure, the end of its log."""
    failed = [r for r in results if not r.success]
    rate = 60 * len(results) / seconds if seconds > 0 else float("nan")
    lines = [f"{len(results) - len(failed)} of {len(results)} submissions graded in {seconds:.1f} s "
             f"({rate:.1f} submissions per minute)"]
    for r in failed:
        tail = "\n".join((r.log + "\n" + r.error).strip().splitlines()[-15:])
        lines += [f"FAILED {r.assignment} / {r.student}:", "    " + tail.replace("\n", "\n    ")]
    return "\n".join(lines)
