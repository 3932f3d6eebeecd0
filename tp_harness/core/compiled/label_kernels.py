"""Compiled (numba) CPU kernels on integer task labels (S, n): gathers and counts.

Torch's gather along dim 1 and ``scatter_add`` are slow on (S, n) int64 arrays on the
CPU; these run in parallel over tasks. Called through :mod:`tp_harness._labels`.
"""

from __future__ import annotations

import numpy as np

from .numba_support import njit, prange


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


@njit(parallel=True)
def split_columns(
    labels: np.ndarray,
    train: np.ndarray,
    test: np.ndarray,
    q: int,
    y_train: np.ndarray,
    y_test: np.ndarray,
    counts: np.ndarray,
) -> int:
    """``labels[:, train]``, ``labels[:, test]`` and the train label counts, in one pass.

    labels (S, n); train (m1,), test (m2,) int64; y_train (S, m1), y_test (S, m2),
    counts (S, q) int64 are filled. Returns the number of train labels outside
    ``0..q-1`` (not counted).
    """
    bad = np.zeros(labels.shape[0], dtype=np.int64)
    for s in prange(labels.shape[0]):
        counts[s] = 0
        for j in range(train.shape[0]):
            c = labels[s, train[j]]
            y_train[s, j] = c
            if 0 <= c < q:
                counts[s, c] += 1
            else:
                bad[s] += 1
        for j in range(test.shape[0]):
            y_test[s, j] = labels[s, test[j]]
    return int(bad.sum())
