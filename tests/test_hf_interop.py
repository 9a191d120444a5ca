"""Hugging Face interop: rmlearn's reward equals transformers' on tiny random decoders of several
architectures (forward, saved checkpoint, pipeline, loading theirs), heads of any name, tokenizers
with BOS / appended EOS / no PAD, devices and dtypes, and a TRL GRPO step with rmlearn's reward."""

from __future__ import annotations

import copy
import importlib.util
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file
from torch.testing import assert_close
from transformers import (
    AutoModelForSequenceClassification,
    GPT2Config,
    GPT2ForTokenClassification,
    GPT2LMHeadModel,
    PreTrainedTokenizerFast,
    pipeline,
)

from rmlearn import RewardModel, ValueModel, course_tokenizer, load_tokenizer, support_pairs, tiny_backbone
from rmlearn.backbone import EOS_TOKEN, PAD_TOKEN
from rmlearn.inputs import encode, encode_batch

ROOT = Path(__file__).parents[1]
_spec = importlib.util.spec_from_file_location("hf_parity", ROOT / "benchmarks" / "hf_parity.py")
hf_parity = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(hf_parity)


def _texts():
    pairs = support_pairs()[:4]
    return [p.prompt for p in pairs], [p.chosen for p in pairs]


def _gpt2_config(tokenizer, **extra) -> GPT2Config:
    return GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=2, n_head=4, n_positions=128,
                      eos_token_id=tokenizer.eos_token_id, bos_token_id=tokenizer.eos_token_id,
                      pad_token_id=tokenizer.pad_token_id, **extra)


def _bos_tokenizer(add_eos: bool = False) -> PreTrainedTokenizerFast:
    """The course tokenizer made Llama-style: a distinct BOS put before every text (and EOS after)."""
    backend = copy.deepcopy(course_tokenizer().backend_tokenizer)
    backend.add_special_tokens(["<s>"])
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token=EOS_TOKEN,
                                   pad_token=PAD_TOKEN, add_bos_token=True, add_eos_token=add_eos)


ARCHS = ["GPT-2", "Llama", "Qwen2", "Mistral", "GPT-NeoX", "OPT (proj 16)", "Phi", "Gemma", "Bloom", "Falcon"]


def test_every_architecture_is_built_by_this_transformers(tokenizer):
    assert list(hf_parity.tiny_configs(len(tokenizer), tokenizer.eos_token_id, tokenizer.pad_token_id)) == ARCHS


@pytest.mark.parametrize("arch", ARCHS)
def test_reward_equals_transformers_forward_saved_pipeline_and_loaded(arch, tokenizer, tmp_path):
    configs = hf_parity.tiny_configs(len(tokenizer), tokenizer.eos_token_id, tokenizer.pad_token_id)
    rows = hf_parity.check(arch, configs[arch], tokenizer, tmp_path)
    assert rows.pop("max abs reward") > 0.1  # differences below are small next to the rewards
    rows.pop(hf_parity.LEFT)  # transformers counts positions from the padding there: not a parity check
    assert max(rows.values()) < 1e-5, rows


def test_opt_head_is_sized_from_the_projected_output(tokenizer):
    configs = hf_parity.tiny_configs(len(tokenizer), tokenizer.eos_token_id, tokenizer.pad_token_id)
    from transformers import AutoModel

    model = RewardModel(hf_parity.seeded(AutoModel, configs["OPT (proj 16)"]))
    assert model.head.in_features == 16 and model.backbone.config.hidden_size == 32
    assert model.score("q", "a", tokenizer).shape == (1,)


def test_saved_checkpoint_is_native_and_pipeline_batches_match_when_right_padded(tokenizer, tmp_path):
    model = RewardModel(tiny_backbone(seed=3), seed=3)
    with torch.no_grad():
        model.head.weight.mul_(50)
    model.save_pretrained(tmp_path, tokenizer=tokenizer)
    hf = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert type(hf).__name__ == "GPT2ForSequenceClassification"
    assert hf.config.num_labels == 1 and hf.config.pad_token_id == tokenizer.pad_token_id
    assert hf.config.rmlearn == {"class": "RewardModel", "pooling": "eos"}
    prompts, responses = _texts()
    expected = model.score(prompts, responses, tokenizer)
    classify = pipeline("text-classification", model=str(tmp_path), function_to_apply="none")
    texts = [p + "\n" + r for p, r in zip(prompts, responses)]
    batched = torch.tensor([o["score"] for o in classify(texts, batch_size=4)])
    assert expected.abs().min() > 0.1
    assert_close(batched, expected, atol=1e-5, rtol=1e-5)


