"""The compiled tile epilogue (issue 20 item 1): the numba path (one pass over each tile
for all models and temperatures) and the torch path both stay within 1e-6 relative of a
float64 dense reference, with and without the jackknife blocks, at tiny and huge T."""

from __future__ import annotations

import numpy as np
import pytest

from tests.spies import count_calls
from tp_harness.core.moments import task_prior_moments


def _dense(x: np.ndarray, p: np.ndarray, t: float) -> tuple[float, float, float]:
    """(mean, variance, Σ |M_ij| s_ij): the last is the scale the mean's error is measured
    against (the mean of a centered kernel is a cancellation of terms of that size)."""

    def cc(a: np.ndarray) -> np.ndarray:
        z = a / np.maximum(np.linalg.norm(a, axis=1, keepdims=True), 1e-12)
        return z - z.mean(0, keepdims=True)

    fx, fp = cc(x.astype(np.float64)), cc(p.astype(np.float64))
    m, k = fx @ fx.T, fp @ fp.T
    s = 0.5 * (1 + np.tanh(k / t / 2))  # s(K/T), overflow-free
    return float((m * s).sum()), float((m * m * s * (1 - s)).sum()), float(np.abs(m * s).sum())


@pytest.mark.parametrize("num_blocks", [None, 20])
def test_both_backends_match_float64(backend: str, num_blocks: int | None) -> None:
    rng = np.random.default_rng(7)
    n = 700
    models = {f"m{i}": rng.normal(size=(n, 16 + 8 * i)).astype(np.float32) for i in range(4)}
    p = (rng.normal(size=(n, 16)) + models["m0"] * 0.4).astype(np.float32)
    temps = [1e-3, 0.1, 1.0, 30.0]
    got = task_prior_moments(models, p, temps, block_size=256, num_blocks=num_blocks)
    for name, x in models.items():
        for t in temps:
            mean, var, scale = _dense(x, p, t)
            r = got[name][t]
            assert abs(r.mean - mean) <= 1e-6 * scale, (backend, name, t)
            assert r.variance == pytest.approx(var, rel=1e-6, abs=1e-12), (backend, name, t)


