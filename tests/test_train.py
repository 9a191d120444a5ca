"""rmlearn.train: the tiny model learns the hidden rule, picks up length bias, and is reproducible."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest
import torch

from rmlearn import (
    RankedExample,
    RewardModel,
    TrainConfig,
    ValueModel,
    centering_penalty,
    evaluate,
    pairwise_loss,
    synthetic_preferences,
    tiny_backbone,
    train_reward_model,
    train_value_model,
)
from rmlearn.inputs import encode_batch

# The course model's accuracy, prompt reading and length bias are tested in tests/test_zoo.py.


@pytest.mark.parametrize("threads", [None, 2])  # the reference path; the fast path's 2 shards side by side
def test_same_seed_gives_identical_numbers(tokenizer, threads):
    data = synthetic_preferences(64, seed=5)
    runs = []
    for _ in range(2):
        model = RewardModel(tiny_backbone(seed=1), seed=1)
        history = train_reward_model(model, tokenizer, data, epochs=2, seed=3, threads=threads, progress=False)
        assert history.shards == (threads or 1)
        runs.append((history.loss, model.state_dict()))
    assert runs[0][0] == runs[1][0]
    assert all(torch.equal(runs[0][1][k], runs[1][1][k]) for k in runs[0][1])
    other = RewardModel(tiny_backbone(seed=1), seed=1)
    assert train_reward_model(other, tokenizer, data, epochs=2, seed=4, threads=threads, progress=False).loss != runs[0][0]


@pytest.mark.parametrize("margin, center", [(0.0, 0.0), (1.5, 0.0), (0.0, 0.1)])
def test_first_step_loss_is_the_library_objective(tokenizer, margin, center):
    data = synthetic_preferences(8, seed=2)
    model = RewardModel(tiny_backbone(seed=0), seed=0)
    prompts = [p.prompt for p in data]
    with torch.no_grad():
        r_c = model(*encode_batch(tokenizer, prompts, [p.chosen for p in data]))
        r_r = model(*encode_batch(tokenizer, prompts, [p.rejected for p in data]))
    expected = pairwise_loss(r_c, r_r, margin) + center * centering_penalty(r_c, r_r)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    history = train_reward_model(model, tokenizer, data, epochs=1, batch_size=8, margin=margin,
                                 center_coef=center, progress=False)
    assert history.loss[0] == pytest.approx(expected.item(), rel=1e-5)
    unchanged = {name for name, p in model.named_parameters() if torch.equal(before[name], p)}
    # the final LayerNorm bias shifts every score by the same amount, which the pairwise loss cannot
    # see (only differences are learned): it gets no gradient unless the centering term is on
    assert unchanged == (set() if center else {"backbone.ln_f.bias"})


def test_centering_keeps_scores_near_zero(tokenizer):
    data = synthetic_preferences(200, seed=0)
    means = {}
    for coef in (0.0, 0.5):
        model = RewardModel(tiny_backbone(seed=0), seed=0)
        train_reward_model(model, tokenizer, data, center_coef=coef, progress=False)
        m = evaluate(model, tokenizer, data)
        means[coef] = abs(m["mean_chosen"] + m["mean_rejected"]) / 2
    assert means[0.5] < means[0.0] and means[0.5] < 0.5


@pytest.mark.parametrize("loss", ["all_pairs", "plackett_luce"])
def test_rankings_train_with_all_pairs_and_plackett_luce(tokenizer, loss):
    import random

    from rmlearn.synthetic import synthetic_response

    rng, rankings = random.Random(0), []
    prompt = "How do I reset my password?"
    while len(rankings) < 240:  # rankings of 3 synthetic answers with distinct quality, best first
        trio = [synthetic_response(rng, prompt) for _ in range(3)]
        if len({q for _, q, _ in trio}) == 3:
            ordered = sorted(trio, key=lambda t: -t[1])
            rankings.append(RankedExample(prompt, tuple(t for t, _, _ in ordered)))
    train, test = rankings[:200], rankings[200:]
    model = RewardModel(tiny_backbone(seed=0), seed=0)
    history = train_reward_model(model, tokenizer, train, loss=loss, progress=False)
    assert sum(history.loss[-3:]) / 3 < history.loss[0] / 2
    assert evaluate(model, tokenizer, test)["accuracy"] > 0.9


def test_rankings_expand_to_all_pairs_for_pairwise_training(tokenizer):
    ranked = [RankedExample("q", ("a b", "c d", "e f", "g h"))] * 4
    history = train_reward_model(RewardModel(tiny_backbone()), tokenizer, ranked, epochs=1, batch_size=1,
                                 progress=False)
    # by hand: a-b a-c a-d b-c b-d c-d = 6 pairs per ranking of 4, × 4 rankings = 24 batches of one pair
    assert len(history) == 24


def test_the_old_loss_name_listwise_warns_and_trains_as_all_pairs(tokenizer):
    """loss="listwise", the old name of "all_pairs" (Plackett–Luce is the listwise loss), still
    trains, with a FutureWarning, to the same numbers."""
    def run(loss):
        model = RewardModel(tiny_backbone(seed=0), seed=0)
        history = train_reward_model(model, tokenizer, _rankings(8), epochs=1, batch_size=4, loss=loss,
                                     threads=None, progress=False)
        return history, model.state_dict()

    with pytest.warns(FutureWarning, match="use loss='all_pairs'"):
        old, old_weights = run("listwise")
    new, new_weights = run("all_pairs")
    assert old.loss == new.loss and old.config["loss"] == new.config["loss"] == "all_pairs"
    assert all(torch.equal(old_weights[name], new_weights[name]) for name in new_weights)


def test_the_old_loss_name_warns_under_the_default_filters():
    """A notebook or script calling train_reward_model(..., loss="listwise") sees the warning. It is
    raised inside rmlearn.train, not __main__: Python's default filters show a FutureWarning from
    there (a DeprecationWarning they hide). Cheap: margin with a non-pairwise loss stops the call
    right after TrainConfig, before anything loads or trains."""
    code = ("import rmlearn\n"
            "def notebook_cell():\n"
            "    try:\n"
            "        rmlearn.train_reward_model(None, None, [], loss='listwise', margin=1.0)\n"
            "    except ValueError as error:\n"
            "        print(error)\n"
            "notebook_cell()\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                            env={k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"})
    assert result.stdout.strip() == "margin is defined for the pairwise loss only"
    assert result.stderr.count("FutureWarning: loss='listwise' is deprecated, use loss='all_pairs'") == 1


def test_bad_settings_are_named(tokenizer):
    model, data = RewardModel(tiny_backbone()), synthetic_preferences(4)
    with pytest.raises(ValueError, match=r"unknown loss 'hinge'; choose one of \('pairwise', 'all_pairs', 'plackett_luce'\)"):
        train_reward_model(model, tokenizer, data, loss="hinge")
    with pytest.raises(ValueError, match="lr must be a positive number, got -1"):
        train_reward_model(model, tokenizer, data, lr=-1)
    with pytest.raises(ValueError, match="batch_size must be a positive integer, got 0"):
        train_reward_model(model, tokenizer, data, batch_size=0)
    with pytest.raises(ValueError, match="no training data"):
        train_reward_model(model, tokenizer, [])
    with pytest.raises(TypeError, match="unexpected keyword argument 'epoch'"):
        train_reward_model(model, tokenizer, data, epoch=3)


def test_value_model_learns_the_reward_models_scores(tokenizer):
    # one prompt, so the critic has to learn the scores of the answers, not which prompt goes with which
    data = [p for p in synthetic_preferences(400, seed=0) if p.prompt == "How do I reset my password?"][:48]
    reward = RewardModel(tiny_backbone(seed=0), seed=0)
    train_reward_model(reward, tokenizer, data, epochs=2, progress=False)
    value = ValueModel(tiny_backbone(seed=1), seed=1)
    history = train_value_model(value, reward, tokenizer, data, epochs=20, progress=False)
    # early prefixes cannot know the final score, so the loss has a floor well above zero
    assert sum(history.loss[-5:]) / 5 < history.loss[0] / 2
    prompts, responses = [p.prompt for p in data], [p.chosen for p in data]
    ids, mask = encode_batch(tokenizer, prompts, responses)
    with torch.no_grad():
        at_eos = value(ids, mask)[torch.arange(len(ids)), mask.sum(1) - 1]
    targets = reward.score(prompts, responses, tokenizer)
    corr = torch.corrcoef(torch.stack([at_eos, targets]))[0, 1].item()
    assert corr > 0.9


# --- precision, the practitioner's training features, one loop for both objectives -----------------


def _changed_fraction(dtype, tokenizer, lr=1e-5):
    """Fraction of all parameters that one epoch on 32 pairs changes, for a backbone loaded in dtype."""
    model = RewardModel(tiny_backbone(seed=0).to(dtype), seed=0)
    before = {n: p.detach().float().clone() for n, p in model.named_parameters()}
    history = train_reward_model(model, tokenizer, synthetic_preferences(32, seed=0), epochs=1, lr=lr,
                                 progress=False)
    changed = sum((p.detach() != before[n]).sum().item() for n, p in model.named_parameters())
    return changed / sum(p.numel() for p in model.parameters()), history, model


def test_bf16_backbone_at_lr_1e5_changes_what_fp32_changes(tokenizer):
    fp32, _, _ = _changed_fraction(torch.float32, tokenizer)
    bf16, history, model = _changed_fraction(torch.bfloat16, tokenizer)
    # rounding every update back to bf16 lost most of them (13 % changed); fp32 master weights keep
    # them all: only embedding rows of unseen tokens and ln_f.bias (no gradient) stay unchanged
    assert fp32 > 0.5 and bf16 == pytest.approx(fp32, abs=1e-3)
    assert next(model.parameters()).dtype == torch.float32  # the master weights come back
    assert all(torch.isfinite(torch.tensor(history.loss)))


def test_fp16_backbone_on_cpu_trains_to_a_finite_loss(tokenizer):
    # before: NaN from step 1 (AdamW's eps=1e-8 is 0 in fp16) and NaN in every parameter
    _, history, model = _changed_fraction(torch.float16, tokenizer, lr=3e-3)
    assert all(torch.isfinite(torch.tensor(history.loss)))
    assert all(torch.isfinite(p).all() for p in model.parameters())
    assert history.loss[-1] != history.loss[0]


@pytest.mark.parametrize("bad_step, cause", [(3, "lr too high (lr=0.003)"), (1, "bad data or a broken model")])
def test_non_finite_loss_stops_at_that_step_naming_the_cause(tokenizer, bad_step, cause):
    model = RewardModel(tiny_backbone(seed=0), seed=0)
    calls = []

    def poison(module, args, output):  # the head's output turns NaN in the bad step's forward
        calls.append(1)
        return output * float("nan") if len(calls) == bad_step else output

    model.head.register_forward_hook(poison)
    with pytest.raises(FloatingPointError, match=rf"loss is nan at step {bad_step} \(epoch 1\).*{re.escape(cause)}"):
        train_reward_model(model, tokenizer, synthetic_preferences(80, seed=0), epochs=1, progress=False,
                           threads=None)  # one forward per step (the fast path runs one per shard)
    assert len(calls) == bad_step  # it stopped there
    assert all(torch.isfinite(p).all() for p in model.parameters())  # the NaN never reached the weights


def test_fp16_overflow_is_named_when_training_in_fp16(tokenizer):
    model = RewardModel(tiny_backbone(seed=0), seed=0)
    model.head.register_forward_hook(lambda m, a, out: out * 1e6)  # scores beyond fp16's 65504
    with pytest.raises(FloatingPointError, match="fp16 overflow"):
        train_reward_model(model, tokenizer, synthetic_preferences(16, seed=0), epochs=1, precision="fp16",
                           progress=False)


def test_training_twice_gives_identical_weights(tokenizer):
    data = synthetic_preferences(48, seed=1)
    weights = []
    for _ in range(2):
        reward, value = RewardModel(tiny_backbone(seed=2), seed=2), ValueModel(tiny_backbone(seed=3), seed=3)
        train_reward_model(reward, tokenizer, data, epochs=1, progress=False)
        train_value_model(value, reward, tokenizer, data[:16], epochs=1, progress=False)
        weights.append({**reward.state_dict(), **{f"v.{k}": v for k, v in value.state_dict().items()}})
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])


def _record_steps(monkeypatch):
    """Record the learning rate and the gradient norm at every optimizer step."""
    from torch.optim.optimizer import register_optimizer_step_pre_hook

    seen = []

    def hook(optimizer, args, kwargs):
        params = [p for g in optimizer.param_groups for p in g["params"] if p.grad is not None]
        seen.append((optimizer.param_groups[0]["lr"], torch.nn.utils.get_total_norm([p.grad for p in params]).item()))

    handle = register_optimizer_step_pre_hook(hook)
    return seen, handle


def test_gradient_accumulation_equals_the_larger_batch(tokenizer):
    data = synthetic_preferences(16, seed=0)
    big, small = RewardModel(tiny_backbone(seed=0), seed=0), RewardModel(tiny_backbone(seed=0), seed=0)
    one = train_reward_model(big, tokenizer, data, epochs=1, batch_size=16, progress=False)
    two = train_reward_model(small, tokenizer, data, epochs=1, batch_size=8, grad_accum=2, progress=False)
    assert len(one) == 1 and len(two) == 2  # two batches, one optimizer step
    assert sum(two.loss) / 2 == pytest.approx(one.loss[0], rel=1e-5)
    for (name, p), q in zip(big.named_parameters(), small.parameters(), strict=True):  # the step's gradient
        if p.grad is not None:
            torch.testing.assert_close(p.grad, q.grad, atol=1e-7, rtol=1e-4, msg=name)


def test_clipping_and_warmup_schedule_shape_every_step(tokenizer, monkeypatch):
    data = synthetic_preferences(96, seed=0)  # 6 steps of 16
    seen, handle = _record_steps(monkeypatch)
    try:
        train_reward_model(RewardModel(tiny_backbone()), tokenizer, data, epochs=1, progress=False,
                           lr_schedule="constant", warmup_ratio=0.0, max_grad_norm=None)
        plain = list(seen)
        seen.clear()
        train_reward_model(RewardModel(tiny_backbone()), tokenizer, data, epochs=1, max_grad_norm=0.05,
                           lr_schedule="linear", warmup_steps=2, progress=False)
    finally:
        handle.remove()
    assert [lr for lr, _ in plain] == [3e-3] * 6 and max(n for _, n in plain) > 0.05
    lrs = [lr for lr, _ in seen]
    assert lrs == pytest.approx([1e-3, 2e-3, 3e-3, 2.25e-3, 1.5e-3, 0.75e-3])  # warm-up, then linear to 0
    assert max(n for _, n in seen) <= 0.05 + 1e-6
    cosine = TrainConfig(lr_schedule="cosine")
    from rmlearn.train import _lr_factor

    assert [round(_lr_factor(cosine, 4)(s), 6) for s in range(5)] == [1.0, 0.853553, 0.5, 0.146447, 0.0]
    default = TrainConfig()  # 5 % warm-up, then cosine: 40 steps warm up over 2
    assert [round(_lr_factor(default, 40)(s), 4) for s in (0, 1, 2, 21, 39)] == [0.3333, 0.6667, 1.0, 0.5, 0.0017]


def test_eval_split_checkpoints_and_too_long_policy(tokenizer, tmp_path):
    from rmlearn.inputs import encode_many

    data = synthetic_preferences(60, seed=0)
    model = RewardModel(tiny_backbone(seed=0), seed=0)
    history = train_reward_model(model, tokenizer, data, epochs=2, eval_split=0.2, save_dir=str(tmp_path),
                                 progress=False)
    assert len(history.eval_accuracy) == 2 and all(0.0 <= a <= 1.0 for a in history.eval_accuracy)
    assert len(history) == 2 * 3  # 48 training pairs = 3 batches of 16 per epoch
    assert [p.rsplit("-", 1)[1] for p in history.checkpoints] == ["3", "6"]
    loaded = RewardModel.from_pretrained(history.checkpoints[-1])
    assert torch.equal(loaded.score(data[0].prompt, data[0].chosen, tokenizer),
                       model.score(data[0].prompt, data[0].chosen, tokenizer))

    lengths = [max(len(a), len(b)) for a, b in zip(*(encode_many(tokenizer, [p.prompt for p in data], texts)
                                                     for texts in ([p.chosen for p in data], [p.rejected for p in data])))]
    limit = sorted(lengths)[len(lengths) // 2]  # about half the pairs are longer
    n_long = sum(n > limit for n in lengths)
    kept = train_reward_model(RewardModel(tiny_backbone()), tokenizer, data, epochs=1, batch_size=1,
                              max_length=limit, progress=False)
    dropped = train_reward_model(RewardModel(tiny_backbone()), tokenizer, data, epochs=1, batch_size=1,
                                 max_length=limit, too_long="drop", progress=False)
    assert 0 < n_long < 60 and kept.too_long == dropped.too_long == n_long
    assert (len(kept), len(dropped)) == (60, 60 - n_long)


def test_threads_setting_is_used_and_restored(tokenizer, monkeypatch):
    import rmlearn.fastcpu

    def run(**config):
        return train_reward_model(RewardModel(tiny_backbone()), tokenizer, synthetic_preferences(4), epochs=1,
                                  progress=False, **config)

    before = torch.get_num_threads()
    history = run(threads=2)
    assert (history.threads, history.shards) == (2, 2) and torch.get_num_threads() == before
    reference = run(threads=None)
    assert (reference.threads, reference.shards) == (1, 1)  # one forward per batch on one thread
    assert rmlearn.fastcpu.usable_cores() == len(os.sched_getaffinity(0))
    # "auto" (the default): one thread per shard, at most the usable cores and torch's thread count
    for cores, shards, expected in ((1, 2, 1), (8, 2, min(2, before)), (8, 3, min(3, before)), (2, 1, 2)):
        monkeypatch.setattr(rmlearn.fastcpu, "usable_cores", lambda cores=cores: cores)
        auto = run(shards=shards)
        assert (auto.threads, auto.shards) == ((expected, shards) if shards > 1 else (before, 1))
        assert torch.get_num_threads() == before
    with pytest.raises(ValueError, match="apply to the reward model"):
        train_value_model(ValueModel(tiny_backbone()), RewardModel(tiny_backbone()), tokenizer,
                          synthetic_preferences(4), loss="all_pairs")


def _one_step_gradients(model, train, threads):
    """Train one batch (one optimizer step, lr ~0) and return the history and the step's gradients."""
    history = train(model, threads)
    assert len(history) == 1
    return history, {name: p.grad.clone() for name, p in model.named_parameters() if p.grad is not None}


