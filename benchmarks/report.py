"""Turn ``benchmarks/results.json`` into ``docs/benchmarks.md`` (tables, ratios first) and a plot."""

from __future__ import annotations

from pathlib import Path

LABELS = {"rmlearn": "rmlearn, library default (fast path: 2 shards, threads=\"auto\"; also `rmlearn train`)",
          "rmlearn-1": "rmlearn, threads=1 (the default's 2 shards on 1 thread: the same numbers)",
          "rmlearn-reference": "rmlearn, reference path (threads=None, 1 thread; the course's shipped recipe)",
          "trl-1thread": "TRL, 1 thread", "trl": "TRL, default threads",
          "hf_forward_default": "AutoModelForSequenceClassification, default threads",
          "hf_forward_1thread": "AutoModelForSequenceClassification, 1 thread",
          "hf_pipeline_1thread": "text-classification pipeline, 1 thread"}


SCORE_LABELS = {"rmlearn": "rmlearn `RewardModel.score`, batches side by side, one thread each"}
PLOT_LABELS = {"rmlearn": "rmlearn\ndefault", "rmlearn-1": "rmlearn\nthreads=1",
               "rmlearn-reference": "rmlearn\nreference", "trl-1thread": "TRL\n1 thread",
               "trl": "TRL\ndefault", "hf_pipeline_1thread": "HF pipeline\n1 thread",
               "hf_forward_1thread": "HF model\n1 thread", "hf_forward_default": "HF model\ndefault"}


def _spread(s: dict, fmt: str = ".0f") -> str:
    return f"{s['median']:{fmt}} ({s['min']:{fmt}}–{s['max']:{fmt}})"


def _when(results: dict, part: str) -> str:
    p = results[part]
    note = f" {p['note']}" if p.get("note") else ""
    return f"_Measured {p['measured'].replace('T', ' ')}, 1-minute load average {p['load_avg_1min']:.1f}._{note}"


def _speed_row(t: dict, where: str, label: str, ours: str, impl: str, ratio: str) -> str:
    """One summary row: rmlearn setting ``ours`` against TRL setting ``impl`` (a cut-off run is a bound)."""
    at_least = "≥ " if t[impl].get("timed_out") else ""
    return (f"| training{where}, pairs/s (median), rmlearn {label} | {t[ours]['pairs_per_s']['median']:.0f} | "
            f"{at_least.replace('≥', '≤')}{t[impl]['pairs_per_s']['median']:.0f} ({LABELS[impl]}) | "
            f"**{at_least}{t[impl][ratio]:.2f}×** |")


