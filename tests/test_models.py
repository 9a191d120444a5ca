"""RewardModel and ValueModel: agreement with transformers, padding, PAD = EOS, saving and loading."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch.testing import assert_close
from transformers import GPT2ForSequenceClassification

from rmlearn import (
    PASSWORD_RESET,
    RewardModel,
    ValueModel,
    course_tokenizer,
    load_backbone,
    support_pairs,
    tiny_backbone,
)
from rmlearn.inputs import encode_batch


def _hf_twin(model: RewardModel) -> GPT2ForSequenceClassification:
    """transformers' own sequence classifier with the same decoder and head weights."""
    config = model.backbone.config.__class__(**{**model.backbone.config.to_dict(), "num_labels": 1})
    twin = GPT2ForSequenceClassification(config).eval()
    twin.transformer.load_state_dict(model.backbone.state_dict())
    twin.score.weight.data.copy_(model.head.weight.data)
    return twin


def _batch(tokenizer, side):
    pairs = support_pairs()[:6]
    return encode_batch(tokenizer, [p.prompt for p in pairs], [p.chosen if i % 2 else p.rejected
                                                                for i, p in enumerate(pairs)], side=side)


@pytest.mark.parametrize("side", ["right", "left"])
def test_eos_scores_equal_gpt2_for_sequence_classification(reward_model, tokenizer, side):
    ids, mask = _batch(tokenizer, side)
    assert (mask == 0).any(), "the batch must contain padding"
    twin = _hf_twin(reward_model)
    with torch.no_grad():
        ours = reward_model(ids, mask)
        theirs = twin(input_ids=ids, attention_mask=mask,
                      position_ids=(mask.cumsum(-1) - 1).clamp(min=0)).logits.squeeze(-1)
    assert (ours - theirs).abs().max().item() < 1e-5


def test_from_sequence_classifier_shares_weights_and_scores(reward_model, tokenizer):
    twin = _hf_twin(reward_model)
    wrapped = RewardModel.from_sequence_classifier(twin)
    ids, mask = _batch(tokenizer, "right")
    with torch.no_grad():
        assert_close(wrapped(ids, mask), twin(input_ids=ids, attention_mask=mask).logits.squeeze(-1))
    assert wrapped.head.weight.data_ptr() == twin.score.weight.data_ptr()


def test_eos_scores_do_not_depend_on_padding_side(reward_model, tokenizer):
    right = reward_model(*_batch(tokenizer, "right"))
    left = reward_model(*_batch(tokenizer, "left"))
    assert_close(right, left, atol=1e-5, rtol=1e-5)


def test_eos_score_in_a_batch_equals_score_alone(reward_model, tokenizer):
    ids, mask = _batch(tokenizer, "right")
    alone = torch.stack([reward_model(ids[i:i + 1, : int(mask[i].sum())]) [0] for i in range(len(ids))])
    assert_close(reward_model(ids, mask), alone, atol=1e-5, rtol=1e-5)


def test_last_pooling_gives_wrong_scores_under_right_padding(tokenizer):
    backbone = tiny_backbone(seed=0)
    eos, last = RewardModel(backbone, "eos"), RewardModel(backbone, "last")
    ids, mask = _batch(tokenizer, "right")
    padded = mask[:, -1] == 0  # rows whose last column is PAD
    assert padded.any() and (~padded).any()
    with torch.no_grad():
        good, naive = eos(ids, mask), last(ids, mask)
    assert_close(naive[~padded], good[~padded])  # unpadded rows: the same token, the same score
    assert ((naive[padded] - good[padded]).abs() > 1e-3).all()  # padded rows: a PAD position is read
    ids_left, mask_left = _batch(tokenizer, "left")
    assert_close(last(ids_left, mask_left), eos(ids_left, mask_left))  # left padding hides the bug


