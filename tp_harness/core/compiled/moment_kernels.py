"""Compiled (numba) CPU epilogue of the moment tiles.

:func:`tile_epilogue_fused` consumes one float32 tile of the prior kernel ``K (b, c)``
and the model tiles ``M (m, b, c)`` once for all temperatures and models: per row of the
tile and per temperature it computes ``s = s(K/T)`` and ``s · s(-K/T)`` into row buffers
that stay in L1 (one vectorised ``exp`` per entry, :func:`_exp_neg`), then adds ``M s``
and ``M² s s(-K/T)`` of every model into float64 accumulators per (row, column segment).
:func:`tile_epilogue` is the same pass for sigmoids computed by the caller (float64
tiles). The torch path makes several passes over ``(m, b, c)`` temporaries per
temperature instead. Rows are split over threads; results are summed per row and then
per row segment, so they do not depend on the thread count.
"""

from __future__ import annotations

import numpy as np

from .numba_support import FASTMATH, njit, prange

# exp(a) for a <= 0 in float32: Cody-Waite reduction a = n ln2 + f, |f| <= ln2/2, Cephes'
# expf polynomial on f (about 1 ulp), 2^n from the exponent bits.
_LOG2E = np.float32(1.4426950408889634)
_LN2_HI = np.float32(0.693359375)
_LN2_LO = np.float32(-2.12194440e-4)
#: below this exp(a) is set to 0 (float32's smallest normal is exp(-87.34))
_EXP_MIN = np.float32(-87.0)


@njit(fastmath=FASTMATH, error_model="numpy", inline="always")
def _expm_poly(f):  # type: ignore[no-untyped-def]
    """exp(f) for |f| <= ln2/2 (float32)."""
    p = np.float32(1.9875691500e-4)
    p = p * f + np.float32(1.3981999507e-3)
    p = p * f + np.float32(8.3334519073e-3)
    p = p * f + np.float32(4.1665795894e-2)
    p = p * f + np.float32(1.6666665459e-1)
    p = p * f + np.float32(5.0000001201e-1)
    return p * (f * f) + f + np.float32(1.0)


@njit(fastmath=FASTMATH, error_model="numpy", inline="always")
def _sigmoid_row(krow, it, s, v, poly, bits):  # type: ignore[no-untyped-def]
    """``s = s(x)``, ``v = s(x) s(-x)`` for ``x = krow · it`` (float32 rows, one exp each).

    With ``e = exp(-|x|)`` and ``d = 1 / (1 + e)``: ``s(|x|) = d``, ``s(-|x|) = e d`` and
    ``s(x) s(-x) = e d²``, all without cancellation. Two loops that LLVM vectorises
    (``error_model="numpy"``: no zero-division branch); ``bits`` is int32 scratch whose
    float32 view holds ``2^n``.
    """
    scale = bits.view(np.float32)
    for j in range(krow.shape[0]):
        a = max(-abs(krow[j] * it), _EXP_MIN)
        n = np.floor(a * _LOG2E + np.float32(0.5))
        f = a - n * _LN2_HI - n * _LN2_LO
        poly[j] = _expm_poly(f)
        bits[j] = (np.int32(n) + np.int32(127)) << 23
    for j in range(krow.shape[0]):
        x = krow[j] * it
        # exp(-|x|), exactly 0 below _EXP_MIN (and for |x| = inf)
        e = poly[j] * scale[j] * np.float32(-abs(x) > _EXP_MIN)
        d = np.float32(1.0) / (np.float32(1.0) + e)
        s[j] = max(e, np.float32(x >= np.float32(0.0))) * d  # d for x >= 0, e d below
        v[j] = e * d * d


@njit(fastmath=FASTMATH, error_model="numpy", inline="always")
def _row_sums(mrow, srow, vrow, col_bounds, acc, i, mm, ti):  # type: ignore[no-untyped-def]
    """``Σ M s`` and ``Σ M² v`` of one model row per column segment, float64."""
    for cs in range(col_bounds.shape[0] - 1):
        # 1-D contiguous slices: LLVM vectorises the two reductions (about 6x faster than
        # indexing the 3-D arrays in the loop, measured)
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


@njit(parallel=True, fastmath=FASTMATH, error_model="numpy")
def _rows_epilogue_fused(k, inv_t, ms, col_bounds):  # type: ignore[no-untyped-def]
    b, c = k.shape
    nt = inv_t.shape[0]
    m = ms.shape[0]
    acc = np.zeros((b, m, nt, 2, col_bounds.shape[0] - 1), dtype=np.float64)
    for i in prange(b):
        s = np.empty(c, dtype=np.float32)
        v = np.empty(c, dtype=np.float32)
        poly = np.empty(c, dtype=np.float32)
        bits = np.empty(c, dtype=np.int32)
        for ti in range(nt):
            _sigmoid_row(k[i], inv_t[ti], s, v, poly, bits)
            for mm in range(m):
                _row_sums(ms[mm, i], s, v, col_bounds, acc, i, mm, ti)
    return acc


@njit(parallel=True, fastmath=FASTMATH)
def _rows_epilogue(sig, var, ms, col_bounds):  # type: ignore[no-untyped-def]
    nt, b, _ = sig.shape
    m = ms.shape[0]
    acc = np.zeros((b, m, nt, 2, col_bounds.shape[0] - 1), dtype=np.float64)
    for i in prange(b):
        for ti in range(nt):
            for mm in range(m):
                _row_sums(ms[mm, i], sig[ti, i], var[ti, i], col_bounds, acc, i, mm, ti)
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


def _col_bounds(col_seg: np.ndarray, n_cseg: int) -> np.ndarray:
    """``(n_cseg + 1,)`` int64 first column of each segment (and the end)."""
    return np.searchsorted(col_seg, np.arange(n_cseg + 1), side="left").astype(np.int64)


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
    acc = _rows_epilogue(sig, var, ms, _col_bounds(col_seg, n_cseg))
    return np.asarray(_reduce_rows(acc, row_seg, n_rseg))


def tile_epilogue_fused(
    k: np.ndarray,
    inv_t: np.ndarray,
    ms: np.ndarray,
    row_seg: np.ndarray,
    col_seg: np.ndarray,
    n_rseg: int,
    n_cseg: int,
) -> np.ndarray:
    """:func:`tile_epilogue` with the sigmoids computed in the pass: ``k (b, c)`` float32
    prior tile, ``inv_t (t,)`` float32 inverse temperatures (``x = k · inv_t[t]`` in
    float32, as torch's ``k * inv_t[t]``), ``ms (m, b, c)`` float32 model tiles, all
    C-contiguous. Returns ``(m, t, 2, n_rseg, n_cseg)`` float64."""
    acc = _rows_epilogue_fused(k, inv_t, ms, _col_bounds(col_seg, n_cseg))
    return np.asarray(_reduce_rows(acc, row_seg, n_rseg))
