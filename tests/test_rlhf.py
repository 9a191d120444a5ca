"""rmlearn.rlhf (lesson 08): the formulas on hand-checked numbers, then the shapes of
over-optimization (Gao et al., 2022) that lesson 08 does not show itself, measured on the tiny
course policy. What the lesson shows (best-of-n's peak, its KL gap, the length-biased proxies, the
KL-regularised optimum, Gao's fits, the PPO runs) is checked on the executed lesson
(``tests/test_lessons.py::check_08``), not run a second time here.

The trained models (SFT policy, proxies, ensemble, two RL runs) are built once per session.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch.testing import assert_close

from rmlearn import ValueModel
from rmlearn.evaluation import conservative_reward, ensemble_scores
from rmlearn.rlhf import (
    NormalisedReward,
    best_of_n_curve,
    best_of_n_kl,
    best_of_n_kl_bound,
    best_of_n_weights,
    fit_gao,
    frozen_copy,
    gae,
    kl_penalised_rewards,
    ppo,
    ppo_losses,
    response_pool,
    sample_responses,
    score_stats,
    sequence_kl,
    tiny_policy,
)
from rmlearn.synthetic import SYNTHETIC_PROMPTS
from rmlearn.zoo import held_out_responses, normalised_reward_model, trained_policy, trained_reward_model

pytestmark = pytest.mark.kernels  # trained models' numbers: checked under two CPU kernel sets

NS = [1, 2, 4, 8, 16, 32, 64, 128, 256]
FEW = 300  # pairs the proxy reward model learns from: few, so it is wrong in places
RL = dict(steps=36, batch_size=32, lr=5e-4)  # the RL runs of the shape tests
SMALL_BETA, LARGE_BETA = 0.001, 0.3


# ---------------------------------------------------------------------------------- formulas

def test_kl_penalised_reward_adds_the_score_at_eos_only():
    logp = torch.tensor([[-1.0, -2.0, -0.5, 0.0], [-1.0, -1.0, 0.0, 0.0]])
    logp_ref = torch.tensor([[-1.5, -1.0, -0.5, 0.0], [-2.0, -1.0, 0.0, 0.0]])
    mask = torch.tensor([[1, 1, 1, 0], [1, 1, 0, 0]]).float()
    r = kl_penalised_rewards(torch.tensor([3.0, -1.0]), logp, logp_ref, mask, beta=0.1)
    assert_close(r, torch.tensor([[-0.05, 0.1, 3.0, 0.0], [-0.1, -1.0, 0.0, 0.0]]))
    assert_close(sequence_kl(logp, logp_ref, mask), torch.tensor([-0.5, 1.0]))


def test_gae_on_a_four_token_trajectory():
    rewards = torch.tensor([[0.0, -0.1, 0.0, 1.0]])
    values = torch.tensor([[0.2, 0.4, 0.5, 0.8]])
    adv, ret = gae(rewards, values, torch.ones(1, 4), gamma=1.0, lam=0.5)
    # by hand: δ = [0.2, 0.0, 0.3, 0.2]; A_3 = 0.2, A_2 = 0.3 + 0.1, A_1 = 0.0 + 0.2, A_0 = 0.2 + 0.1
    assert_close(adv, torch.tensor([[0.3, 0.2, 0.4, 0.2]]))
    assert_close(ret, torch.tensor([[0.5, 0.6, 0.9, 1.0]]))
    adv1, ret1 = gae(rewards, values, torch.ones(1, 4), gamma=1.0, lam=1.0)
    assert_close(ret1, torch.tensor([[0.9, 0.9, 1.0, 1.0]]))  # λ = 1: rewards-to-go


def test_ppo_loss_clips_the_ratio():
    logp_old = torch.zeros(1, 2)
    logp = torch.log(torch.tensor([[1.5, 0.5]]))  # ratios 1.5 and 0.5
    adv = torch.tensor([[1.0, 1.0]])
    pg, vl = ppo_losses(logp, logp_old, adv, torch.tensor([[1.0, 0.0]]), torch.zeros(1, 2), torch.ones(1, 2))
    # positive advantage: min(ρ, clip(ρ)) → 1.2 (clipped) and 0.5 (unclipped, the pessimistic side)
    assert_close(pg, torch.tensor(-(1.2 + 0.5) / 2))
    assert_close(vl, torch.tensor(0.25))


def test_best_of_n_weights_match_monte_carlo_and_ties_lower_the_kl():
    scores = torch.tensor([0.3, 1.2, -0.7, 2.0, 0.9])
    w = best_of_n_weights(scores, 3)
    gen = torch.Generator().manual_seed(0)
    draws = torch.randint(0, 5, (200_000, 3), generator=gen)
    picked = draws.gather(1, scores[draws].argmax(1, keepdim=True)).squeeze(1)
    assert_close(w.float(), torch.bincount(picked, minlength=5).float() / 200_000, atol=4e-3, rtol=0)
    continuous = torch.randn(4000, generator=gen)
    assert best_of_n_kl(continuous, 8) == pytest.approx(best_of_n_kl_bound(8), abs=0.01)
    repeated = torch.randint(0, 4, (4000,), generator=gen).float()  # only 4 distinct responses
    assert best_of_n_kl(repeated, 8) < best_of_n_kl_bound(8) - 0.1
    assert best_of_n_kl(torch.arange(4096.0), 256) > best_of_n_kl_bound(256) - 0.005  # many samples: the bound
    assert best_of_n_kl(torch.arange(256.0), 256) < best_of_n_kl_bound(256) - 0.02  # as many as n: below it


@pytest.mark.parametrize("form", ["best_of_n", "rl"])
def test_fit_gao_recovers_known_coefficients_from_noisy_curves(form):
    gen = torch.Generator().manual_seed(0)
    kl = torch.linspace(0.05, 6.0, 25, dtype=torch.float64)
    d = kl.sqrt()
    true = d * (0.9 - 0.3 * d) if form == "best_of_n" else d * (0.9 - 0.3 * torch.log(d))
    noisy = true + 0.01 * torch.randn(25, generator=gen, dtype=torch.float64)
    fit = fit_gao(kl.tolist(), noisy.tolist(), form)
    assert fit.form == form and fit.alpha == pytest.approx(0.9, abs=0.02) and fit.beta == pytest.approx(0.3, abs=0.02)
    assert fit.r2 > 0.99 and fit.rmse == pytest.approx(0.01, abs=0.004)
    assert_close(fit(d), true, atol=0.02, rtol=0)  # the fitted curve, evaluated at d
    other = fit_gao(kl.tolist(), noisy.tolist(), "rl" if form == "best_of_n" else "best_of_n")
    assert other.rmse > 2 * fit.rmse  # the two forms are told apart by their fit
    with pytest.raises(ValueError, match="'best_of_n' or 'rl'"):
        fit_gao(kl, noisy, "linear")


def test_normalised_reward_standardises_held_out_scores_and_stays_frozen(tokenizer):
    normed = normalised_reward_model(length_bias=0.5, n_pairs=FEW)
    prompts, responses = held_out_responses()
    raw = trained_reward_model(length_bias=0.5, n_pairs=FEW).score(prompts, responses, tokenizer)
    assert (normed.mean.item(), normed.std.item()) == pytest.approx(score_stats(raw))
    z = normed.score(prompts, responses, tokenizer)
    assert z.mean().item() == pytest.approx(0.0, abs=1e-4) and z.std().item() == pytest.approx(1.0, abs=1e-4)
    assert_close(z, (raw - normed.mean) / normed.std)
    assert normalised_reward_model(length_bias=0.5, n_pairs=FEW) is normed  # loaded once
    assert "mean" in normed.state_dict() and "std" in normed.state_dict()  # stored with the model
    with pytest.raises(ValueError, match="std must be > 0"):
        NormalisedReward(normed.reward_model, 0.0, 0.0)


def test_conservative_reward():
    scores = torch.tensor([[1.0, 2.0, 0.0], [3.0, 2.0, 0.5]])
    assert_close(conservative_reward(scores, how="min"), torch.tensor([1.0, 2.0, 0.0]))
    assert_close(conservative_reward(scores, k=0.0), scores.mean(0))
    with pytest.raises(ValueError, match="'max'"):
        conservative_reward(scores, how="max")


def test_sampling_is_seeded_and_leaves_the_global_rng_alone(tokenizer):
    policy = tiny_policy(seed=0)
    state = torch.get_rng_state()
    a = sample_responses(policy, tokenizer, ["I was charged twice."] * 3, max_new_tokens=6,
                         generator=torch.Generator().manual_seed(1))
    b = sample_responses(policy, tokenizer, ["I was charged twice."] * 3, max_new_tokens=6,
                         generator=torch.Generator().manual_seed(1))
    assert a.responses == b.responses and torch.equal(a.ids, b.ids)
    assert torch.equal(torch.get_rng_state(), state)


def test_ppo_moves_policy_and_critic_only(tokenizer):
    policy = tiny_policy(seed=0)
    reference = frozen_copy(policy)
    reward_model = copy.deepcopy(trained_reward_model(n_pairs=FEW))
    value_model = ValueModel(copy.deepcopy(reward_model.backbone))
    before = {name: copy.deepcopy(m.state_dict()) for name, m in
              dict(policy=policy, reference=reference, reward=reward_model, value=value_model).items()}
    history = ppo(policy, reference, reward_model, value_model, tokenizer, SYNTHETIC_PROMPTS[:2],
                  steps=1, batch_size=4, max_new_tokens=6)
    assert len(history.proxy) == len(history.gold) == len(history.kl) == len(history.length) == 1

    def changed(name, model):
        return any(not torch.equal(v, model.state_dict()[k]) for k, v in before[name].items())

    assert changed("policy", policy) and changed("value", value_model)
    assert not changed("reference", reference) and not changed("reward", reward_model)


# ---------------------------------------------------------------------------------- the shapes

@pytest.fixture(scope="session")
def samples(tokenizer):
    return response_pool(trained_policy(), tokenizer, SYNTHETIC_PROMPTS, 256, seed=0)


@pytest.fixture(scope="session")
def ensemble(tokenizer, samples):
    models = [trained_reward_model(n_pairs=FEW, seed=s) for s in range(3)]
    return ensemble_scores(models, tokenizer, samples.prompts, samples.responses)  # (3, N)


def test_an_ensemble_gives_back_less_gold_than_its_members(samples, ensemble):
    """Three proxies trained on different pairs err in different places: best-of-n under their mean
    (or the pessimistic mean − std) loses less of its gold at large n than a single member does."""
    single = [best_of_n_curve(samples, member, NS) for member in ensemble]
    mean = best_of_n_curve(samples, ensemble.mean(0), NS)
    cautious = best_of_n_curve(samples, conservative_reward(ensemble, k=1.0), NS)

    def drop(c):
        return c.gold[c.peak()] - c.gold[-1]

    drop_single = sum(drop(c) for c in single) / len(single)
    end_single = sum(c.gold[-1] for c in single) / len(single)
    print("members: peaks", [(NS[c.peak()], round(c.gold[c.peak()], 3)) for c in single], "ends",
          [round(c.gold[-1], 3) for c in single], "mean drop", round(drop_single, 3))
    for name, c in (("mean", mean), ("mean - std", cautious)):
        print(name, "peak", NS[c.peak()], round(c.gold[c.peak()], 3), "end", round(c.gold[-1], 3), "drop", round(drop(c), 3))
    best_peak = max(c.gold[c.peak()] for c in single)
    for c in (mean, cautious):
        assert c.gold[c.peak()] > best_peak - 0.02  # peaks as high as the best member…
        assert c.gold[-1] > end_single + 0.03  # …ends higher than a member does on average…
        assert drop(c) < drop_single - 0.02  # …having given back less
    assert mean.gold[-1] > max(c.gold[-1] for c in single) + 0.02  # the mean ends above every member


def _window(values, start, width=6):
    part = values[start:start + width]
    return sum(part) / len(part)


@pytest.fixture(scope="session")
def rl_runs(tokenizer):
    """Two PPO runs on the few-label proxy (raw scores): β small and β large. That the small-β run
    over-optimizes is lesson 08's own claim (on the normalised proxy, three seeds); here, that a large β
    holds the KL down."""
    reward_model = trained_reward_model(n_pairs=FEW)
    runs = {}
    for beta in (SMALL_BETA, LARGE_BETA):
        policy = copy.deepcopy(trained_policy())
        runs[beta] = ppo(policy, frozen_copy(trained_policy()), reward_model,
                         ValueModel(copy.deepcopy(reward_model.backbone)), tokenizer, SYNTHETIC_PROMPTS,
                         beta=beta, **RL)
    return runs


def test_rl_with_larger_beta_keeps_kl_bounded(rl_runs):
    small, large = rl_runs[SMALL_BETA], rl_runs[LARGE_BETA]
    kl_large = [_window(large.kl, s) for s in range(0, RL["steps"], 6)]
    print("RL large β: kl windows", [round(k, 2) for k in kl_large], "small β last window",
          round(_window(small.kl, RL["steps"] - 6), 2), "gold", [round(g, 2) for g in large.gold])
    assert max(kl_large) < 3.5  # bounded: a few nats, where small β reaches tens
    assert kl_large[-1] < _window(small.kl, RL["steps"] - 6) / 3
    assert _window(large.gold, RL["steps"] - 6) > _window(small.gold, RL["steps"] - 6) + 0.1


def test_rl_on_a_length_biased_proxy_lengthens_answers(tokenizer):
    reward_model = trained_reward_model(length_bias=0.8, n_pairs=FEW)
    policy = copy.deepcopy(trained_policy())
    h = ppo(policy, frozen_copy(trained_policy()), reward_model, ValueModel(copy.deepcopy(reward_model.backbone)),
            tokenizer, SYNTHETIC_PROMPTS, beta=0.01, steps=10, batch_size=32, lr=2e-4)
    print("RL on length-biased proxy: length", [round(x, 1) for x in h.length])
    assert _window(h.length, 6, 4) > h.length[0] + 5
    assert math.isfinite(h.kl[-1])
