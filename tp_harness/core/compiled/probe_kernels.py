"""Compiled (numba) CPU kernels of the batched probes.

* :func:`class_sums`: per task and class, the sum of the rows with that label, in a
  pass over the rows per block of tasks, adding each row once per *group* of tasks
  (to its joint class); no one-hot matrix: about ``S·n·d / G`` adds instead of the
  ``S·q·n·d`` multiply-adds of a one-hot product.
* :func:`argmax_checked`: the argmax over classes of float32 scores, with each
  decision either certified by a rounding-error bound or recomputed in float64, so
  the labels equal those of the float64 computation.
"""

from __future__ import annotations

import numpy as np

from .numba_support import FASTMATH, njit, prange

_ACC_BYTES = 3 << 20  # sums of one block of tasks (L3 resident; 2-4 MiB measured best)
_MAX_JOINT = 128  # largest number of joint classes of a group of tasks


def plan_groups(q: int, p: int, itemsize: int, num_tasks: int, workers: int) -> tuple[int, int]:
    """(G, B): tasks per group and groups per block for :func:`class_sums`.

    A group of ``G`` tasks has ``q^G <= 128`` joint classes, so one pass adds each row
    to one joint sum instead of ``G`` class sums; a block of ``B`` groups shares one
    pass over the rows, its ``B·q^G·p`` sums kept within about 3 MiB. Given
    ``num_tasks`` and ``workers`` (blocks go round-robin to the workers), ``B`` is the
    largest size, down to half that bound, that gives the busiest worker the fewest
    groups: 128 groups on 2 workers take 16 blocks of 8, not 13 of 10 (7 of them on
    one worker).
    """
    g = 1
    while q ** (g + 1) <= _MAX_JOINT and g < 16:
        g += 1
    b = min(max(1, _ACC_BYTES // (q**g * p * itemsize)), 64)
    groups = max(1, -(-num_tasks // g))  # one worker: every size ties, the largest wins
    return g, min(
        range(max(1, b // 2), b + 1), key=lambda size: (_busiest(groups, size, workers), -size)
    )


def _busiest(groups: int, size: int, workers: int) -> int:
    """Groups on the busiest worker when blocks of ``size`` go round-robin."""
    blocks = -(-groups // size)
    sizes = [min(size, groups - i * size) for i in range(blocks)]
    return max(sum(sizes[w::workers]) for w in range(workers))


@njit(inline="always", fastmath=FASTMATH)
def _add_row(acc: np.ndarray, offset: int, j: int, row: np.ndarray) -> None:
    """``acc[offset + j] += row`` unless ``j`` marks a bad label (-1)."""
    if j >= 0:
        target = acc[offset + j]
        for k in range(row.shape[0]):
            target[k] += row[k]


@njit(inline="always")
def _joint_labels(
    labels: np.ndarray, s0: int, s1: int, group: int, q: int, joint: np.ndarray
) -> int:
    """``joint[i, g]``: row i's joint class in group g of tasks s0..s1-1 (-1: bad label).

    Returns how many (row, group) pairs hold a label outside ``0..q-1``.
    """
    bad = 0
    joint[:] = 0
    for g in range((s1 - s0 + group - 1) // group):
        for s in range(s0 + g * group, min(s1, s0 + (g + 1) * group)):
            for i in range(labels.shape[1]):
                c = labels[s, i]
                if joint[i, g] >= 0 and 0 <= c < q:
                    joint[i, g] = joint[i, g] * q + c
                elif joint[i, g] >= 0:
                    joint[i, g] = -1
                    bad += 1
    return bad


@njit(inline="always", fastmath=FASTMATH)
def _accumulate(m: np.ndarray, joint: np.ndarray, ng: int, joint_q: int, acc: np.ndarray) -> None:
    """``acc[g·q^G + joint[i, g]] += m[i]`` for all rows and groups, two groups a pass."""
    acc[: ng * joint_q] = 0
    for i in range(m.shape[0]):
        row = m[i]
        for g in range(0, ng - 1, 2):
            j1, j2 = joint[i, g], joint[i, g + 1]
            if j1 >= 0 and j2 >= 0:
                t1 = acc[g * joint_q + j1]
                t2 = acc[(g + 1) * joint_q + j2]
                for k in range(row.shape[0]):
                    t1[k] += row[k]
                    t2[k] += row[k]
            else:
                _add_row(acc, g * joint_q, j1, row)
                _add_row(acc, (g + 1) * joint_q, j2, row)
        if ng % 2:
            _add_row(acc, (ng - 1) * joint_q, joint[i, ng - 1], row)


@njit(inline="always", fastmath=FASTMATH)
def _marginals(
    acc: np.ndarray, s0: int, s1: int, group: int, q: int, joint_q: int, out: np.ndarray
) -> None:
    """Each task's class sums as sums of its group's joint sums, into ``out``."""
    for g in range((s1 - s0 + group - 1) // group):
        first = s0 + g * group
        size = min(s1, first + group) - first
        for t in range(size):
            dst = out[(first + t) * q : (first + t + 1) * q]
            dst[:] = 0
            div = q ** (size - 1 - t)
            for j in range(q**size):
                src = acc[g * joint_q + j]
                c = (j // div) % q
                for k in range(src.shape[0]):
                    dst[c, k] += src[k]


@njit(parallel=True, fastmath=FASTMATH)
def class_sums(
    m: np.ndarray,
    labels: np.ndarray,
    q: int,
    group: int,
    groups: int,
    workers: int,
    out: np.ndarray,
) -> int:
    """``out[s·q + c] = Σ_{i: labels[s, i] = c} m[i]``. m (n, p), labels (S, n), out (S·q, p).

    Tasks are taken ``group`` at a time: row ``i`` is added once, to the sum of its
    joint class ``(y_s1, ..., y_sG)`` (``q^G`` of them), and each task's class sums are
    then sums of joint sums. ``groups`` groups form a block that shares one pass over
    the rows of ``m``; ``workers`` parallel workers each take every ``workers``-th block
    with one reused workspace. Returns the number of labels outside ``0..q-1`` (such
    rows are skipped; the caller raises).
    """
    s_total, n = labels.shape
    per_block = group * groups
    blocks = (s_total + per_block - 1) // per_block
    joint_q = q**group
    workers = max(1, min(blocks, workers))
    bad = np.zeros(workers, dtype=np.int64)
    for w in prange(workers):
        joint = np.empty((n, groups), dtype=np.int64)
        acc = np.empty((groups * joint_q, m.shape[1]), dtype=out.dtype)
        for blk in range(w, blocks, workers):
            s0 = blk * per_block
            s1 = min(s_total, s0 + per_block)
            bad[w] += _joint_labels(labels, s0, s1, group, q, joint)
            _accumulate(m, joint, (s1 - s0 + group - 1) // group, joint_q, acc)
            _marginals(acc, s0, s1, group, q, joint_q, out)
    return int(bad.sum())


@njit(parallel=True, fastmath=FASTMATH)
def argmax_checked(
    products: np.ndarray,
    bias: np.ndarray,
    q: int,
    slack: np.ndarray,
    slack_task: np.ndarray,
    x: np.ndarray,
    coef: np.ndarray,
    intercept: np.ndarray,
    row0: int,
    out: np.ndarray,
) -> int:
    """Argmax over classes per (example, task), float64-exact. Returns how many were redone.

    Scores are ``products + bias`` in float32: products (m', S·q) for examples
    ``row0 .. row0+m'-1``, column ``s·q + c``, bias (S·q,).
    ``slack[i] * slack_task[s]`` bounds twice the float32 rounding error of example
    ``i``'s scores in task ``s``. A decision whose top-two gap exceeds it is the exact
    argmax; otherwise the scores are recomputed in float64 as
    ``x[i] · coef[s, c] + intercept[s, c]`` (x (m, d), coef (S, q, d), intercept (S, q)
    float64). Ties go to the smallest class, as in ``torch.argmax``. out (S, m) int64.
    """
    rows = products.shape[0]
    s_total = out.shape[0]
    redone = np.zeros(rows, dtype=np.int64)
    for r in prange(rows):
        i = row0 + r
        for s in range(s_total):
            base = s * q
            best = products[r, base] + bias[base]
            second = -np.inf
            arg = 0
            for c in range(1, q):  # branch-free top two: the first maximum wins ties
                v = products[r, base + c] + bias[base + c]
                second = max(second, min(best, v))
                arg = c if v > best else arg
                best = max(best, v)
            if not best - second > slack[i] * slack_task[s]:
                redone[r] += 1
                best64 = -np.inf
                for c in range(q):
                    acc = intercept[s, c]
                    for k in range(x.shape[1]):
                        acc += x[i, k] * coef[s, c, k]
                    if acc > best64:
                        best64 = acc
                        arg = c
            out[s, i] = arg
    return int(redone.sum())


_MEAN_BLOCK = 64  # rows summed in order before a block sum joins the total


@njit(parallel=True, fastmath=FASTMATH)
def gather_centered(x: np.ndarray, rows: np.ndarray, out: np.ndarray, workers: int) -> np.ndarray:
    """``out[i] = x[rows[i]] - μ`` in float64, μ the mean of those rows. Returns μ (d,).

    x (n, d) float32/float64, rows (m,) int64, out (m, d) float64. μ is summed in
    blocks of 64 rows (each block in row order, the blocks of a worker in order, the
    workers' sums in order): rounding error about ``(64 + m / 64) ε`` relative.
    """
    m, d = rows.shape[0], x.shape[1]
    blocks = (m + _MEAN_BLOCK - 1) // _MEAN_BLOCK
    workers = max(1, min(workers, blocks))
    partial = np.zeros((workers, d), dtype=np.float64)
    for w in prange(workers):
        block = np.empty(d, dtype=np.float64)
        for b in range(w * blocks // workers, (w + 1) * blocks // workers):
            block[:] = 0.0
            for i in range(b * _MEAN_BLOCK, min(m, (b + 1) * _MEAN_BLOCK)):
                src = x[rows[i]]
                for k in range(d):
                    block[k] += src[k]
            for k in range(d):
                partial[w, k] += block[k]
    mean = np.zeros(d, dtype=np.float64)
    for w in range(workers):
        for k in range(d):
            mean[k] += partial[w, k]
    mean /= max(m, 1)
    for i in prange(m):
        src = x[rows[i]]
        for k in range(d):
            out[i, k] = src[k] - mean[k]
    return mean
