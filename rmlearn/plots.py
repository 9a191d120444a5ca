"""Matplotlib figures for lessons, widgets and the demo. Each returns a Figure, never shows it.

Figures are built with ``matplotlib.figure.Figure`` directly (no pyplot state), so they work in a
kernel, in a headless test and in the CLI alike.
"""

from __future__ import annotations

from typing import Any

import torch


def _show_figures_in_notebooks(figure_class: type) -> None:
    """Let a notebook display a returned Figure as a picture even without ``%matplotlib inline``
    (a Figure made without pyplot has no display hook of its own)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return
    shell = get_ipython()
    if shell is not None:
        png = shell.display_formatter.formatters["image/png"]
        png.for_type(figure_class, lambda fig: figure_png(fig, dpi=100))


def _figure(width: float = 6.0, height: float = 3.2, ncols: int = 1):
    from matplotlib.figure import Figure

    _show_figures_in_notebooks(Figure)
    fig = Figure(figsize=(width, height), layout="constrained")
    axes = fig.subplots(1, ncols)
    return fig, axes


def plot_history(history: Any, window: int = 5, title: str = "pairwise loss"):
    """Loss per step (thin) with a moving average (thick), titled ``title``, and beside it the
    fraction of pairs ranked right when the history has one (a value model's training has none,
    so it gets the loss panel only: ``plot_history(history, title="value loss ...")``, lesson 07)."""
    panels = [(history.loss, "loss", title)]
    if history.accuracy:
        panels.append((history.accuracy, "accuracy", "pairs ranked correctly (training batch)"))
    fig, axes = _figure(8.0 if len(panels) == 2 else 5.0, 3.0, ncols=len(panels))
    for ax, (values, name, heading) in zip(axes if len(panels) == 2 else [axes], panels):
        series = torch.tensor(values, dtype=torch.float64)
        ax.plot(series, alpha=0.3, lw=1, color="C0")
        if len(series) >= window:
            smooth = series.unfold(0, window, 1).mean(1)  # (steps - window + 1,)
            ax.plot(range(window - 1, len(series)), smooth, lw=2, color="C0")
        ax.set_xlabel("step")
        ax.set_ylabel(name)
        ax.set_title(heading)
        ax.grid(alpha=0.3)
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


def plot_tie_probabilities(nu: float = 1.0, kappa: float = 1.0, gap: float | None = None, span: float = 6.0):
    """Lesson 10: P(a wins), P(tie), P(b wins) against the gap Δ = r_a − r_b, Rao–Kupper (solid,
    threshold ν) and Davidson (dashed, weight κ); marks ``gap`` if given."""
    from .losses import davidson_probs, rao_kupper_probs

    gaps = torch.linspace(-span, span, 241, dtype=torch.float64)  # (241,)
    fig, ax = _figure()
    for probs, style, name in ((rao_kupper_probs(gaps, nu), "-", f"Rao–Kupper ν={nu:g}"),
                               (davidson_probs(gaps, kappa), "--", f"Davidson κ={kappa:g}")):
        for k, (outcome, colour) in enumerate((("a wins", "C0"), ("tie", "C2"), ("b wins", "C3"))):
            ax.plot(gaps, probs[:, k], style, color=colour, label=f"{outcome}, {name}")
    if gap is not None:
        ax.axvline(gap, color="grey", lw=0.8)
    ax.set_xlabel("score gap Δ = r_a − r_b")
    ax.set_ylabel("probability")
    ax.set_ylim(0, 1)
    ax.legend(loc="center right", fontsize=7)
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
        # each marker sits at the reward its pooling gives (a PAD position has no bar of its own)
        y = scores[how] if scores and how in scores else values[at].nan_to_num(0.0).item()
        ax.plot([at], [y], marker, color=colour, ms=11, mew=2, label=f"{label} (reads position {at})")
    for n, at in enumerate((~real).nonzero().flatten().tolist()):
        ax.axvspan(at - 0.5, at + 0.5, color="lightgrey", alpha=0.6, lw=0, label=None if n else "padding (no score)")
    if len(values) <= max_labels:
        ax.set_xticks(range(len(values)), [repr(t)[1:-1] for t in tokens], rotation=90, fontsize=7)
    ax.axhline(0, color="grey", lw=0.6)
    ax.set_xlabel("position (token)")
    ax.set_ylabel("head output at this position")
    fig.legend(fontsize=8, loc="outside upper center", ncol=2)  # above the bars, never over them
    return fig


def plot_score_vs_length(panels: dict):
    """Reward against response length (lesson 05), one panel per model.

    ``panels`` maps a title to ``(lengths, scores, quality)``, each (N,); points are coloured by
    the true quality of the response, so a model that learned quality shows flat bands and one
    that learned length shows rising ones.
    """
    fig, axes = _figure(max(6.0, 4.2 * len(panels)), 3.4, ncols=len(panels))
    axes = [axes] if len(panels) == 1 else list(axes)
    limit = max(1.0, *(torch.as_tensor(q, dtype=torch.float64).abs().max().item() for _, _, q in panels.values()))
    for ax, (title, (lengths, scores, quality)) in zip(axes, panels.items(), strict=True):
        dots = ax.scatter(torch.as_tensor(lengths).tolist(), torch.as_tensor(scores).tolist(),
                          c=torch.as_tensor(quality).tolist(),  # colours span the qualities present, e.g. −1 … +1
                          cmap="coolwarm_r", s=14, alpha=0.8, vmin=-limit, vmax=limit)
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("response length (words)")
        ax.set_ylabel("reward")
        ax.grid(alpha=0.3)
    fig.colorbar(dots, ax=axes, label="true quality")
    return fig


def plot_segments(cumulative, baseline: float = 0.0, labels=None):
    """Cumulative scores after each segment (line) and each segment's own score (bars) (lesson 06).

    The bars are ``segment_scores(cumulative, baseline)``; the number above each bar is its place
    in ``rank_segments`` (1 = contributed most).
    """
    from .segments import rank_segments, segment_scores

    values = torch.as_tensor(cumulative, dtype=torch.float64)  # (n,)
    scores = segment_scores(values, baseline)  # (n,)
    place = {k: i + 1 for i, k in enumerate(rank_segments(values, baseline))}
    n = len(values)
    fig, ax = _figure(max(5.0, 1.1 * n + 2.5), 3.4)
    x = torch.arange(1, n + 1)
    colours = ["C2" if s >= 0 else "C3" for s in scores.tolist()]
    ax.bar(x.tolist(), scores.tolist(), color=colours, alpha=0.75, label="segment score  s_k − s_(k−1)")
    ax.plot(range(n + 1), torch.cat([values.new_tensor([baseline]), values]).tolist(), "o-", color="k",
            label="cumulative score s_k (s_0 = baseline)")
    for k, s in zip(x.tolist(), scores.tolist(), strict=True):
        ax.annotate(f"#{place[k]}", (k, s), ha="center", va="bottom" if s >= 0 else "top", fontsize=9)
    names = labels if labels is not None else [f"seg {k}" for k in x.tolist()]
    ax.set_xticks([0] + x.tolist(), ["start"] + [_shorten(t) for t in names], fontsize=8,
                  rotation=20 if labels is not None else 0, ha="right" if labels is not None else "center")
    ax.axhline(0, color="grey", lw=0.6)
    ax.set_ylabel("score")
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3, axis="y")
    return fig


def _shorten(text: str, width: int = 22) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def plot_values(tokens, curves: dict, rewards: dict | None = None, max_labels: int = 60):
    """Values along one sequence (lesson 07): one line per entry of ``curves`` (name → (T,)),
    with each of ``rewards`` (name → float) as a dashed horizontal line."""
    fig, ax = _figure(max(6.0, min(14.0, 0.2 * len(tokens))), 3.4)
    for name, values in curves.items():
        ax.plot(torch.as_tensor(values).tolist(), "o-", ms=3, label=name)
    for i, (name, r) in enumerate((rewards or {}).items()):
        ax.axhline(r, color=f"C{i + 3}", ls="--", lw=1.2, label=f"{name}: {r:.2f}")
    if len(tokens) <= max_labels:
        ax.set_xticks(range(len(tokens)), [repr(t)[1:-1] for t in tokens], rotation=90, fontsize=7)
    ax.set_xlabel("state (prefix ending at this token)")
    ax.set_ylabel("value V(state)")
    ax.legend(fontsize=8, loc="best")
    ax.grid(alpha=0.3)
    return fig


def plot_scores(scores, labels, highlight: int | None = None, xlabel: str = "reward r(x, y)", colors=None):
    """One horizontal bar per response (lessons 01 and 04); ``highlight`` outlines one bar, e.g. the
    best of n. ``colors`` (one per bar) defaults to blue."""
    values = torch.as_tensor(scores, dtype=torch.float64).tolist()  # (N,)
    fig, ax = _figure(8.0, 0.35 * len(values) + 1.2)
    bars = ax.barh(range(len(values)), values, color=colors or "C0")
    if highlight is not None:
        bars[highlight].set_edgecolor("black")
        bars[highlight].set_linewidth(2.5)
    ax.set_yticks(range(len(values)), [label if len(label) <= 60 else label[:57] + "…" for label in labels], fontsize=8)
    ax.invert_yaxis()  # first response on top
    ax.axvline(0, color="grey", lw=0.6)
    ax.set_xlabel(xlabel)
    ax.grid(axis="x", alpha=0.3)
    return fig


def figure_png(fig, dpi: int = 90) -> bytes:
    """A figure as PNG bytes, for an ``ipywidgets.Image``: widgets then show plots in JupyterLab,
    Notebook 7 and Voila without relying on a notebook's matplotlib display hook."""
    import io

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def plot_overoptimization(best_of_n: Any, kl_regularised: Any, n: int | None = None, beta: float | None = None):
    """Lesson 08: proxy and gold reward against the KL from π, for best-of-n (left, with the
    log n − (n−1)/n bound) and for the KL-regularised optimum (right); markers at ``n`` and ``beta``.

    ``best_of_n`` and ``kl_regularised`` are ``rmlearn.rlhf.Curve`` objects.
    """
    fig, axes = _figure(9.6, 3.2, ncols=2)
    for ax, curve, at, name in ((axes[0], best_of_n, n, "best-of-n"), (axes[1], kl_regularised, beta, "KL-regularised, softmax(r/β)")):
        gold_ax = ax.twinx()  # gold on its own scale: its rise and fall are small next to the proxy's climb
        proxy_line, = ax.plot(curve.kl, curve.proxy, "-o", ms=3, color="tab:orange", label="proxy (reward model, left)")
        gold_line, = gold_ax.plot(curve.kl, curve.gold, "-o", ms=3, color="tab:green", label="gold (true quality, right)")
        if at is not None and at in curve.x:
            i = curve.x.index(at)
            ax.axvline(curve.kl[i], color="grey", lw=0.8, ls=":")
            ax.plot(curve.kl[i], curve.proxy[i], "ks", ms=5)
            gold_ax.plot(curve.kl[i], curve.gold[i], "ks", ms=5)
        peak = max(range(len(curve.gold)), key=curve.gold.__getitem__)
        gold_ax.plot(curve.kl[peak], curve.gold[peak], "*", color="tab:green", ms=12)
        ax.set(xlabel="KL(π_chosen ‖ π) in nats", ylabel="proxy reward", title=name)
        gold_ax.set_ylabel("gold reward", color="tab:green")
        gold_ax.tick_params(axis="y", colors="tab:green")
        ax.grid(alpha=0.3)
    # below both panels: inside one it hid the end of a curve
    fig.legend([proxy_line, gold_line], [proxy_line.get_label(), gold_line.get_label()], fontsize=8,
               loc="outside lower center", ncol=2)
    if best_of_n.kl_bound:
        twin = axes[0].secondary_xaxis("top")
        twin.set_xticks(best_of_n.kl[::2], [str(x) for x in best_of_n.x[::2]])
        twin.set_xlabel("n")
    return fig


