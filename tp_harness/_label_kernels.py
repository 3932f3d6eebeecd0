"""Compiled (numba) CPU kernels on integer task labels (S, n): gathers and counts.

Torch's gather along dim 1 and ``scatter_add`` are slow on (S, n) int64 arrays on the
CPU; these run in parallel over tasks. Called through :mod:`tp_harness._labels`.
"""

from __future__ import annotations

import numpy as np

from ._numba_support import njit, prange


@njit(parallel=True)
def take_columns(labels: np.ndarray, idx: np.ndarray) -> np.ndarray:
    """``labels[:, idx]`` in parallel over tasks. labels (S, n), idx (m,) -> (S, m)."""
    out = np.empty((labels.shape[0], idx.shape[0]), dtype=labels.dtype)
    for s in prange(labels.shape[0]):
        for j in range(idx.shape[0]):
            out[s, j] = labels[s, idx[j]]
    return out


@njit(parallel=True)
def label_counts(labels: np.ndarray, q: int, out: np.ndarray) -> int:
    """``out[s, c] = #{i: labels[s, i] = c}``. labels (S, n), out (S, q) int64.

    Returns the number of labels outside ``0..q-1`` (not counted).
    """
    bad = np.zeros(labels.shape[0], dtype=np.int64)
    for s in prange(labels.shape[0]):
        out[s] = 0
        for i in range(labels.shape[1]):
            c = labels[s, i]
            if 0 <= c < q:
                out[s, c] += 1
            else:
                bad[s] += 1
    return int(bad.sum())