def _summary(results: dict) -> list[str]:
    rows = ["| What | rmlearn | reference | rmlearn / reference |", "|---|---|---|---|"]
    for part, where in (("train", ""), ("train_busy", ", busy machine")):
        if part not in results:
            continue
        t = results[part]["result"]
        rows += [_speed_row(t, where, "library default", "rmlearn", impl, "speedup") for impl in ("trl", "trl-1thread")]
        rows += [_speed_row(t, where, "threads=1", "rmlearn-1", impl, "speedup_1") for impl in ("trl-1thread", "trl")]
        rows += [_speed_row(t, where, "reference path", "rmlearn-reference", impl, "speedup_reference")
                 for impl in ("trl-1thread", "trl")]
        if "cpu_speedup" in t["trl-1thread"] and part == "train":
            paired = t["trl-1thread"]["paired_speedup"]
            rows.append(f"| training{where}, back-to-back runs: pairs/s ratio, median (min–max), rmlearn library "
                        "default | | TRL, 1 thread | "
                        f"**{paired['median']:.2f}×** ({paired['min']:.2f}–{paired['max']:.2f}) |")
            for impl in [i for i in ("trl-1thread", "trl") if not t[i].get("timed_out")]:
                rows.append(f"| training{where}, pairs per CPU-second (median), rmlearn library default | "
                            f"{t['rmlearn']['pairs_per_cpu_s']['median']:.0f} | "
                            f"{t[impl]['pairs_per_cpu_s']['median']:.0f} ({LABELS[impl]}) | "
                            f"**{t[impl]['cpu_speedup']:.2f}×** |")
        for impl in [i for i in ("trl-1thread", "trl") if not t[i].get("timed_out")]:
            rows.append(f"| training{where}, peak RSS MiB (median), rmlearn library default | "
                        f"{t['rmlearn']['peak_rss_mib']['median']:.0f} | "
                        f"{t[impl]['peak_rss_mib']['median']:.0f} ({LABELS[impl]}) | "
                        f"**{t[impl]['memory_ratio']:.2f}×** |")
        if "rmlearn-reference" in t:
            for impl in [i for i in ("trl-1thread", "trl") if not t[i].get("timed_out")]:
                ours = t["rmlearn-reference"]["peak_rss_mib"]["median"]
                rows.append(f"| training{where}, peak RSS MiB (median), rmlearn reference path | {ours:.0f} | "
                            f"{t[impl]['peak_rss_mib']['median']:.0f} ({LABELS[impl]}) | "
                            f"**{ours / t[impl]['peak_rss_mib']['median']:.2f}×** |")
        f = t["first_step"]
        if part == "train":
            rows.append(f"| first-step loss, same weights and batch, reference path | {f['rmlearn'][0]:.6f} | {f['trl'][0]:.6f} (TRL) | "
                        f"max \\|diff\\| over 3 steps {f['max_abs_diff']:.1e} |")
            if "rmlearn_fast" in f:
                rows.append(f"| first-step loss, library default (fast path, 2 shards) | {f['rmlearn_fast'][0]:.6f} | "
                            f"{f['trl'][0]:.6f} (TRL) | max \\|diff\\| over 3 steps {f['max_abs_diff_fast']:.1e} |")
    if "score" in results:
        s = results["score"]["result"]
        best = s["best_baseline"]
        rows.append(f"| scoring, responses/s (median) | {s['rmlearn']['median']:.0f} | {s[best]['median']:.0f} "
                    f"({LABELS[best]}, the fastest baseline) | **{s['speedup_vs_best']:.2f}×** |")
        one = s["hf_forward_1thread"]["median"]
        rows.append(f"| scoring, responses/s (median) | {s['rmlearn']['median']:.0f} | {one:.0f} "
                    f"({LABELS['hf_forward_1thread']}) | **{s['rmlearn']['median'] / one:.2f}×** |")
    if "startup" in results:
        st = results["startup"]["result"]
        rows.append(f"| `import rmlearn`, s (target < 1.5) | {st['import_rmlearn_s']['median']:.3f} | | |")
        demo = st["demo"]
        rows.append(f"| `rmlearn demo`, wall s | {demo['seconds']:.1f} |  | |" if "seconds" in demo
                    else f"| `rmlearn demo` | not measured: {demo['error']} | | |")
    return rows


def _train_rows(t: dict, cells, width: int) -> list[str]:
    """One table row per training setting present in ``t``: its label, pairs/s, then the ``width`` cells of
    ``cells(result)``; a run cut off by the timeout shows its bound and "–" in the other cells."""
    rows = []
    for impl in [i for i in ("rmlearn", "rmlearn-1", "rmlearn-reference", "trl-1thread", "trl") if i in t]:
        r = t[impl]
        if r.get("timed_out"):
            seconds = r["seconds"]["median"]
            rest = ["–", f"> {seconds:.0f}"] + ["–"] * (width - 2)
            rows.append(f"| {LABELS[impl]} | at most {r['pairs_per_s']['median']:.1f}: cut off after {seconds:.0f} s | "
                        + " | ".join(rest) + " |")
        else:
            rows.append(f"| {LABELS[impl]} | {_spread(r['pairs_per_s'])} | " + " | ".join(cells(r)) + " |")
    return rows


def _train_busy(results: dict) -> list[str]:
    t = results["train_busy"]["result"]
    lines = ["## Training on a busy machine", "", _when(results, "train_busy"), "",
             "The same comparison while one spinning Python process per core competes for the CPU "
             "(`benchmarks/busy.py`), as on a shared lab server, a CI runner or a laptop running a browser. "
             f"Each rmlearn setting and TRL on one thread ran {len(t['rmlearn']['seconds']['values'])} times, TRL with "
             f"default threads {len(t['trl']['seconds']['values'])} time(s).", "",
             "| | pairs/s, median (min–max) | pairs per CPU-second | seconds | peak RSS MiB |", "|---|---|---|---|---|"]
    lines += _train_rows(t, lambda r: [_spread(r["pairs_per_cpu_s"]), f"{r['seconds']['median']:.2f}",
                                       _spread(r["peak_rss_mib"])], width=3)
    return lines + [""]


