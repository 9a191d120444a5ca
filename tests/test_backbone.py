"""rmlearn.backbone: the shipped tokenizer, the tiny model, and the real loading path."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from rmlearn import course_tokenizer, load_backbone, tiny_backbone
from rmlearn.backbone import TOKENIZER_FILE

ROOT = Path(__file__).parents[1]


def test_tokenizer_has_distinct_eos_and_pad_and_round_trips_text():
    tok = course_tokenizer()
    assert tok.eos_token_id != tok.pad_token_id
    text = "How do I reset my password? Ünïcode and emoji 🙂 survive too."
    assert tok.decode(tok(text)["input_ids"]) == text


def test_committed_tokenizer_is_what_the_build_script_makes():
    spec = importlib.util.spec_from_file_location("build_tokenizer", ROOT / "scripts" / "build_tokenizer.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    assert json.loads(module.build().to_str()) == json.loads(TOKENIZER_FILE.read_text())


def test_tiny_backbone_is_seeded_and_leaves_the_global_rng_alone():
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    a = tiny_backbone(seed=4)
    assert torch.equal(torch.rand(1), expected_next)
    b, c = tiny_backbone(seed=4), tiny_backbone(seed=5)
    assert all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values()))
    assert not torch.equal(a.wte.weight, c.wte.weight)
    assert tiny_backbone(n_layer=3).config.n_layer == 3


def test_tiny_backbone_matches_the_tokenizer():
    tok, model = course_tokenizer(), tiny_backbone()
    assert model.config.vocab_size == len(tok)
    assert (model.config.eos_token_id, model.config.pad_token_id) == (tok.eos_token_id, tok.pad_token_id)


def test_load_backbone_reports_a_missing_directory(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model directory at .*nothing-here"):
        load_backbone(tmp_path / "nothing-here")
