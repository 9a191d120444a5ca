"""Every lesson notebook executes top to bottom in a fresh kernel, headless, in under a minute,
and is committed with its outputs cleared."""

from __future__ import annotations

import os
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

LESSONS = sorted((Path(__file__).parents[1] / "lessons").glob("[0-9][0-9]_*.ipynb"))
LESSON_BUDGET_S = 60


def test_there_are_seven_lessons():
    assert [p.name[:2] for p in LESSONS] == ["01", "02", "03", "04", "05", "06", "07"]


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: clear outputs"


@pytest.mark.slow
@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_executes_headless(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    env_before = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = "Agg"
    start = time.perf_counter()
    try:
        NotebookClient(nb, timeout=LESSON_BUDGET_S, kernel_name="python3",
                       resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        if env_before is None:
            os.environ.pop("MPLBACKEND", None)
    seconds = time.perf_counter() - start
    print(f"{path.name}: {seconds:.1f} s")
    assert seconds < LESSON_BUDGET_S
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_has_slides_and_ends_with_a_quiz_and_its_exercise(path):
    nb = nbformat.read(path, as_version=4)
    slides = [c for c in nb.cells if c.metadata.get("slideshow", {}).get("slide_type") == "slide"]
    assert len(slides) >= 4, "mark slides with scripts/mark_slides.py (for voila --template=reveal)"
    text = "\n".join(c.source for c in nb.cells)
    assert "quiz(" in text and "Question(" in text
    assert any(f"ps{n}_" in text for n in range(1, 5)), "point to the matching nbgrader exercise"


def test_lessons_are_what_the_build_scripts_make(tmp_path, monkeypatch):
    """The notebooks are generated; an edit made only in a notebook would be lost on rebuild."""
    import importlib.util
    import sys

    scripts = Path(__file__).parents[1] / "scripts"
    monkeypatch.syspath_prepend(str(scripts))
    for name in ("build_lessons_01_04", "build_lessons_05_07"):
        spec = importlib.util.spec_from_file_location(name, scripts / f"{name}.py")
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        monkeypatch.setattr(module, "LESSONS", tmp_path)
        module.main()
    sys.modules.pop("mark_slides", None)
    for path in LESSONS:
        assert nbformat.read(tmp_path / path.name, as_version=4) == nbformat.read(path, as_version=4), path.name
