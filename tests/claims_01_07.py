"""What lessons 01–07 say about their own outputs, checked on the executed notebook.

``tests/test_lessons.py`` executes each lesson once, with the cell that prints its ``claims`` dict
appended (``tests/lesson_claims.py``), and calls ``CHECKS[number](nb)``. Each lesson's code stores the
values its text states in ``claims``; each check reads them and asserts them as shapes with margins.
Numbers in the prose itself are written by the lessons' code.
"""

from __future__ import annotations

from lesson_claims import read_claims


def check_01(nb) -> None:
    c = read_claims(nb)
    assert any("image/png" in o.get("data", {}) for o in nb.cells[2].get("outputs", []))  # the RLHF loop figure
    assert c["eos_is_last_column"]  # the EOS state is the last column when nothing is padded
    assert c["call_minus_head"] < 1e-6  # "Calling the model runs steps 3–5 in one go, and gives the same number"
    assert c["untrained_largest_score"] < 1  # "its numbers are arbitrary small values"
    assert c["trained_gap"] > 1, c  # the detailed answer scores clearly higher than the curt one
    assert c["trained_pairs"] > 4 * c["support_pairs"], c  # the support pairs are a small part of the training data
    # "Within each kind the scores spread ... so each response gets its own value, not just a side"
    assert c["chosen_spread"] > 1 and c["rejected_spread"] > 1, c
    assert c["pairs_ordered_right"] > c["support_pairs"] / 2, c  # "this shows what it learned"
    # "in all n pairs the preferred answer is also the longer one: a model could have learned 'longer is better'"
    assert c["pairs_chosen_longer"] == c["support_pairs"], c


def check_02(nb) -> None:
    c = read_claims(nb)
    # causal attention: "Positions before the edit do not move at all; the edited word and every position after it change"
    # ("at all" as printed, to 4 decimals: float rounding in attention can leave ~1e-5 on states of size ~10)
    assert c["largest_change_before_edit"] < 5e-5 and c["smallest_change_from_edit"] > 1e-3, c
    # mean pooling: the prompt part is "position by position the same" in both rows, and the mean-pooled score is
    # "exactly" the weighted average of the two parts
    assert c["prompt_part_difference"] < 1e-4 and c["weighted_minus_mean"] < 1e-4, c
    (chosen_tokens, rejected_tokens), (chosen_share, rejected_share) = c["tokens"], c["prompt_share"]
    assert (chosen_share < rejected_share) == (chosen_tokens > rejected_tokens), c  # "the shorter, the more weight"
    assert 0 < c["mean_gap"] < c["response_gap"] - 0.5, c  # "waters their difference down", without turning it around
    # filler "having read the answer, they carry its verdict"
    assert all(h > u + 1 for h, u in zip(c["filler_after_helpful"], c["filler_after_unhelpful"], strict=True)), c
    gaps = c["mean_gap_by_filler"]
    assert gaps[-1] > gaps[0] - 0.05, gaps  # "filler does not water the mean-pooled gap down"
    drift = c["drift"]  # "moves each mean-pooled score with the response's length", the EOS scores far less
    assert drift["helpful mean"] > 2 * drift["helpful eos"] and drift["unhelpful mean"] > 2 * drift["unhelpful eos"], drift
    # the padding bug: a support pair picked at run time, where right padding turns the preference around
    padded, lengths, eos, naive = c["padded_row"], c["lengths"], c["eos_scores"], c["naive_scores"]
    assert sorted(c["last_column"]) == ["<|endoftext|>", "<|pad|>"] and c["last_column"][padded] == "<|pad|>", c
    assert lengths[padded] < lengths[1 - padded], c  # "The ... answer is the shorter one, so its row is padded"
    assert c["alone_minus_batch"] < 1e-4, c  # EOS pooling in a batch gives the scores of one at a time
    assert eos[0] > eos[1] + 1 and naive[0] < naive[1] - 1, c  # a clear win turned into a clear loss
    assert abs(naive[1 - padded] - eos[1 - padded]) < 1e-5, c  # "both methods give it" the same score
    assert c["left_padding_minus_alone"] < 1e-4, c  # with left padding the shortcut happens to work
    # PAD = EOS: the classifier reads the token before EOS; with a separate PAD it reads EOS, as rmlearn does
    assert abs(c["pad_is_eos"] - c["head_before_eos"]) < 1e-5, c
    assert abs(c["head_before_eos"] - c["head_at_eos"]) > 0.01, c
    assert abs(c["pad_is_not_eos"] - c["head_at_eos"]) < 1e-5 and abs(c["rmlearn_score"] - c["head_at_eos"]) < 1e-5, c


