"""Degenerate kernels: numerically identical examples never get a score (both sides tested).

Constant rows, and rows equal up to rounding of the input dtype, give NaN moments with
``degenerate=True`` and NaN baselines; genuinely low-variance data that is not
numerically constant is scored normally.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from tests.references import asymmetric_features, dense_kernel, dense_moments
from tp_harness import task_prior_moments
from tp_harness.core.baselines import alpha_req, kernel_target_alignment, linear_cka, rankme
from tp_harness.core.kernels import build_kernel, degenerate_rtol, rows_identical
from tp_harness.core.moments import DegenerateKernelWarning

SHAPES = [(8, 3), (61, 7), (240, 32)]


def _constant(n: int, d: int, dtype: str, seed: int = 0) -> np.ndarray:
    row = np.random.default_rng(seed).normal(size=d) * 3 + 1
    return np.tile(row, (n, 1)).astype(dtype)


def _rounding_copies(n: int, d: int, dtype: str, seed: int = 0) -> np.ndarray:
    """One row repeated with a relative perturbation of about one unit in the last place."""
    rng = np.random.default_rng(seed)
    row = rng.normal(size=d) * 3 + 1
    eps = float(np.finfo(dtype).eps)
    return (row * (1 + eps * rng.uniform(-1, 1, size=(n, d)))).astype(dtype)


def _low_variance(n: int, d: int, dtype: str, rel: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    row = rng.normal(size=d) * 3 + 1
    return (row + rel * np.abs(row).mean() * rng.normal(size=(n, d))).astype(dtype)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("n", "d"), SHAPES)
@pytest.mark.parametrize("make", [_constant, _rounding_copies])
def test_identical_rows_give_nan_moments_and_a_warning(make, dtype: str, n: int, d: int) -> None:
    x = make(n, d, dtype)
    prior = asymmetric_features(1, n, 5).astype(dtype)
    for normalize in (None, "frobenius"):
        with pytest.warns(DegenerateKernelWarning, match="model\\['const'\\] is degenerate"):
            out = task_prior_moments(
                {"const": x, "ok": prior}, prior, [1e-5, 0.1], normalize=normalize
            )
        for t in (1e-5, 0.1):
            r = out["const"][t]
            assert r.degenerate and math.isnan(r.mean) and math.isnan(r.mean_per_pair)
            assert math.isnan(r.std) and math.isnan(r.variance_per_pair)
            assert not out["ok"][t].degenerate and math.isfinite(out["ok"][t].mean)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("n", "d"), SHAPES)
def test_identical_rows_give_nan_baselines(dtype: str, n: int, d: int) -> None:
    x = _rounding_copies(n, d, dtype)
    labels = np.arange(n) % 3
    assert math.isnan(kernel_target_alignment(x, labels))
    assert math.isnan(linear_cka(x, asymmetric_features(2, n, 4)))
    assert math.isnan(rankme(x)) and math.isnan(alpha_req(x))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(("n", "d"), SHAPES)
@pytest.mark.parametrize("rel", [1e-3, 1e-2])
def test_low_variance_data_is_scored_normally(dtype: str, n: int, d: int, rel: float) -> None:
    """Rows that differ by 0.1-1% of their scale are not degenerate, and their moments match
    the dense float64 reference of the same (float-rounded) input."""
    x = _low_variance(n, d, dtype, rel)
    p = asymmetric_features(3, n, 5)
    assert not build_kernel(x).degenerate
    with warnings.catch_warnings():
        warnings.simplefilter("error", DegenerateKernelWarning)
        r = task_prior_moments(x, p, 0.1, dtype=None)
    assert not r.degenerate
    ref = dense_moments(
        dense_kernel(x.astype(np.float64), "centered_cosine"),
        dense_kernel(p, "centered_cosine"),
        0.1,
    )
    rtol = 1e-9 if dtype == "float64" else 5e-3
    floor = 1e-6 * n * n if dtype == "float32" else 1e-12 * n * n
    assert r.mean == pytest.approx(ref[0], rel=rtol, abs=floor)
    assert math.isfinite(kernel_target_alignment(x, np.arange(n) % 2))


def test_the_reported_case_no_longer_wins() -> None:
    """A constant representation under Frobenius normalisation at T = 1e-5 used to score
    0.00203 per pair, above the prior against itself; now it is NaN."""
    rng = np.random.default_rng(0)
    prior = rng.normal(size=(240, 16)).astype(np.float32)
    const = np.tile(rng.normal(size=384), (240, 1)).astype(np.float32)
    with pytest.warns(DegenerateKernelWarning):
        out = task_prior_moments(
            {"layer0": const, "prior": prior}, prior, 1e-5, normalize="frobenius"
        )
    assert math.isnan(out["layer0"][1e-5].mean_per_pair)
    assert out["prior"][1e-5].mean_per_pair > 0


def test_tolerance_follows_the_dtype() -> None:
    assert degenerate_rtol(torch.float32) == pytest.approx(64 * np.finfo(np.float32).eps)
    assert degenerate_rtol(torch.int64) == degenerate_rtol(torch.float64)
    x = _low_variance(50, 6, "float64", 1e-9)  # far below float32 precision, above float64's
    t = torch.from_numpy(x)
    assert not rows_identical(t) and rows_identical(t, torch.float32)


def test_single_class_labels_and_degenerate_prior() -> None:
    x = asymmetric_features(0, 40, 5)
    assert build_kernel(np.zeros(40, dtype=int), "label_graph").degenerate
    with pytest.warns(DegenerateKernelWarning, match="prior is degenerate"):
        task_prior_moments(x, _constant(40, 5, "float64"), 0.1)
