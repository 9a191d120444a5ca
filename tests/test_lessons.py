"""Every lesson notebook executes top to bottom in a fresh kernel, headless, in under a minute,
and is committed with its outputs cleared."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import nbformat
import pytest
from claims_01_07 import CHECKS
from lesson_claims import add_claims_cell
from nbclient import NotebookClient

LESSONS = sorted((Path(__file__).parents[1] / "lessons").glob("[0-9][0-9]_*.ipynb"))
LESSON_BUDGET_S = 60


def test_there_are_eight_lessons():
    assert [p.name[:2] for p in LESSONS] == ["01", "02", "03", "04", "05", "06", "07", "08"]


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
    library_noise = [o.text for c in nb.cells if c.cell_type == "code" for o in c.outputs
                     if o.output_type == "stream" and o.name == "stderr" and "[transformers]" in o.text]
    assert not library_noise, f"transformers warnings a student cannot act on: {library_noise}"
    # what the lesson's text says about its own outputs: every lesson has its checks
    check = CHECKS.get(path.name[:2]) or CLAIMS.get(path.stem)
    assert check is not None, f"no claim checks for {path.name}"
    check(nb)


@pytest.mark.parametrize("path", LESSONS, ids=[p.stem for p in LESSONS])
def test_lesson_has_slides_and_ends_with_a_quiz_and_its_exercise(path):
    nb = nbformat.read(path, as_version=4)
    slides = [c for c in nb.cells if c.metadata.get("slideshow", {}).get("slide_type") == "slide"]
    assert len(slides) >= 4, "mark slides with scripts/tidy_notebooks.py (for voila --template=reveal)"
    text = "\n".join(c.source for c in nb.cells)
    assert f'quiz_for("{path.name[:2]}")' in text, "render the lesson's own quiz from rmlearn/quizzes/"
    assert any(f"ps{n}_" in text for n in range(1, 6)), "point to the matching nbgrader exercise"
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


# ---------------------------------------------------------------------------------- claims
# What a lesson says about its own output, checked on the executed notebook.

def _printed(nb, cell_id: str) -> str:
    cell = next(c for c in nb.cells if c.get("id") == cell_id)
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def _numbers(line: str) -> list[float]:
    return [float(x) for x in re.findall(r"[-+]?\d+\.?\d*", line)]


def check_08(nb) -> None:
    figure = next(c for c in nb.cells if c.get("id") == "c22")
    assert 'plot_rlhf_loop(highlight="rl")' in figure.source  # lesson 01's loop figure, the RL step highlighted
    assert any("image/png" in o.get("data", {}) for o in figure.outputs)
    proxy_pairs, course_pairs = map(int, re.search(r"the proxy (\d+), the course reward model (\d+)",
                                                   _printed(nb, "c02")).groups())
    assert 3 * proxy_pairs < course_pairs  # "a proxy trained on far fewer labelled pairs"
    table = [_numbers(line) for line in _printed(nb, "c05").splitlines()[1:10]]
    n, proxy, gold, kl, bound = zip(*table)
    peak = max(range(len(gold)), key=gold.__getitem__)
    # "The proxy keeps rising with n … Gold rises too at first, peaks, and then falls while the proxy still climbs"
    assert all(b >= a for a, b in zip(proxy, proxy[1:])), proxy
    assert 0 < peak < len(n) - 1 and gold[peak] > gold[0] + 0.3, gold
    assert gold[-1] < gold[peak] - 0.1 and proxy[-1] > proxy[peak] + 0.2, (gold, proxy)
    # "Past the peak, best-of-n picks more and more off-topic answers … and more garbled ones"
    shares = {int(_numbers(line)[0]): dict(re.findall(r"([a-z-]+) (\d+)%", line))
              for line in _printed(nb, "c07").splitlines() if line.strip()}
    at_peak, at_end = shares[int(n[peak])], shares[int(n[-1])]
    assert int(at_end["off-topic"]) > int(at_peak["off-topic"]) + 5, shares
    assert int(at_end["other"]) > int(at_peak["other"]) + 2, shares
    # "best-of-n moves away from the policy by at most log n − (n−1)/n nats … Ours falls below it at large n"
    assert all(k <= b + 0.005 for k, b in zip(kl, bound)) and kl[-1] < bound[-1] - 0.02, (kl, bound)
    # "Most of the gap comes from the sample count … The repeated answers lower the KL a little further,
    # less than the finite sample does"
    gap = _printed(nb, "c24").splitlines()
    n_max, said_bound, distinct, ours = _numbers(gap[0].replace("256 samples", "samples"))
    finite, ties = _numbers(gap[1])
    assert n_max == n[-1] and abs(said_bound - bound[-1]) < 0.006 and abs(ours - kl[-1]) < 0.006, gap
    assert ours <= distinct <= said_bound and finite > 0.02 and 0 <= ties < 0.03 and finite > 2 * ties, gap
    # c12: "The two length-biased proxies make best-of-n pick longer answers; the unbiased one does not"
    c11 = _printed(nb, "c11")
    rows = {float(_numbers(line)[0]): _numbers(line.split(":", 1)[1]) for line in c11.splitlines()
            if line.startswith("length bias")}
    assert sorted(rows) == [0.0, 0.5, 0.8], rows
    start, _, longest, g_start, _, at_n, g_peak, g_end, _ = zip(*(rows[b] for b in (0.0, 0.5, 0.8)))
    assert longest[0] < 1.05 * start[0] and all(longest[i] > 1.15 * start[i] for i in (1, 2)), rows
    # "It buys almost no gold … the correlation above is near 0"
    fair_gain = g_peak[0] - g_start[0]
    assert fair_gain > 0.3 and all(g_peak[i] - g_start[i] < fair_gain / 4 for i in (1, 2)), rows
    assert abs(_numbers(c11.split("correlation of length and gold")[1].split(":")[1])[0]) < 0.1
    # "At the largest n the proxy with bias 0.8 picks … more of them off-topic or garbled than a random answer,
    # and gold ends below where it started"
    biased = {int(_numbers(line)[0]): dict(re.findall(r"([a-z-]+) (\d+)%", line))
              for line in c11.split("length bias 0.8:\n")[1].splitlines()[:2]}
    wrong = {k: int(v["off-topic"]) + int(v["other"]) for k, v in biased.items()}
    assert set(wrong) == {1, int(n[-1])} and wrong[int(n[-1])] > wrong[1] + 10, biased
    assert g_end[2] < g_start[2] - 0.05, rows
    # the generated paragraph quotes the printed numbers
    said = "".join(o.data.get("text/markdown", "") for o in next(c for c in nb.cells if c.get("id") == "c11").outputs
                   if "data" in o)
    quoted = re.search(r"from ([\d.]+) to ([\d.]+) words\. Gold starts at ([\d.]+) .*?at most ([\d.]+) \(n = (\d+)\) "
                       r"and is (-?[\d.]+) at n = (\d+); the unbiased proxy reaches ([\d.]+) \(n = (\d+)\)", said)
    assert quoted, said
    assert [float(x) for x in quoted.groups()] == [start[2], longest[2], g_start[2], g_peak[2], at_n[2], g_end[2],
                                                   n[-1], gold[peak], n[peak]], said
    # "gold peaks at β … A larger β optimises too little …; at β = 0.01 the KL grows … and gold falls …
    # The larger β, the smaller the KL"
    beta_peak, kl_peak, gold_peak, beta_max, kl_max, gold_max, beta_min, kl_min, gold_min = _numbers(
        c11.split("KL-regularised optimum, unbiased proxy:")[1])
    assert beta_max > beta_peak > beta_min and gold_max < gold_peak - 0.05 and gold_min < gold_peak - 0.1
    assert kl_max < kl_peak < kl_min - 1
    assert float(re.search(r"gold peaks at β = ([\d.]+)", said).group(1)) == beta_peak, said
    # RL: "The proxy's score rises, the KL from the reference grows, and the answers get longer …
    # Gold does not rise with the proxy"
    steps = [_numbers(line) for line in _printed(nb, "c14").splitlines()[1:-1]]
    _, proxy, gold, kl, words = zip(*steps)
    first, last = slice(0, 2), slice(-3, None)
    mean = lambda xs: sum(xs) / len(xs)  # noqa: E731
    assert mean(proxy[last]) > mean(proxy[first]) + 0.3 and kl[-1] > kl[0] + 1
    assert mean(words[last]) > mean(words[first]) + 4
    assert mean(gold[last]) - mean(gold[first]) < (mean(proxy[last]) - mean(proxy[first])) / 2
    # "The policy and the value model are trained during RL; the reference … and the reward model … stay frozen"
    assert _printed(nb, "c17").split() == ["policy", "changed", "reference", "frozen", "reward", "frozen",
                                           "value", "changed"]


CLAIMS = {"08_the_reward_model_in_the_loop": check_08}
