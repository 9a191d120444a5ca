"""rmlearn.rlhf (lesson 08): the formulas on hand-checked numbers, then the shapes of
over-optimization (Gao et al., 2022) measured on the tiny course policy.

The trained models (SFT policy, proxies, ensemble, two RL runs) are built once per session.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch.testing import assert_close

from rmlearn import ValueModel
from rmlearn.data import SYNTHETIC_PROMPTS
from rmlearn.rlhf import (
    best_of_n_curve,
    best_of_n_kl,
    best_of_n_kl_bound,
    best_of_n_weights,
    conservative_reward,
    draw_samples,
    ensemble_scores,
    frozen_copy,
    gae,
    kl_penalised_rewards,
    kl_regularised_curve,
    ppo,
    ppo_losses,
    sample,
    sequence_kl,
    tiny_policy,
)
from rmlearn.zoo import trained_policy, trained_reward_model

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


def test_conservative_reward():
    scores = torch.tensor([[1.0, 2.0, 0.0], [3.0, 2.0, 0.5]])
    assert_close(conservative_reward(scores, how="min"), torch.tensor([1.0, 2.0, 0.0]))
    assert_close(conservative_reward(scores, k=0.0), scores.mean(0))
    with pytest.raises(ValueError, match="'max'"):
        conservative_reward(scores, how="max")


def test_sampling_is_seeded_and_leaves_the_global_rng_alone(tokenizer):
    policy = tiny_policy(seed=0)
    state = torch.get_rng_state()
    a = sample(policy, tokenizer, ["I was charged twice."] * 3, max_new_tokens=6,
               generator=torch.Generator().manual_seed(1))
    b = sample(policy, tokenizer, ["I was charged twice."] * 3, max_new_tokens=6,
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
    return draw_samples(trained_policy(), tokenizer, SYNTHETIC_PROMPTS, 256, seed=0)


@pytest.fixture(scope="session")
def ensemble(tokenizer, samples):
    models = [trained_reward_model(n_pairs=FEW, seed=s) for s in range(3)]
    return ensemble_scores(models, tokenizer, samples.prompts, samples.responses)  # (3, N)


def test_best_of_n_overoptimizes_a_proxy_trained_on_few_labels(tokenizer, samples):
    proxy = trained_reward_model(n_pairs=FEW).score(samples.prompts, samples.responses, tokenizer)
    curve = best_of_n_curve(samples, proxy, NS)
    peak = curve.peak()
    print("best-of-n, proxy from", FEW, "pairs:", curve.to_dict())
    assert 1 <= peak < len(NS) - 2, "gold should peak at an intermediate n"
    gain = curve.gold[peak] - curve.gold[0]
    assert gain > 0.2  # optimising helped at first…
    assert curve.proxy[-1] > curve.proxy[peak]  # …the proxy keeps rising…
    assert curve.gold[-1] < curve.gold[peak] - gain / 2  # …while gold gives back over half its gain
    assert all(k <= b + 1e-9 for k, b in zip(curve.kl, curve.kl_bound))  # the bound is a bound
    assert curve.kl[-1] < curve.kl_bound[-1] - 0.05  # repeated responses keep it below


def test_best_of_n_with_a_length_biased_proxy_picks_longer_answers(tokenizer, samples):
    biased = trained_reward_model(length_bias=0.8, n_pairs=FEW).score(samples.prompts, samples.responses, tokenizer)
    honest = trained_reward_model(n_pairs=FEW).score(samples.prompts, samples.responses, tokenizer)
    curve, fair = best_of_n_curve(samples, biased, NS), best_of_n_curve(samples, honest, NS)
    print("best-of-n, length-biased proxy:", curve.to_dict())
    assert curve.length[4] > curve.length[0] + 4  # n = 16 picks answers 4+ words longer
    assert fair.length[4] < fair.length[0] + 1  # an unbiased proxy does not
    assert max(curve.gold) < max(fair.gold) - 0.15  # the length-biased proxy buys much less gold


def test_kl_regularised_optimum_trades_gold_for_kl(tokenizer, samples):
    proxy = trained_reward_model(n_pairs=FEW).score(samples.prompts, samples.responses, tokenizer)
    betas = [1.0, 0.3, 0.1, 0.03, 0.01]
    curve = kl_regularised_curve(samples, proxy, betas)
    print("KL-regularised optimum:", curve.to_dict())
    assert curve.kl == sorted(curve.kl) and curve.proxy == sorted(curve.proxy)  # smaller β: further
    assert curve.gold[-1] < max(curve.gold) - 0.1


def test_an_ensemble_delays_overoptimization(samples, ensemble):
    single = [best_of_n_curve(samples, member, NS) for member in ensemble]
    cautious = best_of_n_curve(samples, conservative_reward(ensemble, k=1.0), NS)
    drop_single = sum(c.gold[c.peak()] - c.gold[-1] for c in single) / len(single)
    drop_cautious = cautious.gold[cautious.peak()] - cautious.gold[-1]
    print("members' gold peaks", [(NS[c.peak()], round(c.gold[c.peak()], 3)) for c in single],
          "conservative", NS[cautious.peak()], round(cautious.gold[cautious.peak()], 3),
          "drops", round(drop_single, 3), round(drop_cautious, 3))
    mean = best_of_n_curve(samples, ensemble.mean(0), NS)
    print("ensemble mean: peak", NS[mean.peak()], round(mean.gold[mean.peak()], 3), "at 256", round(mean.gold[-1], 3))
    assert cautious.gold[cautious.peak()] > max(c.gold[c.peak()] for c in single)  # peaks higher…
    assert cautious.gold[-1] > sum(c.gold[-1] for c in single) / len(single) + 0.15  # …ends higher
    assert drop_cautious < drop_single / 2  # …and falls less than half as far


def _window(values, start, width=6):
    part = values[start:start + width]
    return sum(part) / len(part)


@pytest.fixture(scope="session")
def rl_runs(tokenizer):
    """Two PPO runs on the few-label proxy: β small and β large."""
    reward_model = trained_reward_model(n_pairs=FEW)
    runs = {}
    for beta in (SMALL_BETA, LARGE_BETA):
        policy = copy.deepcopy(trained_policy())
        runs[beta] = ppo(policy, frozen_copy(trained_policy()), reward_model,
                         ValueModel(copy.deepcopy(reward_model.backbone)), tokenizer, SYNTHETIC_PROMPTS,
                         beta=beta, **RL)
    return runs


def test_rl_with_small_beta_overoptimizes(rl_runs):
    h = rl_runs[SMALL_BETA]
    gold = [_window(h.gold, s) for s in range(0, RL["steps"], 6)]
    proxy = [_window(h.proxy, s) for s in range(0, RL["steps"], 6)]
    peak = max(range(len(gold)), key=gold.__getitem__)
    print("RL small β windows: gold", [round(g, 2) for g in gold], "proxy", [round(p, 2) for p in proxy],
          "kl", round(h.kl[-1], 2))
    assert 0 < peak < len(gold) - 1
    assert proxy[-1] > proxy[peak] - 0.1  # the proxy holds or rises…
    assert gold[-1] < gold[peak] - 0.15  # …gold falls
    assert h.kl[-1] > 4.0


def test_rl_with_larger_beta_keeps_kl_bounded(rl_runs):
    small, large = rl_runs[SMALL_BETA], rl_runs[LARGE_BETA]
    print("RL large β: kl", [round(k, 2) for k in large.kl], "gold", [round(g, 2) for g in large.gold])
    assert max(large.kl) < 2.5 and large.kl[-1] < small.kl[-1] / 3
    assert _window(large.gold, RL["steps"] - 6) > _window(small.gold, RL["steps"] - 6) + 0.1


def test_rl_on_a_length_biased_proxy_lengthens_answers(tokenizer):
    reward_model = trained_reward_model(length_bias=0.8, n_pairs=FEW)
    policy = copy.deepcopy(trained_policy())
    h = ppo(policy, frozen_copy(trained_policy()), reward_model, ValueModel(copy.deepcopy(reward_model.backbone)),
            tokenizer, SYNTHETIC_PROMPTS, beta=0.01, steps=10, batch_size=32, lr=2e-4)
    print("RL on length-biased proxy: length", [round(x, 1) for x in h.length])
    assert _window(h.length, 6, 4) > h.length[0] + 5
    assert math.isfinite(h.kl[-1])
