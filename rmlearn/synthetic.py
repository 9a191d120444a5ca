"""The course's synthetic world: prompts, phrases, the hidden quality rule, generators and probes.

Lessons 02, 04–10 and the problem sets draw their data from here. A response is a few
comma-separated phrases; ``quality(prompt, response)`` is the rule the annotators follow (and the
gold reward of lesson 08), and it depends on the prompt, so a reward model must read the question
to be right. Knows no model: text in, text out.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

from .data import PreferencePair

# ---------------------------------------------------------------------------------------------
# Prompts, phrases and the hidden quality rule
# ---------------------------------------------------------------------------------------------

# The hidden quality rule of the synthetic data, which depends on the prompt: a phrase that
# answers *this* question adds one point, an unhelpful phrase takes one away, and everything else
# (filler, or a phrase that answers a *different* question) is neutral. Every prompt has one
# helpful phrase of 3, 4 and 5 words, and the unhelpful phrases have the same lengths, so quality
# says nothing about length (lesson 05 adds a length bias on purpose, through the annotators).
HELPFUL_FOR: dict[str, tuple[str, ...]] = {
    "How do I reset my password?": (
        "click forgot password", "choose a new password", "the reset link is emailed"),
    "My order has not arrived yet.": (
        "tracking link below", "your parcel ships tomorrow", "here is the tracking link"),
    "I was charged twice.": (
        "second charge refunded", "we removed the duplicate", "the extra charge is refunded"),
    "How do I cancel my plan?": (
        "press cancel plan", "i cancelled your plan", "access lasts until month end"),
    "The app keeps crashing.": (
        "update the app", "restart your phone first", "version 4.3 fixes the crash"),
    "How can I change my email address?": (
        "open account settings", "type the new address", "confirm it from your inbox"),
}
SYNTHETIC_PROMPTS = tuple(HELPFUL_FOR)
HELPFUL = tuple(phrase for phrases in HELPFUL_FOR.values() for phrase in phrases)  # for some prompt
UNHELPFUL = (
    "i cannot help", "ask someone else", "it is your fault",
    "read the manual again", "we do not do that", "try again some other day",
)
FILLER = (
    "thanks for writing", "hope you are well", "as you may know", "please note",
    "in many cases", "we value you", "let me explain", "kind regards",
)


def _check_prompt(prompt: str) -> str:
    if prompt not in HELPFUL_FOR:
        raise ValueError(f"{prompt!r} is not a synthetic prompt; the hidden rule knows {SYNTHETIC_PROMPTS}")
    return prompt


def phrases(response: str) -> list[str]:
    """A response cut into its comma-separated phrases, lower-cased, final full stop removed.

    >>> phrases("Click forgot password, kind regards.")
    ['click forgot password', 'kind regards']
    """
    parts = (part.strip().rstrip(".!").strip().lower() for part in response.split(","))
    return [part for part in parts if part]


def phrase_kind(prompt: str, phrase: str) -> str:
    """What ``phrase`` is worth for ``prompt`` under the hidden rule: ``"helpful"``, ``"off-topic"``
    (helpful for another prompt), ``"unhelpful"``, ``"filler"`` or ``"other"``.

    >>> phrase_kind("How do I reset my password?", "click forgot password")
    'helpful'
    >>> phrase_kind("The app keeps crashing.", "click forgot password")
    'off-topic'
    """
    if phrase in HELPFUL_FOR[_check_prompt(prompt)]:
        return "helpful"
    if phrase in HELPFUL:
        return "off-topic"
    return "unhelpful" if phrase in UNHELPFUL else "filler" if phrase in FILLER else "other"


def quality(prompt: str, response: str) -> float:
    """The hidden quality of any response to a synthetic prompt (the gold reward of lessons 04–08).

    +1 for each distinct phrase that answers this prompt, −1 for each distinct unhelpful phrase;
    filler, phrases that answer another prompt, and any other text count 0. Saying a phrase twice
    does not count twice. ``prompt`` must be one of ``SYNTHETIC_PROMPTS`` (ValueError otherwise).

    >>> quality("How do I reset my password?", "click forgot password, kind regards.")
    1.0
    >>> quality("The app keeps crashing.", "click forgot password, kind regards.")
    0.0
    """
    kinds = [phrase_kind(prompt, phrase) for phrase in set(phrases(response))]
    return float(kinds.count("helpful") - kinds.count("unhelpful"))


def num_words(text: str) -> int:
    """Length of a response in words: the one measure of length in the course (lessons 04–08).

    >>> num_words("thanks for writing, click forgot password.")
    6
    """
    return len(text.split())


def filler_words(n: int) -> str:
    """``n`` neutral words taken in turn from the course's filler phrases (they carry no quality).

    >>> filler_words(4)
    'thanks for writing hope'
    """
    words = " ".join(FILLER).split()
    return " ".join(words[i % len(words)] for i in range(n))


def by_quality(pairs: list[PreferencePair]) -> list[PreferencePair]:
    """The same pairs, relabelled so that ``chosen`` is the one with the higher true quality."""
    return [p if quality(p.prompt, p.chosen) > quality(p.prompt, p.rejected)
            else PreferencePair(p.prompt, p.rejected, p.chosen) for p in pairs]


# ---------------------------------------------------------------------------------------------
# Generators: simulated annotators label random responses (lessons 04–05)
# ---------------------------------------------------------------------------------------------

# How often the one content phrase of a synthetic response is each kind. Answers to the right and
# to a wrong question are equally common, so the model must read the prompt to tell them apart.
CONTENT_MIX = {"helpful": 0.45, "off-topic": 0.45, "unhelpful": 0.10}


def _content(rng: random.Random, prompt: str) -> str:
    """The one content phrase of a response: helpful for ``prompt``, helpful for another prompt,
    or unhelpful, drawn with the probabilities of ``CONTENT_MIX``."""
    kind = rng.choices(list(CONTENT_MIX), weights=list(CONTENT_MIX.values()))[0]
    if kind == "helpful":
        return rng.choice(HELPFUL_FOR[prompt])
    if kind == "off-topic":
        return rng.choice(HELPFUL_FOR[rng.choice([p for p in SYNTHETIC_PROMPTS if p != prompt])])
    return rng.choice(UNHELPFUL)


def _join(content: str, filler: list[str]) -> str:
    """A response: the content phrase first (the answer), then the filler phrases."""
    return ", ".join([content, *filler]) + "."


def _filler(rng: random.Random) -> list[str]:
    return [rng.choice(FILLER) for _ in range(rng.randint(0, 5))]


def synthetic_response(rng: random.Random, prompt: str) -> tuple[str, float, int]:
    """(text, quality for ``prompt``, length in words) of one random response: one content phrase
    followed by 0–5 neutral filler phrases."""
    text = _join(_content(rng, prompt), _filler(rng))
    return text, quality(prompt, text), num_words(text)


def _pairs(n: int, seed: int, keep) -> list[PreferencePair]:
    """``n`` pairs (prompt, a, b) of responses with distinct quality and length, labelled by ``keep``."""
    rng = random.Random(seed)
    pairs = []
    while len(pairs) < n:
        prompt = rng.choice(SYNTHETIC_PROMPTS)
        (a, qa, la), (b, qb, lb) = synthetic_response(rng, prompt), synthetic_response(rng, prompt)
        if qa == qb or la == lb:
            continue  # no true preference, or no length to be biased by
        a_wins = keep(rng, qa, qb, la, lb)
        if a_wins is not None:
            pairs.append(PreferencePair(prompt, *((a, b) if a_wins else (b, a))))
    return pairs


def synthetic_preferences(n: int, seed: int = 0, length_bias: float = 0.0,
                          label_noise: float = 0.0) -> list[PreferencePair]:
    """``n`` preference pairs labelled by simulated annotators (lessons 04–05).

    Both responses reply to the same prompt; their true quality is ``quality(prompt, response)``,
    which depends on the prompt: a helpful phrase for another question is worth nothing. Lengths
    vary through neutral filler and are independent of quality (correlation ≈ 0). An annotator
    prefers the better response, except that with probability ``length_bias`` they simply prefer
    the longer one; and with probability ``label_noise`` the label is then flipped (a careless
    annotator, lesson 09: what a reward model's confidence should allow for).

    >>> pairs = synthetic_preferences(3, seed=0)
    >>> len(pairs), quality(pairs[0].prompt, pairs[0].chosen) > quality(pairs[0].prompt, pairs[0].rejected)
    (3, True)
    """
    if n < 1:
        raise ValueError(f"n must be a positive number of pairs, got {n}")
    if not 0.0 <= length_bias <= 1.0:
        raise ValueError(f"length_bias is a probability in [0, 1], got {length_bias}")
    if not 0.0 <= label_noise <= 0.5:
        raise ValueError(f"label_noise is the probability of a flipped label, in [0, 0.5], got {label_noise}")

    def annotator(rng, qa, qb, la, lb):
        a_wins = (la > lb) if rng.random() < length_bias else (qa > qb)
        if label_noise and rng.random() < label_noise:  # no extra draw without noise: the same data as before
            a_wins = not a_wins
        return a_wins

    return _pairs(n, seed, annotator)


# ---------------------------------------------------------------------------------------------
# Probes: pairs built to test one thing a reward model might have learned (lessons 04–05)
# ---------------------------------------------------------------------------------------------

def length_probe(n: int, seed: int = 1) -> list[PreferencePair]:
    """Pairs where quality and length disagree: ``chosen`` is better *and shorter* (lesson 05).

    A reward model that learned quality ranks ``chosen`` first; one that learned length does not.
    """
    return _pairs(n, seed, lambda rng, qa, qb, la, lb: None if (qa > qb) == (la > lb) else qa > qb)


def prompt_swap_probe(n: int, seed: int = 2) -> list[PreferencePair]:
    """Pairs that only a model reading the prompt gets right (lesson 04).

    ``chosen`` answers ``prompt`` with one of its helpful phrases, then filler; ``rejected`` is the
    same text with that phrase replaced by the one of equal length that answers another prompt:
    equally fluent, equally long, and a good answer, but to a different question.

    >>> pair = prompt_swap_probe(1)[0]
    >>> quality(pair.prompt, pair.chosen) > 0 == quality(pair.prompt, pair.rejected)
    True
    >>> len(pair.chosen.split()) == len(pair.rejected.split())
    True
    """
    if n < 1:
        raise ValueError(f"n must be a positive number of pairs, got {n}")
    rng = random.Random(seed)
    pairs = []
    for _ in range(n):
        prompt, other = rng.sample(SYNTHETIC_PROMPTS, 2)
        i, filler = rng.randrange(3), _filler(rng)  # the i-th phrases of all prompts have i + 3 words
        pairs.append(PreferencePair(prompt, _join(HELPFUL_FOR[prompt][i], filler), _join(HELPFUL_FOR[other][i], filler)))
    return pairs


def answer_last_preferences(n: int, seed: int = 3) -> list[PreferencePair]:
    """A distribution shift (lesson 09): pairs labelled by the hidden rule, but every response puts its
    filler *first* and its answer phrase last, an order the training data never shows.

    >>> pair = answer_last_preferences(1)[0]
    >>> quality(pair.prompt, pair.chosen) > quality(pair.prompt, pair.rejected)
    True
    """
    def answer_last(text: str) -> str:
        content, *filler = phrases(text)
        return ", ".join([*filler, content]) + "."

    return [PreferencePair(p.prompt, answer_last(p.chosen), answer_last(p.rejected))
            for p in synthetic_preferences(n, seed=seed)]


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
            (a, qa, _), (b, qb, _) = synthetic_response(rng, prompt), synthetic_response(rng, prompt)
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