def test_mean_pooling_ignores_padding(tokenizer):
    model = RewardModel(tiny_backbone(seed=1), "mean")
    ids, mask = _batch(tokenizer, "right")
    wider_ids = torch.cat([ids, torch.full((len(ids), 7), tokenizer.pad_token_id)], dim=1)
    wider_mask = torch.cat([mask, torch.zeros(len(ids), 7, dtype=mask.dtype)], dim=1)
    with torch.no_grad():
        assert_close(model(ids, mask), model(wider_ids, wider_mask), atol=1e-5, rtol=1e-5)
        changed = wider_ids.clone()
        changed[wider_mask == 0] = 5  # different junk under the padding: still ignored
        assert_close(model(changed, wider_mask), model(ids, mask), atol=1e-5, rtol=1e-5)


def test_score_builds_prompt_response_eos(reward_model, tokenizer):
    pair = PASSWORD_RESET
    ids, mask = encode_batch(tokenizer, [pair.prompt], [pair.chosen])
    assert ids[0, -1].item() == tokenizer.eos_token_id
    assert_close(reward_model.score(pair.prompt, pair.chosen, tokenizer), reward_model(ids, mask))
    many = reward_model.score(pair.prompt, [pair.chosen, pair.rejected], tokenizer)
    assert many.shape == (2,) and not torch.allclose(many[0], many[1])


def test_score_keeps_input_order_with_many_batches(reward_model, tokenizer):
    pairs = support_pairs()
    prompts, responses = [p.prompt for p in pairs], [p.chosen for p in pairs]
    one_by_one = torch.cat([reward_model.score(p, r, tokenizer) for p, r in zip(prompts, responses)])
    assert_close(reward_model.score(prompts, responses, tokenizer, batch_size=3), one_by_one, atol=1e-5, rtol=1e-5)


def test_token_scores_match_prefix_scores_and_nan_on_padding(reward_model, tokenizer):
    ids, mask = _batch(tokenizer, "right")
    per_token = reward_model.token_scores(ids, mask)
    assert per_token.shape == ids.shape
    assert torch.isnan(per_token[mask == 0]).all() and not torch.isnan(per_token[mask == 1]).any()
    last = mask.sum(1) - 1
    assert_close(per_token[torch.arange(len(ids)), last], reward_model(ids, mask))


def test_pad_equal_to_eos_still_scores_the_eos_token(reward_model, tokenizer):
    same = course_tokenizer()
    same.pad_token = same.eos_token
    assert same.pad_token_id == same.eos_token_id
    pairs = support_pairs()[:4]
    with pytest.warns(UserWarning, match="PAD and EOS are the same token"):
        got = reward_model.score([p.prompt for p in pairs], [p.chosen for p in pairs], same)
    expected = reward_model.score([p.prompt for p in pairs], [p.chosen for p in pairs], tokenizer)
    assert_close(got, expected, atol=1e-5, rtol=1e-5)


def test_tokenizer_without_pad_pads_with_eos_and_says_so(reward_model, tokenizer):
    tok = course_tokenizer()
    tok.pad_token = None
    pairs = support_pairs()[:4]
    prompts, responses = [p.prompt for p in pairs], [p.chosen for p in pairs]
    with pytest.warns(UserWarning, match="no PAD token, so rmlearn pads with EOS"):
        ids, mask = encode_batch(tok, prompts, responses)
    assert (ids[mask == 0] == tok.eos_token_id).all() and (mask == 0).any()
    assert_close(reward_model.score(prompts, responses, tok), reward_model.score(prompts, responses, tokenizer),
                 atol=1e-5, rtol=1e-5)


def test_unknown_pooling_is_rejected():
    with pytest.raises(ValueError, match="unknown pooling 'max'"):
        RewardModel(tiny_backbone(), pooling="max")


def test_save_and_load_give_identical_scores(reward_model, tokenizer, tmp_path):
    with torch.no_grad():
        reward_model.head.weight.add_(0.5)  # not the init: the saved head must be the one loaded
    pairs = support_pairs()
    prompts, responses = [p.prompt for p in pairs], [p.chosen for p in pairs]
    before = reward_model.score(prompts, responses, tokenizer)
    reward_model.save_pretrained(tmp_path / "rm", tokenizer=tokenizer)
    assert (tmp_path / "rm" / "model.safetensors").exists()
    loaded = RewardModel.from_pretrained(tmp_path / "rm")
    assert torch.equal(loaded.score(prompts, responses, tokenizer), before)
    assert loaded.pooling == "eos"


