"""What students can install holds no solution and no expected answer; instructors still get a course.

The wheel and the sdist are built from this checkout with hatchling (the build backend) and every
member is read: none may hold nbgrader's solution or hidden-test markers, an expected-answers
file, any expected value of ``exercises/answers/*/*.json`` or any line of a reference solution
(the simulated students, which hold right answers, live in ``tests/``). The wheel is then unpacked as a plain install: ``rmlearn course init`` must fail there with a
message that says where the instructor materials are, and work with ``--from PATH/TO/exercises``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from rmlearn.grading.instructor import ASSIGNMENTS, exercises_dir, init_course

REPO = Path(__file__).resolve().parents[1]
EXERCISES = REPO / "exercises"
LEAK_MARKERS = (b"BEGIN " + b"SOLUTION", b"BEGIN " + b"HIDDEN TESTS")  # split: this file is no leak


def _normal(text: str) -> str:
    """Whitespace dropped and quotes made double, so `answer_q1='C'` matches `answer_q1 = "C"`."""
    return re.sub(r"\s+", "", text).replace("'", '"')


def _solution_lines() -> set[str]:
    """Every answer line of the reference solutions (`answer_q3 = "D"`), normalised. (Exercise
    functions are not needles: the library implements the same formulas, in the open.)"""
    lines = set()
    for notebook in EXERCISES.glob("source/*/*.ipynb"):
        for cell in json.loads(notebook.read_text())["cells"]:
            if cell["metadata"].get("nbgrader", {}).get("solution"):
                body = "".join(cell["source"]).split("### BEGIN " + "SOLUTION")[-1].split("### END " + "SOLUTION")[0]
                lines |= {_normal(line) for line in body.splitlines() if re.match(r"\s*answer_\w+\s*=", line)}
    return lines


def _expected_values() -> set[str]:
    """Every expected value of exercises/answers/*/*.json, written as JSON or Python would write it
    (normalised); values too short to mean anything alone (a letter, 11.6) are caught through the
    solution line that sets them (`_solution_lines`)."""
    found = set()
    for path in EXERCISES.glob("answers/*/*.json"):
        for checks in json.loads(path.read_text()).values():
            for check in checks.values():
                value = check["value"]
                for text in (json.dumps(value), repr(value), json.dumps(value)[1:-1], repr(value)[1:-1]):
                    if len(_normal(text)) >= 10:
                        found.add(_normal(text))
    return found


NEEDLES = {**{v: "an expected answer" for v in _expected_values()},
           **{line: "an answer line of a reference solution" for line in _solution_lines()}}


def leaks(name: str, data: bytes) -> list[str]:
    """Why one archive member would hand a student solutions or answers (empty when it would not)."""
    found = [marker.decode() for marker in LEAK_MARKERS if marker in data]
    text = _normal(data.decode("utf-8", errors="replace"))
    found += sorted({f"{why}: {needle[:60]}" for needle, why in NEEDLES.items() if needle in text})
    parts = Path(name).parts
    if "answers" in parts and name.endswith(".json"):
        found.append("an expected-answers file")
    if "exercises" in parts and ("source" in parts or "answers" in parts):
        found.append("exercises/source or exercises/answers")
    return found


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> dict[str, Path]:
    """The wheel and the sdist of this checkout, built with hatchling's own builders."""
    from hatchling.builders.sdist import SdistBuilder
    from hatchling.builders.wheel import WheelBuilder

    out = tmp_path_factory.mktemp("dist")
    wheel = next(WheelBuilder(str(REPO)).build(directory=str(out), versions=["standard"]))
    sdist = next(SdistBuilder(str(REPO)).build(directory=str(out), versions=["standard"]))
    return {"wheel": Path(wheel), "sdist": Path(sdist)}


def members(archive: Path) -> dict[str, bytes]:
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            return {name: z.read(name) for name in z.namelist()}
    with tarfile.open(archive) as t:
        return {m.name: t.extractfile(m).read() for m in t.getmembers() if m.isfile()}


def test_the_leak_check_catches_every_expected_answer():
    """Guard: each expected value and solution line is a needle; the simulated students, which
    hold right answers (`answer_q3 = "D"`), would be flagged; a plain library module would not."""
    assert len(_expected_values()) >= 20 and len(_solution_lines()) >= 15
    assert any(why.startswith("an answer line of a reference solution") for why in
               leaks("rmlearn/grading/students.py", (REPO / "tests" / "students.py").read_bytes()))
    assert leaks("rmlearn/pooling.py", (REPO / "rmlearn" / "pooling.py").read_bytes()) == []
    for path in EXERCISES.glob("answers/*/*.json"):  # each answers file, minus its keys, is caught
        values = [check["value"] for checks in json.loads(path.read_text()).values() for check in checks.values()]
        assert any(why.startswith("an expected answer") for why in leaks("x.txt", json.dumps(values).encode())), path