RLHF_BOXES = {  # name: (x, y, text) in axes coordinates; the reward model is the course's subject
    "sft": (0.13, 0.62, "policy π\n(starts as the SFT model:\nsupervised fine-tuning)"),
    "reference": (0.13, 0.22, "reference model\n(a frozen copy\nof the SFT policy)"),
    "reward": (0.50, 0.62, "reward model\nr(x, y): one number\n(lessons 01–07)"),
    "value": (0.50, 0.22, "value model (critic)\nV(prefix)\n(lesson 07)"),
    "rl": (0.86, 0.42, "RL step (PPO)\nraise  r − β·KL\n(lesson 08)"),
}
RLHF_ARROWS = (  # (from, to, label)
    ("sft", "reward", "prompt x,\nsampled answer y"),
    ("reward", "rl", "reward r(x, y)"),
    ("reference", "rl", "KL(policy ‖ reference)"),
    ("value", "rl", "baseline V"),
    ("rl", "sft", "updated policy"),
)
RLHF_LABEL_AT = {("sft", "reward"): (0.285, 0.645), ("reference", "rl"): (0.36, 0.33), ("value", "rl"): (0.70, 0.25)}  # clear of the other lines


def plot_rlhf_loop(highlight: str | None = "reward"):
    """The RLHF loop that the reward model serves (lessons 01 and 08), as a diagram.

    The policy (starting from the SFT model) answers prompts; the reward model scores each answer;
    PPO raises the reward minus β times the KL divergence from the frozen reference, with the value
    model as its baseline; the updated policy answers again. ``highlight`` names the box drawn in
    colour (one of ``RLHF_BOXES``, or ``None``).
    """
    if highlight is not None and highlight not in RLHF_BOXES:
        raise ValueError(f"highlight must be one of {sorted(RLHF_BOXES)} or None, got {highlight!r}")
    fig, ax = _figure(9.0, 4.2)
    ax.set_axis_off()
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    for name, (x, y, text) in RLHF_BOXES.items():
        colour = "#ffd59e" if name == highlight else "#e8eef7"
        ax.text(x, y, text, ha="center", va="center", fontsize=9, gid=f"rlhf-{name}",
                bbox=dict(boxstyle="round,pad=0.5", fc=colour, ec="#456"))
    half_w, half_h = 0.105, 0.095  # half the size of a box, in axes coordinates

    def edge(x0, y0, x1, y1):  # where the straight line from (x0, y0) to (x1, y1) leaves the box
        t = min(half_w / abs(x1 - x0) if x1 != x0 else 1.0, half_h / abs(y1 - y0) if y1 != y0 else 1.0)
        return x0 + t * (x1 - x0), y0 + t * (y1 - y0)

    for start, end, label in RLHF_ARROWS:
        (x0, y0, _), (x1, y1, _) = RLHF_BOXES[start], RLHF_BOXES[end]
        if start == "rl":  # the way back to the policy runs above the boxes
            tail, head, style = (x0, y0 + half_h), (x1, y1 + half_h), "arc3,rad=0.3"
            where = ((x0 + x1) / 2, 0.88)
        else:
            tail, head, style = edge(x0, y0, x1, y1), edge(x1, y1, x0, y0), "arc3"
            where = RLHF_LABEL_AT.get((start, end), ((x0 + x1) / 2, (y0 + y1) / 2 + 0.04))
        ax.annotate("", xy=head, xytext=tail, arrowprops=dict(arrowstyle="-|>", color="#456", connectionstyle=style))
        ax.text(*where, label, ha="center", fontsize=8, color="#345", gid=f"rlhf-arrow-{start}-{end}")
    return fig


