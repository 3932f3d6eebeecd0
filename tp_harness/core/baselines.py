"""Intrinsic metrics users compare task-prior scores against.

All are computed in float64 and none builds an ``n x n`` matrix: RankMe and
alpha-ReQ take the singular values of the ``(n, d)`` features, CKA and kernel-target
alignment use ``d x d`` and ``d x q`` products of factors.

* :func:`rankme` — Garrido et al. 2023, effective rank of the features.
* :func:`alpha_req` — Agrawal et al. 2022, power-law decay of the eigenspectrum.
* :func:`linear_cka` — Kornblith et al. 2019, similarity of two representations.
* :func:`kernel_target_alignment` — Cristianini et al. 2001, kernel vs label agreement.
* :func:`kernel_alignment` — the alignment of two kernels in factor form (CKA when both
  are centered); what the harness uses to find a model whose kernel equals the prior's.

Degenerate input (numerically identical rows, :func:`tp_harness.core.kernels.rows_identical`)
gives NaN, never a score.
"""

from __future__ import annotations

import math

import torch

from .checks import ArrayLike, as_tensor, check_same_n
from .kernels import Kernel, build_kernel, label_graph, rows_identical

_NAN = float("nan")


def _features(x: ArrayLike, name: str) -> tuple[torch.Tensor, bool]:
    """Float64 features and whether their rows are numerically identical (input precision)."""
    t = as_tensor(x, name)
    return t.double(), rows_identical(t)


def rankme(features: ArrayLike, eps: float = 1e-7) -> float:
    """RankMe (Garrido et al. 2023) of features (n, d).

    ``exp(-Σ_k p_k log p_k)`` with ``p_k = σ_k / Σ_j σ_j + eps`` over the
    ``min(n, d)`` singular values ``σ`` of the features *as given* (no centering),
    exactly the paper's definition. Between ~1 and ``min(n, d)``; for a matrix of
    rank ``r`` it is at most ``r`` plus ``O(eps)`` terms. NaN for degenerate features.
    """
    x, degenerate = _features(features, "features")
    eps = float(eps)
    if not math.isfinite(eps) or eps < 0:
        raise ValueError(f"eps must be a finite number >= 0; got {eps!r}.")
    if degenerate:
        return _NAN
    sv = torch.linalg.svdvals(x)
    total = float(sv.sum())
    p = sv / total + eps
    return float(torch.exp(-(p * p.log()).sum()))


def alpha_req(features: ArrayLike, *, k_min: int = 1, k_max: int | None = None) -> float:
    """alpha-ReQ (Agrawal et al. 2022): decay exponent of the eigenspectrum. -> float.

    Eigenvalues ``λ_1 >= λ_2 >= ...`` of the covariance of the column-centered
    features (``XcᵀXc / n``, from the squared singular values of ``Xc``); ``α`` is the
    negated slope of the least-squares line of ``log λ_k`` against ``log k`` for
    ``k = k_min..k_max`` (default: all eigenvalues above ``max(n, d)·eps·λ_1``).
    ``λ_k ∝ k^(-α)`` gives ``α``; larger means faster decay. NaN for degenerate features.
    """
    x, degenerate = _features(features, "features")
    if degenerate:
        return _NAN
    xc = x - x.mean(dim=0)
    lam = torch.linalg.svdvals(xc).pow(2) / x.shape[0]
    tol = float(lam[0]) * max(x.shape) * torch.finfo(torch.float64).eps
    last = int((lam > tol).sum())
    hi = last if k_max is None else min(int(k_max), last)
    if k_min < 1 or hi - k_min + 1 < 2:
        raise ValueError(
            f"alpha-ReQ needs at least 2 eigenvalues in k = {k_min}..{hi} "
            f"({last} are nonzero); check k_min/k_max."
        )
    k = torch.arange(k_min, hi + 1, dtype=torch.float64)
    log_k, log_lam = k.log(), lam[k_min - 1 : hi].log()
    lk = log_k - log_k.mean()
    slope = float((lk * (log_lam - log_lam.mean())).sum() / (lk * lk).sum())
    return -slope


