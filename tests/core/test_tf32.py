"""TF32 tile products (issue 20 item 2): the 3xTF32 split is exact and accurate, the
moments assemble the split products correctly, and a bad mode fails early."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tests.spies import count_calls
from tp_harness.core import moments, tf32
from tp_harness.core.moments import task_prior_moments


def test_the_split_is_exact_and_its_high_part_is_tf32() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 17, generator=g) * torch.logspace(-30, 30, 17)
    x[0, :3] = torch.tensor([0.0, -0.0, 1.0])
    hi, lo = tf32.split_tf32(x)
    assert torch.equal(hi + lo, x)  # exact in float32
    assert not (hi.view(torch.int32) & ((1 << 13) - 1)).any()  # 10 mantissa bits left
    assert (lo.abs() <= x.abs() * 2.0**-10).all()
    with pytest.raises(TypeError, match="float32"):
        tf32.split_tf32(x.double())


def _tf32(x: torch.Tensor) -> torch.Tensor:
    """What a TF32 tensor core reads of a float32 operand (truncated: the worse case)."""
    return tf32.split_tf32(x)[0]


def test_three_tf32_products_reach_float32_accuracy_where_one_does_not() -> None:
    """Emulating the tensor core's rounding of every operand: one TF32 product is off by
    ~1e-3 of the entries' scale, the three-product split by ~1e-6, like float32."""
    g = torch.Generator().manual_seed(1)
    a, b = torch.randn(200, 384, generator=g), torch.randn(150, 384, generator=g)
    ref = a.double() @ b.double().T
    scale = (a.double().abs() @ b.double().abs().T).max().item()
    ah, al = tf32.split_tf32(a)
    bh, bl = tf32.split_tf32(b)
    one = _tf32(a) @ _tf32(b).T
    three = _tf32(al) @ _tf32(bh).T + _tf32(ah) @ _tf32(bl).T + _tf32(ah) @ _tf32(bh).T
    fp32 = a @ b.T
    err = {
        k: ((v.double() - ref).abs().max() / scale).item()
        for k, v in {"one": one, "three": three, "fp32": fp32}.items()
    }
    assert err["one"] > 1e-4 and err["three"] < 2e-6 and err["fp32"] < 2e-6, err
    # the library's assembly of the three products (IEEE float32 here) is a bᵀ
    torch.testing.assert_close(tf32.matmul_3x((ah, al), (bh, bl)), fp32, rtol=1e-5, atol=1e-4)


@pytest.mark.parametrize("mode", ["3xtf32", "tf32"])
def test_the_moments_assemble_the_split_tile_products(
    monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    """The CUDA modes' code path run on CPU (IEEE products): within 1e-6 of float64, with
    jackknife blocks, on both epilogues."""
    monkeypatch.setattr(moments, "tile_matmul_mode", lambda device: mode)
    calls = count_calls(monkeypatch, moments, "matmul_3x")
    rng = np.random.default_rng(3)
    x = rng.normal(size=(500, 24)).astype(np.float32)
    p = (rng.normal(size=(500, 12)) + x[:, :12]).astype(np.float32)
    temps = [1e-3, 0.2, 5.0]
    ref = task_prior_moments(
        x.astype(np.float64), p.astype(np.float64), temps, block_size=128, num_blocks=9
    )
    for limit in (0, 1 << 62):  # the compiled epilogue, then the torch one
        monkeypatch.setattr(moments, "FUSED_MIN_WORK", limit)
        calls.clear()
        got = task_prior_moments(x, p, temps, block_size=128, num_blocks=9)
        tiles = len(moments.tile_plan(500, 128))
        assert len(calls) == tiles * (2 if mode == "3xtf32" else 1)
        for t in temps:
            g, r = got["model"][t], ref["model"][t]
            assert g.mean == pytest.approx(r.mean, rel=1e-6), (mode, limit, t)
            assert g.variance == pytest.approx(r.variance, rel=1e-6), (mode, limit, t)


def test_an_unknown_mode_fails_before_any_compute(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TP_HARNESS_TILE_MATMUL", "bf16")
    with pytest.raises(ValueError, match="TP_HARNESS_TILE_MATMUL='bf16' is not one of fp32"):
        task_prior_moments(np.ones((4, 2)), np.ones((4, 2)), 1.0)
    monkeypatch.setenv("TP_HARNESS_TILE_MATMUL", "3xTF32")  # case-insensitive; CPU: fp32
    assert tf32.tile_matmul_mode(torch.device("cpu")) == "fp32"
    assert tf32.tile_matmul_mode(torch.device("cuda")) == "3xtf32"


def test_tf32_modes_refuse_tunable_op_before_any_compute(monkeypatch: pytest.MonkeyPatch) -> None:
    """TunableOp's GEMM signature reads the legacy TF32 flag, which raises while the TF32
    modes switch the new one: a clear error up front instead of one from inside cuBLAS."""
    monkeypatch.setenv("PYTORCH_TUNABLEOP_ENABLED", "1")
    monkeypatch.setenv("TP_HARNESS_TILE_MATMUL", "3xtf32")
    with pytest.raises(
        ValueError,
        match=r"TP_HARNESS_TILE_MATMUL=3xtf32 cannot run with .*"
        r"TunableOp.*Turn TunableOp off for this run or use TP_HARNESS_TILE_MATMUL=fp32",
    ):
        tf32.tile_matmul_mode(torch.device("cuda"))
    assert tf32.tile_matmul_mode(torch.device("cpu")) == "fp32"  # CPU: IEEE, no TunableOp
    monkeypatch.setenv("TP_HARNESS_TILE_MATMUL", "fp32")
    assert tf32.tile_matmul_mode(torch.device("cuda")) == "fp32"


def test_tf32_products_restore_the_setting() -> None:
    matmul = torch.backends.cuda.matmul
    before = matmul.fp32_precision
    with tf32.tf32_products(True):
        assert matmul.fp32_precision == "tf32"
    assert matmul.fp32_precision == before
    with tf32.tf32_products(False):
        assert matmul.fp32_precision == before
