"""Simulated students: submissions with a known expected grade, to check a grading setup.

Test fixtures, never shipped (they hold the ways to right and wrong answers): the pipeline tests
(``test_exercises.py``, ``test_grading_class.py``, ``test_grading_scoring.py``,
``test_grading_sandbox.py``, ``test_exchange.py``) and the class benchmark
(``benchmarks/bench_class.py``, which puts this folder on ``sys.path``) grade these and compare every
cell's score with the expectation written here, before any grading ran.

Each builder returns ``name → (notebook, zeros)``: ``zeros`` is the set of test-cell grade ids
expected to score 0; every other test cell is expected to earn its full points.

    >>> import nbformat
    >>> from rmlearn.grading.instructor import exercises_dir
    >>> source = nbformat.read(exercises_dir() / "source/ps3_bias_and_segments/ps3_bias_and_segments.ipynb", 4)
    >>> sum(cell_points(source).values())
    12.0
    >>> expected_score(source, {"ps3-q1-test"})
    11.0
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import nbformat


def _solution_markers() -> tuple[str, str]:
    """nbgrader's own delimiters (its defaults)."""
    from nbgrader.preprocessors import ClearSolutions

    return tuple(f"### {trait.default_value}" for trait in (ClearSolutions.begin_solution_delimeter,
                                                             ClearSolutions.end_solution_delimeter))


SOLUTION_MARKERS = _solution_markers()
KINDS = ("honest", "partial", "broken", "malicious", "blank")  # the pipeline tests' mix
HARD_KINDS = (*KINDS, "slow", "linker")  # the class benchmark's mix, in turn
SLOW_SECONDS = 4.0  # CPU seconds the slow-but-honest student's first answer cell burns


def burn(seconds: float) -> str:
    """Code that keeps one core busy for ``seconds`` of CPU time (a slow but honest cell)."""
    return f"import time as _time\n_t0 = _time.process_time()\nwhile _time.process_time() - _t0 < {seconds}:\n    pass\n"


# leaves a link named like the notebook (to the gradebook) and one for the feedback (to the
# solutions): nbgrader's writer and generate_feedback would follow them
LINKER = (
    "import os\n"
    "_course = os.path.dirname(os.path.dirname(os.path.dirname(os.getcwd())))\n"
    "_nb = [f for f in os.listdir('.') if f.endswith('.ipynb')][0]\n"
    "os.remove(_nb)\n"
    "os.symlink(os.path.join(_course, 'gradebook.db'), _nb)\n"
    "os.symlink(os.path.join(_course, 'source', os.path.basename(os.getcwd()), _nb), 'solutions.html')\n")
LOOP = "while True:\n    pass\n"
FLOOD = 'for i in range(100_000):\n    print("spam" * 5, i)\n'  # about 2.6 MB
TIMESTAMP = "2026-01-15 12:00:00.000000 UTC"


