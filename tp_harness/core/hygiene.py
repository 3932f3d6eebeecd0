"""Ranking hygiene: which kernels are copies of each other (pure functions of kernels).

Two kernels are *the same* when their alignment ``<A, B>_F / (||A||_F ||B||_F)`` is at
least ``1 - tol`` (default ``tol = 1e-6``): they are proportional, so every score of one
is a rescaled score of the other. A model whose kernel is the prior's own scores the prior
against itself; a model that duplicates another adds a second copy of one point to every
correlation. Both must not be ranked (``docs/conventions.md``).

All-pairs alignment costs ``O(m² n d²)``; :func:`duplicate_of` first compares cheap
sketches ``K R / ||K||_F`` (``R`` a fixed random ``(n, 8)`` matrix, ``O(m n d)``), then
confirms the candidate pairs exactly. The sketch test never drops a true pair: for unit
kernels with alignment ``1 - tol``, ``||A - B||_F = sqrt(2 tol)``, so their sketches differ
by at most ``sqrt(2 tol) ||R||_F``.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from .baselines import kernel_alignment
from .kernels import Kernel

SAME_KERNEL_TOL = 1e-6
_SKETCH = 8


def same_kernel(a: Kernel, b: Kernel, tol: float = SAME_KERNEL_TOL) -> bool:
    """Whether ``a`` and ``b`` are proportional kernels (alignment >= ``1 - tol``).

    Degenerate or all-zero kernels are never "the same" as anything (they are flagged
    as degenerate instead). Dense kernels are compared through their entries.
    """
    if a.n != b.n or a.degenerate or b.degenerate:
        return False
    if a.is_factor and b.is_factor:
        value = kernel_alignment(a, b)
    else:
        da, db = a.to_dense().double(), b.to_dense().double()
        denom = float(torch.linalg.matrix_norm(da) * torch.linalg.matrix_norm(db))
        value = float((da * db).sum()) / denom if denom > 0 else float("nan")
    return value >= 1.0 - tol


def _sketch(k: Kernel, r: torch.Tensor) -> torch.Tensor | None:
    """``K R / ||K||_F`` (n, 8) in float64, or None for a zero or degenerate kernel."""
    norm = k.frobenius_norm()
    if k.degenerate or norm == 0.0:
        return None
    if k.factor is not None:
        z = k.factor.double().cpu()
        return z @ (z.T @ r) / norm
    assert k.dense is not None
    return k.dense.double().cpu() @ r / norm


def duplicate_of(kernels: Mapping[str, Kernel], tol: float = SAME_KERNEL_TOL) -> dict[str, str]:
    """``{name: first}`` for every kernel that equals an earlier one (mapping order).

    The first of each group of equal kernels is the original and is not in the result.
    """
    if not kernels:
        return {}
    n = next(iter(kernels.values())).n
    gen = torch.Generator().manual_seed(0)
    r = torch.randn(n, _SKETCH, generator=gen, dtype=torch.float64)
    sketches = {name: _sketch(k, r) for name, k in kernels.items()}
    bound = (2.0 * tol) ** 0.5 * float(torch.linalg.matrix_norm(r)) * 1.01 + 1e-9
    originals: list[str] = []
    out: dict[str, str] = {}
    for name, sk in sketches.items():
        if sk is None:
            continue
        match = next(
            (
                o
                for o in originals
                if float(torch.linalg.matrix_norm(sk - sketches[o])) <= bound  # type: ignore[operator]
                and same_kernel(kernels[name], kernels[o], tol)
            ),
            None,
        )
        if match is None:
            originals.append(name)
        else:
            out[name] = match
    return out


__all__ = ["SAME_KERNEL_TOL", "duplicate_of", "same_kernel"]
