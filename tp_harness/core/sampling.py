"""Task sampler: Algorithm 1 batched over tasks, exact Gibbs refinement, task filters.

Notation: ``n`` examples, prior factor ``Z (n, r)`` with ``K = Z Zᵀ``, ``q`` classes,
temperature ``T``, ``S`` tasks in one batch.

* **Prefix pass (Algorithm 1).** Each task visits the examples in its own random
  order and draws ``p(y_i = c | earlier) ∝ exp((1/T) Σ_{j earlier} K_ij [y_j = c])``
  as ``Z_i U_c / T`` with class-wise prefix sums ``U (S, q, r)``.
* **Gibbs sweeps.** Heat-bath updates from the Potts conditional
  ``p(y_i = c | rest) ∝ exp((2/T) Σ_{j≠i} K_ij [y_j = c])`` leave
  ``μ_q(y) ∝ exp((1/T) Σ_{i,j} K_ij [y_i = y_j])`` exactly invariant.

On the CPU both passes run as compiled kernels (``compiled.sampling_kernels``, numba): one task
per parallel iteration, visit by visit, its ``U (q, r)`` in cache. The torch
implementation (CUDA, or ``TP_HARNESS_NO_JIT=1``) works on blocks of ``B`` visits: the
logits of a whole block come from one batched product with ``U`` and the block's Gram
matrix corrects them for labels drawn inside the block, so the per-visit work is O(q)
tensor ops on ``(S, q)`` arrays. Both draw the same law from the same random numbers.

Randomness is counter-based (SplitMix64 on the CPU, in numpy): every random number
is a function of ``(seed, task index, redraw attempt, purpose, counter)``, so a task
does not depend on ``batch_size`` or on the other tasks, and CUDA consumes the same
numbers as the CPU. No global RNG state is read or changed. See ``docs/sampling.md``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from . import compiled
from ._labels import class_counts
from .checks import (
    ArrayLike,
    check_positive_int,
    check_temperature,
    inverse_temperatures,
    resolve_device,
)
from .kernels import Kernel, build_kernels, effective_temperatures

MAX_REDRAW_ROUNDS = 10
_BLOCK = 8
_GIBBS_BLOCK = 32
_BATCH_BYTES = 256 * 2**20
_MASK64 = (1 << 64) - 1
_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)
_ORDER, _PREFIX, _SCAN, _GIBBS = 1, 2, 3, 4


# ----------------------------------------------------------------------------- randomness


def _mix64(z: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on a uint64 array (wrap-around arithmetic)."""
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def _stream_keys(seed: int, purpose: int, attempt: int, ids: np.ndarray) -> np.ndarray:
    """One uint64 stream key per id: a hash of ``(seed, purpose, attempt, id)``. (S,) -> (S,)."""
    h = np.array([seed & _MASK64], dtype=np.uint64)
    for part in (purpose, attempt):
        h = _mix64((h ^ np.uint64(part)) + _GAMMA)
    return _mix64((h ^ ids.astype(np.uint64)) + _GAMMA)


def _bits(keys: np.ndarray, start: int, count: int) -> np.ndarray:
    """SplitMix64 outputs ``start .. start+count-1`` of each stream. (S,) -> (S, count) uint64."""
    ctr = np.arange(start + 1, start + count + 1, dtype=np.uint64) * _GAMMA
    return _mix64(keys[:, None] + ctr[None, :])


def _uniforms(keys: np.ndarray, start: int, count: int) -> np.ndarray:
    """Uniforms in [0, 1) from the top 53 bits. (S,) -> (S, count) float64.

    Computed in parallel when numba is there (the same numbers).
    """
    if compiled.enabled():
        return compiled.kernels("sampling_kernels").uniforms(
            np.ascontiguousarray(keys, dtype=np.uint64), start, count
        )
    return (_bits(keys, start, count) >> np.uint64(11)).astype(np.float64) * 2.0**-53


def _orders(keys: np.ndarray, n: int) -> np.ndarray:
    """One uniformly random permutation of ``range(n)`` per stream. (S,) -> (S, n) int64.

    The stable ``argsort`` of the stream's first ``n`` outputs (64-bit keys: a tie has
    probability about ``n² 2^-65``); computed in parallel, in O(n), when numba is there.
    """
    if compiled.enabled():
        return compiled.kernels("sampling_kernels").orders(
            np.ascontiguousarray(keys, dtype=np.uint64), n
        )
    return np.argsort(_bits(keys, 0, n), axis=1, kind="stable")


