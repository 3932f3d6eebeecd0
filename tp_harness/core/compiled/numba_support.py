"""What the compiled kernel modules build on: numba's ``njit``/``prange`` and a prefetch.

Imported only by the ``*_kernels`` modules, which
:func:`tp_harness.core.compiled.kernels` loads on first use, so ``import tp_harness`` does not
import numba.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numba

# ``fastmath`` flags for the kernels: reassociation lets LLVM vectorise dot products
# and sums; no "nnan"/"ninf", so -inf/NaN keep their IEEE meaning.
FASTMATH = {"reassoc", "contract"}

prange = numba.prange


def njit(**options: Any) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """``numba.njit(cache=True, **options)``: compiled once, cached beside the module."""
    return numba.njit(cache=True, **options)


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
            idx = [
                context.cast(builder, v, t, types.intp)
                for v, t in zip(args[1:], signature.args[1:], strict=True)
            ]
            ptr = cgutils.get_item_pointer(context, builder, aryty, ary, idx, wraparound=False)
            i8p = ir.IntType(8).as_pointer()
            i32 = ir.IntType(32)
            fnty = ir.FunctionType(ir.VoidType(), [i8p, i32, i32, i32])
            fn = cgutils.get_or_insert_function(builder.module, fnty, "llvm.prefetch.p0")
            # read access, locality 2 (keep in L2), data cache
            builder.call(
                fn,
                [
                    builder.bitcast(ptr, i8p),
                    ir.Constant(i32, 0),
                    ir.Constant(i32, 2),
                    ir.Constant(i32, 1),
                ],
            )
            return context.get_dummy_value()

        return sig, codegen

    return prefetch


prefetch = _make_prefetch()
