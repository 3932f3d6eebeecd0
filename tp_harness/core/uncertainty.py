"""Uncertainty of the closed form from its own tile pass: the delete-one-block jackknife.

The examples are split into ``B`` blocks by a seeded permutation, and the tile pass keeps
its sums per block pair (``S[a, b]`` over ``i`` in block ``a``, ``j`` in block ``b``: no
extra matrix products). Deleting block ``a`` removes its row and column::

    θ_(a) = (S·· − S_a· − S_·a + S_aa) / (n − n_a)²          (a per-pair statistic)

and the jackknife standard error is ``sqrt((B−1)/B · Σ_a (θ_(a) − θ̄)²)``. Intervals are
``θ ± t_{B−1} · se`` (Student t with ``B − 1`` degrees of freedom). Two models scored in
the same pass share the blocks, so the jackknife of their *difference* gives a paired
interval. ``tests/core/test_uncertainty.py`` checks the coverage on subsamples of a fixed
pool (docs/uncertainty.md).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from .checks import check_positive_int

DEFAULT_BLOCKS = 20
CONFIDENCE = 0.95


def normal_quantile(p: float) -> float:
    """``Φ⁻¹(p)`` for ``0 < p < 1`` (via ``erfinv``, float64)."""
    return math.sqrt(2.0) * float(torch.erfinv(torch.tensor(2.0 * p - 1.0, dtype=torch.float64)))


def t_quantile(p: float, df: int) -> float:
    """Student-t quantile ``t_df⁻¹(p)`` by the Cornish-Fisher expansion in ``1/df``
    (error below 1e-3 for ``df >= 5`` at ``p = 0.975``)."""
    z = normal_quantile(p)
    v = float(df)
    g1 = (z**3 + z) / 4
    g2 = (5 * z**5 + 16 * z**3 + 3 * z) / 96
    g3 = (3 * z**7 + 19 * z**5 + 17 * z**3 - 15 * z) / 384
    g4 = (79 * z**9 + 776 * z**7 + 1482 * z**5 - 1920 * z**3 - 945 * z) / 92160
    return z + g1 / v + g2 / v**2 + g3 / v**3 + g4 / v**4


def choose_blocks(n: int, num_blocks: int | None) -> int:
    """Blocks used for ``n`` examples: ``num_blocks`` capped at ``n // 2``; 0 = no intervals."""
    if num_blocks is None or num_blocks == 0:
        return 0
    b = check_positive_int(num_blocks, "num_blocks", minimum=2)
    b = min(b, n // 2)
    return b if b >= 2 else 0


def leave_one_block_out(sums: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Per-pair statistics with each block deleted: (..., B, B) sums -> (..., B).

    ``counts`` (B,) are the rows per block.
    """
    total = sums.sum(dim=(-1, -2))
    rows, cols = sums.sum(dim=-1), sums.sum(dim=-2)
    diag = torch.diagonal(sums, dim1=-2, dim2=-1)
    n = float(counts.sum())
    return (total[..., None] - rows - cols + diag) / (n - counts) ** 2


def jackknife_interval(
    estimate: float, replicates: Sequence[float] | torch.Tensor, level: float = CONFIDENCE
) -> tuple[float, float]:
    """``estimate ± t_{B-1} · se`` from the ``B`` leave-one-block-out ``replicates``."""
    r = torch.as_tensor(replicates, dtype=torch.float64)
    b = r.numel()
    if b < 2 or not math.isfinite(estimate) or not bool(torch.isfinite(r).all()):
        return (math.nan, math.nan)
    se = math.sqrt((b - 1) / b * float(((r - r.mean()) ** 2).sum()))
    half = t_quantile(0.5 + level / 2, b - 1) * se
    return (estimate - half, estimate + half)


def paired_difference(
    a: float,
    b: float,
    replicates_a: Sequence[float] | torch.Tensor,
    replicates_b: Sequence[float] | torch.Tensor,
    level: float = CONFIDENCE,
) -> tuple[float, float, float]:
    """``(a - b, lo, hi)``: the jackknife interval of a difference of two statistics from
    the same blocks (the same pass), so what the two share cancels."""
    ra = torch.as_tensor(replicates_a, dtype=torch.float64)
    rb = torch.as_tensor(replicates_b, dtype=torch.float64)
    lo, hi = jackknife_interval(a - b, ra - rb, level)
    return a - b, lo, hi


__all__ = [
    "CONFIDENCE",
    "DEFAULT_BLOCKS",
    "choose_blocks",
    "jackknife_interval",
    "leave_one_block_out",
    "normal_quantile",
    "paired_difference",
    "t_quantile",
]
