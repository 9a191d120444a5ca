"""The reward model and the value model: one decoder, one linear head (lessons 01, 02 and 07).

``RewardModel``: ``[prompt ; response ; EOS]`` → decoder → hidden states (B, T, D) → pool to (B, D)
→ linear head → reward (B,). ``ValueModel``: the same decoder with the head applied at *every*
position → values (B, T), the critic of RLHF.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .inputs import encode_batch, position_ids
from .pooling import POOLINGS, pool

CONFIG_NAME = "rmlearn_config.json"
HEAD_NAME = "head.safetensors"
SMALL_MODEL = 5_000_000  # parameters; below this, CPU work runs on one thread (see cpu_threads_for)


@contextmanager
def cpu_threads_for(model: nn.Module) -> Iterator[None]:
    """Run a small CPU model on one thread, restoring torch's thread count afterwards.

    Why: the same numbers on every student's machine whatever its core count (float sums split
    over threads round differently), and speed where cores are shared: each op of the tiny course
    model is too small to split, and a thread waiting for a busy core stalls every op (5-10x
    faster on a loaded 2-core machine, docs/benchmarks.md). The cost: on an idle 2-core machine
    two threads train the course model about 25 % faster (measured 450 vs 560-750 pairs/s).
    Larger models and GPUs are left alone.
    """
    params = list(model.parameters())
    small = params[0].device.type == "cpu" and sum(p.numel() for p in params) < SMALL_MODEL
    before = torch.get_num_threads()
    if small and before > 1:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)


class _DecoderWithHead(nn.Module):
    """A ``transformers`` decoder plus a linear map from hidden size to one number."""

    kind = "decoder"
    head_bias = False

    def __init__(self, backbone: nn.Module, seed: int = 0):
        super().__init__()
        self.backbone = backbone
        width = backbone.config.hidden_size
        self.head = nn.Linear(width, 1, bias=self.head_bias)  # W: (1, D)
        std = getattr(backbone.config, "initializer_range", 0.02)
        gen = torch.Generator().manual_seed(seed)  # seeded, and leaves the global RNG alone
        with torch.no_grad():
            self.head.weight.copy_(torch.randn(self.head.weight.shape, generator=gen) * std)
            if self.head.bias is not None:
                self.head.bias.zero_()
        self.head.to(next(backbone.parameters()).dtype)

    @property
    def max_length(self) -> int | None:
        cfg = self.backbone.config
        return getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", None)

    def hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Final-layer hidden states, (B, T) ids → (B, T, D).

        Positions are counted over real tokens, so a left-padded sequence gets the same positions
        (and the same hidden states) as the right-padded one.
        """
        if attention_mask is None:
            attention_mask = torch.ones_like(input_ids)
        out = self.backbone(
            input_ids=input_ids,
            attention_mask=attention_mask,
            position_ids=position_ids(attention_mask),
            use_cache=False,
        )
        return out.last_hidden_state  # (B, T, D)

    def _extra_config(self) -> dict[str, Any]:
        return {}

    def save_pretrained(self, directory: str | Path, tokenizer: Any = None) -> Path:
        """Write the backbone (config + safetensors), the head and rmlearn's own config."""
        from safetensors.torch import save_file

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.backbone.save_pretrained(directory)
        save_file({k: v.contiguous() for k, v in self.head.state_dict().items()}, directory / HEAD_NAME)
        config = {"class": type(self).__name__, **self._extra_config()}
        (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")
        if tokenizer is not None:
            tokenizer.save_pretrained(directory)
        return directory

    @classmethod
    def _load_parts(cls, directory: str | Path, **kwargs: Any) -> tuple[dict[str, Any], nn.Module, dict]:
        from safetensors.torch import load_file

        from .backbone import load_backbone

        directory = Path(directory)
        config_file = directory / CONFIG_NAME
        if not config_file.exists():
            raise FileNotFoundError(
                f"{directory} has no {CONFIG_NAME}; it was not written by {cls.__name__}.save_pretrained"
            )
        config = json.loads(config_file.read_text())
        if config.get("class") != cls.__name__:
            raise ValueError(f"{directory} holds a {config.get('class')}, not a {cls.__name__}")
        return config, load_backbone(directory, **kwargs), load_file(directory / HEAD_NAME)


class RewardModel(_DecoderWithHead):
    """Score a (prompt, response) pair with one number: the head applied to a pooled hidden state.

    Args:
        backbone: any ``transformers`` decoder returning ``last_hidden_state`` (``tiny_backbone()``,
            ``load_backbone("gpt2")``, …).
        pooling: ``"eos"`` (default, correct), ``"mean"`` or ``"last"`` (the padding bug); see
            ``rmlearn.pooling.pool``.
        seed: seeds the head's initial weights.

    >>> from rmlearn import RewardModel, tiny_backbone, course_tokenizer
    >>> model = RewardModel(tiny_backbone(seed=0))
    >>> model.score(["How do I reset my password?"], ["Click 'Forgot password'."], course_tokenizer()).shape
    torch.Size([1])
    """

    def __init__(self, backbone: nn.Module, pooling: str = "eos", seed: int = 0):
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; choose one of {POOLINGS}")
        super().__init__(backbone, seed)
        self.pooling = pooling

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Rewards, (B, T) ids and mask → (B,)."""
        hidden = self.hidden(input_ids, attention_mask)  # (B, T, D)
        pooled = pool(hidden, attention_mask, self.pooling)  # (B, D)
        return self.head(pooled).squeeze(-1)  # (B,)

    @torch.no_grad()
    def token_scores(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The head at every position: what each prefix would score, (B, T); padding is NaN."""
        hidden = self.hidden(input_ids, attention_mask)  # (B, T, D)
        scores = self.head(hidden).squeeze(-1)  # (B, T)
        if attention_mask is not None:
            scores = scores.masked_fill(attention_mask == 0, float("nan"))
        return scores

    def score(
        self,
        prompts: str | Sequence[str],
        responses: str | Sequence[str],
        tokenizer: Any,
        batch_size: int = 64,
    ) -> torch.Tensor:
        """Rewards for text pairs; builds ``[prompt ; response ; EOS]`` itself.

        One prompt may be given for many responses. Returns (N,) float scores, in input order.
        Runs in inference mode and eval mode; batches are grouped by length to pad little.
        """
        if isinstance(responses, str):
            responses = [responses]
        if isinstance(prompts, str):
            prompts = [prompts] * len(responses)
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        was_training = self.training
        self.eval()
        try:
            with torch.inference_mode(), cpu_threads_for(self):
                return self._score_sorted(list(prompts), list(responses), tokenizer, batch_size)
        finally:
            self.train(was_training)

    def _score_sorted(self, prompts, responses, tokenizer, batch_size) -> torch.Tensor:
        device = next(self.parameters()).device
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]) + len(responses[i]))
        out = torch.empty(len(prompts))
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            ids, mask = encode_batch(
                tokenizer, [prompts[i] for i in idx], [responses[i] for i in idx], self.max_length
            )
            out[idx] = self(ids.to(device), mask.to(device)).float().cpu()
        return out

    def _extra_config(self) -> dict[str, Any]:
        return {"pooling": self.pooling}

    @classmethod
    def from_pretrained(cls, directory: str | Path, **kwargs: Any) -> RewardModel:
        """Load a model written by ``save_pretrained`` (scores are identical)."""
        config, backbone, head = cls._load_parts(directory, **kwargs)
        model = cls(backbone, pooling=config.get("pooling", "eos"))
        model.head.load_state_dict(head)
        return model.eval()

    @classmethod
    def from_sequence_classifier(cls, classifier: nn.Module) -> RewardModel:
        """Wrap a ``transformers`` ``*ForSequenceClassification`` model with one label (as TRL
        trains them), sharing its weights: EOS pooling reads the same token it does."""
        if getattr(classifier.config, "num_labels", None) != 1:
            raise ValueError(f"a reward model has one output; this classifier has {classifier.config.num_labels}")
        head = getattr(classifier, "score", None)
        if not isinstance(head, nn.Linear):
            raise ValueError(f"{type(classifier).__name__} has no linear `score` head")
        model = cls(classifier.base_model, pooling="eos")
        model.head = head
        return model


class ValueModel(_DecoderWithHead):
    """The critic: the same decoder with the head at every position, V(prefix) for each token.

    >>> from rmlearn import ValueModel, tiny_backbone
    >>> values = ValueModel(tiny_backbone())(torch.tensor([[5, 6, 7]]))
    >>> values.shape
    torch.Size([1, 3])
    """

    head_bias = True

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Values, (B, T) ids → (B, T); entries at padding positions are meaningless."""
        return self.head(self.hidden(input_ids, attention_mask)).squeeze(-1)  # (B, T)

    @classmethod
    def from_pretrained(cls, directory: str | Path, **kwargs: Any) -> ValueModel:
        """Load a model written by ``save_pretrained``."""
        _, backbone, head = cls._load_parts(directory, **kwargs)
        model = cls(backbone)
        model.head.load_state_dict(head)
        return model.eval()