def _train(results: dict) -> list[str]:
    t = results["train"]["result"]
    lines = ["## Training: rmlearn `train_reward_model` vs TRL `RewardTrainer`", "", _when(results, "train"), "",
             "| | pairs/s, median (min–max) | pairs per CPU-second | seconds | steps | peak RSS MiB "
             "| RSS before training MiB |",
             "|---|---|---|---|---|---|---|"]
    lines += _train_rows(t, lambda r: [_spread(r["pairs_per_cpu_s"]) if "pairs_per_cpu_s" in r else "–",
                                       f"{r['seconds']['median']:.2f}", str(r["steps"]), _spread(r["peak_rss_mib"]),
                                       f"{r['rss_before_mib']['median']:.0f}"], width=5)
    f = t["first_step"]
    lines += [
        "",
        f"Each run is a fresh process (so peak memory is its own); each rmlearn setting and TRL on one thread ran "
        f"{len(t['rmlearn']['seconds']['values'])} times, alternating, TRL with default threads "
        f"{len(t['trl']['seconds']['values'])} time(s). Both start from the same weights: `tiny_backbone(0)` with "
        "rmlearn's seeded head, copied into a `GPT2ForSequenceClassification(num_labels=1)`. Both see the same "
        f"{t['rmlearn']['pairs']} pairs (`synthetic_preferences({t['rmlearn']['pairs']}, seed=0)`), batch "
        f"{t['rmlearn']['pairs'] // t['rmlearn']['steps']}, "
        "AdamW (lr 1e-4, constant, no warm-up, no weight decay, no gradient clipping), fp32 on CPU, no "
        "centering. TRL runs with `gradient_checkpointing` off (its default is on), `use_cpu=True`, no "
        "bf16, no saving, no evaluation, no logging, `report_to=\"none\"`, and its default optimizer "
        "(fused AdamW). One untimed forward+backward warms each model up first.",
        "",
        "Pairs per CPU-second divide by the CPU time of the process over the same span (`time.process_time`): "
        "time spent waiting for a core on the shared machine does not count, so it is steadier than wall "
        "time. For TRL with default threads it also counts threads spinning while they wait for each other.",
        "",
        "Timed: rmlearn's whole `train_reward_model` call, *including* tokenizing the texts, against TRL's "
        "`trainer.train()`, *excluding* its tokenization (done in its constructor). Peak RSS is the whole "
        "process (`ru_maxrss`): Python, torch, transformers and for TRL also datasets and accelerate.",
        "",
        "\"TRL, 1 thread\" is TRL after `torch.set_num_threads(1)`; \"TRL, default threads\" is what a TRL "
        "user gets out of the box. rmlearn has two paths. The library default (`TrainConfig()`, also `rmlearn "
        "train`) is the fast path (`rmlearn/fastcpu.py`): it trains with torch's fused tanh-GELU kernel in place "
        "of GPT-2's Python formula (the same function to 4.8e-7; the backbone's module is put back for scoring) "
        "and cuts each batch into `shards=2` shards whose forward and backward run side by side on one thread "
        "each, adding their gradients in shard order. `threads=\"auto\"` runs one thread per shard, at most the "
        "cores the process may use (`os.sched_getaffinity`); the load is never sampled. Its numbers depend on "
        "the shard count, a setting, not on the thread count or the load: `threads=1` gives the same numbers. "
        "The reference path (`threads=None`, what the course's shipped models were trained with and the lessons "
        "pass) runs one forward per batch on one thread with the backbone's own code (docs/practitioners.md).",
        "",
        "**Same objective.** One batch of 16 pairs, three steps in each trainer, identical initial weights "
        "and batch: losses rmlearn " + ", ".join(f"{x:.6f}" for x in f["rmlearn"]) + "; TRL "
        + ", ".join(f"{x:.6f}" for x in f["trl"]) + f" (max difference {f['max_abs_diff']:.1e})"
        + ("; rmlearn's library default (fast path, 2 shards) " + ", ".join(f"{x:.6f}" for x in f["rmlearn_fast"])
           + f" (max difference {f['max_abs_diff_fast']:.1e})" if "rmlearn_fast" in f else "") + ". "
        "`tests/test_trl_parity.py` checks this, plus token ids, rewards, and the loss with margin and with "
        "centering. The training losses of the timed runs differ (rmlearn "
        f"{t['rmlearn']['mean_loss']:.3f}, TRL {t['trl-1thread']['mean_loss']:.3f} averaged over the run) because "
        "the batches differ: rmlearn groups pairs of similar length, TRL samples at random. Grouping saves "
        "padding but makes each batch less mixed, and on this data rmlearn's loss falls more slowly per "
        "epoch; that trade-off belongs to the training loop and is not a difference in the objective.",
        "",
    ]
    return lines


