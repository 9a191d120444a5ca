"""Turning (prompt, response) text into the model's input ``[prompt ; response ; EOS]`` (lesson 01).

Shared by ``RewardModel.score`` and the training collate functions, so that what the model is
trained on and what it scores are built by the same code.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch

SEPARATOR = "\n"  # put between prompt and response text so they do not merge into one token
_warned_pad_eos: set[int] = set()


def special_ids(tokenizer: Any) -> tuple[int, int]:
    """``(eos_id, pad_id)`` of a tokenizer, rejecting one that cannot mark the end of a response.

    rmlearn builds the attention mask from sequence lengths, never by comparing ids with PAD, so
    any id can fill padding. A tokenizer without PAD pads with EOS, and one whose PAD equals EOS
    (common for GPT-2 checkpoints) is used as it is: the appended EOS is still the token that is
    scored. A warning says so once per tokenizer, because ``transformers``' own
    ``*ForSequenceClassification`` heads find the last token by comparing ids with PAD, and
    *would* skip that EOS.
    """
    eos = getattr(tokenizer, "eos_token_id", None)
    if eos is None:
        raise ValueError(
            "the tokenizer has no EOS token; set tokenizer.eos_token (the reward is read at EOS)"
        )
    pad = getattr(tokenizer, "pad_token_id", None)
    if (pad is None or pad == eos) and id(tokenizer) not in _warned_pad_eos:
        _warned_pad_eos.add(id(tokenizer))
        what = "has no PAD token, so rmlearn pads with EOS" if pad is None else "PAD and EOS are the same token"
        warnings.warn(
            f"the tokenizer {what} (id {eos}). rmlearn marks real tokens by length, so the appended "
            "EOS is still scored; models that find padding by comparing ids with PAD "
            "(e.g. GPT2ForSequenceClassification) would score the token before EOS instead.",
            stacklevel=3,
        )
    return eos, eos if pad is None else pad


def special_prefix(tokenizer: Any) -> list[int]:
    """The special ids a tokenizer puts *before* a text, e.g. ``[BOS]`` for Llama-style ones.

    Whatever its post-processor appends (an EOS, a SEP) is left out: rmlearn appends EOS once,
    at the end of the response.
    """
    plain = tokenizer("a b", add_special_tokens=False)["input_ids"]
    full = tokenizer("a b", add_special_tokens=True)["input_ids"]
    for start in range(len(full) - len(plain) + 1):
        if full[start:start + len(plain)] == plain:
            return list(full[:start])
    return []


def encode(tokenizer: Any, prompt: str, response: str, max_length: int | None = None) -> list[int]:
    """Token ids of ``[BOS? ; prompt + SEPARATOR + response ; EOS]``.

    The tokenizer's own leading special tokens (BOS) are kept; EOS is appended once, after the
    response, even by a tokenizer that appends one itself. When longer than ``max_length``,
    tokens are dropped from the *start* of the prompt (after BOS), so the end of the response and
    the EOS, which the reward is read from, always survive.
    """
    return encode_many(tokenizer, [prompt], [response], max_length)[0]


def encode_many(
    tokenizer: Any, prompts: Sequence[str], responses: Sequence[str], max_length: int | None = None
) -> list[list[int]]:
    """``encode`` for many pairs: the same ids, from one batched tokenizer call.

    ``prompt + SEPARATOR + response`` is tokenized as one text, as transformers' pipeline does:
    a SentencePiece tokenizer (Llama-2, Mistral, Gemma, Phi-3) writes a "▁" before the first word
    of every call, so tokenizing the two parts apart would put an extra token at the boundary.
    """
    if len(prompts) != len(responses):
        raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
    if not responses:
        return []
    eos, _ = special_ids(tokenizer)
    prefix = special_prefix(tokenizer)
    if max_length is not None and max_length < len(prefix) + 2:
        raise ValueError(f"max_length must be at least {len(prefix) + 2}, got {max_length}")
    texts = [p + SEPARATOR + r for p, r in zip(prompts, responses, strict=True)]
    text_ids = tokenizer(texts, add_special_tokens=False)["input_ids"]
    keep = -(max_length - len(prefix) - 1) if max_length is not None else 0  # drop from the start
    return [prefix + ids[keep:] + [eos] for ids in text_ids]


def pad_batch(
    sequences: Sequence[Sequence[int]], pad_id: int, side: str = "right"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad token-id lists to the longest one.

    Returns ``input_ids`` and ``attention_mask``, both (B, T_max) long; the mask is 1 on real tokens.

    >>> pad_batch([[5, 6, 7], [8]], pad_id=0, side="left")
    (tensor([[5, 6, 7],
            [0, 0, 8]]), tensor([[1, 1, 1],
            [0, 0, 1]]))
    """
    if side not in ("right", "left"):
        raise ValueError(f"padding side must be 'right' or 'left', got {side!r}")
    if not sequences or any(len(s) == 0 for s in sequences):
        raise ValueError("pad_batch needs at least one sequence and no empty sequence")
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)  # (B, T)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)  # (B, T)
    for row, seq in enumerate(sequences):
        cols = slice(0, len(seq)) if side == "right" else slice(width - len(seq), width)
        ids[row, cols] = torch.as_tensor(seq, dtype=torch.long)
        mask[row, cols] = 1
    return ids, mask


def encode_batch(
    tokenizer: Any,
    prompts: Sequence[str],
    responses: Sequence[str],
    max_length: int | None = None,
    side: str | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Encode and pad prompt/response pairs; ``side`` defaults to ``tokenizer.padding_side``."""
    if isinstance(prompts, str) or isinstance(responses, str):
        raise TypeError("prompts and responses must be lists of strings, not a single string")
    if len(prompts) != len(responses):
        raise ValueError(f"{len(prompts)} prompts but {len(responses)} responses")
    _, pad = special_ids(tokenizer)
    seqs = encode_many(tokenizer, prompts, responses, max_length)
    return pad_batch(seqs, pad, side or getattr(tokenizer, "padding_side", "right"))


def position_ids(attention_mask: torch.Tensor) -> torch.Tensor:
    """Positions counted over real tokens only, so left padding does not shift them.

    >>> position_ids(torch.tensor([[0, 0, 1, 1], [1, 1, 1, 0]]))
    tensor([[0, 0, 0, 1],
            [0, 1, 2, 2]])
    """
    return (attention_mask.long().cumsum(-1) - 1).clamp(min=0)  # (B, T)
