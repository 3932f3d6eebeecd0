"""Theorem 3.6 moments against an independent dense float64 reference."""

from __future__ import annotations

import dataclasses
import math
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.references import asymmetric_features
from tests.references import dense_kernel as dense_reference
from tests.references import dense_moments as reference
from tp_harness import MomentResult, task_prior_moments
from tp_harness.core.kernels import build_kernel
from tp_harness.core.moments import DegenerateKernelWarning, tile_plan


def _features(seed: int, n: int, d: int) -> np.ndarray:
    """Asymmetric data: different means and scales per feature."""
    return asymmetric_features(seed, n, d)


def _close(result: MomentResult, ref: tuple[float, float], rtol: float = 1e-9) -> None:
    """Relative agreement, with an absolute floor of 1e-13 per pair for sums that cancel."""
    floor = 1e-13 * result.n**2
    assert result.mean == pytest.approx(ref[0], rel=rtol, abs=floor)
    assert result.variance == pytest.approx(ref[1], rel=rtol, abs=floor)


TEMPS = [1e-6, 1e-3, 0.1, 1.0, 1e3, 1e6]


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("t", TEMPS)
def test_exact_matches_dense(seed: int, t: float) -> None:
    x, p = _features(seed, 157, 11), _features(seed + 100, 157, 5)
    r = task_prior_moments(x, p, t, block_size=40)  # 157 is not a multiple of 40
    assert isinstance(r, MomentResult)
    ref = reference(dense_reference(x, "centered_cosine"), dense_reference(p, "centered_cosine"), t)
    _close(r, ref)
    assert r.std == pytest.approx(math.sqrt(ref[1]), rel=1e-9)
    assert r.mean_per_pair == pytest.approx(r.mean / 157**2, rel=1e-12)
    assert r.variance_per_pair == pytest.approx(r.variance / 157**2, rel=1e-12)
    assert (r.n, r.temperature, r.method) == (157, t, "exact")


@pytest.mark.parametrize("mk", ["cosine", "linear", "projection", "centered_cosine"])
@pytest.mark.parametrize("pk", ["cosine", "linear", "projection"])
def test_kernel_choices(mk: str, pk: str) -> None:
    x, p = _features(3, 61, 9), _features(4, 61, 4)
    r = task_prior_moments(x, p, 0.5, model_kernel=mk, prior_kernel=pk, block_size=16)
    _close(r, reference(dense_reference(x, mk), dense_reference(p, pk), 0.5))
    assert (r.model_kernel, r.prior_kernel) == (mk, pk)


@settings(max_examples=40, deadline=None)
@given(
    n=st.integers(1, 45),
    d=st.integers(1, 6),
    r=st.integers(1, 6),
    block=st.integers(1, 50),
    log_t=st.floats(-6, 6),
    seed=st.integers(0, 10_000),
)
def test_exact_property(n: int, d: int, r: int, block: int, log_t: float, seed: int) -> None:
    x, p = _features(seed, n, d), _features(seed + 1, n, r)
    t = 10.0**log_t
    m = dense_reference(x, "centered_cosine")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DegenerateKernelWarning)
        res = task_prior_moments(x, p, t, block_size=block)
    if res.degenerate:  # identical examples (e.g. n = 1, or d = 1 with one sign): M is 0
        assert math.isnan(res.mean) and np.abs(m).max() < 1e-12
        return
    if build_kernel(p).degenerate:  # K is float residue: s(K/T) is noise on both sides
        return
    _close(res, reference(m, dense_reference(p, "centered_cosine"), t), rtol=1e-8)


def test_many_models_and_temperatures_equal_single_calls() -> None:
    models = {"a": _features(0, 90, 6), "b": _features(1, 90, 13), "c": _features(2, 90, 2)}
    p = _features(3, 90, 5)
    temps = [0.01, 0.3, 7.0]
    out = task_prior_moments(models, p, temps, block_size=32)
    assert isinstance(out, dict) and set(out) == set(models)
    for name, x in models.items():
        assert list(out[name]) == temps
        for t in temps:
            single = task_prior_moments(x, p, t, block_size=32)
            assert isinstance(single, MomentResult)
            assert out[name][t].mean == pytest.approx(single.mean, rel=1e-12, abs=1e-12)
            assert out[name][t].variance == pytest.approx(single.variance, rel=1e-12)
    # one array with many temperatures: keyed "model"
    seq = task_prior_moments(models["a"], p, temps)
    assert isinstance(seq, dict) and list(seq) == ["model"]


