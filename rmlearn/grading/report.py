"""Item analysis after grading: which checks the class passed, how the scores spread, which wrong
answers were common. ``rmlearn course report ASSIGNMENT`` prints it (and ``--plot FILE`` draws it).

The scores come from the gradebook; the wrong answers from what the hidden tests recorded in each
autograded notebook (``scoring.record``), compared with ``answers/<assignment>/<notebook>.json``
exactly as ``JudgeAnswers`` compares them. nbgrader's gradebook holds only scores, so this is the
only place an instructor sees *which* wrong answer students gave.

>>> analysis = ItemAnalysis("ps1", {"q1-test": 1.0}, {"ann": {"q1-test": 1.0}, "bob": {"q1-test": 0.0}})
>>> analysis.passed("q1-test"), analysis.totals()
(0.5, [1.0, 0.0])
>>> print(analysis.text().splitlines()[0])
ps1: 2 submissions graded, mean score 0.5 / 1
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from .answers import answers_path, mismatches, records_in


@dataclass
class ItemAnalysis:
    """One assignment's grades: ``points`` (test cell → max points) and ``scores`` (student → test
    cell → score; None when not graded); ``wrong`` ((test cell, check) → Counter of wrong answers
    as JSON text)."""

    assignment: str
    points: dict[str, float]
    scores: dict[str, dict[str, float | None]]
    wrong: dict[tuple[str, str], Counter] = field(default_factory=dict)

    def passed(self, grade_id: str) -> float:
        """Share of the graded students who earned the test cell's full points."""
        got = [s.get(grade_id) for s in self.scores.values() if s.get(grade_id) is not None]
        return sum(g >= self.points[grade_id] for g in got) / len(got) if got else float("nan")

    def graded(self) -> dict[str, dict[str, float | None]]:
        """The submissions with at least one score (nbgrader failed on none of them)."""
        return {name: s for name, s in self.scores.items() if any(v is not None for v in s.values())}

    def totals(self) -> list[float]:
        """Each graded student's total (cells not graded count 0), in student order."""
        return [sum(v or 0.0 for v in s.values()) for _, s in sorted(self.graded().items())]

    def text(self, top: int = 3) -> str:
        """The report an instructor reads: pass share per check, a score histogram, common wrong answers."""
        totals, maximum = self.totals(), sum(self.points.values())
        missing = len(self.scores) - len(totals)
        lines = [f"{self.assignment}: {len(totals)} submissions graded"
                 + (f" ({missing} not graded: needs manual grading)" if missing else "")
                 + f", mean score {sum(totals) / max(1, len(totals)):.1f} / {maximum:g}", "",
                 f"{'test cell':<24} {'points':>6}  passed"]
        for grade_id, points in self.points.items():
            share = self.passed(grade_id)
            lines.append(f"{grade_id:<24} {points:>6g}  {share:>5.0%}")
        lines += ["", "score histogram:"]
        for score, count in sorted(Counter(totals).items()):
            lines.append(f"{score:>6g} | {'#' * count} {count}")
        lines += ["", "common wrong answers (from the recorded answers):"]
        for (grade_id, name), counter in sorted(self.wrong.items()):
            common = ", ".join(f"{answer} ×{n}" for answer, n in counter.most_common(top))
            lines.append(f"  {grade_id} / {name}: {common}")
        if not self.wrong:
            lines.append("  none")
        return "\n".join(lines)

    def plot(self, path: str | Path) -> Path:
        """Two panels: the share of students who passed each test cell, and the score histogram."""
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4))
        names = list(self.points)
        left.barh(names[::-1], [100 * self.passed(g) for g in names[::-1]])
        left.set_xlabel("% of students with full points")
        left.set_xlim(0, 100)
        left.set_title(f"{self.assignment}: each check")
        right.hist(self.totals(), bins=range(int(sum(self.points.values())) + 2), align="left", rwidth=0.8)
        right.set_xlabel("total score")
        right.set_ylabel("students")
        right.set_title("scores")
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)
        return Path(path)


def item_analysis(root: str | Path, assignment: str) -> ItemAnalysis:
    """Read the gradebook (wherever the course's ``nbgrader_config.py`` puts it) and the autograded
    notebooks of ``assignment`` in the course ``root``. Raises ``ValueError`` when nothing was graded."""
    import nbformat
    from nbgrader.api import Gradebook, MissingEntry

    from .parallel import autograde_app

    root = Path(root).expanduser().resolve()
    coursedir = autograde_app([f"--CourseDirectory.root={root}"]).coursedir  # the config, as nbgrader loads it
    if coursedir.db_url.startswith("sqlite:///") and not Path(coursedir.db_url[len("sqlite:///"):]).is_file():
        raise ValueError(f"{coursedir.db_url}: no gradebook yet (run nbgrader generate_assignment and autograde)")
    points: dict[str, float] = {}
    scores: dict[str, dict[str, float | None]] = {}
    with Gradebook(coursedir.db_url, coursedir.course_id) as gb:
        try:
            found = gb.find_assignment(assignment)
        except MissingEntry:
            raise ValueError(f"no assignment {assignment!r} in the gradebook of {root}: "
                             f"known: {[a.name for a in gb.assignments]}") from None
        for notebook in found.notebooks:
            points.update({cell.name: float(cell.max_score) for cell in notebook.grade_cells if cell.max_score})
        notebooks = [nb.name for nb in found.notebooks]
        for submission in found.submissions:
            grades = scores.setdefault(submission.student.id, {})
            for notebook in submission.notebooks:
                grades.update({g.name: g.auto_score if g.manual_score is None else g.manual_score  # None: not
                               for g in notebook.grades if g.name in points})  # graded (g.score says 0)
    if not scores:
        raise ValueError(f"{assignment}: no submission is graded yet (run nbgrader autograde first)")
    analysis = ItemAnalysis(assignment, points, scores)
    for notebook in notebooks:
        path = answers_path(root, assignment, notebook)
        expected = json.loads(path.read_text()) if path.is_file() else {}
        for student in scores:
            graded = root / "autograded" / student / assignment / f"{notebook}.ipynb"
            if not graded.is_file():
                continue
            for cell in nbformat.read(graded, 4).cells:
                grade_id = cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")
                records = records_in(cell.get("outputs", []))
                for name, want in expected.get(grade_id, {}).items():
                    got = [r for r in records if r.get("name") == name]
                    if len(got) == 1 and mismatches({name: want}, got):
                        answer = json.dumps(got[0].get("value"))[:80]
                        analysis.wrong.setdefault((grade_id, name), Counter())[answer] += 1
    return analysis
