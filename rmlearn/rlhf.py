"""The loop the reward model serves: a tiny policy and its frozen reference, best-of-n, the KL
penalty, and a PPO-style run with the value model as critic; gold vs proxy reward (lesson 08).

The four models of RLHF (lesson 07): the **policy** (a causal LM, trained by RL), the
**reference** (a frozen copy of the SFT policy, for the KL penalty), the **reward model** (frozen;
here the *proxy*, trained on few, noisy labels) and the **value model** (the critic, trained
beside the policy). The *gold* reward is the synthetic data's hidden quality rule, which the proxy
only approximates: optimise the proxy too hard and gold falls (Gao et al., 2022,
"Scaling laws for reward model overoptimization"). ``fit_gao`` fits that paper's two functional
forms of gold against d = √KL; ``NormalisedReward`` standardises a reward model's scores so that one
KL penalty β means the same for every reward model.

>>> import torch
>>> logp, logp_ref = torch.tensor([[-1.0, -2.0]]), torch.tensor([[-1.5, -1.0]])
>>> per_token_kl(logp, logp_ref)                      # log π − log π_ref, per response token
tensor([[ 0.5000, -1.0000]])
"""

from __future__ import annotations

import copy
import inspect
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from .data import refuse_ties
from .fastcpu import one_cpu_thread_if_small
from .inputs import SEPARATOR, pad_batch, position_ids
from .models import RewardModel, ValueModel
from .synthetic import quality, synthetic_preferences
from .train import minibatch_fit

Gold = Callable[[str, str], float]  # gold(prompt, response) -> the true quality


def gold_reward(prompt: str, response: str) -> float:
    """The gold reward: the synthetic data's hidden quality rule (what annotators *meant*)."""
    return float(quality(prompt, response))


# ---------------------------------------------------------------------------------- the policy

def tiny_policy(seed: int = 0, **config: Any) -> nn.Module:
    """A tiny causal LM (``GPT2LMHeadModel``) with the tiny backbone's config and the course
    tokenizer's vocabulary: the policy of lesson 08, untrained.

    >>> tiny_policy().config.n_embd, tiny_policy().config.n_layer
    (64, 2)
    """
    from transformers import GPT2Config, GPT2LMHeadModel

    from .backbone import TINY_CONFIG
    from .backbone import course_special_ids as _course_special_ids

    vocab_size, eos_id, pad_id = _course_special_ids()
    cfg = GPT2Config(vocab_size=vocab_size, bos_token_id=eos_id, eos_token_id=eos_id, pad_token_id=pad_id,
                     loss_type="ForCausalLM", **{**TINY_CONFIG, **config})  # transformers 4 reads the config
    with torch.random.fork_rng(devices=[]):  # seed the init without touching the caller's RNG
        torch.default_generator.manual_seed(seed)  # the CPU generator only: the caller's GPU ones stay as they are
        policy = GPT2LMHeadModel(cfg).eval()
    policy.loss_type = "ForCausalLM"  # the loss it uses anyway; transformers 5 warns when the class name hides it
    return policy


def frozen_copy(model: nn.Module) -> nn.Module:
    """A copy that no optimiser will move: the reference π_ref (or a frozen reward model)."""
    ref = copy.deepcopy(model).eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    return ref


def _query_ids(tokenizer: Any, prompts: Sequence[str]) -> list[list[int]]:
    """``[prompt ; SEPARATOR]`` ids: where the policy starts writing (as ``inputs.encode`` builds it)."""
    sep = tokenizer(SEPARATOR, add_special_tokens=False)["input_ids"]
    return [ids + sep for ids in tokenizer(list(prompts), add_special_tokens=True)["input_ids"]]


def sft_policy(policy: nn.Module, tokenizer: Any, responses: Sequence[tuple[str, str]], *,
               epochs: int = 3, batch_size: int = 32, lr: float = 3e-3, seed: int = 0) -> list[float]:
    """Supervised fine-tuning in place: next-token loss on the response tokens (and EOS) of
    (prompt, response) pairs, the prompt tokens masked out. Returns the loss per step."""
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    queries = _query_ids(tokenizer, [p for p, _ in responses])
    answers = tokenizer([r for _, r in responses], add_special_tokens=False)["input_ids"]
    def batch_loss(batch: list[int]) -> torch.Tensor:
        seqs = [queries[i] + answers[i] + [eos] for i in batch]
        ids, mask = pad_batch(seqs, pad)  # (B, T), right padded
        labels = ids.masked_fill(mask == 0, -100)  # (B, T)
        for row, i in enumerate(batch):
            labels[row, :len(queries[i])] = -100  # learn the response, not the prompt
        return policy(input_ids=ids, attention_mask=mask, labels=labels).loss

    return minibatch_fit(policy, range(len(responses)), batch_loss, epochs=epochs, batch_size=batch_size,
                         lr=lr, seed=seed)


