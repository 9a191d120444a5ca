"""What lesson 08 says about its own outputs, checked on the executed notebook.

The lesson collects every value its sentences rest on in a dictionary ``claims`` and shows it in its
last cell before the quiz (``JSON(claims)``); ``check_08`` reads it back (``tests/lesson_claims.py``) and asserts each
sentence as a shape with margins (a peak, a sign, an order), never a rounded figure. The comments
quote the sentence each assertion stands for.
"""

from __future__ import annotations

from lesson_claims import read_claims


def _peak(values: list[float]) -> int:
    return max(range(len(values)), key=values.__getitem__)


def check_08(nb) -> None:
    c = read_claims(nb)
    figure = next(cell for cell in nb.cells if cell.get("id") == "c22")
    assert 'plot_rlhf_loop(highlight="rl")' in figure.source  # lesson 01's loop figure, the RL step highlighted
    assert any("image/png" in o.get("data", {}) for o in figure.outputs)
    # "a proxy trained on far fewer labelled pairs than the course's reward model"
    assert 3 * c["training_pairs"]["proxy"] < c["training_pairs"]["course_model"], c["training_pairs"]
    _check_best_of_n(c)
    _check_scale_and_length(c)
    _check_gao_and_frontier(c)
    _check_rl(c)
    # "The policy and the value model are trained during RL; the reference … and the reward model … stay frozen"
    assert c["changed"] == {"policy": True, "reference": False, "reward": False, "value": True}, c["changed"]


def _check_best_of_n(c: dict) -> None:
    bon = c["best_of_n"]
    n, proxy, gold, kl, bound = bon["x"], bon["proxy"], bon["gold"], bon["kl"], bon["kl_bound"]
    peak = _peak(gold)
    # "The proxy keeps rising with n … Gold rises too at first, peaks, and then falls while the proxy still climbs"
    assert all(b >= a for a, b in zip(proxy, proxy[1:])), proxy
    assert 0 < peak < len(n) - 1 and gold[peak] > gold[0] + 0.3, gold
    assert gold[-1] < gold[peak] - 0.1 and proxy[-1] > proxy[peak] + 0.05, (gold, proxy)
    # "Past the peak, best-of-n picks more off-topic answers … and more garbled ones (other): compare the last
    # line with the peak's"
    at_peak, at_end = c["picked_kinds"][str(n[peak])], c["picked_kinds"][str(n[-1])]
    assert at_end["off-topic"] > at_peak["off-topic"] + 0.05 and at_end["other"] > at_peak["other"] + 0.02, c["picked_kinds"]
    # "best-of-n moves away from the policy by at most log n − (n−1)/n nats … Ours falls below it at large n"
    assert all(k <= b + 0.005 for k, b in zip(kl, bound)) and kl[-1] < bound[-1] - 0.02, (kl, bound)
    # "Most of the gap comes from the sample count … The repeated answers lower the KL a little further,
    # less than the finite sample does"
    gap = c["kl_gap"]
    finite, ties = gap["bound"] - gap["no_ties"], gap["no_ties"] - gap["ours"]
    assert gap["ours"] <= gap["no_ties"] <= gap["bound"] and finite > 0.02 and 0 <= ties < 0.03 and finite > 2 * ties, gap


