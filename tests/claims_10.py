"""What lesson 10 says about its own outputs, checked on the executed notebook.

The lesson collects the values its sentences rest on in a ``claims`` dict (``tests/lesson_claims.py`` reads it back); conditional wording is chosen by the lesson's code from those same
values. These checks assert the shapes the lesson's fixed sentences need, with margins.
"""

from __future__ import annotations

import math

from lesson_claims import read_claims


def check_10(nb) -> None:
    c = read_claims(nb)
    assert 0.2 < c["tie_share"] < 0.4, c["tie_share"]  # "≈ 30 %" ties
    # ties: dropping them inflates the gaps; coin flips and Rao–Kupper keep them finite and close
    t = c["ties"]
    drop, rand, rk = t["ties dropped"], t["ties as random labels"], t["Rao-Kupper (nu = 1)"]
    assert all(r["accuracy_clear"] >= 0.95 for r in t.values()), t
    assert c["tie_inflation"] > 1.5 and drop["gap_tied"] > rk["gap_tied"], t  # "keep growing", "separates tied"
    assert rand["gap_tied"] < drop["gap_tied"] and abs(rand["gap_clear"] - rk["gap_clear"]) < 0.3 * rk["gap_clear"], t
    assert rk["p_tie_tied"] > rk["p_tie_clear"] + 0.2, t  # "Only Rao–Kupper can also say tie"
    # margins: the clear gap grows with the scale, and so does the near-tie gap ("the whole scale stretches")
    m = c["margins"]
    scales = sorted(m, key=float)
    clear = [m[s]["gap_clear"] for s in scales]
    near = [m[s]["gap_near_tie"] for s in scales]
    assert clear == sorted(clear) and clear[-1] > 2 * clear[0], m
    assert near[-1] > near[0], m
    assert m[scales[-1]]["accuracy_clear"] >= m[scales[0]]["accuracy_clear"], m
    # process rewards: the PRM learns, finds the step, and best-of-n with it keeps more right answers
    p = c["prm"]
    assert p["loss_last"] < p["loss_first"] / 2 and p["first_error_flawed"] > 0.6 and p["clean_passed"] > 0.8, p
    assert c["example"]["true_first_error"] == 2, c["example"]  # the example shown is a flawed answer (its
    # sentence, "the PRM's lowest step is step k, the wrong one is step 2", is written by the code either way)
    b = c["best_of_n"]
    assert max(b["PRM, min"], b["PRM, product"]) >= b["outcome RM"] + 0.05, b
    assert b["outcome RM"] > b["random pick"], b
    # DPO: starts at log 2, learns, ranks about as well as the explicit model in and out of distribution
    d = c["dpo"]
    assert abs(d["loss_first"] - math.log(2)) < 1e-3 and d["loss_last"] < 0.5, d
    assert d["implicit_test"] > 0.8 and d["explicit_test"] > 0.8, d
    assert d["implicit_swap"] > 0.7 and d["explicit_swap"] > 0.7, d  # "both have to read the question"
    assert abs(d["implicit_swap"] - d["explicit_swap"]) < 0.1, d
    k = c["per_token"]
    assert set(k["implicit_order"]) == set(k["segment_order"]) and -1 <= k["corr"] <= 1, k
    figures = sum("image/png" in o.get("data", {}) for cell in nb.cells for o in cell.get("outputs", []))
    assert figures >= 2, figures  # Rao–Kupper's three outcomes; one decoder, three heads


CLAIMS = {"10_beyond_pairwise_labels": check_10}
