"""The compiled ``centered_cosine`` build (:mod:`tp_harness.core.compiled.factor_kernels`):
the factor within rounding of a float64 reference, the same degeneracy verdicts as the
torch path, results independent of the thread count, and chosen by the number of rows."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.spies import count_calls
from tp_harness.core import compiled, kernels
from tp_harness.core.kernels import build_kernel, row_normalize, rows_identical


@pytest.fixture
def jit(monkeypatch: pytest.MonkeyPatch) -> None:
    if not compiled.enabled():
        pytest.skip("numba is not installed")
    monkeypatch.setattr(kernels, "COMPILED_FACTOR_MIN_ROWS", 0)


def _reference(x: np.ndarray) -> np.ndarray:
    z = x.astype(np.float64)
    z = z / np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
    return z - z.mean(axis=0, keepdims=True)


def _spy(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    return count_calls(monkeypatch, compiled.kernels("factor_kernels"), "centered_cosine_factor")


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [1, 5, 2047, 2048, 4097])
def test_factor_against_float64(
    jit: None, monkeypatch: pytest.MonkeyPatch, dtype: type, n: int
) -> None:
    """Within one rounding of the output dtype of the float64 reference, at chunk edges
    (CHUNK = 2048 rows per partial sum), with a zero row (normalised to zero, then -mean)."""
    rng = np.random.default_rng(n)
    x = (rng.normal(size=(n, 37)) * rng.uniform(0.1, 5, size=37) + 0.7).astype(dtype)
    x[n // 2] = 0.0
    calls = _spy(monkeypatch)
    got = build_kernel(x).factor
    assert len(calls) == 1 and got is not None and got.dtype == torch.from_numpy(x).dtype
    ref = _reference(x)
    eps = float(np.finfo(dtype).eps)
    np.testing.assert_allclose(got.numpy(), ref, rtol=eps, atol=4 * eps * np.abs(ref).max())


def test_matches_the_torch_path(jit: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """The same factor as centered_cosine (up to a float32 rounding flip) and the same
    kernel-level results (Frobenius normalisation, rms)."""
    rng = np.random.default_rng(1)
    x = torch.from_numpy((rng.normal(size=(3000, 50)) + 0.3).astype(np.float32))
    fast = build_kernel(x, normalize="frobenius")
    monkeypatch.setattr(kernels, "COMPILED_FACTOR_MIN_ROWS", 1 << 62)
    slow = build_kernel(x, normalize="frobenius")
    assert fast.factor is not None and slow.factor is not None
    torch.testing.assert_close(fast.factor, slow.factor, rtol=1.2e-7, atol=1e-9)
    assert fast.degenerate is slow.degenerate is False
    assert abs(fast.rms() - slow.rms()) <= 1e-7 * slow.rms()


@pytest.mark.parametrize(
    "case",
    ["identical", "identical_scaled", "just_below", "just_above", "zeros", "one_row", "two"],
)
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_degeneracy_verdicts_match(jit: None, case: str, dtype: torch.dtype) -> None:
    """Identical rows (also after scaling, which row normalisation removes), a spread
    just below and just above the tolerance, all zeros and n = 1: the compiled build
    decides as rows_identical does on the float64 normalised rows."""
    rng = np.random.default_rng(4)
    base = torch.from_numpy(rng.normal(size=(1, 40)) + 1.0)
    x = base.repeat(600, 1)
    tol = kernels.degenerate_rtol(dtype)
    if case == "identical_scaled":
        x = x * torch.linspace(0.5, 3.0, 600)[:, None].double()
    elif case in ("just_below", "just_above"):
        noise = torch.from_numpy(rng.normal(size=(600, 40)))
        noise -= noise.mean(0)
        # spread of the normalised rows ≈ ||noise||_F / ||base||; scale it to 0.5x / 2x tol
        target = (0.5 if case == "just_below" else 2.0) * tol * np.sqrt(600)
        x = x + noise * (target * float(base.norm()) / float(noise.norm()))
    elif case == "zeros":
        x = torch.zeros(600, 40, dtype=torch.float64)
    elif case == "one_row":
        x = x[:1]
    elif case == "two":
        x = torch.from_numpy(rng.normal(size=(2, 40)))
    x = x.to(dtype)
    expected = rows_identical(row_normalize(x.double()), dtype)
    if case in ("identical", "identical_scaled", "just_below", "zeros", "one_row"):
        assert expected, case
    else:
        assert not expected, case
    assert build_kernel(x).degenerate is expected


def test_independent_of_the_thread_count(jit: None) -> None:
    import numba

    rng = np.random.default_rng(2)
    x = torch.from_numpy(rng.normal(size=(9000, 33)).astype(np.float32) + 0.2)
    before = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        one = compiled.kernels("factor_kernels")  # sets numba's threads to torch's ...
        numba.set_num_threads(1)  # ... so set 1 again after loading
        out1 = torch.empty_like(x)
        norms1 = one.centered_cosine_factor(x.numpy(), out1.numpy())
    finally:
        numba.set_num_threads(before)
    out2 = torch.empty_like(x)
    norms2 = one.centered_cosine_factor(x.numpy(), out2.numpy())
    assert torch.equal(out1, out2) and norms1 == norms2


def test_non_contiguous_and_integer_input(jit: None) -> None:
    rng = np.random.default_rng(6)
    x = torch.from_numpy(rng.normal(size=(40, 700)).astype(np.float32))
    got = build_kernel(x.T).factor  # a transposed view: (700, 40), not contiguous
    assert got is not None
    np.testing.assert_allclose(got.numpy(), _reference(x.T.numpy()), rtol=3e-7, atol=1e-8)
    ints = torch.from_numpy(rng.integers(-5, 6, size=(300, 9)))
    got = build_kernel(ints).factor
    assert got is not None and got.dtype == torch.float64
    np.testing.assert_allclose(got.numpy(), _reference(ints.numpy()), rtol=1e-14, atol=1e-15)


def test_chosen_by_the_number_of_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    """Below COMPILED_FACTOR_MIN_ROWS the torch path builds the factor (loading numba
    would cost more than it saves), from it the compiled kernel; the limit squared is the
    moments' FUSED_MIN_WORK, where the tile epilogue loads numba anyway."""
    from tp_harness.core import moments

    if not compiled.enabled():
        pytest.skip("numba is not installed")
    assert kernels.COMPILED_FACTOR_MIN_ROWS**2 == moments.FUSED_MIN_WORK
    x = torch.randn(300, 4)
    calls = _spy(monkeypatch)
    monkeypatch.setattr(kernels, "COMPILED_FACTOR_MIN_ROWS", 301)
    build_kernel(x)
    assert calls == []
    monkeypatch.setattr(kernels, "COMPILED_FACTOR_MIN_ROWS", 300)
    build_kernel(x)
    assert len(calls) == 1
    build_kernel(x, "cosine")  # only centered_cosine has a compiled build
    build_kernel(x.cuda() if torch.cuda.is_available() else x[:, :2].double().T)  # 2 rows
    monkeypatch.setenv("TP_HARNESS_NO_JIT", "1")
    build_kernel(x)
    assert len(calls) == 1