def plot_prompt_swap(scores, prompts, answers=None):
    """Mean reward of good answers to each prompt (columns) when asked each prompt (rows) (lesson 04).

    ``scores`` is (P, P): ``scores[i, j]`` = mean reward of good answers to prompt ``j`` given prompt
    ``i``. A model that reads the question has its largest value of each row on the diagonal.
    """
    scores = torch.as_tensor(scores, dtype=torch.float64)  # (P, P)
    if scores.ndim != 2 or scores.shape[0] != scores.shape[1] or scores.shape[0] != len(prompts):
        raise ValueError(f"scores must be ({len(prompts)}, {len(prompts)}), got {tuple(scores.shape)}")
    answers = answers or [f"answers to {i + 1}" for i in range(len(prompts))]
    fig, ax = _figure(7.5, 4.2)
    image = ax.imshow(scores.tolist(), cmap="RdYlGn")
    ax.set_xticks(range(len(prompts)), answers, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(prompts)), [_shorten(p, 34) for p in prompts], fontsize=8)
    for i in range(len(prompts)):
        for j in range(len(prompts)):
            ax.text(j, i, f"{scores[i, j]:.1f}", ha="center", va="center", fontsize=8,
                    fontweight="bold" if i == j else "normal")
    ax.set_xlabel("good answer to …")
    ax.set_ylabel("question asked")
    fig.colorbar(image, ax=ax, label="mean reward")
    return fig


