"""rmlearn.data and rmlearn.synthetic: JSONL formats, every malformed case named by file and line, course data sets."""

from __future__ import annotations

import json
import re

import pytest

from rmlearn import (
    DataError,
    PreferencePair,
    RankedExample,
    load_preferences,
    support_pairs,
    synthetic_preferences,
)
from rmlearn.data import split
from rmlearn.synthetic import (
    HELPFUL,
    HELPFUL_FOR,
    SYNTHETIC_PROMPTS,
    UNHELPFUL,
    length_probe,
    phrase_kind,
    prompt_swap_probe,
    quality,
)


def _write(tmp_path, *lines: str):
    path = tmp_path / "prefs.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_explicit_implicit_conversational_and_ranked_formats(tmp_path):
    path = _write(
        tmp_path,
        json.dumps({"prompt": "Q?", "chosen": "good", "rejected": "bad"}),
        "",  # blank lines are skipped
        json.dumps({"chosen": "User: hi there\nAssistant: hello!", "rejected": "User: hi there\nAssistant: go away"}),
        json.dumps({"prompt": [{"role": "user", "content": "Hi"}],
                    "chosen": [{"role": "assistant", "content": "Hello"}],
                    "rejected": [{"role": "assistant", "content": "Bye"}]}),
        json.dumps({"chosen": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
                    "rejected": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Bye"}]}),
        json.dumps({"prompt": "Rank", "responses": ["best", "middle", "worst"]}),
    )
    explicit, implicit, conv, conv_implicit, ranked = load_preferences(path)
    assert explicit == PreferencePair("Q?", "good", "bad")
    assert implicit == PreferencePair("User: hi there\nAssistant:", "hello!", "go away")
    assert conv == PreferencePair("user: Hi", "assistant: Hello", "assistant: Bye")
    assert conv_implicit.prompt.startswith("user: Hi") and conv_implicit.chosen.endswith("Hello")
    assert ranked == RankedExample("Rank", ("best", "middle", "worst"))
    assert len(ranked.pairs()) == 3


BAD_LINES = [
    ('{"prompt": "Q", "chosen": "a", "rejected": "b"', "invalid JSON"),
    ('["prompt", "chosen"]', "must be a JSON object, got list"),
    ('{"prompt": "Q", "chosen": "a"}', "missing key 'rejected'"),
    ('{"prompt": "Q", "rejected": "b"}', "missing key 'chosen'"),
    ('{"prompt": "Q", "chosen": "", "rejected": "b"}', "'chosen' is empty"),
    ('{"prompt": "Q", "chosen": "a", "rejected": "   "}', "'rejected' is empty"),
    ('{"prompt": "", "chosen": "a", "rejected": "b"}', "'prompt' is empty"),
    ('{"prompt": 3, "chosen": "a", "rejected": "b"}', "'prompt' must be a string, got int"),
    ('{"prompt": "Q", "chosen": null, "rejected": "b"}', "'chosen' must be a string, got NoneType"),
    ('{"prompt": "Q", "chosen": "same", "rejected": "same"}', "are the same response"),
    ('{"prompt": "Q", "responses": ["only one"]}', "at least 2 responses"),
    ('{"prompt": "Q", "responses": "not a list"}', "at least 2 responses"),
    ('{"prompt": "Q", "responses": ["a", 7]}', "'responses[1]' must be a string, got int"),
    ('{"prompt": "Q", "responses": ["a", "a"]}', "the same response twice"),
    ('{"responses": ["a", "b"]}', "missing key 'prompt'"),
    ('{"chosen": "abc", "rejected": "xyz"}', "share no prompt prefix"),
    ('{"chosen": [{"role": "user"}], "rejected": [{"role": "user", "content": "x"}]}', "chosen[0] must be an object"),
    ('{"chosen": [], "rejected": [{"role": "user", "content": "x"}]}', "non-empty list of messages"),
    ('{"prompt": "Q", "chosen": "' + "x" * 20_001 + '", "rejected": "b"}', "20001 characters long (limit 20000)"),
    ("42", "must be a JSON object, got int"),
]


@pytest.mark.parametrize("line, message", BAD_LINES, ids=[m for _, m in BAD_LINES])
def test_malformed_line_raises_data_error_with_file_and_line(tmp_path, line, message):
    good = json.dumps({"prompt": "Q", "chosen": "a", "rejected": "b"})
    path = _write(tmp_path, good, good, line)
    with pytest.raises(DataError, match=re.escape(message)) as info:
        load_preferences(path)
    assert info.value.line == 3 and info.value.path == str(path)
    assert str(info.value).startswith(f"{path}:3: ")


def test_empty_file_and_missing_file(tmp_path):
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(DataError, match="no examples"):
        load_preferences(empty)
    with pytest.raises(FileNotFoundError, match="no preference file"):
        load_preferences(tmp_path / "missing.jsonl")


def test_ranked_example_needs_two_responses():
    with pytest.raises(ValueError, match="at least 2"):
        RankedExample("Q", ("a",))


def test_support_pairs_start_with_the_password_reset_example():
    pairs = support_pairs()
    assert len(pairs) == 16 and pairs[0].prompt == "How do I reset my password?"
    assert all(p.chosen != p.rejected for p in pairs)


def _quality_gap(pair):
    return quality(pair.prompt, pair.chosen) - quality(pair.prompt, pair.rejected)


def test_quality_depends_on_the_prompt():
    answer = "click forgot password, kind regards."
    assert quality("How do I reset my password?", answer) == 1.0
    assert quality("The app keeps crashing.", answer) == 0.0  # a good answer, to another question
    assert quality("The app keeps crashing.", "I cannot help, update the app, update the app.") == 0.0
    assert quality("The app keeps crashing.", "any text at all, even 123") == 0.0
    assert phrase_kind("The app keeps crashing.", "update the app") == "helpful"
    assert phrase_kind("I was charged twice.", "update the app") == "off-topic"
    with pytest.raises(ValueError, match="'Hi' is not a synthetic prompt"):
        quality("Hi", answer)


def test_helpful_and_unhelpful_phrases_have_the_same_lengths():
    lengths = sorted(len(p.split()) for p in UNHELPFUL)
    for prompt in SYNTHETIC_PROMPTS:  # one phrase of 3, 4 and 5 words each
        assert [len(p.split()) for p in HELPFUL_FOR[prompt]] == [3, 4, 5]
    assert lengths == [3, 3, 4, 4, 5, 5] and len(set(HELPFUL)) == len(HELPFUL) == 18


def test_synthetic_preferences_follow_the_quality_rule_without_bias():
    pairs = synthetic_preferences(300, seed=0)
    assert all(_quality_gap(p) > 0 for p in pairs)
    assert synthetic_preferences(300, seed=0) == pairs and synthetic_preferences(300, seed=1) != pairs
    # a third of the pairs are a good answer to this question against a good answer to another one
    swaps = sum(quality(p.prompt, p.chosen) == 1 and quality(p.prompt, p.rejected) == 0 for p in pairs)
    assert swaps > 100


def test_quality_and_length_are_uncorrelated():
    import torch

    pairs = synthetic_preferences(2000, seed=0)
    q = [quality(p.prompt, r) for p in pairs for r in (p.chosen, p.rejected)]
    n = [len(r.split()) for p in pairs for r in (p.chosen, p.rejected)]
    corr = torch.corrcoef(torch.tensor([q, n], dtype=torch.float64))[0, 1].item()
    print(f"correlation of quality with length over {len(q)} responses: {corr:+.3f}")
    assert abs(corr) < 0.05


def test_length_bias_makes_annotators_prefer_longer_answers():
    def longer_rate(pairs):
        return sum(len(p.chosen.split()) > len(p.rejected.split()) for p in pairs) / len(pairs)

    unbiased, biased = synthetic_preferences(1000, 0, 0.0), synthetic_preferences(1000, 0, 0.9)
    assert 0.4 < longer_rate(unbiased) < 0.6  # length is independent of quality
    assert longer_rate(biased) > 0.9  # 90 % by length + half of the rest by chance
    assert sum(_quality_gap(p) < 0 for p in biased) > 300  # labels now contradict quality


def test_length_probe_pairs_are_better_but_shorter():
    for p in length_probe(100):
        assert _quality_gap(p) > 0
        assert len(p.chosen.split()) < len(p.rejected.split())


def test_prompt_swap_probe_pairs_answer_this_question_or_another_equally_well():
    pairs = prompt_swap_probe(100, seed=2)
    assert pairs == prompt_swap_probe(100, seed=2) and len({p.prompt for p in pairs}) == 6
    for p in pairs:
        assert quality(p.prompt, p.chosen) == 1 and quality(p.prompt, p.rejected) == 0
        assert len(p.chosen.split()) == len(p.rejected.split())
        other = [q for q in SYNTHETIC_PROMPTS if q != p.prompt and quality(q, p.rejected) == 1]
        assert len(other) == 1  # the rejected answer is a good answer to exactly one other prompt
        assert p.chosen.split(",")[1:] == p.rejected.split(",")[1:]  # the same filler


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="length_bias is a probability in \\[0, 1\\], got 1.5"):
        synthetic_preferences(10, length_bias=1.5)
    with pytest.raises(ValueError, match="positive number of pairs, got 0"):
        synthetic_preferences(0)
    with pytest.raises(ValueError, match="positive number of pairs, got 0"):
        prompt_swap_probe(0)
    with pytest.raises(ValueError, match="between 0 and 1, got 1.0"):
        split([1, 2, 3], 1.0)


# --- defects a user hit (each test failed before its fix) --------------------------------------------------------------

def test_implicit_pair_where_one_response_is_the_other_plus_more_words(tmp_path):
    """Defect 9: 'Sure' vs 'Sure thing': the shared prefix ends where the longer one has a space;
    the prompt used to be cut there, leaving the shorter response empty."""
    dialog = "\n\nHuman: Can you help me?\n\nAssistant:"
    path = _write(tmp_path, json.dumps({"chosen": dialog + " Sure thing", "rejected": dialog + " Sure"}),
                  json.dumps({"chosen": dialog + " No", "rejected": dialog + " No way"}))
    assert load_preferences(path) == [PreferencePair(dialog, "Sure thing", "Sure"), PreferencePair(dialog, "No", "No way")]


def test_a_file_that_is_not_utf8_is_named_with_its_line(tmp_path):
    path = tmp_path / "latin1.jsonl"
    path.write_bytes(b'{"prompt": "Q", "chosen": "a", "rejected": "b"}\n'
                     + '{"prompt": "Qué", "chosen": "sí", "rejected": "no"}\n'.encode("latin-1"))
    with pytest.raises(DataError, match=re.escape(f"{path}:2: not UTF-8 text")):
        load_preferences(path)


def test_a_rankings_pairs_are_ranking_to_pairs_of_its_responses():
    from rmlearn import ranking_to_pairs

    example = RankedExample("Q?", ("a", "b", "c", "d"))
    assert [(p.chosen, p.rejected) for p in example.pairs()] == ranking_to_pairs(example.responses)
    assert {p.prompt for p in example.pairs()} == {"Q?"}


def test_label_noise_flips_that_share_of_labels_and_leaves_noiseless_data_as_it_was():
    from rmlearn.synthetic import quality

    pairs = synthetic_preferences(2000, seed=0, label_noise=0.25)
    flipped = sum(quality(p.prompt, p.chosen) < quality(p.prompt, p.rejected) for p in pairs) / len(pairs)
    assert abs(flipped - 0.25) < 0.03
    assert synthetic_preferences(50, seed=0, label_noise=0.0) == synthetic_preferences(50, seed=0)
    with pytest.raises(ValueError, match="label_noise"):
        synthetic_preferences(5, label_noise=0.6)
