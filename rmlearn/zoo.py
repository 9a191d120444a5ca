"""Ready-trained tiny course models, trained on first use and cached (lessons 01–07).

Lessons, widgets and the demo share them, so a notebook that asks twice trains once. The weights
are also kept on disk (``$RMLEARN_CACHE``, default ``~/.cache/rmlearn``), keyed by the settings
and by a hash of rmlearn's own code and tokenizer, so the next lesson's kernel loads them in a
fraction of a second instead of training again; any change to the code trains afresh. Set
``RMLEARN_CACHE=off`` to always train.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from functools import lru_cache
from pathlib import Path

import torch

from .backbone import TOKENIZER_FILE, course_tokenizer, tiny_backbone
from .data import split, support_pairs, synthetic_preferences
from .models import RewardModel
from .train import train_reward_model

SUPPORT_REPEATS = 4  # the 16 hand-written pairs are few next to the synthetic ones: show them 4×
N_PAIRS = 1500  # synthetic pairs: enough for the tiny model to learn to read the prompt


def course_data(n_pairs: int = N_PAIRS, length_bias: float = 0.0, seed: int = 0):
    """(train, test): synthetic pairs split 80/20, with the support pairs added to train."""
    train, test = split(synthetic_preferences(n_pairs, seed=seed, length_bias=length_bias), 0.2, seed)
    return train + support_pairs() * SUPPORT_REPEATS, test


def trained_reward_model(
    length_bias: float = 0.0, seed: int = 0, pooling: str = "eos", n_pairs: int = N_PAIRS
) -> RewardModel:
    """The tiny reward model trained on ``course_data`` (about 10 s on 2 CPU cores), cached.

    The same settings give the same (shared) model however they are passed. Do not train it
    further; copy it first (``copy.deepcopy``).
    """
    return _trained(float(length_bias), int(seed), str(pooling), int(n_pairs))


def _code_hash() -> str:
    """A hash of every file that decides the trained weights: rmlearn's code and its tokenizer."""
    digest = hashlib.sha256(torch.__version__.encode())
    package = Path(__file__).parent
    for path in sorted([*package.glob("*.py"), TOKENIZER_FILE]):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def _cache_file(length_bias: float, seed: int, pooling: str, n_pairs: int) -> Path | None:
    root = os.environ.get("RMLEARN_CACHE", str(Path.home() / ".cache" / "rmlearn"))
    if root.lower() in ("off", "0", "false", "no", ""):
        return None
    name = f"reward-{_code_hash()}-b{length_bias}-s{seed}-{pooling}-n{n_pairs}.pt"
    return Path(root) / "zoo" / name


@lru_cache(maxsize=8)
def _trained(length_bias: float, seed: int, pooling: str, n_pairs: int) -> RewardModel:
    model = RewardModel(tiny_backbone(seed=seed), pooling=pooling, seed=seed)
    cached = _cache_file(length_bias, seed, pooling, n_pairs)
    if cached is not None and cached.is_file():
        try:
            model.load_state_dict(torch.load(cached, weights_only=True))
            return model.eval()
        except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError):  # damaged: train again
            model = RewardModel(tiny_backbone(seed=seed), pooling=pooling, seed=seed)
    train, _ = course_data(n_pairs, length_bias, seed)
    train_reward_model(model, course_tokenizer(), train, seed=seed, progress=False)
    if cached is not None:
        _save(model, cached)
    return model.eval()


def _save(model: RewardModel, path: Path) -> None:
    """Write atomically (a kernel running beside us never reads half a file); a read-only home
    (a grading sandbox) just means no disk cache."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as tmp:
            torch.save(model.state_dict(), tmp)
        os.replace(tmp.name, path)
    except OSError:
        pass
