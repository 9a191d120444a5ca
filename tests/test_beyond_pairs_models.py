"""Lesson 10's model-side code: the process reward model reads the head at step ends, heads train on
fixed features, DPO's implicit reward is β·(log π − log π_ref) of the policy's own log-probabilities."""

from __future__ import annotations

import copy
import math

import pytest
import torch
from torch.testing import assert_close

from rmlearn import (
    ProcessRewardModel,
    RewardModel,
    course_tokenizer,
    pooled_features,
    tiny_backbone,
    train_head,
    train_process_reward_model,
)
from rmlearn.rlhf import frozen_copy, implicit_reward, response_logprobs_of, tiny_policy, train_dpo
from rmlearn.synthetic import StepAnswer, step_answers

PROMPT = "How do I cancel my plan?"


@pytest.fixture(scope="module")
def tok():
    return course_tokenizer()


def test_prm_reads_the_head_at_each_separator_and_at_eos(tok):
    prm = ProcessRewardModel(tiny_backbone(seed=0))
    steps = [["press cancel plan", "kind regards"], ["i cancelled your plan", "please note", "press cancel plan"]]
    ids, mask, ends, step_mask = prm.encode_steps([PROMPT, PROMPT], steps, tok)
    assert step_mask.tolist() == [[1, 1, 0], [1, 1, 1]]
    for b, n in enumerate((2, 3)):
        tokens = tok.convert_ids_to_tokens(ids[b].tolist())
        assert [tokens[e] for e in ends[b, :n].tolist()] == [","] * (n - 1) + [tok.eos_token]
    probs, m = prm.step_probs([PROMPT, PROMPT], steps, tok)
    with torch.no_grad():
        logits = prm(ids, mask)  # (B, T): the head at every position
    assert_close(probs[1], torch.sigmoid(logits[1, ends[1]]))
    assert probs[0, 2].item() == 0.0  # padding steps are 0


def test_prm_training_lowers_the_step_loss_and_moves_the_decoder(tok):
    prm = ProcessRewardModel(tiny_backbone(seed=0))
    before = copy.deepcopy(prm.state_dict())
    losses = train_process_reward_model(prm, tok, step_answers(64, seed=0), epochs=3, batch_size=16, lr=3e-3)
    assert len(losses) == 12 and losses[-1] < losses[0]
    changed = [k for k, v in prm.state_dict().items() if not torch.equal(v, before[k])]
    assert any(k.startswith("head") for k in changed) and any(k.startswith("backbone") for k in changed)


def test_prm_rejects_an_answer_whose_steps_do_not_match_its_separators(tok):
    prm = ProcessRewardModel(tiny_backbone(seed=0))
    with pytest.raises(ValueError, match="steps but"):
        prm.encode_steps([PROMPT], [["a", "b"]], _NoCommaTokenizer(tok))


class _NoCommaTokenizer:
    """The course tokenizer, except that its separator token id is never produced."""

    def __init__(self, tok):
        self.tok = tok
        self.pad_token_id = tok.pad_token_id

    def convert_tokens_to_ids(self, token):
        return -1

    def __getattr__(self, name):
        return getattr(self.tok, name)

    def __call__(self, *args, **kwargs):
        return self.tok(*args, **kwargs)


def test_pooled_features_are_what_the_reward_head_reads(tok):
    model = RewardModel(tiny_backbone(seed=0))
    prompts, responses = [PROMPT] * 2, ["press cancel plan.", "kind regards, we value you."]
    feats = pooled_features(model, tok, prompts, responses)
    with torch.no_grad():
        assert_close(model.head(feats).squeeze(-1), model.score(prompts, responses, tok))


def test_train_head_is_seeded_and_leaves_the_global_rng_alone():
    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(1))
    y = (x[:, 0] > 0).float()

    def objective(h):
        return torch.nn.functional.binary_cross_entropy_with_logits(h(x).squeeze(-1), y)

    heads = [torch.nn.Linear(4, 1) for _ in range(2)]  # (their construction draws from the global RNG)
    state = torch.get_rng_state()
    losses = [train_head(h, objective, steps=50, lr=0.1, seed=3) for h in heads]
    assert torch.equal(torch.get_rng_state(), state)
    assert losses[0] == losses[1] and losses[0][-1] < losses[0][0] / 2
    assert_close(heads[0].weight, heads[1].weight)


def test_implicit_reward_is_beta_times_the_log_ratio(tok):
    reference = tiny_policy(seed=0)
    policy = tiny_policy(seed=1)  # another model: the log-ratio is not 0
    prompts, responses = [PROMPT, PROMPT], ["press cancel plan.", "we do not do that, kind regards."]
    assert implicit_reward(reference, frozen_copy(reference), prompts, responses, 0.1, tok).abs().max() == 0
    with torch.no_grad():
        logp, mask = response_logprobs_of(policy, tok, prompts, responses)
        ref, _ = response_logprobs_of(reference, tok, prompts, responses)
    expected = 0.5 * ((logp - ref) * mask).sum(-1)
    assert expected.std() > 1e-3  # the two responses get different rewards: not trivially equal
    assert_close(implicit_reward(policy, reference, prompts, responses, 0.5, tok), expected)
    per_token = implicit_reward(policy, reference, prompts, responses, 0.5, tok, per_token=True)
    assert per_token.shape == mask.shape and bool((per_token[mask == 0] == 0).all())
    assert_close(per_token.sum(-1), expected)  # the per-token rewards telescope to the sequence reward


def test_dpo_starts_at_log_2_moves_the_policy_only_and_raises_chosen_over_rejected(tok):
    from rmlearn.data import PreferencePair

    pairs = [PreferencePair(PROMPT, "press cancel plan.", "we do not do that."),
             PreferencePair("I was charged twice.", "second charge refunded.", "it is your fault.")] * 4
    reference = tiny_policy(seed=0)
    policy = copy.deepcopy(reference)
    before = copy.deepcopy(reference.state_dict())
    gap = lambda: (implicit_reward(policy, reference, [p.prompt for p in pairs], [p.chosen for p in pairs], 0.1, tok)  # noqa: E731
                   - implicit_reward(policy, reference, [p.prompt for p in pairs], [p.rejected for p in pairs], 0.1, tok))
    losses = train_dpo(policy, reference, tok, pairs, beta=0.1, epochs=5, batch_size=4, lr=3e-3)
    assert losses[0] == pytest.approx(math.log(2), abs=1e-6)
    assert all(torch.equal(v, before[k]) for k, v in reference.state_dict().items())
    assert bool((gap() > 0).all()) and losses[-1] < losses[0]


def test_step_answer_properties():
    a = StepAnswer("Q?", ("x", "y", "z"), (1, 0, 1))
    assert a.text == "x, y, z." and not a.correct and a.first_error == 2


def test_dpo_refuses_pairs_labelled_as_ties(tok):
    from rmlearn import PreferencePair

    policy = tiny_policy(seed=0)
    pairs = [PreferencePair("Q?", "a b", "c"), PreferencePair("R?", "d", "e f", tie=True)]
    with pytest.raises(ValueError, match=r"1 training pairs are labelled as ties \(the first is pair 1\): DPO's loss"):
        train_dpo(policy, frozen_copy(policy), tok, pairs)
