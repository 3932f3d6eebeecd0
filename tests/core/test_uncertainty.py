"""Intervals of the closed form from its own tile pass (delete-one-block jackknife).

Calibration: over 200 n-row subsamples of a fixed pool, the 95% intervals cover the
known per-pair value of an n-row sample 90-99% of the time (docs/uncertainty.md).
"""

from __future__ import annotations

import math
from itertools import pairwise

import numpy as np
import pytest
import torch
from scipy.special import expit
from scipy.stats import t as student_t

from tests.references import asymmetric_features
from tp_harness import task_prior_moments
from tp_harness.core.kernels import build_kernel
from tp_harness.core.moments import moment_sums, tile_plan
from tp_harness.core.uncertainty import (
    jackknife_interval,
    leave_one_block_out,
    paired_difference,
    t_quantile,
)


def test_t_quantile_matches_scipy() -> None:
    for df in (5, 9, 19, 49, 200):
        assert t_quantile(0.975, df) == pytest.approx(student_t.ppf(0.975, df), abs=2e-3)


def test_block_sums_add_up_and_match_a_dense_reference() -> None:
    x, p = asymmetric_features(0, 37, 5), asymmetric_features(1, 37, 3)
    mk, pk = build_kernel(x), build_kernel(p)
    m, k = mk.to_dense().numpy(), pk.to_dense().numpy()
    f = m * expit(k / 0.3)
    # blocks smaller than, equal to and larger than the tiles (they need not align)
    for symmetric, tile, edge in ((True, 8, 8), (False, 8, 8), (True, 16, 5), (True, 4, 11)):
        nb = -(-37 // edge)
        tiles = tile_plan(37, tile, symmetric)
        blocks = moment_sums([mk], pk, [0.3], tiles, num_blocks=nb, block_edge=edge)
        total = moment_sums([mk], pk, [0.3], tiles)
        assert blocks.shape == (1, 1, 2, nb, nb)
        torch.testing.assert_close(blocks.sum(dim=(-1, -2)), total, rtol=1e-12, atol=1e-12)
        for a in range(nb):
            for b in range(nb):
                want = f[a * edge : (a + 1) * edge, b * edge : (b + 1) * edge].sum()
                assert float(blocks[0, 0, 0, a, b]) == pytest.approx(want, rel=1e-10, abs=1e-12)


def test_leave_one_block_out_equals_recomputing_without_the_block() -> None:
    rng = np.random.default_rng(0)
    f = rng.normal(size=(23, 23))
    edges = [0, 5, 10, 15, 20, 23]
    sums = torch.tensor(
        [[f[a0:a1, b0:b1].sum() for b0, b1 in pairwise(edges)] for a0, a1 in pairwise(edges)]
    )
    counts = torch.tensor([5.0, 5, 5, 5, 3], dtype=torch.float64)
    reps = leave_one_block_out(sums, counts)
    for a, (a0, a1) in enumerate(pairwise(edges)):
        keep = np.r_[0:a0, a1:23]
        assert float(reps[a]) == pytest.approx(f[np.ix_(keep, keep)].mean(), rel=1e-12)


def test_intervals_are_reported_and_the_point_estimate_is_unchanged() -> None:
    x, p = asymmetric_features(2, 300, 8), asymmetric_features(3, 300, 4)
    with_ci = task_prior_moments(x, p, [0.1, 1.0])
    plain = task_prior_moments(x, p, [0.1, 1.0], num_blocks=None)
    for t in (0.1, 1.0):
        r, q = with_ci["model"][t], plain["model"][t]
        assert r.mean == pytest.approx(q.mean, rel=1e-12) and q.mean_per_pair_ci is None
        lo, hi = r.mean_per_pair_ci
        assert lo < r.mean_per_pair < hi and r.num_blocks == 20
        slo, shi = r.std_ci
        assert slo < r.std < shi
        assert len(r.replicates[0]) == 20
    # Monte Carlo: +- z * stderr
    mc = task_prior_moments(x, p, 0.1, method="monte_carlo", num_pairs=50_000, seed=0)
    half = 1.959964 * mc.mean_stderr / 300**2
    assert mc.mean_per_pair_ci == pytest.approx((mc.mean_per_pair - half, mc.mean_per_pair + half))
    with pytest.raises(ValueError, match="num_blocks"):
        task_prior_moments(x, p, 0.1, num_blocks=1)
    with pytest.raises(ValueError, match="confidence"):
        task_prior_moments(x, p, 0.1, confidence=1.5)


def test_blocks_do_not_depend_on_the_tile_size_and_are_seeded() -> None:
    x, p = asymmetric_features(4, 200, 6), asymmetric_features(5, 200, 3)
    a = task_prior_moments(x, p, 0.2, block_size=7)
    b = task_prior_moments(x, p, 0.2, block_size=1024)
    c = task_prior_moments(x, p, 0.2, seed=1)
    assert a.mean == pytest.approx(b.mean, rel=1e-12)
    assert a.num_blocks == b.num_blocks == 20
    assert a.mean_per_pair_ci == pytest.approx(b.mean_per_pair_ci, rel=1e-9)
    assert c.mean_per_pair_ci != b.mean_per_pair_ci and c.mean == pytest.approx(b.mean, rel=1e-12)


def _pool(seed: int = 0, size: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(5, 8)) * 2
    p = centers[rng.integers(0, 5, size)] + rng.normal(size=(size, 8))
    x = p[:, :6] @ rng.normal(size=(6, 10)) + rng.normal(size=(size, 10)) * 2
    return x, p


def _cosine(a: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    return a @ a.T


@pytest.mark.parametrize("n", [100, 200])
def test_calibration_on_subsamples_of_a_fixed_pool(n: int) -> None:
    """Cosine kernels (no sample-dependent centering), T = 0.3: the per-pair value of an
    n-row sample is E_diag/n + (1 - 1/n) E_offdiag over the pool, known exactly."""
    x, p = _pool()
    f = _cosine(x) * expit(_cosine(p) / 0.3)
    g = _cosine(x) ** 2 * expit(_cosine(p) / 0.3) * expit(-_cosine(p) / 0.3)
    size = len(x)

    def value(m: np.ndarray) -> float:
        return float(
            np.diag(m).mean() / n + (1 - 1 / n) * (m.sum() - np.trace(m)) / (size * (size - 1))
        )

    target, std_target = value(f), math.sqrt(value(g)) * n
    rng = np.random.default_rng(1)
    hits = std_hits = 0
    reps = 200
    for k in range(reps):
        idx = rng.choice(size, n, replace=False)
        r = task_prior_moments(
            x[idx], p[idx], 0.3, model_kernel="cosine", prior_kernel="cosine", seed=k
        )
        hits += r.mean_per_pair_ci[0] <= target <= r.mean_per_pair_ci[1]
        std_hits += r.std_ci[0] <= std_target <= r.std_ci[1]
    assert 0.90 <= hits / reps <= 0.99
    assert 0.90 <= std_hits / reps <= 0.99


def test_paired_difference_cancels_what_two_models_share() -> None:
    x, p = asymmetric_features(6, 300, 8), asymmetric_features(7, 300, 4)
    out = task_prior_moments({"a": x, "b": x + 0.05 * asymmetric_features(8, 300, 8)}, p, 0.1)
    a, b = out["a"][0.1], out["b"][0.1]
    d, lo, hi = paired_difference(
        a.mean_per_pair, b.mean_per_pair, a.replicates[0], b.replicates[0]
    )
    assert d == pytest.approx(a.mean_per_pair - b.mean_per_pair)
    paired_width = hi - lo
    unpaired = a.mean_per_pair_ci[1] - a.mean_per_pair_ci[0]
    assert paired_width < 0.5 * unpaired  # near-identical models: the paired interval is tight
    assert all(math.isnan(v) for v in jackknife_interval(1.0, [1.0]))  # one block: no interval