def test_load_backbone_reads_a_local_directory(tmp_path, tokenizer):
    backbone = tiny_backbone(seed=3)
    backbone.save_pretrained(tmp_path / "bb")
    loaded = load_backbone(tmp_path / "bb")
    ids, mask = _batch(tokenizer, "right")
    with torch.no_grad():
        assert torch.equal(RewardModel(loaded)(ids, mask), RewardModel(backbone)(ids, mask))


def test_from_pretrained_rejects_the_wrong_kind(tmp_path):
    ValueModel(tiny_backbone()).save_pretrained(tmp_path / "vm")
    with pytest.raises(ValueError, match="holds a ValueModel"):
        RewardModel.from_pretrained(tmp_path / "vm")
    with pytest.raises(FileNotFoundError, match="no config.json"):
        RewardModel.from_pretrained(tmp_path)


def test_same_seed_same_weights_and_scores(tokenizer):
    a, b = RewardModel(tiny_backbone(seed=7), seed=7), RewardModel(tiny_backbone(seed=7), seed=7)
    c = RewardModel(tiny_backbone(seed=8), seed=8)
    pair = PASSWORD_RESET
    assert torch.equal(a.score(pair.prompt, pair.chosen, tokenizer), b.score(pair.prompt, pair.chosen, tokenizer))
    assert not torch.equal(a.score(pair.prompt, pair.chosen, tokenizer), c.score(pair.prompt, pair.chosen, tokenizer))


def test_value_model_head_at_every_position(tokenizer):
    backbone = tiny_backbone(seed=0)
    value, reward = ValueModel(backbone), RewardModel(backbone)
    with torch.no_grad():
        value.head.weight.copy_(reward.head.weight)
    ids, mask = _batch(tokenizer, "right")
    with torch.no_grad():
        values = value(ids, mask)
    assert values.shape == ids.shape
    assert_close(values[mask == 1], reward.token_scores(ids, mask)[mask == 1])


def test_value_model_round_trip(tmp_path, tokenizer):
    value = ValueModel(tiny_backbone(seed=2))
    ids, mask = _batch(tokenizer, "right")
    value.save_pretrained(tmp_path / "vm")
    with torch.no_grad():
        assert torch.equal(ValueModel.from_pretrained(tmp_path / "vm")(ids, mask), value(ids, mask))


def test_score_does_not_change_training_mode_or_grad(reward_model, tokenizer):
    reward_model.train()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = reward_model.score("q", "a", tokenizer)
    assert reward_model.training and not out.requires_grad


# --- defects a practitioner hit (each test failed before its fix) ---------------------------------

def test_score_leaves_dropout_off_for_a_model_wrapped_in_training_mode(tokenizer):
    """Defect 1: RewardModel() starts in nn.Module's training mode; score() used to "restore" it,
    switching on the backbone's dropout. The model now takes its mode from the backbone."""
    backbone = tiny_backbone(seed=0, resid_pdrop=0.5, attn_pdrop=0.5, embd_pdrop=0.5)  # eval mode
    model = RewardModel(backbone)
    ids, mask = _batch(tokenizer, "right")
    with torch.no_grad():
        before = model(ids, mask)
        model.score("Q?", ["A."], tokenizer)
        assert_close(model(ids, mask), before, rtol=0, atol=0)
    assert not any(m.training for m in model.modules())


def test_from_sequence_classifier_keeps_the_classifier_in_eval_mode(tokenizer):
    config = tiny_backbone().config.__class__(**{**tiny_backbone().config.to_dict(), "num_labels": 1,
                                                  "resid_pdrop": 0.5, "embd_pdrop": 0.5})
    classifier = GPT2ForSequenceClassification(config).eval()
    model = RewardModel.from_sequence_classifier(classifier)
    model.score("Q?", ["A."], tokenizer)
    assert not any(m.training for m in classifier.modules())