def check_03(nb) -> None:
    import math

    c = read_claims(nb)
    assert c["costliest_pair"] == c["smallest_gap_pair"], c  # "The pair with the smallest gap ... costs the most"
    assert c["probability_minus_exp_loss"] < 1e-6, c  # "exp(−loss) gives that probability back"
    # "Add the same constant to every score and nothing changes; multiply the scores and the loss does change"
    assert abs(c["shifted_loss"] - c["loss"]) < 1e-5 and c["scaled_loss"] < c["loss"] - 0.05, c
    # the gradient "is equal and opposite ... σ(−Δ)"
    for gap, g_c, g_r in zip(c["gaps"], c["grad_chosen"], c["grad_rejected"], strict=True):
        assert g_c == -g_r and abs(-g_c - 1 / (1 + math.exp(gap))) < 1e-4, c
    sizes = [-g for g in c["grad_chosen"]]  # by gap, from badly wrong to clearly right
    assert sizes == sorted(sizes, reverse=True) and sizes[-1] < 0.001 and sizes[0] > 0.95, sizes  # "almost nothing"
    assert all(0.5 <= s < 1 for gap, s in zip(c["gaps"], sizes) if gap <= 0), sizes  # wrong pairs: "between 0.5 and 1"
    margin = c["loss_at_gap_1"]  # by margin m ("0.0", "1.0", "2.0"): the curve slides right by m
    assert abs(margin["1.0"] - math.log(2)) < 1e-4 and margin["0.0"] < margin["1.0"] < margin["2.0"], margin
    free, centred = c["center_coef 0.0"], c["center_coef 0.05"]
    assert abs(free["mean"] - free["start_mean"]) < 1e-3, free  # "the mean stays exactly where it started"
    assert abs(centred["mean"]) < 0.5, centred  # "with it the scores settle around 0"
    for fit in (free, centred):  # "Both runs rank A above B and C, and those above D"
        a, b, c_, d = fit["scores"]
        assert a > b and a > c_ and b > d and c_ > d, fit
    gap = lambda fit: fit["scores"][0] - fit["scores"][3]  # noqa: E731  (A's score minus D's)
    assert gap(centred) < gap(free) - 0.5, (free, centred)  # "the gaps come out smaller than without it"
    assert centred["loss"] > free["loss"], (free, centred)  # "It trades ranking loss ... for scores on a fixed level"
    # quiz 03's explanations quote these numbers: −log σ(1) ≈ 0.313 and σ(−8) ≈ 0.0003
    assert abs(margin["0.0"] - 0.313) < 5e-4 and abs(sizes[-1] - 0.0003) < 5e-5


def check_04(nb) -> None:
    import math

    c = read_claims(nb)
    # "An untrained model ranks held-out pairs at chance level": within 2 standard errors of 0.5
    assert abs(c["untrained_accuracy"] - 0.5) < 2 * math.sqrt(0.25 / c["held_out_pairs"]), c
    # "The loss starts near log 2 ≈ 0.69 ... and falls; the fraction of pairs in each batch ranked the right way rises"
    assert abs(c["loss_first_step"] - math.log(2)) < 0.1 and c["loss_last_ten"] < c["loss_first_step"] / 10, c
    assert c["batch_accuracy_last_ten"] > c["batch_accuracy_first_ten"] + 0.2, c
    here = c["trained_here"]
    assert here["accuracy"] > 0.9 and here["accuracy"] > c["untrained_accuracy"], here  # held out, after training
    assert abs(here["mean_gap"] - (here["mean_chosen"] - here["mean_rejected"])) < 0.01, here  # "the average r_c − r_r"
    # both models read the question; the course model (12 epochs, shipped) is the one used from here on
    assert c["swap_accuracy_here"] >= 0.9 and c["swap_accuracy_course"] >= 0.95, c
    assert c["held_out_accuracy_course"] >= 0.97, c
    # "In 6 of 6 rows the highest mean reward is on the diagonal ... Row k, the running example's question, is one"
    assert c["rows_on_diagonal"] == c["rows"] == 6 and c["running_on_diagonal"], c
    assert c["pairs_from_ranking_of_9"] == 36, c  # "one ranking of 9 gives as many pairs as the last entry"
    losses = c["ranking_losses"]  # per ordering of the scores: [all pairs, Plackett–Luce]
    for i in (0, 1):  # "Both losses are lowest when the numbers follow the people's order and highest when reversed"
        assert losses["same numbers, human order"][i] == min(v[i] for v in losses.values()), losses
        assert losses["same numbers, reversed"][i] == max(v[i] for v in losses.values()), losses
        # "where the model's own order disagrees with the people's, both are higher than ... in the people's order"
        assert (c["pairs_against_people"] > 0) == (losses["model's scores"][i] > losses["same numbers, human order"][i])
    # "a tie costs log 2 whatever K is; Plackett–Luce ... log K!" (K = 4)
    assert abs(losses["all equal"][0] - math.log(2)) < 1e-3 and abs(losses["all equal"][1] - math.log(24)) < 1e-3
    assert abs(c["k2_all_pairs"] - c["k2_plackett_luce"]) < 1e-5, c  # "For K = 2 the two are the same loss"
    # best-of-8 picks an answer to the question asked; the mean reward follows the hidden quality
    assert c["best_quality"] == 1, c
    means = [m for _, m in sorted(c["mean_by_quality"].items(), key=lambda qm: -float(qm[0]))]
    assert means == sorted(means, reverse=True) and float(max(c["mean_by_quality"], key=float)) == 1, c
    assert all(s > 0.1 for s in c["spread_by_quality"].values()), c  # "Within one quality the scores still differ"