def plot_gao_fits(best_of_n: Any, kl_regularised: Any, fits: dict):
    """Lesson 08: gold against d = √KL for best-of-n and the KL-regularised optimum (points), with
    Gao et al.'s fitted forms (lines); the proxy beside it. ``fits`` maps "best_of_n" and
    "kl_regularised" to ``rmlearn.rlhf.GaoFit`` objects fitted on gold minus the policy's gold."""
    fig, (gold_ax, proxy_ax) = _figure(9.6, 3.2, ncols=2)
    start = best_of_n.gold[0]  # the policy's own gold: where both curves begin (d = 0)
    for curve, name, color in ((best_of_n, "best_of_n", "C0"), (kl_regularised, "kl_regularised", "C1")):
        d = torch.tensor(curve.kl, dtype=torch.float64).clamp(min=0).sqrt()  # (K,)
        label = "best-of-n" if name == "best_of_n" else "KL-regularised"
        gold_ax.plot(d, curve.gold, "o", ms=4, color=color, label=label)
        proxy_ax.plot(d, curve.proxy, "-o", ms=3, color=color, label=label)
        fit = fits.get(name)
        if fit is not None:
            grid = torch.linspace(0.0, float(d.max()), 100, dtype=torch.float64)  # (100,)
            shape = "d(α − βd)" if fit.form == "best_of_n" else "d(α − β log d)"
            gold_ax.plot(grid, start + fit(grid), "-", color=color, lw=1.2, label=f"fit {shape}, R² {fit.r2:.2f}")
    gold_ax.set(xlabel="d = √KL  (√nats)", ylabel="gold reward", title="gold: points and Gao et al.'s forms")
    proxy_ax.set(xlabel="d = √KL  (√nats)", ylabel="proxy reward (normalised)", title="proxy")
    for ax in (gold_ax, proxy_ax):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    return fig