def test_pipeline_truncates_long_texts_as_rmlearn_does(tokenizer, tmp_path):
    model = RewardModel(tiny_backbone(seed=1, n_positions=32), seed=1)
    with torch.no_grad():
        model.head.weight.mul_(50)
    model.save_pretrained(tmp_path, tokenizer=tokenizer)
    prompt, response = "How do I reset my password? " * 10, "Click 'Forgot password' on the sign-in page."
    assert len(encode(tokenizer, prompt, response)) > 32  # rmlearn drops the start of the prompt
    classify = pipeline("text-classification", model=str(tmp_path), function_to_apply="none")
    piped = classify(prompt + "\n" + response, truncation=True)[0]["score"]
    assert piped == pytest.approx(model.score(prompt, response, tokenizer).item(), abs=1e-5)
    assert len(load_tokenizer(tmp_path)(prompt)["input_ids"]) > 32  # only truncation=True truncates


def test_heads_of_any_name_load_value_head_and_classifier(tokenizer, tmp_path):
    config = _gpt2_config(tokenizer)
    torch.manual_seed(0)
    lm = GPT2LMHeadModel(config).eval()
    lm.save_pretrained(tmp_path / "vhead")
    weights = load_file(tmp_path / "vhead" / "model.safetensors")
    w, b = torch.randn(1, 32), torch.tensor([0.25])
    save_file({**weights, "v_head.summary.weight": w, "v_head.summary.bias": b}, tmp_path / "vhead" / "model.safetensors",
              metadata={"format": "pt"})
    loaded = RewardModel.from_pretrained(tmp_path / "vhead")
    ids, mask = encode_batch(tokenizer, *_texts())
    with torch.no_grad():
        hidden = lm.transformer(input_ids=ids, attention_mask=mask).last_hidden_state  # (B, T, D)
        at_eos = hidden[torch.arange(len(ids)), mask.sum(1) - 1]  # (B, D)
        assert_close(loaded(ids, mask), at_eos @ w[0] + b, atol=1e-5, rtol=1e-5)

    token_clf = GPT2ForTokenClassification(_gpt2_config(tokenizer, num_labels=1)).eval()  # head: `classifier`
    wrapped = RewardModel.from_sequence_classifier(token_clf)
    assert wrapped.head is token_clf.classifier
    token_clf.save_pretrained(tmp_path / "clf")
    with torch.no_grad():
        assert_close(RewardModel.from_pretrained(tmp_path / "clf")(ids, mask), wrapped(ids, mask))


def test_lm_checkpoint_and_two_label_classifier_are_rejected_clearly(tokenizer, tmp_path):
    GPT2LMHeadModel(_gpt2_config(tokenizer)).save_pretrained(tmp_path / "lm")
    with pytest.raises(ValueError, match="no reward head found"):
        RewardModel.from_pretrained(tmp_path / "lm")
    two = AutoModelForSequenceClassification.from_config(_gpt2_config(tokenizer, num_labels=2))
    with pytest.raises(ValueError, match="num_labels=2"):
        RewardModel.from_sequence_classifier(two)
    two.save_pretrained(tmp_path / "two")
    with pytest.raises(ValueError, match=r"score.weight \[2, 32\]"):
        RewardModel.from_pretrained(tmp_path / "two")


def test_truncation_keeps_bos_and_a_post_processor_eos_is_not_doubled():
    bos_tok, both_tok = _bos_tokenizer(), _bos_tokenizer(add_eos=True)
    bos, eos = bos_tok.bos_token_id, bos_tok.eos_token_id
    assert both_tok("hi")["input_ids"][-1] == eos  # this tokenizer appends EOS itself
    prompt, response = "How do I reset my password? " * 5, "Click 'Forgot password'."
    full = encode(bos_tok, prompt, response)
    assert full[0] == bos and full[-1] == eos and full.count(eos) == 1
    assert encode(both_tok, prompt, response) == full  # EOS once, at the end
    short = encode(bos_tok, prompt, response, max_length=12)
    assert len(short) == 12 and short[0] == bos and short[1:] == full[-11:]
    assert encode(both_tok, prompt, response, max_length=12) == short


