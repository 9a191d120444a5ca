"""Shared set-up for the benchmarks and the TRL parity tests: the same weights, the same data.

TRL is a benchmark/test-only extra; nothing under ``rmlearn/`` imports it.

How texts map to token ids (checked by ``tests/test_trl_parity.py``): rmlearn encodes
``[prompt ; "\\n" + response ; EOS]``. TRL's explicit-prompt format concatenates ``prompt + chosen``
as text and appends the EOS token as text before tokenizing, so giving TRL
``{"prompt": p, "chosen": "\\n" + c, "rejected": "\\n" + r}`` yields the very same ids with the course
tokenizer. ``GPT2ForSequenceClassification`` reads the rightmost non-PAD token; with PAD (id 1)
distinct from EOS (id 0) and right padding, that is the EOS token rmlearn's EOS pooling reads.
"""

from __future__ import annotations

import copy
from typing import Any

SEED = 0
BATCH_SIZE = 16  # preference pairs per step
LR = 3e-3  # rmlearn's default for the tiny model
N_SYNTHETIC = 500  # + the 16 support pairs


def preference_data(n_synthetic: int = N_SYNTHETIC, seed: int = SEED) -> list:
    """The benchmark's preference pairs: synthetic pairs plus the course's support pairs."""
    from rmlearn import support_pairs, synthetic_preferences

    return synthetic_preferences(n_synthetic, seed=seed) + support_pairs()


def reward_model(seed: int = SEED):
    """rmlearn's model on ``tiny_backbone(seed)`` with the head seeded by ``seed``."""
    from rmlearn import RewardModel, tiny_backbone

    return RewardModel(tiny_backbone(seed=seed), seed=seed)


def sequence_classifier(seed: int = SEED):
    """A ``GPT2ForSequenceClassification`` (num_labels=1) holding exactly ``reward_model(seed)``'s weights."""
    import torch
    from transformers import GPT2ForSequenceClassification

    source = reward_model(seed)
    config = copy.deepcopy(source.backbone.config)
    config.num_labels = 1
    config.pad_token_id = source.backbone.config.pad_token_id
    classifier = GPT2ForSequenceClassification(config)
    with torch.no_grad():
        classifier.transformer.load_state_dict(source.backbone.state_dict())
        classifier.score.weight.copy_(source.head.weight)  # (1, D), no bias in either
    return classifier.eval()


def trl_records(pairs) -> list[dict[str, str]]:
    """TRL's explicit-prompt rows giving the same token ids as rmlearn (see the module docstring)."""
    return [{"prompt": p.prompt, "chosen": "\n" + p.chosen, "rejected": "\n" + p.rejected} for p in pairs]


def trl_config(output_dir: str, **overrides: Any):
    """A ``RewardConfig`` set up like rmlearn's trainer: AdamW, constant LR, no warmup, no weight
    decay, no gradient clipping, no centering, fp32 on CPU, no gradient checkpointing, no saving,
    no evaluation, no reporting."""
    from trl import RewardConfig

    settings: dict[str, Any] = dict(
        output_dir=output_dir,
        per_device_train_batch_size=BATCH_SIZE,
        num_train_epochs=1,
        learning_rate=LR,
        lr_scheduler_type="constant",
        warmup_steps=0,
        weight_decay=0.0,
        adam_beta1=0.9, adam_beta2=0.999, adam_epsilon=1e-8,  # torch.optim.AdamW's defaults
        max_grad_norm=0.0,  # rmlearn does not clip gradients
        center_rewards_coefficient=None,
        use_cpu=True,
        bf16=False,
        fp16=False,
        activation_checkpointing=False,  # TRL turns gradient checkpointing on by default; rmlearn does not
        report_to="none",
        save_strategy="no",
        eval_strategy="no",
        logging_strategy="no",
        disable_tqdm=True,
        max_length=None,
        dataloader_num_workers=0,
        seed=SEED,
    )
    settings.update(overrides)
    return RewardConfig(**settings)


# rmlearn's settings that match trl_config: constant lr, no warm-up, no clipping (the course's
# defaults warm up, decay and clip; the comparison is of the same optimisation, not of recipes)
AS_TRL = {"lr_schedule": "constant", "warmup_ratio": 0.0, "max_grad_norm": None}


def trl_trainer(model, pairs, tokenizer, output_dir: str, **overrides: Any):
    """TRL's ``RewardTrainer`` on ``pairs`` (tokenized by TRL itself from ``trl_records``)."""
    from datasets import Dataset
    from trl import RewardTrainer

    return RewardTrainer(
        model=model,
        args=trl_config(output_dir, **overrides),
        train_dataset=Dataset.from_list(trl_records(pairs)),
        processing_class=tokenizer,
    )
