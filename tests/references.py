"""Independent dense float64 references shared by the tests (numpy/scipy only).

Nothing here imports tp_harness: these are the formulas written out the slow,
obvious way, against which the streaming engine, the metric and the pipeline are
checked.
"""

from __future__ import annotations

import numpy as np
from scipy.special import expit


def asymmetric_features(
    seed: int, n: int, d: int, *, spread: tuple[float, float] = (0.2, 4.0), offset: float = 2.0
) -> np.ndarray:
    """Float64 (n, d) features with a different scale and mean per column."""
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) * rng.uniform(*spread, d) + rng.normal(size=d) * offset


def centering(n: int) -> np.ndarray:
    """The n x n centering matrix ``H = I - 11ᵀ/n``."""
    return np.eye(n) - np.ones((n, n)) / n


def dense_kernel(x: np.ndarray, kernel: str) -> np.ndarray:
    """The n x n kernel matrix of ``x`` in float64 (``linear``, ``cosine``,
    ``centered_cosine`` = H C H, ``projection`` = projector onto the centered span)."""
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[0]
    if kernel == "linear":
        return x @ x.T
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    xn = np.divide(x, norms, out=np.zeros_like(x), where=norms > 0)
    c = xn @ xn.T
    if kernel == "cosine":
        return c
    h = centering(n)
    if kernel == "centered_cosine":
        return h @ c @ h
    if kernel == "projection":
        xc = h @ x
        return xc @ np.linalg.pinv(xc)  # orthogonal projector onto the column span
    raise AssertionError(kernel)


def dense_moments(m: np.ndarray, k: np.ndarray, t: float) -> tuple[float, float]:
    """Theorem 3.6 in float64: Σ M s(K/T) and Σ M² s(K/T)(1 - s(K/T)), all ordered pairs."""
    s, s_neg = expit(k / t), expit(-k / t)
    return float((m * s).sum()), float((m**2 * s * s_neg).sum())
