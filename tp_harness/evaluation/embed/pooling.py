"""Pooling of token / patch states into one vector per example (pure torch).

All functions take hidden states ``h (B, L, D)`` (or conv maps ``(B, C, H, W)``) and
return float32 ``(B, D)``. ``mask (B, L)`` is the attention mask (1 = real token);
pooling honours it whatever the padding side.
"""

from __future__ import annotations

import torch


def mean_pool(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over real tokens: ``(B, L, D), (B, L) -> (B, D)``."""
    m = mask.to(torch.float32).unsqueeze(-1)  # (B, L, 1)
    return (h.float() * m).sum(1) / m.sum(1).clamp(min=1.0)


def max_pool(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Max over real tokens (sentence-transformers ``max`` mode): ``(B, D)``."""
    filled = h.float().masked_fill(~mask.bool().unsqueeze(-1), float("-inf"))
    return filled.max(1).values


def first_token_pool(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """State of the first real token (CLS), left or right padding: ``(B, D)``."""
    pos = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)  # (B, L)
    first = torch.where(mask.bool(), pos, mask.shape[1]).min(1).values.clamp(max=mask.shape[1] - 1)
    return h[torch.arange(h.shape[0], device=h.device), first].float()


def last_token_pool(h: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """State of the last real token, left or right padding: ``(B, D)``."""
    pos = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)  # (B, L)
    last = torch.where(mask.bool(), pos, -1).max(1).values.clamp(min=0)
    return h[torch.arange(h.shape[0], device=h.device), last].float()


TEXT_POOLERS = {
    "mean": mean_pool,
    "cls": first_token_pool,
    "last": last_token_pool,
    "max": max_pool,
}

POOLINGS_BY_KIND: dict[str, tuple[str, ...]] = {
    "text": ("mean", "cls", "last", "max", "pooler"),
    "sentence-transformers": ("mean", "cls", "last", "max", "pooler"),
    "causal": ("mean", "last", "cls", "max"),
    "image": ("pooler", "cls", "mean", "projected"),
}
"""The pooling registry: which poolings each model kind accepts (spec checks read it)."""

POOLINGS: tuple[str, ...] = (
    "auto",
    *dict.fromkeys(p for names in POOLINGS_BY_KIND.values() for p in names),
)
"""Every pooling a spec may name (``auto``: the model's own default)."""


def pool_text(h: torch.Tensor, mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Pool token states ``(B, L, D)`` with ``pooling`` in mean|cls|last|max -> ``(B, D)``."""
    try:
        return TEXT_POOLERS[pooling](h, mask)
    except KeyError:
        raise ValueError(f"text pooling {pooling!r} not in {sorted(TEXT_POOLERS)}") from None


def pool_vision(h: torch.Tensor, pooling: str, num_prefix: int) -> torch.Tensor:
    """Pool patch states ``(B, L, D)`` or conv maps ``(B, C, H, W)`` -> ``(B, D)``.

    ``cls`` takes token 0; ``mean`` averages the patch tokens after ``num_prefix``
    prefix tokens (CLS, registers, distillation). Conv maps are averaged spatially.
    """
    if h.ndim == 4:  # (B, C, H, W)
        return h.float().mean(dim=(2, 3))
    if h.ndim == 2:
        return h.float()
    if pooling in ("cls", "pooler") and num_prefix > 0:
        return h[:, 0].float()
    return h[:, num_prefix:].float().mean(1)


def pooler_output(output: object) -> torch.Tensor | None:
    """``output.pooler_output`` flattened to ``(B, D)``, or None if the model has none."""
    pooled = getattr(output, "pooler_output", None)
    if pooled is None:
        return None
    return pooled.reshape(pooled.shape[0], -1).float()
