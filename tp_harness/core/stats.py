"""Correlations across models with bootstrap confidence intervals (pure numpy)."""

from __future__ import annotations

import math

import numpy as np


def _rank(x: np.ndarray) -> np.ndarray:
    """Average ranks (ties share their mean rank), as scipy.stats.rankdata."""
    order = np.argsort(x, kind="mergesort")
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.arange(1, len(x) + 1)
    uniq, inv = np.unique(x, return_inverse=True)
    if len(uniq) < len(x):
        sums = np.bincount(inv, weights=ranks)
        counts = np.bincount(inv)
        ranks = (sums / counts)[inv]
    return ranks


def pearson(x: np.ndarray, y: np.ndarray) -> float:
    """Pearson r of two (m,) vectors; NaN when either is constant."""
    xc, yc = x - x.mean(), y - y.mean()
    den = math.sqrt(float(xc @ xc) * float(yc @ yc))
    return float(xc @ yc) / den if den > 0 else float("nan")


def spearman(x: np.ndarray, y: np.ndarray) -> float:
    """Spearman rho: Pearson r of average ranks."""
    return pearson(_rank(x), _rank(y))


#: Bootstrap rows per chunk are capped so that a chunk's (rows, m, m) comparisons stay
#: below this many elements.
_CHUNK_ELEMENTS = 4_000_000


def _chunks(num_rows: int, m: int) -> list[slice]:
    step = max(1, _CHUNK_ELEMENTS // max(1, m * m))
    return [slice(a, min(a + step, num_rows)) for a in range(0, num_rows, step)]


def pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson r of each row pair of (B, m) arrays -> (B,); NaN where a row is constant."""
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    den = np.sqrt((xc * xc).sum(axis=1) * (yc * yc).sum(axis=1))
    num = (xc * yc).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


def rank_rows(a: np.ndarray) -> np.ndarray:
    """Average ranks (ties share their mean rank) of each row of (B, m) -> (B, m) float64,
    as :func:`_rank` row by row."""
    out = np.empty(a.shape, dtype=np.float64)
    for sl in _chunks(a.shape[0], a.shape[1]):
        block = a[sl]
        less = (block[:, None, :] < block[:, :, None]).sum(axis=2)
        equal = (block[:, None, :] == block[:, :, None]).sum(axis=2)
        out[sl] = less + (equal + 1) / 2.0
    return out


def kendall_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Kendall tau-b of each row pair of (B, m) arrays -> (B,), as :func:`kendall_tau`."""
    out = np.empty(x.shape[0], dtype=np.float64)
    iu = np.triu_indices(x.shape[1], k=1)
    for sl in _chunks(x.shape[0], x.shape[1]):
        sx = np.sign(x[sl][:, :, None] - x[sl][:, None, :])[:, iu[0], iu[1]]
        sy = np.sign(y[sl][:, :, None] - y[sl][:, None, :])[:, iu[0], iu[1]]
        den = np.sqrt((sx != 0).sum(axis=1).astype(np.float64) * (sy != 0).sum(axis=1))
        num = (sx * sy).sum(axis=1)
        with np.errstate(invalid="ignore", divide="ignore"):
            out[sl] = np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)
    return out


def _percentile_ci(vals: np.ndarray, level: float) -> list[float]:
    vals = vals[np.isfinite(vals)]
    if not len(vals):
        return [float("nan")] * 2
    alpha = (1 - level) / 2
    return [float(np.quantile(vals, alpha)), float(np.quantile(vals, 1 - alpha))]


def correlation_with_ci(
    x: np.ndarray, y: np.ndarray, *, num_bootstrap: int = 1000, seed: int = 0, level: float = 0.95
) -> dict[str, float | int | list[float]]:
    """Pearson and Spearman of (m,) vectors with percentile bootstrap CIs over items.

    Returns ``{"n", "pearson", "pearson_ci", "spearman", "spearman_ci"}``; CIs are
    ``[lo, hi]`` from resampling the m items with replacement (NaN resamples dropped).
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D of the same length; got {x.shape} and {y.shape}.")
    out: dict[str, float | int | list[float]] = {
        "n": len(x),
        "pearson": float("nan"),
        "spearman": float("nan"),
        "pearson_ci": [float("nan")] * 2,
        "spearman_ci": [float("nan")] * 2,
    }
    if len(x) < 3:
        return out
    out["pearson"], out["spearman"] = pearson(x, y), spearman(x, y)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(x), size=(num_bootstrap, len(x)))
    xs, ys = x[idx], y[idx]  # (B, m) resamples, all at once
    out["pearson_ci"] = _percentile_ci(pearson_rows(xs, ys), level)
    out["spearman_ci"] = _percentile_ci(pearson_rows(rank_rows(xs), rank_rows(ys)), level)
    return out


def kendall_tau(x: np.ndarray, y: np.ndarray) -> float:
    """Kendall tau-b of two (m,) vectors (ties handled as scipy's ``kendalltau``); NaN for
    fewer than 2 items or a constant vector."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 2:
        return float("nan")
    dx = np.sign(x[:, None] - x[None, :])
    dy = np.sign(y[:, None] - y[None, :])
    iu = np.triu_indices(len(x), k=1)
    sx, sy = dx[iu], dy[iu]
    den = math.sqrt(float((sx != 0).sum()) * float((sy != 0).sum()))
    return float((sx * sy).sum()) / den if den > 0 else float("nan")


def kendall_tau_with_ci(
    x: np.ndarray, y: np.ndarray, *, num_bootstrap: int = 1000, seed: int = 0, level: float = 0.95
) -> dict[str, float | int | list[float]]:
    """Kendall tau of (m,) vectors with a percentile bootstrap CI over items:
    ``{"n", "kendall_tau", "kendall_tau_ci"}`` (NaN resamples dropped)."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"x and y must be 1-D of the same length; got {x.shape} and {y.shape}.")
    tau = kendall_tau(x, y)
    ci = [float("nan")] * 2
    if len(x) >= 3:
        idx = np.random.default_rng(seed).integers(0, len(x), size=(num_bootstrap, len(x)))
        ci = _percentile_ci(kendall_rows(x[idx], y[idx]), level)
    return {"n": len(x), "kendall_tau": tau, "kendall_tau_ci": ci}


def bootstrap_mean_ci(
    values: np.ndarray, *, num_bootstrap: int = 1000, seed: int = 0, level: float = 0.95
) -> list[float]:
    """Percentile bootstrap CI ``[lo, hi]`` of the mean of (m,) ``values`` (vectorised);
    NaN for fewer than 2 values."""
    v = np.asarray(values, dtype=np.float64)
    if v.ndim != 1 or len(v) < 2:
        return [float("nan")] * 2
    idx = np.random.default_rng(seed).integers(0, len(v), size=(num_bootstrap, len(v)))
    means = v[idx].mean(axis=1)
    alpha = (1 - level) / 2
    return [float(np.quantile(means, alpha)), float(np.quantile(means, 1 - alpha))]