def test_weighted_prior_equals_explicit_sum() -> None:
    x = _features(5, 70, 8)
    pa, pb = _features(6, 70, 5), _features(7, 70, 3)
    k = 0.7 * dense_reference(pa, "centered_cosine") + 0.3 * dense_reference(pb, "centered_cosine")
    r = task_prior_moments(x, [pa, pb], 0.2, prior_weights=[0.7, 0.3], block_size=25)
    _close(r, reference(dense_reference(x, "centered_cosine"), k, 0.2))
    via_dense = task_prior_moments(x, k, 0.2, prior_kernel="precomputed")
    assert isinstance(via_dense, MomentResult)
    _close(via_dense, reference(dense_reference(x, "centered_cosine"), k, 0.2))


def test_label_graph_and_precomputed() -> None:
    x = _features(8, 64, 5)
    y = np.random.default_rng(0).integers(0, 4, 64)
    g = (y[:, None] == y[None, :]).astype(float)
    m = dense_reference(x, "cosine")
    r = task_prior_moments(x, y, 0.5, model_kernel="cosine", prior_kernel="label_graph")
    _close(r, reference(m, g, 0.5))
    r2 = task_prior_moments(m, y, 0.5, model_kernel="precomputed", prior_kernel="label_graph")
    _close(r2, reference(m, g, 0.5))


def test_non_symmetric_precomputed_uses_all_tiles() -> None:
    rng = np.random.default_rng(1)
    m, k = rng.normal(size=(37, 37)), rng.normal(size=(37, 37))
    r = task_prior_moments(
        m, k, 0.8, model_kernel="precomputed", prior_kernel="precomputed", block_size=10
    )
    _close(r, reference(m, k, 0.8))


@pytest.mark.parametrize("t", [1e-5, 1.0])
def test_frobenius_option_equals_dense(t: float) -> None:
    x, p = _features(9, 80, 7), _features(10, 80, 4)
    m, k = dense_reference(x, "centered_cosine"), dense_reference(p, "centered_cosine")
    r = task_prior_moments(x, p, t, normalize="frobenius", block_size=30)
    _close(r, reference(m / np.linalg.norm(m), k / np.linalg.norm(k), t), rtol=1e-8)
    assert r.normalize == "frobenius"


@pytest.mark.parametrize("half", [torch.float16, torch.bfloat16])
def test_half_precision_close_to_float32(half: torch.dtype) -> None:
    x = torch.from_numpy(_features(11, 300, 24)).float()
    p = torch.from_numpy(_features(12, 300, 16)).float()
    ref = task_prior_moments(x, p, 0.5)
    low = task_prior_moments(x.to(half), p.to(half), 0.5)
    assert isinstance(ref, MomentResult) and isinstance(low, MomentResult)
    tol = 2e-2 if half == torch.bfloat16 else 3e-3
    assert low.mean == pytest.approx(ref.mean, rel=tol)
    assert low.variance == pytest.approx(ref.variance, rel=tol)


def test_float32_and_torch_inputs() -> None:
    x, p = _features(13, 200, 10), _features(14, 200, 6)
    r64 = task_prior_moments(x, p, 0.3)
    r32 = task_prior_moments(torch.from_numpy(x).float(), torch.from_numpy(p).float(), 0.3)
    r64t = task_prior_moments(torch.from_numpy(x), torch.from_numpy(p), 0.3)
    assert isinstance(r32, MomentResult) and isinstance(r64, MomentResult)
    assert r32.mean == pytest.approx(r64.mean, rel=1e-4)
    assert r32.variance == pytest.approx(r64.variance, rel=1e-4)
    assert r64t == r64
    assert isinstance(r32.mean, float) and isinstance(r32.n, int)


