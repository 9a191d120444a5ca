"""Which hidden state becomes the reward? EOS, mean and the naive last-column pooling (lesson 02).

Pure tensor code: hidden states and the attention mask in, one vector per sequence out.
"""

from __future__ import annotations

import torch

from .config import POOLINGS


def last_token_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of the last real (mask = 1) token of each row, for right *and* left padding.

    Shape: ``attention_mask`` (B, T) → (B,), long.

    >>> last_token_index(torch.tensor([[1, 1, 1, 0], [0, 1, 1, 1]]))
    tensor([2, 3])
    """
    if attention_mask.dim() != 2:
        raise ValueError(f"attention_mask must be (batch, seq), got shape {tuple(attention_mask.shape)}")
    mask = attention_mask.bool()
    if not mask.any(dim=1).all():
        bad = (~mask.any(dim=1)).nonzero().flatten().tolist()
        raise ValueError(f"rows {bad} of attention_mask have no real token")
    positions = torch.arange(mask.shape[1], device=mask.device)  # (T,)
    return torch.where(mask, positions, -1).max(dim=1).values  # (B,)


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor | None, how: str = "eos") -> torch.Tensor:
    """Reduce hidden states to one vector per sequence.

    Args:
        hidden: (B, T, D) final-layer hidden states.
        attention_mask: (B, T), 1 for real tokens, 0 for padding; ``None`` means no padding.
        how: ``"eos"`` — the state at the last real token (the EOS we append), right for any
            padding side; ``"mean"`` — the average over real tokens (ignores padding, but dilutes
            the signal with prompt and filler tokens); ``"last"`` — the naive ``hidden[:, -1]``,
            which reads a PAD position under right padding (kept to show the bug).

    Returns:
        (B, D) pooled vectors.

    >>> h = torch.arange(8.).reshape(1, 4, 2)            # (B=1, T=4, D=2)
    >>> m = torch.tensor([[1, 1, 1, 0]])                 # right padding: last real token at t=2
    >>> pool(h, m, "eos"), pool(h, m, "last"), pool(h, m, "mean")
    (tensor([[4., 5.]]), tensor([[6., 7.]]), tensor([[2., 3.]]))
    """
    if how not in POOLINGS:
        raise ValueError(f"unknown pooling {how!r}; choose one of {POOLINGS}")
    if hidden.dim() != 3:
        raise ValueError(f"hidden must be (batch, seq, dim), got shape {tuple(hidden.shape)}")
    if attention_mask is None:
        attention_mask = torch.ones(hidden.shape[:2], dtype=torch.long, device=hidden.device)
    if attention_mask.shape != hidden.shape[:2]:
        raise ValueError(
            f"attention_mask shape {tuple(attention_mask.shape)} does not match hidden "
            f"{tuple(hidden.shape[:2])}"
        )
    if how == "last":
        return hidden[:, -1]  # (B, D) — whatever sits in the last column, PAD or not
    if how == "eos":
        rows = torch.arange(hidden.shape[0], device=hidden.device)
        return hidden[rows, last_token_index(attention_mask)]  # (B, D)
    weights = attention_mask.to(hidden.dtype).unsqueeze(-1)  # (B, T, 1)
    return (hidden * weights).sum(1) / weights.sum(1).clamp(min=1.0)  # (B, D)