def _score(results: dict) -> list[str]:
    s = results["score"]["result"]
    lines = ["## Scoring: `RewardModel.score` vs transformers on the same weights", "", _when(results, "score"), "",
             "| | responses/s, median (min–max) |", "|---|---|"]
    for key in ("rmlearn", "hf_forward_default", "hf_forward_1thread", "hf_pipeline_1thread"):
        if key in s:
            lines.append(f"| {SCORE_LABELS.get(key, LABELS[key])} | {_spread(s[key])} |")
    diffs = ", ".join(f"{k} {v:.1e}" for k, v in s["max_abs_score_diff"].items())
    lines += ["", f"{s['responses']} responses of 11–53 tokens in their given (mixed-length) order, batch "
              f"{s['batch_size']}, tokenization inside the timer for every method. Largest score difference "
              f"from rmlearn: {diffs}. rmlearn sorts by length before batching (less padding), runs in "
              "`torch.inference_mode()`, and for a small CPU model runs whole batches side by side, one thread "
              "each (as many threads as torch has, at most the usable cores; `fastcpu.batches_side_by_side`): "
              "each batch's numbers are one thread's, whatever the thread count.", "",
              f"rmlearn is {s['rmlearn']['median'] / s['hf_forward_default']['median']:.2f}× the plain forward on "
              f"torch's default threads and {s['rmlearn']['median'] / s['hf_forward_1thread']['median']:.2f}× the "
              "plain forward on one thread (length sorting, and batches side by side).", ""]
    return lines


def _startup(results: dict) -> list[str]:
    st = results["startup"]["result"]
    demo = st["demo"]
    lines = ["## Start-up", "", _when(results, "startup"), "",
             f"- `import rmlearn` in a fresh interpreter: {_spread(st['import_rmlearn_s'], '.3f')} s "
             "(median, min–max of 5; target < 1.5 s). The public names load lazily, so torch is not imported.",
             f"- first import that needs torch (`import rmlearn.losses`): {_spread(st['import_with_torch_s'], '.2f')} s.",
             (f"- `rmlearn demo` (default settings, wall time of the whole command): {demo['seconds']:.1f} s; it "
              f"printed: `{demo['last_line']}`" if "seconds" in demo else f"- `rmlearn demo`: {demo['error']}"), ""]
    return lines


def _course(results: dict) -> list[str]:
    c = results["course"]["result"]
    lines = ["## Course notebooks", "", _when(results, "course"), ""]
    if c["lessons"]:
        lines += ["| lesson | execution time (nbclient, fresh kernel) |", "|---|---|"]
        for name, r in c["lessons"].items():
            lines.append(f"| {name} | " + (f"{r['seconds']:.1f} s" if "seconds" in r else f"failed: {r['error']}") + " |")
    else:
        lines.append("No `lessons/NN_*.ipynb` existed when this was measured.")
    a = c["autograde"]
    lines += ["", "Autograde (`benchmarks/bench_autograde.py`): "
              + (f"exit {a['exit']} after {a['seconds']:.1f} s; its last lines:" if "seconds" in a else a["error"])]
    if "output" in a:
        lines += ["", "```", *[ln for ln in a["output"] if "IPKernelApp" not in ln], "```"]
    return lines + [""]


def _class(results: dict) -> list[str]:
    from benchmarks.bench_class import table

    return ["## The whole class: serial against parallel autograde", "", _when(results, "class"), "",
            *table(results["class"]["result"]), ""]


