"""A threaded SYRK on the host BLAS (numpy's): the CPU Gram of the ridge probes and the
float64 Gram behind a factor kernel's Frobenius norm.

Torch has no SYRK: its ``m.T @ m`` is a full GEMM. numpy's ``a.T @ a`` is a BLAS SYRK
(half the multiply-adds, the upper triangle copied down, so exactly symmetric), and
on the 2-core AMD machine of ``benchmarks/`` OpenBLAS's SYRK takes 18-21 ms for
(7500, 384) float64 where torch's MKL takes 28-34 ms for :func:`tp_harness._ridge._gram`.

numpy's BLAS must not run its own thread pool here: OpenBLAS's idle workers spin
(``sched_yield``) for about 0.1 s after each call, and the numba and torch kernels
that follow on the same cores run up to 1.7x slower (measured: the class sums take
105-125 ms right after a threaded SYRK, 63-71 ms otherwise). So the rows are cut into
one block per torch thread, each block's SYRK runs on single-threaded BLAS (a
``threadpoolctl`` limit for the duration of the call) in a worker thread (numpy
releases the GIL), and the block Grams are added in block order.
"""

from __future__ import annotations

import functools
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from itertools import pairwise
from typing import Any

import numpy as np

_LOCK = threading.Lock()  # one limit at a time: threadpoolctl's limits are process-wide


@functools.cache
def _controller() -> Any | None:
    """threadpoolctl's controller of the BLAS libraries numpy has loaded, or None when
    it finds none it can limit (imported on first use: it scans the loaded libraries)."""
    from threadpoolctl import ThreadpoolController

    blas = ThreadpoolController().select(user_api="blas")
    return blas if blas.lib_controllers else None


@functools.cache
def _pool(workers: int, pid: int) -> ThreadPoolExecutor:
    """Worker threads, per process: a forked child gets its own (the parent's threads
    do not exist there)."""
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="tp-harness-syrk")


def available() -> bool:
    """True when numpy's BLAS can be held to one thread (so :func:`syrk` can run)."""
    return _controller() is not None


def _limiter() -> Any:
    """:func:`_controller`, or ``RuntimeError`` when there is none (:func:`available`)."""
    ctl = _controller()
    if ctl is None:
        raise RuntimeError(
            "threadpoolctl finds no BLAS of numpy's that it can limit to "
            "one thread; use torch for the Gram."
        )
    return ctl


def _block_gram(m: np.ndarray, lo: int, hi: int) -> np.ndarray:
    block = np.ascontiguousarray(m[lo:hi])  # a SYRK needs one buffer for both operands
    return block.T @ block


def syrk(m: np.ndarray, workers: int) -> np.ndarray:
    """``mᵀ m`` (p, p) for m (n, p) float32/float64, exactly symmetric.

    ``workers`` row blocks (``np.array_split`` sizes), one single-threaded SYRK each in
    parallel, summed in block order; the result depends on ``workers`` only through
    rounding. Raises ``RuntimeError`` when :func:`available` is False.
    """
    ctl = _limiter()
    n = m.shape[0]
    parts = max(1, min(int(workers), n))
    edges = [n * k // parts for k in range(parts + 1)]
    with _LOCK, ctl.limit(limits=1):
        if parts == 1:
            return _block_gram(m, 0, n)
        pool = _pool(parts, os.getpid())
        grams = list(pool.map(_block_gram, [m] * parts, edges[:-1], edges[1:]))
    out = grams[0]
    for g in grams[1:]:
        out += g
    return out


#: rows per float64 block of :func:`gram64` (a fixed split: the sum does not depend on
#: the number of workers)
GRAM64_ROWS = 4096


def _block_gram64(m: np.ndarray, lo: int, hi: int) -> np.ndarray:
    block = m[lo:hi].astype(np.float64)  # a contiguous float64 copy of this block only
    return block.T @ block


def gram64(m: np.ndarray, workers: int) -> np.ndarray:
    """``mᵀ m`` (p, p) in float64 for m (n, p) float32/float64, exactly symmetric.

    Blocks of :data:`GRAM64_ROWS` rows are cast to float64 one at a time (no float64 copy
    of ``m``), each block's SYRK runs on single-threaded BLAS in one of ``workers``
    threads, and the block Grams are added in block order, so the result does not depend
    on ``workers``. At most ``2 * workers`` block Grams are held at once. Raises
    ``RuntimeError`` when :func:`available` is False.
    """
    ctl = _limiter()
    n, p = m.shape
    edges = [*range(0, n, GRAM64_ROWS), n]
    spans = list(pairwise(edges))
    out = np.zeros((p, p))
    workers = max(1, min(int(workers), len(spans)))
    with _LOCK, ctl.limit(limits=1):
        if workers == 1:
            for lo, hi in spans:
                out += _block_gram64(m, lo, hi)
            return out
        pool = _pool(workers, os.getpid())
        window = 2 * workers
        pending = [pool.submit(_block_gram64, m, lo, hi) for lo, hi in spans[:window]]
        for k in range(len(spans)):
            out += pending[k].result()
            pending[k] = None  # type: ignore[call-overload]
            if k + window < len(spans):
                pending.append(pool.submit(_block_gram64, m, *spans[k + window]))
    return out
