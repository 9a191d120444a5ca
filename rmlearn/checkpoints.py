"""Hugging Face checkpoints and rmlearn's reward head: what a decoder outputs, where a checkpoint
keeps its reward head (whatever its name), and what a saved classifier needs (lesson 01).

Used by ``models``: ``RewardModel.save_pretrained`` / ``from_pretrained`` and
``from_sequence_classifier``. Reads weights lazily from safetensors (single or sharded) and whole
from ``pytorch_model.bin``; a hub id works as in ``transformers`` (``HF_HUB_OFFLINE=1`` forbids it).
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch
from torch import nn

HEAD_NAMES = ("score", "classifier", "v_head.summary", "v_head", "summary")  # reward heads, by name


def unwrap(backbone: nn.Module) -> nn.Module:
    """The decoder stack of a ``transformers`` model: a ``*ForCausalLM`` (or any model with a head)
    becomes its ``base_model``, so its ``lm_head`` is not used and hidden states come out.

    A PEFT model (``get_peft_model(backbone, LoraConfig(...))``) becomes the transformers model
    inside it, its LoRA layers in place: only they (and the reward head) are trainable.
    """
    if callable(getattr(backbone, "get_base_model", None)) and hasattr(backbone, "peft_config"):
        backbone = backbone.get_base_model()
    base = getattr(backbone, "base_model", None)
    return base if isinstance(base, nn.Module) and base is not backbone else backbone


def adapter_layers(model: nn.Module) -> dict[str, nn.Module]:
    """PEFT's tuner layers (LoRA, …) inside ``model``, by module name; empty without PEFT."""
    return {name: m for name, m in model.named_modules()
            if callable(getattr(m, "get_base_layer", None)) and hasattr(m, "active_adapters")}


def merged_copy(backbone: nn.Module) -> nn.Module:
    """The backbone with its LoRA adapters merged into the weights, as a plain transformers model
    of the same class: W + B·A·scale per adapted layer (PEFT's ``get_delta_weight``). The
    backbone is left as it is; unadapted tensors are shared, not copied."""
    layers = adapter_layers(backbone)
    merged: dict[str, torch.Tensor] = {}
    for name, tensor in backbone.state_dict().items():
        if "lora_" in name:
            continue
        merged[name.replace(".base_layer.", ".")] = tensor
    for name, layer in layers.items():
        if getattr(layer, "use_dora", {}) and any(layer.use_dora.values()):
            raise NotImplementedError(f"{name}: merging DoRA adapters on save is not supported; save with "
                                      "peft's own save_pretrained")
        if not hasattr(layer, "get_delta_weight"):
            raise NotImplementedError(f"{name}: {type(layer).__name__} adapters cannot be merged on save")
        weight = layer.get_base_layer().weight
        delta = sum(layer.get_delta_weight(a) for a in layer.active_adapters if a in getattr(layer, "lora_A", {}))
        merged[f"{name}.weight"] = (weight + delta).detach() if torch.is_tensor(delta) else weight.detach()
    with torch.device("meta"):
        plain = type(backbone)(backbone.config)
    plain.load_state_dict(merged, assign=True)
    return plain.eval()


def output_width(config: Any) -> int:
    """Width D of the final hidden states a decoder returns.

    Usually ``hidden_size``; OPT projects them back to ``word_embed_proj_dim`` when that differs
    (opt-350m: 1024 hidden, 512 out), as ``OPTForSequenceClassification`` sizes its head.
    """
    projected = getattr(config, "word_embed_proj_dim", None)
    return int(projected or config.hidden_size)


def hub_kwargs(kwargs: dict[str, Any]) -> dict[str, Any]:
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
        ranked = [n for name in HEAD_NAMES for n in heads if n == f"{name}.weight"]
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


def classifier_pad_id(tokenizer: Any, config: Any) -> int | None:
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


def hf_head_name(classifier: nn.Module) -> str:
    """Name of the head of a transformers ``*ForSequenceClassification`` model (usually ``score``)."""
    base = getattr(classifier, classifier.base_model_prefix)
    names = [n for n, m in classifier.named_children() if m is not base and isinstance(m, nn.Linear)]
    if len(names) != 1:
        raise ValueError(f"{type(classifier).__name__} has no single linear head (children: {names})")
    return names[0]


