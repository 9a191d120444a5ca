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


def plot_token_scores(tokens, token_scores, reads: dict, scores: dict | None = None, max_labels: int = 60):
    """What the head says at every position (lesson 02): bars per token, padding left blank.

    ``reads`` maps a pooling name to the position it reads (``None`` for mean pooling, drawn as a
    horizontal line at ``scores["mean"]``); ``scores`` maps pooling names to rewards for the legend.
    """
    values = torch.as_tensor(token_scores, dtype=torch.float64)  # (T,)
    real = ~torch.isnan(values)
    fig, ax = _figure(max(6.0, min(14.0, 0.18 * len(values))), 3.4)
    ax.bar(range(len(values)), values.nan_to_num(0.0).tolist(), color=["C0" if r else "lightgrey" for r in real.tolist()])
    styles = {"eos": ("C3", "v"), "last": ("C1", "x")}
    for how, at in reads.items():
        label = f"{how}" + (f": {scores[how]:.3f}" if scores and how in scores else "")
        if at is None:
            if scores and how in scores:
                ax.axhline(scores[how], color="C2", ls="--", lw=1.2, label=f"{label} (average of real tokens)")
            continue
        colour, marker = styles.get(how, ("k", "o"))
        y = 0.0 if torch.isnan(values[at]) else values[at].item()
        ax.plot([at], [y], marker, color=colour, ms=11, mew=2, label=f"{label} (reads position {at})")
    for n, at in enumerate((~real).nonzero().flatten().tolist()):
        ax.axvspan(at - 0.5, at + 0.5, color="lightgrey", alpha=0.6, lw=0, label=None if n else "padding (no score)")
    if len(values) <= max_labels:
        ax.set_xticks(range(len(values)), [repr(t)[1:-1] for t in tokens], rotation=90, fontsize=7)
    ax.axhline(0, color="grey", lw=0.6)
    ax.set_xlabel("position (token)")
    ax.set_ylabel("head output at this position")
    ax.legend(fontsize=8, loc="best")
    return fig