def test_the_leak_check_catches_the_instructor_files():
    """Guard for the tests below: every source notebook and answers file would be flagged."""
    for assignment in ASSIGNMENTS:
        notebook = EXERCISES / "source" / assignment / f"{assignment}.ipynb"
        assert set(leaks(f"exercises/source/{assignment}/{notebook.name}", notebook.read_bytes())) >= {
            "BEGIN SOLUTION", "BEGIN HIDDEN TESTS", "exercises/source or exercises/answers"}
        answers = EXERCISES / "answers" / assignment / f"{assignment}.json"
        assert "an expected-answers file" in leaks(f"rmlearn/_course/exercises/answers/{assignment}/x.json",
                                                   answers.read_bytes())


@pytest.mark.parametrize("kind", ["wheel", "sdist"])
def test_distributions_hold_no_solution_and_no_answer(built, kind):
    files = members(built[kind])
    assert len(files) > 30, sorted(files)  # the library and the lessons are there
    assert sum(name.endswith(".ipynb") and "lessons/" in name for name in files) >= 7
    found = {name: why for name, data in files.items() if (why := leaks(name, data))}
    assert not found, f"{built[kind].name} leaks instructor materials: {found}"


def test_a_wheel_install_refuses_course_init_clearly_and_accepts_from(built, tmp_path):
    site = tmp_path / "site"
    with zipfile.ZipFile(built["wheel"]) as z:
        z.extractall(site)
    env = {**os.environ, "PYTHONPATH": str(site)}  # the unpacked wheel, ahead of this checkout
    command = [sys.executable, "-m", "rmlearn.cli", "course", "init"]
    where = subprocess.run([sys.executable, "-c", "import rmlearn; print(rmlearn.__file__)"],
                           env=env, cwd=tmp_path, capture_output=True, text=True, check=True)
    assert where.stdout.strip() == str(site / "rmlearn" / "__init__.py")

    refused = subprocess.run([*command, str(tmp_path / "course")], env=env, cwd=tmp_path,
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 2, refused.stderr
    assert "exercises/ folder of the rmlearn source repository" in refused.stderr
    assert "rmlearn course init DIR --from PATH/TO/exercises" in refused.stderr
    assert not (tmp_path / "course").exists()

    done = subprocess.run([*command, str(tmp_path / "course"), "--from", str(EXERCISES)], env=env,
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "nbgrader generate_assignment" in done.stdout
    for assignment in ASSIGNMENTS:
        assert (tmp_path / "course" / "source" / assignment / f"{assignment}.ipynb").is_file()
        assert (tmp_path / "course" / "answers" / assignment / f"{assignment}.json").is_file()


def test_init_course_from_a_source_folder_or_a_checkout(tmp_path):
    root = init_course(tmp_path / "course", source=EXERCISES)
    copied = root / "source" / ASSIGNMENTS[0] / f"{ASSIGNMENTS[0]}.ipynb"
    assert copied.read_bytes() == (EXERCISES / "source" / ASSIGNMENTS[0] / copied.name).read_bytes()
    assert (root / "nbgrader_config.py").read_text() == (EXERCISES / "nbgrader_config.py").read_text()
    assert exercises_dir(REPO) == EXERCISES  # a repository checkout: its exercises/ folder


def test_init_course_names_what_a_wrong_source_lacks(tmp_path):
    partial = tmp_path / "exercises"
    (partial / "source" / ASSIGNMENTS[0]).mkdir(parents=True)
    (partial / "source" / ASSIGNMENTS[0] / f"{ASSIGNMENTS[0]}.ipynb").write_text("{}")
    with pytest.raises(FileNotFoundError) as err:
        init_course(tmp_path / "course", source=partial)
    message = str(err.value)
    assert str(partial) in message and "nbgrader_config.py" in message
    assert f"source/{ASSIGNMENTS[1]}/{ASSIGNMENTS[1]}.ipynb" in message
    assert f"source/{ASSIGNMENTS[0]}/" not in message
    assert not (tmp_path / "course").exists()
