"""Shared fixtures: the course tokenizer and tiny seeded models (cheap: built in well under a second)."""

from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # nothing in the tests may reach a model hub
os.environ.setdefault("MPLBACKEND", "Agg")
torch.set_num_threads(max(1, (os.cpu_count() or 2) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))))


@pytest.fixture(scope="session")
def tokenizer():
    from rmlearn import course_tokenizer

    return course_tokenizer()


@pytest.fixture
def reward_model():
    from rmlearn import RewardModel, tiny_backbone

    return RewardModel(tiny_backbone(seed=0), seed=0).eval()
