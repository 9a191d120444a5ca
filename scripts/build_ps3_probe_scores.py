"""Regenerate exercises/source/ps3_bias_and_segments/probe_scores.json (ps3, exercise 3).

    python scripts/build_ps3_probe_scores.py

40 length-probe pairs (the better answer is always the shorter one) scored by the course reward
model trained with fair annotators and with annotators who pick the longer answer 90 % of the
time. Run it whenever the synthetic data or the course model changes, then update the expected
rates in the exercise's hidden test (the script prints them).
"""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "exercises" / "source" / "ps3_bias_and_segments" / "probe_scores.json"
N_PAIRS, PROBE_SEED = 40, 1
BIASES = {"annotators_biased": 0.9, "annotators_fair": 0.0}


def build() -> dict:
    from rmlearn import course_tokenizer, length_probe
    from rmlearn.zoo import trained_reward_model

    tokenizer = course_tokenizer()
    pairs = length_probe(N_PAIRS, seed=PROBE_SEED)
    prompts = [p.prompt for p in pairs]
    data = {
        "note": f"rmlearn.length_probe({N_PAIRS}, seed={PROBE_SEED}) scored by "
        "rmlearn.zoo.trained_reward_model(length_bias=b, seed=0)",
        "pairs": [{"prompt": p.prompt, "chosen": p.chosen, "rejected": p.rejected} for p in pairs],
    }
    for name, bias in BIASES.items():
        model = trained_reward_model(length_bias=bias, seed=0)
        r_chosen = model.score(prompts, [p.chosen for p in pairs], tokenizer)
        r_rejected = model.score(prompts, [p.rejected for p in pairs], tokenizer)
        data[name] = {"length_bias": bias, "r_chosen": [round(x, 4) for x in r_chosen.tolist()],
                      "r_rejected": [round(x, 4) for x in r_rejected.tolist()]}
    return data


def longer_preferred_rate(data: dict, name: str) -> float:
    """The answer to exercise 3 for one model: chosen is always the shorter answer here."""
    scores = data[name]
    return sum(rr > rc for rc, rr in zip(scores["r_chosen"], scores["r_rejected"])) / len(data["pairs"])


if __name__ == "__main__":
    data = build()
    OUT.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"wrote {OUT}")
    for name in BIASES:
        print(f"{name}: the longer answer wins on {longer_preferred_rate(data, name)} of the pairs")
