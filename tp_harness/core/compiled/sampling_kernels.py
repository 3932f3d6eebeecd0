"""Compiled (numba) CPU kernels of the task sampler, one task per parallel iteration.

They compute exactly what the torch implementation in :mod:`tp_harness.sampling`
computes, from the same counter-based random numbers (SplitMix64 streams, see
``sampling._bits``), but visit by visit with the class sums ``U (q, r)`` of a task in
cache, so a visit costs one ``(q, r)`` matrix-vector product, a ``q``-way draw and one
row update, with no per-visit interpreter overhead. Tasks run in parallel over
numba's threads; each task's result depends only on its own keys.

Conventions: ``z (n, r)`` float32 or float64, C-contiguous, already scaled so that
``z_i · U_c`` is the logit; labels are int64.
"""

from __future__ import annotations

import numpy as np

from .numba_support import FASTMATH, njit, prange, prefetch

_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_S30, _S27, _S31, _S11 = np.uint64(30), np.uint64(27), np.uint64(31), np.uint64(11)
_ONE = np.uint64(1)
_TO_UNIT = 2.0**-53
_AHEAD = 8  # visits between prefetching a row and using it


@njit(inline="always")
def _mix64(z: np.uint64) -> np.uint64:
    """SplitMix64 finaliser (same as ``sampling._mix64``)."""
    z = (z ^ (z >> _S30)) * _M1
    z = (z ^ (z >> _S27)) * _M2
    return z ^ (z >> _S31)


@njit(inline="always")
def _bit(key: np.uint64, counter: int) -> np.uint64:
    """Output ``counter`` of stream ``key`` (``sampling._bits(key, counter, 1)``)."""
    return _mix64(key + (np.uint64(counter) + _ONE) * _GAMMA)


@njit(inline="always")
def _argsort(keys: np.ndarray) -> np.ndarray:
    """``np.argsort(keys, kind="stable")`` for uint64 keys (n,) -> (n,) int64, in O(n).

    A counting sort on the top ``ceil(log2 n)`` bits (about one key per bucket for
    uniformly random keys), then an insertion sort that only has to fix the order
    inside buckets. Both steps are stable, so equal keys keep their index order.
    """
    n = keys.shape[0]
    width = 1
    while (1 << width) < n and width < 22:
        width += 1
    shift = np.uint64(64 - width)
    counts = np.zeros((1 << width) + 1, dtype=np.int64)
    for t in range(n):
        counts[(keys[t] >> shift) + _ONE] += 1
    for b in range(1 << width):
        counts[b + 1] += counts[b]
    sorted_keys = np.empty(n, dtype=np.uint64)
    order = np.empty(n, dtype=np.int64)
    for t in range(n):
        b = keys[t] >> shift
        pos = counts[b]
        counts[b] = pos + 1
        sorted_keys[pos] = keys[t]
        order[pos] = t
    for t in range(1, n):
        key, idx = sorted_keys[t], order[t]
        j = t - 1
        while j >= 0 and sorted_keys[j] > key:
            sorted_keys[j + 1], order[j + 1] = sorted_keys[j], order[j]
            j -= 1
        sorted_keys[j + 1], order[j + 1] = key, idx
    return order


@njit(inline="always")
def _order(key: np.uint64, n: int) -> np.ndarray:
    """Stable ``argsort`` of outputs ``0..n-1`` of ``key``: ``sampling._orders``, one stream."""
    bits = np.empty(n, dtype=np.uint64)
    for t in range(n):
        bits[t] = _bit(key, t)
    return _argsort(bits)


@njit(inline="always")
def _fill_uniforms(key: np.uint64, start: int, out: np.ndarray) -> None:
    """``out[t] = sampling._uniforms(key, start, len(out))[t]``, cast to ``out.dtype``."""
    for t in range(out.shape[0]):
        out[t] = np.float64(_bit(key, start + t) >> _S11) * _TO_UNIT


@njit(inline="always", fastmath=FASTMATH)
def _logits(row: np.ndarray, u_sum: np.ndarray, out: np.ndarray) -> None:
    """``out[c] = row · u_sum[c]``. row (r,), u_sum (q, r), out (q,); two classes per pass."""
    q, r = u_sum.shape
    zero = row[0] - row[0]
    for c in range(0, q - 1, 2):
        a0, a1 = zero, zero
        for k in range(r):
            a0 += row[k] * u_sum[c, k]
            a1 += row[k] * u_sum[c + 1, k]
        out[c], out[c + 1] = a0, a1
    if q % 2:
        a0 = zero
        for k in range(r):
            a0 += row[k] * u_sum[q - 1, k]
        out[q - 1] = a0


