"""Integer task labels (S, n): class counts and train/test column splits, compiled on the CPU."""

from __future__ import annotations

import numpy as np
import torch

from . import compiled


def class_counts(y: torch.Tensor, q: int) -> torch.Tensor:
    """Label counts per task: (S, n) labels in 0..q-1 -> (S, q) int64.

    Raises ``ValueError`` for labels outside ``0..q-1``.
    """
    if compiled.use_jit(y.device):
        counts = np.empty((y.shape[0], q), dtype=np.int64)
        bad = compiled.kernels("label_kernels").label_counts(y.contiguous().numpy(), q, counts)
        if bad:
            raise ValueError(f"tasks have {bad} label(s) outside 0..{q - 1}.")
        return torch.from_numpy(counts)
    if y.numel() and (int(y.min()) < 0 or int(y.max()) >= q):
        raise ValueError(f"tasks have labels outside 0..{q - 1}.")
    out = torch.zeros(y.shape[0], q, dtype=torch.long, device=y.device)
    return out.scatter_add_(1, y, torch.ones_like(y))


def split_columns(
    y: torch.Tensor, train: torch.Tensor, test: torch.Tensor, q: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(y[:, train], y[:, test], class_counts(y[:, train], q))``: (S, m1), (S, m2),
    (S, q) int64, from one pass over ``y`` on the CPU. Raises ``ValueError`` for train
    labels outside ``0..q-1``."""
    if not compiled.use_jit(y.device):
        y_train = y[:, train]
        return y_train, y[:, test], class_counts(y_train, q)
    s = y.shape[0]
    train_np = np.empty((s, train.numel()), dtype=np.int64)
    test_np = np.empty((s, test.numel()), dtype=np.int64)
    counts = np.empty((s, q), dtype=np.int64)
    bad = compiled.kernels("label_kernels").split_columns(
        y.long().contiguous().numpy(),
        train.contiguous().numpy(),
        test.contiguous().numpy(),
        q,
        train_np,
        test_np,
        counts,
    )
    if bad:
        raise ValueError(f"tasks have {bad} label(s) outside 0..{q - 1}.")
    return torch.from_numpy(train_np), torch.from_numpy(test_np), torch.from_numpy(counts)
