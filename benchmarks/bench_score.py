"""Scoring throughput: ``RewardModel.score`` vs ``transformers`` on the same weights.

The texts are the benchmark's 1032 responses (chosen and rejected, 11 to 53 tokens), in their
given order, so every batch mixes lengths. Each side tokenizes its own texts inside the timer.
Baselines: ``GPT2ForSequenceClassification`` called on ``tokenizer(..., padding=True)`` batches
under ``torch.inference_mode()``, and a ``text-classification`` pipeline; both with torch's
default thread count (forward only: it is the slow case) and with one thread (rmlearn's setting
for a small CPU model).
"""

from __future__ import annotations

import statistics
import time

import torch

from benchmarks import common

BATCH = 64


def _texts():
    data = common.preference_data()
    prompts = [p.prompt for p in data] * 2
    responses = [p.chosen for p in data] + [p.rejected for p in data]
    return prompts, responses


def _hf_forward(classifier, tok, texts: list[str]) -> torch.Tensor:
    out = []
    with torch.inference_mode():
        for i in range(0, len(texts), BATCH):
            batch = tok(texts[i:i + BATCH], padding=True, return_tensors="pt")
            out.append(classifier(**batch).logits.squeeze(-1))  # (B,)
    return torch.cat(out)


def _pipeline_scores(pipe, texts: list[str]) -> torch.Tensor:
    return torch.tensor([r["score"] for r in pipe(texts, batch_size=BATCH, function_to_apply="none")])


def bench(repeats: int = 3, log=print) -> dict:
    import transformers
    from transformers import pipeline

    from rmlearn import course_tokenizer

    transformers.logging.set_verbosity_error()
    tok = course_tokenizer()
    prompts, responses = _texts()
    texts = [p + "\n" + r + tok.eos_token for p, r in zip(prompts, responses, strict=True)]  # the same ids as rmlearn
    model, classifier = common.reward_model(), common.sequence_classifier()
    pipe = pipeline("text-classification", model=classifier, tokenizer=tok, device="cpu")
    default = torch.get_num_threads()
    runs = {
        "rmlearn": lambda: model.score(prompts, responses, tok, batch_size=BATCH),
        "hf_forward": lambda: _hf_forward(classifier, tok, texts),
        "hf_pipeline": lambda: _pipeline_scores(pipe, texts),
    }
    reference = runs["rmlearn"]()
    agreement = {name: (fn() - reference).abs().max().item() for name, fn in runs.items() if name != "rmlearn"}
    times: dict[str, list[float]] = {}
    try:
        for _ in range(repeats):
            for name, fn in runs.items():
                for threads in {"rmlearn": (default,), "hf_forward": (default, 1), "hf_pipeline": (1,)}[name]:
                    torch.set_num_threads(threads)
                    key = name if name == "rmlearn" else f"{name}_{'1thread' if threads == 1 else 'default'}"
                    start = time.perf_counter()
                    fn()
                    times.setdefault(key, []).append(time.perf_counter() - start)
    finally:
        torch.set_num_threads(default)
    result = {"responses": len(texts), "batch_size": BATCH, "max_abs_score_diff": agreement}
    for key, values in times.items():
        rate = [len(texts) / t for t in values]
        result[key] = dict(median=statistics.median(rate), min=min(rate), max=max(rate))
        log(f"  {key:22s} {result[key]['median']:8.0f} responses/s  (min {min(rate):.0f}, max {max(rate):.0f})")
    best = max((k for k in times if k != "rmlearn"), key=lambda k: result[k]["median"])
    result["best_baseline"] = best
    result["speedup_vs_best"] = result["rmlearn"]["median"] / result[best]["median"]
    return result


if __name__ == "__main__":
    print(bench())