@njit(inline="always")
def _prefetch_row(z: np.ndarray, i: int) -> None:
    """Prefetch every cache line of row ``z[i]`` (rows are visited in random order)."""
    for k in range(0, z.shape[1], max(1, 64 // z.itemsize)):
        prefetch(z, i, k)


@njit(inline="always")
def _draw(logits: np.ndarray, cdf: np.ndarray, u: float) -> int:
    """Inverse-CDF draw as ``sampling._draw``: #classes whose cdf is below ``u · total``.

    ``u`` is already in the logits' dtype, so ``u · total <= total`` and the result
    is at most ``q - 1``.
    """
    q = logits.shape[0]
    top = logits[0]
    for c in range(1, q):
        top = max(top, logits[c])
    total = logits[0] - logits[0]
    for c in range(q):
        total += np.exp(logits[c] - top)
        cdf[c] = total
    threshold = u * total
    count = 0
    for c in range(q):
        count += cdf[c] < threshold
    return count


@njit(parallel=True, fastmath=FASTMATH)
def prefix_pass(
    z: np.ndarray, order_keys: np.ndarray, draw_keys: np.ndarray, q: int, labels: np.ndarray
) -> None:
    """Algorithm 1 for ``S`` tasks, in place. z (n, r), keys (S,) uint64, labels (S, n).

    Task ``s`` visits the examples in the order ``argsort(bits(order_keys[s]))`` and
    draws visit ``t`` with uniform ``t`` of ``draw_keys[s]``.
    """
    s_total, n = labels.shape
    r = z.shape[1]
    for s in prange(s_total):
        order = _order(order_keys[s], n)
        u = np.empty(n, dtype=z.dtype)
        _fill_uniforms(draw_keys[s], 0, u)
        u_sum = np.zeros((q, r), dtype=z.dtype)
        logits = np.empty(q, dtype=z.dtype)
        cdf = np.empty(q, dtype=z.dtype)
        for t in range(min(_AHEAD, n)):
            _prefetch_row(z, order[t])
        for t in range(n):
            if t + _AHEAD < n:
                _prefetch_row(z, order[t + _AHEAD])
            i = order[t]
            _logits(z[i], u_sum, logits)
            c = _draw(logits, cdf, u[t])
            labels[s, i] = c
            for k in range(r):
                u_sum[c, k] += z[i, k]


@njit(parallel=True, fastmath=FASTMATH)
def _label_sums(z: np.ndarray, labels: np.ndarray, q: int) -> np.ndarray:
    """``U[s, c] = Σ_{i: labels[s, i] = c} z_i``: z (n, r), labels (S, n) -> (S, q, r)."""
    u_sum = np.zeros((labels.shape[0], q, z.shape[1]), dtype=z.dtype)
    for s in prange(labels.shape[0]):
        for i in range(labels.shape[1]):
            for k in range(z.shape[1]):
                u_sum[s, labels[s, i], k] += z[i, k]
    return u_sum


@njit(parallel=True, fastmath=FASTMATH)
def _row_norms(z: np.ndarray) -> np.ndarray:
    """``|z_i|²`` per row: (n, r) -> (n,)."""
    norms = np.empty(z.shape[0], dtype=z.dtype)
    for i in prange(z.shape[0]):
        norms[i] = z[i, 0] - z[i, 0]
        for k in range(z.shape[1]):
            norms[i] += z[i, k] * z[i, k]
    return norms


@njit(inline="always", fastmath=FASTMATH)
def _sweep_task(
    in_order: np.ndarray,
    own: np.ndarray,
    scan: np.ndarray,
    u: np.ndarray,
    labels: np.ndarray,
    u_sum: np.ndarray,
) -> None:
    """One heat-bath sweep of one task: visit ``t`` updates site ``scan[t]`` with
    uniform ``u[t]``; labels (n,) and class sums u_sum (q, r) updated in place."""
    q = u_sum.shape[0]
    logits = np.empty(q, dtype=in_order.dtype)
    cdf = np.empty(q, dtype=in_order.dtype)
    for t in range(scan.shape[0]):
        i = scan[t]
        old = labels[i]
        _logits(in_order[t], u_sum, logits)
        logits[old] -= own[t]
        c = _draw(logits, cdf, u[t])
        if c != old:
            labels[i] = c
            for k in range(in_order.shape[1]):
                u_sum[old, k] -= in_order[t, k]
                u_sum[c, k] += in_order[t, k]


@njit(parallel=True, fastmath=FASTMATH)
def gibbs_sweeps(
    z: np.ndarray, labels: np.ndarray, draw_keys: np.ndarray, scans: np.ndarray, q: int
) -> None:
    """Heat-bath sweeps on the Potts measure for ``S`` tasks, in place.

    z (n, r) scaled so that ``z_i · z_j = 2 K_ij / T``; labels (S, n); draw_keys (S,);
    scans (sweeps, n): the site order of each sweep, shared by all tasks. Site ``i``
    draws from ``∝ exp(z_i · U_c - [y_i = c] |z_i|²)`` with ``U_c = Σ_j z_j [y_j = c]``;
    sweep ``k``, visit ``t`` uses uniform ``k·n + t`` of ``draw_keys[s]``. Each sweep
    first copies ``z`` into its scan order, so every task reads it sequentially.
    """
    s_total, n = labels.shape
    u_sum = _label_sums(z, labels, q)
    norms = _row_norms(z)  # |z_i|², each site's own term
    in_order = np.empty_like(z)
    own = np.empty(n, dtype=z.dtype)
    for sweep in range(scans.shape[0]):
        scan = scans[sweep]
        for t in prange(n):
            own[t] = norms[scan[t]]
            for k in range(z.shape[1]):
                in_order[t, k] = z[scan[t], k]
        for s in prange(s_total):
            u = np.empty(n, dtype=z.dtype)
            _fill_uniforms(draw_keys[s], sweep * n, u)
            _sweep_task(in_order, own, scan, u, labels[s], u_sum[s])


@njit(parallel=True)
def uniforms(keys: np.ndarray, start: int, count: int) -> np.ndarray:
    """``sampling._uniforms`` computed in parallel. keys (S,) -> (S, count) float64."""
    out = np.empty((keys.shape[0], count), dtype=np.float64)
    for s in prange(keys.shape[0]):
        _fill_uniforms(keys[s], start, out[s])
    return out


@njit(parallel=True)
def orders(keys: np.ndarray, n: int) -> np.ndarray:
    """``sampling._orders`` computed in parallel. keys (S,) -> (S, n) int64."""
    out = np.empty((keys.shape[0], n), dtype=np.int64)
    for s in prange(keys.shape[0]):
        out[s] = _order(keys[s], n)
    return out
