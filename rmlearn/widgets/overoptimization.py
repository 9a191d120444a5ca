"""The over-optimization explorer: pick n, β and the annotators' length bias; see the proxy
reward keep rising while the gold reward peaks and falls (lesson 08).

``overoptimization_view`` looks numbers up in a grid precomputed by
``rmlearn.rlhf.overoptimization_grid`` on ``rmlearn.zoo.overoptimization_pool`` (so the sliders move
instantly); ``overoptimization_explorer``
only wires sliders to it and redraws ``plots.plot_overoptimization``.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..rlhf import Curve, Overoptimization


@dataclass(frozen=True)
class OveroptimizationView:
    """The numbers at one setting of the sliders."""

    n: int
    beta: float
    length_bias: float
    best_of_n: Curve  # the whole best-of-n curve of this proxy
    kl_regularised: Curve  # the whole KL-regularised curve of this proxy
    proxy_at_n: float
    gold_at_n: float
    kl_at_n: float  # empirical KL of best-of-n, nats
    kl_bound_at_n: float  # log n − (n−1)/n
    length_at_n: float
    proxy_at_beta: float
    gold_at_beta: float
    kl_at_beta: float
    best_n: int  # the n where gold peaks: where to stop
    best_beta: float  # the β where gold peaks


def overoptimization_view(grid: dict[float, Overoptimization], n: int, beta: float, length_bias: float) -> OveroptimizationView:
    """Select the curves of the proxy trained with ``length_bias`` and read them at ``n`` and ``beta``.

    >>> from rmlearn.rlhf import Curve, Overoptimization
    >>> c = Curve([1, 2], [0.0, 1.0], [0.0, 0.5], [0.0, 0.19], [10.0, 12.0], [0.0, 0.19])
    >>> overoptimization_view({0.0: Overoptimization(c, c)}, 2, 2, 0.0).gold_at_n
    0.5
    """
    if length_bias not in grid:
        raise ValueError(f"no proxy for length bias {length_bias}; precomputed: {sorted(grid)}")
    bon, klr = grid[length_bias].best_of_n, grid[length_bias].kl_regularised
    if n not in bon.x:
        raise ValueError(f"n={n} was not precomputed; choose one of {bon.x}")
    if beta not in klr.x:
        raise ValueError(f"beta={beta} was not precomputed; choose one of {klr.x}")
    i, j = bon.x.index(n), klr.x.index(beta)
    return OveroptimizationView(
        n, beta, length_bias, bon, klr, bon.proxy[i], bon.gold[i], bon.kl[i], bon.kl_bound[i], bon.length[i],
        klr.proxy[j], klr.gold[j], klr.kl[j], bon.x[bon.peak()], klr.x[klr.peak()],
    )


def _summary_html(view: OveroptimizationView) -> str:
    cells = (
        (f"best-of-{view.n}: proxy", view.proxy_at_n, "proxy-n"),
        (f"best-of-{view.n}: gold", view.gold_at_n, "gold-n"),
        (f"best-of-{view.n}: KL (empirical)", view.kl_at_n, "kl-n"),
        ("log n − (n−1)/n (upper bound)", view.kl_bound_at_n, "kl-bound"),
        (f"best-of-{view.n}: words per answer", view.length_at_n, "length-n"),
        (f"β = {view.beta}: proxy", view.proxy_at_beta, "proxy-beta"),
        (f"β = {view.beta}: gold", view.gold_at_beta, "gold-beta"),
        (f"β = {view.beta}: KL", view.kl_at_beta, "kl-beta"),
        ("gold peaks at n", int(view.best_n), "best-n"),
    )
    rows = "".join(f"<tr><td>{name}</td><td class='rm-{css}'>{value if isinstance(value, int) else f'{value:.3f}'}</td></tr>"
                   for name, value, css in cells)
    return f"<table class='rm-overopt-table' style='border-spacing: 14px 2px'>{rows}</table>"


def overoptimization_explorer(grid: dict[float, Overoptimization] | None = None):
    """Sliders for n, β and the length bias over a precomputed grid (lesson 08's, from
    ``rmlearn.zoo.overoptimization_pool``, if none).

    Returns an ipywidgets ``VBox``; ``.controls`` names the sliders, ``.summary`` is the HTML with
    the numbers, ``.image`` the figure and ``.view`` holds the latest ``OveroptimizationView``.
    """
    import ipywidgets as w

    from ..plots import figure_png, plot_overoptimization

    if grid is None:
        from ..rlhf import overoptimization_grid
        from ..zoo import overoptimization_pool

        grid = overoptimization_grid(*overoptimization_pool())
    first = next(iter(grid.values()))
    style = {"description_width": "initial"}
    n = w.SelectionSlider(options=first.best_of_n.x, value=first.best_of_n.x[len(first.best_of_n.x) // 2],
                          description="best-of-n: n", continuous_update=True, style=style)
    beta = w.SelectionSlider(options=first.kl_regularised.x, value=first.kl_regularised.x[len(first.kl_regularised.x) // 2],
                             description="KL penalty β", continuous_update=True, style=style)
    bias = w.SelectionSlider(options=sorted(grid), value=sorted(grid)[0], description="annotators' length bias",
                             continuous_update=True, style=style)
    summary = w.HTML()
    image = w.Image(format="png", layout=w.Layout(align_self="flex-start", max_width="100%"))
    box = w.VBox([w.HBox([n, beta]), bias, summary, image])
    box.controls = dict(n=n, beta=beta, length_bias=bias)
    box.summary, box.image = summary, image

    def redraw(_=None):
        view = overoptimization_view(grid, n.value, beta.value, bias.value)
        box.view = view
        summary.value = _summary_html(view)
        image.value = figure_png(plot_overoptimization(view.best_of_n, view.kl_regularised, view.n, view.beta))

    for control in box.controls.values():
        control.observe(redraw, names="value")
    redraw()
    return box