def test_max_length_longer_than_the_context_and_a_small_vocabulary_are_named(tokenizer):
    """Defect 3: a max_length past the position table or ids past the embedding table used to
    fail as an IndexError (a device-side assert on GPU)."""
    from rmlearn import synthetic_preferences, train_reward_model

    model = RewardModel(tiny_backbone(n_positions=32))
    with pytest.raises(ValueError, match="max_length=64 .* context of 32"):
        train_reward_model(model, tokenizer, synthetic_preferences(4), max_length=64, progress=False)
    with pytest.raises(ValueError, match="max_length=64 .* context of 32"):
        model.max_length = 64
    from transformers import GPT2Config, GPT2Model

    small = RewardModel(GPT2Model(GPT2Config(vocab_size=100, n_embd=32, n_layer=1, n_head=4)))
    with pytest.raises(ValueError, match=r"token id \d+ .* vocabulary of 100"):
        small.score("How do I reset my password?", ["Click 'Forgot password'."], tokenizer)
    with pytest.raises(ValueError, match=r"token id \d+ .* vocabulary of 100"):
        train_reward_model(small, tokenizer, synthetic_preferences(4), progress=False)


def test_trained_max_length_is_used_for_scoring_and_saved(tokenizer, tmp_path):
    """Defect 2: the max_length a model was trained with is what it scores with, after a save too."""
    from rmlearn import evaluate, synthetic_preferences, train_reward_model
    from rmlearn.inputs import encode_batch

    data = synthetic_preferences(8, seed=3)
    model = RewardModel(tiny_backbone(seed=0))
    train_reward_model(model, tokenizer, data, epochs=1, max_length=16, progress=False)
    assert model.max_length == 16
    prompt, response = PASSWORD_RESET.prompt, PASSWORD_RESET.chosen  # 40 tokens
    with torch.no_grad():
        expected = model(*encode_batch(tokenizer, [prompt], [response], 16))
    assert_close(model.score(prompt, [response], tokenizer), expected)
    model.save_pretrained(tmp_path / "rm", tokenizer=tokenizer)
    loaded = RewardModel.from_pretrained(tmp_path / "rm")
    assert loaded.max_length == 16
    assert_close(loaded.score(prompt, [response], tokenizer), expected)
    chosen = model.score([p.prompt for p in data], [p.chosen for p in data], tokenizer)
    rejected = model.score([p.prompt for p in data], [p.rejected for p in data], tokenizer)
    assert evaluate(loaded, tokenizer, data)["mean_gap"] == pytest.approx((chosen - rejected).mean().item(), abs=1e-6)


def test_mpt_context_length_is_read_from_max_seq_len():
    """Defect 13: MPT names its context max_seq_len; no truncation was applied."""
    from transformers import MptConfig, MptModel

    config = MptConfig(d_model=32, n_heads=4, n_layers=1, max_seq_len=48, vocab_size=300)
    assert RewardModel(MptModel(config)).max_length == 48


def test_score_gives_the_same_numbers_on_one_thread_and_on_several(reward_model, tokenizer):
    """A small CPU model scores its batches side by side, one thread each: each batch's numbers are
    one thread's, so the thread count does not change them (and the order is the input's)."""
    from rmlearn import synthetic_preferences

    data = synthetic_preferences(70, seed=3)
    prompts, responses = [p.prompt for p in data] * 2, [p.chosen for p in data] + [p.rejected for p in data]
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = reward_model.score(prompts, responses, tokenizer, batch_size=16)  # 9 batches, in this thread
        torch.set_num_threads(2)
        two = reward_model.score(prompts, responses, tokenizer, batch_size=16)  # side by side on 2 threads
    finally:
        torch.set_num_threads(before)
    assert torch.equal(one, two)
    alone = torch.cat([reward_model.score(p, r, tokenizer) for p, r in zip(prompts[:5], responses[:5])])
    torch.testing.assert_close(two[:5], alone, atol=1e-5, rtol=0)  # input order, whatever the batching
