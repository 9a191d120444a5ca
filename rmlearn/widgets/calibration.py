"""Temperature scaling up close: a T slider over a reliability diagram and its ECE (lesson 09).

``calibration_view`` computes through ``rmlearn.evaluation.reliability`` and ``preference_nll``;
``calibration_explorer`` only wires the slider to it and redraws ``plots.plot_reliability``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..evaluation import Reliability, preference_nll, reliability


@dataclass(frozen=True)
class CalibrationView:
    """The held-out pairs' calibration at one temperature."""

    temperature: float
    reliability: Reliability  # bins, and ``ece``
    nll: float  # mean −log σ(Δ/T): what temperature scaling minimises
    mean_confidence: float  # mean max(p, 1 − p)


def calibration_view(gap: torch.Tensor, temperature: float, n_bins: int = 5) -> CalibrationView:
    """Calibration of σ(Δ/T) on held-out score gaps (N,) at temperature T.

    >>> view = calibration_view(torch.tensor([3.0, 3.0, 3.0, -3.0]), temperature=1.0)
    >>> round(view.reliability.ece, 3), round(view.mean_confidence, 3)
    (0.203, 0.953)
    """
    rel = reliability(gap, temperature, n_bins)
    confidence = torch.sigmoid(gap.double().abs() / temperature).mean().item()
    return CalibrationView(float(temperature), rel, preference_nll(gap, temperature), confidence)


def _summary_html(view: CalibrationView, fitted: float | None) -> str:
    cells = [("T", f"{view.temperature:.2f}", "t"), ("ECE", f"{view.reliability.ece:.3f}", "ece"),
             ("mean confidence", f"{view.mean_confidence:.3f}", "confidence"), ("−log σ(Δ/T)", f"{view.nll:.3f}", "nll")]
    if fitted is not None:
        cells.append(("fitted T", f"{fitted:.2f}", "fitted"))
    rows = "".join(f"<tr><td>{name}</td><td class='rm-{css}'>{value}</td></tr>" for name, value, css in cells)
    return f"<table class='rm-calibration-table' style='border-spacing: 14px 2px'>{rows}</table>"


def calibration_explorer(gap: torch.Tensor, fitted: float | None = None, n_bins: int = 5):
    """A slider for the temperature T over held-out score gaps (N,); ``fitted`` (a T fitted on
    other pairs) is where the slider starts and is shown beside it.

    Returns an ipywidgets ``VBox``; ``.controls["T"]`` is the slider, ``.summary`` the HTML with the
    numbers, ``.image`` the reliability diagram and ``.view`` the latest ``CalibrationView``.
    """
    import ipywidgets as w

    from ..plots import figure_png, plot_reliability

    start = 1.0 if fitted is None else round(min(max(fitted, 0.1), 10.0), 2)
    slider = w.FloatSlider(value=start, min=0.1, max=10.0, step=0.05, description="temperature T",
                           continuous_update=False, style={"description_width": "initial"})
    summary = w.HTML()
    image = w.Image(format="png", layout=w.Layout(align_self="flex-start", max_width="100%"))
    box = w.VBox([slider, summary, image])
    box.controls, box.summary, box.image = {"T": slider}, summary, image

    def redraw(_=None):
        view = calibration_view(gap, slider.value, n_bins)
        box.view = view
        summary.value = _summary_html(view, fitted)
        image.value = figure_png(plot_reliability({f"T = {view.temperature:.2f}": view.reliability}))

    slider.observe(redraw, names="value")
    redraw()
    return box