def test_bos_tokenizer_saved_for_the_pipeline_keeps_bos_and_appends_eos(tmp_path):
    tok = _bos_tokenizer()
    config = hf_parity.tiny_configs(len(tok), tok.eos_token_id, tok.pad_token_id)["Llama"]
    from transformers import AutoModel

    model = RewardModel(hf_parity.seeded(AutoModel, config), seed=1)
    with torch.no_grad():
        model.head.weight.mul_(50)
    model.save_pretrained(tmp_path, tokenizer=tok)
    assert tok("hi")["input_ids"][-1] != tok.eos_token_id  # the caller's tokenizer is unchanged
    saved = load_tokenizer(tmp_path)
    assert saved("hi")["input_ids"][0] == tok.bos_token_id and saved("hi")["input_ids"][-1] == tok.eos_token_id
    prompts, responses = _texts()
    classify = pipeline("text-classification", model=str(tmp_path), function_to_apply="none")
    piped = torch.tensor([o["score"] for o in classify([p + "\n" + r for p, r in zip(prompts, responses)])])
    expected = model.score(prompts, responses, tok)
    assert_close(piped, expected, atol=1e-5, rtol=1e-5)
    assert_close(RewardModel.from_pretrained(tmp_path).score(prompts, responses, saved), expected)


def test_pad_equal_to_eos_saves_a_classifier_that_refuses_padded_batches(tmp_path, reward_model):
    same = course_tokenizer()
    same.pad_token = same.eos_token
    with pytest.warns(UserWarning, match="pad_token_id=None"):
        reward_model.save_pretrained(tmp_path, tokenizer=same)
    hf = AutoModelForSequenceClassification.from_pretrained(tmp_path)
    assert hf.config.pad_token_id is None
    ids, mask = encode_batch(course_tokenizer(), ["q"], ["a"])
    with torch.no_grad():
        assert_close(hf(input_ids=ids).logits[:, 0], reward_model(ids, mask))


def test_load_tokenizer_fails_on_a_folder_without_one(tmp_path, reward_model):
    reward_model.save_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="has no tokenizer"):
        load_tokenizer(tmp_path)


def test_device_map_and_dtype_loads_put_the_head_with_the_backbone(tmp_path, reward_model, tokenizer):
    reward_model.save_pretrained(tmp_path, tokenizer=tokenizer)
    on_cpu = RewardModel.from_pretrained(tmp_path, device_map="cpu")
    assert on_cpu.head.weight.device.type == "cpu"
    assert torch.equal(on_cpu.score("q", "a", tokenizer), reward_model.score("q", "a", tokenizer))
    half = RewardModel.from_pretrained(tmp_path, dtype=torch.bfloat16)
    assert half.head.weight.dtype == torch.bfloat16 == next(half.backbone.parameters()).dtype
    assert half.score("q", "a", tokenizer).dtype == torch.float32
    assert RewardModel(tiny_backbone().to(torch.bfloat16)).head.weight.dtype == torch.bfloat16


def test_value_model_starts_from_a_reward_checkpoint(tmp_path, reward_model, tokenizer):
    reward_model.save_pretrained(tmp_path, tokenizer=tokenizer)
    critic = ValueModel.from_pretrained(tmp_path)
    ids, mask = encode_batch(tokenizer, *_texts())
    with torch.no_grad():
        assert_close(critic(ids, mask)[mask == 1], reward_model.token_scores(ids, mask)[mask == 1])
    assert critic.head.bias.item() == 0.0


def test_reward_function_renders_conversations_like_load_preferences(reward_model, tokenizer):
    reward = reward_model.as_reward_function(tokenizer)
    prompt = [{"role": "user", "content": "How do I reset my password?"}]
    completion = [{"role": "assistant", "content": "Click 'Forgot password'."}]
    got = reward(prompts=[prompt], completions=[completion], completion_ids=[[1, 2]])
    expected = reward_model.score("user: How do I reset my password?", "assistant: Click 'Forgot password'.", tokenizer)
    assert got == expected.tolist()


