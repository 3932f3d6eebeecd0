"""Numba, when it is installed: the compiled CPU kernels of the sampler and the probes.

The kernels live next to the code that calls them (``_sampling_kernels``,
``_probe_kernels``); this module only imports numba, keeps its thread count in step
with torch's, and tells callers whether compiled kernels can run. Without numba (or
with ``TP_HARNESS_NO_JIT=1``) every caller falls back to its torch implementation,
which is also the CUDA path.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import torch

_numba: Any
try:  # pragma: no cover - exercised by the import itself
    import numba as _numba
except ImportError:  # pragma: no cover - numba is a declared dependency
    _numba = None

# ``fastmath`` flags for the kernels: reassociation lets LLVM vectorise dot products
# and sums; no "nnan"/"ninf", so -inf/NaN keep their IEEE meaning.
FASTMATH = {"reassoc", "contract"}


def available() -> bool:
    """True when numba is importable (the kernel modules can be imported)."""
    return _numba is not None


def enabled() -> bool:
    """True when numba is importable and ``TP_HARNESS_NO_JIT`` is not set to 1 (read at
    every call, so it can be switched at run time)."""
    return _numba is not None and os.environ.get("TP_HARNESS_NO_JIT", "0") != "1"


def use_jit(device: torch.device) -> bool:
    """Whether work on ``device`` runs the compiled kernels (CPU and numba only)."""
    return device.type == "cpu" and enabled()


def sync_threads() -> int:
    """Run numba's parallel loops on as many threads as torch uses; returns that number."""
    if _numba is None:
        return 1
    threads = max(1, min(torch.get_num_threads(), _numba.config.NUMBA_NUM_THREADS))
    _numba.set_num_threads(threads)
    return threads


def njit(**options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``numba.njit(cache=True, **options)``, or the plain function without numba."""
    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        if _numba is None:
            return fn
        return _numba.njit(cache=True, **options)(fn)
    return wrap


prange: Callable[..., Any] = _numba.prange if _numba is not None else range


def _make_prefetch() -> Callable[..., Any]:
    """``prefetch(a, i, k)``: hint the CPU to bring ``a[i, k]`` into cache (L2 and up).

    An LLVM ``llvm.prefetch`` on the element's address: no effect on results, it only
    lets the loads of rows visited soon overlap the work of the current one.
    """
    from llvmlite import ir
    from numba.core import cgutils, types
    from numba.extending import intrinsic

    @intrinsic
    def prefetch(typingctx: Any, a: Any, i: Any, k: Any) -> Any:
        if not isinstance(a, types.Array) or a.ndim != 2:
            return None
        sig = types.void(a, i, k)

        def codegen(context: Any, builder: Any, signature: Any, args: Any) -> Any:
            aryty = signature.args[0]
            ary = context.make_array(aryty)(context, builder, args[0])
            idx = [context.cast(builder, v, t, types.intp)
                   for v, t in zip(args[1:], signature.args[1:], strict=True)]
            ptr = cgutils.get_item_pointer(context, builder, aryty, ary, idx, wraparound=False)
            i8p = ir.IntType(8).as_pointer()
            i32 = ir.IntType(32)
            fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
            fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
            # read access, locality 2 (keep in L2), data cache
            builder.call(fn, [builder.bitcast(ptr, i8p), ir.Constant(i32, 0),
                              ir.Constant(i32, 2), ir.Constant(i32, 1)])
            return context.get_dummy_value()

        return sig, codegen

    return prefetch


def _no_prefetch(a: Any, i: int, k: int) -> None:
    """Without numba there is nothing to hint."""


prefetch: Callable[..., Any] = _make_prefetch() if _numba is not None else _no_prefetch