def test_monte_carlo_within_four_standard_errors() -> None:
    x, p = _features(15, 120, 6), _features(16, 120, 4)
    exact = task_prior_moments(x, p, [0.05, 1.0])
    z_scores = []
    for seed in range(40):
        est = task_prior_moments(x, p, [0.05, 1.0], method="monte_carlo", num_pairs=4000, seed=seed)
        assert isinstance(est, dict) and isinstance(exact, dict)
        for t in (0.05, 1.0):
            e, mc = exact["model"][t], est["model"][t]
            assert mc.method == "monte_carlo" and mc.num_pairs == 4000
            for field in ("mean", "variance"):
                se = getattr(mc, f"{field}_stderr")
                z = (getattr(mc, field) - getattr(e, field)) / se
                assert abs(z) < 4, (seed, t, field, z)
                z_scores.append(z)
    # standard errors are calibrated, not just large
    assert 0.6 < float(np.std(z_scores)) < 1.5
    assert abs(float(np.mean(z_scores))) < 0.35


def test_monte_carlo_is_seeded() -> None:
    x, p = _features(17, 50, 3), _features(18, 50, 3)
    a = task_prior_moments(x, p, 1.0, method="monte_carlo", num_pairs=500, seed=3)
    b = task_prior_moments(x, p, 1.0, method="monte_carlo", num_pairs=500, seed=3)
    c = task_prior_moments(x, p, 1.0, method="monte_carlo", num_pairs=500, seed=4)
    assert a == b and a != c


def test_tile_plan_covers_every_pair_once() -> None:
    for symmetric in (True, False):
        cover = np.zeros((23, 23))
        for tile in tile_plan(23, 5, symmetric):
            cover[tile.rows, tile.cols] += 1
            if tile.weight == 2.0:
                assert symmetric and tile.rows != tile.cols
                cover[tile.cols, tile.rows] += 1
        assert (cover == 1).all()


def test_result_is_frozen_and_serialisable() -> None:
    r = task_prior_moments(_features(0, 10, 2), _features(1, 10, 2), 1.0)
    assert isinstance(r, MomentResult)
    with pytest.raises(dataclasses.FrozenInstanceError):
        r.mean = 0.0  # type: ignore[misc]
    d = r.to_dict()
    assert d["pairs"] == "ordered pairs (i, j), diagonal included" and d["mean"] == r.mean


@pytest.mark.parametrize(
    ("kwargs", "exc", "match"),
    [
        ({"temperature": 0.0}, ValueError, "temperature"),
        ({"temperature": -1.0}, ValueError, "temperature"),
        ({"temperature": float("nan")}, ValueError, "temperature"),
        ({"temperature": []}, ValueError, "temperature"),
        ({"temperature": "hot"}, TypeError, "temperature"),
        ({"model_kernel": "rbf9"}, ValueError, "model_kernel"),
        ({"prior_kernel": "nope"}, ValueError, "prior_kernel"),
        ({"method": "sketch"}, ValueError, "method"),
        ({"method": "monte_carlo"}, ValueError, "num_pairs"),
        ({"block_size": 0}, ValueError, "block_size"),
        ({"normalize": "l2"}, ValueError, "normalize"),
        ({"prior_weights": [1.0]}, ValueError, "prior_weights"),
        (
            {"device": "cuda:0"} if not torch.cuda.is_available() else {"block_size": -1},
            ValueError,
            "CUDA|block_size",
        ),
    ],
)
def test_bad_arguments(kwargs: dict, exc: type, match: str) -> None:
    args = {"temperature": 1.0, **kwargs}
    with pytest.raises(exc, match=match):
        task_prior_moments(_features(0, 20, 3), _features(1, 20, 3), **args)


