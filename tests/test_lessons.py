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
