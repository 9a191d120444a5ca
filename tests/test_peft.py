"""LoRA (PEFT) reward models: only the adapters and the head train, and save_pretrained writes a
merged transformers checkpoint that Auto, the pipeline and rmlearn load with the same scores."""

from __future__ import annotations

import pytest
import torch
from torch.testing import assert_close

from rmlearn import RewardModel, support_pairs, synthetic_preferences, tiny_backbone, train_reward_model

try:
    from peft import LoraConfig, get_peft_model
except ImportError as exc:  # peft is in the [test] extra: CI has it
    from conftest import unavailable

    unavailable(f"peft is not installed: {exc}")


def _lora_model(dtype=torch.float32) -> RewardModel:
    backbone = tiny_backbone(seed=0).to(dtype)
    config = LoraConfig(r=4, lora_alpha=8, target_modules=["c_attn", "c_proj"], lora_dropout=0.0,
                        fan_in_fan_out=True)  # GPT-2's Conv1D stores weights transposed
    return RewardModel(get_peft_model(backbone, config), seed=0)


def _trained_lora_model(tokenizer, dtype=torch.float32) -> tuple[RewardModel, dict]:
    model = _lora_model(dtype)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    train_reward_model(model, tokenizer, synthetic_preferences(32, seed=0), epochs=2, lr=1e-2, progress=False)
    return model, before


def test_lora_reward_model_trains_only_the_adapters_and_the_head(tokenizer):
    model, before = _trained_lora_model(tokenizer)
    changed = {n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == {n for n in before if "lora_" in n} | {"head.weight"}
    assert changed == trainable  # every adapter and the head moved; no base weight did


def test_lora_save_is_a_merged_checkpoint_that_auto_pipeline_and_rmlearn_score_the_same(tokenizer, tmp_path):
    """Defect 6: the LoRA model was saved with base_layer/lora_* keys; Auto then loaded the adapted
    projections at random (scores off by 0.31, 3.9 after training)."""
    from safetensors import safe_open
    from transformers import AutoModelForSequenceClassification, pipeline

    model, _ = _trained_lora_model(tokenizer)
    model.save_pretrained(tmp_path, tokenizer=tokenizer)
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        assert not [k for k in f.keys() if "lora_" in k or "base_layer" in k]
    pairs = support_pairs()[:4]
    prompts, responses = [p.prompt for p in pairs], [p.chosen for p in pairs]
    expected = model.score(prompts, responses, tokenizer)
    assert expected.std() > 1e-3
    assert_close(RewardModel.from_pretrained(tmp_path).score(prompts, responses, tokenizer), expected)
    hf = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    classify = pipeline("text-classification", model=hf, tokenizer=str(tmp_path), function_to_apply="none")
    piped = torch.tensor([o["score"] for o in classify([p + "\n" + r for p, r in zip(prompts, responses)])])
    assert_close(piped, expected, atol=1e-5, rtol=1e-5)
    assert any("lora_" in n for n, _ in model.named_parameters())  # the model itself keeps its adapters


def test_lora_over_a_bf16_backbone_keeps_the_frozen_weights_in_bf16(tokenizer):
    """Mixed precision upcasts only what trains (adapters, head) to fp32 master weights."""
    model, _ = _trained_lora_model(tokenizer, torch.bfloat16)
    dtypes = {n: p.dtype for n, p in model.named_parameters()}
    assert {d for n, d in dtypes.items() if "lora_" in n or n == "head.weight"} == {torch.float32}
    assert {d for n, d in dtypes.items() if "lora_" not in n and n != "head.weight"} == {torch.bfloat16}


def test_a_quantised_backbone_trains_only_with_adapters(tokenizer):
    """The check reads what transformers sets on a quantised model (config.quantization_config);
    no quantisation library runs here (bitsandbytes needs a GPU)."""
    from transformers import BitsAndBytesConfig

    backbone = tiny_backbone(seed=0)
    backbone.config.quantization_config = BitsAndBytesConfig(load_in_4bit=True)
    with pytest.raises(ValueError, match=r"quantised \(bitsandbytes\).*LoRA adapters"):
        train_reward_model(RewardModel(backbone), tokenizer, synthetic_preferences(4), progress=False)
    lora = get_peft_model(backbone, LoraConfig(r=2, target_modules=["c_attn"], fan_in_fan_out=True))
    history = train_reward_model(RewardModel(lora), tokenizer, synthetic_preferences(4), epochs=1, progress=False)
    assert history.optimizer_steps == 1
