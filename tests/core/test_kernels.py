"""Kernels in factor form against the dense float64 references of ``tests/references``."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.references import asymmetric_features
from tests.references import dense_kernel as dense_reference
from tp_harness.core.kernels import (
    FACTOR_KERNELS,
    Kernel,
    build_kernel,
    build_kernels,
    frobenius_normalize,
    kernel_names,
    register_kernel,
    view_graph,
    weighted_sum,
)


def _data(seed: int, n: int = 53, d: int = 7) -> np.ndarray:
    return asymmetric_features(seed, n, d, spread=(0.1, 5.0), offset=3.0)


@pytest.mark.parametrize("kernel", list(FACTOR_KERNELS))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_factor_kernels_match_dense(kernel: str, seed: int) -> None:
    x = _data(seed)
    k = build_kernel(x, kernel)
    np.testing.assert_allclose(k.to_dense().numpy(), dense_reference(x, kernel), atol=1e-10)


def test_projection_rank_deficient() -> None:
    x = _data(3, n=40, d=3)
    x = np.concatenate([x, x[:, :1] * 2.0], axis=1)  # rank 3 after centering
    k = build_kernel(x, "projection")
    assert k.rank == 3
    np.testing.assert_allclose(k.to_dense().numpy(), dense_reference(x, "projection"), atol=1e-10)


@pytest.mark.parametrize("kernel", ["centered_cosine", "cosine"])
def test_zero_rows_never_nan(kernel: str) -> None:
    x = _data(4)
    x[[0, 5]] = 0.0
    k = build_kernel(x, kernel).to_dense().numpy()
    assert np.isfinite(k).all()
    np.testing.assert_allclose(k, dense_reference(x, kernel), atol=1e-10)


def test_label_graph_and_view_graph() -> None:
    y = np.array([3, 1, 3, 7, 1, 1])
    k = build_kernel(y, "label_graph").to_dense().numpy()
    np.testing.assert_array_equal(k, (y[:, None] == y[None, :]).astype(float))
    z = view_graph(3, 2).numpy()
    idx = np.arange(6) // 2
    np.testing.assert_array_equal(z @ z.T, (idx[:, None] == idx[None, :]).astype(float))
    with pytest.raises(ValueError, match="integers"):
        build_kernel(np.array([0.5, 1.0]), "label_graph")


def test_frobenius_normalisation_from_gram() -> None:
    x = _data(5)
    k = build_kernel(x, "centered_cosine", normalize="frobenius").to_dense().numpy()
    ref = dense_reference(x, "centered_cosine")
    np.testing.assert_allclose(k, ref / np.linalg.norm(ref), atol=1e-12)
    assert abs(np.linalg.norm(k) - 1.0) < 1e-12
    # identical rows: flagged degenerate and left unnormalised (no blow-up of float residue)
    const = build_kernel(np.ones((5, 3)), "centered_cosine", normalize="frobenius")
    assert const.degenerate and const.frobenius_norm() < 1e-12
    with pytest.raises(ValueError, match="all zeros"):
        frobenius_normalize(Kernel("zero", dense=torch.zeros(4, 4)))


def test_weighted_sum_is_explicit_sum() -> None:
    a, b = _data(6), _data(7, d=4)
    k = build_kernels([a, b], ["centered_cosine", "linear"], weights=[0.7, 0.3])
    ref = 0.7 * dense_reference(a, "centered_cosine") + 0.3 * dense_reference(b, "linear")
    assert k.is_factor
    np.testing.assert_allclose(k.to_dense().numpy(), ref, atol=1e-9)
    # a precomputed component forces a dense sum
    kd = build_kernels(
        [a, dense_reference(b, "linear")], ["centered_cosine", "precomputed"], weights=[0.7, 0.3]
    )
    assert not kd.is_factor
    np.testing.assert_allclose(kd.to_dense().numpy(), ref, atol=1e-9)


@pytest.mark.parametrize(
    ("weights", "match"),
    [
        ([1.0, -0.5], ">= 0"),
        ([1.0], "2 kernels"),
        ([0.0, 0.0], "all zero"),
        ([float("nan"), 1.0], "finite"),
    ],
)
def test_bad_weights(weights: list[float], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        build_kernels([_data(0), _data(1)], "linear", weights=weights)


def test_bad_input_messages() -> None:
    with pytest.raises(ValueError, match="not a known kernel"):
        build_kernel(_data(0), "rbf2")
    with pytest.raises(ValueError, match="2-D"):
        build_kernel(np.ones(5), "linear")
    with pytest.raises(ValueError, match="empty"):
        build_kernel(np.ones((0, 3)), "linear")
    x = _data(0)
    x[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        build_kernel(x, "cosine", name="model")
    with pytest.raises(ValueError, match="square"):
        build_kernel(np.ones((4, 3)), "precomputed")
    with pytest.raises(ValueError, match="normalize"):
        build_kernel(_data(0), "linear", normalize="trace")
    with pytest.raises(TypeError, match="numeric"):
        build_kernel(np.array([["a", "b"]]), "linear")
    with pytest.raises(ValueError, match="rows"):
        build_kernels([_data(0, n=10), _data(1, n=11)], "linear")
    with pytest.raises(ValueError, match="prior_weights"):
        build_kernels(_data(0), "linear", weights=[1.0])


def test_registry_refuses_duplicates() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_kernel("cosine", lambda x: x)
    assert set(kernel_names()) >= {"centered_cosine", "label_graph", "precomputed"}


def test_kernel_object_contract() -> None:
    with pytest.raises(ValueError, match="exactly one"):
        Kernel("x")
    z = torch.randn(5, 2, dtype=torch.float64)
    k = weighted_sum([Kernel("a", factor=z)], [4.0])
    np.testing.assert_allclose(k.to_dense().numpy(), 4.0 * (z @ z.T).numpy(), atol=1e-12)


@pytest.mark.parametrize(("n", "r"), [(4097, 9), (8193, 30), (40, 300), (5, 5)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_frobenius_norm_from_the_smaller_float64_gram(
    n: int, r: int, dtype: torch.dtype, monkeypatch: pytest.MonkeyPatch
) -> None:
    """||ZZᵀ||_F from ZᵀZ (r <= n) or ZZᵀ (r > n), float64 blocks across the 4096-row
    block edges, against numpy's norm of the dense float64 kernel; host BLAS (SYRK per
    block, any number of workers) and the torch fallback agree to float64 rounding."""
    from tests.spies import count_calls
    from tp_harness.core import kernels
    from tp_harness.core.compiled import host_blas
    from tp_harness.core.kernels import factor_gram64

    rng = np.random.default_rng(n + r)
    z = torch.from_numpy(rng.normal(size=(n, r)) + 0.3).to(dtype)
    zd = z.double().numpy()
    want = float(np.linalg.norm(zd @ zd.T))
    calls = count_calls(monkeypatch, host_blas, "gram64")
    for limit in (0, 1 << 62):  # the host BLAS path, then torch's
        monkeypatch.setattr(kernels, "_HOST_GRAM_MIN_WORK", limit)
        got = Kernel("k", factor=z).frobenius_norm()
        assert got == pytest.approx(want, rel=1e-13), limit
        assert factor_gram64(z).shape == (min(n, r), min(n, r))
    assert len(calls) == (2 if host_blas.available() else 0)
    if host_blas.available():
        m = np.ascontiguousarray((z if r <= n else z.T).numpy())
        one = host_blas.gram64(m, 1)
        for workers in (2, 3):
            np.testing.assert_array_equal(host_blas.gram64(m, workers), one)
        np.testing.assert_array_equal(one, one.T)  # exactly symmetric
    monkeypatch.setattr(kernels, "_HOST_GRAM_MIN_WORK", 0)
    monkeypatch.setattr(host_blas, "available", lambda: False)
    assert Kernel("k", factor=z).frobenius_norm() == pytest.approx(want, rel=1e-13)


def test_a_normalised_kernel_knows_its_norm(monkeypatch: pytest.MonkeyPatch) -> None:
    """Frobenius normalisation keeps the norm it divided by: the normalised kernel's norm
    and RMS cost no second Gram, survive a permutation and scaling, and are dropped when
    a cast changes the values."""
    from tp_harness.core import kernels

    x = _data(4, n=60, d=5)
    k = build_kernel(x.astype(np.float32), "centered_cosine", normalize="frobenius")
    calls: list[int] = []
    real = kernels.factor_gram64
    monkeypatch.setattr(kernels, "factor_gram64", lambda z: calls.append(1) or real(z))
    assert k.frobenius_norm() == pytest.approx(1.0, rel=1e-15) and not calls
    assert k.rms() == pytest.approx(1 / 60, rel=1e-15) and not calls
    perm = torch.randperm(60, generator=torch.Generator().manual_seed(0))
    assert k.permuted(perm).scaled(4.0).frobenius_norm() == pytest.approx(4.0) and not calls
    recomputed = Kernel("k", factor=k.factor).frobenius_norm()  # type: ignore[arg-type]
    assert recomputed == pytest.approx(1.0, rel=1e-6) and calls == [1]
    assert k.to(k.device, torch.float64).known_norm == k.known_norm
    assert k.to(k.device, torch.float32).known_norm == k.known_norm  # same dtype
    k64 = build_kernel(x.astype(np.float64), normalize="frobenius")
    assert k64.to(k64.device, torch.float32).known_norm is None  # rounded: recomputed


def test_frobenius_norm_of_a_factor_that_requires_grad() -> None:
    """A float is returned either way; a factor with autograd history is read detached."""
    z = torch.randn(30, 4, requires_grad=True) * 2.0
    want = float(np.linalg.norm(z.detach().double().numpy() @ z.detach().double().numpy().T))
    assert Kernel("k", factor=z).frobenius_norm() == pytest.approx(want, rel=1e-13)
