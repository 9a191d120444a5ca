"""The course's fixed trained models (lessons 01–09): shipped with the package, or trained and cached.

Training is deterministic on one machine, but other CPUs round differently (AVX-512, AVX2 or no
SIMD kernels), and a model trained from scratch comes out a little different on each. So the models
the lessons rely on are **shipped**: their weights lie in ``rmlearn/weights/`` (safetensors, built
by ``scripts/build_course_models.py``), and every machine loads the same numbers. Any other setting
(another seed, a slider's length bias) is trained on first use and kept on disk (``$RMLEARN_CACHE``,
default ``~/.cache/rmlearn``), keyed by a hash of rmlearn's code and tokenizer, so the next kernel
loads it in a fraction of a second. ``RMLEARN_CACHE=off`` switches the disk cache off, and
``RMLEARN_SHIPPED=off`` makes even the shipped models train afresh (what ``tests/test_zoo.py`` and
``benchmarks/course_models.py`` do to check that training still reaches its targets).

>>> from rmlearn.zoo import is_shipped
>>> is_shipped("reward", length_bias=0.0, seed=0, pooling="eos", n_pairs=1500)
True
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path

import torch

from .backbone import TOKENIZER_FILE, course_tokenizer, tiny_backbone
from .data import split, support_pairs
from .models import RewardModel
from .synthetic import synthetic_preferences
from .train import train_reward_model

SUPPORT_REPEATS = 4  # the 16 hand-written pairs are few next to the synthetic ones: show them 4×
N_PAIRS = 1500  # synthetic pairs: enough for the tiny model to learn to read the prompt
PROXY_PAIRS = 300  # lesson 08's proxies: fewer pairs, so over-optimization shows
NOISY = 0.25  # lesson 09's ensemble: the share of flipped labels in each proxy's data (as Coste et al., 2023)
ENSEMBLE = 4  # lesson 09: members of the noisy-label ensemble, seeds 0 … ENSEMBLE − 1
POLICY_SFT = {"n": 1600, "epochs": 4, "lr": 5e-3}  # lesson 08's SFT policy: its data size and recipe
# the reward models' recipe: TrainConfig's defaults on the reference path (one forward per batch on one thread,
# the backbone's own code), which the shipped weights were built with; the library's default is the fast path
COURSE_RECIPE = {"threads": None}
WEIGHTS = Path(__file__).parent / "weights"

# What ships: the settings the lessons, explorers' first views and problem sets use.
SHIPPED_REWARD = (
    (0.0, 0, "eos", N_PAIRS), (0.9, 0, "eos", N_PAIRS),  # the course model; lesson 05's biased one
    (0.0, 0, "eos", PROXY_PAIRS), (0.5, 0, "eos", PROXY_PAIRS), (0.8, 0, "eos", PROXY_PAIRS),  # 08
    (0.0, 1, "eos", PROXY_PAIRS), (0.0, 2, "eos", PROXY_PAIRS),  # an ensemble of three proxies
    *((0.0, s, "eos", PROXY_PAIRS, NOISY) for s in range(ENSEMBLE)),  # lesson 09: noisy labels, k seeds
)
SHIPPED_POLICY = (0,)
HELD_OUT = {"n_pairs": 200, "seed": 4242}  # pairs no course model trains on: where score stats are taken


def course_data(n_pairs: int = N_PAIRS, length_bias: float = 0.0, seed: int = 0, label_noise: float = 0.0):
    """(train, test): synthetic pairs split 80/20, with the support pairs added to train."""
    pairs = synthetic_preferences(n_pairs, seed=seed, length_bias=length_bias, label_noise=label_noise)
    train, test = split(pairs, 0.2, seed)
    return train + support_pairs() * SUPPORT_REPEATS, test


def trained_reward_model(
    length_bias: float = 0.0, seed: int = 0, pooling: str = "eos", n_pairs: int = N_PAIRS, label_noise: float = 0.0
) -> RewardModel:
    """The tiny reward model trained on ``course_data`` (shipped, or about 20 s on 2 CPU cores), cached.

    The same settings give the same (shared) model however they are passed. Do not train it
    further; copy it first (``copy.deepcopy``).
    """
    return _trained(float(length_bias), int(seed), str(pooling), int(n_pairs), float(label_noise))


def trained_policy(seed: int = 0):
    """The tiny policy of lesson 08, SFT'd on synthetic responses (shipped for seed 0), cached.

    Do not train it further; copy it first (``copy.deepcopy``) or take ``rlhf.frozen_copy``.
    """
    return _policy(int(seed))


def held_out_responses() -> tuple[list[str], list[str]]:
    """(prompts, responses): both answers of ``HELD_OUT`` synthetic pairs, which no course model
    trains on (their seed differs from every training seed). Fixed, so stats taken on them are too."""
    pairs = synthetic_preferences(HELD_OUT["n_pairs"], seed=HELD_OUT["seed"])
    return [p.prompt for p in pairs for _ in (0, 1)], [r for p in pairs for r in (p.chosen, p.rejected)]


def normalised_reward_model(length_bias: float = 0.0, seed: int = 0, pooling: str = "eos",
                            n_pairs: int = N_PAIRS):
    """``trained_reward_model`` with its scores standardised by their mean and std on
    ``held_out_responses`` (``rlhf.NormalisedReward``, lesson 08). The stats are computed when the
    model is loaded, from fixed data, so the shipped weights stay as they are."""
    return _normalised(float(length_bias), int(seed), str(pooling), int(n_pairs))


@lru_cache(maxsize=16)
def _normalised(length_bias: float, seed: int, pooling: str, n_pairs: int):
    from .rlhf import NormalisedReward, score_stats

    model = _trained(length_bias, seed, pooling, n_pairs)
    with torch.no_grad():
        stats = score_stats(model.score(*held_out_responses(), course_tokenizer()))
    return NormalisedReward(model, *stats).eval()


def overoptimization_pool(per_prompt: int = 256, length_biases: tuple[float, ...] = (0.0, 0.5, 0.8),
                          n_pairs: int = PROXY_PAIRS, normalised: bool = True):
    """Lesson 08's setting, computed in one place for the lesson and its explorer: ``per_prompt``
    responses of the SFT policy to every synthetic prompt (``rlhf.ResponsePool``, seed 0) and, for
    each annotators' length bias, the proxy's scores (N,) of them (normalised unless told not to).

    ``rlhf.overoptimization_grid(*overoptimization_pool())`` is the explorer's grid.
    """
    from .rlhf import response_pool
    from .synthetic import SYNTHETIC_PROMPTS

    tok = course_tokenizer()
    pool = response_pool(trained_policy(), tok, SYNTHETIC_PROMPTS, per_prompt, seed=0)
    load = normalised_reward_model if normalised else trained_reward_model
    with torch.no_grad():
        scores = {b: load(length_bias=b, n_pairs=n_pairs).score(pool.prompts, pool.responses, tok)
                  for b in length_biases}
    return pool, scores


def reward_name(length_bias: float, seed: int, pooling: str, n_pairs: int, label_noise: float = 0.0) -> str:
    noise = f"-e{float(label_noise)}" if label_noise else ""  # flipped labels (lesson 09)
    return f"reward-b{float(length_bias)}-s{seed}-{pooling}-n{n_pairs}{noise}"


def policy_name(seed: int) -> str:
    return f"policy-s{seed}"


def is_shipped(kind: str, **settings) -> bool:
    """Whether the package carries these weights (``kind`` "reward" or "policy")."""
    name = reward_name(**settings) if kind == "reward" else policy_name(**settings)
    return _shipped_file(name) is not None


@lru_cache(maxsize=24)
def _trained(length_bias: float, seed: int, pooling: str, n_pairs: int, label_noise: float = 0.0) -> RewardModel:
    def fresh() -> RewardModel:
        return RewardModel(tiny_backbone(seed=seed), pooling=pooling, seed=seed)

    def train(model: RewardModel) -> None:
        data, _ = course_data(n_pairs, length_bias, seed, label_noise)
        train_reward_model(model, course_tokenizer(), data, seed=seed, progress=False, **COURSE_RECIPE)

    return _load_or_train(reward_name(length_bias, seed, pooling, n_pairs, label_noise), fresh, train)


@lru_cache(maxsize=2)
def _policy(seed: int):
    from .rlhf import sft_data, sft_policy, tiny_policy

    def train(policy) -> None:
        sft_policy(policy, course_tokenizer(), sft_data(POLICY_SFT["n"], seed=seed),
                   epochs=POLICY_SFT["epochs"], lr=POLICY_SFT["lr"], seed=seed)

    return _load_or_train(policy_name(seed), lambda: tiny_policy(seed), train)


def _load_or_train(name: str, fresh: Callable[[], torch.nn.Module], train: Callable) -> torch.nn.Module:
    """The shipped weights if the package has them, else the disk cache, else train (and cache)."""
    from safetensors.torch import load_model

    model, cached = fresh(), _cache_file(name)  # the cache's name hashes rmlearn's code: work it out once
    for path in (_shipped_file(name), cached):
        if path is not None and path.is_file():
            try:
                load_model(model, str(path))
                return model.eval()
            except Exception:  # a damaged cache file (the shipped ones are tested): train again
                model = fresh()
    train(model)
    if cached is not None:
        _save(model, cached)
    return model.eval()


def _off(variable: str) -> bool:
    return os.environ.get(variable, "on").lower() in ("off", "0", "false", "no", "")


def _shipped_file(name: str) -> Path | None:
    path = WEIGHTS / f"{name}.safetensors"
    return path if path.is_file() and not _off("RMLEARN_SHIPPED") else None


def _code_hash() -> str:
    """A hash of every file that decides the trained weights: rmlearn's code and its tokenizer."""
    digest = hashlib.sha256(torch.__version__.encode())
    package = Path(__file__).parent
    for path in sorted([*package.glob("*.py"), TOKENIZER_FILE]):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()[:16]


