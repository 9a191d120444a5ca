"""The reward model and the value model: one decoder, one linear head (lessons 01, 02 and 07).

``RewardModel``: ``[prompt ; response ; EOS]`` → decoder → hidden states (B, T, D) → pool to (B, D)
→ linear head → reward (B,). ``ValueModel``: the same decoder with the head applied at *every*
position → values (B, T), the critic of RLHF.
"""

from __future__ import annotations

import copy
import inspect
import json
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .checkpoints import (
    HEAD_NAMES,
    adapter_layers,
    classifier_pad_id,
    hf_head_name,
    hub_kwargs,
    merged_copy,
    output_width,
    read_head,
    unwrap,
)
from .config import DEFAULT_POOLING
from .fastcpu import batches_side_by_side, one_cpu_thread_if_small
from .inputs import encode, encode_batch, pad_batch, position_ids
from .pooling import POOLINGS, pool

CONFIG_NAME = "rmlearn_config.json"
HEAD_NAME = "head.safetensors"
CONTEXT_NAMES = ("max_position_embeddings", "n_positions", "max_seq_len", "n_ctx", "seq_length")  # MPT: max_seq_len


class _DecoderWithHead(nn.Module):
    """A ``transformers`` decoder plus a linear map from its output width to one number."""

    head_bias = False

    def __init__(self, backbone: nn.Module, seed: int = 0):
        super().__init__()
        self.backbone = unwrap(backbone)
        width = output_width(self.backbone.config)
        params = list(self.backbone.parameters())
        dtype = next((p.dtype for p in params if p.is_floating_point()), torch.float32)
        # with a device_map the final hidden states come out of the last layers' device
        self.head = nn.Linear(width, 1, bias=self.head_bias, device=params[-1].device, dtype=dtype)  # W: (1, D)
        std = getattr(self.backbone.config, "initializer_range", 0.02)
        gen = torch.Generator().manual_seed(seed)  # seeded, and leaves the global RNG alone
        with torch.no_grad():
            self.head.weight.copy_(torch.randn((1, width), generator=gen) * std)
            if self.head.bias is not None:
                self.head.bias.zero_()
        self._takes_positions = "position_ids" in inspect.signature(self.backbone.forward).parameters
        self._max_length: int | None = None  # set by training (TrainConfig.max_length), saved with the model
        self.train(self.backbone.training)  # the backbone's mode, not nn.Module's default (training)

    @property
    def context_length(self) -> int | None:
        """The longest sequence the backbone's position table allows (None: no limit, e.g. ALiBi)."""
        cfg = self.backbone.config
        for name in CONTEXT_NAMES:
            if isinstance(getattr(cfg, name, None), int):
                return getattr(cfg, name)
        return None

    @property
    def max_length(self) -> int | None:
        """Longest ``[prompt ; response ; EOS]`` in tokens, in training and scoring alike: the
        ``max_length`` the model was trained with, else the backbone's context length."""
        return self._max_length or self.context_length

    @max_length.setter
    def max_length(self, value: int | None) -> None:
        context = self.context_length
        if value is not None and (not isinstance(value, int) or value < 1):
            raise ValueError(f"max_length must be a positive integer or None, got {value!r}")
        if value is not None and context is not None and value > context:
            raise ValueError(f"max_length={value} is longer than the model's context of {context} tokens "
                             f"({type(self.backbone.config).__name__}); use max_length <= {context}")
        self._max_length = value

    @property
    def vocab_size(self) -> int:
        """Rows of the token-embedding table: every token id must be below this."""
        return self.backbone.get_input_embeddings().weight.shape[0]

    def check_token_ids(self, largest: int, tokenizer: Any = None) -> None:
        """Raise ``ValueError`` when a token id has no embedding row (the tokenizer is not this model's):
        a clear message instead of an IndexError on the CPU or a device-side assert on a GPU."""
        if largest >= self.vocab_size:
            size = f" (the tokenizer has {len(tokenizer)} tokens)" if tokenizer is not None else ""
            raise ValueError(f"token id {largest} is outside the model's vocabulary of {self.vocab_size} "
                             f"embeddings{size}: the tokenizer does not belong to this model")

    @property
    def input_device(self) -> torch.device:
        """Where input ids go: the device of the backbone's token embeddings."""
        return self.backbone.get_input_embeddings().weight.device

    def hidden(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Final-layer hidden states, (B, T) ids → (B, T, D), on the head's device.

        Positions are counted over real tokens, so a left-padded sequence gets the same positions
        (and the same hidden states) as the right-padded one.
        """
        input_ids = input_ids.to(self.input_device)  # no-op when already there
        attention_mask = torch.ones_like(input_ids) if attention_mask is None else attention_mask.to(input_ids.device)
        extra = {"position_ids": position_ids(attention_mask)} if self._takes_positions else {}
        out = self.backbone(input_ids=input_ids, attention_mask=attention_mask, use_cache=False, **extra)
        return out.last_hidden_state.to(self.head.weight.device)  # (B, T, D)

    def _set_head(self, weight: torch.Tensor, bias: torch.Tensor | None) -> None:
        """Load head weights (1, D) and an optional bias (1,) of any dtype, keeping device and dtype."""
        width = output_width(self.backbone.config)
        if tuple(weight.shape) != (1, width):
            raise ValueError(f"the head weight has shape {tuple(weight.shape)}; this backbone needs (1, {width})")
        w = self.head.weight
        if (bias is not None) != (self.head.bias is not None):
            self.head = nn.Linear(width, 1, bias=bias is not None, device=w.device, dtype=w.dtype)
        with torch.no_grad():
            self.head.weight.copy_(weight)
            if bias is not None:
                self.head.bias.copy_(bias.reshape(1))

    def _extra_config(self) -> dict[str, Any]:
        return {} if self._max_length is None else {"max_length": self._max_length}

    def _plain_backbone(self) -> nn.Module:
        """The backbone as transformers saves it: with LoRA (PEFT) adapters merged into a copy of the
        adapted weights, so that the checkpoint has the base class's own keys (no ``lora_*``)."""
        return merged_copy(self.backbone) if adapter_layers(self.backbone) else self.backbone

    def _save_rmlearn_format(self, directory: Path) -> None:
        """rmlearn's own layout: the backbone as transformers saves it, the head beside it."""
        from safetensors.torch import save_file

        self._plain_backbone().save_pretrained(directory)
        save_file({k: v.detach().cpu().contiguous() for k, v in self.head.state_dict().items()},
                  directory / HEAD_NAME)
        config = {"class": type(self).__name__, **self._extra_config()}
        (directory / CONFIG_NAME).write_text(json.dumps(config, indent=2) + "\n")

    def save_pretrained(self, directory: str | Path, tokenizer: Any = None) -> Path:
        """Write the backbone (config + safetensors), the head and rmlearn's own config.

        ``RewardModel`` overrides this with a checkpoint that ``transformers`` loads too.
        """
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self._save_rmlearn_format(directory)
        if tokenizer is not None:
            tokenizer.save_pretrained(directory)
        return directory

    @classmethod
    def _load_parts(cls, name_or_path: str | Path, **kwargs: Any) -> tuple[dict[str, Any], nn.Module, dict]:
        """(rmlearn config, backbone, head tensors) from rmlearn's layout or any HF checkpoint."""
        from safetensors.torch import load_file

        from .backbone import load_backbone

        directory = Path(name_or_path).expanduser()
        if (directory / CONFIG_NAME).exists():  # rmlearn's own layout
            config = json.loads((directory / CONFIG_NAME).read_text())
            if config.get("class") != cls.__name__:
                raise ValueError(f"{directory} holds a {config.get('class')}, not a {cls.__name__}")
            return config, load_backbone(directory, **kwargs), load_file(directory / HEAD_NAME)
        if directory.is_dir() and not (directory / "config.json").exists():
            raise FileNotFoundError(f"{directory} has no config.json (nor {CONFIG_NAME}): no saved model there")
        backbone = load_backbone(name_or_path, **kwargs)
        config = dict(getattr(backbone.config, "rmlearn", None) or {})
        if config.get("class", "RewardModel") not in (cls.__name__, "RewardModel"):
            raise ValueError(f"{name_or_path} holds a {config['class']}, not a {cls.__name__}")
        head = read_head(name_or_path, backbone, **hub_kwargs(kwargs))
        return config, backbone, head


class RewardModel(_DecoderWithHead):
    """Score a (prompt, response) pair with one number: the head applied to a pooled hidden state.

    Args:
        backbone: any ``transformers`` decoder (``tiny_backbone()``, ``load_backbone("gpt2")``, …);
            a model with a head (``*ForCausalLM``) is unwrapped to its decoder. The reward head is
            sized from the decoder's output width and created on its device, in its dtype.
        pooling: ``"eos"`` (default, correct), ``"mean"`` or ``"last"`` (the padding bug); see
            ``rmlearn.pooling.pool``.
        seed: seeds the head's initial weights.

    >>> from rmlearn import RewardModel, tiny_backbone, course_tokenizer
    >>> model = RewardModel(tiny_backbone(seed=0))
    >>> model.score(["How do I reset my password?"], ["Click 'Forgot password'."], course_tokenizer()).shape
    torch.Size([1])
    """

    def __init__(self, backbone: nn.Module, pooling: str = DEFAULT_POOLING, seed: int = 0):
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; choose one of {POOLINGS}")
        super().__init__(backbone, seed)
        self.pooling = pooling

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Rewards, (B, T) ids and mask → (B,)."""
        hidden = self.hidden(input_ids, attention_mask)  # (B, T, D)
        if attention_mask is not None:
            attention_mask = attention_mask.to(hidden.device)
        pooled = pool(hidden, attention_mask, self.pooling)  # (B, D)
        return self.head(pooled).squeeze(-1)  # (B,)

    @torch.no_grad()
    def token_scores(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """The head at every position: what each prefix would score, (B, T); padding is NaN."""
        hidden = self.hidden(input_ids, attention_mask)  # (B, T, D)
        scores = self.head(hidden).squeeze(-1)  # (B, T)
        if attention_mask is not None:
            scores = scores.masked_fill(attention_mask.to(scores.device) == 0, float("nan"))
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
        Runs in inference mode and eval mode; batches are grouped by length to pad little. A small
        CPU model scores whole batches side by side, one thread each (``fastcpu.batches_side_by_side``):
        each batch's numbers are those of one thread, whatever the thread count.
        """
        if isinstance(responses, str):
            responses = [responses]
        if isinstance(prompts, str):
            prompts = [prompts] * len(responses)
        if len(prompts) != len(responses):
            raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
        modes = [(m, m.training) for m in self.modules()]  # each module's own, restored as found
        self.eval()
        try:
            with one_cpu_thread_if_small(self) as threads:
                return self._score_sorted(list(prompts), list(responses), tokenizer, batch_size, threads)
        finally:
            for module, mode in modes:
                module.training = mode

    def _score_sorted(self, prompts, responses, tokenizer, batch_size, threads: int) -> torch.Tensor:
        device = self.input_device
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]) + len(responses[i]))
        batches = [order[start:start + batch_size] for start in range(0, len(order), batch_size)]
        encoded = []  # tokenized here, in one thread: a tokenizer is not shared across threads
        for idx in batches:
            ids, mask = encode_batch(tokenizer, [prompts[i] for i in idx], [responses[i] for i in idx], self.max_length)
            self.check_token_ids(int(ids.max()), tokenizer)
            encoded.append((ids, mask))

        def forward(batch: tuple[torch.Tensor, torch.Tensor]) -> torch.Tensor:
            with torch.inference_mode():  # per thread, as grad mode is
                return self(batch[0].to(device), batch[1].to(device)).float().cpu()  # (B,)

        out = torch.empty(len(prompts))
        with batches_side_by_side(self, len(batches), threads) as run:
            for idx, scores in zip(batches, run(forward, encoded), strict=True):
                out[idx] = scores
        return out

    def __getattr__(self, name: str) -> Any:
        try:
            return super().__getattr__(name)  # parameters and submodules live here
        except AttributeError:
            if name == "config":  # what TRL reads from an nn.Module given as reward_funcs=
                raise AttributeError(
                    "RewardModel has no `config`: it is not a transformers model. For TRL's reward_funcs= "
                    "pass model.as_reward_function(tokenizer); the decoder's config is model.backbone.config"
                ) from None
            raise

    def as_reward_function(self, tokenizer: Any, batch_size: int = 64) -> Callable[..., list[float]]:
        """This model as a TRL reward function (``GRPOTrainer(reward_funcs=...)``, RLOO, …).

        The callable takes ``prompts`` and ``completions`` (plain strings, or conversations as lists
        of ``{role, content}``, rendered one ``role: content`` per line as ``load_preferences`` does)
        and returns one float per completion: exactly ``self.score(prompts, completions, tokenizer)``.

        >>> from rmlearn import RewardModel, tiny_backbone, course_tokenizer
        >>> reward = RewardModel(tiny_backbone()).as_reward_function(course_tokenizer())
        >>> len(reward(prompts=["Hi?", "Hi?"], completions=["Hello.", "Go away."]))
        2
        """

        def rmlearn_reward(prompts: Sequence[Any], completions: Sequence[Any], **_: Any) -> list[float]:
            texts = [_as_text(p) for p in prompts], [_as_text(c) for c in completions]
            return self.score(*texts, tokenizer, batch_size=batch_size).tolist()

        return rmlearn_reward

    def _extra_config(self) -> dict[str, Any]:
        extra: dict[str, Any] = {"pooling": self.pooling, **super()._extra_config()}
        if self.head.bias is not None:
            extra["head_bias"] = float(self.head.bias.detach().float().cpu())
        return extra

    def save_pretrained(self, directory: str | Path, tokenizer: Any = None) -> Path:
        """Write a Hugging Face sequence-classification checkpoint that rmlearn and transformers load.

        ``config.json`` names the backbone's ``*ForSequenceClassification`` class with
        ``num_labels=1`` and ``pad_token_id``; the head is saved as that class's ``score`` (or its
        own name); rmlearn's settings (pooling) sit under the ``rmlearn`` key. The tokenizer, if
        given, is saved so that it appends EOS: ``pipeline("text-classification", model=directory,
        function_to_apply="none")`` on ``prompt + "\\n" + response`` then gives ``self.score``'s reward.
        A backbone type without such a class is saved in rmlearn's own layout, with a warning.
        """
        from transformers import AutoModelForSequenceClassification

        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        config = copy.deepcopy(self.backbone.config)
        config.num_labels = 1
        config.pad_token_id = classifier_pad_id(tokenizer, config)
        config.rmlearn = {"class": type(self).__name__, **self._extra_config()}
        try:
            with torch.device("meta"):  # the class's layout only: no memory, no init
                classifier = AutoModelForSequenceClassification.from_config(config)
        except ValueError:
            warnings.warn(f"transformers has no sequence-classification class for model type "
                          f"{config.model_type!r}; saved in rmlearn's own layout: RewardModel.from_pretrained "
                          f"loads it; AutoModel.from_pretrained loads only the decoder (the head is {HEAD_NAME}); "
                          "AutoModelForSequenceClassification and pipeline('text-classification') cannot load it",
                          stacklevel=2)
            return super().save_pretrained(directory, tokenizer)
        head_name = hf_head_name(classifier)
        setattr(classifier, classifier.base_model_prefix, self._plain_backbone())
        head = getattr(classifier, head_name)
        head.weight = self.head.weight  # shared, not copied
        if self.head.bias is not None or self.pooling != "eos":
            warnings.warn(f"transformers' {type(classifier).__name__} reads the last real token and has "
                          f"no head bias; this model's pooling={self.pooling!r}"
                          + (f" and bias {self._extra_config()['head_bias']:+.4g}" if self.head.bias is not None else "")
                          + " are kept for rmlearn only, so transformers' scores differ", stacklevel=2)
        leftover = [n for n, p in classifier.named_parameters() if p.is_meta]
        if leftover:
            raise ValueError(f"cannot map this model onto {type(classifier).__name__}: {leftover} have no values")
        config.architectures = [type(classifier).__name__]
        classifier.config = config
        classifier.save_pretrained(directory)
        (directory / HEAD_NAME).unlink(missing_ok=True)  # an older rmlearn layout in the same folder
        (directory / CONFIG_NAME).unlink(missing_ok=True)
        if tokenizer is not None:
            from .backbone import save_tokenizer_appending_eos

            save_tokenizer_appending_eos(tokenizer, directory, self.max_length)
        return directory

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, **kwargs: Any) -> RewardModel:
        """Load a reward model: one saved by ``save_pretrained`` (scores are identical), or any
        Hugging Face reward checkpoint whatever its head's name (``score`` of
        ``*ForSequenceClassification``, ``classifier``, TRL's ``v_head``, …), local or a hub id.

        ``kwargs`` go to ``transformers.AutoModel.from_pretrained`` (``dtype``, ``device_map``, …);
        the head follows the backbone's device and dtype. The tokenizer: ``rmlearn.load_tokenizer``.
        """
        config, backbone, head = cls._load_parts(name_or_path, **kwargs)
        model = cls(backbone, pooling=config.get("pooling", "eos"))
        bias = head.get("bias")
        if bias is None and "head_bias" in config:
            bias = torch.tensor([config["head_bias"]])
        model._set_head(head["weight"], bias)
        model.max_length = config.get("max_length")
        return model.eval()

    @classmethod
    def from_sequence_classifier(cls, classifier: nn.Module) -> RewardModel:
        """Wrap a ``transformers`` ``*ForSequenceClassification`` model with one label (as TRL
        trains them), or any model with a one-output linear head (``score``, ``classifier``,
        ``v_head``, …), sharing its weights: EOS pooling reads the same token it does."""
        base = unwrap(classifier)
        heads = {n: m for n, m in classifier.named_modules() if isinstance(m, nn.Linear)
                 and m.out_features == 1 and not any(m is b for b in base.modules())}
        if len(heads) > 1:
            heads = {n: heads[n] for n in HEAD_NAMES if n in heads} or heads
        if len(heads) != 1:
            labels = getattr(classifier.config, "num_labels", None)
            raise ValueError(f"a reward model has one output; {type(classifier).__name__} has "
                             f"{len(heads) or 'no'} one-output linear heads (num_labels={labels})")
        model = cls(base, pooling="eos")
        model.head = next(iter(heads.values()))
        return model


