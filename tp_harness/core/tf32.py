"""TF32 tile products on CUDA: plain, or split into three for float32 accuracy ("3xTF32").

A TF32 tensor-core product rounds both float32 inputs to 10 mantissa bits (relative error
~2^-11 per entry), fast but too coarse for a prior tile at small T (``s(K/T)`` amplifies
an error in ``K`` by ``1/T``). :func:`split_tf32` writes ``x = hi + lo`` with ``hi``
exactly representable in TF32; then ``a bᵀ ≈ hi_a hi_bᵀ + hi_a lo_bᵀ + lo_a hi_bᵀ``
(the dropped ``lo_a lo_bᵀ`` and TF32's rounding of ``lo`` are ~2^-21 relative): about
float32 accuracy from three tensor-core products, the split CUTLASS calls 3xTF32.

``TP_HARNESS_TILE_MATMUL`` chooses the moments' tile products on CUDA (:data:`MODES`):

* ``fp32`` (default): IEEE float32 products, no TF32;
* ``3xtf32``: prior and model tiles from three TF32 products each;
* ``tf32``: the prior tile from three TF32 products, the model tiles from one (the model
  kernel enters the sums linearly, so its rounding is not amplified by ``1/T``).

On CPU the products are always IEEE float32 (no TF32 hardware): the setting is ignored.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

ENV = "TP_HARNESS_TILE_MATMUL"
MODES = ("fp32", "3xtf32", "tf32")
_TF32_MASK = -(1 << 13)  # keep sign, exponent and the top 10 of 23 mantissa bits


def tile_matmul_mode(device: torch.device) -> str:
    """The tile-product mode for ``device``: ``$TP_HARNESS_TILE_MATMUL`` on CUDA, ``fp32``
    elsewhere. Raises ``ValueError`` naming the variable for an unknown mode."""
    mode = os.environ.get(ENV, "fp32").strip().lower() or "fp32"
    if mode not in MODES:
        raise ValueError(f"{ENV}={mode!r} is not one of {', '.join(MODES)}.")
    if device.type != "cuda":
        return "fp32"
    if mode != "fp32" and _tunable_op_enabled():
        raise ValueError(
            f"{ENV}={mode} cannot run with PyTorch's TunableOp on (PYTORCH_TUNABLEOP_ENABLED"
            "=1 or torch.cuda.tunable.enable()): its GEMM signature reads the legacy TF32 "
            "flag, which raises while the TF32 products switch the new one. Turn TunableOp "
            f"off for this run or use {ENV}=fp32."
        )
    return mode


def _tunable_op_enabled() -> bool:
    """PyTorch's TunableOp (CUDA GEMM autotuning) on, by its variable or its API."""
    if os.environ.get("PYTORCH_TUNABLEOP_ENABLED", "0").strip() == "1":
        return True
    try:
        return bool(torch.cuda.tunable.is_enabled())
    except (AttributeError, RuntimeError):  # a CPU-only build has no TunableOp
        return False


def split_tf32(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``(hi, lo)`` with ``hi + lo == x`` exactly (float32), ``hi`` representable in TF32
    (mantissa truncated to 10 bits) and ``|lo| < 2^-10 |x|``. Any shape."""
    if x.dtype != torch.float32:
        raise TypeError(f"split_tf32 needs float32 input; got {x.dtype}.")
    hi = (x.contiguous().view(torch.int32) & _TF32_MASK).view(torch.float32).view(x.shape)
    return hi, x - hi


def matmul_3x(
    a: tuple[torch.Tensor, torch.Tensor],
    b: tuple[torch.Tensor, torch.Tensor],
    out: torch.Tensor | None = None,
) -> torch.Tensor:
    """``a bᵀ`` from split operands ``a = (hi, lo) (m, k)``, ``b = (hi, lo) (n, k)``: the two
    small cross terms first, then ``hi_a hi_bᵀ``. -> (m, n)."""
    (ah, al), (bh, bl) = a, b
    res = torch.matmul(al, bh.T, out=out) if out is not None else al @ bh.T
    res.addmm_(ah, bl.T)
    return res.addmm_(ah, bh.T)


@contextlib.contextmanager
def tf32_products(enabled: bool) -> Iterator[None]:
    """CUDA float32 matrix products on TF32 tensor cores inside the block (restored after)."""
    if not enabled:
        yield
        return
    matmul = torch.backends.cuda.matmul
    old = matmul.fp32_precision
    matmul.fp32_precision = "tf32"
    try:
        yield
    finally:
        matmul.fp32_precision = old


__all__ = ["ENV", "MODES", "matmul_3x", "split_tf32", "tf32_products", "tile_matmul_mode"]
