"""rmlearn.zoo: the shipped course models are current and good; training afresh still reaches the
same targets on this machine's CPU kernels (CI runs this file under two kernel sets); other settings
are trained once and kept on disk."""

from __future__ import annotations

import json

import pytest
import torch

from benchmarks.course_models import loss_end_and_best
from rmlearn import evaluate, length_probe, synthetic_preferences, zoo
from rmlearn.synthetic import prompt_swap_probe

pytestmark = pytest.mark.kernels  # trained models' numbers: checked under two CPU kernel sets

HELD_OUT, SWAP = 0.97, 0.95  # the course model's targets on every CPU, for seeds 0-4 (docs/course_models.md)


def _prefers_longer(model, tokenizer, pairs):
    """Fraction of length-probe pairs (better = shorter) where the longer answer scores higher."""
    return 1.0 - evaluate(model, tokenizer, pairs)["accuracy"]


def _check_course_model(model, tokenizer):
    swap = evaluate(model, tokenizer, prompt_swap_probe(200, seed=2))["accuracy"]
    held_out = evaluate(model, tokenizer, synthetic_preferences(300, seed=123))  # never seen in training
    longer = _prefers_longer(model, tokenizer, length_probe(200))
    print(f"prompt-swap accuracy {swap:.3f}, held-out accuracy {held_out['accuracy']:.3f}, "
          f"prefers longer on {longer:.1%} of length-probe pairs")
    assert swap >= SWAP  # its own question's good answer beats a good answer to another one
    assert held_out["accuracy"] >= HELD_OUT and held_out["num_pairs"] == 300
    assert longer < 0.1


def test_the_shipped_course_model_reads_the_prompt_and_learns_the_hidden_rule(tokenizer):
    assert zoo.is_shipped("reward", length_bias=0.0, seed=0, pooling="eos", n_pairs=zoo.N_PAIRS)
    _check_course_model(zoo.trained_reward_model(), tokenizer)


def test_the_shipped_weights_match_the_code_that_would_train_them():
    """A change to the synthetic data, the tokenizer or the recipe must rebuild the shipped weights
    (scripts/build_course_models.py); every shipped setting is in the manifest and vice versa."""
    manifest = json.loads((zoo.WEIGHTS / "manifest.json").read_text())["models"]
    names = {zoo.reward_name(*s) for s in zoo.SHIPPED_REWARD} | {zoo.policy_name(s) for s in zoo.SHIPPED_POLICY}
    assert set(manifest) == names == {p.stem for p in zoo.WEIGHTS.glob("*.safetensors")}
    for name, entry in manifest.items():
        assert entry["fingerprint"] == zoo.recipe_fingerprint(entry["kind"], **entry["settings"]), (
            f"{name} is stale: run scripts/build_course_models.py")


def test_training_afresh_on_this_cpu_reaches_the_targets(tokenizer, monkeypatch, tmp_path):
    """What a student whose CPU rounds differently gets when training the course model: seed 0 here;
    seeds 0-4 under every kernel set in benchmarks/course_models.py."""
    monkeypatch.setenv("RMLEARN_SHIPPED", "off")
    monkeypatch.setenv("RMLEARN_CACHE", str(tmp_path))
    from rmlearn import RewardModel, course_tokenizer, tiny_backbone, train_reward_model

    model = RewardModel(tiny_backbone(seed=0))
    history = train_reward_model(model, course_tokenizer(), zoo.course_data()[0], seed=0, progress=False,
                                 **zoo.COURSE_RECIPE)
    _check_course_model(model.eval(), tokenizer)
    last, best = loss_end_and_best(history.loss)
    assert last < 0.05 and last <= 2 * best + 0.005  # the curve ends low, not rising


def test_a_length_biased_course_model_prefers_longer_answers(tokenizer):
    rate = _prefers_longer(zoo.trained_reward_model(length_bias=0.9), tokenizer, length_probe(200))
    print(f"length_bias=0.9: prefers the longer answer on {rate:.1%} of length-probe pairs")
    assert rate > 0.7


def test_other_settings_are_trained_once_and_kept_on_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("RMLEARN_CACHE", str(tmp_path))
    zoo._trained.cache_clear()
    first = zoo.trained_reward_model(seed=3, n_pairs=16)
    (saved,) = (tmp_path / "zoo").glob("reward-b0.0-s3-eos-n16-*.safetensors")
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
    monkeypatch.setenv("RMLEARN_CACHE", value)
    assert zoo._cache_file("reward-b0.0-s0-eos-n16") is None
    monkeypatch.setenv("RMLEARN_CACHE", str(tmp_path))
    assert zoo._cache_file("reward-b0.0-s0-eos-n16").parent == tmp_path / "zoo"


def test_ps3_probe_scores_are_those_of_the_shipped_models():
    """exercises/source/ps3_bias_and_segments/probe_scores.json is what its script gives today."""
    import runpy
    from pathlib import Path

    script = runpy.run_path(str(Path(__file__).parents[1] / "scripts" / "build_ps3_probe_scores.py"))
    shipped, fresh = json.loads(script["OUT"].read_text()), script["build"]()
    assert shipped["pairs"] == fresh["pairs"]
    for name in script["BIASES"]:
        for key in ("r_chosen", "r_rejected"):
            torch.testing.assert_close(torch.tensor(shipped[name][key]), torch.tensor(fresh[name][key]),
                                       atol=2e-4, rtol=0)
    assert script["longer_preferred_rate"](shipped, "annotators_biased") > 0.8
    assert script["longer_preferred_rate"](shipped, "annotators_fair") < 0.1
