"""Task sampler against exact laws enumerated here over all q^n labelings (float64).

References written independently of the sampler:

* Potts measure ``μ(y) ∝ exp((1/T) Σ_{i,j} K_ij [y_i = y_j])`` (ordered pairs, diagonal
  included);
* the prefix process (Algorithm 1) averaged over all n! visiting orders.

The sampler's empirical law over raw labelings is compared with them in total
variation, against the TV that an exact sampler of the same size would show.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
import torch

from tp_harness.core import compiled as _jit
from tp_harness.core.kernels import build_kernel, centered_cosine
from tp_harness.core.sampling import (
    MAX_REDRAW_ROUNDS,
    prior_factor,
    sample_tasks,
    sample_tasks_with_info,
)

# ----------------------------------------------------------------------------- references


def labelings(n: int, q: int) -> np.ndarray:
    """All q^n labelings (M, n); row m has y_i = digit i of m in base q."""
    m = np.arange(q**n)
    return (m[:, None] // q ** np.arange(n)[None, :]) % q


def potts_law(k: np.ndarray, q: int, t: float) -> np.ndarray:
    y = labelings(k.shape[0], q)
    same = y[:, :, None] == y[:, None, :]  # (M, n, n)
    energy = (same * k[None]).sum(axis=(1, 2)) / t
    p = np.exp(energy - energy.max())
    return p / p.sum()


def prefix_law(k: np.ndarray, q: int, t: float) -> np.ndarray:
    """Law of Algorithm 1 averaged over all n! visiting orders."""
    n = k.shape[0]
    y = labelings(n, q)
    onehot = np.eye(q)[y]  # (M, n, q)
    rows = np.arange(len(y))
    total = np.zeros(len(y))
    for order in itertools.permutations(range(n)):
        logp = np.zeros(len(y))
        for step, i in enumerate(order):
            seen = list(order[:step])
            logits = np.einsum("j,mjc->mc", k[i, seen], onehot[:, seen, :]) / t
            logits -= logits.max(axis=1, keepdims=True)
            logp += logits[rows, y[:, i]] - np.log(np.exp(logits).sum(axis=1))
        total += np.exp(logp)
    return total / math.factorial(n)


def empirical(tasks: torch.Tensor, q: int) -> np.ndarray:
    y = tasks.cpu().numpy()
    code = (y * q ** np.arange(y.shape[1])[None, :]).sum(axis=1)
    return np.bincount(code, minlength=q ** y.shape[1]) / len(y)


def tv(p: np.ndarray, r: np.ndarray) -> float:
    return 0.5 * float(np.abs(p - r).sum())


def tv_bound(p: np.ndarray, num: int, reps: int = 200) -> float:
    """mean + 5 std of the TV between an exact sample of size ``num`` and ``p``."""
    draws = np.random.default_rng(0).multinomial(num, p, size=reps) / num
    tvs = 0.5 * np.abs(draws - p[None]).sum(axis=1)
    return float(tvs.mean() + 5 * tvs.std())


def features(n: int, d: int = 3, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d))


def kernel_of(x: np.ndarray) -> np.ndarray:
    z = centered_cosine(torch.from_numpy(x)).numpy()
    return z @ z.T


# ----------------------------------------------------------------------------- fidelity

FIDELITY = [(6, 2, 0.2, 40_000), (6, 3, 0.3, 100_000), (7, 2, 0.25, 40_000)]


@pytest.mark.parametrize(("n", "q", "t", "num"), FIDELITY)
def test_prefix_pass_matches_exact_prefix_law(
    n: int, q: int, t: float, num: int, backend: str
) -> None:
    x = features(n)
    k = kernel_of(x)
    exact_prefix, exact_potts = prefix_law(k, q, t), potts_law(k, q, t)
    assert tv(exact_prefix, exact_potts) > 0.1  # the prior matters at this T
    emp = empirical(sample_tasks(x, num, q, t, seed=1), q)
    assert tv(emp, exact_prefix) < tv_bound(exact_prefix, num)
    assert tv(emp, exact_potts) > 0.1  # and the prefix law is not Potts


def test_gibbs_sweeps_converge_to_potts(backend: str) -> None:
    n, q, t, num = 6, 3, 0.3, 100_000
    x = features(n)
    k = kernel_of(x)
    exact = potts_law(k, q, t)
    assert tv(exact, potts_law(k, q, 2 * t)) > 0.1  # a wrong factor 2 would show
    tvs = {
        s: tv(empirical(sample_tasks(x, num, q, t, seed=2, gibbs_sweeps=s), q), exact)
        for s in (0, 1, 2, 20)
    }
    assert tvs[0] > tvs[1] > tvs[2] > tvs[20]
    assert tvs[20] < tv_bound(exact, num)


def test_gibbs_on_weighted_sum_and_linear_kernel() -> None:
    n, q, t, num = 5, 2, 0.3, 40_000
    rng = np.random.default_rng(3)
    a, b = rng.normal(size=(n, 2)) * 0.6, rng.normal(size=(n, 4))
    za = a  # linear: K = A Aᵀ as given
    zb = centered_cosine(torch.from_numpy(b)).numpy()
    k = 0.5 * za @ za.T + 2.0 * zb @ zb.T
    tasks = sample_tasks(
        [a, b],
        num,
        q,
        t,
        seed=4,
        prior_kernel=["linear", "centered_cosine"],
        prior_weights=[0.5, 2.0],
        gibbs_sweeps=10,
    )
    exact = potts_law(k, q, t)
    assert tv(empirical(tasks, q), exact) < tv_bound(exact, num)


def test_precomputed_kernel_is_factorised() -> None:
    x = features(8, d=4)
    k = kernel_of(x)
    z = prior_factor(k, "precomputed")
    np.testing.assert_allclose((z @ z.T).numpy(), k, atol=1e-10)
    same = sample_tasks(k, 6, 3, 0.2, seed=5, prior_kernel="precomputed")
    assert same.shape == (6, 8)
    with pytest.raises(ValueError, match="positive semidefinite"):
        prior_factor(-np.eye(4), "precomputed")


def test_wide_factor_is_compressed_exactly() -> None:
    x = features(5, d=40)
    z = prior_factor(x, "linear")
    assert z.shape == (5, 5)
    np.testing.assert_allclose((z @ z.T).numpy(), x @ x.T, atol=1e-10)


# ----------------------------------------------------------------------------- compiled kernels


@pytest.mark.parametrize("sweeps", [0, 3])
def test_compiled_and_torch_paths_draw_the_same_tasks(
    sweeps: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not _jit.enabled():
        pytest.skip("numba is not installed")
    x = features(300, d=16)  # float64: no rounding ties
    kw = {"seed": 7, "gibbs_sweeps": sweeps, "min_class_fraction": 0.1}
    compiled, info = sample_tasks_with_info(x, 24, 4, 0.1, **kw)
    monkeypatch.setenv("TP_HARNESS_NO_JIT", "1")
    reference, ref_info = sample_tasks_with_info(x, 24, 4, 0.1, batch_size=5, **kw)
    assert torch.equal(compiled, reference)
    assert info["redrawn"] == ref_info["redrawn"]


def test_same_tasks_whatever_the_thread_count() -> None:
    x = features(200, d=8).astype(np.float32)
    ref = sample_tasks(x, 10, 3, 0.1, seed=2, gibbs_sweeps=2)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        assert torch.equal(sample_tasks(x, 10, 3, 0.1, seed=2, gibbs_sweeps=2), ref)
    finally:
        torch.set_num_threads(threads)


def test_compiled_random_numbers_equal_numpy() -> None:
    if not _jit.enabled():
        pytest.skip("numba is not installed")
    import numba

    from tp_harness.core.compiled import sampling_kernels as kern
    from tp_harness.core.sampling import _bits, _stream_keys

    keys = _stream_keys(5, 1, 0, np.arange(9))
    for n in (1, 2, 3, 17, 1000, 5000):
        ref = np.argsort(_bits(keys, 0, n), axis=1, kind="stable")
        assert np.array_equal(kern.orders(keys, n), ref)
    numpy_uniforms = (_bits(keys, 11, 300) >> np.uint64(11)).astype(np.float64) * 2.0**-53
    assert np.array_equal(kern.uniforms(keys, 11, 300), numpy_uniforms)
    argsort = numba.njit(lambda b: kern._argsort(b))
    rng = np.random.default_rng(0)
    for width in (2, 60):  # heavy ties and none
        b = rng.integers(0, 4, 500).astype(np.uint64) << np.uint64(width)
        b |= rng.integers(0, 3, 500).astype(np.uint64)
        assert np.array_equal(argsort(b), np.argsort(b, kind="stable"))


# ----------------------------------------------------------------------------- reproducibility


def test_same_seed_same_tasks_whatever_the_batch_size() -> None:
    x = features(50, d=5)
    kw = {"seed": 11, "gibbs_sweeps": 2, "min_class_fraction": 0.2}
    ref, info = sample_tasks_with_info(x, 13, 3, 0.05, **kw)
    assert info["redrawn"] > 0  # redraws are covered too
    for batch in (1, 4, 7, 13, 100):
        assert torch.equal(sample_tasks(x, 13, 3, 0.05, batch_size=batch, **kw), ref)


def test_task_depends_only_on_seed_and_index() -> None:
    x = features(30, d=4)
    many = sample_tasks(x, 12, 4, 0.2, seed=3, gibbs_sweeps=1)
    assert torch.equal(sample_tasks(x, 5, 4, 0.2, seed=3, gibbs_sweeps=1), many[:5])
    other = sample_tasks(x, 12, 4, 0.2, seed=4, gibbs_sweeps=1)
    assert not torch.equal(other, many)
    assert len({tuple(row.tolist()) for row in many}) == 12


def test_no_global_rng_state_is_touched() -> None:
    np_state = np.random.get_state()  # noqa: NPY002 (the legacy global state is the point)
    torch_state = torch.get_rng_state()
    sample_tasks(features(20), 4, 2, 0.3, seed=0, gibbs_sweeps=1)
    assert torch.equal(torch.get_rng_state(), torch_state)
    assert np.array_equal(np.random.get_state()[1], np_state[1])  # noqa: NPY002


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_uses_the_same_random_numbers() -> None:
    x = features(200, d=8).astype(np.float64)
    cpu = sample_tasks(x, 16, 3, 0.3, seed=9, gibbs_sweeps=2)
    gpu = sample_tasks(x, 16, 3, 0.3, seed=9, gibbs_sweeps=2, device="cuda")
    assert gpu.device.type == "cuda"
    assert (gpu.cpu() == cpu).float().mean() > 0.99  # equal up to rounding at ties


# ----------------------------------------------------------------------------- outputs


def test_shape_dtype_range_and_info() -> None:
    x = features(40, d=6).astype(np.float32)
    tasks, info = sample_tasks_with_info(x, 9, 5, 0.5, seed=0)
    assert tasks.shape == (9, 40) and tasks.dtype == torch.long
    assert int(tasks.min()) >= 0 and int(tasks.max()) <= 4
    assert info["redrawn"] == 0 and info["seed"] == 0 and info["n"] == 40
    assert info["dtype"] == "torch.float32" and info["num_classes"] == 5


def test_kernel_object_and_label_graph_prior() -> None:
    y = np.repeat(np.arange(3), 10)
    kern = build_kernel(y, "label_graph")
    tasks = sample_tasks(kern, 20, 3, 0.05, seed=1)
    # at low T the label graph forces tasks constant on each true class
    for task in tasks:
        assert all(len(set(task[y == c].tolist())) == 1 for c in range(3))


def test_extreme_temperatures_stay_finite() -> None:
    x = features(60, d=4)
    cold = sample_tasks(x, 8, 3, 1e-6, seed=0, gibbs_sweeps=1)
    assert int(cold.min()) >= 0 and int(cold.max()) <= 2
    hot = sample_tasks(x, 400, 2, 1e6, seed=0)
    assert abs(float(hot.float().mean()) - 0.5) < 0.01  # ~uniform labels


def test_zero_kernel_gives_uniform_labels() -> None:
    tasks = sample_tasks(np.ones((12, 3)), 2000, 2, 0.1, seed=0, gibbs_sweeps=1)
    assert abs(float(tasks.float().mean()) - 0.5) < 0.01  # centered rows are all zero


def test_min_class_fraction_filters_and_counts_redraws() -> None:
    x = features(40, d=3)
    kw = {"seed": 6, "prior_kernel": "cosine"}  # uncentered: unbalanced tasks
    raw = sample_tasks(x, 30, 3, 1.0, **kw)
    small = torch.nn.functional.one_hot(raw, 3).sum(1).min(1).values < 6  # 0.15 · 40
    assert 0 < int(small.sum()) < 30
    tasks, info = sample_tasks_with_info(x, 30, 3, 1.0, min_class_fraction=0.15, **kw)
    assert int(torch.nn.functional.one_hot(tasks, 3).sum(1).min()) >= 6
    assert info["redrawn"] >= int(small.sum()) and info["redraw_rounds"] >= 1
    assert info["smallest_class_fraction"] >= 0.15
    assert torch.equal(tasks[~small], raw[~small])  # passing tasks are kept as is


def test_min_class_fraction_gives_up_with_a_clear_error() -> None:
    x = features(30, d=3)
    with pytest.raises(ValueError, match=f"after {MAX_REDRAW_ROUNDS} redraws.*lower"):
        sample_tasks(x, 4, 3, 1e-3, seed=0, min_class_fraction=1 / 3)
    with pytest.raises(ValueError, match="cannot be met"):
        sample_tasks(features(31), 4, 3, 0.1, seed=0, min_class_fraction=1 / 3)


# ----------------------------------------------------------------------------- bad input


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_classes": 1}, "num_classes"),
        ({"temperature": 0.0}, "temperature"),
        ({"temperature": -1.0}, "temperature"),
        ({"num_tasks": 0}, "num_tasks"),
        ({"min_class_fraction": 0.6}, "min_class_fraction"),
        ({"min_class_fraction": -0.1}, "min_class_fraction"),
        ({"gibbs_sweeps": -1}, "gibbs_sweeps"),
        ({"batch_size": 0}, "batch_size"),
        ({"seed": -1}, "seed"),
        ({"prior_kernel": "nope"}, "prior_kernel"),
    ],
)
def test_bad_input_names_the_argument(kwargs: dict, match: str) -> None:
    args = {"prior": features(10), "num_tasks": 3, "num_classes": 2, "temperature": 0.5, "seed": 0}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        sample_tasks(**args)


def test_nan_prior_is_rejected() -> None:
    x = features(10)
    x[3, 1] = np.nan
    with pytest.raises(ValueError, match="prior"):
        sample_tasks(x, 3, 2, 0.5, seed=0)