def _check_scale_and_length(c: dict) -> None:
    # "With normalised scores the KLs at one β lie close together": closer than raw, at most β
    scale = c["scale"]
    assert scale["spread_normalised"] < scale["spread_raw"] and scale["spread_normalised"] < 1.2, scale
    assert scale["closer"] > scale["betas"] / 2, scale
    # "with raw scores, the wider a proxy's std, the larger its KL at one β (the table below shows it at one β)"
    by_std = sorted(scale["std"], key=scale["std"].get)
    assert [scale["kl_raw"][b] for b in by_std] == sorted(scale["kl_raw"].values()), scale
    grid = {float(b): g for b, g in c["grid"].items()}
    assert sorted(grid) == [0.0, 0.5, 0.8], sorted(grid)
    bon = {b: g["best_of_n"] for b, g in grid.items()}
    # "The two length-biased proxies make best-of-n pick longer answers; the unbiased one does not"
    assert max(bon[0.0]["length"]) < 1.05 * bon[0.0]["length"][0], bon[0.0]["length"]
    assert all(max(bon[b]["length"]) > 1.15 * bon[b]["length"][0] for b in (0.5, 0.8))
    # "It buys almost no gold … the correlation above is near 0"
    fair_gain = max(bon[0.0]["gold"]) - bon[0.0]["gold"][0]
    assert fair_gain > 0.3 and all(max(bon[b]["gold"]) - bon[b]["gold"][0] < fair_gain / 4 for b in (0.5, 0.8))
    assert abs(c["length_gold_correlation"]) < 0.1, c["length_gold_correlation"]
    # "At the largest n the proxy with bias 0.8 picks … more often off-topic or garbled than a random answer's,
    # and gold ends below where it started"
    kinds = c["picked_kinds_biased"]
    wrong = {n: k["off-topic"] + k["other"] for n, k in kinds.items()}
    assert set(wrong) == {"1", str(bon[0.8]["x"][-1])} and wrong[str(bon[0.8]["x"][-1])] > wrong["1"] + 0.10, kinds
    assert bon[0.8]["gold"][-1] < bon[0.8]["gold"][0] - 0.05, bon[0.8]["gold"]
    # "gold peaks at β … A larger β optimises too little …; at the smallest β the KL grows and gold falls …
    # The larger β, the smaller the KL"
    reg = grid[0.0]["kl_regularised"]
    top = _peak(reg["gold"])
    assert 0 < top < len(reg["x"]) - 1, reg["gold"]
    assert reg["gold"][0] < reg["gold"][top] - 0.05 and reg["gold"][-1] < reg["gold"][top] - 0.1, reg["gold"]
    assert reg["x"] == sorted(reg["x"], reverse=True) and reg["kl"] == sorted(reg["kl"]), reg


def _check_gao_and_frontier(c: dict) -> None:
    gao = c["gao"]
    # "Best-of-n's form fits best-of-n's curve closely: gold rises about like α·d, and the −βd² term bends it down"
    assert gao["best_of_n"]["r2"] > 0.95 and gao["best_of_n"]["alpha"] > 0 and gao["best_of_n"]["beta"] > 0, gao
    # "On the KL-regularised curve the RL form fits less well than the best-of-n form does"
    assert gao["kl_regularised"]["r2"] < gao["kl_regularised_best_of_n_form"]["r2"], gao
    # "At equal KL the two ways of optimising give nearly the same gold (the differences are small next to
    # the gain), and no β gets clearly above best-of-n's peak"
    f = c["frontier"]
    assert len(f["gaps"]) >= 6 and max(abs(g) for g in f["gaps"]) < f["gain"] / 4, f
    assert f["kl_regularised_peak"] <= f["best_of_n_peak"] + 0.01, f


def _check_rl(c: dict) -> None:
    rl = c["rl"]
    proxy, gold, kl = rl["proxy"], rl["gold"], rl["kl"]  # (seeds, windows) each
    # "The proxy climbs in every run, and the KL from the reference grows to many nats"
    assert all(p[-1] > p[0] + 0.5 for p in proxy), proxy
    assert all(k[-1] > max(5.0, 5 * k[0]) for k in kl), kl
    # "On average over the runs, gold rises over the first steps and then falls; it ends below its first
    # steps' average, gives back about all it gained, and ends near the SFT policy's own gold"
    assert len(gold) == 3, gold
    mean = [sum(col) / len(col) for col in zip(*gold)]
    assert max(mean[1:3]) > mean[0] and mean[-1] < mean[0] and mean[-1] < max(mean) - 0.1, mean
    assert abs(mean[-1] - rl["start"]) < (max(mean) - rl["start"]) / 3, (mean, rl["start"])
    # "the runs differ from each other by about as much as gold first gains"
    width = [max(col) - min(col) for col in zip(*gold)]
    first_gain = max(mean) - mean[0]
    assert first_gain > 0 and sum(width) / len(width) > first_gain / 2, (mean, width)
    # "the RL form fits them better than the best-of-n form, the other way round from the KL-regularised optimum"
    assert c["rl_gao"]["rl"]["r2"] > c["rl_gao"]["best_of_n"]["r2"], c["rl_gao"]
    # "The proxy ranks most held-out pairs right … the three proxies disagree more about the answers of
    # every RL-trained policy than about the SFT policy's"
    watch = c["watch"]
    assert watch["held_out_accuracy"] > 0.8, watch
    assert all(d > watch["disagreement_sft"] + 0.05 for d in watch["disagreement_rl"]), watch