def check_05(nb) -> None:
    c = read_claims(nb)
    careful, biased = c["labels"]["0.0"], c["labels"]["0.9"]
    # "longer about half the time … the label mostly tracks length … only a little more than half still say"
    assert 0.4 <= careful["chosen_longer"] <= 0.6 and biased["chosen_longer"] >= 0.8, c["labels"]
    assert 0.5 <= biased["chosen_better"] <= 0.65, c["labels"]
    # the support pairs: the longer answer won in all of them, the running example's too
    assert c["support_chosen_longer"] == 1 and c["running_example_chosen_longer"], c
    # "agrees with its (biased) annotators on most pairs … yet gets fewer true-quality pairs right", far below the
    # careful model's; "The careful model looks *worse* by the usual check"
    careful, biased = c["held_out"]["0.0"], c["held_out"]["0.9"]
    assert biased["annotators"] > 0.5 and biased["truth"] < careful["truth"] - 0.2, c["held_out"]
    assert careful["annotators"] < biased["annotators"], c["held_out"]
    (better_quality, better_words), (worse_quality, worse_words) = c["probe_example"]
    assert better_quality > worse_quality and better_words < worse_words, c  # "better, shorter" / "worse, longer"
    probe = c["probe_prefers_longer"]
    assert probe["0.9"] > probe["0.0"], probe  # the biased model prefers the longer answer more often
    # "True quality is not tied to length … The careful model's reward follows length about as little … The biased
    # model's reward follows length far more: within one colour … its dots climb to the right"
    corr, within = c["reward_vs_length"], c["reward_vs_length_at_equal_quality"]
    assert abs(c["true_quality_vs_length"]) < 0.1 and abs(corr["0.0"]) < 0.1 and corr["0.9"] > corr["0.0"] + 0.5, c
    assert within["0.9"] > 0.5 and abs(within["0.0"]) < 0.3, within
    penalty = c["penalty"]  # "The penalty cut the probe's *prefers longer* rate"
    assert penalty["probe_after"] < penalty["probe_before"], penalty
    # "the probe moved a lot, the ordinary pairs hardly at all" is said exactly when the measured rates show it
    moved_little = (penalty["probe_before"] - penalty["probe_after"] >= 0.2
                    and abs(penalty["truth_after"] - penalty["truth_before"]) < 0.05)
    assert penalty["said_barely"] == moved_little, penalty
    rebalanced = c["rebalanced"]
    assert rebalanced["probe"] < rebalanced["probe_biased"], rebalanced  # rebalancing lowers the probe rate
    assert rebalanced["truth"] < rebalanced["truth_careful"], rebalanced  # "It does not get back to" careful labels
    assert c["kept"] < c["pool"] / 2, c  # "we threw away most of the labels"
    # "in the half where the longer answer won … names the better answer about as often as a coin would"
    longer_right = c["kept, longer answer won: label names the better answer"]
    assert 0.35 <= longer_right <= 0.65 and c["kept, shorter answer won: label names the better answer"] > longer_right + 0.2
    assert c["held_out_pairs_kept"] == 0, c  # "so no held-out pair is trained on"
    # the lesson quotes `rmlearn demo`'s output: what the demo prints must still say so (tests/test_cli.py runs it)
    import inspect

    from rmlearn import cli

    demo = inspect.getsource(cli._demo)
    assert "length cannot decide" in demo and "{'prefers' if r_good > r_bad else 'does NOT prefer'} the helpful" in demo
    cell = next(cell for cell in nb.cells if "support = support_pairs()" in cell.source)
    quoted = "".join(out.get("data", {}).get("text/markdown", "") for out in cell.outputs)
    assert "*length cannot decide*" in quoted and "*The model prefers the helpful answer*" in quoted, quoted


