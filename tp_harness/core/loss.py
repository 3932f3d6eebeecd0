"""The task-prior training objective: a streaming, differentiable loss on features.

For features ``X (n, d)`` with model kernel ``M = Φ Φᵀ`` (``Φ`` the kernel's factor of
``X``, e.g. rows normalised then centered) and a fixed prior kernel ``K`` with edge
probabilities ``S = s(K/T)``, ``V = S ∘ s(-K/T)`` (Theorem 3.6)::

    mean = Σ_ij M_ij S_ij         var = Σ_ij M_ij² V_ij
    loss = -mean / n²  +  variance_weight · sqrt(var) / n

i.e. minus the expected alignment per pair plus ``variance_weight`` times the std of the
alignment per example, the two numbers the harness reports (``mean_per_pair`` and
``std / n``), so the loss value equals ``-mean_per_pair + w · std / n`` of
:func:`~tp_harness.core.moments.task_prior_moments` on the same inputs. Maximising the
mean asks for good average task performance; the std term asks for it to hold across
tasks (the paper's "maximise the expected performance while minimising its variance").
Both are per-pair scale free, so one ``variance_weight`` means the same at any ``n``.

Exact and streamed: the n x n matrices are never held. The forward pass sums tiles in
float64; the backward pass recomputes each tile and accumulates
``∂mean/∂Φ = 2 S Φ`` and ``∂var/∂Φ = 4 (V ∘ M) Φ`` tile by tile (both symmetric), so
memory is ``O(n (d + r) + tile²)``; autograd then carries the gradient through the
kernel's factor map (row normalisation, centering, ``projection``'s SVD) and the
Frobenius normalisation, which are ``O(n d)``. The prior is a constant.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from .checks import as_tensor, check_temperatures, inverse_temperatures
from .kernels import FACTOR_KERNELS, Kernel, build_kernels, frobenius_normalize, view_graph
from .moments import default_block_size, tile_plan

#: Model kernels the loss differentiates through (factor kernels).
LOSS_MODEL_KERNELS = ("centered_cosine", "cosine", "linear", "projection")
VIEW_GRAPH = "view_graph"


class _TiledMoments(torch.autograd.Function):
    """``(mean, var)`` of ``M = Φ Φᵀ`` against a fixed prior, tiled both ways."""

    @staticmethod
    def forward(
        ctx: Any, phi: torch.Tensor, prior: Kernel, inv_t: float, block: int
    ) -> tuple[torch.Tensor, torch.Tensor]:
        mean = torch.zeros((), dtype=torch.float64, device=phi.device)
        var = torch.zeros((), dtype=torch.float64, device=phi.device)
        with torch.no_grad():
            for tile in tile_plan(phi.shape[0], block, symmetric=True):
                rows, cols = tile.rows, tile.cols
                z = prior.tile(rows, cols).to(phi.dtype) * inv_t
                s, sc = torch.sigmoid(z), torch.sigmoid(-z)
                m = phi[rows] @ phi[cols].T
                mean += tile.weight * (m * s).sum(dtype=torch.float64)
                var += tile.weight * (m * m * s * sc).sum(dtype=torch.float64)
        ctx.save_for_backward(phi)
        ctx.prior, ctx.inv_t, ctx.block = prior, inv_t, block
        return mean, var

    @staticmethod
    def backward(
        ctx: Any, grad_mean: torch.Tensor, grad_var: torch.Tensor
    ) -> tuple[torch.Tensor | None, None, None, None]:
        (phi,) = ctx.saved_tensors
        a = float(grad_mean) if grad_mean is not None else 0.0
        b = float(grad_var) if grad_var is not None else 0.0
        grad = torch.zeros(phi.shape, dtype=torch.float64, device=phi.device)
        with torch.no_grad():
            for tile in tile_plan(phi.shape[0], ctx.block, symmetric=True):
                rows, cols = tile.rows, tile.cols
                z = ctx.prior.tile(rows, cols).to(phi.dtype) * ctx.inv_t
                s = torch.sigmoid(z)
                m = phi[rows] @ phi[cols].T
                weight = 2.0 * a * s + 4.0 * b * (m * s * torch.sigmoid(-z))
                grad[rows] += (weight @ phi[cols]).double()
                if tile.weight == 2.0:  # the mirror tile of an off-diagonal pair
                    grad[cols] += (weight.T @ phi[rows]).double()
        return grad.to(phi.dtype), None, None, None


def _prior_kernel(
    prior: Any,
    prior_kernel: str | Sequence[str],
    prior_weights: Sequence[float] | None,
    normalize: str | None,
    n: int,
    device: torch.device,
) -> Kernel:
    """The fixed prior as a :class:`Kernel` (``view_graph``: ``prior`` = views per sample)."""
    if prior_kernel == VIEW_GRAPH:
        if isinstance(prior, bool) or not isinstance(prior, int) or prior < 1 or n % prior:
            raise ValueError(
                f"prior_kernel='view_graph' takes prior = the number of views V per sample "
                f"(an int dividing n = {n}, rows ordered sample-major); got {prior!r}."
            )
        k = Kernel(VIEW_GRAPH, factor=view_graph(n // prior, prior).to(device))
        return frobenius_normalize(k, "prior") if normalize == "frobenius" else k
    if isinstance(prior, torch.Tensor):
        prior = prior.detach()
    return build_kernels(
        prior, prior_kernel, weights=prior_weights, name="prior", normalize=normalize, device=device
    )


def task_prior_loss(
    features: torch.Tensor,
    prior: Any,
    temperature: float,
    *,
    variance_weight: float = 1.0,
    model_kernel: str = "centered_cosine",
    prior_kernel: str | Sequence[str] = "centered_cosine",
    prior_weights: Sequence[float] | None = None,
    normalize: str | None = None,
    block_size: int | None = None,
) -> torch.Tensor:
    """``-mean_per_pair + variance_weight · std / n`` of ``Tr(MG)`` (see the module docstring).

    Args:
        features: ``(n, d)`` float tensor (requires grad for training); CPU or CUDA.
        prior: what :func:`~tp_harness.core.moments.task_prior_moments` takes as prior
            (``(n, r)`` features, class ids with ``"label_graph"``, a list of arrays with
            ``prior_weights``), or with ``prior_kernel="view_graph"`` the number of views
            ``V`` per sample (rows ordered sample-major, Proposition 3.7). A constant: no
            gradient flows into it.
        temperature: ``T > 0`` (absolute).
        variance_weight: weight of ``std / n`` (>= 0; 0 gives minus the mean per pair).
        model_kernel: one of :data:`LOSS_MODEL_KERNELS`.
        normalize: ``None`` or ``"frobenius"`` (both kernels divided by their norm).
        block_size: tile edge (default 1024 on CPU, 4096 on CUDA).

    Returns:
        A 0-dim tensor in ``features.dtype``, differentiable with respect to ``features``.
    """
    checked = as_tensor(features, "features", ndim=2)  # shape, finiteness (detached copy)
    if not checked.is_floating_point():
        raise TypeError(f"features must be a float tensor; got {checked.dtype}.")
    x = features if isinstance(features, torch.Tensor) else checked  # keeps the graph
    if x.dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    n = x.shape[0]
    if n < 1 or x.shape[1] < 1:
        raise ValueError(f"features must be (n, d) with n, d >= 1; got {tuple(x.shape)}.")
    if model_kernel not in LOSS_MODEL_KERNELS:
        raise ValueError(
            f"model_kernel={model_kernel!r} is not differentiable here; use one of "
            f"{', '.join(LOSS_MODEL_KERNELS)}."
        )
    if normalize not in (None, "frobenius"):
        raise ValueError(f"normalize={normalize!r} is not supported; use None or 'frobenius'.")
    if (
        isinstance(variance_weight, bool)
        or not isinstance(variance_weight, (int, float))
        or not (variance_weight >= 0 and variance_weight < float("inf"))
    ):
        raise ValueError(f"variance_weight must be a finite number >= 0; got {variance_weight!r}.")
    temps, many = check_temperatures(temperature)
    if many or len(temps) != 1:
        raise ValueError("task_prior_loss takes one temperature T (a float), not a list.")
    t = temps[0]
    if block_size is not None and (
        isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 1
    ):
        raise ValueError(f"block_size must be a positive int; got {block_size!r}.")
    k = _prior_kernel(prior, prior_kernel, prior_weights, normalize, n, x.device)
    if k.n != n:
        raise ValueError(f"prior has {k.n} rows but features has {n}; they must match.")
    block = block_size or default_block_size(x.device)
    phi = FACTOR_KERNELS[model_kernel](x)
    (inv_t,) = inverse_temperatures([t], phi.dtype)
    mean, var = _TiledMoments.apply(phi, k, inv_t, block)
    if normalize == "frobenius":
        c2 = torch.linalg.matrix_norm((phi.T @ phi).double()) ** 2
        mean, var = mean / c2.sqrt(), var / c2
    loss = -mean / n**2 + float(variance_weight) * var.clamp_min(0.0).sqrt() / n
    return loss.to(x.dtype)


class TaskPriorLoss(torch.nn.Module):
    """:func:`task_prior_loss` with the prior held, for training loops.

    ``prior`` holds the prior's features of the whole training set ``(N, r)`` (or class ids
    with ``prior_kernel="label_graph"``); ``forward(features, indices)`` scores a minibatch
    ``features (B, d)`` against the prior rows ``indices (B,)`` of the same examples
    (``indices=None``: ``features`` covers all N rows in order).
    """

    def __init__(
        self,
        prior: Any,
        temperature: float,
        *,
        variance_weight: float = 1.0,
        model_kernel: str = "centered_cosine",
        prior_kernel: str = "centered_cosine",
        normalize: str | None = None,
        block_size: int | None = None,
    ) -> None:
        super().__init__()
        self.prior: torch.Tensor
        self.register_buffer("prior", torch.as_tensor(prior).detach().clone())
        self.temperature, self.variance_weight = float(temperature), float(variance_weight)
        self.model_kernel, self.prior_kernel = model_kernel, prior_kernel
        self.normalize, self.block_size = normalize, block_size

    def forward(self, features: torch.Tensor, indices: torch.Tensor | None = None) -> torch.Tensor:
        prior = self.prior if indices is None else self.prior[indices.to(self.prior.device)]
        return task_prior_loss(
            features,
            prior.to(features.device),
            self.temperature,
            variance_weight=self.variance_weight,
            model_kernel=self.model_kernel,
            prior_kernel=self.prior_kernel,
            normalize=self.normalize,
            block_size=self.block_size,
        )
