"""rmlearn.zoo: the course model reads the prompt, learns the annotators' length bias when they
have one, and is kept on disk so the next kernel does not train it again."""

from __future__ import annotations

import pytest
import torch

from rmlearn import evaluate, length_probe, synthetic_preferences
from rmlearn.data import prompt_swap_probe


def _prefers_longer(model, tokenizer, pairs):
    """Fraction of length-probe pairs (better = shorter) where the longer answer scores higher."""
    return 1.0 - evaluate(model, tokenizer, pairs)["accuracy"]


def test_course_model_reads_the_prompt_and_learns_the_hidden_rule(tokenizer):
    from rmlearn.zoo import trained_reward_model

    model = trained_reward_model()
    swap = evaluate(model, tokenizer, prompt_swap_probe(200, seed=2))
    held_out = evaluate(model, tokenizer, synthetic_preferences(300, seed=123))  # never seen in training
    longer = _prefers_longer(model, tokenizer, length_probe(200))
    print(f"prompt-swap accuracy {swap['accuracy']:.3f}, held-out accuracy {held_out['accuracy']:.3f}, "
          f"prefers longer on {longer:.1%} of length-probe pairs")
    assert swap["accuracy"] >= 0.9  # its own question's good answer beats a good answer to another one
    assert held_out["accuracy"] >= 0.95 and held_out["num_pairs"] == 300
    assert longer < 0.2


def test_a_length_biased_course_model_prefers_longer_answers(tokenizer):
    from rmlearn.zoo import trained_reward_model

    rate = _prefers_longer(trained_reward_model(length_bias=0.9), tokenizer, length_probe(200))
    print(f"length_bias=0.9: prefers the longer answer on {rate:.1%} of length-probe pairs")
    assert rate > 0.7


def test_trained_weights_are_kept_on_disk_and_reloaded(tmp_path, monkeypatch, tokenizer):
    from rmlearn import zoo

    monkeypatch.setenv("RMLEARN_CACHE", str(tmp_path))
    zoo._trained.cache_clear()
    first = zoo.trained_reward_model(seed=3, n_pairs=16)
    (saved,) = (tmp_path / "zoo").glob("reward-*-s3-eos-n16.pt")
    zoo._trained.cache_clear()
    again = zoo.trained_reward_model(seed=3, n_pairs=16)  # loaded, not trained
    assert again is not first
    for name, value in first.state_dict().items():
        torch.testing.assert_close(again.state_dict()[name], value, rtol=0, atol=0)
    saved.write_bytes(b"damaged")
    zoo._trained.cache_clear()
    retrained = zoo.trained_reward_model(seed=3, n_pairs=16)  # a damaged file is trained again
    torch.testing.assert_close(retrained.head.weight, first.head.weight)
    zoo._trained.cache_clear()


@pytest.mark.parametrize("value", ["off", "0"])
def test_the_disk_cache_can_be_switched_off(tmp_path, monkeypatch, value):
    from rmlearn import zoo

    monkeypatch.setenv("RMLEARN_CACHE", value)
    assert zoo._cache_file(0.0, 0, "eos", 16) is None
    monkeypatch.setenv("RMLEARN_CACHE", str(tmp_path))
    assert zoo._cache_file(0.0, 0, "eos", 16).parent == tmp_path / "zoo"
