"""nbgrader settings for the rmlearn exercises (this folder is an nbgrader course directory).

Run nbgrader from this folder (or pass --CourseDirectory.root=<this folder>):
    nbgrader generate_assignment ps1_reward_scores
    nbgrader autograde ps1_reward_scores
See docs/instructor.md for the whole workflow.
"""

import os
import sys

c = get_config()  # noqa: F821  (injected by nbgrader)

# nbgrader upgrades its gradebook by running the `alembic` command found on PATH. When nbgrader is
# started as .venv/bin/nbgrader without activating the environment, alembic is not on PATH and
# every command that opens the gradebook fails: put this Python's own bin/ folder first.
os.environ["PATH"] = os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", "")

c.CourseDirectory.course_id = "rmlearn"

# Grading runs students' code: bound every cell, and one runaway cell costs only that cell.
c.Execute.timeout = 30  # seconds per cell; every reference cell takes well under 1 s
c.Execute.interrupt_on_timeout = True  # interrupt the runaway cell, keep grading the rest

# A cell that kills its kernel (os._exit, a segfault, the OOM killer) is recorded as an error in
# that cell, and grading goes on in a fresh kernel (see rmlearn.course.KernelSafeExecute).
c.Autograde.autograde_preprocessors = [
    "rmlearn.course.KernelSafeExecute",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "nbgrader.preprocessors.SaveAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]

# A test cell the student deleted is put back (from the gradebook) and run, so the submission is
# graded automatically instead of waiting forever for manual grading (nbgrader issue #1682).
# Edited test cells are always restored from the gradebook.
c.OverwriteCells.add_missing_cells = True

# Output flooding: keep at most this many lines per output and traceback lines per error.
c.LimitOutput.max_lines = 200
c.LimitOutput.max_traceback = 50

# Files larger than this (kB) in a submission are not copied for grading.
c.CourseDirectory.max_file_size = 10_000

# ---- The grading sandbox (rmlearn.grading.sandbox; docs/instructor.md, "The grading sandbox") ----
# Every grading kernel runs in bubblewrap: a read-only system, only its own autograded/<student>/<assignment>/
# folder of this course, a private /tmp and HOME, no network, no capabilities, limits on memory, CPU
# time, processes and file size, and nothing outlives it. If it cannot start, grading stops with the
# fix. Limits: c.SandboxProvisioner.memory_mb, .cpu_seconds, .processes, .file_mb, .tmp_mb.
# Set on NotebookClient, so every notebook executor nbgrader runs (Execute and any subclass) uses it.
# To grade WITHOUT it (code you trust only), replace the line below by: c.NotebookClient.kernel_name = "python3"
c.NotebookClient.kernel_name = "rmlearn-sandbox"
