"""The alignment ``Tr(M G)`` of concrete sampled tasks, next to its closed-form moments.

For a task ``y`` with one-hot ``Y (n, q)`` the label graph is ``G = Y Yᵀ`` (diagonal
included, as in the closed form), so with a factor ``M = Z Zᵀ``::

    Tr(M G) = Tr(Zᵀ Y Yᵀ Z) = ||Zᵀ Y||_F² = Σ_c ||Σ_{i: y_i = c} z_i||²

All tasks at once: one ``(r, n) @ (n, S·q)`` product of ``Z`` with the stacked one-hot
labels (in chunks of tasks), float64. The closed form describes *independent* Bernoulli
edges; sampled tasks are one-hot labelings from the Potts measure (Algorithm 1, plus any
Gibbs sweeps), so the two distributions differ: their mean and std per model are
compared in every run (``docs/uncertainty.md``).
"""

from __future__ import annotations

import torch

from .checks import ArrayLike
from .kernels import build_kernel
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
    t, q = as_tasks(tasks, k.n)
    s, n = t.shape
    if k.degenerate:
        return torch.full((s,), float("nan"), dtype=torch.float64)
    if k.factor is None:
        raise ValueError("sampled_task_alignment needs a factor kernel (not 'precomputed').")
    z = k.factor.double().cpu()
    out = torch.empty(s, dtype=torch.float64)
    per = max(1, _CHUNK_ENTRIES // max(1, n * q))
    for a in range(0, s, per):
        block = t[a : a + per].cpu()  # (b, n)
        b = block.shape[0]
        onehot = torch.zeros(n, b * q, dtype=torch.float64)
        cols = block + q * torch.arange(b)[:, None]  # (b, n) column of (task, class)
        onehot[torch.arange(n).repeat(b), cols.reshape(-1)] = 1.0
        sums = z.T @ onehot  # (r, b·q): class sums of the factor
        out[a : a + b] = (sums**2).sum(dim=0).reshape(b, q).sum(dim=1)
    return out / float(n) ** 2


__all__ = ["sampled_task_alignment"]