def _rankings(n: int, seed: int = 0) -> list[RankedExample]:
    import random

    from rmlearn.synthetic import synthetic_response

    rng, out = random.Random(seed), []
    while len(out) < n:
        trio = [synthetic_response(rng, "My order has not arrived yet.") for _ in range(3)]
        out.append(RankedExample("My order has not arrived yet.", tuple(t for t, _, _ in sorted(trio, key=lambda t: -t[1]))))
    return out


@pytest.mark.parametrize("objective", ["pairwise", "all_pairs", "centering", "value"])
def test_fast_path_shards_add_up_to_the_whole_batch_gradient(tokenizer, objective):
    """threads=3 cuts one batch into 3 shards run side by side; weighted by their share of the batch
    (of the value model's states, which differ per text), the shards' gradients must add up to the
    whole batch's gradient, and their losses and accuracies to its loss and accuracy."""
    data = synthetic_preferences(7, seed=4)
    reward = RewardModel(tiny_backbone(seed=2), seed=2)  # a fixed scorer: the value model's targets

    def train(model, threads):
        if objective == "value":  # 4 pairs = 8 texts of different lengths: shards of 3, 3 and 2 texts
            return train_value_model(model, reward, tokenizer, data[:4], batch_size=8, epochs=1, lr=1e-9,
                                     threads=threads, shards=3, progress=False)
        extra = {"pairwise": {}, "centering": {"center_coef": 0.3}, "all_pairs": {"loss": "all_pairs"}}[objective]
        examples = _rankings(7) if objective == "all_pairs" else data  # shards of 2, 3 and 2 examples
        return train_reward_model(model, tokenizer, examples, batch_size=7, epochs=1, lr=1e-9, threads=threads,
                                  shards=3, progress=False, **extra)

    kind = ValueModel if objective == "value" else RewardModel
    whole, grads = _one_step_gradients(kind(tiny_backbone(seed=5), seed=5), train, None)
    sharded, sharded_grads = _one_step_gradients(kind(tiny_backbone(seed=5), seed=5), train, 3)
    assert (whole.shards, sharded.shards, sharded.threads) == (1, 3, 3)
    assert sharded.loss[0] == pytest.approx(whole.loss[0], rel=1e-5)
    if objective != "value":
        assert sharded.accuracy[0] == pytest.approx(whole.accuracy[0], abs=1e-6)
    assert grads.keys() == sharded_grads.keys() and len(grads) > 10
    for name, g in grads.items():
        torch.testing.assert_close(sharded_grads[name], g, atol=1e-6, rtol=1e-4, msg=name)


