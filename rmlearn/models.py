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
from collections.abc import Callable, Iterator, Sequence
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


_HEAD_NAMES = ("score", "classifier", "v_head.summary", "v_head", "summary")  # reward heads, by name


def _unwrap(backbone: nn.Module) -> nn.Module:
    """The decoder stack of a ``transformers`` model: a ``*ForCausalLM`` (or any model with a head)
    becomes its ``base_model``, so its ``lm_head`` is not used and hidden states come out."""
    base = getattr(backbone, "base_model", None)
    return base if isinstance(base, nn.Module) and base is not backbone else backbone


def output_width(config: Any) -> int:
    """Width D of the final hidden states a decoder returns.

    Usually ``hidden_size``; OPT projects them back to ``word_embed_proj_dim`` when that differs
    (opt-350m: 1024 hidden, 512 out), as ``OPTForSequenceClassification`` sizes its head.
    """
    projected = getattr(config, "word_embed_proj_dim", None)
    return int(projected or config.hidden_size)


class _DecoderWithHead(nn.Module):
    """A ``transformers`` decoder plus a linear map from its output width to one number."""

    kind = "decoder"
    head_bias = False

    def __init__(self, backbone: nn.Module, seed: int = 0):
        super().__init__()
        self.backbone = _unwrap(backbone)
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

    @property
    def max_length(self) -> int | None:
        cfg = self.backbone.config
        return getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", None)

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
        return {}

    def _save_rmlearn_format(self, directory: Path) -> None:
        """rmlearn's own layout: the backbone as transformers saves it, the head beside it."""
        from safetensors.torch import save_file

        self.backbone.save_pretrained(directory)
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
        head = read_head(name_or_path, backbone, **_hub_kwargs(kwargs))
        return config, backbone, head


def _hub_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
    keys = ("revision", "cache_dir", "token", "local_files_only", "subfolder")
    return {k: kwargs[k] for k in keys if k in kwargs}


def _checkpoint_tensors(name_or_path: str | Path, **hub: Any) -> tuple[dict[str, tuple], Any]:
    """{name: shape} of every tensor in a checkpoint, and a function name → tensor.

    Reads safetensors (single or sharded) lazily; ``pytorch_model.bin`` files whole.
    """
    from safetensors import safe_open
    from transformers.utils import cached_file

    def find(filename: str) -> str | None:
        return cached_file(str(name_or_path), filename, _raise_exceptions_for_missing_entries=False,
                           _raise_exceptions_for_connection_errors=False, **hub)

    files: dict[str, str] = {}  # tensor name → file
    for single, index in (("model.safetensors", "model.safetensors.index.json"),
                          ("pytorch_model.bin", "pytorch_model.bin.index.json")):
        if (path := find(single)) is not None:
            files = dict.fromkeys(_keys_of(path), path)
        elif (path := find(index)) is not None:
            weight_map = json.loads(Path(path).read_text())["weight_map"]
            shards = {shard: find(shard) for shard in set(weight_map.values())}
            files = {name: shards[shard] for name, shard in weight_map.items()}
        if files:
            break
    if not files:
        raise FileNotFoundError(f"{name_or_path} holds no model.safetensors or pytorch_model.bin weights")
    loaded: dict[str, dict[str, torch.Tensor]] = {}

    def get(name: str) -> torch.Tensor:
        path = files[name]
        if path.endswith(".safetensors"):
            with safe_open(path, "pt") as f:
                return f.get_tensor(name)
        if path not in loaded:
            loaded[path] = torch.load(path, map_location="cpu", weights_only=True)
        return loaded[path][name]

    shapes = {}
    for name, path in files.items():
        if path.endswith(".safetensors"):
            with safe_open(path, "pt") as f:
                shapes[name] = tuple(f.get_slice(name).get_shape())
        else:
            shapes[name] = tuple(get(name).shape)
    return shapes, get


def _keys_of(path: str) -> list[str]:
    if path.endswith(".safetensors"):
        from safetensors import safe_open

        with safe_open(path, "pt") as f:
            return list(f.keys())
    return list(torch.load(path, map_location="cpu", weights_only=True, mmap=True))


