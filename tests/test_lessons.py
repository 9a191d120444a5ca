"""Every lesson notebook executes top to bottom in a fresh kernel, headless, in under a minute,
and is committed with its outputs cleared.

"Under a minute" means on two quiet cores. The test runs beside three other pytest workers
(``scripts/test.sh`` runs its two passes side by side, the second under slower kernels), so wall
time there measures the neighbours as much as the lesson. The budget is therefore the kernel's own
CPU time (user + sys, every thread: what the lesson costs a quiet machine at most). Wall time only
has to catch a lesson that waits instead of computing: a cell fails after twice the budget, and the
whole lesson after ``WALL_CAP_S``. Four busy workers on two cores stretch wall time to 2-3 times
the CPU time (lesson 08: 47 s of CPU took 120 s in CI), so that cap is four budgets."""

from __future__ import annotations

import os
import time
from pathlib import Path

import nbformat
import pytest
from claims_01_07 import CHECKS
from claims_08 import check_08
from claims_09 import check_09
from claims_10 import check_10
from lesson_claims import add_claims_cell, printed
from nbclient import NotebookClient

LESSONS = sorted((Path(__file__).parents[1] / "lessons").glob("[0-9][0-9]_*.ipynb"))
LESSON_BUDGET_S = 60  # CPU seconds of the lesson's kernel
WALL_CAP_S = 4 * LESSON_BUDGET_S  # wall seconds, beside three other workers on two cores
CPU_MARKER = "kernel CPU seconds:"


def test_there_are_ten_lessons():
    assert [p.name[:2] for p in LESSONS] == ["01", "02", "03", "04", "05", "06", "07", "08", "09", "10"]


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_is_committed_without_outputs(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [] and cell.execution_count is None, f"{path.name}: clear outputs"


@pytest.mark.slow
@pytest.mark.kernels
@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_executes_headless(path, tmp_path):
    nb = nbformat.read(path, as_version=4)
    add_claims_cell(nb)  # prints the lesson's `claims` dict at the end, for its check to read
    nb.cells.append(nbformat.v4.new_code_cell(f"import time as _t\nprint({CPU_MARKER!r}, _t.process_time())"))
    env_before = os.environ.get("MPLBACKEND")
    os.environ["MPLBACKEND"] = "Agg"
    start = time.perf_counter()
    try:
        NotebookClient(nb, timeout=2 * LESSON_BUDGET_S, kernel_name="python3",
                       resources={"metadata": {"path": str(tmp_path)}}).execute()
    finally:
        if env_before is None:
            os.environ.pop("MPLBACKEND", None)
    seconds = time.perf_counter() - start
    cpu = float(printed(nb.cells.pop()).split(CPU_MARKER)[1])
    print(f"{path.name}: {seconds:.1f} s wall, {cpu:.1f} s of kernel CPU")
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors
    library_noise = [o.text for c in nb.cells if c.cell_type == "code" for o in c.outputs
                     if o.output_type == "stream" and o.name == "stderr" and "[transformers]" in o.text]
    assert not library_noise, f"transformers warnings a student cannot act on: {library_noise}"
    # what the lesson's text says about its own outputs: every lesson has its checks
    check = {**CHECKS, "08": check_08, "09": check_09, "10": check_10}.get(path.name[:2])
    assert check is not None, f"no claim checks for {path.name}"
    check(nb)
    assert cpu < LESSON_BUDGET_S, f"{path.name} used {cpu:.1f} s of CPU (budget {LESSON_BUDGET_S} s)"
    assert seconds < WALL_CAP_S, f"{path.name} took {seconds:.1f} s of wall time ({cpu:.1f} s of CPU): it waits"


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_has_slides_and_ends_with_a_quiz_and_its_exercise(path):
    nb = nbformat.read(path, as_version=4)
    slides = [c for c in nb.cells if c.metadata.get("slideshow", {}).get("slide_type") == "slide"]
    assert len(slides) >= 4, "mark slides with scripts/tidy_notebooks.py (for voila --template=reveal)"
    text = "\n".join(c.source for c in nb.cells)
    assert f'quiz_for("{path.name[:2]}")' in text, "render the lesson's own quiz from rmlearn/quizzes/"
    assert any(f"ps{n}_" in text for n in range(1, 8)), "point to the matching nbgrader exercise"
    assert "exercises/" not in text, "point students at the released assignment, not at the solutions"


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_quiz_is_package_data_and_the_notebook_shows_no_answer(path):
    from rmlearn.widgets.quizzes import load_quiz, quiz_file

    questions = load_quiz(quiz_file(path.name[:2]))
    assert len(questions) >= 3
    text = "\n".join(c.source for c in nb_cells(path))
    assert "answer=" not in text and "why=" not in text and "Question(" not in text
    for q in questions:  # neither an explanation nor the question list is copied into the notebook
        assert q.text not in text and not any(why in text for why in q.why)


def nb_cells(path):
    return nbformat.read(path, as_version=4).cells


def _tidy_module():
    import importlib.util

    script = Path(__file__).parents[1] / "scripts" / "tidy_notebooks.py"
    spec = importlib.util.spec_from_file_location("tidy_notebooks", script)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_is_tidy(path, tmp_path):
    """The notebooks are the source; scripts/tidy_notebooks.py run on them changes nothing."""
    copy = tmp_path / path.name
    copy.write_bytes(path.read_bytes())
    assert not _tidy_module().tidy_file(copy), f"run: python scripts/tidy_notebooks.py {path}"
    assert copy.read_bytes() == path.read_bytes()


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_every_heading_starts_its_own_cell_and_slide(path):
    split = _tidy_module().split_at_headings
    for cell in nb_cells(path):
        if cell.cell_type == "markdown":
            assert len(split(cell.source)) == 1, f"{path.name} cell {cell.id}: a heading in the middle of a cell"
            if cell.source.startswith("#"):
                assert cell.metadata["slideshow"]["slide_type"] == "slide"


def test_tidy_clears_outputs_splits_headings_and_keeps_ids(tmp_path):
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

    tidy = _tidy_module()
    nb = new_notebook(cells=[new_markdown_cell("# Title\nintro\n## Part two\ntext\n```\n# not a heading\n```"),
                             new_code_cell("x = 1", execution_count=3, outputs=[new_output("stream", text="1")])])
    nb.cells[0].id, nb.cells[1].id = "c00", "0c9d6a2e-8b1f-4a7e-9f5a-3c2b1d0e9f8a"  # a JupyterLab uuid
    nb.cells[1].metadata["execution"] = {"iopub.status.busy": "2026-01-01"}
    path = tmp_path / "lesson.ipynb"
    nbformat.write(nb, path)
    assert tidy.tidy_file(path) and not tidy.tidy_file(path)  # a second run changes nothing
    cells = nbformat.read(path, as_version=4).cells
    assert [c.source.split("\n")[0] for c in cells] == ["# Title", "## Part two", "x = 1"]
    assert [c.id for c in cells] == ["c00", "c01", "c02"]
    assert [c.metadata["slideshow"]["slide_type"] for c in cells] == ["slide", "slide", "-"]
    assert cells[2].outputs == [] and cells[2].execution_count is None and "execution" not in cells[2].metadata
    assert tidy.main(["--check", str(path)]) == 0
