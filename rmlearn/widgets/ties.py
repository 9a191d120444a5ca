"""Ties up close: win, tie and loss probabilities under Rao–Kupper and Davidson (lesson 10).

``ties_view`` computes through ``rmlearn.losses.rao_kupper_probs`` and ``davidson_probs``;
``ties_explorer`` only wires sliders to it and redraws ``plots.plot_tie_probabilities``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..losses import davidson_probs, rao_kupper_probs


@dataclass(frozen=True)
class TiesView:
    """Both tie models at one score gap Δ = r_a − r_b: (win, tie, loss) each, summing to 1."""

    gap: float
    nu: float  # Rao–Kupper's tie threshold ν
    kappa: float  # Davidson's tie weight κ
    rao_kupper: tuple[float, float, float]
    davidson: tuple[float, float, float]


def ties_view(gap: float, nu: float = 1.0, kappa: float = 1.0) -> TiesView:
    """Win, tie and loss probabilities at the gap ``gap`` under both models.

    >>> view = ties_view(0.0, nu=1.0, kappa=1.0)
    >>> [round(p, 4) for p in view.rao_kupper], [round(p, 4) for p in view.davidson]
    ([0.2689, 0.4621, 0.2689], [0.3333, 0.3333, 0.3333])
    """
    delta = torch.tensor([gap], dtype=torch.float64)  # (1,)
    rk = rao_kupper_probs(delta, nu)[0].tolist()  # (3,)
    dv = davidson_probs(delta, kappa)[0].tolist()  # (3,)
    return TiesView(float(gap), float(nu), float(kappa), tuple(rk), tuple(dv))


def _summary_html(view: TiesView) -> str:
    head = "<tr><th></th><th>a wins</th><th>tie</th><th>b wins</th></tr>"
    rows = "".join(
        f"<tr><td>{name}</td>" + "".join(f"<td class='rm-{css}-{part}'>{p:.4f}</td>"
                                         for part, p in zip(("win", "tie", "loss"), probs)) + "</tr>"
        for name, css, probs in (("Rao–Kupper", "rk", view.rao_kupper), ("Davidson", "dv", view.davidson)))
    return f"<table class='rm-ties-table' style='border-spacing: 14px 2px'>{head}{rows}</table>"


def ties_explorer():
    """Sliders for the score gap, Rao–Kupper's ν and Davidson's κ.

    Returns an ipywidgets ``VBox``; ``.controls`` names the sliders, ``.summary`` is the HTML with
    the probabilities, ``.image`` the figure and ``.view`` holds the latest ``TiesView``.
    """
    import ipywidgets as w

    from ..plots import figure_png, plot_tie_probabilities

    def slider(description, value, low, high):
        return w.FloatSlider(value=value, min=low, max=high, step=0.1, description=description,
                             continuous_update=False, style={"description_width": "initial"})

    gap, nu, kappa = slider("gap r_a − r_b", 0.5, -6.0, 6.0), slider("ν (Rao–Kupper)", 1.0, 0.0, 4.0), \
        slider("κ (Davidson)", 1.0, 0.0, 4.0)
    summary = w.HTML()
    image = w.Image(format="png", layout=w.Layout(align_self="flex-start", max_width="100%"))
    box = w.VBox([w.HBox([gap]), w.HBox([nu, kappa]), summary, image])
    box.controls = dict(gap=gap, nu=nu, kappa=kappa)
    box.summary, box.image = summary, image

    def redraw(_=None):
        view = ties_view(gap.value, nu.value, kappa.value)
        box.view = view
        summary.value = _summary_html(view)
        image.value = figure_png(plot_tie_probabilities(view.nu, view.kappa, view.gap))

    for control in box.controls.values():
        control.observe(redraw, names="value")
    redraw()
    return box
