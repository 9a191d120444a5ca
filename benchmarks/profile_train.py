"""Where the time of a training step goes, and what each speed-up in rmlearn buys.

Each measurement times one ingredient both ways in the same process, alternating, and keeps the
median: threads (torch's default vs one thread for the tiny model), tokenization (a tokenizer call
per text vs ``encode_many``), the AdamW implementation (for-loop, foreach, fused), passing
``position_ids``, GPT-2's ``gelu_new`` vs the fused kernel, and 2 data-parallel shards vs 2 threads per
op. ``profile_steps`` lists the top functions of a cProfile'd training run.
"""

from __future__ import annotations

import cProfile
import io
import os
import pstats
import statistics
import time

import torch

from benchmarks import common


def _median_time(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _batches(n_steps: int = 10):
    """The first ``n_steps`` training batches exactly as rmlearn builds them (ids, mask)."""
    from rmlearn import course_tokenizer
    from rmlearn.inputs import encode_many, pad_batch

    tok, data = course_tokenizer(), common.preference_data()
    out = []
    for i in range(n_steps):
        part = data[i * common.BATCH_SIZE:(i + 1) * common.BATCH_SIZE]
        prompts = [p.prompt for p in part] * 2
        seqs = encode_many(tok, prompts, [p.chosen for p in part] + [p.rejected for p in part])
        out.append(pad_batch(seqs, tok.pad_token_id))
    return out


def _steps(model, optimizer, batches, position_ids: bool = True) -> None:
    for ids, mask in batches:
        if position_ids:
            scores = model(ids, mask)
        else:  # the plain GPT-2 path: positions 0..T-1, correct for right padding only
            hidden = model.backbone(input_ids=ids, attention_mask=mask, use_cache=False).last_hidden_state
            scores = model.head(hidden[torch.arange(len(ids)), mask.sum(1) - 1]).squeeze(-1)
        r_chosen, r_rejected = scores.view(2, -1)  # (B,), (B,)
        loss = -torch.nn.functional.logsigmoid(r_chosen - r_rejected).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()


def threads(repeats: int = 5) -> dict:
    """Seconds for 10 training steps with torch's default thread count vs one thread."""
    batches, default = _batches(), torch.get_num_threads()
    result = {"default_threads": default, "load_avg_before": os.getloadavg()[0]}
    times: dict[str, list[float]] = {"default": [], "one": []}
    model = common.reward_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=common.LR, foreach=True)
    _steps(model, optimizer, batches[:1])  # warm-up
    try:
        for _ in range(repeats):
            for name, n in (("default", default), ("one", 1)):
                torch.set_num_threads(n)
                times[name].append(_median_time(lambda: _steps(model, optimizer, batches), 1))
    finally:
        torch.set_num_threads(default)
    result.update({f"{k}_s": statistics.median(v) for k, v in times.items()})
    result["gain"] = result["default_s"] / result["one_s"]
    return result


def tokenization(repeats: int = 5) -> dict:
    """Seconds to encode the benchmark's 1032 texts: ``encode`` per text vs ``encode_many``."""
    from rmlearn import course_tokenizer
    from rmlearn.inputs import encode, encode_many

    tok, data = course_tokenizer(), common.preference_data()
    prompts = [p.prompt for p in data] * 2
    responses = [p.chosen for p in data] + [p.rejected for p in data]
    assert encode_many(tok, prompts, responses) == [encode(tok, p, r) for p, r in zip(prompts, responses, strict=True)]
    one = _median_time(lambda: [encode(tok, p, r) for p, r in zip(prompts, responses, strict=True)], repeats)
    many = _median_time(lambda: encode_many(tok, prompts, responses), repeats)
    return {"texts": len(responses), "per_text_s": one, "encode_many_s": many, "gain": one / many}


def optimizer(repeats: int = 200) -> dict:
    """Milliseconds per AdamW step on the tiny model's parameters (one thread)."""
    model = common.reward_model()
    for p in model.parameters():
        p.grad = torch.full_like(p, 1e-3)
    result = {}
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for name, kw in (("for_loop", {"foreach": False}), ("foreach", {"foreach": True}), ("fused", {"fused": True})):
            opt = torch.optim.AdamW(model.parameters(), lr=1e-6, **kw)
            opt.step()
            result[f"{name}_ms"] = 1000 * _median_time(opt.step, repeats)
    finally:
        torch.set_num_threads(before)
    return result


def position_ids(repeats: int = 5) -> dict:
    """Seconds for 10 steps (one thread) with rmlearn's position_ids vs GPT-2's default positions."""
    batches = _batches()
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    times: dict[str, list[float]] = {"with": [], "without": []}
    try:
        model = common.reward_model()
        optimizer_ = torch.optim.AdamW(model.parameters(), lr=common.LR, foreach=True)
        _steps(model, optimizer_, batches[:1])
        for _ in range(repeats):
            for name, flag in (("with", True), ("without", False)):
                times[name].append(_median_time(lambda f=flag: _steps(model, optimizer_, batches, f), 1))
    finally:
        torch.set_num_threads(before)
    return {f"{k}_s": statistics.median(v) for k, v in times.items()}