def test_finite_check_is_exact_when_the_sum_overflows() -> None:
    from tp_harness.core.checks import as_tensor

    huge = np.full((4, 3), 1e308)  # finite entries, infinite sum
    assert as_tensor(huge, "x").shape == (4, 3)
    for bad in (np.inf, -np.inf, np.nan):
        arr = huge.copy()
        arr[2, 1] = bad
        with pytest.raises(ValueError, match=r"x contains NaN or inf values \(1 rows"):
            as_tensor(arr, "x")
    with pytest.raises(ValueError, match="NaN or inf"):  # inf - inf in the sum: NaN
        as_tensor(np.array([[np.inf], [-np.inf]]), "x")


def test_bad_arrays() -> None:
    x, p = _features(0, 20, 3), _features(1, 20, 3)
    bad = x.copy()
    bad[4, 1] = np.inf
    with pytest.raises(ValueError, match="model contains NaN or inf"):
        task_prior_moments(bad, p, 1.0)
    with pytest.raises(ValueError, match="prior contains NaN or inf"):
        task_prior_moments(x, np.where(p > 1, np.nan, p), 1.0)
    with pytest.raises(ValueError, match="model has 19 rows but prior has 20"):
        task_prior_moments(x[:19], p, 1.0)
    with pytest.raises(ValueError, match="model must be 2-D"):
        task_prior_moments(x[:, 0], p, 1.0)
    with pytest.raises(ValueError, match="model is empty"):
        task_prior_moments(x[:0], p[:0], 1.0)
    with pytest.raises(ValueError, match="prior_weights must be finite and >= 0"):
        task_prior_moments(x, [p, p], 1.0, prior_weights=[1.0, -1.0])
    with pytest.raises(ValueError, match=r"model\['b'\] has 19 rows"):
        task_prior_moments({"a": x, "b": x[:19]}, p, 1.0)
    with pytest.raises(ValueError, match="empty mapping"):
        task_prior_moments({}, p, 1.0)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu() -> None:
    x, p = _features(0, 3000, 64), _features(1, 3000, 32)
    ref = task_prior_moments(x.astype(np.float64), p.astype(np.float64), [0.1, 1.0])
    cpu = task_prior_moments(x, p, [0.1, 1.0])
    gpu = task_prior_moments(x, p, [0.1, 1.0], device="cuda")
    assert isinstance(cpu, dict) and isinstance(gpu, dict) and isinstance(ref, dict)
    for t in (0.1, 1.0):
        for got in (cpu, gpu):  # both float32 passes within 1e-6 of float64
            assert got["model"][t].mean == pytest.approx(ref["model"][t].mean, rel=1e-6)
            assert got["model"][t].variance == pytest.approx(ref["model"][t].variance, rel=1e-6)


def test_the_block_ordered_copies_replace_the_models(monkeypatch: pytest.MonkeyPatch) -> None:
    """With intervals every model factor is copied into jackknife-block order; the
    unpermuted kernels are released as they are replaced, so the pass never holds two
    copies of every model (at n = 60k, 4 models of d = 384: 0.31-0.34 GiB less peak RSS)."""
    import gc
    import weakref

    from tp_harness.core import moments

    built: list[weakref.ref[object]] = []
    real_build = moments.build_kernels

    def build(*args: object, **kwargs: object) -> object:
        k = real_build(*args, **kwargs)  # type: ignore[arg-type]
        built.append(weakref.ref(k))
        return k

    alive: list[int] = []

    def sums_fn(models: list[object], *args: object, **kwargs: object) -> torch.Tensor:
        gc.collect()
        alive.append(sum(r() is not None for r in built[:3]))  # the three model kernels
        return moments.moment_sums(models, *args, **kwargs)  # type: ignore[arg-type]

    rng = np.random.default_rng(0)
    xs = {f"m{i}": rng.normal(size=(90, 6)).astype(np.float32) for i in range(3)}
    p = rng.normal(size=(90, 4)).astype(np.float32)
    want = task_prior_moments(xs, p, 0.3, num_blocks=5)
    monkeypatch.setattr(moments, "build_kernels", build)
    got = task_prior_moments(xs, p, 0.3, num_blocks=5, sums_fn=sums_fn)
    assert alive == [0] and len(built) == 4  # 3 models + the prior
    for name in xs:
        assert got[name][0.3] == want[name][0.3]  # type: ignore[index]
