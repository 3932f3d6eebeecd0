"""Compiled (numba) CPU epilogue of the moment tiles.

:func:`tile_epilogue` consumes one tile of the prior kernel ``K (b, c)`` and the model
tiles ``M (m, b, c)`` once for all temperatures and models: per row of the tile and per
temperature it computes ``s = s(K/T)`` and ``s · s(-K/T)`` with one ``exp`` per entry (in
float64), then adds ``M s`` and ``M² s s(-K/T)`` of every model into float64 accumulators
per (row, column segment). The torch path makes several passes over ``(m, b, c)``
temporaries per temperature instead. Rows are split over threads; results are summed per
row and then per row segment, so they do not depend on the thread count.
"""

from __future__ import annotations

import numpy as np

from .numba_support import FASTMATH, njit, prange


@njit(parallel=True, fastmath=FASTMATH)
def _rows_epilogue(sig, var, ms, col_bounds):  # type: ignore[no-untyped-def]
    nt, b, _ = sig.shape
    m = ms.shape[0]
    n_cseg = col_bounds.shape[0] - 1
    acc = np.zeros((b, m, nt, 2, n_cseg), dtype=np.float64)
    for i in prange(b):
        for ti in range(nt):
            srow, vrow = sig[ti, i], var[ti, i]
            for mm in range(m):
                mrow = ms[mm, i]
                for cs in range(n_cseg):
                    # 1-D contiguous slices: LLVM vectorises the two reductions (about 6x
                    # faster than indexing the 3-D arrays in the loop, measured)
                    j0, j1 = col_bounds[cs], col_bounds[cs + 1]
                    mr, sr, vr = mrow[j0:j1], srow[j0:j1], vrow[j0:j1]
                    a0 = 0.0
                    a1 = 0.0
                    for j in range(mr.shape[0]):
                        mv = np.float64(mr[j])
                        a0 += mv * np.float64(sr[j])
                        a1 += mv * mv * np.float64(vr[j])
                    acc[i, mm, ti, 0, cs] = a0
                    acc[i, mm, ti, 1, cs] = a1
    return acc


@njit(parallel=False)
def _reduce_rows(acc, row_seg, n_rseg):  # type: ignore[no-untyped-def]
    b, m, nt, two, n_cseg = acc.shape
    out = np.zeros((m, nt, two, n_rseg, n_cseg), dtype=np.float64)
    for i in range(b):
        r = row_seg[i]
        for mm in range(m):
            for ti in range(nt):
                for q in range(two):
                    for cs in range(n_cseg):
                        out[mm, ti, q, r, cs] += acc[i, mm, ti, q, cs]
    return out


def tile_epilogue(
    sig: np.ndarray,
    var: np.ndarray,
    ms: np.ndarray,
    row_seg: np.ndarray,
    col_seg: np.ndarray,
    n_rseg: int,
    n_cseg: int,
) -> np.ndarray:
    """Sums of one tile per (row segment, column segment).

    ``sig (t, b, c)`` = ``s(K/T)`` and ``var (t, b, c)`` = ``s(K/T) s(-K/T)`` per
    temperature (computed by the caller with torch's vectorised sigmoid), ``ms (m, b, c)``
    the model tiles, all float32 or float64 and C-contiguous; ``row_seg (b,)`` /
    ``col_seg (c,)`` int64 segment of each row / column (non-decreasing: segments are
    contiguous ranges). Returns ``(m, t, 2, n_rseg, n_cseg)`` float64: ``Σ M s`` and
    ``Σ M² s s(-x)``.
    """
    bounds = np.searchsorted(col_seg, np.arange(n_cseg + 1), side="left").astype(np.int64)
    acc = _rows_epilogue(sig, var, ms, bounds)
    return np.asarray(_reduce_rows(acc, row_seg, n_rseg))