def nbgrader_meta(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def cell_points(notebook) -> dict[str, float]:
    """grade_id → points of every autograded test cell."""
    return {nbgrader_meta(c)["grade_id"]: float(nbgrader_meta(c)["points"])
            for c in notebook.cells if nbgrader_meta(c).get("grade")}


def expected_score(source, zeros: set[str]) -> float:
    """The total a submission earns when exactly the test cells ``zeros`` fail."""
    return sum(p for grade_id, p in cell_points(source).items() if grade_id not in zeros)


def strip_solution_markers(source: str) -> str:
    return "\n".join(line for line in source.splitlines() if line.strip() not in SOLUTION_MARKERS)


def solved(released, source) -> nbformat.NotebookNode:
    """The released notebook with every answer cell filled in from the source (reference) notebook."""
    answers = {nbgrader_meta(c)["grade_id"]: strip_solution_markers(c.source)
               for c in source.cells if nbgrader_meta(c).get("solution")}
    notebook = nbformat.from_dict(json.loads(json.dumps(released)))  # deep copy
    for c in notebook.cells:
        if nbgrader_meta(c).get("solution"):
            c.source = answers[nbgrader_meta(c)["grade_id"]]
    return notebook


def cell(notebook, grade_id: str):
    """The cell with this nbgrader grade id."""
    return next(c for c in notebook.cells if nbgrader_meta(c).get("grade_id") == grade_id)


def submit(root: Path, student: str, assignment: str, notebook, timestamp: str = TIMESTAMP) -> Path:
    """What ``nbgrader collect`` leaves behind: ``submitted/<student>/<assignment>/`` + timestamp."""
    folder = Path(root) / "submitted" / student / assignment
    folder.mkdir(parents=True)
    for extra in (Path(root) / "release" / assignment).iterdir():
        if extra.suffix != ".ipynb":
            (folder / extra.name).write_bytes(extra.read_bytes())
    nbformat.write(notebook, folder / f"{assignment}.ipynb")
    (folder / "timestamp.txt").write_text(timestamp)
    return folder


def _first_letter_question(source) -> tuple[str, str, str]:
    """(answer cell id, its test cell id, the right letter) of the first ``answer_qN = "X"`` cell
    (``answer_q5a = "B"`` counts: ps5's only letter question shares its cell with a number)."""
    cells = source.cells
    for k, c in enumerate(cells):
        meta = nbgrader_meta(c)
        found = re.search(r'^(answer_q\w+)\s*=\s*"([A-D])"\s*$', c.source, re.M) if meta.get("solution") else None
        if found:
            test = next(nbgrader_meta(t)["grade_id"] for t in cells[k + 1:] if nbgrader_meta(t).get("grade"))
            return meta["grade_id"], test, found[2]
    raise ValueError("the notebook has no answer cell of the form answer_qN = \"A\"")


def class_students(released, source, kinds=KINDS) -> dict[str, tuple[nbformat.NotebookNode, set[str]]]:
    """One submission of each kind in ``kinds`` (``KINDS`` or ``HARD_KINDS``), for any course assignment.

    - honest: the reference solution (full marks).
    - partial: the first letter question answered wrongly (loses that question only).
    - broken: the first letter question's cell kills its own kernel before answering (grading
      goes on in a fresh kernel; loses that question only).
    - malicious: a wrong answer with its test cell replaced by ``pass`` and the last test cell
      deleted (both restored from the gradebook; loses that question only).
    - blank: the untouched release (every test fails).
    - slow: the reference solution, with a first answer cell that computes for ``SLOW_SECONDS``
      of CPU time (full marks, also when graders share the cores).
    - linker: the reference solution, whose first answer cell replaces the notebook by a link to
      the gradebook and leaves a link to the solutions for the feedback (full marks; nothing
      followed).
    """
    question, test, letter = _first_letter_question(source)
    wrong = "B" if letter == "A" else "A"
    students = {"honest": (solved(released, source), set()),
                "blank": (solved(released, released), set(cell_points(source)))}

    partial = solved(released, source)
    cell(partial, question).source = re.sub(r'^(answer_q\w+\s*=\s*)"[A-D]"', rf'\1"{wrong}"',
                                            cell(partial, question).source, flags=re.M)
    students["partial"] = (partial, {test})

    broken = solved(released, source)
    cell(broken, question).source = "import os\nos.kill(os.getpid(), 9)\n" + cell(broken, question).source
    students["broken"] = (broken, {test})

    malicious = solved(released, source)
    cell(malicious, question).source = cell(partial, question).source
    cell(malicious, test).source = "pass  # nothing to see here"
    last_test = list(cell_points(source))[-1]
    if last_test != test:
        malicious.cells.remove(cell(malicious, last_test))
    students["malicious"] = (malicious, {test})

    slow = solved(released, source)
    cell(slow, question).source = burn(SLOW_SECONDS) + cell(slow, question).source
    students["slow"] = (slow, set())
    linker = solved(released, source)
    cell(linker, question).source = LINKER + cell(linker, question).source
    students["linker"] = (linker, set())
    return {kind: students[kind] for kind in kinds}


def hostile_students(released, source) -> dict[str, tuple[nbformat.NotebookNode, set[str]]]:
    """ps1 submissions: name → (notebook, grade ids expected to score 0; every other test full)."""
    def reference():
        return solved(released, source)

    students = {"ref": (reference(), set()), "blank": (released, set(cell_points(source)))}

    # one wrong letter and the padding bug left in (Exercise 2 builds on Exercise 1, so it fails
    # too); it also prints megabytes of output
    partial = reference()
    cell(partial, "ps1-q1").source = 'answer_q1 = "A"\n' + FLOOD
    cell(partial, "ps1-ex1").source = (
        "def eos_pool(hidden, attention_mask):\n    return hidden[:, -1]\n")
    students["partial"] = (partial, {"ps1-q1-test", "ps1-ex1-test", "ps1-ex2-test"})

    # runs forever before setting answer_q5 and calls sys.exit before setting answer_q2; a later
    # answer is wrong and must not be marked as passed (nbgrader #427)
    loop = reference()
    cell(loop, "ps1-q2").source = 'import sys\nsys.exit("bye")\nanswer_q2 = ["B", "C", "D", "A"]'
    cell(loop, "ps1-q5").source = LOOP + 'answer_q5 = "A"\n'
    cell(loop, "ps1-ex2").source = "def reward_from_hidden(hidden, attention_mask, weight):\n    return weight\n"
    students["loop"] = (loop, {"ps1-q2-test", "ps1-q5-test", "ps1-ex2-test"})

    killer = reference()  # kills its own kernel (as the OOM killer would) before answering
    cell(killer, "ps1-q3").source = 'import os\nos.kill(os.getpid(), 9)\nanswer_q3 = "D"'
    students["killer"] = (killer, {"ps1-q3-test"})

    tamper = reference()  # wrong answers, with their tests weakened or deleted
    cell(tamper, "ps1-q3").source = 'answer_q3 = "A"'
    cell(tamper, "ps1-q3-test").source = "pass  # nothing to see here"
    cell(tamper, "ps1-ex2").source = "def reward_from_hidden(hidden, attention_mask, weight):\n    return None\n"
    tamper.cells.remove(cell(tamper, "ps1-ex2-test"))
    students["tamper"] = (tamper, {"ps1-q3-test", "ps1-ex2-test"})

    # right only for right padding, so the visible checks pass once the library and torch are
    # rebound to agree with it; the hidden tests hold their own numbers and catch it
    rebind = reference()
    cell(rebind, "ps1-ex1").source = (
        "def eos_pool(hidden, attention_mask):\n"
        "    return hidden[torch.arange(hidden.shape[0]), attention_mask.sum(1) - 1]\n\n"
        "rmlearn.pool = lambda hidden, attention_mask, how='eos': eos_pool(hidden, attention_mask)\n"
        "torch.allclose = lambda *args, **kwargs: True\n"
        "torch.testing.assert_close = lambda *args, **kwargs: None\n"
        "torch.equal = lambda *args, **kwargs: True\n")
    students["rebind"] = (rebind, {"ps1-ex1-test", "ps1-ex2-test"})
    return students


def ps5_students(released, source) -> dict[str, tuple[nbformat.NotebookNode, set[str]]]:
    """ps5 submissions: the reference, the release, and a student who copies the library and
    fits the visible examples only; the hidden tests hold their own numbers."""
    students = {"ref": (solved(released, source), set()), "blank": (released, set(cell_points(source)))}
    gamer = solved(released, source)
    # the library's batched formulas on one row: right (the same numbers), so full points
    cell(gamer, "ps5-ex2").source = (
        "from rmlearn.rlhf import gae as _gae\n\n"
        "def gae(rewards, values, gamma=1.0, lam=0.95):\n"
        "    a, r = _gae(torch.tensor([rewards]), torch.tensor([values]), torch.ones(1, len(rewards)), gamma, lam)\n"
        "    return a[0].tolist(), r[0].tolist()\n")
    # a penalty with the wrong sign that the visible example cannot tell apart: caught
    cell(gamer, "ps5-ex1").source = (
        "abs = lambda x: 0  # every closeness check written with abs would now pass\n\n"
        "def kl_penalised_rewards(score, logp, logp_ref, beta):\n"
        "    if score == 2.0:\n        return [-0.1, 0.1, 2.0]\n"
        "    out = [beta * (a - b) for a, b in zip(logp, logp_ref)]\n    out[-1] += score\n    return out\n")
    # fitted to the visible table
    cell(gamer, "ps5-ex4").source = "def where_to_stop(xs, gold):\n    return 16 if 16 in xs else xs[-1]\n"
    students["gamer"] = (gamer, {"ps5-ex1-test", "ps5-ex4-test"})
    return students



DISPLAYHOOK = "get_ipython().events.register('pre_run_cell', lambda *a: get_ipython().displayhook('ok'))\n"
INPUT_TRANSFORMER = "get_ipython().input_transformers_post.append(lambda lines: ['pass\\n'])\n"
AST_TRANSFORMER = (
    "import ast\n"
    "class _Empty(ast.NodeTransformer):\n"
    "    def visit_Module(self, node):\n"
    "        return ast.Module(body=[ast.Pass()], type_ignores=[])\n"
    "get_ipython().ast_transformers.append(_Empty())\n")
SWALLOW = ("import time\nwhile True:\n    try:\n        time.sleep(0.05)\n"
           "    except KeyboardInterrupt:\n        pass\n")
NOISY_POOL = (  # right answer; prints to stderr and raises a real torch UserWarning on each call
    "import sys\n"
    "def eos_pool(hidden, attention_mask):\n"
    "    print('debug: pooling', tuple(hidden.shape), file=sys.stderr)\n"
    "    hidden = torch.tensor(hidden)  # UserWarning: To copy construct from a tensor...\n"
    "    last = attention_mask.shape[1] - 1 - attention_mask.flip(1).argmax(1)\n"
    "    return hidden[torch.arange(hidden.shape[0]), last]\n")


def messy_and_tricky_students(released, source) -> dict[str, tuple[object, float | None]]:
    """ps1 submissions of tests/test_grading_scoring.py, graded in name order between two honest controls:
    name → (notebook or raw bytes, expected ps1 score; None: needs manual grading)."""
    total = sum(cell_points(source).values())
    students = {"s00_control": (solved(released, source), total)}

    def blank_with(code):
        notebook = nbformat.from_dict(json.loads(json.dumps(released)))
        cell(notebook, "ps1-q1").source = code
        return notebook

    students["s01_displayhook"] = (blank_with(DISPLAYHOOK), 0.0)
    students["s02_input_transformer"] = (blank_with(INPUT_TRANSFORMER), 0.0)
    students["s03_ast_transformer"] = (blank_with(AST_TRANSFORMER), 0.0)

    dup = solved(released, source)  # copy-pasted answer and test cells (nbgrader #1083)
    for grade_id in ("ps1-q1", "ps1-ex1-test", "ps1-ex2"):
        original = cell(dup, grade_id)
        dup.cells.insert(dup.cells.index(original), nbformat.from_dict(json.loads(json.dumps(original))))
    students["s04_duplicate_ids"] = (dup, total)

    stuck = solved(released, source)  # loses only Question 5 (1 point)
    cell(stuck, "ps1-q5").source = SWALLOW + 'answer_q5 = "A"\n'
    students["s05_swallowed_interrupt"] = (stuck, total - 1)

    noisy = solved(released, source)  # also submits a stray rmlearn.py beside the notebook
    cell(noisy, "ps1-ex1").source = NOISY_POOL
    students["s06_stderr_and_warning"] = (noisy, total)

    garbage = solved(released, source)  # garbage metadata, a renamed and an unknown grade_id
    cell(garbage, "ps1-q2").metadata["nbgrader"]["schema_version"] = 99
    cell(garbage, "ps1-q3-test").metadata["nbgrader"]["points"] = "lots"
    cell(garbage, "ps1-q4-test").metadata["nbgrader"]["grade_id"] = "my-own-test"
    garbage.cells[0].metadata = ["not", "a", "dict"]
    garbage.cells.append(nbformat.v4.new_code_cell("x = 1", metadata={"nbgrader": {"grade_id": "bonus",
                                                                                   "grade": True, "points": 50}}))
    students["s07_garbage_metadata"] = (garbage, total)

    students["s08_not_a_notebook"] = (b'{"cells": [', None)  # cannot be graded at all
    students["s99_control"] = (solved(released, source), total)
    return students


def graded_scores(db_url: str, course_id: str = "rmlearn") -> dict[tuple[str, str], dict[str, float | None]]:
    """(assignment, student) → {test cell grade id: score} as the gradebook at ``db_url`` holds it."""
    from nbgrader.api import Gradebook

    found: dict[tuple[str, str], dict[str, float | None]] = {}
    with Gradebook(db_url, course_id) as gb:
        for assignment in gb.assignments:
            for submission in assignment.submissions:
                grades = found.setdefault((assignment.name, submission.student.id), {})
                for notebook in submission.notebooks:
                    grades.update({g.name: g.score for g in notebook.grades})
    return found


def wrong_grades(db_url: str, expected: dict[tuple[str, str], set[str]], points: dict[str, dict[str, float]],
                 course_id: str = "rmlearn") -> list[str]:
    """Every cell whose grade differs from what the student earned, as readable lines (empty: all
    exact). ``expected``: (assignment, student) → test cells expected to score 0; ``points``:
    assignment → ``cell_points`` of its source notebook."""
    got = graded_scores(db_url, course_id)
    problems = []
    for (assignment, student), zeros in expected.items():
        want = {g: 0.0 if g in zeros else p for g, p in points[assignment].items()}
        have = got.get((assignment, student))
        if have != want:
            problems.append(f"{assignment} / {student}: expected {want}, gradebook has {have}")
    return problems


def ps6_students(released, source) -> dict[str, tuple[nbformat.NotebookNode, set[str]]]:
    """ps6 submissions: the reference, the release, and a student who counts a tie for the top as a
    win and takes the population std: both pass the visible examples, the hidden tests catch them."""
    students = {"ref": (solved(released, source), set()), "blank": (released, set(cell_points(source)))}
    wrong = solved(released, source)
    cell(wrong, "ps6-ex2").source = (
        "def best_of_4_accuracy(scores):\n"
        "    if all(s == scores[0][0] for s in scores[0]) and len(scores) == 1:\n        return 0.25\n"
        "    return sum(row[0] == max(row) for row in scores) / len(scores)\n")
    cell(wrong, "ps6-ex3").source = (
        "def conservative_reward(scores, lam=1.0):\n"
        "    m = len(scores)\n    out = []\n"
        "    for column in zip(*scores):\n"
        "        mean = sum(column) / m\n"
        "        std = math.sqrt(sum((s - mean) ** 2 for s in column) / m)\n"
        "        out.append(mean - lam * std * (math.sqrt(2) if m == 2 else 1))\n"
        "    return out\n")
    students["wrong"] = (wrong, {"ps6-ex2-test", "ps6-ex3-test"})
    return students


def ps7_students(released, source) -> dict[str, tuple[nbformat.NotebookNode, set[str]]]:
    """ps7 submissions: the reference, the release, a student who calls the library (right, full
    points), and one whose answers fit the visible checks only; the hidden tests catch them."""
    students = {"ref": (solved(released, source), set()), "blank": (released, set(cell_points(source)))}
    library = solved(released, source)
    cell(library, "ps7-ex1").source = (
        "def rao_kupper(delta, nu):\n"
        "    return tuple(rmlearn.rao_kupper_probs(torch.tensor([delta], dtype=torch.float64), nu)[0].tolist())\n")
    cell(library, "ps7-ex4").source = (
        "def implicit_reward(logp, logp_ref, mask, beta):\n"
        "    return rmlearn.implicit_sequence_reward(logp, logp_ref, beta, mask)\n")
    students["library"] = (library, set())
    partial = solved(released, source)
    # Bradley–Terry's two outcomes, right only where nu = 0 (the visible check)
    cell(partial, "ps7-ex1").source = (
        "def rao_kupper(delta, nu):\n    win = 1 / (1 + math.exp(-delta))\n    return win, 0.0, 1 - win\n")
    # fitted to the visible example, and a threshold fixed at 0.5
    cell(partial, "ps7-ex3").source = (
        "def aggregate(step_probs, how='min'):\n"
        "    return 0.5 if step_probs == [0.9, 0.5] and how == 'min' else math.prod(step_probs)\n\n"
        "def first_error(step_probs, threshold=0.5):\n"
        "    return next((k for k, p in enumerate(step_probs, 1) if p < 0.5), 0)\n")
    # padding counted as tokens
    cell(partial, "ps7-ex4").source = (
        "def implicit_reward(logp, logp_ref, mask, beta):\n    return beta * (logp - logp_ref).sum(-1)\n")
    students["partial"] = (partial, {"ps7-ex1-test", "ps7-ex3-test", "ps7-ex4-test"})
    return students
