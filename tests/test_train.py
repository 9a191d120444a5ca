"""rmlearn.train: the tiny model learns the hidden rule, picks up length bias, and is reproducible."""

from __future__ import annotations

import pytest
import torch

from rmlearn import (
    RankedExample,
    RewardModel,
    ValueModel,
    centering_penalty,
    evaluate,
    pairwise_loss,
    synthetic_preferences,
    tiny_backbone,
    train_reward_model,
    train_value_model,
)
from rmlearn.inputs import encode_batch

# The course model's accuracy, prompt reading and length bias are tested in tests/test_zoo.py.


def test_same_seed_gives_identical_numbers(tokenizer):
    data = synthetic_preferences(64, seed=5)
    runs = []
    for _ in range(2):
        model = RewardModel(tiny_backbone(seed=1), seed=1)
        history = train_reward_model(model, tokenizer, data, epochs=2, seed=3, progress=False)
        runs.append((history.loss, model.score(data[0].prompt, data[0].chosen, tokenizer)))
    assert runs[0][0] == runs[1][0]
    assert torch.equal(runs[0][1], runs[1][1])
    other = RewardModel(tiny_backbone(seed=1), seed=1)
    assert train_reward_model(other, tokenizer, data, epochs=2, seed=4, progress=False).loss != runs[0][0]


@pytest.mark.parametrize("margin, center", [(0.0, 0.0), (1.5, 0.0), (0.0, 0.1)])
def test_first_step_loss_is_the_library_objective(tokenizer, margin, center):
    data = synthetic_preferences(8, seed=2)
    model = RewardModel(tiny_backbone(seed=0), seed=0)
    prompts = [p.prompt for p in data]
    with torch.no_grad():
        r_c = model(*encode_batch(tokenizer, prompts, [p.chosen for p in data]))
        r_r = model(*encode_batch(tokenizer, prompts, [p.rejected for p in data]))
    expected = pairwise_loss(r_c, r_r, margin) + center * centering_penalty(r_c, r_r)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    history = train_reward_model(model, tokenizer, data, epochs=1, batch_size=8, margin=margin,
                                 center_coef=center, progress=False)
    assert history.loss[0] == pytest.approx(expected.item(), rel=1e-5)
    unchanged = {name for name, p in model.named_parameters() if torch.equal(before[name], p)}
    # the final LayerNorm bias shifts every score by the same amount, which the pairwise loss cannot
    # see (only differences are learned): it gets no gradient unless the centering term is on
    assert unchanged == (set() if center else {"backbone.ln_f.bias"})


def test_centering_keeps_scores_near_zero(tokenizer):
    data = synthetic_preferences(200, seed=0)
    means = {}
    for coef in (0.0, 0.5):
        model = RewardModel(tiny_backbone(seed=0), seed=0)
        train_reward_model(model, tokenizer, data, center_coef=coef, progress=False)
        m = evaluate(model, tokenizer, data)
        means[coef] = abs(m["mean_chosen"] + m["mean_rejected"]) / 2
    assert means[0.5] < means[0.0] and means[0.5] < 0.5


@pytest.mark.parametrize("loss", ["listwise", "plackett_luce"])
def test_rankings_train_with_listwise_and_plackett_luce(tokenizer, loss):
    import random

    from rmlearn.data import _synthetic_response

    rng, rankings = random.Random(0), []
    prompt = "How do I reset my password?"
    while len(rankings) < 240:  # rankings of 3 synthetic answers with distinct quality, best first
        trio = [_synthetic_response(rng, prompt) for _ in range(3)]
        if len({q for _, q, _ in trio}) == 3:
            ordered = sorted(trio, key=lambda t: -t[1])
            rankings.append(RankedExample(prompt, tuple(t for t, _, _ in ordered)))
    train, test = rankings[:200], rankings[200:]
    model = RewardModel(tiny_backbone(seed=0), seed=0)
    history = train_reward_model(model, tokenizer, train, loss=loss, progress=False)
    assert sum(history.loss[-3:]) / 3 < history.loss[0] / 2
    assert evaluate(model, tokenizer, test)["accuracy"] > 0.9


def test_rankings_expand_to_all_pairs_for_pairwise_training(tokenizer):
    ranked = [RankedExample("q", ("a b", "c d", "e f", "g h"))] * 4
    history = train_reward_model(RewardModel(tiny_backbone()), tokenizer, ranked, epochs=1, batch_size=24,
                                 progress=False)
    assert len(history) == 1  # 4 rankings × 6 pairs = 24 pairs = one batch


def test_bad_settings_are_named(tokenizer):
    model, data = RewardModel(tiny_backbone()), synthetic_preferences(4)
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        train_reward_model(model, tokenizer, data, loss="hinge")
    with pytest.raises(ValueError, match="lr must be a positive number, got -1"):
        train_reward_model(model, tokenizer, data, lr=-1)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        train_reward_model(model, tokenizer, data, batch_size=0)
    with pytest.raises(ValueError, match="no training data"):
        train_reward_model(model, tokenizer, [])
    with pytest.raises(TypeError, match="unexpected keyword argument 'epoch'"):
        train_reward_model(model, tokenizer, data, epoch=3)


def test_value_model_learns_the_reward_models_scores(tokenizer):
    # one prompt, so the critic has to learn the scores of the answers, not which prompt goes with which
    data = [p for p in synthetic_preferences(400, seed=0) if p.prompt == "How do I reset my password?"][:48]
    reward = RewardModel(tiny_backbone(seed=0), seed=0)
    train_reward_model(reward, tokenizer, data, epochs=2, progress=False)
    value = ValueModel(tiny_backbone(seed=1), seed=1)
    history = train_value_model(value, reward, tokenizer, data, epochs=20, progress=False)
    # early prefixes cannot know the final score, so the loss has a floor well above zero
    assert sum(history.loss[-5:]) / 5 < history.loss[0] / 2
    prompts, responses = [p.prompt for p in data], [p.chosen for p in data]
    ids, mask = encode_batch(tokenizer, prompts, responses)
    with torch.no_grad():
        at_eos = value(ids, mask)[torch.arange(len(ids)), mask.sum(1) - 1]
    targets = reward.score(prompts, responses, tokenizer)
    corr = torch.corrcoef(torch.stack([at_eos, targets]))[0, 1].item()
    assert corr > 0.9
