"""Correlations against scipy, and bootstrap intervals that bracket the estimate."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats as sps

from tp_harness.core.stats import correlation_with_ci, pearson, spearman


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_against_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=25)
    y = 0.6 * x + rng.normal(size=25)
    y[3] = y[4]  # a tie for the rank code
    assert pearson(x, y) == pytest.approx(sps.pearsonr(x, y)[0], abs=1e-12)
    assert spearman(x, y) == pytest.approx(sps.spearmanr(x, y)[0], abs=1e-12)


def test_bootstrap_interval() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=40)
    y = x + 0.5 * rng.normal(size=40)
    c = correlation_with_ci(x, y, num_bootstrap=400, seed=1)
    assert c["n"] == 40
    for k in ("pearson", "spearman"):
        lo, hi = c[f"{k}_ci"]  # type: ignore[misc]
        assert lo < c[k] < hi and hi - lo < 0.5
    assert correlation_with_ci(x, y, num_bootstrap=400, seed=1) == c
    small = correlation_with_ci(x[:2], y[:2])
    assert np.isnan(small["pearson"])  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="same length"):
        correlation_with_ci(x, y[:5])


def test_vectorised_bootstrap_equals_the_loop() -> None:
    """Issue 20: the bootstrap resamples are scored all at once; the intervals equal the
    per-resample loop (the same resamples, scipy-style ties) to rounding."""
    from tp_harness.core.stats import (
        _percentile_ci,
        kendall_tau,
        kendall_tau_with_ci,
    )

    rng = np.random.default_rng(4)
    for m in (5, 29, 80):
        x = rng.normal(size=m)
        y = 0.6 * x + rng.normal(size=m)
        x[: m // 4] = np.round(x[: m // 4])  # ties
        c = correlation_with_ci(x, y, num_bootstrap=300, seed=2)
        idx = np.random.default_rng(2).integers(0, m, size=(300, m))
        for name, fn in (("pearson", pearson), ("spearman", spearman)):
            loop = _percentile_ci(np.array([fn(x[i], y[i]) for i in idx]), 0.95)
            np.testing.assert_allclose(c[f"{name}_ci"], loop, rtol=1e-12, atol=1e-14)
        k = kendall_tau_with_ci(x, y, num_bootstrap=300, seed=2)
        loop = _percentile_ci(np.array([kendall_tau(x[i], y[i]) for i in idx]), 0.95)
        np.testing.assert_allclose(k["kendall_tau_ci"], loop, rtol=1e-12, atol=1e-14)
    const = correlation_with_ci(np.ones(6), np.arange(6.0), num_bootstrap=50)
    assert np.isnan(const["pearson"]) and all(np.isnan(const["pearson_ci"]))