def test_as_reward_function_drives_one_grpo_step(tmp_path, reward_model, tokenizer):
    """TRL's GRPOTrainer logs the reward rmlearn computed: RewardModel.score on its completions."""
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    reward = reward_model.as_reward_function(tokenizer)
    calls = []

    def rmlearn_reward(prompts, completions, **kwargs):
        out = reward(prompts, completions, **kwargs)
        calls.append((prompts, completions, out))
        return out

    torch.manual_seed(0)
    policy = GPT2LMHeadModel(_gpt2_config(tokenizer))
    data = Dataset.from_dict({"prompt": ["How do I reset my password?", "Where is my order?"] * 2})
    args = GRPOConfig(output_dir=str(tmp_path), per_device_train_batch_size=4, num_generations=2,
                      max_completion_length=8, max_steps=1, logging_steps=1, report_to="none", use_cpu=True,
                      seed=0, save_strategy="no", bf16=False, disable_tqdm=True)
    with pytest.raises(AttributeError, match=r"pass model.as_reward_function\(tokenizer\)"):
        GRPOTrainer(model=policy, reward_funcs=reward_model, args=args, train_dataset=data, processing_class=tokenizer)
    trainer = GRPOTrainer(model=policy, reward_funcs=rmlearn_reward, args=args, train_dataset=data,
                          processing_class=tokenizer)
    trainer.train()
    (prompts, completions, rewards), = calls
    assert len(rewards) == 4 and len(set(completions)) > 1
    assert rewards == reward_model.score(prompts, completions, tokenizer).tolist()
    logged = trainer.state.log_history[0]["rewards/rmlearn_reward/mean"]
    assert logged == pytest.approx(sum(rewards) / 4, abs=1e-6)


# --- defects a user hit (each test failed before its fix) --------------------------------------------------------------