def activation(repeats: int = 5) -> dict:
    """Seconds for 10 steps (one thread) with the tiny backbone's ``gelu_new`` (a Python formula) vs
    ``gelu_pytorch_tanh`` (the same function in one kernel), and the largest reward difference."""
    from rmlearn import RewardModel, tiny_backbone

    batches, before = _batches(), torch.get_num_threads()
    torch.set_num_threads(1)
    times: dict[str, list[float]] = {"gelu_new": [], "gelu_pytorch_tanh": []}
    rewards = {}
    try:
        setups = {}
        for act in times:
            model = RewardModel(tiny_backbone(seed=common.SEED, activation_function=act), seed=common.SEED)
            with torch.no_grad():
                rewards[act] = model(*batches[0])  # (2B,)
            setups[act] = (model, torch.optim.AdamW(model.parameters(), lr=common.LR, foreach=True))
            _steps(*setups[act], batches[:1])
        for _ in range(repeats):
            for act, (model, opt) in setups.items():
                times[act].append(_median_time(lambda m=model, o=opt: _steps(m, o, batches), 1))
    finally:
        torch.set_num_threads(before)
    out = {f"{k}_s": statistics.median(v) for k, v in times.items()}
    out["max_abs_reward_diff"] = (rewards["gelu_new"] - rewards["gelu_pytorch_tanh"]).abs().max().item()
    return out


def data_parallel(repeats: int = 5) -> dict:
    """Seconds for ``train_reward_model(threads=2)`` (the fast path) in the training benchmark's setting
    (2048 pairs, batch 32, lr 1e-4, one epoch) with each batch cut into 2 shards run side by side on
    one thread each (rmlearn's choice for a small CPU model) vs one batch whose every op torch
    splits over 2 threads."""
    from benchmarks.bench_train import BATCH_SIZE, LR, PAIRS
    from rmlearn import course_tokenizer, synthetic_preferences, train_reward_model

    tok, data = course_tokenizer(), synthetic_preferences(PAIRS, seed=common.SEED)

    def run(shards: bool) -> tuple[float, float]:
        cpu = time.process_time()  # shards=1: one batch, torch splits each op over the 2 threads
        history = train_reward_model(common.reward_model(), tok, data, epochs=1, batch_size=BATCH_SIZE, lr=LR,
                                     threads=2, shards=2 if shards else 1, progress=False, **common.AS_TRL)
        assert history.shards == (2 if shards else 1), history.shards
        return history.seconds, time.process_time() - cpu

    run(True)  # warm-up
    times: dict[str, list[tuple[float, float]]] = {"shards": [], "op_threads": []}
    for _ in range(repeats):
        times["shards"].append(run(True))
        times["op_threads"].append(run(False))
    out = {f"{k}_s": statistics.median(t for t, _ in v) for k, v in times.items()}
    out.update({f"{k}_cpu_s": statistics.median(c for _, c in v) for k, v in times.items()})
    out["gain"] = out["op_threads_s"] / out["shards_s"]
    return out


def profile_steps(top: int = 12) -> str:
    """cProfile of ``train_reward_model`` on 320 pairs (20 steps, the fast path on one thread): the
    top functions by own time."""
    from rmlearn import course_tokenizer, train_reward_model

    tok, data = course_tokenizer(), common.preference_data()[:320]
    train_reward_model(common.reward_model(), tok, data[:16], epochs=1, threads=1, progress=False)  # warm-up
    profiler = cProfile.Profile()
    model = common.reward_model()
    profiler.enable()
    train_reward_model(model, tok, data, epochs=1, threads=1, progress=False)
    profiler.disable()
    text = io.StringIO()
    pstats.Stats(profiler, stream=text).sort_stats("tottime").print_stats(top)
    return text.getvalue()


def bench(log=print) -> dict:
    from benchmarks.busy import busy_machine

    with busy_machine() as n:
        result = {"threads_busy": threads(repeats=3)}
        result["threads_busy"]["spinning_processes"] = n
    log("  threads, busy machine: " + ", ".join(f"{k}={v:.4g}" for k, v in result["threads_busy"].items()))
    with busy_machine(1) as n:  # one core taken after "auto" counted 2 idle ones: shards do not wait mid-op
        result["data_parallel_one_core_taken"] = data_parallel(repeats=3)
    log("  data_parallel, one core taken: "
        + ", ".join(f"{k}={v:.4g}" for k, v in result["data_parallel_one_core_taken"].items()))
    for name, fn in (("threads", threads), ("tokenization", tokenization), ("optimizer", optimizer),
                     ("position_ids", position_ids), ("activation", activation), ("data_parallel", data_parallel)):
        result[name] = fn()
        log(f"  {name}: " + ", ".join(f"{k}={v:.4g}" for k, v in result[name].items()))
    result["cprofile"] = profile_steps()
    return result


if __name__ == "__main__":
    out = bench()
    print(out["cprofile"])
