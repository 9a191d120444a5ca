"""rmlearn.widgets.calibration: the explorer's numbers are rmlearn.evaluation's (lesson 09)."""

from __future__ import annotations

import math
import re

import torch

from rmlearn.evaluation import expected_calibration_error, fit_temperature
from rmlearn.widgets.calibration import calibration_explorer, calibration_view

GAP = torch.tensor([3.0, 2.5, 3.5, -3.0, 4.0, -2.0, 0.5, 1.5])  # overconfident: σ(3) = 0.95, right 6 of 8


def _shown(box, name: str) -> float:
    return float(re.search(rf"class='rm-{name}'>([-0-9.]+)<", box.summary.value).group(1))


def test_view_is_the_library_ece_at_that_temperature():
    for t in (0.5, 1.0, 3.0):
        assert calibration_view(GAP, t).reliability.ece == expected_calibration_error(GAP, t)


def test_a_larger_temperature_lowers_the_confidence():
    assert calibration_view(GAP, 3.0).mean_confidence < calibration_view(GAP, 1.0).mean_confidence


def test_explorer_redraws_the_ece_when_the_slider_moves():
    fitted = fit_temperature(GAP)
    box = calibration_explorer(GAP, fitted=fitted)
    assert math.isclose(_shown(box, "t"), round(fitted, 2), abs_tol=0.005)
    assert math.isclose(_shown(box, "fitted"), fitted, abs_tol=0.005)
    first = box.image.value
    box.controls["T"].value = 1.0
    assert math.isclose(_shown(box, "ece"), expected_calibration_error(GAP, 1.0), abs_tol=5e-4)
    assert box.image.value != first and box.view.temperature == 1.0
