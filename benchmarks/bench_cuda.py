"""rmlearn against TRL's RewardTrainer on one CUDA GPU: pairs/s and peak memory, bf16, with and
without gradient checkpointing. Never run by the tests or `python -m benchmarks` (no GPU there).

    python benchmarks/bench_cuda.py                 # a 366M-parameter Qwen2-style model, < 5 min
    python benchmarks/bench_cuda.py --size small    # 76M, for a quick look
    python benchmarks/bench_cuda.py --smoke         # a tiny model on the CPU: checks the script runs

The model is randomly initialised from a config (nothing is downloaded); the tokenizer is the
course's (vocabulary 1024), texts are synthetic preference pairs made longer with filler so that a
batch is about 256 tokens. Both sides train the same weights with fp32 master weights and the
forward under bf16 autocast (rmlearn: the bf16 model, upcast for training; TRL: an fp32 copy with
`bf16=True`), AdamW, constant lr, batch 16 pairs, the same number of steps after a warm-up.
"""

from __future__ import annotations

import argparse
import copy
import json
import tempfile
import time

import torch

SIZES = {  # Qwen2-style decoders; parameters without the (tiny) embedding table
    "small": dict(hidden_size=768, intermediate_size=2048, num_hidden_layers=12, num_attention_heads=12,
                  num_key_value_heads=4),
    "smoke": dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
                  num_key_value_heads=2),
    "medium": dict(hidden_size=1024, intermediate_size=4096, num_hidden_layers=24, num_attention_heads=16,
                   num_key_value_heads=4),
}
BATCH, STEPS, WARMUP = 16, 20, 3


def _data(n: int):
    from rmlearn import PreferencePair, synthetic_preferences

    pad = " Thanks for writing, we value you, let me explain how this works in detail." * 8
    return [PreferencePair(p.prompt + pad, p.chosen, p.rejected) for p in synthetic_preferences(n, seed=0)]


def _classifier(size: str, tokenizer):
    from transformers import Qwen2Config, Qwen2ForSequenceClassification

    config = Qwen2Config(vocab_size=len(tokenizer), max_position_embeddings=1024, num_labels=1,
                         pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                         **SIZES[size])
    torch.manual_seed(0)
    return Qwen2ForSequenceClassification(config).to(torch.bfloat16)


def _sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _peak_gib(device: str) -> float:
    return torch.cuda.max_memory_allocated() / 2**30 if device == "cuda" else float("nan")


def _rmlearn(classifier, tokenizer, pairs, checkpointing: bool, device: str) -> dict:
    from rmlearn import RewardModel, train_reward_model

    model = RewardModel.from_sequence_classifier(copy.deepcopy(classifier)).to(device)
    train_reward_model(model, tokenizer, pairs[:WARMUP * BATCH], epochs=1, batch_size=BATCH, lr=1e-5,
                       gradient_checkpointing=checkpointing, progress=False)
    _sync(device)
    start = time.perf_counter()
    history = train_reward_model(model, tokenizer, pairs[:STEPS * BATCH], epochs=1, batch_size=BATCH, lr=1e-5,
                                 gradient_checkpointing=checkpointing, progress=False)
    _sync(device)
    seconds = time.perf_counter() - start
    return {"pairs_per_s": STEPS * BATCH / seconds, "peak_gib": _peak_gib(device), "last_loss": history.loss[-1]}


def _trl(classifier, tokenizer, pairs, checkpointing: bool, device: str) -> dict:
    from benchmarks import common

    model = copy.deepcopy(classifier).float().to(device)
    with tempfile.TemporaryDirectory() as out:
        overrides = dict(use_cpu=device == "cpu", bf16=True, learning_rate=1e-5, activation_checkpointing=checkpointing,
                         per_device_train_batch_size=BATCH)
        common.trl_trainer(model, pairs[:WARMUP * BATCH], tokenizer, out, **overrides).train()
        _sync(device)
        trainer = common.trl_trainer(model, pairs[:STEPS * BATCH], tokenizer, out, **overrides)
        start = time.perf_counter()
        trainer.train()
        _sync(device)
        seconds = time.perf_counter() - start
    return {"pairs_per_s": STEPS * BATCH / seconds, "peak_gib": _peak_gib(device)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", choices=["small", "medium"], default="medium")
    parser.add_argument("--smoke", action="store_true", help="a tiny model on the CPU: does the script run?")
    args = parser.parse_args()
    device, size = ("cpu", "smoke") if args.smoke else ("cuda", args.size)
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("bench_cuda.py needs a CUDA GPU (or --smoke)")
    from rmlearn import course_tokenizer

    tokenizer = course_tokenizer()
    classifier = _classifier(size, tokenizer)
    n_params = sum(p.numel() for p in classifier.parameters())
    pairs = _data((STEPS + WARMUP) * BATCH)
    print(f"{torch.cuda.get_device_name() if device == 'cuda' else 'CPU'}, {n_params / 1e6:.0f}M parameters, bf16, batch {BATCH} pairs, "
          f"{STEPS} timed steps")
    results = {}
    for checkpointing in (False, True):
        for name, run in (("rmlearn", _rmlearn), ("trl", _trl)):
            key = f"{name}{' + checkpointing' if checkpointing else ''}"
            results[key] = run(classifier, tokenizer, pairs, checkpointing, device)
            print(f"  {key:28s} {results[key]['pairs_per_s']:7.1f} pairs/s   peak {results[key]['peak_gib']:.2f} GiB")
            if device == "cuda":
                torch.cuda.empty_cache()
    for suffix in ("", " + checkpointing"):
        ratio = results[f"rmlearn{suffix}"]["pairs_per_s"] / results[f"trl{suffix}"]["pairs_per_s"]
        print(f"rmlearn / TRL{suffix}: {ratio:.2f}x")
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
