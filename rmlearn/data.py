"""Preference data: pairs and rankings, loading JSONL, and the course's hand-written support set (lesson 03).

Knows no model: text in, text out. Tokenization happens in ``rmlearn.train`` with a tokenizer.
The course's synthetic world (prompts, phrases, the hidden quality rule, probes) is
``rmlearn.synthetic``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

MAX_CHARS = 20_000  # longer texts are almost certainly a broken export, not a response


class DataError(ValueError):
    """A preference file is malformed; the message names the file, the line and the problem."""

    def __init__(self, path: str | Path, line: int, problem: str):
        self.path, self.line, self.problem = str(path), line, problem
        super().__init__(f"{path}:{line}: {problem}")


@dataclass(frozen=True)
class PreferencePair:
    """One human judgement: for ``prompt``, ``chosen`` was preferred over ``rejected``.

    Lesson 10's labels beyond one bit: ``margin`` (as TRL's ``margin`` column: how much better,
    the m of −log σ(Δ − m)) and ``tie`` (the annotator said "about the same"; then the order of
    ``chosen`` and ``rejected`` means nothing).
    """

    prompt: str
    chosen: str
    rejected: str
    margin: float = 0.0
    tie: bool = False

    def __repr__(self) -> str:  # the three texts only, unless lesson 10's labels are set
        extra = (f", margin={self.margin!r}" if self.margin else "") + (", tie=True" if self.tie else "")
        return f"PreferencePair(prompt={self.prompt!r}, chosen={self.chosen!r}, rejected={self.rejected!r}{extra})"


@dataclass(frozen=True)
class RankedExample:
    """K ≥ 2 responses to one prompt, ordered best → worst."""

    prompt: str
    responses: tuple[str, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "responses", tuple(self.responses))
        if len(self.responses) < 2:
            raise ValueError(f"a ranking needs at least 2 responses, got {len(self.responses)}")

    def pairs(self) -> list[PreferencePair]:
        """The K·(K−1)/2 preference pairs implied by the ranking: each response beats every later one.

        >>> [(p.chosen, p.rejected) for p in RankedExample("Q?", ("a", "b", "c")).pairs()]
        [('a', 'b'), ('a', 'c'), ('b', 'c')]
        """
        return [PreferencePair(self.prompt, a, b) for a, b in combinations(self.responses, 2)]


Example = PreferencePair | RankedExample


# ---------------------------------------------------------------------------------------------
# Loading JSONL in the common formats
# ---------------------------------------------------------------------------------------------

def _text(record: dict, key: str, where: tuple[Path, int], max_chars: int) -> str:
    if key not in record:
        raise DataError(*where, f"missing key {key!r} (keys present: {sorted(record)})")
    value = record[key]
    if not isinstance(value, str):
        raise DataError(*where, f"{key!r} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise DataError(*where, f"{key!r} is empty")
    if len(value) > max_chars:
        raise DataError(*where, f"{key!r} is {len(value)} characters long (limit {max_chars})")
    return value


def _render_messages(messages: Any, key: str, where: tuple[Path, int], max_chars: int) -> str:
    """A conversation (list of ``{role, content}``) as plain text, one ``role: content`` per line."""
    if not isinstance(messages, list) or not messages:
        raise DataError(*where, f"{key!r} must be a non-empty list of messages")
    lines = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or set(message) < {"role", "content"}:
            raise DataError(*where, f"{key}[{i}] must be an object with 'role' and 'content'")
        role = _text(message, "role", where, max_chars)
        lines.append(f"{role}: {_text(message, 'content', where, max_chars)}")
    return "\n".join(lines)


def _split_implicit(chosen: str, rejected: str, where: tuple[Path, int]) -> PreferencePair:
    """Implicit format: the prompt is the longest shared prefix, cut back to a line or word break."""
    n = 0
    while n < min(len(chosen), len(rejected)) and chosen[n] == rejected[n]:
        n += 1
    # the last line or word break *inside* the shared prefix: where the longer text merely goes on
    # with a space ("Sure" vs "Sure thing"), cutting at that space would leave "Sure" nothing
    cut = max(chosen.rfind("\n", 0, n), chosen.rfind(" ", 0, n))
    if cut <= 0:
        raise DataError(*where, "implicit format: 'chosen' and 'rejected' share no prompt prefix")
    prompt, c, r = chosen[:cut], chosen[cut + 1:], rejected[cut + 1:]
    if not c.strip() or not r.strip():
        raise DataError(*where, "implicit format: a response is empty after removing the shared prompt")
    return PreferencePair(prompt, c, r)


def parse_record(record: Any, where: tuple[Path, int], max_chars: int = MAX_CHARS) -> Example:
    """One JSON object → ``PreferencePair`` or ``RankedExample``; raises ``DataError`` otherwise."""
    if not isinstance(record, dict):
        raise DataError(*where, f"each line must be a JSON object, got {type(record).__name__}")
    if "responses" in record or "ranking" in record:
        key = "responses" if "responses" in record else "ranking"
        items = record[key]
        if not isinstance(items, list) or len(items) < 2:
            raise DataError(*where, f"{key!r} must be a list of at least 2 responses ranked best → worst")
        ranked = {f"{key}[{i}]": item for i, item in enumerate(items)}
        texts = tuple(_text(ranked, k, where, max_chars) for k in ranked)
        if len(set(texts)) < len(texts):
            raise DataError(*where, f"{key!r} contains the same response twice")
        return RankedExample(_text(record, "prompt", where, max_chars), texts)
    for key in ("chosen", "rejected"):
        if key not in record:
            raise DataError(*where, f"missing key {key!r} (keys present: {sorted(record)})")
    chosen, rejected = record["chosen"], record["rejected"]
    if isinstance(chosen, list) or isinstance(rejected, list):  # conversational
        chosen = _render_messages(chosen, "chosen", where, max_chars)
        rejected = _render_messages(rejected, "rejected", where, max_chars)
        if "prompt" in record:
            prompt = _render_messages(record["prompt"], "prompt", where, max_chars)
            return _graded(PreferencePair(prompt, chosen, rejected), record, where)
        pair = _split_implicit(chosen, rejected, where)
    elif "prompt" in record:  # explicit
        pair = PreferencePair(*(_text(record, k, where, max_chars) for k in ("prompt", "chosen", "rejected")))
    else:  # implicit: full texts with a shared prompt
        pair = _split_implicit(_text(record, "chosen", where, max_chars),
                               _text(record, "rejected", where, max_chars), where)
    if pair.chosen == pair.rejected:
        raise DataError(*where, "'chosen' and 'rejected' are the same response")
    return _graded(pair, record, where)


def _graded(pair: PreferencePair, record: dict, where: tuple[Path, int]) -> PreferencePair:
    """Lesson 10's optional labels: ``margin`` (a number), ``rating`` (level 0 … 3 or its name in
    ``losses.RATING_LEVELS``, turned into a margin by ``losses.rating_margin``) and ``tie`` (bool)."""
    from .losses import RATING_LEVELS, rating_margin

    margin, tie = record.get("margin", 0.0), record.get("tie", False)
    if "rating" in record:
        if "margin" in record:
            raise DataError(*where, "give 'margin' or 'rating', not both: a rating sets the margin")
        rating = record["rating"]
        level = RATING_LEVELS.index(rating) if rating in RATING_LEVELS else rating
        if isinstance(level, bool) or level not in range(4):
            raise DataError(*where, f"'rating' must be 0 … 3 or one of {RATING_LEVELS}, got {rating!r}")
        margin = float(rating_margin(level))
    if isinstance(margin, bool) or not isinstance(margin, int | float) or margin != margin:
        raise DataError(*where, f"'margin' must be a number, got {margin!r}")
    if not isinstance(tie, bool):
        raise DataError(*where, f"'tie' must be true or false, got {tie!r}")
    if not margin and not tie:
        return pair
    return PreferencePair(pair.prompt, pair.chosen, pair.rejected, float(margin), tie)


def load_preferences(path: str | Path, max_chars: int = MAX_CHARS) -> list[Example]:
    """Read preference data from a JSONL file, one example per line (blank lines are skipped).

    Formats (detected per line):
      explicit        ``{"prompt": str, "chosen": str, "rejected": str}``
      implicit        ``{"chosen": str, "rejected": str}`` full texts sharing the prompt as prefix
      conversational  ``chosen``/``rejected`` (and optionally ``prompt``) as lists of
                      ``{"role": …, "content": …}``
      ranked          ``{"prompt": str, "responses": [best, …, worst]}`` (or ``"ranking"``)

    A pair may also carry ``"margin": float`` (TRL's column), ``"rating": 0 … 3`` (or its name,
    lesson 10) and ``"tie": true``.

    Raises ``DataError`` (``file:line: problem``) on the first bad line.
    """
    path = Path(path)
    examples = [parse_record(record, (path, number), max_chars) for number, record in read_jsonl(path, "preference file")]
    if not examples:
        raise DataError(path, 0, "the file holds no examples")
    return examples


def read_jsonl(path: str | Path, what: str = "JSON-lines file") -> Iterator[tuple[int, Any]]:
    """(line number, parsed JSON) for each non-blank line of a JSON-lines file.

    Raises ``FileNotFoundError`` (naming ``what`` the file should be) for a missing file and
    ``DataError`` (``file:line``) for a line that is not JSON.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no {what} at {path}")
    with path.open("rb") as lines:
        for number, raw in enumerate(lines, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as err:
                raise DataError(path, number, f"not UTF-8 text (byte {raw[err.start]:#04x} at column "
                                              f"{err.start + 1}); re-save the file as UTF-8") from None
            if not line.strip():
                continue
            try:
                yield number, json.loads(line)
            except json.JSONDecodeError as err:
                raise DataError(path, number, f"invalid JSON ({err.msg} at column {err.colno})") from None


def as_pairs(data: Iterable[Example]) -> list[PreferencePair]:
    """Flatten pairs and rankings into preference pairs (a ranking gives all its pairs)."""
    pairs: list[PreferencePair] = []
    for example in data:
        if isinstance(example, RankedExample):
            pairs.extend(example.pairs())
        elif isinstance(example, PreferencePair):
            pairs.append(example)
        else:
            raise TypeError(f"expected PreferencePair or RankedExample, got {type(example).__name__}")
    return pairs


def refuse_ties(pairs: Iterable[PreferencePair | None], what: str) -> None:
    """Raise ``ValueError`` when a pair is labelled as a tie (``tie=True``): ``what``, an objective
    with a winner in every pair, has no tie outcome. ``None`` entries (whole rankings) are skipped.

    >>> refuse_ties([PreferencePair("Q?", "a", "b")], "DPO")
    """
    ties = [i for i, p in enumerate(pairs) if p is not None and p.tie]
    if ties:
        raise ValueError(f"{len(ties)} training pairs are labelled as ties (the first is pair {ties[0]}): "
                         f"{what} has no tie outcome; drop them, or fit a tie-aware loss such as "
                         "rmlearn.rao_kupper_loss (lesson 10)")


def split(data: list, test_fraction: float = 0.2, seed: int = 0) -> tuple[list, list]:
    """Shuffle with ``seed`` and split into (train, test)."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be between 0 and 1, got {test_fraction}")
    items = list(data)
    random.Random(seed).shuffle(items)
    n_test = max(1, round(len(items) * test_fraction))
    return items[n_test:], items[:n_test]


# ---------------------------------------------------------------------------------------------
# The course's hand-written support set
# ---------------------------------------------------------------------------------------------

PASSWORD_RESET = PreferencePair(
    prompt="How do I reset my password?",
    chosen="To reset your password, click 'Forgot password' on the login page, then follow the "
    "link in the email we send you. Tell me if you need more help.",
    rejected="Click 'Forgot password' on the login page.",
)

_SUPPORT = [
    ("How do I reset my password?",
     "To reset your password, click 'Forgot password' on the login page, then follow the link in "
     "the email we send you. Tell me if you need more help.",
     "Click 'Forgot password' on the login page."),
    ("How do I reset my password?",
     "Open the login page, choose 'Forgot password' and enter your email. The reset link arrives "
     "within a few minutes; check your spam folder if it does not.",
     "Passwords cannot be reset. Please create a new account."),
    ("My order has not arrived yet.",
     "I am sorry about the delay. Your parcel left our warehouse on Monday; here is the tracking "
     "link, and if it has not arrived by Friday we will send a replacement.",
     "Orders usually arrive eventually."),
    ("My order has not arrived yet.",
     "Let me check. The courier lists your parcel as delayed at the depot. I have asked them to "
     "prioritise it and will email you the new delivery date today.",
     "That is the courier's problem, not ours."),
    ("I was charged twice this month.",
     "I can see two identical charges on your account. I have refunded the second one; it will "
     "appear on your statement within three to five working days.",
     "Charges are final. There is nothing we can do."),
    ("I was charged twice this month.",
     "Sorry about that. One of the charges was a temporary hold that your bank will release "
     "automatically within a week, so you will only pay once.",
     "You probably bought it twice."),
    ("How do I cancel my subscription?",
     "Go to Settings, then Billing, and choose 'Cancel subscription'. You keep access until the "
     "end of the period you have paid for.",
     "Why would you want to cancel? Our service is great."),
    ("How do I cancel my subscription?",
     "You can cancel any time under Settings > Billing > Cancel subscription. If you prefer, I can "
     "cancel it for you now.",
     "Send us a letter by post and we will consider it."),
    ("The app crashes when I open it.",
     "Please update to the latest version from the app store. If it still crashes, restart your "
     "phone and send us the crash report from Settings > Help.",
     "Works fine for me."),
    ("The app crashes when I open it.",
     "This is a known problem with version 4.2 that we fixed yesterday. Updating the app will "
     "solve it; your data is safe.",
     "Have you tried buying a new phone?"),
    ("How can I change my email address?",
     "Sign in, open Settings > Account and choose 'Change email'. We send a confirmation link to "
     "the new address; the change is active once you click it.",
     "Email addresses cannot be changed."),
    ("How can I change my email address?",
     "Open your profile, tap the pencil next to your email and enter the new one. Confirm it from "
     "the message we send, and you are done.",
     "Just make a new account with the other email."),
    ("Can I get a refund?",
     "Yes. Purchases from the last 30 days can be refunded from Orders > Request refund, and the "
     "money returns to your card within five working days.",
     "No refunds, sorry."),
    ("Can I get a refund?",
     "If the item arrived damaged, we refund it in full. Reply with a photo of the damage and I "
     "will start the refund straight away.",
     "Read our terms and conditions."),
    ("How do I update my payment card?",
     "Go to Settings > Billing > Payment methods, add the new card and mark it as default. Your "
     "next payment will use it.",
     "Call your bank."),
    ("How do I update my payment card?",
     "Open Billing in your account settings and choose 'Replace card'. Enter the new details; the "
     "old card is removed automatically.",
     "Payment cards do not need updating."),
]


def support_pairs() -> list[PreferencePair]:
    """A small customer-support preference set written for this course (16 pairs, 8 prompts).

    The first pair is the password-reset example (``PASSWORD_RESET``).
    """
    return [PreferencePair(*row) for row in _SUPPORT]
