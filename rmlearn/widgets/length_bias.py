"""When annotators like long answers, so does the reward model: an explorer (lesson 05).

``rmlearn.views.length_bias_report`` trains (cached) a course model on data labelled with a given
length bias and measures it through the library (``evaluate``, ``length_probe``,
``RewardModel.score``); ``length_bias_explorer`` only wires a slider to it and redraws.
"""

from __future__ import annotations

from ..views import STEP, LengthBiasReport, length_bias_report, snap_bias


def _summary_html(report: LengthBiasReport) -> str:
    rows = (
        ("length bias of the annotators", "rm-bias", f"{report.length_bias:.1f}"),
        ("held-out accuracy (annotators' labels)", "rm-acc-annotators", f"{report.accuracy_annotators:.3f}"),
        ("held-out accuracy (true quality)", "rm-acc-quality", f"{report.accuracy_quality:.3f}"),
        ("probe: prefers the longer answer", "rm-prefers-longer", f"{report.probe_prefers_longer:.3f}"),
        ("correlation of reward with length", "rm-correlation", f"{report.correlation:.3f}"),
    )
    body = "".join(f"<tr><td>{name}</td><td class='{cls}'>{value}</td></tr>" for name, cls, value in rows)
    return f"<table class='rm-length-bias'>{body}</table>"


def length_bias_explorer(length_bias: float = 0.0, seed: int = 0, n_pairs: int | None = None):
    """Slide the annotators' length bias; the model is retrained (about 8 s, cached per 0.1 step).

    Returns an ipywidgets ``VBox``; ``.controls`` names its controls, ``.summary`` is the HTML
    with the numbers, ``.image`` the plot and ``.report`` holds the latest ``LengthBiasReport``.

    The plot is an ``Image`` widget, not an ``Output`` (why: the ``rmlearn.widgets`` docstring).
    """
    import ipywidgets as w

    from ..plots import figure_png, plot_score_vs_length

    slider = w.FloatSlider(value=snap_bias(length_bias), min=0.0, max=1.0, step=STEP, readout_format=".1f",
                           continuous_update=False, description="Length bias")
    status = w.Label(value="")
    summary = w.HTML()
    image = w.Image(format="png", layout=w.Layout(align_self="flex-start", max_width="100%"))  # natural size
    box = w.VBox([slider, status, summary, image])
    box.controls = dict(length_bias=slider)
    box.summary, box.image = summary, image

    def redraw(_=None):
        status.value = f"training with length bias {slider.value:.1f} (a few seconds the first time)…"
        report = length_bias_report(slider.value, seed, n_pairs)
        box.report = report
        summary.value = _summary_html(report)
        status.value = ""
        title = f"length bias {report.length_bias:.1f}: correlation {report.correlation:.2f}"
        image.value = figure_png(plot_score_vs_length({title: (report.lengths, report.scores, report.quality)}))

    slider.observe(redraw, names="value")
    redraw()
    return box
