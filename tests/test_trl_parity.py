"""rmlearn computes what TRL's RewardTrainer computes (TRL is a test-only extra).

Same weights (``benchmarks.common``: a ``GPT2ForSequenceClassification`` holding the tiny backbone
and rmlearn's head), same texts, TRL's own tokenization and collator: the token ids, the rewards,
the loss (plain, with margin, with centering) and three AdamW steps agree.
"""

from __future__ import annotations

import tempfile
import warnings

import pytest
import torch
from torch.testing import assert_close

from benchmarks import common  # TRL (a test extra, never a runtime dependency) is imported there
from rmlearn import RewardModel, centering_penalty, pairwise_loss, train_reward_model
from rmlearn.inputs import encode, encode_many, pad_batch

N_PAIRS = 16  # one batch


@pytest.fixture(scope="module")
def pairs():
    return common.preference_data()[-N_PAIRS:]  # the support pairs: the longest prompts


@pytest.fixture(scope="module")
def trainer(pairs, tokenizer):
    with warnings.catch_warnings(), tempfile.TemporaryDirectory() as tmp:
        warnings.simplefilter("ignore")
        yield common.trl_trainer(common.sequence_classifier(), pairs, tokenizer, tmp)


@pytest.fixture(scope="module")
def trl_batch(trainer):
    """The batch TRL's own collator builds from its own tokenization: chosen rows, then rejected rows."""
    rows = [trainer.train_dataset[i] for i in range(len(trainer.train_dataset))]
    return trainer.data_collator([{k: r[k] for k in ("chosen_ids", "rejected_ids")} for r in rows])


def test_trl_tokenizes_texts_to_rmlearns_ids(trainer, pairs, tokenizer):
    data = trainer.train_dataset
    assert len(data) == len(pairs)  # TRL dropped nothing
    for row, pair in zip(data, pairs, strict=True):
        assert row["chosen_ids"] == encode(tokenizer, pair.prompt, pair.chosen)
        assert row["rejected_ids"] == encode(tokenizer, pair.prompt, pair.rejected)
        assert row["chosen_ids"][-1] == tokenizer.eos_token_id != tokenizer.pad_token_id
    prompts = [p.prompt for p in pairs]  # the batched path used by training and scoring: the same ids
    assert encode_many(tokenizer, prompts, [p.chosen for p in pairs]) == data["chosen_ids"]
    assert encode_many(tokenizer, prompts, [p.rejected for p in pairs]) == data["rejected_ids"]


def test_trl_collator_pads_like_rmlearn(trl_batch, pairs, tokenizer):
    seqs = [encode(tokenizer, p.prompt, p.chosen) for p in pairs] + [encode(tokenizer, p.prompt, p.rejected) for p in pairs]
    ids, mask = pad_batch(seqs, tokenizer.pad_token_id)  # (2B, T)
    assert torch.equal(trl_batch["input_ids"], ids)
    assert torch.equal(trl_batch["attention_mask"], mask)


def test_rewards_equal_the_sequence_classifier(trainer, trl_batch):
    classifier = trainer.model.eval()
    with torch.no_grad():
        expected = classifier(**trl_batch).logits.squeeze(-1)  # (2B,)
        native = common.reward_model().eval()(trl_batch["input_ids"], trl_batch["attention_mask"])  # own copy
        shared = RewardModel.from_sequence_classifier(classifier)(trl_batch["input_ids"], trl_batch["attention_mask"])
    assert_close(native, expected, atol=1e-5, rtol=0)
    assert_close(shared, expected, atol=1e-5, rtol=0)
    assert expected.std() > 1e-3  # the rows really differ: a constant score would pass trivially


@pytest.mark.parametrize("margin, center", [(0.0, None), (1.5, None), (0.0, 0.1)])
def test_loss_equals_trl_compute_loss(trainer, trl_batch, margin, center):
    inputs = {k: v.clone() for k, v in trl_batch.items()}
    if margin:
        inputs["margin"] = torch.full((N_PAIRS,), margin)
    trainer.args.center_rewards_coefficient = center
    try:
        trainer.model.eval()
        with torch.no_grad():
            trl_loss = trainer.compute_loss(trainer.model, inputs)
            scores = common.reward_model().eval()(trl_batch["input_ids"], trl_batch["attention_mask"])
    finally:
        trainer.args.center_rewards_coefficient = None
    r_chosen, r_rejected = scores.view(2, N_PAIRS)  # (B,), (B,): chosen rows come first
    ours = pairwise_loss(r_chosen, r_rejected, margin) + (center or 0.0) * centering_penalty(r_chosen, r_rejected)
    assert_close(ours, trl_loss, atol=1e-5, rtol=0)


@pytest.mark.parametrize("threads", [None, 2])  # rmlearn's reference path; its fast path (fused GELU, 2 shards)
def test_three_training_steps_match_trl(pairs, tokenizer, threads):
    """One batch, three AdamW steps in each trainer: the same losses and the same weights after."""
    model = common.reward_model()
    history = train_reward_model(model, tokenizer, pairs, epochs=3, batch_size=N_PAIRS, lr=common.LR,
                                 threads=threads, progress=False, **common.AS_TRL)
    assert history.shards == (threads or 1)
    classifier = common.sequence_classifier()
    trl_losses: list[float] = []
    with warnings.catch_warnings(), tempfile.TemporaryDirectory() as tmp:
        warnings.simplefilter("ignore")
        trainer = common.trl_trainer(classifier, pairs, tokenizer, tmp, num_train_epochs=3)
        compute_loss = trainer.compute_loss

        def recording(*args, **kwargs):
            loss = compute_loss(*args, **kwargs)
            trl_losses.append(loss.item())
            return loss

        trainer.compute_loss = recording
        trainer.train()
    assert len(trl_losses) == len(history) == 3
    assert_close(torch.tensor(history.loss), torch.tensor(trl_losses), atol=1e-4, rtol=0)
    assert history.loss[0] > history.loss[1]  # it really trained
    assert_close(model.head.weight, classifier.score.weight, atol=1e-4, rtol=0)
    initial = common.reward_model().backbone.ln_f.bias
    for (name, ours), theirs in zip(model.backbone.named_parameters(), classifier.transformer.parameters(), strict=True):
        if name == "ln_f.bias":
            # Its true gradient is 0: it shifts every reward equally and the loss sees only r_c − r_r.
            # rmlearn gets exactly 0 and leaves it alone; in TRL round-off can leave ~1e-9, which
            # AdamW (dividing by √v) turns into a step of up to lr. Both are right up to that.
            assert torch.equal(ours, initial)
            assert (theirs - initial).abs().max() <= 3 * common.LR + 1e-6
            continue
        assert_close(ours, theirs, atol=1e-4, rtol=0, msg=lambda m, n=name: f"{n}: {m}")