def linear_cka(x: ArrayLike, y: ArrayLike) -> float:
    """Linear CKA (Kornblith et al. 2019) between x (n, d1) and y (n, d2). -> float in [0, 1].

    Columns are centered; ``CKA = ||YcᵀXc||_F² / (||XcᵀXc||_F ||YcᵀYc||_F)``, the
    HSIC form with linear kernels (``1/(n-1)²`` factors cancel), from ``d x d`` Grams.
    Invariant to orthogonal transforms and isotropic scaling of either argument. NaN when
    either argument is degenerate.
    """
    (xt, x_deg), (yt, y_deg) = _features(x, "x"), _features(y, "y")
    check_same_n(xt.shape[0], yt, "y", "x")
    if x_deg or y_deg:
        return _NAN
    return kernel_alignment(xt - xt.mean(dim=0), yt - yt.mean(dim=0))


def kernel_alignment(a: Kernel | torch.Tensor, b: Kernel | torch.Tensor) -> float:
    """``<A, B>_F / (||A||_F ||B||_F)`` of ``A = Z_a Z_aᵀ``, ``B = Z_b Z_bᵀ`` from factors
    (n, r_a), (n, r_b) or :class:`Kernel` objects, in float64 with ``r x r`` products only.

    1 when the kernels are proportional; linear CKA when both factors are centered. NaN
    when either kernel is all zeros or degenerate.
    """
    za, zb = (_factor(k) for k in (a, b))
    if za is None or zb is None:
        return _NAN
    norm_a, norm_b = torch.linalg.matrix_norm(za.T @ za), torch.linalg.matrix_norm(zb.T @ zb)
    if float(norm_a) == 0.0 or float(norm_b) == 0.0:
        return _NAN
    return float(torch.linalg.matrix_norm(zb.T @ za).pow(2) / (norm_a * norm_b))


def _factor(k: Kernel | torch.Tensor) -> torch.Tensor | None:
    if isinstance(k, Kernel):
        if k.degenerate or k.factor is None:
            return None
        return k.factor.double()
    return k.double()


def kernel_target_alignment(
    features: ArrayLike,
    labels: ArrayLike,
    kernel: str = "centered_cosine",
    *,
    center_target: bool = False,
) -> float:
    """Kernel-target alignment (Cristianini et al. 2001) of features (n, d) with labels (n,).

    ``A = <K, T>_F / (||K||_F ||T||_F)`` with ``T = Y Yᵀ`` (``Y`` the one-hot labels,
    so ``T_ij = [y_i = y_j]``) and ``K`` the engine kernel named by ``kernel``
    (default ``"centered_cosine"``: rows normalised then centered, ``K = HCH``; any
    factor kernel of :mod:`tp_harness.kernels` or ``"precomputed"`` (n, n) features).
    ``T`` is not centered (Cristianini's definition); ``center_target=True`` uses
    ``HTH``, which with a centered ``K`` is the centered alignment of Cortes et al. 2012.
    In factor form ``K = ZZᵀ``: ``<K, T> = ||ZᵀY||²``, ``||K|| = ||ZᵀZ||``. NaN for
    degenerate features (a constant representation would otherwise score about 1/√q).
    """
    if kernel == "label_graph":
        raise ValueError("kernel='label_graph' is the target itself; pick a feature kernel.")
    k = build_kernel(features, kernel, name="features")
    if k.degenerate:
        check_same_n(k.n, as_tensor(labels, "labels", ndim=1), "labels", "features")
        return _NAN
    y = label_graph(labels, device=k.factor.device if k.factor is not None else None)
    check_same_n(k.n, y, "labels", "features")
    if center_target:
        y = y - y.mean(dim=0)
    norm_t = torch.linalg.matrix_norm(y.T @ y)
    if float(norm_t) == 0.0:
        raise ValueError("labels has a single class, so the centered target is zero.")
    if k.factor is not None:
        z = k.factor.double()
        inner, norm_k = torch.linalg.matrix_norm(z.T @ y).pow(2), torch.linalg.matrix_norm(z.T @ z)
    else:
        assert k.dense is not None
        dense = k.dense.double()
        inner, norm_k = torch.trace(y.T @ dense @ y), torch.linalg.matrix_norm(dense)
    if float(norm_k) == 0.0:
        return _NAN
    return float(inner / (norm_k * norm_t))