# ----------------------------------------------------------------------------- sampling core


def _draw(logits: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    """Inverse-CDF categorical draw. logits (S, q), u (S, 1) in [0, 1) -> classes (S,).

    ``u · total <= total`` in floating point, so the count is at most ``q - 1`` and
    never lands on a trailing class of probability 0.
    """
    cdf = (logits - logits.amax(dim=1, keepdim=True)).exp_().cumsum_(dim=1)
    return (cdf < u * cdf[:, -1:]).sum(dim=1)


def _prefix_pass(
    z: torch.Tensor, order: torch.Tensor, keys: np.ndarray, q: int, inv_t: float, block: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Algorithm 1 for S tasks. z (n, r), order (S, n) -> labels (S, n), sums U (S, q, r)."""
    s, n = order.shape
    r = z.shape[1]
    z = z * math.sqrt(inv_t)  # then Z_i·U_c = logit, Z Zᵀ = K/T
    u_sum = z.new_zeros(s, q, r)  # U: (S, q, r), scaled
    row0 = torch.arange(s, device=z.device)[:, None] * q  # (S, 1): row of U_0 per task
    u_all = torch.from_numpy(_uniforms(keys, 0, n)).to(z.device, z.dtype)  # (S, n)
    drawn = []
    for t0 in range(0, n, block):
        idx = order[:, t0 : t0 + block]  # (S, B)
        b = idx.shape[1]
        zb = z.index_select(0, idx.reshape(-1)).view(s, b, r)  # (S, B, r)
        a = torch.bmm(zb, u_sum.transpose(1, 2))  # (S, B, q) logits at block start
        g = torch.bmm(zb, zb.transpose(1, 2))  # (S, B, B) K / T inside block
        u = u_all[:, t0 : t0 + b, None].unbind(1)  # B x (S, 1)
        cols = []
        for t in range(b):
            c = _draw(a[:, t], u[t])  # (S,)
            cols.append(c)
            if t + 1 < b:  # later visits see y_t = c
                a[:, t + 1 :].scatter_add_(
                    2, c.view(s, 1, 1).expand(s, b - t - 1, 1), g[:, t + 1 :, t : t + 1]
                )
        yb = torch.stack(cols, dim=1)  # (S, B)
        _add_rows(u_sum, row0 + yb, zb)
        drawn.append(yb)
    labels = torch.empty(s, n, dtype=torch.long, device=z.device)
    labels.scatter_(1, order, torch.cat(drawn, dim=1))
    return labels, u_sum.div_(math.sqrt(inv_t))


def _add_rows(u_sum: torch.Tensor, rows: torch.Tensor, zb: torch.Tensor) -> None:
    """``U[s, y[s, t]] += zb[s, t]``. U (S, q, r), rows (S, B) into S·q, zb (S, B, r)."""
    s, q, r = u_sum.shape
    if u_sum.device.type == "cpu":  # sequential, deterministic
        u_sum.view(s * q, r).index_add_(0, rows.reshape(-1), zb.reshape(-1, r))
    else:  # no atomics: reproducible
        local = rows - torch.arange(s, device=rows.device)[:, None] * q  # (S, B) classes
        onehot = torch.nn.functional.one_hot(local, q).to(zb.dtype)  # (S, B, q)
        u_sum += torch.bmm(onehot.transpose(1, 2), zb)


def _gibbs_sweeps(
    z: torch.Tensor,
    labels: torch.Tensor,
    u_sum: torch.Tensor,
    keys: np.ndarray,
    scans: torch.Tensor,
    inv_t: float,
    block: int,
) -> torch.Tensor:
    """Heat-bath sweeps on the Potts measure. labels (S, n), U (S, q, r) -> (S, n).

    Sweep ``k`` visits all sites in the order ``scans[k]`` (:func:`_scans`), shared by
    every task. Each update draws ``y_i`` from
    ``∝ exp((2/T)(Z_i·U_c - [y_i = c] K_ii))`` with ``U_c = Σ_j Z_j [y_j = c]``.
    """
    s, n = labels.shape
    q, r = u_sum.shape[1:]
    labels, u_sum = labels.clone(), u_sum.clone()
    scale = 2.0 * inv_t
    for k, scan in enumerate(scans):  # (n,) shared order
        u_sweep = torch.from_numpy(_uniforms(keys, k * n, n)).to(z.device, z.dtype)  # (S, n)
        for t0 in range(0, n, block):
            idx = scan[t0 : t0 + block]  # (B,)
            b = idx.shape[0]
            zb = z[idx]  # (B, r)
            a = (u_sum.view(s * q, r) @ zb.T).view(s, q, b)  # (S, q, B) = Z_i·U_c
            a = a.transpose(1, 2).mul(scale).contiguous()  # (S, B, q)
            g = (zb @ zb.T).mul_(scale)  # (B, B) 2K/T
            old = labels[:, idx]  # (S, B)
            a.scatter_add_(
                2,
                old[:, :, None],  # drop j = i
                -g.diagonal().view(1, b, 1).expand(s, b, 1),
            )
            pm = torch.stack([g, -g], dim=2)  # (B, B, 2)
            u = u_sweep[:, t0 : t0 + b, None].unbind(1)  # B x (S, 1)
            cols = []
            for t in range(b):
                c = _draw(a[:, t], u[t])  # (S,)
                cols.append(c)
                if t + 1 < b:  # y_t: old -> c
                    m = b - t - 1
                    moved = torch.stack([c, old[:, t]], dim=1).view(s, 1, 2)
                    a[:, t + 1 :].scatter_add_(
                        2, moved.expand(s, m, 2), pm[t + 1 :, t].view(1, m, 2).expand(s, m, 2)
                    )
            new = torch.stack(cols, dim=1)  # (S, B)
            d = (torch.nn.functional.one_hot(new, q) - torch.nn.functional.one_hot(old, q)).to(
                z.dtype
            )  # (S, B, q)
            u_sum += (d.transpose(1, 2).reshape(s * q, b) @ zb).view(s, q, r)
            labels[:, idx] = new
    return labels


def _scans(seed: int, sweeps: int, n: int) -> np.ndarray:
    """The site order of each Gibbs sweep, shared by all tasks. -> (sweeps, n) int64."""
    if sweeps == 0:
        return np.empty((0, n), dtype=np.int64)
    return np.concatenate(
        [_orders(_stream_keys(seed, _SCAN, 0, np.array([k])), n) for k in range(sweeps)]
    )


def _drawer(
    z: torch.Tensor, seed: int, q: int, inv_t: float, sweeps: int
) -> Callable[[np.ndarray, int], torch.Tensor]:
    """``draw(ids, attempt)``: tasks ``ids`` at redraw ``attempt``, prefix pass then Gibbs
    sweeps, -> (len(ids), n) int64. The sweep orders (and, for the kernels, the scaled
    factors) are prepared once for all batches and redraws.

    Compiled kernels on the CPU when numba is there; batched torch ops otherwise (and
    on CUDA). Both consume the same random numbers.
    """
    n = z.shape[0]
    scans = _scans(seed, sweeps, n)
    if compiled.use_jit(z.device):
        zn = z.contiguous().numpy()
        z_prefix = zn * zn.dtype.type(math.sqrt(inv_t))  # z_i·U_c = logit
        z_gibbs = zn * zn.dtype.type(math.sqrt(2.0 * inv_t)) if sweeps else zn

        def draw_compiled(ids: np.ndarray, attempt: int) -> torch.Tensor:
            kern = compiled.kernels("sampling_kernels")
            labels = np.empty((len(ids), n), dtype=np.int64)
            kern.prefix_pass(
                z_prefix,
                _stream_keys(seed, _ORDER, attempt, ids),
                _stream_keys(seed, _PREFIX, attempt, ids),
                q,
                labels,
            )
            if sweeps:
                kern.gibbs_sweeps(
                    z_gibbs, labels, _stream_keys(seed, _GIBBS, attempt, ids), scans, q
                )
            return torch.from_numpy(labels)

        return draw_compiled
    scans_t = torch.from_numpy(scans).to(z.device)

    def draw_torch(ids: np.ndarray, attempt: int) -> torch.Tensor:
        order = _orders(_stream_keys(seed, _ORDER, attempt, ids), n)
        labels, u_sum = _prefix_pass(
            z,
            torch.from_numpy(order).to(z.device),
            _stream_keys(seed, _PREFIX, attempt, ids),
            q,
            inv_t,
            min(_BLOCK, n),
        )
        if sweeps:
            labels = _gibbs_sweeps(
                z,
                labels,
                u_sum,
                _stream_keys(seed, _GIBBS, attempt, ids),
                scans_t,
                inv_t,
                min(_GIBBS_BLOCK, n),
            )
        return labels

    return draw_torch


def _too_small(labels: torch.Tensor, q: int, min_class_fraction: float) -> torch.Tensor:
    """Mask (S,) of tasks whose smallest class count is below ``min_class_fraction · n``."""
    if min_class_fraction <= 0:
        return torch.zeros(labels.shape[0], dtype=torch.bool, device=labels.device)
    counts = class_counts(labels, q)  # (S, q)
    return counts.min(dim=1).values < min_class_fraction * labels.shape[1] - 1e-9


# ----------------------------------------------------------------------------- inputs


def prior_kernel_of(
    prior: ArrayLike | Sequence[ArrayLike] | Kernel,
    prior_kernel: str | Sequence[str] = "centered_cosine",
    prior_weights: Sequence[float] | None = None,
    device: torch.device | None = None,
    normalize: str | None = None,
) -> Kernel:
    """The prior as a :class:`Kernel` on ``device`` (built like :func:`task_prior_moments`
    builds it, so both see the same ``K``)."""
    if isinstance(prior, Kernel):
        return prior.to(device or torch.device("cpu"), prior.dtype)
    return build_kernels(
        prior,
        prior_kernel,
        weights=prior_weights,
        name="prior",
        normalize=normalize,
        device=device,
    )


def prior_factor(
    prior: ArrayLike | Sequence[ArrayLike] | Kernel,
    prior_kernel: str | Sequence[str] = "centered_cosine",
    prior_weights: Sequence[float] | None = None,
    device: torch.device | None = None,
    normalize: str | None = None,
) -> torch.Tensor:
    """The factor ``Z (n, r)`` with ``K = Z Zᵀ`` of a prior, on ``device``.

    ``prior`` is raw input for :func:`tp_harness.kernels.build_kernels` or a built
    :class:`Kernel`. A dense (``"precomputed"``) kernel is factorised by an
    eigendecomposition in float64 (O(n³)); it must be positive semidefinite. A factor
    wider than ``n`` is replaced by the ``(n, n)`` factor ``Rᵀ`` of ``Zᵀ = QR``.
    """
    kernel = prior_kernel_of(prior, prior_kernel, prior_weights, device, normalize)
    return kernel_factor(kernel)


def kernel_factor(kernel: Kernel) -> torch.Tensor:
    """``Z (n, r <= n)`` with ``Z Zᵀ = K`` of a built kernel (see :func:`prior_factor`)."""
    if kernel.factor is not None:
        z = kernel.factor
    else:
        assert kernel.dense is not None
        z = _factorise_dense(kernel.dense).to(kernel.dtype)
    z = z if z.is_floating_point() else z.double()
    if not bool(torch.isfinite(z).all()):
        raise ValueError(
            "prior gives a kernel factor with NaN or inf values; check the prior features."
        )
    if z.shape[1] > z.shape[0]:  # r > n: an (n, n) factor of the same K
        z = torch.linalg.qr(z.double().T, mode="r").R.T.to(z.dtype)
    if z.shape[1] == 0:  # K = 0 (e.g. a rank-0 projection)
        z = z.new_zeros(z.shape[0], 1)
    return z


def _factorise_dense(k: torch.Tensor) -> torch.Tensor:
    """``Z`` with ``Z Zᵀ = K`` for a symmetric PSD ``K (n, n)``, by ``eigh`` in float64."""
    kd = k.double()
    if not torch.allclose(kd, kd.T, rtol=1e-6, atol=1e-9 * float(kd.abs().max())):
        raise ValueError(
            "prior with prior_kernel='precomputed' is not symmetric; the "
            "sampler needs a PSD kernel K = Z Zᵀ."
        )
    w, v = torch.linalg.eigh((kd + kd.T) / 2)
    top = float(w.abs().max())
    if float(w.min()) < -1e-6 * top:
        raise ValueError(
            f"prior with prior_kernel='precomputed' is not positive semidefinite "
            f"(smallest eigenvalue {float(w.min()):.3g}); pass features with a "
            "factor kernel instead."
        )
    keep = w > k.shape[0] * torch.finfo(torch.float64).eps * top
    return v[:, keep] * w[keep].sqrt()


def _check_min_class_fraction(value: float, q: int, n: int) -> float:
    f = float(value)
    if not math.isfinite(f) or f < 0 or f > 1.0 / q + 1e-12:
        raise ValueError(
            f"min_class_fraction must lie in [0, 1/num_classes] = "
            f"[0, {1.0 / q:.4g}]; got {value!r}."
        )
    if f > 0 and math.ceil(f * n - 1e-9) * q > n:
        raise ValueError(
            f"min_class_fraction={value!r} cannot be met with n={n} examples "
            f"and num_classes={q}; lower min_class_fraction."
        )
    return f


def _check_seed(seed: int) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be a non-negative integer; got {seed!r}.")
    if not 0 <= int(seed) <= _MASK64:
        raise ValueError(f"seed must be a non-negative integer below 2**64; got {seed}.")
    return int(seed)


def _default_batch(num_tasks: int, n: int, r: int, q: int, itemsize: int) -> int:
    """Tasks per batch: about ``_BATCH_BYTES`` of working memory, chunks of equal size."""
    per_task = itemsize * r * (q + _BLOCK) + 40 * n + itemsize * _BLOCK * (q + _BLOCK)
    cap = max(1, _BATCH_BYTES // per_task)
    chunks = -(-num_tasks // cap)
    return -(-num_tasks // chunks)


def _inverse_temperature(z: torch.Tensor, t: float, sweeps: int) -> float:
    """``1/T``, capped so that no logit overflows ``z``'s dtype.

    A logit is at most ``(2 if sweeps else 1) · n · max_i |z_i|² / T`` in magnitude; the
    cap keeps it below ``finfo.max / 8`` (so ``logit - max`` stays finite too). Below the
    cap's ``T`` every class whose logit trails the best by more than ~1e-30 (relative)
    gets probability exactly 0: the draw is the ``T → 0`` limit, the class of largest
    ``Σ_j K_ij [y_j = c]`` with ties broken uniformly, not a NaN.
    """
    (inv,) = inverse_temperatures([t], torch.float64)
    norm2 = float(z.double().pow(2).sum(dim=1).max()) if z.numel() else 0.0
    bound = (2.0 if sweeps else 1.0) * z.shape[0] * max(norm2, 1e-300)
    return min(inv, float(torch.finfo(z.dtype).max) / (8.0 * bound))


# ----------------------------------------------------------------------------- public API


def sample_tasks_with_info(
    prior: ArrayLike | Sequence[ArrayLike] | Kernel,
    num_tasks: int,
    num_classes: int,
    temperature: float,
    *,
    seed: int,
    prior_kernel: str | Sequence[str] = "centered_cosine",
    prior_weights: Sequence[float] | None = None,
    normalize: str | None = None,
    temperature_scale: str = "absolute",
    gibbs_sweeps: int = 0,
    min_class_fraction: float = 0.0,
    device: str | torch.device | None = None,
    batch_size: int | None = None,
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Sample tasks from the task prior; also return how they were drawn.

    Returns ``tasks`` (num_tasks, n) int64 on ``device`` with labels in
    ``0 .. num_classes-1``, and ``info``: ``redrawn`` (draws discarded by the
    ``min_class_fraction`` filter), ``redraw_rounds`` (most rounds any task needed),
    ``smallest_class_fraction`` (over the returned tasks) and the settings used
    (``seed``, ``num_tasks``, ``num_classes``, ``temperature``, ``gibbs_sweeps``,
    ``min_class_fraction``, ``prior_kernel``, ``normalize``, ``temperature_scale``,
    ``effective_temperature``, ``n``, ``rank``, ``batch_size``, ``device``, ``dtype``).
    See :func:`sample_tasks` for the arguments.
    """
    s_total = check_positive_int(num_tasks, "num_tasks")
    q = check_positive_int(num_classes, "num_classes", minimum=2)
    t = check_temperature(temperature)
    sweeps = check_positive_int(gibbs_sweeps, "gibbs_sweeps", minimum=0)
    seed = _check_seed(seed)
    dev = resolve_device(device)
    kernel = prior_kernel_of(prior, prior_kernel, prior_weights, dev, normalize)
    (t_eff,) = effective_temperatures(kernel, [t], temperature_scale)
    z = kernel_factor(kernel)
    n, r = z.shape
    frac = _check_min_class_fraction(min_class_fraction, q, n)
    batch = (
        _default_batch(s_total, n, r, q, z.element_size())
        if batch_size is None
        else check_positive_int(batch_size, "batch_size")
    )
    draw = _drawer(z, seed, q, _inverse_temperature(z, t_eff, sweeps), sweeps)
    tasks = torch.empty(s_total, n, dtype=torch.long, device=dev)
    redrawn, rounds = 0, 0
    for start in range(0, s_total, batch):
        ids = np.arange(start, min(start + batch, s_total), dtype=np.int64)
        tasks[ids] = draw(ids, 0)
        for attempt in range(1, MAX_REDRAW_ROUNDS + 1):
            bad = ids[_too_small(tasks[ids], q, frac).cpu().numpy()]
            if bad.size == 0:
                break
            redrawn += int(bad.size)
            rounds = max(rounds, attempt)
            tasks[bad] = draw(bad, attempt)
        else:
            _raise_if_too_small(tasks[ids], q, frac, t)
    counts = class_counts(tasks, q)
    info: dict[str, Any] = {
        "redrawn": redrawn,
        "redraw_rounds": rounds,
        "smallest_class_fraction": float(counts.min()) / n,
        "seed": seed,
        "num_tasks": s_total,
        "num_classes": q,
        "temperature": t,
        "effective_temperature": t_eff,
        "temperature_scale": temperature_scale,
        "normalize": normalize,
        "gibbs_sweeps": sweeps,
        "min_class_fraction": frac,
        "prior_kernel": prior.name if isinstance(prior, Kernel) else prior_kernel,
        "n": n,
        "rank": r,
        "batch_size": batch,
        "device": str(dev),
        "dtype": str(z.dtype),
    }
    return tasks, info


def _raise_if_too_small(tasks: torch.Tensor, q: int, frac: float, temperature: float) -> None:
    bad = int(_too_small(tasks, q, frac).sum())
    if bad:
        raise ValueError(
            f"{bad} task(s) still had a class below min_class_fraction={frac:g} "
            f"after {MAX_REDRAW_ROUNDS} redraws; lower min_class_fraction or "
            f"raise temperature (now {temperature:g})."
        )


def sample_tasks(
    prior: ArrayLike | Sequence[ArrayLike] | Kernel,
    num_tasks: int,
    num_classes: int,
    temperature: float,
    *,
    seed: int,
    prior_kernel: str | Sequence[str] = "centered_cosine",
    prior_weights: Sequence[float] | None = None,
    normalize: str | None = None,
    temperature_scale: str = "absolute",
    gibbs_sweeps: int = 0,
    min_class_fraction: float = 0.0,
    device: str | torch.device | None = None,
    batch_size: int | None = None,
) -> torch.Tensor:
    """Sample ``num_tasks`` labelings of the ``n`` prior examples. -> (num_tasks, n) int64.

    ``prior``: features (n, d) (or a list of arrays for a weighted sum of kernels,
    ``prior_kernel`` one name or one per array, ``prior_weights`` one weight each), or
    a built :class:`~tp_harness.kernels.Kernel`. ``normalize`` and ``temperature_scale``
    read ``K`` and ``T`` exactly as :func:`~tp_harness.task_prior_moments` does, so tasks
    come from the prior its closed form describes. Each task runs Algorithm 1 in its own
    random visiting order, then ``gibbs_sweeps`` Gibbs sweeps targeting the Potts
    measure exactly. Tasks whose smallest class fraction (count / n) is below
    ``min_class_fraction`` are redrawn, at most ``MAX_REDRAW_ROUNDS`` times, then a
    ``ValueError``; use :func:`sample_tasks_with_info` to see how many were redrawn.

    Task ``i`` depends only on ``(seed, i)`` and the settings, never on
    ``batch_size`` (tasks per internal batch; default sized to ~256 MiB). Random
    numbers are drawn on the CPU, so a CUDA ``device`` consumes the same numbers;
    its labels agree with the CPU's except where rounding differs at a near-tie.
    Computation runs in the factor's dtype (float32 features stay float32).
    """
    tasks, _ = sample_tasks_with_info(
        prior,
        num_tasks,
        num_classes,
        temperature,
        seed=seed,
        prior_kernel=prior_kernel,
        prior_weights=prior_weights,
        normalize=normalize,
        temperature_scale=temperature_scale,
        gibbs_sweeps=gibbs_sweeps,
        min_class_fraction=min_class_fraction,
        device=device,
        batch_size=batch_size,
    )
    return tasks


__all__ = ["MAX_REDRAW_ROUNDS", "prior_factor", "sample_tasks", "sample_tasks_with_info"]
