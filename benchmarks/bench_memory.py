"""Bytes per parameter that training keeps, per precision setting (docs/practitioners.md's table).

    python benchmarks/bench_memory.py

Counted from the tensors themselves after one training step of a small GPT-2 (weights, gradients,
AdamW's two moments; activations excluded: they depend on batch and length, and gradient
checkpointing cuts them), so the figures hold for any size of the same architecture family.
"""

from __future__ import annotations

import torch


def _bytes(tensors) -> int:
    return sum(t.numel() * t.element_size() for t in tensors if torch.is_tensor(t))


def training_bytes_per_parameter(dtype: torch.dtype, lora: bool) -> dict[str, float]:
    from rmlearn import (
        RewardModel,
        course_tokenizer,
        synthetic_preferences,
        tiny_backbone,
        train_reward_model,
    )

    backbone = tiny_backbone(seed=0, n_embd=256, n_layer=4, n_head=4).to(dtype)
    n = sum(p.numel() for p in backbone.parameters())  # the decoder's own parameters
    if lora:
        from peft import LoraConfig, get_peft_model

        backbone = get_peft_model(backbone, LoraConfig(r=8, target_modules=["c_attn", "c_proj", "c_fc"],
                                                       fan_in_fan_out=True, lora_dropout=0.0))
    model = RewardModel(backbone)
    history = train_reward_model(model, course_tokenizer(), synthetic_preferences(16), epochs=1, progress=False)
    state = history.optimizer_state["optimizer"]["state"]
    moments = [t for s in state.values() for k, t in s.items() if k != "step"]
    params = list(model.parameters())
    return {"weights": _bytes(params) / n, "gradients": _bytes(p.grad for p in params) / n,
            "optimizer": _bytes(moments) / n, "total": (_bytes(params) + _bytes(p.grad for p in params)
                                                        + _bytes(moments)) / n,
            "trainable %": 100 * sum(p.numel() for p in params if p.requires_grad) / n}


def main() -> None:
    rows = {"fp32 model, full fine-tuning": (torch.float32, False),
            "bf16 model, full fine-tuning (fp32 masters of the trained weights)": (torch.bfloat16, False),
            "bf16 model + LoRA r=8 (attention and MLP)": (torch.bfloat16, True),
            "fp32 model + LoRA r=8": (torch.float32, True)}
    print("| setting | weights | gradients | AdamW | total B/param | trainable |")
    print("|---|---|---|---|---|---|")
    for name, (dtype, lora) in rows.items():
        r = training_bytes_per_parameter(dtype, lora)
        print(f"| {name} | {r['weights']:.2f} | {r['gradients']:.2f} | {r['optimizer']:.2f} | "
              f"**{r['total']:.2f}** | {r['trainable %']:.1f} % |")


if __name__ == "__main__":
    main()
