"""Segment scores from cumulative scores: an explorer for your own numbers and for the model (lesson 06).

``segment_view`` and ``response_view`` compute through the library (``segment_scores``,
``rank_segments``, ``cumulative_scores``); ``segment_explorer`` only wires controls and redraws.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..data import support_pairs
from ..segments import cumulative_scores, rank_segments, segment_scores, split_sentences


@dataclass
class SegmentView:
    """Cumulative scores s_1..s_n (n,), the baseline s_0, each segment's own score (n,) and the
    1-based segment ids ordered from largest to smallest contribution; ``segments`` holds the
    text of each segment when there is one."""

    cumulative: torch.Tensor  # (n,)
    baseline: float
    scores: torch.Tensor  # (n,)
    order: list[int]
    segments: list[str] | None = None


def parse_numbers(text: str) -> list[float]:
    """Numbers typed as text, separated by commas, semicolons or spaces; ``ValueError`` names a bad entry.

    >>> parse_numbers("0.3, 1.0  -0.4")
    [0.3, 1.0, -0.4]
    """
    numbers = []
    for item in re.split(r"[,\s;]+", text.strip()):
        if not item:
            continue
        try:
            numbers.append(float(item))
        except ValueError:
            raise ValueError(f"{item!r} is not a number; type cumulative scores like 0.3, 1.0, 0.6") from None
    if not numbers:
        raise ValueError("type at least one cumulative score, e.g. 0.3, 1.0, 0.6")
    return numbers


def segment_view(cumulative: Sequence[float] | torch.Tensor, baseline: float = 0.0,
                 segments: list[str] | None = None) -> SegmentView:
    """Segment scores and their ranking for the cumulative scores ``cumulative`` (n,).

    >>> view = segment_view([0.3, 1.0, 0.6, 1.4])
    >>> [round(s, 2) for s in view.scores.tolist()], view.order
    ([0.3, 0.7, -0.4, 0.8], [4, 2, 1, 3])
    """
    values = torch.as_tensor(cumulative, dtype=torch.float64)  # (n,)
    return SegmentView(values, float(baseline), segment_scores(values, baseline),
                       rank_segments(values, baseline), segments)


def response_view(model: Any, tokenizer: Any, prompt: str, response: str) -> SegmentView:
    """The reward model's own segment scores for a response split into sentences.

    s_k = the model's score of the first k sentences (``cumulative_scores``); the baseline s_0 is
    its score of an empty response, so the first sentence is also measured as a change.
    """
    segments = split_sentences(response)
    cumulative = cumulative_scores(model, tokenizer, prompt, segments).double()  # (n,)
    baseline = model.score([prompt], [""], tokenizer)[0].item()
    return segment_view(cumulative, baseline, segments)


def _table_html(view: SegmentView, css: str) -> str:
    names = view.segments or [f"segment {k}" for k in range(1, len(view.scores) + 1)]
    rows = "".join(
        f"<tr><td>{k}</td><td>{html.escape(name)}</td><td>{c:.4f}</td><td class='rm-seg-score'>{s:+.4f}</td></tr>"
        for k, (name, c, s) in enumerate(zip(names, view.cumulative.tolist(), view.scores.tolist(), strict=True), start=1)
    )
    order = ", ".join(str(k) for k in view.order)
    return (
        f"<table class='{css}'><tr><th>k</th><th>segment</th><th>cumulative s_k</th><th>segment score</th></tr>"
        f"<tr><td>0</td><td>baseline</td><td>{view.baseline:.4f}</td><td></td></tr>{rows}</table>"
        f"<p>Order, largest contribution first: <b class='rm-seg-order'>{order}</b></p>"
    )


def _image(w: Any):
    """An empty PNG ``Image`` for the plot (not an ``Output``: see the ``rmlearn.widgets`` docstring)."""
    return w.Image(format="png", layout=w.Layout(align_self="flex-start", max_width="100%"))  # natural size


def _own_numbers_part(w: Any):
    from ..plots import figure_png, plot_segments

    cumulative = w.Text(value="0.3, 1.0, 0.6, 1.4", description="Cumulative", layout=w.Layout(width="60%"),
                        continuous_update=False)
    baseline = w.FloatText(value=0.0, step=0.1, description="Baseline")
    summary, image = w.HTML(), _image(w)
    part = w.VBox([cumulative, baseline, summary, image])
    part.controls = dict(cumulative=cumulative, baseline=baseline)
    part.summary, part.image = summary, image

    def redraw(_=None):
        try:
            view = segment_view(parse_numbers(cumulative.value), baseline.value)
        except ValueError as err:
            summary.value = f"<p class='rm-error' style='color:#b00'>{html.escape(str(err), quote=False)}</p>"
            return
        part.view = view
        summary.value = _table_html(view, "rm-segments-own")
        image.value = figure_png(plot_segments(view.cumulative, view.baseline))

    for control in (cumulative, baseline):
        control.observe(redraw, names="value")
    redraw()
    return part


def _model_part(w: Any, model: Any, tokenizer: Any):
    from ..plots import figure_png, plot_segments

    options = [(f"{i + 1}. {p.prompt} → {label}", (p.prompt, text))
               for i, p in enumerate(support_pairs()) for label, text in (("chosen", p.chosen), ("rejected", p.rejected))]
    response = w.Dropdown(options=options, description="Response", layout=w.Layout(width="95%"))
    text = w.HTML()
    summary, image = w.HTML(), _image(w)
    part = w.VBox([response, text, summary, image])
    part.controls = dict(response=response)
    part.summary, part.image = summary, image

    def redraw(_=None):
        prompt, reply = response.value
        view = response_view(model, tokenizer, prompt, reply)
        part.view = view
        text.value = f"<p><b>{html.escape(prompt)}</b><br>{html.escape(reply)}</p>"
        summary.value = _table_html(view, "rm-segments-model")
        image.value = figure_png(plot_segments(view.cumulative, view.baseline, labels=view.segments))

    response.observe(redraw, names="value")
    redraw()
    return part


def segment_explorer(model: Any = None, tokenizer: Any = None):
    """Two tabs: type cumulative scores and a baseline and see segment scores and their order;
    or pick a support response and see the reward model's score change sentence by sentence.

    Defaults: ``rmlearn.zoo.trained_reward_model()`` and ``course_tokenizer()``. Returns an
    ipywidgets ``Tab``; ``.own`` and ``.model_part`` are its two parts, each with ``.controls``,
    ``.summary`` (HTML) and ``.view`` (the latest ``SegmentView``).
    """
    import ipywidgets as w

    if model is None:
        from ..zoo import trained_reward_model

        model = trained_reward_model()
    if tokenizer is None:
        from ..backbone import course_tokenizer

        tokenizer = course_tokenizer()
    own, model_part = _own_numbers_part(w), _model_part(w, model, tokenizer)
    tab = w.Tab(children=[own, model_part])
    tab.titles = ("Your numbers", "The reward model")
    tab.own, tab.model_part = own, model_part
    return tab