def test_fast_path_trains_with_fused_gelu_and_puts_the_backbones_own_back(tokenizer):
    from transformers.activations import NewGELUActivation

    model = RewardModel(tiny_backbone(seed=0), seed=0)
    seen = []
    model.backbone.h[0].mlp.register_forward_pre_hook(lambda module, args: seen.append(type(module.act)))
    data = synthetic_preferences(16, seed=0)
    train_reward_model(model, tokenizer, data, epochs=1, threads=None, progress=False)  # the reference path: GPT-2's own
    train_reward_model(model, tokenizer, data, epochs=1, progress=False)  # the default, the fast path
    assert seen == [NewGELUActivation, torch.nn.GELU, torch.nn.GELU]  # one forward, then one per shard
    assert all(type(block.mlp.act) is NewGELUActivation for block in model.backbone.h)
    x = torch.linspace(-8, 8, 10_001)  # the same function, to float rounding
    assert (NewGELUActivation()(x) - torch.nn.GELU(approximate="tanh")(x)).abs().max() < 1e-6


def test_fast_path_numbers_depend_on_the_config_not_on_threads_or_load(tokenizer):
    """The default path cuts each batch into TrainConfig.shards shards: the same seed gives the same
    weights on 1 thread, on 2, and with a spinning process taking a core (not sampled, not counted)."""
    from benchmarks.busy import busy_machine

    data = synthetic_preferences(64, seed=5)

    def run(**config):
        model = RewardModel(tiny_backbone(seed=1), seed=1)
        history = train_reward_model(model, tokenizer, data, epochs=1, seed=3, progress=False, **config)
        return history, model.state_dict()

    (default, weights), (one, one_weights) = run(), run(threads=1)
    with busy_machine(1):
        busy, busy_weights = run()
    assert (default.shards, one.shards, busy.shards) == (2, 2, 2) and one.threads == 1
    for history, other in ((one, one_weights), (busy, busy_weights)):
        assert history.loss == default.loss
        assert all(torch.equal(other[k], weights[k]) for k in weights)
    three, _ = run(shards=3)  # another shard count is another config: other rounding
    assert three.loss != default.loss


