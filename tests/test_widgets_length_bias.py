"""The length-bias explorer (lesson 05): the report against the library, and the widget's numbers.

Models are trained on 120 pairs (about a second each) instead of the lessons' 1500.
"""

from __future__ import annotations

import pytest
import torch

from rmlearn import course_tokenizer, evaluate, length_probe
from rmlearn.data import PreferencePair
from rmlearn.synthetic import by_quality, quality
from rmlearn.views import length_bias_report, snap_bias
from rmlearn.widgets import length_bias_explorer
from rmlearn.zoo import course_data, trained_reward_model

N_PAIRS = 120


def test_snap_bias_rounds_to_tenths_and_rejects_non_probabilities():
    assert [snap_bias(b) for b in (0.0, 0.04, 0.87, 0.35000001, 1.0)] == [0.0, 0.0, 0.9, 0.4, 1.0]
    with pytest.raises(ValueError, match="in \\[0, 1\\]"):
        snap_bias(1.2)


def test_by_quality_puts_the_truly_better_answer_first():
    prompt = "How do I reset my password?"
    pair = PreferencePair(prompt, "i cannot help, thanks for writing.", "click forgot password.")
    (fixed,) = by_quality([pair])
    assert fixed == PreferencePair(prompt, "click forgot password.", "i cannot help, thanks for writing.")
    assert by_quality([fixed]) == [fixed]
    assert all(quality(p.prompt, p.chosen) > quality(p.prompt, p.rejected) for p in by_quality(course_data(60, 1.0)[1]))


def test_report_numbers_are_the_library_metrics():
    report = length_bias_report(0.9, n_pairs=N_PAIRS, n_probe=50)
    model, tok = trained_reward_model(length_bias=0.9, n_pairs=N_PAIRS), course_tokenizer()
    _, test = course_data(N_PAIRS, 0.9)
    assert report.length_bias == 0.9
    assert report.accuracy_annotators == evaluate(model, tok, test)["accuracy"]
    assert report.accuracy_quality == evaluate(model, tok, by_quality(test))["accuracy"]
    assert report.probe_prefers_longer == 1.0 - evaluate(model, tok, length_probe(50, seed=1))["accuracy"]
    assert len(report.scores) == len(report.lengths) == len(report.quality) == 2 * len(test)
    assert report.lengths[0].item() == len(test[0].chosen.split())
    expected = torch.corrcoef(torch.stack([report.scores, report.lengths]))[0, 1].item()
    assert report.correlation == pytest.approx(expected)


def test_report_reuses_the_model_a_lesson_trained():
    from rmlearn.zoo import _trained

    lesson_model = trained_reward_model(length_bias=0.9, n_pairs=N_PAIRS)
    misses = _trained.cache_info().misses
    length_bias_report(0.87, n_pairs=N_PAIRS, n_probe=10)  # snaps to 0.9: the same model
    assert _trained.cache_info().misses == misses
    assert trained_reward_model(0.9, 0, "eos", N_PAIRS) is lesson_model


def test_a_strong_bias_makes_the_model_prefer_longer_answers():
    unbiased, biased = (length_bias_report(b, n_pairs=N_PAIRS, n_probe=50) for b in (0.0, 0.9))
    assert biased.probe_prefers_longer > unbiased.probe_prefers_longer + 0.2
    assert biased.correlation > unbiased.correlation


def test_explorer_shows_the_report_for_the_slider_value():
    box = length_bias_explorer(0.0, n_pairs=N_PAIRS)
    before = box.summary.value
    box.controls["length_bias"].value = 0.9
    assert box.summary.value != before
    report = length_bias_report(0.9, n_pairs=N_PAIRS)
    assert box.report.length_bias == 0.9
    assert f"<td class='rm-prefers-longer'>{report.probe_prefers_longer:.3f}</td>" in box.summary.value
    assert f"<td class='rm-acc-quality'>{report.accuracy_quality:.3f}</td>" in box.summary.value
    assert f"<td class='rm-correlation'>{report.correlation:.3f}</td>" in box.summary.value


def test_explorer_draws_its_plot_as_a_png_image_and_has_no_output_widget():
    """An Output widget written during a cell made headless runs hang (rmlearn.widgets docstring)."""
    import ipywidgets as w

    box = length_bias_explorer(0.0, n_pairs=N_PAIRS)
    widgets = [box, *box.children]
    assert not [x for x in widgets if isinstance(x, w.Output)]
    before = box.image.value
    assert before[:8] == b"\x89PNG\r\n\x1a\n"
    box.controls["length_bias"].value = 0.9
    assert box.image.value != before  # redrawn for the new model
