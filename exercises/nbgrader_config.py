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

# --- scoring (rmlearn.grading.scoring; docs/instructor.md, "How a submission is scored") ---
# Sanitize: every cell's nbgrader metadata is rebuilt from the gradebook first, so a copied cell,
# a renamed grade_id or garbage metadata never aborts the run (nbgrader's steps follow).
c.Autograde.exporter_class = "rmlearn.grading.scoring.TolerantNotebookExporter"  # non-dict metadata
c.Autograde.sanitize_preprocessors = [
    "rmlearn.grading.scoring.NormalizeSubmission",
    "nbgrader.preprocessors.ClearOutput",
    "nbgrader.preprocessors.DeduplicateIds",
    "nbgrader.preprocessors.OverwriteKernelspec",
    "nbgrader.preprocessors.OverwriteCells",
    "nbgrader.preprocessors.CheckCellMetadata",
]
# Execute: a cell that kills the kernel or ignores the timeout's interrupt costs that cell only
# (the notebook re-runs in a fresh kernel without it). RemoveSpecialFiles: the links, fifos and
# device files the kernel left in its folder are removed before nbgrader writes, chmods or copies
# anything there (it follows links); a submitted folder holding any is not graded.
# OutputsAsText: the student's HTML/JavaScript outputs become text (formgrader and feedback). JudgeAnswers compares what the hidden tests
# recorded with answers/<assignment>/<notebook>.json, outside the kernel. ScoreAutoGrades: a test
# cell scores full points without an error output, 0 with one; execute_result and stderr count
# for nothing.
c.Autograde.autograde_preprocessors = [
    "rmlearn.grading.scoring.KernelSafeExecute",
    "rmlearn.grading.scoring.RemoveSpecialFiles",
    "rmlearn.grading.scoring.OutputsAsText",
    "rmlearn.grading.scoring.JudgeAnswers",
    "nbgrader.preprocessors.IgnorePattern",
    "nbconvert.preprocessors.ClearMetadataPreprocessor",
    "nbgrader.preprocessors.LimitOutput",
    "rmlearn.grading.scoring.LimitOutputBytes",
    "rmlearn.grading.scoring.ScoreAutoGrades",
    "nbgrader.preprocessors.AssignLatePenalties",
    "nbgrader.preprocessors.CheckCellMetadata",
]
c.KernelSafeExecute.submission_timeout = 300  # seconds per notebook, re-runs included; then unrun
# test cells go to manual grading
c.KernelSafeExecute.interrupt_grace = 5  # seconds a timed-out cell has to obey the interrupt
# grades.csv gains a needs_manual_grading column (yes: a score is missing, do not read it as final)
c.ExportApp.plugin_class = "rmlearn.grading.scoring.GradesCsvExportPlugin"
# --- end of scoring ---

# A test cell the student deleted is put back (from the gradebook) and run, so the submission is
# graded automatically instead of waiting forever for manual grading (nbgrader issue #1682).
# Edited test cells are always restored from the gradebook.
c.OverwriteCells.add_missing_cells = True

# Feedback renders Markdown through nbconvert's HTML sanitizer (bleach) as well.
c.HTMLExporter.sanitize_html = True

# Output flooding: keep at most this many lines per output and traceback lines per error, and at
# most this many bytes of text per output (one huge line is one line).
c.LimitOutput.max_lines = 200
c.LimitOutput.max_traceback = 50
c.LimitOutputBytes.max_bytes = 1_000_000
# A kernel's folder keeps at most this many MB after the run (its largest files go first).
c.RemoveSpecialFiles.max_folder_mb = 200

# nbgrader's exchange (release_assignment, fetch_assignment, submit, collect, fetch_feedback) skips,
# with a warning, every file larger than this many kB (1 kB = 1000 bytes). autograde does not check
# it: it copies every file it finds in submitted/ (zip_collect or a hand copy puts anything there).
c.CourseDirectory.max_file_size = 10_000

# ---- The grading sandbox (rmlearn.grading.sandbox; docs/instructor.md, "The grading sandbox") ----
# Every grading kernel runs in bubblewrap: a read-only system, only its own autograded/<student>/<assignment>/
# folder of this course, a private /tmp and HOME, no network, no capabilities, limits on memory, CPU
# time, processes and file size, and nothing outlives it. If it cannot start, grading stops with the
# fix. Limits: c.SandboxProvisioner.memory_mb, .cpu_seconds, .processes, .file_mb, .tmp_mb.
# Set on NotebookClient, so every notebook executor nbgrader runs (Execute and any subclass) uses it.
# To grade WITHOUT it (code you trust only), replace the line below by: c.NotebookClient.kernel_name = "python3"
c.NotebookClient.kernel_name = "rmlearn-sandbox"

# nbgrader collect (the JupyterHub exchange) takes only what each student really submitted: an
# inbound folder that holds links or special files, names no plain student id, or belongs to another
# local user than the student it names is skipped with an error (docs/instructor.md, "JupyterHub").
c.ExchangeFactory.collect = "rmlearn.grading.exchange.SafeExchangeCollect"