def _profile(results: dict) -> list[str]:
    p = results["profile"]["result"]
    th, tk, op, pos = p["threads"], p["tokenization"], p["optimizer"], p["position_ids"]
    lines = [
        "## Where the time goes, and what each change bought", "", _when(results, "profile"), "",
        "Each ingredient timed both ways in one process, alternating, median of 5 (10 training steps of "
        "batch 16 for the step timings).", "",
        "| change (in rmlearn) | before | after | gain |", "|---|---|---|---|",
        f"| one CPU thread for a model under 5 M parameters (`fastcpu.one_cpu_thread_if_small`), machine as found "
        f"(load average {th.get('load_avg_before', float('nan')):.1f}) | "
        f"{th['default_s']:.2f} s ({th['default_threads']} threads) | {th['one_s']:.2f} s | **{th['gain']:.2f}×** |",
        *([f"| the same, plus {p['threads_busy']['spinning_processes']} spinning processes | "
           f"{p['threads_busy']['default_s']:.2f} s | {p['threads_busy']['one_s']:.2f} s | "
           f"**{p['threads_busy']['gain']:.1f}×** |"] if "threads_busy" in p else []),
        f"| tokenize in two batched calls, each prompt once (`inputs.encode_many`) | {tk['per_text_s']:.3f} s "
        f"per {tk['texts']} texts | {tk['encode_many_s']:.3f} s | {tk['gain']:.1f}× |",
        f"| AdamW `foreach=True` (bit-identical results) | {op['for_loop_ms']:.2f} ms/step | "
        f"{op['foreach_ms']:.2f} ms/step | {op['for_loop_ms'] / op['foreach_ms']:.1f}× (of the optimizer step) |",
        *([f"| fast path: torch's fused tanh-GELU in place of GPT-2's `gelu_new` formula (10 steps, 1 thread; "
           f"rewards within {p['activation']['max_abs_reward_diff']:.0e}) | {p['activation']['gelu_new_s']:.2f} s | "
           f"{p['activation']['gelu_pytorch_tanh_s']:.2f} s | "
           f"**{p['activation']['gelu_new_s'] / p['activation']['gelu_pytorch_tanh_s']:.2f}×** |"]
          if "activation" in p else []),
        *([f"| fast path, 2 threads: 2 shards side by side, one thread each, vs torch splitting every op over "
           f"2 threads (the training benchmark's setting, 2048 pairs) | {p['data_parallel']['op_threads_s']:.2f} s | "
           f"{p['data_parallel']['shards_s']:.2f} s | **{p['data_parallel']['gain']:.2f}×** (CPU time "
           f"{p['data_parallel']['op_threads_cpu_s']:.2f} → {p['data_parallel']['shards_cpu_s']:.2f} s) |"]
          if "data_parallel" in p else []),
        *([f"| the same, 2 threads while another process takes one core | "
           f"{p['data_parallel_one_core_taken']['op_threads_s']:.2f} s | "
           f"{p['data_parallel_one_core_taken']['shards_s']:.2f} s | "
           f"**{p['data_parallel_one_core_taken']['gain']:.2f}×** |"] if "data_parallel_one_core_taken" in p else []),
        "",
        f"Not changed: fused AdamW would take {op['fused_ms']:.2f} ms/step, but its results differ from the "
        f"for-loop ones in the last bits, and the optimizer is about {op['foreach_ms'] / pos['with_s'] / 100:.0%} "
        "of a step. Passing `position_ids` "
        f"(needed so left padding scores like right padding) costs nothing measurable: {pos['with_s']:.2f} s "
        f"with vs {pos['without_s']:.2f} s without for 10 steps. Already in place before: one forward over "
        "chosen and rejected stacked, padding to the longest in the batch, length-grouped batches, "
        "`torch.inference_mode()` for scoring, no per-step host syncs.", "",
        "GPT-2's `gelu_new` is a tanh formula written as separate tensor ops, each a pass over the MLP's "
        "activations, forward and backward; the fused kernel computes the same function in one. The lessons' "
        "reference path keeps the backbone's own code, so their numbers do not move; the fast path swaps the "
        "module during training and puts it back. Tried and dropped: padding-free shards cut by sequence "
        "length (3–5 % fewer padded tokens, not worth the code), passing no attention mask (no gain), and a "
        "larger glibc heap padding (`mallopt(M_TOP_PAD)`, about 5 %, but it also freezes glibc's mmap "
        "threshold for the rest of the process: set at start-up, through `MALLOC_TOP_PAD_`, it made a whole run 38 % slower).", "",
        "The thread count: when the cores are shared (a lab server, a CI runner, a laptop running a "
        "browser) a second thread that must wait for a core stalls every small op, and one thread wins by a "
        "wide margin; so the fast path never splits an op of this tiny model over threads: it runs 2 "
        "data-parallel shards, one thread each, which wait for each other only at the end of a batch. The "
        "shard count is a setting (`shards`, default 2), so the numbers do not depend on the core count or "
        "the load. The reference path uses one thread for models under 5 M parameters on CPU and leaves "
        "larger models and GPUs alone.", "",
        "Top functions by own time (cProfile, `train_reward_model(threads=1)`, the fast path on one thread, "
        "on 320 pairs, 20 steps):",
        "", "```", *[ln for ln in p["cprofile"].strip().splitlines() if ln.strip()][-16:], "```", ""]
    return lines