def read_head(name_or_path: str | Path, backbone: nn.Module, **hub: Any) -> dict[str, torch.Tensor]:
    """The reward head of a Hugging Face checkpoint, whatever its name: ``{"weight": (1, D), "bias"?: (1,)}``.

    A head is a (1, D) weight outside the decoder (``score`` as in ``*ForSequenceClassification``,
    ``classifier``, TRL's ``v_head.summary``, …). Raises ``ValueError`` naming what was found
    when there is none, or a classifier with several labels.
    """
    shapes, get = _checkpoint_tensors(name_or_path, **hub)
    width = output_width(backbone.config)
    prefix = getattr(backbone, "base_model_prefix", "") + "."
    outside = {n: s for n, s in shapes.items() if not n.startswith(prefix) and n.endswith(".weight")}
    heads = [n for n, s in outside.items() if len(s) == 2 and s == (1, width)]
    if len(heads) > 1:
        ranked = [n for name in _HEAD_NAMES for n in heads if n == f"{name}.weight"]
        heads = ranked[:1] or heads
    if len(heads) != 1:
        wide = {n: s for n, s in outside.items() if len(s) == 2 and s[1] == width and s[0] < 100}
        found = ", ".join(f"{n} {list(s)}" for n, s in wide.items()) or "no linear layer outside the decoder"
        raise ValueError(
            f"{name_or_path}: no reward head found (a [1, {width}] weight outside the decoder, "
            f"e.g. score.weight); found {found}. A classifier with several labels is not a reward model."
        )
    name = heads[0][: -len(".weight")]
    head = {"weight": get(f"{name}.weight")}
    if f"{name}.bias" in shapes:
        head["bias"] = get(f"{name}.bias")
    return head


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

    def __init__(self, backbone: nn.Module, pooling: str = "eos", seed: int = 0):
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
        device = self.input_device
        order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]) + len(responses[i]))
        out = torch.empty(len(prompts))
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            ids, mask = encode_batch(
                tokenizer, [prompts[i] for i in idx], [responses[i] for i in idx], self.max_length
            )
            out[idx] = self(ids.to(device), mask.to(device)).float().cpu()
        return out

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
        extra: dict[str, Any] = {"pooling": self.pooling}
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
        config.pad_token_id = _classifier_pad_id(tokenizer, config)
        config.rmlearn = {"class": type(self).__name__, **self._extra_config()}
        try:
            with torch.device("meta"):  # the class's layout only: no memory, no init
                classifier = AutoModelForSequenceClassification.from_config(config)
        except ValueError:
            warnings.warn(f"transformers has no sequence-classification class for model type "
                          f"{config.model_type!r}; saved in rmlearn's own layout (only rmlearn loads it)",
                          stacklevel=2)
            return super().save_pretrained(directory, tokenizer)
        head_name = _hf_head_name(classifier)
        setattr(classifier, classifier.base_model_prefix, self.backbone)
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

            save_tokenizer_appending_eos(tokenizer, directory)
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
        return model.eval()

    @classmethod
    def from_sequence_classifier(cls, classifier: nn.Module) -> RewardModel:
        """Wrap a ``transformers`` ``*ForSequenceClassification`` model with one label (as TRL
        trains them), or any model with a one-output linear head (``score``, ``classifier``,
        ``v_head``, …), sharing its weights: EOS pooling reads the same token it does."""
        base = _unwrap(classifier)
        heads = {n: m for n, m in classifier.named_modules() if isinstance(m, nn.Linear)
                 and m.out_features == 1 and not any(m is b for b in base.modules())}
        if len(heads) > 1:
            heads = {n: heads[n] for n in _HEAD_NAMES if n in heads} or heads
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


def _classifier_pad_id(tokenizer: Any, config: Any) -> int | None:
    """The ``pad_token_id`` for a saved classifier. transformers' classes find the scored token as
    the last one that is not PAD, so PAD must differ from EOS; otherwise None (one text at a time)."""
    source = tokenizer if tokenizer is not None else config
    pad, eos = getattr(source, "pad_token_id", None), getattr(source, "eos_token_id", None)
    if pad is None or pad == eos:
        warnings.warn(f"PAD is {'EOS' if pad is not None else 'missing'}: the saved classifier gets "
                      "pad_token_id=None, so transformers scores one unpadded text at a time correctly "
                      "and refuses padded batches (rather than skip the EOS)", stacklevel=3)
        return None
    return int(pad)


def _hf_head_name(classifier: nn.Module) -> str:
    """Name of the head of a transformers ``*ForSequenceClassification`` model (usually ``score``)."""
    base = getattr(classifier, classifier.base_model_prefix)
    names = [n for n, m in classifier.named_children() if m is not base and isinstance(m, nn.Linear)]
    if len(names) != 1:
        raise ValueError(f"{type(classifier).__name__} has no single linear head (children: {names})")
    return names[0]


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
        _, backbone, head = cls._load_parts(name_or_path, **kwargs)
        model = cls(backbone)
        model._set_head(head["weight"], head.get("bias", torch.zeros(1)))
        return model.eval()
