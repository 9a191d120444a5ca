"""Rankings become pairs: the K·(K−1)/2 pairs of a ranking, their mean loss and Plackett–Luce (lesson 04).

``ranking_view`` computes through ``ranking_to_pairs``, ``pairwise_loss``,
``all_pairs_loss`` and ``plackett_luce_loss``; ``ranking_explorer`` only wires controls.
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from ..losses import all_pairs_loss, pairwise_loss, plackett_luce_loss, ranking_to_pairs

LABELS = "ABCDEF"


@dataclass(frozen=True)
class RankedPair:
    better: str
    worse: str
    r_better: float
    r_worse: float
    loss: float  # pairwise loss −log σ(r_better − r_worse)

    @property
    def agrees(self) -> bool:
        """Does the model score the better answer higher?"""
        return self.r_better > self.r_worse


@dataclass(frozen=True)
class RankingView:
    labels: tuple[str, ...]  # answers, best → worst (the human ranking)
    scores: tuple[float, ...]  # the model's score of each answer, same order
    pairs: tuple[RankedPair, ...]  # the K·(K−1)/2 pairs
    all_pairs_loss: float  # mean pairwise loss over all pairs
    plackett_luce: float  # −log P(ranking) under Plackett–Luce

    @property
    def num_agree(self) -> int:
        return sum(p.agrees for p in self.pairs)


def ranking_view(scores: Sequence[float], labels: Sequence[str] | None = None) -> RankingView:
    """The pairs and losses of K answers ranked best → worst, with the model's ``scores``.

    >>> view = ranking_view([2.0, -1.0, 0.5])                  # A > B > C by people
    >>> [(p.better, p.worse, p.agrees) for p in view.pairs]
    [('A', 'B', True), ('A', 'C', True), ('B', 'C', False)]
    """
    labels = tuple(labels) if labels is not None else tuple(LABELS[: len(scores)])
    if len(labels) != len(scores):
        raise ValueError(f"{len(scores)} scores but {len(labels)} labels")
    row = torch.tensor([list(scores)], dtype=torch.float64)  # (1, K)
    pairs = ranking_to_pairs(list(range(len(scores))))  # K(K-1)/2 (better, worse) index pairs
    better, worse = (list(t) for t in zip(*pairs, strict=True))
    losses = pairwise_loss(row[0, better], row[0, worse], reduction="none")  # (K(K-1)/2,)
    return RankingView(
        labels=labels,
        scores=tuple(float(s) for s in scores),
        pairs=tuple(
            RankedPair(labels[b], labels[v], float(scores[b]), float(scores[v]), loss.item())
            for (b, v), loss in zip(pairs, losses, strict=True)
        ),
        all_pairs_loss=all_pairs_loss(row).item(),
        plackett_luce=plackett_luce_loss(row).item(),
    )


def parse_scores(text: str) -> list[float]:
    """Scores typed as text; raises ``ValueError`` naming the bad item.

    >>> parse_scores("2, 1.5, -0.3")
    [2.0, 1.5, -0.3]
    """
    items = [t.strip() for t in text.replace(";", ",").split(",") if t.strip()]
    scores = []
    for item in items:
        try:
            scores.append(float(item))
        except ValueError:
            raise ValueError(f"{item!r} is not a number; type scores like 2, 1.5, -0.3") from None
    if not 2 <= len(scores) <= len(LABELS):
        raise ValueError(f"type between 2 and {len(LABELS)} scores, got {len(scores)}")
    return scores


def _table_html(view: RankingView) -> str:
    head = "<tr><th>better</th><th>worse</th><th>r_better</th><th>r_worse</th><th>pair loss</th><th>model agrees</th></tr>"
    rows = "".join(
        f"<tr><td>{p.better}</td><td>{p.worse}</td><td>{p.r_better:.2f}</td><td>{p.r_worse:.2f}</td>"
        f"<td>{p.loss:.4f}</td><td>{'yes' if p.agrees else '<b>no</b>'}</td></tr>"
        for p in view.pairs
    )
    return (
        f"<p>Ranking {' &gt; '.join(view.labels)}: K = {len(view.labels)} answers give "
        f"<span class='rm-num-pairs'>{len(view.pairs)}</span> pairs; the model agrees on "
        f"<span class='rm-num-agree'>{view.num_agree}</span>.</p>"
        f"<table class='rm-pairs' style='border-spacing: 14px 2px'>{head}{rows}</table>"
        f"<p>all-pairs loss (mean pairwise loss over all pairs): <b class='rm-all-pairs'>{view.all_pairs_loss:.4f}</b><br>"
        f"Plackett–Luce loss (−log P(ranking)): <b class='rm-plackett-luce'>{view.plackett_luce:.4f}</b></p>"
    )


def ranking_explorer():
    """K answers ranked best → worst (A is best) with a score slider each, or scores typed as text.

    Returns an ipywidgets ``VBox``; ``.controls`` names the controls (``k``, ``text``,
    ``scores``: the six sliders), ``.summary`` is the HTML table and ``.view`` the latest
    ``RankingView``. Typing in the text box sets K and the sliders.
    """
    import ipywidgets as w

    k = w.IntSlider(value=4, min=2, max=len(LABELS), description="K answers")
    sliders = [w.FloatSlider(value=round(2.0 - i, 1), min=-10.0, max=10.0, step=0.1,
                             description=f"score {label}", continuous_update=False) for i, label in enumerate(LABELS)]
    text = w.Text(description="or type", placeholder="e.g. 2, 1.5, -0.3, 0.8", continuous_update=False)
    message = w.HTML()
    summary = w.HTML()
    box = w.VBox([w.HTML("<i>Answers ranked by people, best first: A &gt; B &gt; C …</i>"), k, *sliders,
                  text, message, summary])
    box.controls = dict(k=k, text=text, scores=sliders)
    box.summary = summary

    def redraw(_=None):
        for i, s in enumerate(sliders):
            s.layout.display = None if i < k.value else "none"
        view = ranking_view([s.value for s in sliders[: k.value]])
        box.view = view
        summary.value = _table_html(view)

    def typed(change):
        try:
            scores = parse_scores(change["new"])
        except ValueError as err:
            message.value = f"<span style='color:#b00'>{html.escape(str(err))}</span>"
            return
        message.value = ""
        with box.hold_sync():
            for s, value in zip(sliders, scores, strict=False):
                s.unobserve(redraw, names="value")
                s.value = value
                s.observe(redraw, names="value")
            k.value = len(scores)
        redraw()

    k.observe(redraw, names="value")
    for s in sliders:
        s.observe(redraw, names="value")
    text.observe(typed, names="value")
    redraw()
    return box
