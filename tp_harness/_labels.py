"""Integer task labels (S, n): class counts and column gathers, compiled on the CPU."""

from __future__ import annotations

import numpy as np
import torch

from . import _jit


def class_counts(y: torch.Tensor, q: int) -> torch.Tensor:
    """Label counts per task: (S, n) labels in 0..q-1 -> (S, q) int64.

    Raises ``ValueError`` for labels outside ``0..q-1``.
    """
    if _jit.use_jit(y.device):
        counts = np.empty((y.shape[0], q), dtype=np.int64)
        bad = _jit.kernels("_label_kernels").label_counts(y.contiguous().numpy(), q, counts)
        if bad:
            raise ValueError(f"tasks have {bad} label(s) outside 0..{q - 1}.")
        return torch.from_numpy(counts)
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= q):
        raise ValueError(f"tasks have labels outside 0..{q - 1}.")
    out = torch.zeros(y.shape[0], q, dtype=torch.long, device=y.device)
    return out.scatter_add_(1, y, torch.ones_like(y))


def take_columns(y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``y[:, idx]`` (S, m) for y (S, n), idx (m,) int64."""
    if _jit.use_jit(y.device):
        return torch.from_numpy(_jit.kernels("_label_kernels").take_columns(
            y.contiguous().numpy(), idx.contiguous().numpy()))
    return y[:, idx]
