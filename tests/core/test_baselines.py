"""Baselines against float64 numpy references written here (dense where needed)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import ortho_group

from tests.references import asymmetric_features
from tp_harness.core.baselines import alpha_req, kernel_target_alignment, linear_cka, rankme


def _data(seed: int, n: int = 61, d: int = 9) -> np.ndarray:
    return asymmetric_features(seed, n, d)


def _labels(seed: int, n: int = 61, q: int = 4) -> np.ndarray:
    return np.random.default_rng(seed + 100).integers(0, q, n)


# ----------------------------------------------------------------------------- references


def ref_rankme(x: np.ndarray, eps: float = 1e-7) -> float:
    s = np.linalg.svd(x, compute_uv=False)
    p = s / s.sum() + eps
    return float(np.exp(-(p * np.log(p)).sum()))


def ref_alpha_req(x: np.ndarray) -> float:
    xc = x - x.mean(axis=0)
    lam = np.sort(np.linalg.eigvalsh(xc.T @ xc / len(x)))[::-1]
    lam = lam[lam > lam[0] * 1e-10]
    k = np.arange(1, len(lam) + 1)
    return float(-np.polyfit(np.log(k), np.log(lam), 1)[0])


def ref_cka(x: np.ndarray, y: np.ndarray) -> float:
    n = len(x)
    h = np.eye(n) - 1.0 / n
    k, l_ = h @ x @ x.T @ h, h @ y @ y.T @ h
    return float(np.trace(k @ l_) / np.sqrt(np.trace(k @ k) * np.trace(l_ @ l_)))


def ref_kta(x: np.ndarray, y: np.ndarray, center_target: bool = False) -> float:
    n = len(x)
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    h = np.eye(n) - 1.0 / n
    k = h @ xn @ xn.T @ h
    t = (y[:, None] == y[None, :]).astype(float)
    if center_target:
        t = h @ t @ h
    return float((k * t).sum() / (np.linalg.norm(k) * np.linalg.norm(t)))


# ----------------------------------------------------------------------------- rankme


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_rankme_matches_reference(seed: int) -> None:
    x = _data(seed)
    assert rankme(x) == pytest.approx(ref_rankme(x), rel=1e-12)
    assert rankme(torch.from_numpy(x).float()) == pytest.approx(ref_rankme(x), rel=1e-5)


@pytest.mark.parametrize("r", [1, 3, 6])
def test_rankme_of_rank_r_matrix_is_at_most_r(r: int) -> None:
    rng = np.random.default_rng(r)
    x = rng.normal(size=(50, r)) @ rng.normal(size=(r, 12))
    value = rankme(x)
    assert 1.0 <= value <= r + 1e-3
    # equal singular values: exactly r (up to eps terms)
    q1, _ = np.linalg.qr(rng.normal(size=(50, r)))
    assert rankme(q1) == pytest.approx(r, abs=1e-3)


def test_rankme_rejects_bad_input() -> None:
    assert math.isnan(rankme(np.zeros((5, 3))))  # degenerate: NaN, never a score
    with pytest.raises(ValueError, match="eps"):
        rankme(_data(0), eps=-1.0)
    with pytest.raises(ValueError, match="NaN"):
        rankme(np.full((4, 3), np.nan))


# ----------------------------------------------------------------------------- alpha-ReQ


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_alpha_req_matches_reference(seed: int) -> None:
    x = _data(seed, n=80, d=15)
    assert alpha_req(x) == pytest.approx(ref_alpha_req(x), rel=1e-9)


@pytest.mark.parametrize("alpha", [0.5, 1.0, 2.0])
def test_alpha_req_recovers_power_law(alpha: float) -> None:
    n, d = 400, 30
    u = ortho_group.rvs(n, random_state=3)[:, :d]
    u = u - u.mean(axis=0)  # keep columns centered so the spectrum is exact
    u, _ = np.linalg.qr(u)
    v = ortho_group.rvs(d, random_state=4)
    sigma = np.arange(1, d + 1) ** (-alpha / 2)
    x = (u * sigma) @ v.T
    assert alpha_req(x) == pytest.approx(alpha, rel=1e-6)
    assert alpha_req(x, k_min=2, k_max=10) == pytest.approx(alpha, rel=1e-6)


def test_alpha_req_needs_two_eigenvalues() -> None:
    with pytest.raises(ValueError, match="at least 2"):
        alpha_req(np.outer(np.arange(6.0), np.ones(3)))
    assert math.isnan(alpha_req(np.ones((5, 3))))


# ----------------------------------------------------------------------------- CKA


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_linear_cka_matches_dense_reference(seed: int) -> None:
    x = _data(seed)
    y = np.tanh(x[:, :5] @ np.random.default_rng(seed).normal(size=(5, 4))) + _data(seed + 7)[:, :4]
    assert linear_cka(x, y) == pytest.approx(ref_cka(x, y), rel=1e-10)
    assert linear_cka(y, x) == pytest.approx(linear_cka(x, y), rel=1e-12)
    assert linear_cka(x, x) == pytest.approx(1.0, rel=1e-12)


def test_linear_cka_invariances() -> None:
    x, y = _data(0), _data(1)[:, :6]
    q = ortho_group.rvs(x.shape[1], random_state=0)
    base = linear_cka(x, y)
    assert linear_cka(x @ q, y) == pytest.approx(base, rel=1e-10)
    assert linear_cka(3.7 * x, 0.2 * y) == pytest.approx(base, rel=1e-10)
    assert linear_cka(x + 5.0, y - 2.0) == pytest.approx(base, rel=1e-10)
    # not invariant to anisotropic scaling
    assert linear_cka(x * np.linspace(0.1, 10, x.shape[1]), y) != pytest.approx(base, rel=1e-3)


def test_linear_cka_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="rows"):
        linear_cka(_data(0), _data(1)[:-1])
    assert math.isnan(linear_cka(np.ones((8, 2)), _data(1)[:8]))


# ----------------------------------------------------------------------------- KTA


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("center_target", [False, True])
def test_kta_matches_dense_reference(seed: int, center_target: bool) -> None:
    x, y = _data(seed), _labels(seed)
    got = kernel_target_alignment(x, y, center_target=center_target)
    assert got == pytest.approx(ref_kta(x, y, center_target), rel=1e-10)


def test_kta_other_kernels_and_precomputed() -> None:
    x, y = _data(3), _labels(3)
    t = (y[:, None] == y[None, :]).astype(float)
    k = x @ x.T
    want = (k * t).sum() / (np.linalg.norm(k) * np.linalg.norm(t))
    assert kernel_target_alignment(x, y, "linear") == pytest.approx(want, rel=1e-10)
    assert kernel_target_alignment(k, y, "precomputed") == pytest.approx(want, rel=1e-10)


def test_kta_perfect_and_bad_input() -> None:
    y = np.repeat(np.arange(3), 5)
    onehot = np.eye(3)[y]
    assert kernel_target_alignment(onehot, y, "linear") == pytest.approx(1.0)
    with pytest.raises(ValueError, match="rows"):
        kernel_target_alignment(_data(0), _labels(0)[:-1])
    with pytest.raises(ValueError, match="single class"):
        kernel_target_alignment(_data(0), np.zeros(61, dtype=int), center_target=True)
    with pytest.raises(ValueError, match="label_graph"):
        kernel_target_alignment(_data(0), _labels(0), "label_graph")