def check_06(nb) -> None:
    c = read_claims(nb)
    assert c["sum_minus_final"] < 1e-6, c  # "the differences telescope"
    assert c["baseline_changes"] == [True, False, False, False], c  # "The baseline only changes the first segment's credit"
    assert c["ranked"][-1] == 3, c  # "Segment 3 lowered the score, so it comes last"
    assert c["last_cumulative_minus_whole"] < 1e-4, c  # "last cumulative = score of the whole response"
    credit, from_empty = c["credit"], c["credit_from_empty"]  # by kind of phrase: helpful, unhelpful, filler
    assert sorted(credit) == ["filler", "helpful", "unhelpful"] and sum(map(len, credit.values())) == 10, credit
    # "the credit follows the rule in sign: helpful phrases raise the score, unhelpful ones lower it, and filler
    # moves it less than any of them"
    assert min(credit["helpful"]) > 0 and max(credit["unhelpful"]) < 0, credit
    smallest_content = min(min(credit["helpful"]), -max(credit["unhelpful"]))
    largest_filler = max(abs(x) for x in credit["filler"])
    assert largest_filler < smallest_content - 0.1, credit
    spread = lambda xs: max(xs) - min(xs)  # noqa: E731
    assert spread(credit["helpful"]) > 1, credit  # "not in size: ... quite different amounts"
    # "From the empty answer ... some fillers earn a clear credit, several times what any filler gets after a real
    # answer, while the helpful phrases ... get more even credit"
    assert max(from_empty["filler"]) > 0.5 and max(from_empty["filler"]) > 3 * largest_filler, from_empty
    assert spread(from_empty["helpful"]) < spread(credit["helpful"]), (credit, from_empty)
    # "The order is perfect, yet the loss is not zero … shifting every score by the same amount changes nothing"
    assert c["shifted_same_order"] and c["shifted_regression_loss"] > 0.1, c
    assert abs(c["pairwise_loss"]["targets"] - c["pairwise_loss"]["shifted"]) < 1e-6, c
    errors, grads, worst = c["squared_errors"], c["gradients"], c["worst"]
    # "three predictions miss their targets by a little and one by much more", and that one gets the largest gradient
    assert all(errors[worst] > 5 * e for k, e in enumerate(errors) if k != worst), errors
    assert max(range(4), key=lambda k: abs(grads[k])) == worst, grads
    # "This one also breaks it …, and its squared error is exactly what *each* segment cost in the shifted example"
    assert not c["pred_same_order"] and abs(errors[worst] - c["shifted_regression_loss"]) < 1e-6, c


def check_07(nb) -> None:
    c = read_claims(nb)
    heads = c["head_sizes"]
    assert heads["value"] == heads["reward"] + 1, heads  # "the value head has a bias (one extra number)"
    assert c["identical_hidden_states"]  # "Both decoders give identical hidden states until the critic is trained"
    # "The loss falls but stays well above zero"
    assert c["loss_last_step"] < c["loss_first_step"] and c["loss_last_step"] > 0.05 * c["loss_first_step"], c
    chosen_first, rejected_first = c["first_state_values"]
    assert abs(chosen_first - rejected_first) < 1e-4, c  # the first state "is the same for both responses"
    # "From there each curve moves towards its own response's reward"
    for label in ("chosen", "rejected"):
        distance = c[f"{label}: distance to the reward"]
        assert distance["eos"] < 0.8 * distance["first_state"] and distance["closest"] <= distance["first_state"], c
    # "the critic that starts from a decoder that already learned what matters predicts the reward better"
    reused, fresh = c["held_out"]["from the reward model"], c["held_out"]["from scratch"]
    assert reused["correlation"] > fresh["correlation"], c["held_out"]
    assert reused["mean_squared_error"] < fresh["mean_squared_error"], c["held_out"]


CHECKS = {"01": check_01, "02": check_02, "03": check_03, "04": check_04, "05": check_05, "06": check_06, "07": check_07}
