"""When annotators like long answers, so does the reward model: an explorer (lesson 05).

``length_bias_report`` trains (cached) a course model on data labelled with a given length bias
and measures it through the library (``evaluate``, ``length_probe``, ``RewardModel.score``);
``length_bias_explorer`` only wires a slider to it and redraws.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..data import PreferencePair
from ..synthetic import length_probe, quality

STEP = 0.1  # biases are snapped to this grid so each trained model can be cached and reused


@dataclass
class LengthBiasReport:
    """What a reward model trained with annotator ``length_bias`` learned.

    ``accuracy_annotators``: held-out pairs ranked as the (biased) annotators labelled them.
    ``accuracy_quality``: the same held-out pairs ranked by their true quality.
    ``probe_prefers_longer``: fraction of ``length_probe`` pairs (better = shorter) where the
    model scores the longer answer higher. ``correlation``: Pearson correlation of reward with
    length over the held-out responses, whose ``lengths`` (words), ``scores`` and true
    ``quality`` are kept, each (N,).
    """

    length_bias: float
    accuracy_annotators: float
    accuracy_quality: float
    probe_prefers_longer: float
    correlation: float
    lengths: torch.Tensor  # (N,)
    scores: torch.Tensor  # (N,)
    quality: torch.Tensor  # (N,)


def snap_bias(length_bias: float) -> float:
    """Round to the 0.1 grid; outside [0, 1] raises ``ValueError``.

    >>> snap_bias(0.87), snap_bias(0.04)
    (0.9, 0.0)
    """
    if not 0.0 <= length_bias <= 1.0:
        raise ValueError(f"length_bias is a probability in [0, 1], got {length_bias}")
    return round(round(length_bias / STEP) * STEP, 1)


def by_quality(pairs: list[PreferencePair]) -> list[PreferencePair]:
    """The same pairs, relabelled so that ``chosen`` is the one with the higher true quality."""
    return [p if quality(p.prompt, p.chosen) > quality(p.prompt, p.rejected)
            else PreferencePair(p.prompt, p.rejected, p.chosen) for p in pairs]


def num_words(text: str) -> int:
    """Length of a response in words (how the synthetic data measures it).

    >>> num_words("thanks for writing, click forgot password.")
    6
    """
    return len(text.split())


def length_bias_report(length_bias: float, seed: int = 0, n_pairs: int | None = None, n_probe: int = 200) -> LengthBiasReport:
    """Train (or reuse) ``trained_reward_model(length_bias, seed, n_pairs=n_pairs)`` and measure it.

    ``n_pairs=None`` means the course model's own number of pairs (``rmlearn.zoo.N_PAIRS``).
    """
    from ..backbone import course_tokenizer
    from ..train import evaluate
    from ..zoo import N_PAIRS, course_data, trained_reward_model

    n_pairs = N_PAIRS if n_pairs is None else n_pairs
    bias = snap_bias(length_bias)
    model = trained_reward_model(length_bias=bias, seed=seed, n_pairs=n_pairs)  # shared with the lesson
    tokenizer = course_tokenizer()
    _, test = course_data(n_pairs, bias, seed)
    probe = length_probe(n_probe, seed=seed + 1)
    responses = [r for p in test for r in (p.chosen, p.rejected)]
    scores = model.score([p.prompt for p in test for _ in (0, 1)], responses, tokenizer)  # (2·N_test,)
    lengths = torch.tensor([num_words(r) for r in responses], dtype=torch.float32)  # (2·N_test,)
    return LengthBiasReport(
        length_bias=bias,
        accuracy_annotators=evaluate(model, tokenizer, test)["accuracy"],
        accuracy_quality=evaluate(model, tokenizer, by_quality(test))["accuracy"],
        probe_prefers_longer=1.0 - evaluate(model, tokenizer, probe)["accuracy"],
        correlation=torch.corrcoef(torch.stack([scores, lengths]))[0, 1].item(),
        lengths=lengths,
        scores=scores,
        quality=torch.tensor([quality(p.prompt, r) for p in test for r in (p.chosen, p.rejected)]),
    )


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
