"""Compiled (numba) CPU build of the ``centered_cosine`` factor in two passes over ``x``.

:func:`centered_cosine_factor` computes what :func:`tp_harness.core.kernels.centered_cosine`
computes (rows divided by their float64 norm, the float64 column means subtracted, the
result cast to ``x``'s dtype) together with the two Frobenius norms of the degeneracy
check (:func:`tp_harness.core.kernels.rows_identical`), without the float64 copies of
``x`` the torch path makes: pass 1 takes the row norms and the column sums of the
normalised rows, pass 2 writes the centered rows. Each float64 entry is computed as in
the torch path; only the order of the additions in the norms and the column means
differs. Reductions are taken per chunk of :data:`CHUNK` rows and then added in chunk
order, so results do not depend on the thread count.
"""

from __future__ import annotations

import numpy as np

from .numba_support import FASTMATH, njit, prange

#: rows per partial sum (a fixed split, so the sums do not depend on the thread count)
CHUNK = 2048
#: the torch path's ``clamp_min`` on the row norms: zero rows stay zero
_EPS = 1e-12


@njit(parallel=True, fastmath=FASTMATH, error_model="numpy")
def centered_cosine_factor(x: np.ndarray, out: np.ndarray) -> tuple[float, float]:
    """Write the centered-cosine factor of ``x (n, d)`` into ``out (n, d)`` (``x``'s dtype).

    Returns ``(||Z||_F, ||Z - mean(Z)||_F)`` in float64, ``Z`` the row-normalised
    float64 rows: the scale and the spread of the degeneracy check.
    """
    n, d = x.shape
    chunks = (n + CHUNK - 1) // CHUNK
    norms = np.empty(n)
    col_sums = np.zeros((chunks, d))
    row_sq = np.zeros(chunks)
    for c in prange(chunks):
        acc = col_sums[c]
        sq = 0.0
        for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            row = x[i]
            ss = 0.0
            for j in range(d):
                v = np.float64(row[j])
                ss += v * v
            nrm = max(np.sqrt(ss), _EPS)
            norms[i] = nrm
            for j in range(d):
                z = np.float64(row[j]) / nrm
                acc[j] += z
                sq += z * z
        row_sq[c] = sq
    mean = np.zeros(d)
    for c in range(chunks):
        for j in range(d):
            mean[j] += col_sums[c, j]
    for j in range(d):
        mean[j] /= n
    spread_sq = np.zeros(chunks)
    for c in prange(chunks):
        sq = 0.0
        for i in range(c * CHUNK, min(n, (c + 1) * CHUNK)):
            row = x[i]
            o = out[i]
            nrm = norms[i]
            for j in range(d):
                z = np.float64(row[j]) / nrm - mean[j]
                o[j] = z
                sq += z * z
        spread_sq[c] = sq
    scale, spread = 0.0, 0.0
    for c in range(chunks):
        scale += row_sq[c]
        spread += spread_sq[c]
    return np.sqrt(scale), np.sqrt(spread)
