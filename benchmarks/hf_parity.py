"""Parity of rmlearn's RewardModel with transformers on tiny random decoders of many architectures.

For each architecture (random init from a small config, vocabulary matched to the course
tokenizer, nothing downloaded) it measures the largest absolute difference between rmlearn's
reward and transformers' own, on the same weights:

- ``forward``: ``RewardModel`` vs the ``*ForSequenceClassification`` class it wraps, on a
  right-padded batch;
- ``saved→Auto``: ``save_pretrained`` then ``AutoModelForSequenceClassification.from_pretrained``
  (no weight may be missing);
- ``pipeline``: ``pipeline("text-classification", function_to_apply="none")`` on
  ``prompt + "\\n" + response``, one text at a time, vs ``RewardModel.score``;
- ``pipeline, left-padded batch``: the same texts in one left-padded batch (informative: transformers
  counts positions from the first column, padding included, rmlearn from the first real token, so
  models with position embeddings differ; right-padded batches match);
- ``HF→rmlearn``: ``RewardModel.from_pretrained`` of a checkpoint transformers saved;
- ``round trip``: ``RewardModel.from_pretrained`` of rmlearn's own checkpoint;
- ``CausalLM``: ``RewardModel(*ForCausalLM)`` vs ``RewardModel`` of its decoder.

Run: ``python benchmarks/hf_parity.py`` (about 20 s on 2 CPU cores); tests/test_hf_interop.py
runs the same checks on a few architectures.
"""

from __future__ import annotations

import tempfile
import warnings
from pathlib import Path

import torch

SMALL = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64,
             max_position_embeddings=128)


LEFT = "pipeline, left-padded batch"  # informative: transformers counts positions from the padding


def tiny_configs(vocab_size: int, eos_id: int, pad_id: int) -> dict[str, object]:
    """One small config per architecture that transformers has, keyed by a display name."""
    import transformers as tf

    ids = dict(vocab_size=vocab_size, eos_token_id=eos_id, bos_token_id=eos_id, pad_token_id=pad_id)
    kv = dict(num_key_value_heads=2)
    wanted = {
        "GPT-2": ("GPT2Config", dict(n_embd=32, n_layer=2, n_head=4, n_positions=128)),
        "Llama": ("LlamaConfig", {**SMALL, **kv}),
        "Qwen2": ("Qwen2Config", {**SMALL, **kv}),
        "Mistral": ("MistralConfig", {**SMALL, **kv}),
        "GPT-NeoX": ("GPTNeoXConfig", SMALL),
        "OPT (proj 16)": ("OPTConfig", dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                            ffn_dim=64, max_position_embeddings=128,
                                            word_embed_proj_dim=16)),
        "Phi": ("PhiConfig", SMALL),
        "Gemma": ("GemmaConfig", {**SMALL, **kv, "head_dim": 8}),
        "Bloom": ("BloomConfig", dict(hidden_size=32, n_layer=2, n_head=4)),
        "Falcon": ("FalconConfig", dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4)),
    }
    return {name: getattr(tf, cls)(**ids, **kw) for name, (cls, kw) in wanted.items() if hasattr(tf, cls)}


def seeded(factory, config, seed: int = 0):
    """Build a transformers model from a config with a seeded init, leaving the global RNG alone."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return factory.from_config(config).eval()


def texts():
    from rmlearn import support_pairs

    pairs = support_pairs()[:4]
    return [p.prompt for p in pairs], [p.chosen if i % 2 else p.rejected for i, p in enumerate(pairs)]


def check(name: str, config, tokenizer, workdir: Path) -> dict[str, float]:
    """Max |difference| between rmlearn's and transformers' rewards for one architecture, per check."""
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, pipeline

    from rmlearn import RewardModel
    from rmlearn.inputs import encode_batch

    config = config.__class__(**{**config.to_dict(), "num_labels": 1})
    prompts, responses = texts()
    ids, mask = encode_batch(tokenizer, prompts, responses, side="right")
    hf = seeded(AutoModelForSequenceClassification, config)
    rm = RewardModel.from_sequence_classifier(hf)
    with torch.no_grad():  # a head of unit scale, so that differences are relative to rewards ~1
        rm.head.weight.copy_(torch.randn(rm.head.weight.shape, generator=torch.Generator().manual_seed(0)))
    rows: dict[str, float] = {}
    with torch.no_grad():
        ours = rm(ids, mask)
        rows["max abs reward"] = ours.abs().max().item()
        rows["forward"] = (ours - hf(input_ids=ids, attention_mask=mask).logits[:, 0]).abs().max().item()
        score = rm.score(prompts, responses, tokenizer)
        rm.save_pretrained(workdir / "rm", tokenizer=tokenizer)
        reloaded, info = AutoModelForSequenceClassification.from_pretrained(workdir / "rm", output_loading_info=True)
        if info["missing_keys"]:
            raise AssertionError(f"{name}: weights missing after save: {info['missing_keys']}")
        theirs = reloaded.eval()(input_ids=ids, attention_mask=mask).logits[:, 0]
        rows["saved→Auto"] = (ours - theirs).abs().max().item()
        classify = pipeline("text-classification", model=str(workdir / "rm"), function_to_apply="none")
        piped = torch.tensor([out["score"] for out in classify([p + "\n" + r for p, r in zip(prompts, responses)])])
        rows["pipeline"] = (score - piped).abs().max().item()
        classify.tokenizer.padding_side = "left"  # positions then start at the padding (rmlearn's do not)
        left = torch.tensor([o["score"] for o in classify([p + "\n" + r for p, r in zip(prompts, responses)],
                                                          batch_size=len(prompts))])
        rows[LEFT] = (score - left).abs().max().item()
        hf.save_pretrained(workdir / "hf")
        rows["HF→rmlearn"] = (RewardModel.from_pretrained(workdir / "hf")(ids, mask) - ours).abs().max().item()
        rows["round trip"] = (RewardModel.from_pretrained(workdir / "rm").score(prompts, responses, tokenizer)
                              - score).abs().max().item()
        lm = seeded(AutoModelForCausalLM, config, seed=1)
        rows["CausalLM"] = (RewardModel(lm, seed=2)(ids, mask)
                            - RewardModel(lm.base_model, seed=2)(ids, mask)).abs().max().item()
    return rows


def parity_table(names: list[str] | None = None) -> dict[str, dict[str, float]]:
    """{architecture: {check: max abs diff}} for the architectures named (all by default)."""
    from rmlearn import course_tokenizer

    tokenizer = course_tokenizer()
    configs = tiny_configs(len(tokenizer), tokenizer.eos_token_id, tokenizer.pad_token_id)
    table = {}
    for name, config in configs.items():
        if names is None or name in names:
            with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
                warnings.simplefilter("ignore")
                table[name] = check(name, config, tokenizer, Path(tmp))
    return table


def markdown(table: dict[str, dict[str, float]]) -> str:
    checks = list(next(iter(table.values())))
    lines = ["| architecture | " + " | ".join(checks) + " |", "|---" * (len(checks) + 1) + "|"]
    lines += [f"| {name} | " + " | ".join(f"{row[c]:.2g}" for c in checks) + " |" for name, row in table.items()]
    return "\n".join(lines)


if __name__ == "__main__":
    import os
    import time

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    start = time.perf_counter()
    print(markdown(parity_table()))
    print(f"\n({time.perf_counter() - start:.1f} s)")