def _sentencepiece_tokenizer() -> PreTrainedTokenizerFast:
    """A Llama/Mistral-style tokenizer built here (nothing downloaded): BPE over SentencePiece's
    Metaspace, which writes a "▁" before the first word of every call."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    backend = Tokenizer(models.BPE(unk_token="<unk>"))
    backend.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    backend.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    texts = [t for p in support_pairs() for t in (p.prompt, p.chosen, p.rejected, p.prompt + "\n" + p.chosen)]
    backend.train_from_iterator(texts, trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<s>", "</s>", "<pad>"]))
    return PreTrainedTokenizerFast(tokenizer_object=backend, bos_token="<s>", eos_token="</s>", pad_token="<pad>",
                                   unk_token="<unk>", add_bos_token=True)


def test_sentencepiece_prefix_space_tokenizer_gives_the_pipelines_ids_and_score(tmp_path):
    """Defect 4: prompt and "\\n" + response tokenized apart gave an extra "▁" at the boundary."""
    tok = _sentencepiece_tokenizer()
    prompts, responses = _texts()
    assert tok.tokenize("\n" + responses[0])[0] == "▁"  # what tokenizing apart used to add
    from transformers import AutoModel

    config = hf_parity.tiny_configs(len(tok), tok.eos_token_id, tok.pad_token_id)["Llama"]
    model = RewardModel(hf_parity.seeded(AutoModel, config), seed=1)
    with torch.no_grad():
        model.head.weight.mul_(50)
    model.save_pretrained(tmp_path, tokenizer=tok)
    saved = load_tokenizer(tmp_path)
    for p, r in zip(prompts, responses):
        assert encode(tok, p, r) == saved(p + "\n" + r)["input_ids"]
    classify = pipeline("text-classification", model=str(tmp_path), function_to_apply="none")
    piped = torch.tensor([o["score"] for o in classify([p + "\n" + r for p, r in zip(prompts, responses)])])
    expected = model.score(prompts, responses, tok)
    assert expected.std() > 1e-3
    assert_close(piped, expected, atol=1e-5, rtol=1e-5)


def test_saved_tokenizer_pads_on_the_right_whatever_the_callers_side(tokenizer, tmp_path):
    """Defect 7: a tokenizer set to padding_side="left" was saved so, and the pipeline's batches of an
    absolute-position model (GPT-2) were scored at shifted positions."""
    left = course_tokenizer()
    left.padding_side = "left"
    model = RewardModel(tiny_backbone(seed=3), seed=3)
    with torch.no_grad():
        model.head.weight.mul_(50)
    model.save_pretrained(tmp_path, tokenizer=left)
    assert left.padding_side == "left" and load_tokenizer(tmp_path).padding_side == "right"
    prompts, responses = _texts()
    classify = pipeline("text-classification", model=str(tmp_path), function_to_apply="none")
    batched = torch.tensor([o["score"] for o in classify([p + "\n" + r for p, r in zip(prompts, responses)],
                                                         batch_size=4)])
    assert_close(batched, model.score(prompts, responses, tokenizer), atol=1e-5, rtol=1e-5)


def test_load_tokenizer_keeps_the_saved_class_whatever_the_model_type(tokenizer, tmp_path):
    """Defect 8: AutoTokenizer swapped in Qwen2Tokenizer for a generic tokenizer saved with a Qwen2 model."""
    from transformers import AutoModel

    config = hf_parity.tiny_configs(len(tokenizer), tokenizer.eos_token_id, tokenizer.pad_token_id)["Qwen2"]
    RewardModel(hf_parity.seeded(AutoModel, config)).save_pretrained(tmp_path, tokenizer=tokenizer)
    loaded = load_tokenizer(tmp_path)
    assert type(loaded) is type(tokenizer)
    text = "Hello  world\n\n12345 don't"
    assert loaded(text)["input_ids"] == tokenizer(text)["input_ids"] + [tokenizer.eos_token_id]


def _no_classifier_configs(tokenizer) -> dict:
    from transformers import CodeGenConfig, CohereConfig, GraniteConfig, XGLMConfig

    n, llama_like = len(tokenizer), dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64)
    return {"codegen": CodeGenConfig(vocab_size=n, n_embd=32, n_layer=1, n_head=4, n_positions=64, rotary_dim=4),
            "cohere": CohereConfig(vocab_size=n, **llama_like), "granite": GraniteConfig(vocab_size=n, **llama_like),
            "xglm": XGLMConfig(vocab_size=n, d_model=32, num_layers=1, attention_heads=4, ffn_dim=64,
                               max_position_embeddings=64)}


@pytest.mark.parametrize("model_type", ["codegen", "cohere", "granite", "xglm"])
def test_types_without_a_transformers_classifier_say_what_loads_their_checkpoint(model_type, tokenizer, tmp_path):
    """Defect 12, settled as a statement: transformers has no *ForSequenceClassification for these
    types (and no base class to borrow without trust_remote_code), so the checkpoint is rmlearn's own
    layout; the warning says what loads it, and this test holds each part of that to account."""
    from transformers import AutoModel

    config = _no_classifier_configs(tokenizer)[model_type]
    model = RewardModel(hf_parity.seeded(AutoModel, config), seed=1)
    with torch.no_grad():
        model.head.weight.mul_(50)
    with pytest.warns(UserWarning, match="RewardModel.from_pretrained loads it; AutoModel.from_pretrained loads "
                                         "only the decoder .*AutoModelForSequenceClassification .* cannot"):
        model.save_pretrained(tmp_path, tokenizer=tokenizer)
    prompts, responses = _texts()
    expected = model.score(prompts, responses, tokenizer)
    assert expected.std() > 1e-3
    assert_close(RewardModel.from_pretrained(tmp_path).score(prompts, responses, tokenizer), expected)
    decoder = AutoModel.from_pretrained(tmp_path)
    ids, mask = encode_batch(tokenizer, prompts, responses)
    with torch.no_grad():
        assert_close(decoder(input_ids=ids, attention_mask=mask).last_hidden_state,
                     model.backbone(input_ids=ids, attention_mask=mask).last_hidden_state)
    with pytest.raises(ValueError):
        AutoModelForSequenceClassification.from_pretrained(tmp_path)
