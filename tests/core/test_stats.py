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