def test_backends_agree_on_intervals_and_extreme_temperatures(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Both float32 paths against the float64 computation, within 1e-6 of the scale of
    the sums (``Σ |M_ij|``: at T = 1e6 the mean is a cancellation of terms of that size,
    where relative error is meaningless); the jackknife intervals agree."""
    import os

    from tp_harness.core import moments

    monkeypatch.setattr(moments, "FUSED_MIN_WORK", 0)
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 8)).astype(np.float32)
    p = rng.normal(size=(300, 5)).astype(np.float32)
    temps = [1e-40, 1e-8, 1e-4, 1e6]
    ref = task_prior_moments(x.astype(np.float64), p.astype(np.float64), temps, block_size=64)
    fused = task_prior_moments(x, p, temps, block_size=64)
    os.environ["TP_HARNESS_NO_JIT"] = "1"
    try:
        plain = task_prior_moments(x, p, temps, block_size=64)
    finally:
        del os.environ["TP_HARNESS_NO_JIT"]
    z = x.astype(np.float64) / np.linalg.norm(x, axis=1, keepdims=True)
    z -= z.mean(0)
    scale = float(np.abs(z @ z.T).sum())
    for t in temps:
        r = ref["model"][t]
        for got in (fused["model"][t], plain["model"][t]):
            assert abs(got.mean - r.mean) <= 1e-6 * scale, t
            assert abs(got.variance - r.variance) <= 1e-6 * scale, t
        np.testing.assert_allclose(
            fused["model"][t].mean_per_pair_ci, r.mean_per_pair_ci, rtol=1e-3, atol=1e-6
        )


def test_the_epilogue_kernel_against_numpy() -> None:
    from tp_harness.core import compiled

    if not compiled.enabled():
        pytest.skip("numba is not installed")
    jit = compiled.kernels("moment_kernels")
    rng = np.random.default_rng(3)
    b, c, m = 37, 53, 3
    k = rng.normal(size=(b, c)).astype(np.float32)
    ms = rng.normal(size=(m, b, c)).astype(np.float32)
    inv_t = np.array([0.5, 10.0])
    row_seg = (np.arange(b) >= 20).astype(np.int64)
    col_seg = (np.arange(c) >= 11).astype(np.int64) + (np.arange(c) >= 40)
    x = k.astype(np.float64)[None] * inv_t[:, None, None]
    sig = 1 / (1 + np.exp(-x))
    got = jit.tile_epilogue(sig, sig * (1 - sig), ms, row_seg, col_seg, 2, 3)
    for ti, it in enumerate(inv_t):
        s = 1 / (1 + np.exp(-k.astype(np.float64) * it))
        for r in range(2):
            for cs in range(3):
                sel = np.ix_(row_seg == r, col_seg == cs)
                mm = ms.astype(np.float64)[:, sel[0], sel[1]]
                np.testing.assert_allclose(
                    got[:, ti, 0, r, cs], (mm * s[sel]).sum((1, 2)), rtol=1e-10
                )
                v = mm * mm * s[sel] * (1 - s[sel])
                np.testing.assert_allclose(got[:, ti, 1, r, cs], v.sum((1, 2)), rtol=1e-9)


def test_the_compiled_epilogue_is_chosen_by_the_size_of_the_pass(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Small passes take the torch epilogue (the compiled one costs ~0.4 s to load), large
    ones the compiled one; both give the same sums."""
    from tp_harness.core import compiled, moments
    from tp_harness.core.kernels import build_kernels

    if not compiled.enabled():
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(5)
    ks = [build_kernels(rng.normal(size=(200, 8)).astype(np.float32), "centered_cosine")]
    prior = build_kernels(rng.normal(size=(200, 4)).astype(np.float32), "centered_cosine")
    tiles = moments.tile_plan(200, 64)
    work = sum((t.rows.stop - t.rows.start) * (t.cols.stop - t.cols.start) for t in tiles) * 2
    calls = count_calls(monkeypatch, moments, "_fused_block_sums")
    out = {}
    for limit in (work + 1, work):
        monkeypatch.setattr(moments, "FUSED_MIN_WORK", limit)
        out[limit] = moments.moment_sums(ks, prior, [0.1, 1.0], tiles)
    assert len(calls) == len(tiles)  # only the second pass, whose work reaches the limit
    np.testing.assert_allclose(out[work], out[work + 1], rtol=1e-6)


def test_the_in_kernel_sigmoid_against_float64() -> None:
    """The float32 kernel's own exp/sigmoid (one vectorised exp per entry) against float64
    numpy on every regime of ``x = K/T``: 0, tiny, moderate, near and past float32's exp
    underflow, and infinite; the sums within 1e-6 of the scale ``Σ |M| s``."""
    from tp_harness.core import compiled

    if not compiled.enabled():
        pytest.skip("numba is not installed")
    jit = compiled.kernels("moment_kernels")
    rng = np.random.default_rng(11)
    b, c, m = 29, 301, 2
    k = rng.normal(size=(b, c)).astype(np.float32)
    k[0, :5] = [0.0, -0.0, 1e-30, -1e-30, np.float32(np.inf)]
    k[1, :4] = [-np.inf, 87.5, -87.5, -104.0]
    ms = rng.normal(size=(m, b, c)).astype(np.float32)
    inv_t = np.array([1.0, 0.05, 3.0, 1e3, np.finfo(np.float32).max], dtype=np.float32)
    row_seg = (np.arange(b) >= 9).astype(np.int64)
    col_seg = (np.arange(c) >= 100).astype(np.int64)
    got = jit.tile_epilogue_fused(k, inv_t, ms, row_seg, col_seg, 2, 2)
    md = ms.astype(np.float64)
    for ti, it in enumerate(inv_t):
        x = k.astype(np.float64) * np.float64(it)
        e = np.exp(-np.abs(x))  # the identities s(|x|) = 1/(1+e), s(-|x|) = e/(1+e)
        s = np.where(x >= 0, 1 / (1 + e), e / (1 + e))
        v = e / (1 + e) ** 2
        for r in range(2):
            for cs in range(2):
                sel = np.ix_(row_seg == r, col_seg == cs)
                mm = md[:, sel[0], sel[1]]
                scale = np.abs(mm * s[sel]).sum((1, 2)) + np.abs(mm * mm * v[sel]).sum((1, 2))
                err0 = np.abs(got[:, ti, 0, r, cs] - (mm * s[sel]).sum((1, 2)))
                err1 = np.abs(got[:, ti, 1, r, cs] - (mm * mm * v[sel]).sum((1, 2)))
                assert (err0 <= 1e-6 * scale).all(), (it, r, cs, err0, scale)
                assert (err1 <= 1e-6 * scale).all(), (it, r, cs, err1, scale)
    # the exact limits: s = 1 and 0 at x = +-inf, s = 1/2 at 0; no variance at +-inf
    one = jit.tile_epilogue_fused(
        np.array([[np.inf, -np.inf, 0.0]], dtype=np.float32),
        np.array([1.0], dtype=np.float32),
        np.ones((1, 1, 3), dtype=np.float32),
        np.zeros(1, dtype=np.int64),
        np.array([0, 1, 2], dtype=np.int64),
        1,
        3,
    )
    np.testing.assert_array_equal(one[0, 0, 0, 0], [1.0, 0.0, 0.5])
    np.testing.assert_array_equal(one[0, 0, 1, 0], [0.0, 0.0, 0.25])


def test_the_compiled_torch_epilogue_matches_float64(monkeypatch: pytest.MonkeyPatch) -> None:
    """The ``torch.compile`` epilogue (Triton on CUDA; here inductor's C++ backend, the same
    graph) within 1e-6 of the float64 computation, with jackknife blocks, at tiny and
    huge T, and selected without a fallback warning."""
    import warnings

    from tp_harness.core import moments
    from tp_harness.core.compiled import torch_epilogue

    monkeypatch.setenv("TP_HARNESS_COMPILE_EPILOGUE", "1")
    monkeypatch.setattr(moments, "FUSED_MIN_WORK", 1 << 62)  # not the numba epilogue
    calls = count_calls(monkeypatch, moments, "_compiled_block_sums")
    rng = np.random.default_rng(2)
    x = rng.normal(size=(300, 8)).astype(np.float32)
    p = (rng.normal(size=(300, 5)) + x[:, :5]).astype(np.float32)
    temps = [1e-40, 1e-3, 0.3, 1e6]
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        got = task_prior_moments(x, p, temps, block_size=128, num_blocks=7)
    assert calls and not torch_epilogue._failed
    ref = task_prior_moments(
        x.astype(np.float64), p.astype(np.float64), temps, block_size=128, num_blocks=7
    )
    z = x.astype(np.float64) / np.linalg.norm(x, axis=1, keepdims=True)
    z -= z.mean(0)
    scale = float(np.abs(z @ z.T).sum())
    for t in temps:
        g, r = got["model"][t], ref["model"][t]
        assert abs(g.mean - r.mean) <= 1e-6 * scale, t
        assert abs(g.variance - r.variance) <= 1e-6 * scale, t
        np.testing.assert_allclose(g.mean_per_pair_ci, r.mean_per_pair_ci, rtol=1e-4, atol=1e-9)


def test_the_compiled_torch_epilogue_is_selected_on_cuda_only(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import importlib.util

    import torch

    from tp_harness.core.compiled import torch_epilogue as te

    for var in ("TP_HARNESS_COMPILE_EPILOGUE", "TP_HARNESS_NO_JIT"):
        monkeypatch.delenv(var, raising=False)
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: object() if name == "triton" else real(name)
    )
    assert not te.use_compiled(cpu) and te.use_compiled(cuda)
    monkeypatch.setenv("TP_HARNESS_COMPILE_EPILOGUE", "1")
    assert te.use_compiled(cpu)
    monkeypatch.setenv("TP_HARNESS_NO_JIT", "1")  # switches every compiled path off
    assert not te.use_compiled(cpu) and not te.use_compiled(cuda)
    monkeypatch.delenv("TP_HARNESS_NO_JIT")
    monkeypatch.setenv("TP_HARNESS_COMPILE_EPILOGUE", "0")
    assert not te.use_compiled(cuda)
    monkeypatch.delenv("TP_HARNESS_COMPILE_EPILOGUE")
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)  # no Triton
    assert not te.use_compiled(cuda)