def test_a_backbone_with_dropout_is_not_sharded(tokenizer):
    """Shards side by side would draw dropout masks from torch's one generator in a racing order."""
    model = RewardModel(tiny_backbone(seed=0, resid_pdrop=0.1), seed=0)
    history = train_reward_model(model, tokenizer, synthetic_preferences(16, seed=0), epochs=1, threads=2,
                                 progress=False)
    assert (history.threads, history.shards) == (2, 1)  # torch splits each op over 2 threads instead


# --- defects a user hit (each test failed before its fix) --------------------------------------------------------------

def test_linear_schedule_ends_at_zero_with_rankings_of_mixed_size(tokenizer, monkeypatch):
    """Defect 5: with K = 2 and K = 3 examples the number of batches changes with the shuffle; the
    schedule's length was counted on another shuffle, and the lr went below 0 (gradient ascent)."""
    data = _rankings(80) + synthetic_preferences(90, seed=0)  # batches of 2: 2 chunks of 100 examples
    seen, handle = _record_steps(monkeypatch)
    try:
        history = train_reward_model(RewardModel(tiny_backbone()), tokenizer, data, epochs=3, batch_size=2,
                                     loss="all_pairs", lr=1e-6, lr_schedule="linear", warmup_ratio=0.0, progress=False)
    finally:
        handle.remove()
    lrs = [lr for lr, _ in seen]
    assert len(lrs) == history.optimizer_steps == len(history)
    assert min(lrs) > 0 and lrs[-1] == pytest.approx(1e-6 / len(lrs))  # linear: the last step is 1/N of lr


