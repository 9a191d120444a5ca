"""How long nbgrader takes to autograde one submission of each rmlearn problem set.

Writes a course with ``rmlearn.course.init_course`` into a temporary directory, generates every
assignment, submits the reference solution for ``--students`` simulated students, and times one
``nbgrader autograde <assignment>`` call per assignment (the way an instructor grades a class).
Each submission runs in its own fresh kernel, so the time per submission is mostly kernel start
plus ``import torch``; the exercises themselves take well under a second.

    python benchmarks/bench_autograde.py --students 3
    python benchmarks/bench_autograde.py --students 3 --compare     # sandboxed vs not, same course

Kernels run in the grading sandbox (``rmlearn.grading.sandbox``), as the course's config says;
``--no-sandbox`` grades with the plain ``python3`` kernel instead, ``--compare`` does both for
each assignment (regrading with ``--force``, alternating which goes first) and prints the ratio.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from rmlearn.grading.instructor import ASSIGNMENTS, init_course


def nbgrader(root: Path, *args: str) -> float:
    """Run ``nbgrader <args>`` on the course; return its wall time in seconds."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "nbgrader", *args, f"--CourseDirectory.root={root}"],
                          cwd=root, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"nbgrader {' '.join(args)} failed:\n{proc.stderr[-4000:]}")
    return time.perf_counter() - start


def reference_submission(root: Path, assignment: str) -> nbformat.NotebookNode:
    """The released notebook with the source's solutions filled in."""
    source = nbformat.read(root / "source" / assignment / f"{assignment}.ipynb", 4)
    released = nbformat.read(root / "release" / assignment / f"{assignment}.ipynb", 4)
    answers = {c.metadata["nbgrader"]["grade_id"]: c.source for c in source.cells
               if c.metadata.get("nbgrader", {}).get("solution")}
    for cell in released.cells:
        meta = cell.metadata.get("nbgrader", {})
        if meta.get("solution"):
            cell.source = answers[meta["grade_id"]]
    return released


def kernel_baseline() -> float:
    """Seconds to start a fresh kernel and ``import torch, rmlearn``: the floor of any submission."""
    from nbclient import NotebookClient

    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("import torch\nimport rmlearn")])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    start = time.perf_counter()
    NotebookClient(notebook, timeout=120).execute()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--students", type=int, default=3, help="submissions per assignment")
    parser.add_argument("--json", action="store_true", help="also print the rows as JSON")
    parser.add_argument("--no-sandbox", action="store_true", help="grade with the plain python3 kernel")
    parser.add_argument("--compare", action="store_true", help="grade with and without the sandbox")
    args = parser.parse_args()

    root = init_course(Path(tempfile.mkdtemp(prefix="rmlearn-bench-")) / "course")
    try:
        nbgrader(root, "generate_assignment", "*")
        for assignment in ASSIGNMENTS:
            notebook = reference_submission(root, assignment)
            for k in range(args.students):
                folder = root / "submitted" / f"student{k:02d}" / assignment
                shutil.copytree(root / "release" / assignment, folder)
                nbformat.write(notebook, folder / f"{assignment}.ipynb")
                (folder / "timestamp.txt").write_text("2026-01-15 12:00:00.000000 UTC")
        modes = ["sandbox", "no sandbox"] if args.compare else ["no sandbox" if args.no_sandbox else "sandbox"]
        rows = []
        for i, assignment in enumerate(ASSIGNMENTS):
            for mode in modes[::-1] if i % 2 else modes:  # alternate which mode meets a cold cache
                kernel = "python3" if mode == "no sandbox" else "rmlearn-sandbox"
                with open(root / "nbgrader_config.py", "a") as f:  # the last setting wins
                    f.write(f"\nc.Execute.kernel_name = {kernel!r}\n")
                seconds = nbgrader(root, "autograde", assignment, "--force")
                rows.append({"mode": mode, "assignment": assignment, "submissions": args.students,
                             "seconds": round(seconds, 2), "per_submission": round(seconds / args.students, 2)})
        totals = {}
        for mode in modes:
            mine = [r for r in rows if r["mode"] == mode]
            total = sum(r["seconds"] for r in mine)
            count = sum(r["submissions"] for r in mine)
            totals[mode] = total / count
            print(f"\n{mode}")
            print(f"{'assignment':<26}{'submissions':>12}{'autograde s':>13}{'s / submission':>16}")
            for r in mine:
                print(f"{r['assignment']:<26}{r['submissions']:>12}{r['seconds']:>13.1f}{r['per_submission']:>16.1f}")
            print(f"{'all':<26}{count:>12}{total:>13.1f}{total / count:>16.1f}")
        if args.compare:
            ratio = totals["sandbox"] / totals["no sandbox"]
            print(f"\nsandbox / no sandbox, seconds per submission: {ratio:.2f}")
        print(f"{'baseline: new kernel + import torch, rmlearn':<51}{kernel_baseline():>16.1f}")
        print("(one `nbgrader autograde` call per assignment: its start-up cost is shared by its submissions)")
        if args.json:
            print(json.dumps(rows))
    finally:
        shutil.rmtree(root.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