def test_a_failed_compile_falls_back_to_the_eager_epilogue_with_a_warning(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import torch

    from tp_harness.core.compiled import torch_epilogue as te

    def broken() -> object:
        raise RuntimeError("Cannot find a working triton installation")

    monkeypatch.setattr(te, "_compiled", broken)
    monkeypatch.setattr(te, "_failed", [])
    g = torch.Generator().manual_seed(0)
    k, ms = torch.randn(6, 5, generator=g), torch.randn(2, 6, 5, generator=g)
    inv_t = torch.tensor([1.0, 4.0])
    with pytest.warns(RuntimeWarning, match="could not be built.*triton.*COMPILE_EPILOGUE=0"):
        out = te.row_sums(k, ms, inv_t)
    kd, md = k.double(), ms.double()
    for ti, it in enumerate(inv_t.double()):
        s = torch.sigmoid(kd * it)
        torch.testing.assert_close(out[:, ti, 0], (md * s).sum(-1), rtol=1e-6, atol=1e-9)
        torch.testing.assert_close(
            out[:, ti, 1], (md * md * s * (1 - s)).sum(-1), rtol=1e-6, atol=1e-9
        )
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once: the second call is quiet and eager
        torch.testing.assert_close(te.row_sums(k, ms, inv_t), out, rtol=0, atol=0)


@pytest.mark.parametrize("compiled", ["1", "0"])
def test_cuda_epilogues_match_float64(monkeypatch: pytest.MonkeyPatch, compiled: str) -> None:
    """On a GPU: the default CUDA path (the torch.compile/Triton epilogue) and the eager
    one, float32 with 20 jackknife blocks, within 1e-6 of the float64 CPU computation."""
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    monkeypatch.setenv("TP_HARNESS_COMPILE_EPILOGUE", compiled)
    rng = np.random.default_rng(4)
    x = rng.normal(size=(5000, 64)).astype(np.float32)
    p = (rng.normal(size=(5000, 32)) + x[:, :32]).astype(np.float32)
    temps = [1e-3, 0.1, 1.0]
    got = task_prior_moments(x, p, temps, device="cuda", block_size=2048, num_blocks=20)
    ref = task_prior_moments(x.astype(np.float64), p.astype(np.float64), temps, num_blocks=20)
    for t in temps:
        g, r = got["model"][t], ref["model"][t]
        assert g.mean == pytest.approx(r.mean, rel=1e-6), t
        assert g.variance == pytest.approx(r.variance, rel=1e-6), t
        np.testing.assert_allclose(g.mean_per_pair_ci, r.mean_per_pair_ci, rtol=1e-4)


def test_an_unknown_compile_setting_fails_before_any_compute(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("TP_HARNESS_COMPILE_EPILOGUE", "yes")
    with pytest.raises(ValueError, match="TP_HARNESS_COMPILE_EPILOGUE='yes' must be 0 or 1"):
        task_prior_moments(np.ones((4, 2)), np.ones((4, 2)), 1.0)