def test_history_counts_optimizer_steps(tokenizer):
    history = train_reward_model(RewardModel(tiny_backbone()), tokenizer, synthetic_preferences(80, seed=0),
                                 epochs=2, grad_accum=2, progress=False)
    assert len(history) == 10 and history.optimizer_steps == 6  # 5 batches = 3 steps per epoch


def test_an_exploding_but_finite_loss_is_flagged(tokenizer):
    """Defect 11: a loss of 1e8 is finite, so it went unnoticed."""
    model = RewardModel(tiny_backbone(seed=0), seed=0)
    calls = []

    def explode(module, args, output):  # from the third forward on, the scores are huge
        calls.append(1)
        return output * 1e9 if len(calls) > 2 else output

    model.head.register_forward_hook(explode)
    with pytest.warns(RuntimeWarning, match=r"the training loss rose to [0-9.e+]+ at step \d+ .*diverged"):
        train_reward_model(model, tokenizer, synthetic_preferences(80, seed=0), epochs=1, progress=False)


def test_a_non_finite_stop_leaves_the_model_in_eval_mode_and_its_own_dtype(tokenizer):
    model = RewardModel(tiny_backbone(seed=0).to(torch.bfloat16), seed=0)
    calls = []
    model.head.register_forward_hook(lambda m, a, out: (calls.append(1), out * float("nan") if len(calls) == 2 else out)[1])
    with pytest.raises(FloatingPointError, match="loss is nan at step 2"):
        train_reward_model(model, tokenizer, synthetic_preferences(48, seed=0), epochs=1, progress=False,
                           threads=None)  # one forward per step (the fast path runs one per shard)
    assert not model.training and {p.dtype for p in model.parameters()} == {torch.bfloat16}


