"""The whole class: N simulated students on every assignment, graded serially by stock
``nbgrader autograde`` and in parallel by ``rmlearn course autograde``, every grade checked.

Students take the kinds of ``tests/students.py``'s ``class_students`` in turn (honest, partly
wrong, kernel-killing, test-tampering, blank, slow but honest, and one whose kernel leaves links for
nbgrader to follow), so each expected grade is known before grading.
Both runs start from identical copies of one course; both must give every student exactly the
grade they earned, and the two gradebooks must hold the same rows.

    python benchmarks/bench_class.py                         # 100 students, one worker per CPU
    python benchmarks/bench_class.py --students 10 --workers 2
    python -m benchmarks --parts class                       # 20 students, into docs/benchmarks.md
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from rmlearn.grading.instructor import ASSIGNMENTS, init_course
from rmlearn.grading.parallel import gradebook_rows, usable_cpus

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))  # the simulated students are test fixtures
from students import HARD_KINDS, cell_points, class_students, submit, wrong_grades  # noqa: E402


def build_class(root: Path, students: int) -> tuple[dict, dict]:
    """Submit ``students`` simulated students to every assignment of the course at ``root``.
    Returns (assignment, student) → test cells expected to score 0, and assignment → points."""
    expected, points = {}, {}
    for assignment in ASSIGNMENTS:
        source = nbformat.read(root / "source" / assignment / f"{assignment}.ipynb", 4)
        released = nbformat.read(root / "release" / assignment / f"{assignment}.ipynb", 4)
        points[assignment] = cell_points(source)
        kinds = class_students(released, source, HARD_KINDS)
        for k in range(students):
            kind = HARD_KINDS[k % len(HARD_KINDS)]
            student = f"s{k:03d}-{kind}"
            submit(root, student, assignment, kinds[kind][0])
            expected[assignment, student] = kinds[kind][1]
    return expected, points


def timed(command: list[str], cwd: Path) -> float:
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=cwd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:5])} … failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-4000:]}")
    return time.perf_counter() - start


def bench(students: int = 100, workers: int | None = None, log=print) -> dict:
    workers = workers or usable_cpus()
    home = Path(tempfile.mkdtemp(prefix="rmlearn-class-"))
    try:
        course = init_course(home / "course")
        timed([sys.executable, "-m", "nbgrader", "generate_assignment", "*", f"--CourseDirectory.root={course}"],
              course)
        expected, points = build_class(course, students)
        serial, parallel = home / "serial", home / "parallel"
        shutil.copytree(course, serial)
        shutil.copytree(course, parallel)
        log(f"{students} students × {len(ASSIGNMENTS)} assignments = {len(expected)} submissions; "
            f"serial, then {workers} workers", flush=True)
        rows = []
        for mode, root, command in (
                ("serial (nbgrader autograde)", serial,
                 [sys.executable, "-m", "nbgrader", "autograde", "*", f"--CourseDirectory.root={serial}"]),
                (f"parallel (rmlearn course autograde --workers {workers})", parallel,
                 [sys.executable, "-m", "rmlearn.cli", "course", "autograde", "*", "--root", str(parallel),
                  "--workers", str(workers), "--quiet"])):
            seconds = timed(command, root)
            wrong = wrong_grades(f"sqlite:///{root / 'gradebook.db'}", expected, points)
            rows.append({"mode": mode, "students": students, "workers": 1 if root == serial else workers,
                         "submissions": len(expected), "seconds": round(seconds, 1),
                         "per_minute": round(60 * len(expected) / seconds, 1), "wrong_grades": len(wrong)})
            for line in wrong[:5]:
                log("WRONG", line)
        same = gradebook_rows(f"sqlite:///{serial / 'gradebook.db'}") == \
            gradebook_rows(f"sqlite:///{parallel / 'gradebook.db'}")
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
        return {"rows": rows, "ratio": round(rows[1]["per_minute"] / rows[0]["per_minute"], 2),
                "gradebooks_identical": same, "cpus": os.cpu_count(), "load_avg_1min": load}
    finally:
        shutil.rmtree(home, ignore_errors=True)


def table(result: dict) -> list[str]:
    lines = ["| mode | students | workers | submissions | seconds | submissions/min | wrong grades |",
             "|---|---|---|---|---|---|---|"]
    for r in result["rows"]:
        lines.append(f"| {r['mode']} | {r['students']} | {r['workers']} | {r['submissions']} | {r['seconds']} "
                     f"| {r['per_minute']} | {r['wrong_grades']} |")
    lines += ["", f"Parallel / serial throughput: **{result['ratio']}×** on {result['cpus']} CPUs "
              f"(load average {result['load_avg_1min']:.1f} at the end); gradebooks identical: "
              f"{result['gradebooks_identical']}."]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=100, help="simulated students (each submits every assignment)")
    parser.add_argument("--workers", type=int, help="parallel graders (default: one per CPU)")
    parser.add_argument("--json", action="store_true", help="also print the result as JSON")
    args = parser.parse_args()
    result = bench(args.students, args.workers)
    print("\n".join(table(result)))
    if args.json:
        print(json.dumps(result))
    ok = result["gradebooks_identical"] and not any(r["wrong_grades"] for r in result["rows"])
    raise SystemExit(0 if ok else 1)


if __name__ == "__main__":
    main()