def sft_data(n: int = 600, seed: int = 0) -> list[tuple[str, str]]:
    """(prompt, response) pairs to fine-tune the policy on: both sides of synthetic pairs, so the
    SFT policy writes good and bad answers alike (mean gold ≈ 0)."""
    pairs = synthetic_preferences(n // 2, seed=seed + 1000)
    return [(p.prompt, r) for p in pairs for r in (p.chosen, p.rejected)]


# ---------------------------------------------------------------------------------- sampling

@dataclass
class Rollout:
    """Sampled responses, left-padded queries followed by right-padded responses.

    ``ids`` (B, Q + L): ``[pad… query][response… pad]``; ``mask`` (B, Q + L) 1 on real tokens;
    ``response_mask`` (B, L) 1 on response tokens up to and including EOS; ``query_len`` = Q, the
    padded length of the queries, so ``ids[:, query_len:]`` are the response tokens.
    """

    prompts: list[str]
    responses: list[str]
    ids: torch.Tensor
    mask: torch.Tensor
    response_mask: torch.Tensor
    query_len: int



@torch.no_grad()
def sample_responses(policy: nn.Module, tokenizer: Any, prompts: Sequence[str], *, max_new_tokens: int = 40,
                     temperature: float = 1.0, generator: torch.Generator | None = None) -> Rollout:
    """Sample one response per prompt from ``policy`` (ancestral sampling, KV cache), with the
    token ids PPO needs (lesson 08).

    >>> tok = __import__("rmlearn").course_tokenizer()
    >>> out = sample_responses(tiny_policy(), tok, ["I was charged twice."] * 2, max_new_tokens=5,
    ...              generator=torch.Generator().manual_seed(0))
    >>> out.ids.shape[0], out.response_mask.shape            # (B, L), L ≤ max_new_tokens
    (2, torch.Size([2, 5]))
    """
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    ids, mask = pad_batch(_query_ids(tokenizer, prompts), pad, side="left")  # (B, Q)
    q, batch = ids.shape[1], ids.shape[0]
    done = torch.zeros(batch, dtype=torch.bool)  # (B,)
    new_ids, new_mask, past = [], [], None
    step_ids = ids  # the first call runs the whole query; later calls one new token each
    cache_arg = "cache" if "cache" in inspect.signature(policy.forward).parameters else "past_key_values"  # transformers 5 / 4
    with one_cpu_thread_if_small(policy):
        for _ in range(max_new_tokens):
            pos = position_ids(mask)[:, -step_ids.shape[1]:]  # (B, t)
            out = policy(input_ids=step_ids, attention_mask=mask, position_ids=pos, use_cache=True, **{cache_arg: past})
            past = out["cache"] if "cache" in out else out.past_key_values  # the KV cache: run only the new token next
            probs = torch.softmax(out.logits[:, -1].float() / temperature, dim=-1)  # (B, V)
            token = torch.multinomial(probs, 1, generator=generator).squeeze(1)  # (B,)
            token = token.masked_fill(done, pad)
            live = (~done).long()  # (B,)
            new_ids.append(token)
            new_mask.append(live)
            done = done | (token == eos)
            mask = torch.cat([mask, live[:, None]], dim=1)  # (B, Q + t)
            step_ids = token[:, None]  # (B, 1)
            if done.all():
                break
    resp = torch.stack(new_ids, 1)  # (B, L)
    resp_mask = torch.stack(new_mask, 1)  # (B, L)
    texts = [tokenizer.decode([t for t, m in zip(row, rm) if m and t != eos])
             for row, rm in zip(resp.tolist(), resp_mask.tolist())]
    return Rollout(list(prompts), texts, torch.cat([ids, resp], 1), mask, resp_mask, q)


def response_logprobs(policy: nn.Module, rollout: Rollout) -> torch.Tensor:
    """log π(a_t | s_t) of each sampled response token, (B, L); 0 at padding."""
    ids, mask, q = rollout.ids, rollout.mask, rollout.query_len
    logits = policy(input_ids=ids, attention_mask=mask, position_ids=position_ids(mask)).logits  # (B, T, V)
    logits = logits[:, q - 1:-1].float()  # (B, L, V): position t predicts token t + 1
    logp = torch.log_softmax(logits, -1).gather(-1, ids[:, q:, None]).squeeze(-1)  # (B, L)
    return logp * rollout.response_mask


def per_token_kl(logp: torch.Tensor, logp_ref: torch.Tensor) -> torch.Tensor:
    """The sampled per-token KL estimate log π(a_t|s_t) − log π_ref(a_t|s_t), (B, L) → (B, L).

    Its expectation under π, summed over tokens, is the sequence KL(π‖π_ref).
    """
    return logp - logp_ref


def sequence_kl(logp: torch.Tensor, logp_ref: torch.Tensor, response_mask: torch.Tensor) -> torch.Tensor:
    """KL of each whole response, Σ_t (log π − log π_ref) over its real tokens, (B, L) → (B,)."""
    return (per_token_kl(logp, logp_ref) * response_mask).sum(-1)


def kl_penalised_rewards(score: torch.Tensor, logp: torch.Tensor, logp_ref: torch.Tensor,
                         response_mask: torch.Tensor, beta: float) -> torch.Tensor:
    """Per-token rewards of RLHF: −β·(log π − log π_ref) at every token, plus the reward model's
    score at the last real token (EOS). (B,), (B, L), (B, L), (B, L) → (B, L).

    >>> r = kl_penalised_rewards(torch.tensor([2.0]), torch.tensor([[-1.0, -1.0, -0.5]]),
    ...                          torch.tensor([[-1.2, -0.8, -0.5]]), torch.ones(1, 3), beta=0.5)
    >>> r.round(decimals=3)
    tensor([[-0.1000,  0.1000,  2.0000]])
    """
    rewards = -beta * per_token_kl(logp, logp_ref) * response_mask  # (B, L)
    last = response_mask.long().sum(-1).clamp(min=1) - 1  # (B,) index of EOS
    return rewards.scatter_add(1, last[:, None], score[:, None].to(rewards.dtype))


def gae(rewards: torch.Tensor, values: torch.Tensor, response_mask: torch.Tensor,
        gamma: float = 1.0, lam: float = 0.95) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation (Schulman et al., 2016), (B, L) each → (advantages, returns).

    δ_t = r_t + γ·V_{t+1} − V_t (V after the last token is 0), A_t = δ_t + γλ·A_{t+1},
    returns R_t = A_t + V_t (the value model's targets).

    >>> adv, ret = gae(torch.tensor([[0.0, 0.0, 1.0]]), torch.tensor([[0.5, 0.5, 0.5]]),
    ...                torch.ones(1, 3), gamma=1.0, lam=1.0)
    >>> adv, ret                                      # λ = 1: returns are the rewards-to-go
    (tensor([[0.5000, 0.5000, 0.5000]]), tensor([[1., 1., 1.]]))
    """
    values = values * response_mask
    rewards = rewards * response_mask
    adv = torch.zeros_like(rewards)
    next_adv = torch.zeros_like(rewards[:, 0])  # (B,)
    next_value = torch.zeros_like(rewards[:, 0])
    for t in reversed(range(rewards.shape[1])):
        delta = rewards[:, t] + gamma * next_value - values[:, t]  # (B,)
        next_adv = delta + gamma * lam * next_adv
        adv[:, t] = next_adv
        next_value = values[:, t]
    adv = adv * response_mask
    return adv, (adv + values) * response_mask


def ppo_losses(logp: torch.Tensor, logp_old: torch.Tensor, advantages: torch.Tensor,
               values: torch.Tensor, returns: torch.Tensor, response_mask: torch.Tensor,
               clip: float = 0.2) -> tuple[torch.Tensor, torch.Tensor]:
    """The clipped policy loss and the value loss (Schulman et al., 2017), (B, L) each → scalars.

    policy: mean over tokens of max(−A·ρ, −A·clip(ρ, 1 − ε, 1 + ε)), ρ = π/π_old;
    value: mean over tokens of (V − R)² / 2.
    """
    ratio = torch.exp(logp - logp_old)  # (B, L)
    pg = torch.maximum(-advantages * ratio, -advantages * ratio.clamp(1 - clip, 1 + clip))  # (B, L)
    n = response_mask.sum().clamp(min=1)
    return (pg * response_mask).sum() / n, (0.5 * (values - returns) ** 2 * response_mask).sum() / n


# ---------------------------------------------------------------------------------- best-of-n

def best_of_n_kl_bound(n: int) -> float:
    """log n − (n − 1)/n: the KL(best-of-n ‖ π) commonly quoted as *the* best-of-n KL. It is an
    upper bound (Beirami et al., 2024), reached for a continuous π: infinitely many answers, no two
    alike. On N samples the KL is lower once n nears N, and lower again when samples tie (see
    ``best_of_n_kl``).

    >>> round(best_of_n_kl_bound(1), 3), round(best_of_n_kl_bound(16), 3)
    (0.0, 1.835)
    """
    return math.log(n) - (n - 1) / n


def _cdf_at(scores: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For each sample i: F(s_i⁻), F(s_i) over the N samples, and how many samples tie with it."""
    s = scores.double()
    below = (s[None, :] < s[:, None]).double().mean(1)  # (N,)
    at = (s[None, :] == s[:, None]).double().sum(1)  # (N,)
    return below, below + at / len(s), at


def best_of_n_weights(scores: torch.Tensor, n: int) -> torch.Tensor:
    """P(best-of-n returns sample i) when n samples are drawn (with replacement) from the N samples
    and the highest score wins; tied samples share. (N,) → (N,), sums to 1.

    >>> best_of_n_weights(torch.tensor([0.0, 1.0, 2.0, 3.0]), 2)
    tensor([0.0625, 0.1875, 0.3125, 0.4375], dtype=torch.float64)
    """
    below, upto, ties = _cdf_at(scores)
    return (upto ** n - below ** n) / ties  # (N,)


def best_of_n_kl(scores: torch.Tensor, n: int) -> float:
    """Empirical KL(best-of-n ‖ π) on N samples of π, identical scores counted as one outcome.
    (N,) → float. Below ``best_of_n_kl_bound(n)``: by a little when n nears N even if all N differ,
    and more when samples tie.

    >>> best_of_n_kl(torch.tensor([0.0, 1.0, 1.0, 1.0]), 4) < best_of_n_kl_bound(4)
    True
    """
    below, upto, ties = _cdf_at(scores)
    p_bon = upto ** n - below ** n  # (N,) probability of each sample's outcome
    w = p_bon / ties
    keep = w > 0
    return float((w[keep] * torch.log(p_bon[keep] / (ties[keep] / len(scores)))).sum())


def kl_regularised_weights(scores: torch.Tensor, beta: float) -> torch.Tensor:
    """The optimum of E[r] − β·KL(π‖π_ref) restricted to N samples of π_ref: π* ∝ π_ref·exp(r/β),
    i.e. softmax(r/β) over the samples (what RL with KL penalty β aims at). (N,) → (N,)."""
    return torch.softmax(scores.double() / beta, 0)


@dataclass
class ResponsePool:
    """Responses sampled once from one policy, ``per_prompt`` for each prompt, flattened
    prompt-major, with their gold reward and length: the pool best-of-n and the KL-regularised
    optimum pick from (lesson 08). Only text and numbers: no token ids (see ``Rollout``)."""

    prompts: list[str]
    responses: list[str]
    gold: torch.Tensor  # (N,) gold reward of each response
    length: torch.Tensor  # (N,) words per response
    per_prompt: int

    def groups(self) -> list[slice]:
        return [slice(i, i + self.per_prompt) for i in range(0, len(self.responses), self.per_prompt)]


def response_pool(policy: nn.Module, tokenizer: Any, prompts: Sequence[str], per_prompt: int, *,
                  gold: Gold = gold_reward, seed: int = 0, batch_size: int = 256,
                  max_new_tokens: int = 40) -> ResponsePool:
    """``per_prompt`` seeded responses for each prompt, with their gold reward and length."""
    gen = torch.Generator().manual_seed(seed)
    flat = [p for p in prompts for _ in range(per_prompt)]
    texts: list[str] = []
    for start in range(0, len(flat), batch_size):
        texts += sample_responses(policy, tokenizer, flat[start:start + batch_size],
                                  max_new_tokens=max_new_tokens, generator=gen).responses
    return ResponsePool(flat, texts, torch.tensor([gold(p, r) for p, r in zip(flat, texts)], dtype=torch.float64),
                   torch.tensor([len(r.split()) for r in texts], dtype=torch.float64), per_prompt)


@dataclass
class Curve:
    """Proxy, gold, KL and length as optimisation pressure grows (n in best-of-n, or 1/β)."""

    x: list[float]  # n, or β
    proxy: list[float]  # mean proxy reward of the chosen responses
    gold: list[float]  # mean gold reward of the chosen responses
    kl: list[float]  # KL(chosen-response distribution ‖ π), nats, empirical
    length: list[float]  # mean words per chosen response
    kl_bound: list[float] = field(default_factory=list)  # log n − (n−1)/n (best-of-n only)

    def peak(self) -> int:
        """Index of gold's highest point."""
        return max(range(len(self.gold)), key=self.gold.__getitem__)

    def to_dict(self) -> dict[str, list[float]]:
        return asdict(self)


def _curve(samples: ResponsePool, scores: torch.Tensor, xs: Sequence[float], weigh, kl) -> Curve:
    before = torch.get_num_threads()
    torch.set_num_threads(1)  # hundreds of ops on (per_prompt,) tensors, too small to split: on a busy
    try:  # 2-core machine one thread runs them ~30x faster (as fastcpu.one_cpu_thread_if_small does for models)
        return _curve_points(samples, scores, xs, weigh, kl)
    finally:
        torch.set_num_threads(before)


def _curve_points(samples: ResponsePool, scores: torch.Tensor, xs: Sequence[float], weigh, kl) -> Curve:
    curve = Curve(list(xs), [], [], [], [])
    for x in xs:
        rows = []
        for g in samples.groups():
            w = weigh(scores[g], x)  # (per_prompt,)
            rows.append([float(w @ v) for v in (scores[g].double(), samples.gold[g], samples.length[g])]
                        + [kl(scores[g], x, w)])
        proxy, gold, length, k = (sum(col) / len(rows) for col in zip(*rows))
        curve.proxy.append(proxy)
        curve.gold.append(gold)
        curve.length.append(length)
        curve.kl.append(k)
    return curve


def best_of_n_curve(samples: ResponsePool, scores: torch.Tensor, ns: Sequence[int]) -> Curve:
    """Best-of-n under the reward ``scores`` (N,), exactly, for each n, averaged over prompts.

    Each prompt's samples stand for π; picking the best of n draws has the closed-form
    probabilities of ``best_of_n_weights``, so the curve is smooth and needs no resampling.
    """
    curve = _curve(samples, scores, ns, best_of_n_weights, lambda s, n, w: best_of_n_kl(s, n))
    curve.kl_bound = [best_of_n_kl_bound(n) for n in ns]
    return curve


def kl_regularised_curve(samples: ResponsePool, scores: torch.Tensor, betas: Sequence[float]) -> Curve:
    """The KL-regularised optimum softmax(r/β) over each prompt's samples, for each β."""
    def kl(s, beta, w):
        return float((w * torch.log(w * len(s)).nan_to_num(0.0)).sum())
    return _curve(samples, scores, betas, kl_regularised_weights, kl)


BEST_OF = (1, 2, 4, 8, 16, 32, 64, 128, 256)  # the n of best-of-n in lesson 08
BETAS = (3.0, 2.0, 1.0, 0.5, 0.3, 0.2, 0.1, 0.05, 0.03, 0.02, 0.01)  # the β of the KL-regularised optimum


@dataclass
class Overoptimization:
    """Best-of-n and KL-regularised curves of one proxy, with the gold reward alongside."""

    best_of_n: Curve  # x = n
    kl_regularised: Curve  # x = β


def overoptimization_grid(samples: ResponsePool, proxies: dict[float, torch.Tensor],
                          ns: Sequence[int] = BEST_OF, betas: Sequence[float] = BETAS) -> dict[float, Overoptimization]:
    """For each proxy's scores (N,) on ``samples``, keyed by its annotators' length bias: the
    best-of-n curve and the KL-regularised curve. Precomputed, so a widget only looks things up."""
    return {bias: Overoptimization(best_of_n_curve(samples, scores, ns), kl_regularised_curve(samples, scores, betas))
            for bias, scores in proxies.items()}


# ---------------------------------------------------------------------------------- Gao's forms

@dataclass
class GaoFit:
    """Gold gain R(d) over the starting policy fitted as a function of d = √KL (Gao et al., 2022)."""

    form: str  # "best_of_n": R = d(α − βd);  "rl": R = d(α − β·log d)
    alpha: float
    beta: float
    r2: float  # 1 − SS_res / SS_tot: the share of the gain's variance the form explains
    rmse: float  # root mean squared residual, in gold units

    def __call__(self, d: torch.Tensor) -> torch.Tensor:
        """R(d) of the fitted form, (K,) → (K,)."""
        return _gao_features(torch.as_tensor(d, dtype=torch.float64), self.form) @ torch.tensor(
            [self.alpha, self.beta], dtype=torch.float64)


def _gao_features(d: torch.Tensor, form: str) -> torch.Tensor:
    """(K,) → (K, 2): the columns multiplying α and β, so R = features @ [α, β]."""
    if form == "best_of_n":
        second = -d * d  # R = αd − βd²
    elif form == "rl":
        second = -d * torch.log(d.clamp(min=1e-12))  # R = αd − βd·log d  (→ 0 as d → 0)
    else:
        raise ValueError(f"form must be 'best_of_n' or 'rl', got {form!r}")
    return torch.stack([d, second], 1)  # (K, 2)


def fit_gao(kl: Sequence[float], gain: Sequence[float], form: str) -> GaoFit:
    """Least-squares fit of Gao et al.'s (2022, eq. 1–2) functional forms to a gold curve.

    ``kl`` (K,) are KLs from the starting policy in nats, ``gain`` (K,) the gold reward minus the
    starting policy's gold (so R(0) = 0); d = √KL. best-of-n: R(d) = d(α − βd); RL:
    R(d) = d(α − β log d). Both are linear in (α, β), so one ``lstsq`` solves them exactly.

    >>> d = torch.linspace(0.0, 3.0, 7, dtype=torch.float64)
    >>> fit = fit_gao(d ** 2, d * (1.2 - 0.4 * d), "best_of_n")
    >>> round(fit.alpha, 6), round(fit.beta, 6), round(fit.r2, 6)
    (1.2, 0.4, 1.0)
    """
    d = torch.as_tensor(kl, dtype=torch.float64).clamp(min=0).sqrt()  # (K,)
    y = torch.as_tensor(gain, dtype=torch.float64)  # (K,)
    x = _gao_features(d, form)  # (K, 2)
    coef = torch.linalg.lstsq(x, y[:, None]).solution[:, 0]  # (2,)
    residual = y - x @ coef  # (K,)
    total = ((y - y.mean()) ** 2).sum()
    r2 = 1.0 - float((residual ** 2).sum() / total) if total > 0 else float("nan")
    return GaoFit(form, float(coef[0]), float(coef[1]), r2, float(residual.pow(2).mean().sqrt()))


# ---------------------------------------------------------------------------------- normalising

def score_stats(scores: torch.Tensor) -> tuple[float, float]:
    """Mean and standard deviation of a reward model's scores (N,) on held-out responses: the two
    numbers OpenRLHF stores beside a reward model to normalise its scores (lesson 08)."""
    scores = scores.double()
    return float(scores.mean()), float(scores.std())


class NormalisedReward(nn.Module):
    """A frozen reward model whose scores are standardised, (r − mean) / std, with the mean and std
    of its scores on held-out responses kept as buffers (OpenRLHF's ``normalize_reward``). A KL
    penalty β then means the same for every reward model: one standard deviation of score is worth
    β⁻¹ nats of KL, whatever the model's own scale (lesson 08).

    >>> from rmlearn import RewardModel, course_tokenizer, tiny_backbone
    >>> tok, rm = course_tokenizer(), RewardModel(tiny_backbone())
    >>> raw = rm.score(["Hi?"] * 3, ["a", "b c", "d e f"], tok)
    >>> normed = NormalisedReward(rm, *score_stats(raw))
    >>> z = normed.score(["Hi?"] * 3, ["a", "b c", "d e f"], tok)     # (3,)
    >>> round(z.mean().item(), 4) + 0.0, round(z.std().item(), 4)
    (0.0, 1.0)
    """

    def __init__(self, reward_model: RewardModel, mean: float, std: float) -> None:
        super().__init__()
        if not std > 0:
            raise ValueError(f"std must be > 0 to normalise by it, got {std}")
        self.reward_model = reward_model
        self.register_buffer("mean", torch.tensor(float(mean)))
        self.register_buffer("std", torch.tensor(float(std)))

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """(B, T), (B, T) → (B,) standardised scores."""
        return (self.reward_model(input_ids, attention_mask) - self.mean) / self.std

    def score(self, prompts: Sequence[str], responses: Sequence[str], tokenizer: Any) -> torch.Tensor:
        """Like ``RewardModel.score``: (N,) standardised scores."""
        return (self.reward_model.score(prompts, responses, tokenizer) - self.mean) / self.std


# ---------------------------------------------------------------------------------- ensembles
# ensemble_scores and conservative_reward live in rmlearn.evaluation (lesson 09), imported above.


# ---------------------------------------------------------------------------------- PPO

@dataclass
class PPOConfig:
    """Hyper-parameters of ``ppo``; the defaults run the tiny course policy in seconds."""

    steps: int = 30  # iterations of: sample a batch, score it, update policy and critic
    batch_size: int = 64  # responses sampled per step
    beta: float = 0.05  # KL penalty per token: reward −β·(log π − log π_ref)
    lr: float = 1e-3  # Adam learning rate of the policy
    value_lr: float = 3e-3  # Adam learning rate of the value model
    ppo_epochs: int = 2  # gradient steps on each batch
    clip: float = 0.2  # ε of the clipped ratio
    vf_coef: float = 0.5  # weight of the value loss
    gamma: float = 1.0  # discount: 1, the reward comes once at the end
    lam: float = 0.95  # GAE λ
    max_new_tokens: int = 40  # longest response
    seed: int = 0  # prompts and sampling: the same seed gives the same run

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "ppo_epochs", "max_new_tokens"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValueError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.beta < 0:
            raise ValueError(f"beta is a KL penalty, >= 0; got {self.beta}")
        if not 0 < self.clip < 1:
            raise ValueError(f"clip is the ε of the ratio clip, in (0, 1); got {self.clip}")


@dataclass
class RLHistory:
    """Per-step means over the sampled batch."""

    proxy: list[float] = field(default_factory=list)  # reward model's score
    gold: list[float] = field(default_factory=list)  # gold reward
    kl: list[float] = field(default_factory=list)  # sequence KL(π‖π_ref), sampled estimate
    length: list[float] = field(default_factory=list)  # words per response
    config: dict[str, Any] = field(default_factory=dict)


def _masked_whiten(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    mean = (x * mask).sum() / mask.sum()
    var = ((x - mean) ** 2 * mask).sum() / mask.sum()
    return (x - mean) / (var.sqrt() + 1e-8) * mask


def ppo(policy: nn.Module, reference: nn.Module, reward_model: RewardModel | NormalisedReward, value_model: ValueModel,
        tokenizer: Any, prompts: Sequence[str], *, gold: Gold = gold_reward, **config: Any) -> RLHistory:
    """PPO-style RLHF, in place: ``policy`` and ``value_model`` are trained, ``reference`` and
    ``reward_model`` stay frozen. Keywords are the fields of ``PPOConfig``.

    Each step: sample responses; reward = reward model's score at EOS − β·KL per token; GAE
    advantages from the value model; a few clipped policy-gradient and value steps.

    >>> from rmlearn import RewardModel, ValueModel, course_tokenizer, tiny_backbone
    >>> policy = tiny_policy()
    >>> h = ppo(policy, frozen_copy(policy), RewardModel(tiny_backbone()), ValueModel(tiny_backbone()),
    ...         course_tokenizer(), ["I was charged twice."], steps=2, batch_size=4, max_new_tokens=5)
    >>> len(h.proxy), len(h.gold), len(h.kl), len(h.length)      # one entry per step
    (2, 2, 2, 2)
    """
    cfg = PPOConfig(**config)
    rng, gen = random.Random(cfg.seed), torch.Generator().manual_seed(cfg.seed)
    opt = torch.optim.Adam([{"params": policy.parameters(), "lr": cfg.lr},
                            {"params": value_model.parameters(), "lr": cfg.value_lr}])
    history = RLHistory(config=asdict(cfg))
    with one_cpu_thread_if_small(policy):
        for _ in range(cfg.steps):
            batch = rng.choices(list(prompts), k=cfg.batch_size)
            roll = sample_responses(policy, tokenizer, batch, max_new_tokens=cfg.max_new_tokens, generator=gen)
            rm, q = roll.response_mask.float(), roll.query_len  # (B, L)
            with torch.no_grad():
                logp_old = response_logprobs(policy, roll)  # (B, L)
                logp_ref = response_logprobs(reference, roll)  # (B, L)
                values = value_model(roll.ids, roll.mask)[:, q - 1:-1] * rm  # (B, L) V(s_t)
                score = reward_model.score(batch, roll.responses, tokenizer)  # (B,)
                rewards = kl_penalised_rewards(score, logp_old, logp_ref, rm, cfg.beta)  # (B, L)
                adv, returns = gae(rewards, values, rm, cfg.gamma, cfg.lam)
                adv = _masked_whiten(adv, rm)
            policy.train()
            value_model.train()
            for _ in range(cfg.ppo_epochs):
                logp = response_logprobs(policy, roll)
                v = value_model(roll.ids, roll.mask)[:, q - 1:-1]  # (B, L)
                pg_loss, v_loss = ppo_losses(logp, logp_old, adv, v, returns, rm, cfg.clip)
                opt.zero_grad(set_to_none=True)
                (pg_loss + cfg.vf_coef * v_loss).backward()
                opt.step()
            policy.eval()
            value_model.eval()
            history.proxy.append(score.mean().item())
            history.gold.append(sum(gold(p, r) for p, r in zip(batch, roll.responses)) / len(batch))
            history.kl.append(sequence_kl(logp_old, logp_ref, rm).mean().item())
            history.length.append(sum(len(r.split()) for r in roll.responses) / len(batch))
    return history


# ---------------------------------------------------------------------------------- lesson 10: DPO
# A policy is a reward model: DPO's implicit reward r(x, y) = β·log π(y|x)/π_ref(y|x) (up to a
# term in x alone), per token β·(log π − log π_ref), summed like lesson 06's cumulative scores.

def response_logprobs_of(policy: nn.Module, tokenizer: Any, prompts: Sequence[str],
                         responses: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """log π(y_t | x, y_<t) of given responses (and their EOS), teacher-forced: (B, L) and the
    response mask (B, L). Gradients flow (DPO trains through it); wrap in no_grad to only score."""
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    queries = _query_ids(tokenizer, prompts)
    answers = [a + [eos] for a in tokenizer(list(responses), add_special_tokens=False)["input_ids"]]
    q_ids, q_mask = pad_batch(queries, pad, side="left")  # (B, Q)
    a_ids, a_mask = pad_batch(answers, pad)  # (B, L)
    roll = Rollout(list(prompts), list(responses), torch.cat([q_ids, a_ids], 1), torch.cat([q_mask, a_mask], 1),
                   a_mask, q_ids.shape[1])
    return response_logprobs(policy, roll), a_mask.float()


@torch.no_grad()
def implicit_reward(policy: nn.Module, reference: nn.Module, prompts: Sequence[str], responses: Sequence[str],
                    beta: float = 0.1, tokenizer: Any = None, per_token: bool = False) -> torch.Tensor:
    """DPO's implicit reward of each response, (N,); with ``per_token`` the per-token rewards (N, L)
    (response tokens and EOS, padding 0). ``tokenizer`` defaults to the course tokenizer.

    >>> policy = tiny_policy()
    >>> implicit_reward(policy, frozen_copy(policy), ["Hi?"], ["Hello."]).tolist()   # π = π_ref: 0
    [0.0]
    """
    from .backbone import course_tokenizer
    from .segments import implicit_sequence_reward, implicit_token_rewards

    tokenizer = tokenizer or course_tokenizer()
    with one_cpu_thread_if_small(policy):
        logp, mask = response_logprobs_of(policy, tokenizer, prompts, responses)
        logp_ref, _ = response_logprobs_of(reference, tokenizer, prompts, responses)
    if per_token:
        return implicit_token_rewards(logp, logp_ref, beta, mask)
    return implicit_sequence_reward(logp, logp_ref, beta, mask)


def train_dpo(policy: nn.Module, reference: nn.Module, tokenizer: Any, pairs: Sequence[Any], *,
              beta: float = 0.1, epochs: int = 2, batch_size: int = 32, lr: float = 1e-3, seed: int = 0) -> list[float]:
    """Direct Preference Optimization in place (Rafailov et al., 2023): ``policy`` learns from
    preference ``pairs`` (``prompt``, ``chosen``, ``rejected``) with ``losses.dpo_loss``;
    ``reference`` stays frozen. Returns the loss per step.

    >>> from rmlearn import course_tokenizer
    >>> policy = tiny_policy(seed=0)
    >>> losses = train_dpo(policy, frozen_copy(policy), course_tokenizer(), synthetic_preferences(16), epochs=2,
    ...                    batch_size=8, lr=3e-3)
    >>> round(losses[0], 4), losses[-1] < losses[0]   # the policy starts as its reference: log 2
    (0.6931, True)
    """
    from .losses import dpo_loss

    refuse_ties(pairs, "DPO's loss")

    def batch_loss(batch: list[Any]) -> torch.Tensor:
        prompts = [p.prompt for p in batch] * 2
        texts = [p.chosen for p in batch] + [p.rejected for p in batch]
        logp, mask = response_logprobs_of(policy, tokenizer, prompts, texts)
        with torch.no_grad():
            ref, _ = response_logprobs_of(reference, tokenizer, prompts, texts)
        seq, seq_ref = (logp * mask).sum(-1), (ref * mask).sum(-1)  # (2B,)
        n = len(batch)
        return dpo_loss(seq[:n], seq[n:], seq_ref[:n], seq_ref[n:], beta)

    return minibatch_fit(policy, pairs, batch_loss, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed)
