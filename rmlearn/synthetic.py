"""The course's synthetic world (lessons 04–10): prompts, phrases, the hidden quality rule, data.

The world itself (prompts, phrases, ``quality``) still lives in ``rmlearn.data``; this module
starts with lesson 10's generators and imports the world from there.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .data import (
    FILLER,
    HELPFUL_FOR,
    SYNTHETIC_PROMPTS,
    UNHELPFUL,
    PreferencePair,
    _synthetic_response,
    quality,
)

# ---------------------------------------------------------------------------------------------
# lesson 10: ties, four rating levels, answers in steps
# ---------------------------------------------------------------------------------------------

TIE_RATE = 0.3  # share of near-equal pairs, on which annotators say "about the same"


def tied_preferences(n: int, seed: int = 0, tie_rate: float = TIE_RATE) -> list[PreferencePair]:
    """``n`` pairs of synthetic responses; about ``tie_rate`` of them are near-equal (the same
    hidden quality) and labelled ``tie=True``; on the others annotators prefer the better one.

    >>> pairs = tied_preferences(200, seed=0)
    >>> 0.2 < sum(p.tie for p in pairs) / len(pairs) < 0.4
    True
    """
    if not 0.0 <= tie_rate < 1.0:
        raise ValueError(f"tie_rate is a share in [0, 1), got {tie_rate}")
    rng = random.Random(seed)
    pairs: list[PreferencePair] = []
    while len(pairs) < n:
        want_tie = rng.random() < tie_rate
        prompt = rng.choice(SYNTHETIC_PROMPTS)
        while True:  # draw until the pair is of the wanted kind
            (a, qa, _), (b, qb, _) = _synthetic_response(rng, prompt), _synthetic_response(rng, prompt)
            if a != b and (qa == qb) == want_tie:
                break
        pairs.append(PreferencePair(prompt, a, b, tie=True) if want_tie else
                     PreferencePair(prompt, *((a, b) if qa > qb else (b, a))))
    return pairs


def _graded_response(rng: random.Random, prompt: str) -> str:
    """A response with 0–2 helpful phrases for ``prompt``, 0–2 unhelpful ones and some filler,
    in random order: hidden quality −2 … +2."""
    parts = rng.sample(HELPFUL_FOR[prompt], rng.randint(0, 2)) + rng.sample(UNHELPFUL, rng.randint(0, 2))
    parts += [rng.choice(FILLER) for _ in range(rng.randint(0, 2))]
    rng.shuffle(parts)
    return ", ".join(parts or [rng.choice(FILLER)]) + "."


def rated_preferences(n: int, seed: int = 0) -> list[PreferencePair]:
    """``n`` pairs rated on Llama 2's four levels, stored as ``margin = level / 3`` (the small
    margins; multiply to sweep the scale). The level is the quality gap, capped at 3; equal
    quality is level 0, "negligibly better", with the preferred side chosen at random.

    >>> sorted({round(3 * p.margin) for p in rated_preferences(300, seed=0)})
    [0, 1, 2, 3]
    """
    rng = random.Random(seed)
    pairs: list[PreferencePair] = []
    while len(pairs) < n:
        prompt = rng.choice(SYNTHETIC_PROMPTS)
        a, b = _graded_response(rng, prompt), _graded_response(rng, prompt)
        if a == b:
            continue
        gap = quality(prompt, a) - quality(prompt, b)
        level = min(int(abs(gap)), 3)
        a_wins = gap > 0 if gap else rng.random() < 0.5
        pairs.append(PreferencePair(prompt, *((a, b) if a_wins else (b, a)), margin=level / 3))
    return pairs


@dataclass(frozen=True)
class StepAnswer:
    """An answer written in steps, with the label of each step (1 correct, 0 wrong)."""

    prompt: str
    steps: tuple[str, ...]
    labels: tuple[int, ...]

    @property
    def text(self) -> str:
        """The answer as one response: its steps joined like a synthetic response's phrases."""
        return ", ".join(self.steps) + "."

    @property
    def correct(self) -> bool:
        """The outcome: right only if every step is."""
        return all(self.labels)

    @property
    def first_error(self) -> int:
        """1-based index of the first wrong step, 0 if none."""
        return next((k + 1 for k, label in enumerate(self.labels) if not label), 0)


def _wrong_step(rng: random.Random, prompt: str) -> str:
    """A step that goes wrong: an unhelpful phrase, or a helpful one for another question."""
    if rng.random() < 0.5:
        return rng.choice(UNHELPFUL)
    return rng.choice(HELPFUL_FOR[rng.choice([p for p in SYNTHETIC_PROMPTS if p != prompt])])


def step_answer(rng: random.Random, prompt: str, wrong: bool) -> StepAnswer:
    """Three or four steps: helpful phrases for ``prompt`` and filler; if ``wrong``, one step
    before the last goes wrong, so the final step still looks fine."""
    n = rng.randint(3, 4)
    helpful = rng.sample(HELPFUL_FOR[prompt], 3)
    others = helpful[1:] + rng.sample(FILLER, 2)  # the final step is helpful[0]; the rest from these
    steps = [others[k] for k in sorted(rng.sample(range(4), n - 1))] + [helpful[0]]
    labels = [1] * n
    if wrong:
        k = rng.randrange(n - 1)
        steps[k], labels[k] = _wrong_step(rng, prompt), 0
    return StepAnswer(prompt, tuple(steps), tuple(labels))


def step_answers(n: int, seed: int = 0, wrong_rate: float = 0.5) -> list[StepAnswer]:
    """``n`` answers in steps; about ``wrong_rate`` of them have one wrong step (never the last).

    >>> a = step_answers(1, seed=3)[0]
    >>> len(a.steps) == len(a.labels), a.first_error in range(len(a.steps))
    (True, True)
    """
    rng = random.Random(seed)
    return [step_answer(rng, rng.choice(SYNTHETIC_PROMPTS), rng.random() < wrong_rate) for _ in range(n)]


def best_of_n_candidates(prompts: list[str], n: int, seed: int = 0, wrong_rate: float = 0.5) -> list[list[StepAnswer]]:
    """For each prompt, ``n`` candidate answers in steps (about ``wrong_rate`` of them flawed)."""
    rng = random.Random(seed)
    return [[step_answer(rng, p, rng.random() < wrong_rate) for _ in range(n)] for p in prompts]