def markdown(results: dict) -> str:
    lines = ["# Benchmarks: rmlearn against TRL and transformers", "",
             f"Machine: {results.get('machine', 'unknown')}. Other jobs shared this machine during some "
             "parts (each part states its load average), so absolute numbers are noisy; every comparison "
             "alternates its runs so both sides see the same conditions. Rerun everything with `python -m benchmarks` (about 10 minutes on 2 idle cores, half of it the course "
             "part), or "
             "parts with `python -m benchmarks --parts train train_busy score startup course profile`.", "",
             "![benchmarks](benchmarks.png)", "", "## Summary", "", *_summary(results), ""]
    for part, fn in (("train", _train), ("train_busy", _train_busy), ("score", _score), ("startup", _startup), ("course", _course),
                     ("profile", _profile), ("class", _class)):
        if part in results:
            lines += fn(results)
    return "\n".join(lines).rstrip() + "\n"


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [p for p in ("train", "train_busy", "memory", "score", "course")
              if (p if p != "memory" else "train") in results]
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels), 3.6), squeeze=False)
    for ax, panel in zip(axes[0], panels, strict=True):
        if panel in ("train", "train_busy", "memory"):
            t = results["train" if panel == "memory" else panel]["result"]
            key, title = {"train": ("pairs_per_s", "training, pairs/s"),
                          "train_busy": ("pairs_per_s", "training, busy machine, pairs/s"),
                          "memory": ("peak_rss_mib", "training, peak RSS, MiB")}[panel]
            names = [n for n in ("rmlearn", "rmlearn-1", "rmlearn-reference", "trl-1thread", "trl") if n in t]
            stats = [t[n][key] for n in names]
        elif panel == "score":
            s = results["score"]["result"]
            names = [k for k in ("rmlearn", "hf_pipeline_1thread", "hf_forward_1thread", "hf_forward_default") if k in s]
            stats, title = [s[n] for n in names], "scoring, responses/s"
        else:
            lessons = {k: v for k, v in results["course"]["result"]["lessons"].items() if "seconds" in v}
            if not lessons:
                ax.set_axis_off()
                continue
            ax.barh([k.split("_")[0] for k in lessons], [v["seconds"] for v in lessons.values()], color="tab:gray")
            ax.set_title("lesson execution, s")
            continue
        med = [s["median"] for s in stats]
        err = [[m - s["min"] for m, s in zip(med, stats, strict=True)],
               [s["max"] - m for m, s in zip(med, stats, strict=True)]]
        colors = ["tab:blue" if n.startswith("rmlearn") else "tab:orange" for n in names]
        labels = [PLOT_LABELS.get(n, "rmlearn\nreference" if panel != "score" else "rmlearn") for n in names]
        ax.bar(labels, med, yerr=err, color=colors, capsize=4)
        ax.set_title(title)
        ax.tick_params(axis="x", labelsize=7)
    fig.suptitle("rmlearn (blue) vs TRL / transformers (orange): median, bars = min–max", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
