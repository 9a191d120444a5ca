"""Matplotlib figures for lessons, widgets and the demo. Each returns a Figure, never shows it.

Figures are built with ``matplotlib.figure.Figure`` directly (no pyplot state), so they work in a
kernel, in a headless test and in the CLI alike.
"""

from __future__ import annotations

from typing import Any

import torch


def _figure(width: float = 6.0, height: float = 3.2, ncols: int = 1):
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(1, ncols)
    return fig, axes


def plot_history(history: Any, window: int = 5):
    """Loss and accuracy per step (thin) with a moving average (thick)."""
    fig, (ax_loss, ax_acc) = _figure(8.0, 3.0, ncols=2)
    for ax, values, name in ((ax_loss, history.loss, "loss"), (ax_acc, history.accuracy, "accuracy")):
        if not values:
            ax.set_visible(False)
            continue
        series = torch.tensor(values, dtype=torch.float64)
        ax.plot(series, alpha=0.3, lw=1, color="C0")
        if len(series) >= window:
            smooth = series.unfold(0, window, 1).mean(1)  # (steps - window + 1,)
            ax.plot(range(window - 1, len(series)), smooth, lw=2, color="C0")
        ax.set_xlabel("step")
        ax.set_ylabel(name)
        ax.grid(alpha=0.3)
    ax_loss.set_title("pairwise loss")
    ax_acc.set_title("pairs ranked correctly (training batch)")
    return fig


def plot_pairwise_loss(margin: float = 0.0, gap: float | None = None, span: float = 6.0):
    """−log σ(Δ − m) and its gradient against the score gap Δ = r_c − r_r; marks ``gap`` if given."""
    from .losses import pairwise_loss

    gaps = torch.linspace(-span, span, 241, requires_grad=True)  # (241,)
    losses = pairwise_loss(gaps, torch.zeros_like(gaps), margin, reduction="none")
    (grad,) = torch.autograd.grad(losses.sum(), gaps)
    fig, ax = _figure()
    ax.plot(gaps.detach(), losses.detach(), label="loss  −log σ(Δ − m)")
    ax.plot(gaps.detach(), grad, label="d loss / dΔ", ls="--")
    if gap is not None:
        value = pairwise_loss(torch.tensor([gap]), torch.tensor([0.0]), margin).item()
        ax.plot([gap], [value], "o", color="C3", label=f"Δ = {gap:.2f}: loss {value:.3f}")
    ax.axvline(margin, color="grey", lw=0.8)
    ax.set_xlabel("score gap Δ = r_chosen − r_rejected")
    ax.legend(loc="upper right")
    ax.grid(alpha=0.3)
    return fig
