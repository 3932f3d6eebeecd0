"""Kernels in factor form.

Every kernel that can be is carried as a factor ``Z`` of shape ``(n, r)`` with
``K = Z Zᵀ``; the ``n x n`` matrix is never built. A user-supplied ``n x n``
matrix (``kernel="precomputed"``) is carried densely. Conventions (see
``docs/conventions.md``):

* ``centered_cosine(X)``: rows L2-normalised, then column means subtracted, so
  ``K = H C H`` with ``C`` the cosine matrix and ``H = I - 11ᵀ/n``. The paper's default.
* ``cosine(X)``: rows L2-normalised, not centered (the authors' ``analyze``).
* ``linear(X)``: ``K = X Xᵀ`` with ``X`` as given.
* ``projection(X)``: ``K = U Uᵀ`` with ``U`` the left singular vectors of the
  column-centered ``X`` (the probe-optimal kernel of Theorem 3.3).
* ``label_graph(y)``: one-hot factor, ``K_ij = [y_i = y_j]``.
* ``view_graph(N, V)``: the SSL graph of Proposition 3.7 on ``N·V`` rows.

Zero rows never produce NaN: normalisation divides by ``max(||x||, eps)``.

A kernel is **degenerate** when its examples are numerically identical: the rows the
kernel is built from (row-normalised for the cosine kernels, as given for ``linear``
and ``projection``, one-hot for labels) have a column-centered spread
``||Z - mean(Z)||_F <= DEGENERATE_RTOL(dtype) · ||Z||_F``, computed in float64, with the
tolerance tied to the input dtype's precision (:func:`degenerate_rtol`). Such a kernel
carries no information about the examples; ``Kernel.degenerate`` is True and it is
never Frobenius-normalised (that would blow float residue up into ``~11ᵀ/n``).

Temperatures (:data:`TEMPERATURE_SCALES`): ``"absolute"`` uses ``T`` as given (the
paper's definition); ``"rms"`` multiplies it by the RMS of the prior kernel's entries,
``||K||_F / n`` (from the ``r x r`` Gram), so ``T`` means the same across ``n``, datasets
and normalisations (:func:`effective_temperatures`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import torch

from .checks import ArrayLike, as_tensor, check_positive_int

_EPS = 1e-12
_DEGENERATE_ULPS = 64
TEMPERATURE_SCALES = ("absolute", "rms")
"""How a temperature is read: as given, or relative to the RMS of the prior kernel's entries."""


