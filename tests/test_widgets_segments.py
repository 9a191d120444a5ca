"""The segment explorer (lesson 06): pure views against the library, and the widget's numbers."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from rmlearn import PASSWORD_RESET, cumulative_scores, rank_segments, segment_scores, split_sentences
from rmlearn.widgets.segments import parse_numbers, response_view, segment_explorer, segment_view


def test_parse_numbers_accepts_commas_and_spaces():
    assert parse_numbers(" 0.3, 1.0  -0.4;2") == [0.3, 1.0, -0.4, 2.0]


def test_parse_numbers_names_the_bad_entry():
    with pytest.raises(ValueError, match="'abc' is not a number"):
        parse_numbers("0.3, abc")
    with pytest.raises(ValueError, match="at least one"):
        parse_numbers(" , ")


def test_segment_view_is_the_library_difference_and_ranking():
    view = segment_view([0.3, 1.0, 0.6, 1.4], baseline=0.1)
    assert_close(view.scores, torch.tensor([0.2, 0.7, -0.4, 0.8], dtype=torch.float64))
    assert view.order == [4, 2, 1, 3] == rank_segments([0.3, 1.0, 0.6, 1.4], 0.1)


def test_split_sentences_cuts_after_end_punctuation_and_a_space():
    text = "Go to Settings. Then Billing!  Done? Version 4.2 works."
    assert split_sentences(text) == ["Go to Settings.", "Then Billing!", "Done?", "Version 4.2 works."]


def test_response_view_uses_cumulative_scores_and_the_empty_response_baseline(reward_model, tokenizer):
    view = response_view(reward_model, tokenizer, PASSWORD_RESET.prompt, PASSWORD_RESET.chosen)
    segments = split_sentences(PASSWORD_RESET.chosen)
    assert view.segments == segments and len(segments) == 2
    expected = cumulative_scores(reward_model, tokenizer, PASSWORD_RESET.prompt, segments).double()
    baseline = reward_model.score([PASSWORD_RESET.prompt], [""], tokenizer)[0].item()
    assert_close(view.cumulative, expected)
    assert view.baseline == baseline
    assert_close(view.scores, segment_scores(expected, baseline))
    assert_close(view.cumulative[-1].float(), reward_model.score([PASSWORD_RESET.prompt], [PASSWORD_RESET.chosen], tokenizer)[0])


def test_explorer_redraws_segment_scores_when_the_numbers_change(reward_model, tokenizer):
    tab = segment_explorer(reward_model, tokenizer)
    own = tab.own
    own.controls["cumulative"].value = "0.5, 0.2, 0.9"
    own.controls["baseline"].value = 0.25
    assert_close(own.view.scores, segment_scores([0.5, 0.2, 0.9], 0.25))
    assert "<b class='rm-seg-order'>3, 1, 2</b>" in own.summary.value  # +0.7, +0.25, −0.3
    assert "+0.2500" in own.summary.value and "-0.3000" in own.summary.value
    own.controls["cumulative"].value = "0.5, oops"
    assert "'oops' is not a number" in own.summary.value


def test_explorer_shows_the_models_contributions_for_the_picked_response(reward_model, tokenizer):
    part = segment_explorer(reward_model, tokenizer).model_part
    dropdown = part.controls["response"]
    prompt, response = dropdown.options[4][1]  # the third pair's chosen answer
    dropdown.value = (prompt, response)
    segments = split_sentences(response)
    expected = segment_scores(cumulative_scores(reward_model, tokenizer, prompt, segments).double(),
                              reward_model.score([prompt], [""], tokenizer)[0].item())
    assert_close(part.view.scores, expected)
    for s in expected.tolist():
        assert f"{s:+.4f}" in part.summary.value


def _all_widgets(widget):
    yield widget
    for child in getattr(widget, "children", ()):
        yield from _all_widgets(child)


def test_explorer_draws_plots_as_png_images_and_has_no_output_widget(reward_model, tokenizer):
    """An Output widget written during a cell made headless runs hang (rmlearn.widgets docstring)."""
    import ipywidgets as w

    tab = segment_explorer(reward_model, tokenizer)
    assert not [x for x in _all_widgets(tab) if isinstance(x, w.Output)]
    for part in (tab.own, tab.model_part):
        assert part.image.value[:8] == b"\x89PNG\r\n\x1a\n"
    before = tab.own.image.value
    tab.own.controls["cumulative"].value = "0.1, 0.2, 2.0"
    assert tab.own.image.value != before  # redrawn
