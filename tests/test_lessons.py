"""Every lesson notebook executes top to bottom in a fresh kernel, headless, in under a minute,
and is committed with its outputs cleared."""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

LESSONS = sorted((Path(__file__).parents[1] / "lessons").glob("[0-9][0-9]_*.ipynb"))
LESSON_BUDGET_S = 60


def test_there_are_eight_lessons():
    assert [p.name[:2] for p in LESSONS if p.name[:2] not in ("09", "10")] == ["01", "02", "03", "04", "05", "06", "07", "08"]
    assert "10" in [p.name[:2] for p in LESSONS]  # lesson 10; lesson 09 arrives on its own branch


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
    from claims_05_07 import CLAIMS as CLAIMS_05_07
    from claims_10 import CLAIMS as CLAIMS_10

    CLAIMS_05_07 = {**CLAIMS_05_07, **CLAIMS_10}  # lesson 10's checks live in claims_10.py

    # what the lesson's text says about its own outputs: every lesson has its checks
    check = {**CLAIMS_05_07, **CLAIMS}.get(path.stem) or CLAIMS_01_04.get(path.name[:2])
    assert check is not None, f"no claim checks for {path.name}"
    check(nb)


def _text(nb) -> str:
    """Everything the executed notebook printed or displayed as text or Markdown."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "stream":
                parts.append(out.text)
            elif "data" in out:
                parts.append(out.data.get("text/markdown", out.data.get("text/plain", "")))
    return "\n".join(parts)


def claims_01(nb):
    import re

    text = _text(nb)
    untrained = _numbers(_output_text(nb, "c14"))
    assert untrained and all(abs(x) < 1 for x in untrained)  # "arbitrary small values"
    assert _printed(nb, "c10").strip().endswith("True")  # EOS state = last column without padding
    reward, direct = [_numbers(line.split("(B,)")[-1].split(":")[-1]) for line in _printed(nb, "c12").splitlines()[1:3]]
    assert reward == direct  # "Calling the model ... gives the same number"
    r_c, r_r = (float(x) for x in re.findall(r"r\((?:chosen|rejected)\)\s+= ([-+][\d.]+)", _printed(nb, "c16")))
    said = re.search(r"trained on (\d+) pairs; the detailed answer scores (higher|lower) .* by (-?[\d.]+)", _printed(nb, "c16"))
    assert said and (said.group(2) == "higher") == (r_c > r_r) and r_c - r_r > 1  # "clearly higher"
    found = re.search(r"(All|Not all) (\d+) preferred answers score above all \d+ others.*?preferred (-?[\d.]+) … "
                      r"(-?[\d.]+), others (-?[\d.]+) … (-?[\d.]+)", text)
    assert found, "lesson 01's sentence on the support-set scores"
    verdict, n, c_lo, c_hi, r_lo, r_hi = found.groups()
    assert (verdict == "All") == (float(c_lo) > float(r_hi))
    assert float(c_hi) - float(c_lo) > 1.0 and float(r_hi) - float(r_lo) > 1.0  # "each gets its own value"
    # "in k of the n pairs the preferred answer scores higher than the other answer to the same question"
    right, of_pairs, smallest = re.search(r"in (\d+) of the (\d+) pairs the preferred answer scores higher than the other "
                                          r"answer to the same question \(smallest gap (-?[\d.]+)\)", text).groups()
    assert int(of_pairs) == int(n) and (int(right) == int(n)) == (float(smallest) > 0)
    assert verdict == "Not all" or int(right) == int(n)  # all chosen above all rejected implies every pair right
    longer, of = map(int, re.search(r"in (\d+) of the (\d+) pairs the preferred answer is also the longer one", text).groups())
    assert of == int(n) and longer == of  # "from these pairs alone a model could have learned 'longer is better'"
    assert int(said.group(1)) > 4 * of  # the support pairs are a small part of the training data
    assert any("image/png" in o.get("data", {}) for o in nb.cells[2].get("outputs", []))  # the RLHF loop figure


def claims_02(nb):
    import re

    # causal attention: positions before the edit do not move, the edit and everything after it do
    changes = [float(x) for x in re.findall(r"max \|h_a - h_b\| = ([\d.]+)", _printed(nb, "c03"))]
    moved = [c > 0 for c in changes]
    first = moved.index(True)
    assert first > 0 and all(moved[first:]) and not any(moved[:first]), changes
    # mean pooling: the shared prompt part and its share of each average
    table = {line.split()[0]: _numbers(line) for line in _printed(nb, "c07").splitlines()[1:3]}
    (c_tokens, c_share, c_prompt, c_response, c_weighted, c_mean, c_eos) = table["chosen"]
    (r_tokens, r_share, r_prompt, r_response, r_weighted, r_mean, r_eos) = table["rejected"]
    close = lambda a, b: abs(a - b) < 0.015  # noqa: E731  (equal up to the printed rounding)
    assert close(c_prompt, r_prompt) and close(c_weighted, c_mean) and close(r_weighted, r_mean), table  # "exactly"
    assert (c_share < r_share) == (c_tokens > r_tokens), table  # "the shorter the answer, the more weight"
    said = re.search(r"scores ([-+][\d.]+) on average in both rows, (position by position the same) .*?makes up (\d+)% of the "
                     r"chosen answer's average and (\d+)% of the rejected one's.*?pulls both mean-pooled scores towards "
                     r"([-+][\d.]+) .*?response parts alone differ by ([-+]?[\d.]+), the mean-pooled scores by "
                     r"([-+]?[\d.]+)\..*?its gap here is ([-+]?[\d.]+)\.", _text(nb), re.S)
    assert said, "lesson 02's sentence under the prompt-share table"
    assert float(said[1]) == float(said[5]) and close(float(said[1]), c_prompt)  # the notebook asserts "the same"
    assert (int(said[3]), int(said[4])) == (c_share, r_share)
    response_gap, mean_gap, eos_gap = float(said[6]), float(said[7]), float(said[8])
    assert abs(response_gap - (c_response - r_response)) < 0.02 and abs(mean_gap - (c_mean - r_mean)) < 0.02
    assert abs(eos_gap - (c_eos - r_eos)) < 0.02
    assert 0 < mean_gap < response_gap - 0.5  # "waters their difference down", without turning it around
    # filler comes after the answer: it carries the answer's verdict, and moves mean pooling with length
    filled = [[float("nan") if x == "—" else float(x) for x in line.split()]
              for line in _printed(nb, "c27").splitlines()[2:]]  # k, then EOS, mean, filler avg per answer, gaps
    assert [int(r[0]) for r in filled] == [0, 4, 8, 16, 32]
    h_eos, h_mean, u_eos, u_mean = ([r[i] for r in filled] for i in (1, 2, 4, 5))
    h_filler, u_filler = [r[3] for r in filled[1:]], [r[6] for r in filled[1:]]
    spread = lambda xs: max(xs) - min(xs)  # noqa: E731
    said = re.search(r"with (\d+) of them they score ([-+][\d.]+) on average after the helpful answer and ([-+][\d.]+) "
                     r"after the unhelpful one.*?goes from ([-+][\d.]+) to ([-+][\d.]+)\..*?helpful answer's mean-pooled "
                     r"score moves by ([\d.]+) and the unhelpful one's by ([\d.]+), while their EOS scores move by "
                     r"([\d.]+) and ([\d.]+)\.", _text(nb), re.S)
    assert said, "lesson 02's sentence under the filler table"
    assert int(said[1]) == 32 and (float(said[2]), float(said[3])) == (h_filler[-1], u_filler[-1])
    assert all(h > u + 1 for h, u in zip(h_filler, u_filler))  # "they carry its verdict"
    gap_first, gap_last = float(said[4]), float(said[5])
    assert (gap_first, gap_last) == (filled[0][-1], filled[-1][-1]) and gap_last >= gap_first  # not watered down
    moves = [float(said[i]) for i in (6, 7, 8, 9)]
    assert all(abs(a - b) < 0.02 for a, b in zip(moves, [spread(h_mean), spread(u_mean), spread(h_eos), spread(u_eos)]))
    assert moves[0] > 2 * moves[2] and moves[1] > 2 * moves[3]  # mean pooling moves with length far more than EOS
    # the padding bug: a support pair picked at run time, where right padding turns the preference around
    bug = _printed(nb, "c09")
    last_column = re.search(r"last column holds: \['(.*?)', '(.*?)'\]", bug).groups()
    assert sorted(last_column) == ["<|endoftext|>", "<|pad|>"], last_column
    padded = last_column.index("<|pad|>")
    alone, eos, naive = (_numbers(bug.split(label)[1].splitlines()[0])
                         for label in ("scored one at a time:", "EOS pooling in batch:", "hidden[:, -1]       :"))
    assert alone == eos and eos[0] > eos[1] + 1 and naive[0] < naive[1] - 1  # a clear win turned into a clear loss
    assert naive[1 - padded] == eos[1 - padded]  # the unpadded row's last column is its EOS
    assert ("EOS pooling prefers the **chosen** answer; `hidden[:, -1]` prefers the **rejected** one. The "
            f"{('chosen', 'rejected')[padded]} answer is the shorter one") in _text(nb)
    left = [_numbers(line.rsplit(":", 1)[1]) for line in _printed(nb, "c11").splitlines()[1:3]]
    assert left[0] == left[1] == eos  # with left padding the shortcut happens to work
    # PAD = EOS: the classifier reads the token before EOS; with a separate PAD it reads EOS
    pad_eos = _printed(nb, "c13").splitlines()
    classifier, before, at_eos = (_numbers(line.split(":")[1])[0] for line in pad_eos)
    assert classifier == before != at_eos and _numbers(pad_eos[2])[-1] == at_eos
    assert _numbers(_printed(nb, "c15").split(":")[1]) == [at_eos]


def claims_03(nb):
    import math
    import re

    text = _text(nb)
    per_pair = _numbers(_printed(nb, "c04").splitlines()[0])
    assert per_pair.index(max(per_pair)) == 2  # "the pair with the smallest gap (1.8 vs 0.9) costs the most"
    sigma, back = (_numbers(line.split(":")[1]) for line in _printed(nb, "c06").splitlines())
    assert sigma == back  # exp(−loss) gives the probability back
    shifted, scaled = (_numbers(line.split(":")[1])[0] for line in _printed(nb, "c08").splitlines())
    assert shifted == _numbers(_printed(nb, "c04").splitlines()[1])[0] and scaled < shifted
    grads = re.findall(r"Δ = ([-+]\d+):  ∂loss/∂r_c = ([-+][\d.]+)   ∂loss/∂r_r = ([-+][\d.]+)", _printed(nb, "c12"))
    for gap, g_c, g_r in grads:  # equal and opposite, σ(−Δ)
        assert float(g_c) == -float(g_r) and abs(-float(g_c) - 1 / (1 + math.exp(float(gap)))) < 1e-4
    sizes = [-float(g) for _, g, _ in grads]
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] < 0.001 and sizes[0] > 0.95
    assert all(0.5 <= s < 1 for (gap, _, _), s in zip(grads, sizes) if float(gap) <= 0)  # wrong pairs: 0.5 … 1
    margin = dict(re.findall(r"m = ([\d.]+): loss at Δ = 1 is ([\d.]+)", _printed(nb, "c14")))
    assert abs(float(margin["1.0"]) - math.log(2)) < 1e-4  # with m = Δ the loss is log 2, a tie
    means = re.findall(r"start: mean = (-?[\d.]+)\s+→\s+center_coef = ([\d.]+): scores A..D = \[(.*?)\], mean = (-?[\d.]+), "
                       r"pairwise loss = ([\d.]+)", text)
    assert len(means) == 2
    (start0, _, free, end0, loss0), (_, _, centred, end1, loss1) = means
    assert float(start0) == float(end0)  # without the penalty the mean stays exactly where it started
    assert abs(float(end1)) < 0.5  # with it the scores settle around 0
    a, b, c, d = map(float, free.split(", "))
    a2, b2, c2, d2 = map(float, centred.split(", "))
    assert a > b and a > c and b > d and c > d and a2 > b2 and a2 > c2 and b2 > d2 and c2 > d2  # both rank right
    assert a2 - d2 < a - d  # the penalty shrinks the gaps
    assert float(loss1) > float(loss0)  # "It trades ranking loss for scores on a fixed level"
    # quiz 03's explanations quote these numbers
    assert abs(float(margin["0.0"]) - 0.313) < 5e-4 and abs(sizes[-1] - 0.0003) < 5e-5


def claims_04(nb):
    import math
    import re

    text = _text(nb)
    before = re.search(r"'accuracy': ([\d.]+).*'num_pairs': (\d+)", _printed(nb, "c03"))
    accuracy, pairs = float(before.group(1)), int(before.group(2))
    assert abs(accuracy - 0.5) < 2 * math.sqrt(0.25 / pairs)  # "at chance level": within 2 standard errors
    first, last = map(float, re.search(r"loss ([\d.]+) at the first step, ([\d.]+) over the last ten", _printed(nb, "c05")).groups())
    assert abs(first - math.log(2)) < 0.1 and last < first / 10  # "starts at log 2 ≈ 0.69 ... and falls"
    table = {line.split()[0]: _numbers(line) for line in _printed(nb, "c08").splitlines()}
    assert table["accuracy"][1] > 0.9 and table["accuracy"][1] > table["accuracy"][0]
    assert abs(table["mean_gap"][1] - (table["mean_chosen"][1] - table["mean_rejected"][1])) < 0.01
    # both models read the question; the course model (12 epochs, shipped) is the one used from here on
    said = re.search(r"the model trained here prefers the answer to its own question \*\*(\d+)%\*\* of the time, the "
                     r"course model \*\*(\d+)%\*\*.*?the course model is right on \*\*(\d+)%\*\*, the model trained "
                     r"here on \*\*(\d+)%\*\*", text, re.S)
    assert said, "lesson 04's prompt-swap sentence"
    swap_here, swap_course, held_course, held_here = map(int, said.groups())
    assert swap_here >= 90 and swap_course >= 95 and held_course >= 97
    assert held_here == round(100 * table["accuracy"][1])
    own, total = map(int, re.search(r"In \*\*(\d) of (\d)\*\* rows", text).groups())
    assert own == total == 6
    assert re.search(r"Row \d, the running example's question \(\"How do I reset my password\?\"\), is one of them\.", text)
    assert "9: 36}" in _printed(nb, "c10")  # "one ranking of 9 gives 36 pairs"
    losses = {line[:28].strip(): _numbers(line[28:]) for line in _printed(nb, "c12").splitlines()[2:6]}
    for i in (0, 1):  # lowest in the people's order, highest reversed
        assert losses["same numbers, human order"][i] == min(v[i] for v in losses.values())
        assert losses["same numbers, reversed"][i] == max(v[i] for v in losses.values())
    assert abs(losses["all equal"][0] - math.log(2)) < 1e-3 and abs(losses["all equal"][1] - math.log(24)) < 1e-3
    against = int(re.search(r"the model orders (\d+) of 6 pairs against the people", _printed(nb, "c12")).group(1))
    assert (against > 0) == (losses["model's scores"][0] > losses["same numbers, human order"][0])
    assert (against > 0) == (losses["model's scores"][1] > losses["same numbers, human order"][1])  # "both are higher"
    k2 = re.search(r"K = 2, .*: listwise ([\d.]+), Plackett–Luce ([\d.]+)", _printed(nb, "c12"))
    assert k2 and k2[1] == k2[2], "For K = 2 the two are the same loss"
    assert re.search(r"Best-of-8 picked an answer of quality \*\*\+1\*\*", text)
    means = dict(re.findall(r"quality ([+-]\d): (-?[\d.+]+) \(", text))
    assert float(means["+1"]) > float(means.get("+0", "-inf")) > float(means.get("-1", "-inf"))
    rewards = re.findall(r"^\s*([-+][\d.]+)  quality ([-+]\d)", _printed(nb, "c16"), re.M)
    spreads = {q: float(x) for x, q in re.findall(r"(\d+\.\d+) at quality ([-+]\d)", text)}
    for q in {q for _, q in rewards}:  # "within one quality the scores still differ"
        within = [float(r) for r, q2 in rewards if q2 == q]
        if len(within) > 1:
            assert abs(spreads[q] - (max(within) - min(within))) < 0.015 and spreads[q] > 0.1, (spreads, within)


CLAIMS_01_04 = {"01": claims_01, "02": claims_02, "03": claims_03, "04": claims_04}


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


# ---------------------------------------------------------------------------------- claims
# What a lesson says about its own output, checked on the executed notebook.

def _printed(nb, cell_id: str) -> str:
    cell = next(c for c in nb.cells if c.get("id") == cell_id)
    return "".join(o.get("text", "") for o in cell.outputs if o.output_type == "stream")


def _output_text(nb, cell_id: str) -> str:
    cell = next(c for c in nb.cells if c.get("id") == cell_id)
    return "".join(o.get("text", "") or o.get("data", {}).get("text/plain", "") for o in cell.outputs)


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