def test_gradient_checkpointing_gives_the_same_step_and_is_switched_off_after(tokenizer):
    data = synthetic_preferences(16, seed=0)
    runs = []
    for checkpointing in (False, True):
        model = RewardModel(tiny_backbone(seed=0), seed=0)
        seen = []
        def on(model=model):  # transformers' own flag, on the blocks it recomputes
            return any(getattr(m, "gradient_checkpointing", False) for m in model.backbone.modules())

        model.backbone.h[0].register_forward_pre_hook(lambda m, a, seen=seen, on=on: seen.append(on()))
        history = train_reward_model(model, tokenizer, data, epochs=1, gradient_checkpointing=checkpointing,
                                     progress=False)
        assert set(seen) == {checkpointing} and not on()
        runs.append((history.loss, {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}))
    assert runs[1][0] == pytest.approx(runs[0][0], abs=1e-6)
    for name, grad in runs[0][1].items():
        torch.testing.assert_close(runs[1][1][name], grad, atol=1e-6, rtol=1e-5, msg=name)


def test_training_and_tiny_backbone_leave_the_callers_gpu_generators_alone(tokenizer, monkeypatch):
    """fork_rng(devices=[]) saves only the CPU generator, and torch.manual_seed
    reseeds every GPU's too (queued when CUDA is not started yet), so a caller's CUDA random stream
    changed. Now only the CPU generator (and the training GPU's, restored) is seeded."""
    calls = []
    monkeypatch.setattr(torch.cuda, "manual_seed_all", lambda seed: calls.append(seed))
    monkeypatch.setattr(torch.cuda, "manual_seed", lambda seed: calls.append(seed))
    model = RewardModel(tiny_backbone(seed=7), seed=7)
    state = torch.get_rng_state()
    train_reward_model(model, tokenizer, synthetic_preferences(16, seed=0), epochs=1, seed=5, progress=False)
    assert calls == [] and torch.equal(torch.get_rng_state(), state)


