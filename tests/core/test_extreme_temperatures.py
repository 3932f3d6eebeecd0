"""No NaN for any finite T > 0 (issue 16, finding 7): below the dtype's smallest usable T
the moments and the sampler give the exact T -> 0 limit, and the two agree there."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch

from tp_harness import sample_tasks, task_prior_moments
from tp_harness.core.alignment import sampled_task_alignment

from ..references import dense_kernel


def _data(dtype: type = np.float32) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(40, 5)).astype(dtype)
    p = rng.normal(size=(40, 4)).astype(dtype)
    p[3] = 0.0  # a zero row: cosine entries exactly 0, where 0 * inf was NaN
    return x, p


@pytest.mark.parametrize("t", [1e-39, 1e-44, 1e-30])
def test_float32_moments_at_tiny_t_are_the_step_limit(t: float) -> None:
    x, p = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        r = task_prior_moments(x, p, t, prior_kernel="cosine")
    assert math.isfinite(r.mean) and math.isfinite(r.variance)
    # float64 reference of the limit: s(K/T) -> 1[K > 0] + 1/2 1[K = 0]
    m, k = dense_kernel(x, "centered_cosine"), dense_kernel(p, "cosine")
    step = (k > 0) + 0.5 * (k == 0)
    assert r.mean == pytest.approx(float((m * step).sum()), rel=1e-5)
    assert r.variance == pytest.approx(float((m**2 * step * (1 - step)).sum()), rel=1e-5)


def test_label_prior_at_a_subnormal_t() -> None:
    """`--prior labels --temperature 1e-320` wrote NaN into results.json."""
    x, _ = _data()
    labels = np.arange(40) % 3
    r = task_prior_moments(x, labels, 1e-320, prior_kernel="label_graph")
    limit = task_prior_moments(x, labels, 1e-12, prior_kernel="label_graph")
    assert math.isfinite(r.mean) and r.mean == pytest.approx(limit.mean, rel=1e-12)
    assert r.variance == pytest.approx(limit.variance, rel=1e-12, abs=1e-12)


def _clusters() -> np.ndarray:
    rng = np.random.default_rng(1)
    centers = np.repeat(np.eye(4, dtype=np.float32)[:2], 6, axis=0)
    return centers + 0.05 * rng.normal(size=centers.shape).astype(np.float32)


@pytest.mark.usefixtures("backend")
@pytest.mark.parametrize("sweeps", [0, 2])
def test_sampler_at_tiny_t_draws_the_limit(sweeps: int) -> None:
    """`sample_tasks(P, 8, 3, 1e-40, gibbs_sweeps=2)` gave single-class tasks (NaN logits)."""
    z = _clusters()
    tiny = sample_tasks(z, 16, 3, 1e-40, seed=0, gibbs_sweeps=sweeps)
    small = sample_tasks(z, 16, 3, 1e-12, seed=0, gibbs_sweeps=sweeps)
    assert torch.equal(tiny, small)
    for task in tiny:  # T -> 0: each cluster one class, the two clusters apart
        a, b = task[:6], task[6:]
        assert len(set(a.tolist())) == 1 and len(set(b.tolist())) == 1 and a[0] != b[0]


def test_sampler_and_moments_agree_at_the_limit() -> None:
    """At T -> 0 every sampled task has alignment = the closed-form mean (variance 0)."""
    z = _clusters()
    x = np.random.default_rng(2).normal(size=(12, 3)).astype(np.float32)
    tasks = sample_tasks(z, 32, 3, 1e-40, seed=0)
    sampled = sampled_task_alignment(x, tasks)
    closed = task_prior_moments(x, z, 1e-40)
    assert closed.variance == pytest.approx(0.0, abs=1e-9)
    assert sampled.numpy() == pytest.approx(closed.mean_per_pair, rel=1e-5)