def _as_text(item: Any) -> str:
    """A TRL prompt or completion as text: a string, or a conversation rendered ``role: content``."""
    if isinstance(item, str):
        return item
    return "\n".join(f"{m['role']}: {m['content']}" for m in item)


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
    def from_pretrained(cls, name_or_path: str | Path, **kwargs: Any) -> ValueModel:
        """Load a model written by ``save_pretrained``, or start a critic from a reward model's
        checkpoint (its head, bias 0), as InstructGPT initialises the value function."""
        config, backbone, head = cls._load_parts(name_or_path, **kwargs)
        model = cls(backbone)
        model._set_head(head["weight"], head.get("bias", torch.zeros(1)))
        model.max_length = config.get("max_length")
        return model.eval()


# ---------------------------------------------------------------------------------------------
# Lesson 10: one decoder, heads at different positions (EOS, step separators, every token)
# ---------------------------------------------------------------------------------------------

STEP_SEPARATOR = ","  # steps of a synthetic answer are its comma-separated phrases


class ProcessRewardModel(_DecoderWithHead):
    """A process reward model (Lightman et al., 2023): the head read at the end of every step,
    P(step k is correct) = σ(head(h at step k's end)). A step ends at a separator token, the
    last step at EOS. RewardModel reads one position (EOS), ValueModel every position.

    >>> from rmlearn import course_tokenizer, tiny_backbone
    >>> prm = ProcessRewardModel(tiny_backbone())
    >>> probs, mask = prm.step_probs(["How do I cancel my plan?"], [["press cancel plan", "kind regards"]],
    ...                              course_tokenizer())
    >>> probs.shape, mask.tolist()                            # (B, S): one probability per step
    (torch.Size([1, 2]), [[1.0, 1.0]])
    """

    head_bias = True

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """Step logits at every position, (B, T) ids → (B, T); only step ends are meaningful."""
        return self.head(self.hidden(input_ids, attention_mask)).squeeze(-1)  # (B, T)

    def encode_steps(self, prompts: Sequence[str], steps: Sequence[Sequence[str]], tokenizer: Any):
        """Ids (B, T) of ``[prompt ; s1, s2, … . ; EOS]``, right padded, and the step ends (B, S)
        with their mask: the last (n − 1) separators of each answer and its EOS."""
        sep = tokenizer.convert_tokens_to_ids(STEP_SEPARATOR)
        texts = [", ".join(s) + "." for s in steps]
        seqs = [encode(tokenizer, p, t, self.max_length) for p, t in zip(prompts, texts)]
        ids, mask = pad_batch(seqs, tokenizer.pad_token_id)  # (B, T)
        width = max(len(s) for s in steps)
        ends, step_mask = torch.zeros(len(seqs), width, dtype=torch.long), torch.zeros(len(seqs), width)
        for b, (seq, n) in enumerate(zip(seqs, (len(s) for s in steps))):
            seps = [t for t, i in enumerate(seq) if i == sep][-(n - 1):] if n > 1 else []  # the answer's own
            positions = seps + [len(seq) - 1]  # the last step ends at EOS
            if len(positions) != n:
                raise ValueError(f"answer {b} has {n} steps but {len(positions) - 1} separators {STEP_SEPARATOR!r}")
            ends[b, :n], step_mask[b, :n] = torch.tensor(positions), 1
        return ids, mask, ends, step_mask

    @torch.no_grad()
    def step_features(self, prompts: Sequence[str], steps: Sequence[Sequence[str]], tokenizer: Any):
        """Hidden states at the step ends, (B, S, D), and the step mask (B, S)."""
        ids, mask, ends, step_mask = self.encode_steps(prompts, steps, tokenizer)
        with one_cpu_thread_if_small(self):
            hidden = self.hidden(ids, mask)  # (B, T, D)
        feats = hidden.gather(1, ends[:, :, None].expand(-1, -1, hidden.shape[-1]).to(hidden.device))  # (B, S, D)
        return feats, step_mask

    @torch.no_grad()
    def step_probs(self, prompts: Sequence[str], steps: Sequence[Sequence[str]], tokenizer: Any):
        """P(step correct) for each step, (B, S), and the step mask (B, S) (padding steps are 0)."""
        feats, step_mask = self.step_features(prompts, steps, tokenizer)
        return torch.sigmoid(self.head(feats).squeeze(-1)).cpu() * step_mask, step_mask  # (B, S)


@torch.no_grad()
def pooled_features(model: _DecoderWithHead, tokenizer: Any, prompts: Sequence[str], responses: Sequence[str],
                    batch_size: int = 128) -> torch.Tensor:
    """The decoder's hidden state at EOS of ``[prompt ; response ; EOS]``, (N, D): what a reward
    head reads. A new head on these features is a new reward model on the same decoder."""
    out = []
    with one_cpu_thread_if_small(model):
        for start in range(0, len(prompts), batch_size):
            ids, mask = encode_batch(tokenizer, list(prompts[start:start + batch_size]),
                                     list(responses[start:start + batch_size]), model.max_length)
            out.append(pool(model.hidden(ids, mask), mask, "eos"))  # (b, D)
    return torch.cat(out)  # (N, D)