@dataclass(frozen=True)
class Kernel:
    """A kernel on ``n`` examples: ``factor`` (n, r) with ``K = Z Zᵀ``, or ``dense`` (n, n)."""

    name: str
    factor: torch.Tensor | None = None
    dense: torch.Tensor | None = None
    degenerate: bool = False
    #: ``||K||_F`` when already known (kept by :meth:`scaled` and :meth:`permuted`, so a
    #: Frobenius-normalised kernel's RMS costs no second Gram); None: computed on demand
    known_norm: float | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        if (self.factor is None) == (self.dense is None):
            raise ValueError("Kernel needs exactly one of factor or dense.")

    @property
    def _tensor(self) -> torch.Tensor:
        t = self.factor if self.factor is not None else self.dense
        assert t is not None
        return t

    @property
    def n(self) -> int:
        """Number of examples."""
        return int(self._tensor.shape[0])

    @property
    def device(self) -> torch.device:
        return self._tensor.device

    @property
    def is_factor(self) -> bool:
        return self.factor is not None

    @property
    def rank(self) -> int:
        """Width ``r`` of the factor (``n`` for a dense kernel)."""
        return int(self.factor.shape[1]) if self.factor is not None else self.n

    @property
    def dtype(self) -> torch.dtype:
        return self._tensor.dtype

    def tile(self, rows: slice, cols: slice) -> torch.Tensor:
        """``K[rows, cols]`` of shape (len(rows), len(cols))."""
        if self.factor is not None:
            return self.factor[rows] @ self.factor[cols].T
        assert self.dense is not None
        return self.dense[rows, cols]

    def entries(self, i: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        """``K[i_k, j_k]`` for index vectors ``i, j`` of shape (m,)."""
        if self.factor is not None:
            return (self.factor[i] * self.factor[j]).sum(dim=1)
        assert self.dense is not None
        return self.dense[i, j]

    def to(self, device: torch.device, dtype: torch.dtype) -> Kernel:
        """Move to ``device`` and cast to ``dtype`` (a known norm is kept where the values
        are: the same dtype, or widened to float64)."""
        f = self.factor.to(device=device, dtype=dtype) if self.factor is not None else None
        d = self.dense.to(device=device, dtype=dtype) if self.dense is not None else None
        exact = dtype == self.dtype or dtype == torch.float64
        return Kernel(self.name, f, d, self.degenerate, self.known_norm if exact else None)

    def frobenius_norm(self) -> float:
        """``||K||_F`` in float64; for a factor from the smaller float64 Gram
        (``ZᵀZ`` (r, r) or ``ZZᵀ`` (n, n), :func:`factor_gram64`)."""
        if self.known_norm is not None:
            return self.known_norm
        if self.factor is not None:
            z = self.factor
            return float(torch.linalg.matrix_norm(factor_gram64(z))) if z.numel() else 0.0
        assert self.dense is not None
        return float(torch.linalg.matrix_norm(self.dense.double()))

    def scaled(self, c: float) -> Kernel:
        """The kernel ``c·K`` (``c >= 0``); a known norm becomes ``c`` times it."""
        norm = None if self.known_norm is None else c * self.known_norm
        if self.factor is not None:
            return Kernel(self.name, self.factor * math.sqrt(c), None, self.degenerate, norm)
        assert self.dense is not None
        return Kernel(self.name, None, self.dense * c, self.degenerate, norm)

    def permuted(self, perm: torch.Tensor) -> Kernel:
        """The same kernel on the examples reordered by ``perm`` (n,) (rows and columns)."""
        if self.factor is not None:
            return Kernel(self.name, self.factor[perm], None, self.degenerate, self.known_norm)
        assert self.dense is not None
        return Kernel(self.name, None, self.dense[perm][:, perm], self.degenerate, self.known_norm)

    def rms(self) -> float:
        """RMS of the ``n²`` entries, ``||K||_F / n`` (float64, no n x n matrix for a factor)."""
        return self.frobenius_norm() / self.n

    def to_dense(self) -> torch.Tensor:
        """The n x n matrix (for small n and for summing with a precomputed kernel)."""
        return self.tile(slice(None), slice(None))


#: multiply-adds (rows x width²) from which :func:`factor_gram64` runs on the host BLAS:
#: below it torch's product takes under ~3 ms, less than the one-time ~50 ms of finding
#: numpy's BLAS (threadpoolctl)
_HOST_GRAM_MIN_WORK = 1 << 27


def factor_gram64(z: torch.Tensor) -> torch.Tensor:
    """The smaller Gram of a factor ``z (n, r)`` in float64: ``zᵀz (r, r)`` for ``r <= n``,
    else ``zzᵀ (n, n)``; both have the Frobenius norm of ``K = zzᵀ``.

    Rows are cast to float64 a block at a time (never a float64 copy of ``z``) and the
    block Grams added in a fixed block order: on the CPU a SYRK per block on numpy's BLAS
    (:func:`.compiled.host_blas.gram64`) from :data:`_HOST_GRAM_MIN_WORK`, otherwise torch
    products.
    """
    from .compiled import host_blas

    z = z.detach()  # a norm, not a differentiable quantity
    m = z if z.shape[1] <= z.shape[0] else z.T
    work = m.shape[0] * m.shape[1] ** 2
    if m.device.type == "cpu" and work >= _HOST_GRAM_MIN_WORK and host_blas.available():
        arr = np.ascontiguousarray(m.numpy())
        return torch.from_numpy(host_blas.gram64(arr, torch.get_num_threads()))
    out = torch.zeros(m.shape[1], m.shape[1], dtype=torch.float64, device=m.device)
    rows = host_blas.GRAM64_ROWS  # the same blocks as the host path
    for lo in range(0, m.shape[0], rows):
        block = m[lo : lo + rows].double()
        out += block.T @ block
    return out


def row_normalize(x: torch.Tensor) -> torch.Tensor:
    """Rows divided by ``max(||x_i||, eps)``; zero rows stay zero (no NaN). (n, d) -> (n, d)."""
    return x / x.norm(dim=1, keepdim=True).clamp_min(_EPS)


def centered_cosine(x: torch.Tensor) -> torch.Tensor:
    """Factor of ``H C H``: rows normalised, column means subtracted. (n, d) -> (n, d).

    The centering runs in float64 (then cast back), so rows that are equal give a
    factor of float64 residue, not of float32 residue.
    """
    z = row_normalize(x.double())
    return (z - z.mean(dim=0, keepdim=True)).to(x.dtype)


def degenerate_rtol(dtype: torch.dtype) -> float:
    """Relative spread below which rows count as identical: 64 ulps of ``dtype``
    (float32: 7.6e-6, float64: 1.4e-14; integers are read as float64)."""
    dt = dtype if dtype.is_floating_point else torch.float64
    return _DEGENERATE_ULPS * float(torch.finfo(dt).eps)


def rows_identical(
    z: torch.Tensor, dtype: torch.dtype | None = None, *, centered: torch.Tensor | None = None
) -> bool:
    """Whether the rows of ``z (n, d)`` are numerically identical (see the module docstring).

    ``||z - mean(z)||_F <= degenerate_rtol(dtype) · ||z||_F`` in float64; ``dtype`` is
    the precision of the input the rows came from (default ``z.dtype``); ``centered`` is
    ``z - mean(z)`` in float64 when the caller has it. All-zero input and ``n = 1`` count
    as identical.
    """
    zd = z.double()
    scale = float(torch.linalg.matrix_norm(zd)) if zd.numel() else 0.0
    if scale == 0.0 or zd.shape[0] < 2:
        return True
    if centered is None:
        centered = zd - zd.mean(dim=0, keepdim=True)
    spread = float(torch.linalg.matrix_norm(centered))
    return _spread_below(spread, scale, zd.shape[0], dtype or z.dtype)


def _spread_below(spread: float, scale: float, n: int, dtype: torch.dtype) -> bool:
    """The test of :func:`rows_identical` from the two norms (zero scale or ``n = 1``:
    identical)."""
    return scale == 0.0 or n < 2 or spread <= degenerate_rtol(dtype) * scale


#: From this many rows a CPU ``centered_cosine`` factor is built by the compiled kernel
#: (:mod:`.compiled.factor_kernels`): ~6x faster than the torch path and without its
#: float64 temporaries, ~5x the input's memory (``benchmarks/bench_moments.py --build``).
#: Loading numba costs 0.4-0.8 s once per process; at this n the moments' tile epilogue
#: loads it anyway (``COMPILED_FACTOR_MIN_ROWS² = moments.FUSED_MIN_WORK``), so the build
#: does not pay it.
COMPILED_FACTOR_MIN_ROWS = 1 << 14


def _compiled_centered_cosine(t: torch.Tensor) -> tuple[torch.Tensor, bool] | None:
    """``(centered_cosine(t), degenerate)`` through the compiled kernel, or None where it
    does not apply (not CPU, no numba, fewer than :data:`COMPILED_FACTOR_MIN_ROWS` rows)."""
    from . import compiled

    if (
        t.shape[0] < COMPILED_FACTOR_MIN_ROWS
        or t.dtype not in (torch.float32, torch.float64)
        or not compiled.use_jit(t.device)
    ):
        return None
    x = t.contiguous()
    out = torch.empty_like(x)
    scale, spread = compiled.kernels("factor_kernels").centered_cosine_factor(
        x.numpy(), out.numpy()
    )
    return out, _spread_below(float(spread), float(scale), x.shape[0], t.dtype)


_NORMALISED_ROWS = ("centered_cosine", "cosine")


def cosine(x: torch.Tensor) -> torch.Tensor:
    """Factor of the cosine matrix: rows normalised. (n, d) -> (n, d)."""
    return row_normalize(x)


def linear(x: torch.Tensor) -> torch.Tensor:
    """The array as given: ``K = X Xᵀ``. (n, d) -> (n, d)."""
    return x


def projection(x: torch.Tensor) -> torch.Tensor:
    """Left singular vectors ``U`` of the column-centered ``x`` (rank-truncated). (n, d) -> (n, k).

    ``U Uᵀ`` projects onto the span of the centered features (Theorem 3.3's
    ``V Vᵀ`` in the paper's transposed notation). Computed in float64.
    """
    xc = x.double() - x.double().mean(dim=0, keepdim=True)
    u, s, _ = torch.linalg.svd(xc, full_matrices=False)
    if s.numel() == 0 or float(s[0].detach()) == 0.0:
        return u[:, :0].to(x.dtype)
    tol = float(s[0].detach()) * max(xc.shape) * torch.finfo(torch.float64).eps
    return u[:, s > tol].to(x.dtype)


def label_graph(labels: ArrayLike, *, device: torch.device | None = None) -> torch.Tensor:
    """One-hot factor ``Y`` (n, q) of a label vector: ``K_ij = [y_i = y_j]``."""
    y = as_tensor(labels, "labels", ndim=1, device=device)
    if y.is_floating_point():
        if not bool((y == y.round()).all()):
            raise ValueError("labels must be integers (class ids) for the label_graph kernel.")
        y = y.long()
    _, inverse = torch.unique(y, return_inverse=True)
    return torch.nn.functional.one_hot(inverse).to(torch.float64)


def view_graph(num_samples: int, num_views: int) -> torch.Tensor:
    """Factor (N·V, N) of the SSL view graph of Proposition 3.7.

    Rows are ordered sample-major (the V views of sample 0 first), so
    ``G_ij = [i // V = j // V]``.
    """
    n = check_positive_int(num_samples, "num_samples")
    v = check_positive_int(num_views, "num_views")
    return torch.eye(n, dtype=torch.float64).repeat_interleave(v, dim=0)


FactorFn = Callable[[torch.Tensor], torch.Tensor]

FACTOR_KERNELS: dict[str, FactorFn] = {}


def register_kernel(name: str, fn: FactorFn) -> FactorFn:
    """Add a factor kernel ``fn: (n, d) -> (n, r)`` under ``name``; duplicates are refused."""
    if name in FACTOR_KERNELS or name in ("label_graph", "precomputed"):
        raise ValueError(f"kernel {name!r} is already registered.")
    FACTOR_KERNELS[name] = fn
    return fn


for _name, _fn in (
    ("centered_cosine", centered_cosine),
    ("cosine", cosine),
    ("linear", linear),
    ("projection", projection),
):
    register_kernel(_name, _fn)

NORMALIZATIONS = (None, "frobenius")


def kernel_names() -> tuple[str, ...]:
    """All names accepted by :func:`build_kernel`."""
    return (*FACTOR_KERNELS, "label_graph", "precomputed")


def check_kernel_name(kernel: str, arg: str) -> str:
    """Raise ``ValueError`` naming ``arg`` if ``kernel`` is not a known kernel."""
    if not isinstance(kernel, str) or kernel not in kernel_names():
        raise ValueError(
            f"{arg}={kernel!r} is not a known kernel; choose one of {', '.join(kernel_names())}."
        )
    return kernel


def effective_temperatures(
    prior: Kernel, temperatures: Sequence[float], scale: str = "absolute"
) -> list[float]:
    """The temperatures that enter ``s(K/T)``: as given (``"absolute"``) or times
    ``prior.rms()`` (``"rms"``; needs a kernel that is not all zeros)."""
    if scale not in TEMPERATURE_SCALES:
        raise ValueError(
            f"temperature_scale={scale!r} is not supported; use one of {TEMPERATURE_SCALES}."
        )
    if scale == "absolute":
        return [float(t) for t in temperatures]
    rms = prior.rms()
    if not rms > 0.0 or not math.isfinite(rms):
        raise ValueError(
            "temperature_scale='rms' needs a prior kernel with non-zero entries; this one "
            "is all zeros (a degenerate prior?). Use temperature_scale='absolute'."
        )
    return [float(t) * rms for t in temperatures]


def build_kernel(
    x: ArrayLike,
    kernel: str = "centered_cosine",
    *,
    name: str = "x",
    normalize: str | None = None,
    device: torch.device | None = None,
) -> Kernel:
    """Build a :class:`Kernel` from raw input ``x``.

    ``x`` is (n, d) features for a factor kernel, an integer (n,) label vector for
    ``"label_graph"``, or an (n, n) matrix for ``"precomputed"``. ``normalize=
    "frobenius"`` divides ``K`` by ``||K||_F`` (from ``ZᵀZ`` for a factor).
    """
    check_kernel_name(kernel, f"{name}_kernel")
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize={normalize!r} is not supported; use None or 'frobenius'.")
    if kernel == "label_graph":
        y = label_graph(x, device=device)
        out = Kernel(kernel, factor=y, degenerate=rows_identical(y))
    elif kernel == "precomputed":
        k = as_tensor(x, name, ndim=2, device=device)
        if k.shape[0] != k.shape[1]:
            raise ValueError(
                f"{name} with kernel='precomputed' must be square (n, n); "
                f"got shape {tuple(k.shape)}."
            )
        out = Kernel(kernel, dense=k if k.is_floating_point() else k.double())
    else:
        t = as_tensor(x, name, ndim=2, device=device)
        t = t if t.is_floating_point() else t.double()
        is_cc = kernel == "centered_cosine" and FACTOR_KERNELS[kernel] is centered_cosine
        built = _compiled_centered_cosine(t) if is_cc else None
        if built is not None:
            factor, degenerate = built
        else:
            rows = row_normalize(t.double()) if kernel in _NORMALISED_ROWS else t
            if is_cc:
                # centered_cosine(t) from the rows normalised above (the same float64 steps)
                centered = rows - rows.mean(dim=0, keepdim=True)
                factor = centered.to(t.dtype)
                degenerate = rows_identical(rows, t.dtype, centered=centered)
            else:
                factor = FACTOR_KERNELS[kernel](t)
                degenerate = rows_identical(rows, t.dtype)
        out = Kernel(kernel, factor=factor, degenerate=degenerate)
    if out.degenerate or normalize != "frobenius":
        return out
    return frobenius_normalize(out, name)


def frobenius_normalize(k: Kernel, name: str = "kernel") -> Kernel:
    """``K / ||K||_F``; raises for an all-zero kernel."""
    norm = k.frobenius_norm()
    if norm == 0.0:
        raise ValueError(
            f"{name}: the kernel is all zeros, so it cannot be Frobenius-"
            "normalised (are all rows identical under centering?)."
        )
    return replace(k, known_norm=norm).scaled(1.0 / norm)


def check_weights(weights: Sequence[float] | None, count: int, arg: str) -> list[float]:
    """Validate kernel weights: ``count`` finite numbers >= 0, not all zero."""
    if weights is None:
        return [1.0] * count
    if isinstance(weights, (str, bytes)) or not isinstance(weights, (list, tuple, np.ndarray)):
        raise TypeError(f"{arg} must be a list of numbers, one per kernel; got {weights!r}.")
    bad = [v for v in weights if isinstance(v, (str, bytes, bool)) or not _is_number(v)]
    if bad:
        raise TypeError(f"{arg} must be numbers (one per kernel); got {list(weights)!r}.")
    w = [float(v) for v in weights]
    if len(w) != count:
        raise ValueError(
            f"{arg} has {len(w)} weights but {count} kernels were given; "
            "pass one weight per kernel."
        )
    if any(not math.isfinite(v) or v < 0 for v in w):
        raise ValueError(f"{arg} must be finite and >= 0; got {w}.")
    if not any(v > 0 for v in w):
        raise ValueError(f"{arg} are all zero; at least one kernel needs a positive weight.")
    return w


def weighted_sum(
    kernels: Sequence[Kernel], weights: Sequence[float] | None = None, *, arg: str = "weights"
) -> Kernel:
    """``Σ w_b K_b``: concatenation of ``sqrt(w_b) Z_b``, or a dense sum if any is dense."""
    if not kernels:
        raise ValueError("weighted_sum needs at least one kernel.")
    w = check_weights(weights, len(kernels), arg)
    n = kernels[0].n
    for b, k in enumerate(kernels):
        if k.n != n:
            raise ValueError(
                f"kernel {b} has n={k.n} but kernel 0 has n={n}; "
                "all kernels in a sum must cover the same examples."
            )
    parts = [k.scaled(wb) for k, wb in zip(kernels, w, strict=True) if wb > 0]
    dtype = _common_dtype([k.dtype for k in parts])
    name = "+".join(k.name for k in kernels)
    degenerate = all(k.degenerate for k in parts)
    if all(k.is_factor for k in parts):
        return Kernel(
            name,
            factor=torch.cat([k.factor.to(dtype) for k in parts], dim=1),  # type: ignore[union-attr]
            degenerate=degenerate,
        )
    dense = torch.zeros(n, n, dtype=dtype, device=parts[0].device)
    for k in parts:
        dense += k.to_dense().to(dtype)
    return Kernel(name, dense=dense, degenerate=degenerate)


def _common_dtype(dtypes: Sequence[torch.dtype]) -> torch.dtype:
    return torch.float64 if torch.float64 in dtypes else torch.float32


def build_kernels(
    xs: ArrayLike | Sequence[ArrayLike],
    kernel: str | Sequence[str],
    *,
    weights: Sequence[float] | None = None,
    name: str = "prior",
    normalize: str | None = None,
    device: torch.device | None = None,
) -> Kernel:
    """One kernel, or the weighted sum of several (``xs`` a list; ``kernel`` one name or one each).

    With ``normalize="frobenius"`` each component is normalised before weighting.
    """
    if kernel is None or not (
        isinstance(kernel, str) or (isinstance(kernel, (list, tuple)) and kernel)
    ):
        raise TypeError(
            f"{name}_kernel must be a kernel name ({', '.join(kernel_names())}) or a list of "
            f"them, one per array; got {kernel!r}."
        )
    if isinstance(xs, (list, tuple)) and xs and all(_is_component(x) for x in xs):
        names = [kernel] * len(xs) if isinstance(kernel, str) else list(kernel)
        if len(names) != len(xs):
            raise ValueError(
                f"{name}_kernel has {len(names)} names for {len(xs)} arrays; "
                "pass one name or one per array."
            )
        ks = [
            build_kernel(x, kn, name=f"{name}[{b}]", normalize=normalize, device=device)
            for b, (x, kn) in enumerate(zip(xs, names, strict=True))
        ]
        for b, k in enumerate(ks[1:], start=1):
            if k.n != ks[0].n:
                raise ValueError(
                    f"{name}[{b}] has {k.n} rows but {name}[0] has {ks[0].n}; "
                    "all arrays must describe the same examples."
                )
        return weighted_sum(ks, weights, arg=f"{name}_weights")
    if weights is not None:
        raise ValueError(
            f"{name}_weights was given but {name} is a single array; "
            f"pass {name} as a list of arrays to weight several kernels."
        )
    if not isinstance(kernel, str):
        raise ValueError(f"{name}_kernel must be one name for a single array; got {kernel!r}.")
    return build_kernel(xs, kernel, name=name, normalize=normalize, device=device)


def _is_number(v: object) -> bool:
    try:
        float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return True


def _is_component(x: object) -> bool:
    """True if ``x`` is one array of a weighted sum (a 2-D array, a Kernel, a label
    vector or a nested list of rows); False for one row of a nested-list matrix."""
    if isinstance(x, (np.ndarray, torch.Tensor)):
        return x.ndim >= 1
    if isinstance(x, (list, tuple)):  # a row of numbers is part of a matrix, not a component
        return bool(x) and isinstance(x[0], (list, tuple, np.ndarray, torch.Tensor))
    return not _is_scalar_row(x)


def _is_scalar_row(x: object) -> bool:
    """True if ``x`` looks like one number (so the outer list is a label vector)."""
    if isinstance(x, (int, float, np.number)):
        return True
    return isinstance(x, (np.ndarray, torch.Tensor)) and x.ndim == 0


__all__ = [
    "FACTOR_KERNELS",
    "TEMPERATURE_SCALES",
    "Kernel",
    "build_kernel",
    "build_kernels",
    "centered_cosine",
    "check_kernel_name",
    "cosine",
    "degenerate_rtol",
    "effective_temperatures",
    "frobenius_normalize",
    "kernel_names",
    "label_graph",
    "linear",
    "projection",
    "register_kernel",
    "row_normalize",
    "rows_identical",
    "view_graph",
    "weighted_sum",
]
