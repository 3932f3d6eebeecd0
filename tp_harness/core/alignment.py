"""The alignment ``Tr(M G)`` of concrete sampled tasks, next to its closed-form moments.

For a task ``y`` with one-hot ``Y (n, q)`` the label graph is ``G = Y Yᵀ`` (diagonal
included, as in the closed form), so with a factor ``M = Z Zᵀ``::

    Tr(M G) = Tr(Zᵀ Y Yᵀ Z) = ||Zᵀ Y||_F² = Σ_c ||Σ_{i: y_i = c} z_i||²

All tasks at once: one ``(r, n) @ (n, S·(q-1))`` product of ``Z`` with the stacked
one-hot labels of classes ``0..q-2`` (in chunks of tasks), float64; the last class's sum
is the total minus the others. The closed form describes *independent* Bernoulli
edges; sampled tasks are one-hot labelings from the Potts measure (Algorithm 1, plus any
Gibbs sweeps), so the two distributions differ: their mean and std per model are
compared in every run (``docs/uncertainty.md``).
"""

from __future__ import annotations

import torch

from .checks import ArrayLike
from .kernels import Kernel, build_kernel
from .probes import as_tasks

_CHUNK_ENTRIES = 1 << 24  # one-hot entries per chunk (128 MiB of float64)


def sampled_task_alignment(
    features: ArrayLike,
    tasks: ArrayLike,
    *,
    kernel: str = "centered_cosine",
    normalize: str | None = None,
) -> torch.Tensor:
    """Per-pair alignment ``Tr(M G_s) / n²`` of every task: features (n, d), tasks (S, n)
    integer labels -> (S,) float64. ``kernel`` and ``normalize`` build ``M`` exactly as
    :func:`~tp_harness.task_prior_moments` does. A degenerate ``M`` gives NaN."""
    k = build_kernel(features, kernel, name="features", normalize=normalize)
    return kernel_task_alignment(k, tasks)


def kernel_task_alignment(k: Kernel, tasks: ArrayLike) -> torch.Tensor:
    """:func:`sampled_task_alignment` of a built factor :class:`Kernel` ``M`` (n x n):
    tasks (S, n) -> (S,) float64, so one kernel serves several task sets.

    Only classes ``0..q-2`` go through the product; the last class's sum is the total
    ``Σ_i z_i`` minus the others (float64), ``1/q`` fewer multiply-adds.
    """
    if not isinstance(k, Kernel):
        raise TypeError(
            f"kernel_task_alignment takes a Kernel (tp_harness.core.kernels.build_kernel); "
            f"got {type(k).__name__}. For raw features use sampled_task_alignment."
        )
    t, q = as_tasks(tasks, k.n)
    s, n = t.shape
    if k.degenerate:
        return torch.full((s,), float("nan"), dtype=torch.float64)
    if k.factor is None:
        raise ValueError("sampled_task_alignment needs a factor kernel (not 'precomputed').")
    z = k.factor.double().cpu()
    total = z.sum(dim=0)  # (r,)
    if q == 1:  # one class: its sum is the total, for every task
        return torch.full((s,), float((total**2).sum()) / float(n) ** 2, dtype=torch.float64)
    out = torch.empty(s, dtype=torch.float64)
    per = max(1, _CHUNK_ENTRIES // max(1, n * max(1, q - 1)))
    for a in range(0, s, per):
        block = t[a : a + per].cpu()  # (b, n)
        b = block.shape[0]
        onehot = torch.zeros(n, b * (q - 1), dtype=torch.float64)
        task, row = (block < q - 1).nonzero(as_tuple=True)  # entries of classes 0..q-2
        onehot[row, block[task, row] + (q - 1) * task] = 1.0
        sums = (z.T @ onehot).reshape(-1, b, q - 1)  # (r, b, q-1): class sums of the factor
        last = total[:, None] - sums.sum(dim=2)  # (r, b): the last class's sum
        out[a : a + b] = (sums**2).sum(dim=(0, 2)) + (last**2).sum(dim=0)
    return out / float(n) ** 2


__all__ = ["kernel_task_alignment", "sampled_task_alignment"]