def test_each_pairs_own_margin_enters_the_loss_and_ties_are_refused(tokenizer):
    """A pair's margin (TRL's column, or a rating) is its m in −log σ(Δ − m): pairs that all carry
    m = 1 train exactly as unmarked pairs with TrainConfig.margin = 1; other margins change the loss."""
    from dataclasses import replace

    from rmlearn import RewardModel, tiny_backbone
    from rmlearn.synthetic import synthetic_preferences

    pairs = synthetic_preferences(32, seed=0)

    def losses(data, **config):
        model = RewardModel(tiny_backbone(seed=0), seed=0)
        return train_reward_model(model, tokenizer, data, epochs=1, batch_size=8, progress=False, threads=None,
                                  **config).loss

    marked = [replace(p, margin=1.0) for p in pairs]
    assert losses(marked) == losses(pairs, margin=1.0)
    mixed = [replace(p, margin=float(i % 3)) for i, p in enumerate(pairs)]
    assert losses(mixed) != losses(marked)
    with pytest.raises(ValueError, match="only the pairwise loss"):
        losses(marked, loss="all_pairs")
    with pytest.raises(ValueError, match=r"2 training pairs are labelled as ties \(the first is pair 3\)"):
        losses([replace(p, tie=i in (3, 7)) for i, p in enumerate(pairs)])
