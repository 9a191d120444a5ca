"""The pairwise loss up close: value, gradients, margin and shift invariance (lesson 03).

``loss_view`` computes through ``rmlearn.pairwise_loss``, ``centering_penalty`` and autograd;
``loss_explorer`` only wires sliders to it and redraws ``plots.plot_pairwise_loss``.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..losses import centering_penalty, pairwise_loss


@dataclass(frozen=True)
class LossView:
    """The pairwise loss at one pair of scores (after adding ``shift`` to both)."""

    r_chosen: float  # score of the preferred response, shift included
    r_rejected: float  # score of the other response, shift included
    margin: float
    loss: float  # −log σ(r_chosen − r_rejected − margin)
    grad_chosen: float  # d loss / d r_chosen (≤ 0: training pushes r_chosen up)
    grad_rejected: float  # d loss / d r_rejected (≥ 0: training pushes r_rejected down)
    centering: float  # centering_penalty: (r_chosen + r_rejected)², changes with the shift

    @property
    def gap(self) -> float:
        return self.r_chosen - self.r_rejected


def loss_view(r_chosen: float, r_rejected: float, margin: float = 0.0, shift: float = 0.0) -> LossView:
    """Loss, gradients and centering penalty for one pair, both scores moved by ``shift``.

    >>> view = loss_view(2.0, 0.0)
    >>> round(view.loss, 4), round(view.grad_chosen, 4), round(view.grad_rejected, 4)
    (0.1269, -0.1192, 0.1192)
    >>> loss_view(2.0, 0.0, shift=5.0).loss == view.loss     # only the gap matters
    True
    """
    chosen = torch.tensor([r_chosen + shift], dtype=torch.float64, requires_grad=True)  # (1,)
    rejected = torch.tensor([r_rejected + shift], dtype=torch.float64, requires_grad=True)  # (1,)
    loss = pairwise_loss(chosen, rejected, margin)
    grad_chosen, grad_rejected = torch.autograd.grad(loss, (chosen, rejected))
    return LossView(
        r_chosen=chosen.item(),
        r_rejected=rejected.item(),
        margin=float(margin),
        loss=loss.item(),
        grad_chosen=grad_chosen.item(),
        grad_rejected=grad_rejected.item(),
        centering=centering_penalty(chosen, rejected).item(),
    )


def _summary_html(view: LossView) -> str:
    cells = (
        ("gap r_c − r_r", view.gap, "gap"),
        ("loss", view.loss, "loss"),
        ("∂loss/∂r_chosen", view.grad_chosen, "grad-chosen"),
        ("∂loss/∂r_rejected", view.grad_rejected, "grad-rejected"),
        ("centering (r_c + r_r)²", view.centering, "centering"),
    )
    rows = "".join(f"<tr><td>{name}</td><td class='rm-{css}'>{value:.4f}</td></tr>" for name, value, css in cells)
    return f"<table class='rm-loss-table' style='border-spacing: 14px 2px'>{rows}</table>"


def loss_explorer():
    """Sliders for r_chosen, r_rejected, margin and a shift added to both scores.

    Returns an ipywidgets ``VBox``; ``.controls`` names the sliders, ``.summary`` is the HTML with
    the numbers, ``.image`` the figure and ``.view`` holds the latest ``LossView``.
    """
    import ipywidgets as w

    from ..plots import figure_png, plot_pairwise_loss

    def slider(description, value, low=-6.0, high=6.0):
        return w.FloatSlider(value=value, min=low, max=high, step=0.1, description=description,
                             continuous_update=False, style={"description_width": "initial"})

    r_chosen, r_rejected = slider("r_chosen", 1.0), slider("r_rejected", 0.0)
    margin, shift = slider("margin", 0.0, 0.0, 3.0), slider("shift both", 0.0, -5.0, 5.0)
    summary = w.HTML()
    image = w.Image(format="png", layout=w.Layout(align_self="flex-start", max_width="100%"))  # natural size
    box = w.VBox([w.HBox([r_chosen, r_rejected]), w.HBox([margin, shift]), summary, image])
    box.controls = dict(r_chosen=r_chosen, r_rejected=r_rejected, margin=margin, shift=shift)
    box.summary, box.image = summary, image

    def redraw(_=None):
        view = loss_view(r_chosen.value, r_rejected.value, margin.value, shift.value)
        box.view = view
        summary.value = _summary_html(view)
        span = max(6.0, abs(view.gap - view.margin) + 1.0)  # keep the marked gap on the plot
        image.value = figure_png(plot_pairwise_loss(view.margin, view.gap, span))

    for control in box.controls.values():
        control.observe(redraw, names="value")
    redraw()
    return box
