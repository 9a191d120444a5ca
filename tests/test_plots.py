"""rmlearn.plots: figures carry the library's numbers and display as pictures in a notebook."""

import torch
from torch.testing import assert_close

from rmlearn import History, pairwise_loss
from rmlearn.plots import plot_history, plot_pairwise_loss


def test_pairwise_loss_plot_draws_the_library_loss():
    fig = plot_pairwise_loss(margin=1.0)
    line = fig.axes[0].lines[0]
    gaps, drawn = torch.tensor(line.get_xdata()), torch.tensor(line.get_ydata())
    assert_close(drawn, pairwise_loss(gaps, torch.zeros_like(gaps), 1.0, reduction="none"))


def test_history_plot_has_loss_and_accuracy_panels():
    fig = plot_history(History(loss=[0.7, 0.5, 0.4, 0.3, 0.2, 0.1], accuracy=[0.5] * 6, epoch=[0] * 6))
    assert [ax.get_ylabel() for ax in fig.axes] == ["loss", "accuracy"]
    assert list(fig.axes[0].lines[0].get_ydata()) == [0.7, 0.5, 0.4, 0.3, 0.2, 0.1]
    assert fig.axes[0].get_title() == "pairwise loss"


def test_history_without_accuracy_gets_one_panel_with_its_own_title():
    fig = plot_history(History(loss=[3.0, 2.0, 1.5, 1.2, 1.1, 1.0]), title="value loss")
    assert len(fig.axes) == 1 and fig.axes[0].get_title() == "value loss" and fig.axes[0].get_visible()


def test_figures_display_as_png_in_ipython_without_matplotlib_inline():
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    data, _ = shell.display_formatter.format(plot_pairwise_loss())
    assert data["image/png"][:8] == b"\x89PNG\r\n\x1a\n"


def test_rlhf_loop_names_every_model_and_highlights_one():
    import pytest

    from rmlearn.plots import RLHF_BOXES, plot_rlhf_loop

    fig = plot_rlhf_loop()
    texts = {t.get_gid(): t for t in fig.axes[0].texts if t.get_gid()}
    assert {f"rlhf-{name}" for name in RLHF_BOXES} <= set(texts)
    for words in ("SFT", "reference", "reward model", "PPO", "KL", "value model"):
        assert any(words in t.get_text() for t in texts.values()), words
    assert texts["rlhf-reward"].get_bbox_patch().get_facecolor() != texts["rlhf-sft"].get_bbox_patch().get_facecolor()
    with pytest.raises(ValueError, match="highlight must be one of"):
        plot_rlhf_loop("critic")


def test_prompt_swap_plot_shows_the_grid_it_is_given():
    from rmlearn.plots import plot_prompt_swap

    grid = torch.tensor([[2.0, -1.0], [0.5, 3.0]])
    fig = plot_prompt_swap(grid, ["q1", "q2"])
    assert_close(torch.tensor(fig.axes[0].images[0].get_array().tolist(), dtype=torch.float64), grid.double())
    assert [t.get_text() for t in fig.axes[0].texts] == ["2.0", "-1.0", "0.5", "3.0"]


def test_overoptimization_plot_gives_gold_its_own_scale():
    """Lesson 08: gold rises and falls by tenths while the proxy climbs by units; on a shared axis gold
    looked flat. Each panel draws gold on its own (right) axis, scaled to gold."""
    from rmlearn.plots import plot_overoptimization
    from rmlearn.rlhf import Curve

    kl = [0.0, 0.2, 0.6, 1.2, 1.8, 2.5]
    curve = Curve([1, 2, 4, 8, 16, 32], [0.0, 2.0, 3.8, 4.8, 5.3, 5.5], [0.3, 0.5, 0.7, 0.8, 0.7, 0.6], kl,
                  [12.0] * 6, [0.0] * 6)
    fig = plot_overoptimization(curve, curve, n=8)
    gold_axes = [ax for ax in fig.axes for line in ax.lines if list(line.get_ydata()) == curve.gold]
    proxy_axes = [ax for ax in fig.axes for line in ax.lines if list(line.get_ydata()) == curve.proxy]
    assert len(gold_axes) == len(proxy_axes) == 2 and not set(gold_axes) & set(proxy_axes)
    for ax in gold_axes:
        low, high = ax.get_ylim()
        assert high - low < 2 * (max(curve.gold) - min(curve.gold))  # gold fills its axis


def test_gao_plot_draws_points_against_sqrt_kl_and_the_fitted_curve():
    """Lesson 08: gold against d = √KL, the points and the fit R(d) drawn from the policy's own gold."""
    from rmlearn.plots import plot_gao_fits
    from rmlearn.rlhf import Curve, fit_gao

    kl = [0.0, 0.2, 0.6, 1.2, 1.8, 2.5]
    gold = [0.3, 0.5, 0.7, 0.8, 0.7, 0.6]
    curve = Curve([1, 2, 4, 8, 16, 32], [0.0, 1.0, 1.5, 1.8, 1.9, 2.0], gold, kl, [12.0] * 6, [0.0] * 6)
    fit = fit_gao(kl, [g - gold[0] for g in gold], "best_of_n")
    fig = plot_gao_fits(curve, curve, {"best_of_n": fit})
    points = next(line for line in fig.axes[0].lines if list(line.get_ydata()) == gold)
    assert_close(torch.tensor(points.get_xdata(), dtype=torch.float64), torch.tensor(kl, dtype=torch.float64).sqrt())
    fitted = next(line for line in fig.axes[0].lines if "R²" in line.get_label())
    x = torch.tensor(fitted.get_xdata(), dtype=torch.float64)
    assert_close(torch.tensor(fitted.get_ydata(), dtype=torch.float64), gold[0] + fit(x))


def test_rl_runs_plot_bands_the_smoothed_runs():
    from rmlearn.plots import plot_rl_runs
    from rmlearn.rlhf import RLHistory

    runs = [RLHistory(proxy=[float(i + s) for i in range(8)], gold=[0.1 * s] * 8, kl=[0.5 * i for i in range(8)])
            for s in range(3)]
    fig = plot_rl_runs(runs, window=4)
    proxy_ax = fig.axes[0]
    mean = proxy_ax.lines[0]
    assert list(mean.get_xdata()) == [3, 4, 5, 6, 7]  # a 4-step average starts at step 3
    assert_close(torch.tensor(mean.get_ydata(), dtype=torch.float64), torch.tensor([2.5, 3.5, 4.5, 5.5, 6.5], dtype=torch.float64))
    band = proxy_ax.collections[0].get_paths()[0].vertices[:, 1]
    assert band.min() == 1.5 and band.max() == 7.5  # lowest run (seed 0) to highest (seed 2)