def plot_rl_runs(histories: list, window: int = 6):
    """Lesson 08: proxy, gold and KL per PPO step over several seeds: each run smoothed by a moving
    average over ``window`` steps, then the mean over runs (line) and the lowest to highest run
    (band). ``histories`` are ``rmlearn.rlhf.RLHistory`` objects of equal length."""
    fig, axes = _figure(11.0, 3.0, ncols=3)
    for ax, name, label in zip(axes, ("proxy", "gold", "kl"), ("proxy reward", "gold reward", "KL(π‖π_ref), nats")):
        runs = torch.tensor([getattr(h, name) for h in histories], dtype=torch.float64)  # (R, steps)
        smooth = runs.unfold(1, window, 1).mean(-1)  # (R, steps - window + 1)
        steps = torch.arange(window - 1, runs.shape[1])
        ax.fill_between(steps, smooth.min(0).values, smooth.max(0).values, alpha=0.25, color="C0",
                        label=f"lowest … highest of {len(histories)} seeds")
        ax.plot(steps, smooth.mean(0), color="C0", lw=2, label="mean over seeds")
        ax.set(xlabel="PPO step", ylabel=label, title=f"{label} ({window}-step average)")
        ax.grid(alpha=0.3)
    axes[0].legend(fontsize=7)
    return fig


def plot_reliability(diagrams: dict):
    """Reliability diagrams (lesson 09): for each label, a ``evaluation.Reliability``; bars of
    accuracy per confidence bin beside the diagonal a calibrated model would follow, ECE in the legend."""
    fig, axes = _figure(4.4 * len(diagrams), 3.4, ncols=len(diagrams))
    axes = list(axes) if len(diagrams) > 1 else [axes]
    for ax, (label, rel) in zip(axes, diagrams.items()):
        lo, width = rel.edges[:-1], rel.edges[1] - rel.edges[0]
        acc = [0.0 if a != a else a for a in rel.accuracy]  # NaN (an empty bin): no bar
        ax.bar(lo, acc, width=width, align="edge", color="#4c72b0", alpha=0.8, edgecolor="white",
               label=f"accuracy per bin (ECE {rel.ece:.3f})")
        ax.plot([0.5, 1.0], [0.5, 1.0], "k--", lw=1, label="calibrated")
        for x, n in zip(lo, rel.count):
            if n:
                ax.text(x + width / 2, 0.02, str(n), ha="center", fontsize=7, color="white")
        ax.set(xlim=(0.5, 1.0), ylim=(0, 1.0), xlabel="confidence max(p, 1 − p)", ylabel="share of picks right",
               title=label)
        ax.legend(fontsize=7, loc="upper left")
    return fig