def _cache_file(name: str) -> Path | None:
    root = os.environ.get("RMLEARN_CACHE", str(Path.home() / ".cache" / "rmlearn"))
    if _off("RMLEARN_CACHE") or not root:
        return None
    return Path(root) / "zoo" / f"{name}-{_code_hash()}.safetensors"


def _save(model: torch.nn.Module, path: Path) -> None:
    """Write atomically (a kernel running beside us never reads half a file); a read-only home
    (a grading sandbox) just means no disk cache."""
    from safetensors.torch import save_model

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, suffix=".tmp", delete=False) as tmp:
            pass
        save_model(model, tmp.name)
        os.chmod(tmp.name, 0o644)
        os.replace(tmp.name, path)
    except OSError:
        pass


def recipe_fingerprint(kind: str, **settings) -> str:
    """A hash of what decides a shipped model's weights apart from the CPU: its training data and
    recipe. ``tests/test_zoo.py`` compares it with the manifest, so shipped weights never go stale."""
    from dataclasses import asdict

    from .config import TrainConfig

    if kind == "reward":
        data, _ = course_data(settings["n_pairs"], settings["length_bias"], settings["seed"],
                              settings.get("label_noise", 0.0))
        how = ("gradient_checkpointing", "resume_from")  # how a run runs, not what it computes
        how += ("shards",)  # the fast path's; the reference path (COURSE_RECIPE) runs each batch whole
        config = asdict(TrainConfig(**COURSE_RECIPE))
        recipe = {**{k: v for k, v in config.items() if k not in how}, "pooling": settings["pooling"]}
    else:
        from .rlhf import sft_data
        data, recipe = sft_data(POLICY_SFT["n"], seed=settings["seed"]), POLICY_SFT
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True, default=str).encode())
    digest.update(repr(data).encode() + TOKENIZER_FILE.read_bytes())
    return digest.hexdigest()[:16]
