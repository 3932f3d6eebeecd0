"""Closed-form task-prior moments (Theorem 3.6), streamed over tiles.

For a model kernel ``M`` and a prior kernel ``K`` on ``n`` examples, over
ordered pairs ``(i, j)`` including the diagonal::

    mean     = Σ_ij M_ij s(K_ij / T)
    variance = Σ_ij M_ij² s(K_ij / T) s(-K_ij / T)        # s(x)(1 - s(x)), computed stably

Tiles ``(I, J)`` of rows give ``K_IJ = Z_I Z_Jᵀ`` and ``M_IJ = X_I X_Jᵀ``; symmetric
tiles are computed once and weighted twice. Memory is O(n·(d + r) + models·tile²).
Row sums of a tile are taken in the tile dtype and accumulated in float64.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import torch

from .checks import (
    ArrayLike,
    check_positive_int,
    check_temperatures,
    inverse_temperatures,
    resolve_device,
)
from .compiled import torch_epilogue
from .kernels import Kernel, build_kernels, check_kernel_name, effective_temperatures
from .tf32 import matmul_3x, split_tf32, tf32_products, tile_matmul_mode
from .uncertainty import (
    CONFIDENCE,
    DEFAULT_BLOCKS,
    choose_blocks,
    jackknife_interval,
    leave_one_block_out,
    normal_quantile,
)

SumsFn = Callable[..., torch.Tensor]
PAIRS_CONVENTION = "ordered pairs (i, j), diagonal included"
METHODS = ("exact", "monte_carlo")


class DegenerateKernelWarning(UserWarning):
    """A model (or prior) kernel is degenerate: its examples are numerically identical."""


@dataclass(frozen=True)
class MomentResult:
    """Mean and variance of ``Tr(MG)`` for ``G ~ μ_K`` at one temperature.

    ``mean_per_pair`` and ``variance_per_pair`` are divided by ``n²`` so runs with
    different ``n`` compare. For ``method="monte_carlo"`` the ``*_stderr`` fields
    hold the standard errors of ``mean`` and ``variance``; they are 0 for exact.
    ``temperature`` is the value given; ``effective_temperature`` the one inside
    ``s(K/T)`` (equal for ``temperature_scale="absolute"``). A ``degenerate`` model
    kernel (numerically identical examples) has NaN moments.

    ``mean_per_pair_ci`` and ``std_ci`` are ``confidence`` (default 95%) intervals: a
    delete-one-block jackknife over ``num_blocks`` seeded example blocks of the same tile
    pass (:mod:`tp_harness.core.uncertainty`), or ``± z·stderr`` for Monte Carlo; None
    when not computed. ``replicates`` holds the jackknife's leave-one-block-out values of
    (mean per pair, std / n), for paired comparisons of models scored in one pass.
    """

    mean: float
    variance: float
    std: float
    mean_per_pair: float
    variance_per_pair: float
    n: int
    temperature: float
    model_kernel: str
    prior_kernel: str
    normalize: str | None
    method: str
    mean_stderr: float = 0.0
    variance_stderr: float = 0.0
    num_pairs: int | None = None
    pairs: str = PAIRS_CONVENTION
    effective_temperature: float | None = None
    temperature_scale: str = "absolute"
    degenerate: bool = False
    mean_per_pair_ci: tuple[float, float] | None = None
    std_ci: tuple[float, float] | None = None
    num_blocks: int = 0
    replicates: tuple[tuple[float, ...], tuple[float, ...]] | None = field(
        default=None, repr=False, compare=False
    )

    def to_dict(self) -> dict[str, object]:
        """Plain-dict view (JSON-serialisable)."""
        return asdict(self)


@dataclass(frozen=True)
class Tile:
    """Row block ``rows`` x column block ``cols``, counted ``weight`` times."""

    rows: slice
    cols: slice
    weight: float


def tile_plan(n: int, block_size: int, symmetric: bool = True) -> list[Tile]:
    """Tiles covering the n x n pairs; upper triangle weighted twice when ``symmetric``."""
    starts = range(0, n, block_size)
    tiles = []
    for a in starts:
        for b in starts:
            if symmetric and b < a:
                continue
            w = 1.0 if (not symmetric or a == b) else 2.0
            tiles.append(
                Tile(slice(a, min(a + block_size, n)), slice(b, min(b + block_size, n)), w)
            )
    return tiles


def default_block_size(device: torch.device) -> int:
    """Tile edge: small enough for cache on CPU, large enough to saturate a GPU."""
    return 4096 if device.type == "cuda" else 1024


def _tile_sums(k: torch.Tensor, ms: torch.Tensor, inv_t: torch.Tensor) -> torch.Tensor:
    """Sums of one tile. k (b, c), ms (m, b, c), inv_t (t,) -> (m, t, 2) float64."""
    out = torch.empty(ms.shape[0], inv_t.shape[0], 2, dtype=torch.float64, device=k.device)
    for ti in range(inv_t.shape[0]):
        x = k * inv_t[ti]  # (b, c)
        p = ms * torch.sigmoid(x)  # (m, b, c): M s
        out[:, ti, 0] = p.sum(dim=2).double().sum(dim=1)
        p.mul_(ms).mul_(torch.sigmoid(x.neg_()))  # M² s s(-x)
        out[:, ti, 1] = p.sum(dim=2).double().sum(dim=1)
    return out


def _segments(sl: slice, edge: int) -> list[tuple[int, int, int]]:
    """``(local start, local stop, block)`` of the rows ``sl`` cut at multiples of ``edge``."""
    out, a = [], int(sl.start)
    while a < sl.stop:
        b = min(int(sl.stop), (a // edge + 1) * edge)
        out.append((a - int(sl.start), b - int(sl.start), a // edge))
        a = b
    return out


def _segment_sums(
    p: torch.Tensor, rows: list[tuple[int, int, int]], cols: list[tuple[int, int, int]]
) -> torch.Tensor:
    """(m, b, c) -> (m, len(rows), len(cols)) float64 sums over row x column segments
    (one pass over ``p``, like the plain row sums)."""
    c = torch.stack([p[..., c0:c1].sum(dim=-1) for c0, c1, _ in cols], dim=-1).double()
    return torch.stack([c[:, r0:r1].sum(dim=1) for r0, r1, _ in rows], dim=1)


def _block_sums_buffer(
    ms: torch.Tensor,
    inv_t: torch.Tensor,
    rows: list[tuple[int, int, int]],
    cols: list[tuple[int, int, int]],
) -> torch.Tensor:
    """Empty ``(m, t, 2, len(rows), len(cols))`` float64 sums on the tiles' device."""
    shape = (ms.shape[0], inv_t.shape[0], 2, len(rows), len(cols))
    return torch.empty(shape, dtype=torch.float64, device=ms.device)


def _tile_block_sums(
    k: torch.Tensor,
    ms: torch.Tensor,
    inv_t: torch.Tensor,
    rows: list[tuple[int, int, int]],
    cols: list[tuple[int, int, int]],
) -> torch.Tensor:
    """Sums of one tile per (row block, column block): -> (m, t, 2, len(rows), len(cols))."""
    out = _block_sums_buffer(ms, inv_t, rows, cols)
    for ti in range(inv_t.shape[0]):
        x = k * inv_t[ti]
        p = ms * torch.sigmoid(x)
        out[:, ti, 0] = _segment_sums(p, rows, cols)
        p.mul_(ms).mul_(torch.sigmoid(x.neg_()))
        out[:, ti, 1] = _segment_sums(p, rows, cols)
    return out


def moment_sums(
    models: Sequence[Kernel],
    prior: Kernel,
    temperatures: Sequence[float],
    tiles: Sequence[Tile],
    *,
    progress: Callable[[int], None] | None = None,
    num_blocks: int = 0,
    block_edge: int = 0,
) -> torch.Tensor:
    """Raw sums over ``tiles``: (models, temperatures, 2) float64 of (mean, variance).

    The building block of :func:`task_prior_moments`; a distributed caller passes
    each rank a share of :func:`tile_plan` and adds the results. With ``num_blocks = B
    > 0`` the sums stay per block pair: (models, temperatures, 2, B, B), entry ``[a, b]``
    summing the ordered pairs with ``i // block_edge = a`` and ``j // block_edge = b``
    (a symmetric tile fills both ``[a, b]`` and ``[b, a]``); their total is the
    ``num_blocks = 0`` result. Each tile's reduction is cut at the block edges, so the
    blocks cost no extra products and the tiles keep their size. This is what the block
    jackknife resamples.
    """
    inv_t = torch.tensor(
        inverse_temperatures(temperatures, prior.dtype), dtype=prior.dtype, device=prior.device
    )
    shape = (len(models), len(temperatures), 2, *((num_blocks, num_blocks) if num_blocks else ()))
    total = torch.zeros(shape, dtype=torch.float64, device=inv_t.device)
    work = sum(_len(t.rows) * _len(t.cols) for t in tiles) * len(models) * len(temperatures)
    fused = _use_fused(models, prior, work)
    compiled_torch = not fused and _use_compiled_torch(models, prior)
    buffers = _TileBuffers(len(models), prior.dtype, prior.device, tile_matmul_mode(prior.device))
    for tile in tiles:
        k = buffers.prior_tile(prior, tile.rows, tile.cols)
        ms = buffers.model_tiles(models, tile.rows, tile.cols)
        if num_blocks:
            rows, cols = _segments(tile.rows, block_edge), _segments(tile.cols, block_edge)
        else:  # one segment each: the whole tile
            rows, cols = [(0, _len(tile.rows), 0)], [(0, _len(tile.cols), 0)]
        if fused:
            sums = _fused_block_sums(k, inv_t, ms, rows, cols, buffers)
        elif compiled_torch:
            sums = _compiled_block_sums(k, inv_t, ms, rows, cols)
        elif num_blocks:
            sums = _tile_block_sums(k, ms, inv_t, rows, cols)
        else:
            sums = _tile_sums(k, ms, inv_t)[..., None, None]
        if not num_blocks:
            total += tile.weight * sums[..., 0, 0]
        else:  # segments cover consecutive blocks: one slice of the block grid per tile
            r0, c0 = rows[0][2], cols[0][2]
            total[..., r0 : r0 + len(rows), c0 : c0 + len(cols)] += sums
            if tile.weight == 2.0:  # the mirror tile of a symmetric pair
                total[..., c0 : c0 + len(cols), r0 : r0 + len(rows)] += sums.transpose(-1, -2)
        if progress is not None:
            progress(1)
    return total


def _len(sl: slice) -> int:
    return int(sl.stop) - int(sl.start)


class _TileBuffers:
    """The prior tile and the model tiles written into reused buffers (one per tile shape),
    not allocated and stacked into new tensors per tile."""

    def __init__(
        self, num_models: int, dtype: torch.dtype, device: torch.device, mode: str = "fp32"
    ) -> None:
        self.m, self.dtype, self.device = num_models, dtype, device
        self.mode = mode if dtype == torch.float32 else "fp32"  # TF32 is for float32 only
        self.bufs: dict[tuple[int, int], torch.Tensor] = {}
        self.prior_bufs: dict[tuple[int, int], torch.Tensor] = {}
        self.splits: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
        self.sig: dict[tuple[int, ...], tuple[torch.Tensor, torch.Tensor]] = {}

    def _split(self, factor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The factor's TF32 split (:func:`~tp_harness.core.tf32.split_tf32`), once per pass."""
        key = id(factor)
        if key not in self.splits:
            self.splits[key] = split_tf32(factor)
        return self.splits[key]

    def _product_3x(
        self, factor: torch.Tensor, rows: slice, cols: slice, out: torch.Tensor
    ) -> torch.Tensor:
        hi, lo = self._split(factor)
        with tf32_products(True):
            return matmul_3x((hi[rows], lo[rows]), (hi[cols], lo[cols]), out=out)

    def sigmoids(self, k: torch.Tensor, inv_t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(s(K/T), s(K/T) s(-K/T))``, each ``(t, b, c)``, in reused buffers."""
        key = (-1, *k.shape)
        pair = self.sig.get(key)
        if pair is None:
            shape = (inv_t.shape[0], *k.shape)
            pair = (
                torch.empty(shape, dtype=k.dtype, device=k.device),
                torch.empty(shape, dtype=k.dtype, device=k.device),
            )
            self.sig[key] = pair
        sig, var = pair
        for ti in range(inv_t.shape[0]):  # per T, so T's values do not depend on the others
            torch.mul(k, inv_t[ti], out=var[ti])  # x = K/T
            torch.sigmoid(var[ti], out=sig[ti])
            var[ti].neg_().sigmoid_().mul_(sig[ti])  # s(-x) s(x)
        return sig, var

    def prior_tile(self, prior: Kernel, rows: slice, cols: slice) -> torch.Tensor:
        """``K[rows, cols]``, a factor's product written into a reused buffer."""
        if prior.factor is None or prior.factor.dtype != self.dtype:
            return prior.tile(rows, cols)
        shape = (_len(rows), _len(cols))
        buf = self.prior_bufs.get(shape)
        if buf is None:
            buf = torch.empty(shape, dtype=self.dtype, device=self.device)
            self.prior_bufs[shape] = buf
        if self.mode != "fp32":  # 3xtf32 and tf32: the prior tile from three TF32 products
            return self._product_3x(prior.factor, rows, cols, buf)
        return torch.matmul(prior.factor[rows], prior.factor[cols].T, out=buf)

    def model_tiles(self, models: Sequence[Kernel], rows: slice, cols: slice) -> torch.Tensor:
        shape = (_len(rows), _len(cols))
        buf = self.bufs.get(shape)
        if buf is None:
            buf = torch.empty((self.m, *shape), dtype=self.dtype, device=self.device)
            self.bufs[shape] = buf
        for i, model in enumerate(models):
            if model.factor is not None and model.factor.dtype == self.dtype:
                if self.mode == "3xtf32":
                    self._product_3x(model.factor, rows, cols, buf[i])
                else:
                    with tf32_products(self.mode == "tf32"):
                        torch.matmul(model.factor[rows], model.factor[cols].T, out=buf[i])
            else:
                buf[i].copy_(model.tile(rows, cols))
        return buf


#: Below this much work (tile entries x models x temperatures) the torch epilogue is used:
#: the compiled one pays about 0.4 s once per process to load its parallel machine code
#: and saves about 2 ns per (entry, model, temperature) (measured on 2 cores; at n = 979
#: with 8 models x 2 temperatures, the main job's size, torch takes 0.16 s in all).
FUSED_MIN_WORK = 1 << 28


def _use_fused(models: Sequence[Kernel], prior: Kernel, work: int) -> bool:
    """The compiled epilogue runs on CPU with numba, float32/float64, one dtype, for
    passes of at least :data:`FUSED_MIN_WORK`."""
    from . import compiled

    return (
        work >= FUSED_MIN_WORK
        and compiled.use_jit(prior.device)
        and prior.dtype in (torch.float32, torch.float64)
        and all(m.dtype == prior.dtype for m in models)
    )


def _fused_block_sums(
    k: torch.Tensor,
    inv_t: torch.Tensor,
    ms: torch.Tensor,
    rows: list[tuple[int, int, int]],
    cols: list[tuple[int, int, int]],
    buffers: _TileBuffers,
) -> torch.Tensor:
    """:func:`_tile_block_sums` through the compiled epilogue (one pass over the tile):
    float32 tiles compute their sigmoids inside it, float64 ones take torch's."""
    from . import compiled

    jit = compiled.kernels("moment_kernels")
    row_seg = np.repeat(np.arange(len(rows)), [r1 - r0 for r0, r1, _ in rows]).astype(np.int64)
    col_seg = np.repeat(np.arange(len(cols)), [c1 - c0 for c0, c1, _ in cols]).astype(np.int64)
    if k.dtype == torch.float32:
        out = jit.tile_epilogue_fused(
            np.ascontiguousarray(k.numpy()),
            inv_t.numpy(),
            ms.numpy(),
            row_seg,
            col_seg,
            len(rows),
            len(cols),
        )
    else:
        sig, var = buffers.sigmoids(k, inv_t)
        out = jit.tile_epilogue(
            sig.numpy(), var.numpy(), ms.numpy(), row_seg, col_seg, len(rows), len(cols)
        )
    return torch.from_numpy(out)


def _use_compiled_torch(models: Sequence[Kernel], prior: Kernel) -> bool:
    """The ``torch.compile`` epilogue (:mod:`.compiled.torch_epilogue`): on CUDA with Triton
    by default, float32/float64 tiles of one dtype."""
    return (
        torch_epilogue.use_compiled(prior.device)
        and prior.dtype in (torch.float32, torch.float64)
        and all(m.dtype == prior.dtype for m in models)
    )


def _compiled_block_sums(
    k: torch.Tensor,
    inv_t: torch.Tensor,
    ms: torch.Tensor,
    rows: list[tuple[int, int, int]],
    cols: list[tuple[int, int, int]],
) -> torch.Tensor:
    """:func:`_tile_block_sums` through the compiled torch epilogue: one call per column
    segment (float64 row sums), then the row segments summed."""
    out = _block_sums_buffer(ms, inv_t, rows, cols)
    for ci, (c0, c1, _) in enumerate(cols):
        r = torch_epilogue.row_sums(k[:, c0:c1], ms[..., c0:c1], inv_t)  # (m, t, 2, b)
        for ri, (r0, r1, _) in enumerate(rows):
            out[..., ri, ci] = r[..., r0:r1].sum(dim=-1)
    return out


def _mc_chunks(
    n: int, num_pairs: int, seed: int | None, chunk: int = 1 << 20
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Uniform ordered pairs (i, j) with replacement, drawn on the CPU for reproducibility."""
    gen = torch.Generator().manual_seed(seed if seed is not None else torch.seed())
    done = 0
    while done < num_pairs:
        m = min(chunk, num_pairs - done)
        yield (torch.randint(n, (m,), generator=gen), torch.randint(n, (m,), generator=gen))
        done += m


def monte_carlo_moments(
    models: Sequence[Kernel],
    prior: Kernel,
    temperatures: Sequence[float],
    num_pairs: int,
    seed: int | None,
) -> torch.Tensor:
    """Unbiased estimates and standard errors: (models, temperatures, 2 [mean, var], 2 [est, se]).

    Draws ``num_pairs`` ordered pairs uniformly (with replacement) and averages
    ``n²·f(i, j)``; standard errors from the sample variance (Chan's merge).
    """
    n = prior.n
    shape = (len(models), len(temperatures), 2)
    count, mu, m2 = (
        0,
        torch.zeros(shape, dtype=torch.float64),
        torch.zeros(shape, dtype=torch.float64),
    )
    inv_t = torch.tensor(inverse_temperatures(temperatures, torch.float64), dtype=torch.float64)
    dev = prior.device
    for i, j in _mc_chunks(n, num_pairs, seed):
        i, j = i.to(dev), j.to(dev)
        x = prior.entries(i, j).double().cpu()[None, :] * inv_t[:, None]  # (t, c)
        mv = torch.stack([m.entries(i, j).double().cpu() for m in models])  # (m, c)
        vals = torch.stack(
            [
                mv[:, None] * torch.sigmoid(x),
                mv[:, None] ** 2 * torch.sigmoid(x) * torch.sigmoid(-x),
            ],
            dim=2,
        )
        vals = vals * float(n) ** 2  # (m, t, 2, c)
        c = vals.shape[-1]
        cmu = vals.mean(dim=-1)
        cm2 = ((vals - cmu[..., None]) ** 2).sum(dim=-1)
        delta = cmu - mu
        tot = count + c
        mu = mu + delta * (c / tot)
        m2 = m2 + cm2 + delta**2 * (count * c / tot)
        count = tot
    se = (m2 / max(count - 1, 1) / count).sqrt()
    return torch.stack([mu, se], dim=-1)


def _compute_dtype(kernels: Sequence[Kernel], dtype: torch.dtype | None) -> torch.dtype:
    if dtype is not None:
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be torch.float32 or torch.float64; got {dtype}.")
        return dtype
    return torch.float64 if any(k.dtype == torch.float64 for k in kernels) else torch.float32


def _build_models(
    model: ArrayLike | Mapping[str, ArrayLike],
    model_kernel: str,
    normalize: str | None,
    device: torch.device,
) -> tuple[dict[str, Kernel], bool]:
    if isinstance(model, Mapping):
        if not model:
            raise ValueError("model is an empty mapping; pass at least one name -> array.")
        return (
            {
                str(name): build_kernels(
                    x, model_kernel, name=f"model[{name!r}]", normalize=normalize, device=device
                )
                for name, x in model.items()
            },
            True,
        )
    return {
        "model": build_kernels(
            model, model_kernel, name="model", normalize=normalize, device=device
        )
    }, False


def _result(
    sums: torch.Tensor | None,
    se: torch.Tensor | None,
    n: int,
    temperature: float,
    effective: float,
    scale: str,
    model_kernel: str,
    prior_kernel: str,
    normalize: str | None,
    method: str,
    num_pairs: int | None,
) -> MomentResult:
    """One record; ``sums=None`` for a degenerate model (NaN moments)."""
    nan = float("nan")
    mean, var = (nan, nan) if sums is None else (float(sums[0]), float(sums[1]))
    n2 = float(n) ** 2
    return MomentResult(
        mean=mean,
        variance=var,
        std=math.sqrt(max(var, 0.0)) if sums is not None else nan,
        mean_per_pair=mean / n2,
        variance_per_pair=var / n2,
        n=n,
        temperature=temperature,
        model_kernel=model_kernel,
        prior_kernel=prior_kernel,
        normalize=normalize,
        method=method,
        mean_stderr=float(se[0]) if se is not None else 0.0,
        variance_stderr=float(se[1]) if se is not None else 0.0,
        num_pairs=num_pairs,
        effective_temperature=effective,
        temperature_scale=scale,
        degenerate=sums is None,
    )


def _check_rows(models: Mapping[str, Kernel], n: int, many: bool) -> None:
    """Every model kernel has the prior's ``n`` rows (a ValueError naming the model)."""
    for name, mk in models.items():
        if mk.n != n:
            label = "model" if not many else f"model[{name!r}]"
            raise ValueError(
                f"{label} has {mk.n} rows but prior has {n}; "
                "both must describe the same examples in the same order."
            )


def _warn_degenerate(models: Mapping[str, Kernel], prior: Kernel, many: bool) -> None:
    for name, m in models.items():
        if m.degenerate:
            label = f"model[{name!r}]" if many else "model"
            warnings.warn(
                f"{label} is degenerate: its examples are numerically identical (constant "
                "rows), so it carries no information; its moments are NaN.",
                DegenerateKernelWarning,
                stacklevel=3,
            )
    if prior.degenerate:
        warnings.warn(
            "prior is degenerate: its examples are numerically identical, so every task "
            "is equally likely; the moments do not rank models.",
            DegenerateKernelWarning,
            stacklevel=3,
        )


@dataclass(frozen=True)
class _Blocks:
    """How the examples are cut into jackknife blocks for one pass."""

    num_blocks: int
    edge: int  # rows per block (consecutive after the permutation)
    perm: torch.Tensor  # (n,) seeded order: block a holds perm[a*edge:(a+1)*edge]

    @property
    def counts(self) -> torch.Tensor:
        n = self.perm.numel()
        return torch.tensor(
            [min(self.edge, n - a) for a in range(0, n, self.edge)], dtype=torch.float64
        )


def _plan_blocks(n: int, num_blocks: int | None, seed: int | None) -> _Blocks | None:
    """Seeded blocks of ``ceil(n / B)`` rows, or None when intervals are off or n is tiny."""
    b = choose_blocks(n, num_blocks)
    if not b:
        return None
    edge = -(-n // b)
    gen = torch.Generator().manual_seed(0 if seed is None else int(seed))
    return _Blocks(-(-n // edge), edge, torch.randperm(n, generator=gen))


def _sums(
    mks: list[Kernel],
    prior: Kernel,
    temps: list[float],
    n: int,
    method: str,
    num_pairs: int | None,
    seed: int | None,
    block_size: int | None,
    dev: torch.device,
    progress: Callable[[int], None] | None,
    sums_fn: SumsFn | None,
    num_blocks: int | None,
) -> tuple[torch.Tensor, torch.Tensor | None, torch.Tensor | None, _Blocks | None]:
    """(models, temperatures, 2) sums; Monte Carlo standard errors; and for the exact pass
    with intervals the (models, temperatures, 2, B, B) block sums and their blocks.

    With intervals the kernels of ``mks`` are replaced in the list by their block-ordered
    copies one at a time, so a caller that keeps no other reference holds one extra factor
    at a time, not a second copy of every model."""
    if method == "monte_carlo":
        if num_pairs is None:
            raise ValueError("method='monte_carlo' needs num_pairs (e.g. num_pairs=1_000_000).")
        check_positive_int(num_pairs, "num_pairs", minimum=2)
    if not mks:  # every model is degenerate: nothing to sum
        return torch.zeros(0, len(temps), 2, dtype=torch.float64), None, None, None
    if method == "monte_carlo":
        assert num_pairs is not None
        est = monte_carlo_moments(mks, prior, temps, num_pairs, seed)
        return est[..., 0], est[..., 1], None, None
    bs = (
        check_positive_int(block_size, "block_size")
        if block_size is not None
        else default_block_size(dev)
    )
    symmetric = prior.is_factor and all(m.is_factor for m in mks)
    fn = sums_fn or moment_sums
    blocks = _plan_blocks(n, num_blocks, seed)
    if blocks is None:
        return (
            fn(mks, prior, temps, tile_plan(n, bs, symmetric), progress=progress).cpu(),
            None,
            None,
            None,
        )
    perm = blocks.perm.to(prior.device)
    for i in range(len(mks)):  # in place: each unpermuted factor is freed once replaced
        mks[i] = mks[i].permuted(perm)
    by_block = fn(
        mks,
        prior.permuted(perm),
        temps,
        tile_plan(n, bs, symmetric),
        progress=progress,
        num_blocks=blocks.num_blocks,
        block_edge=blocks.edge,
    ).cpu()
    return by_block.sum(dim=(-1, -2)), None, by_block, blocks


def _with_intervals(
    r: MomentResult,
    by_block: torch.Tensor | None,
    blocks: _Blocks | None,
    se: torch.Tensor | None,
    level: float,
) -> MomentResult:
    """``r`` with its intervals: jackknife over blocks (``by_block`` (2, B, B)) or Monte Carlo."""
    if r.degenerate:
        return r
    n = float(r.n)
    if by_block is not None and blocks is not None:
        reps = leave_one_block_out(by_block, blocks.counts)  # (2, B): mean pp, variance pp
        mean_reps, std_reps = reps[0], reps[1].clamp_min(0.0).sqrt()
        mci = jackknife_interval(r.mean_per_pair, mean_reps, level)
        sci = jackknife_interval(r.std / n, std_reps, level)
        return replace(
            r,
            mean_per_pair_ci=mci,
            std_ci=(sci[0] * n, sci[1] * n),
            num_blocks=blocks.num_blocks,
            replicates=(tuple(mean_reps.tolist()), tuple(std_reps.tolist())),
        )
    if se is not None:
        z = normal_quantile(0.5 + level / 2)
        hm = z * float(se[0]) / n**2
        hs = z * float(se[1]) / (2.0 * r.std) if r.std > 0 else math.inf
        return replace(
            r,
            mean_per_pair_ci=(r.mean_per_pair - hm, r.mean_per_pair + hm),
            std_ci=(r.std - hs, r.std + hs),
        )
    return r


def task_prior_moments(
    model: ArrayLike | Mapping[str, ArrayLike],
    prior: ArrayLike | Sequence[ArrayLike],
    temperature: float | Sequence[float],
    *,
    model_kernel: str = "centered_cosine",
    prior_kernel: str | Sequence[str] = "centered_cosine",
    prior_weights: Sequence[float] | None = None,
    normalize: str | None = None,
    temperature_scale: str = "absolute",
    num_blocks: int | None = DEFAULT_BLOCKS,
    confidence: float = CONFIDENCE,
    method: str = "exact",
    num_pairs: int | None = None,
    seed: int | None = None,
    block_size: int | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    progress: Callable[[int], None] | None = None,
    sums_fn: SumsFn | None = None,
) -> MomentResult | dict[str, dict[float, MomentResult]]:
    """Mean and variance of the alignment ``Tr(MG)`` over all tasks ``G ~ μ_K`` (Theorem 3.6).

    Args:
        model: (n, d) features, or a mapping name -> (n, d) for several models in one pass.
            With ``model_kernel="precomputed"`` an (n, n) matrix.
        prior: (n, r) features; a list of arrays for a weighted sum of kernels
            (``prior_weights``, one per array, >= 0); an (n,) integer vector with
            ``prior_kernel="label_graph"``; an (n, n) matrix with ``"precomputed"``.
        temperature: ``T > 0``, or a sequence of them (all in one pass).
        normalize: ``"frobenius"`` divides each kernel by its Frobenius norm.
        temperature_scale: ``"absolute"`` (default, the paper's ``T``) or ``"rms"``:
            ``T`` times the RMS of the prior kernel's entries (``||K||_F / n`` of the
            kernel after ``normalize``), which means the same across ``n`` and datasets.
        num_blocks: example blocks of the jackknife intervals (default 20, capped at
            ``n // 2``; ``None`` or 0: no intervals). The blocks come from a permutation
            seeded by ``seed`` (default 0); each tile's reduction is cut at the block
            edges, so the intervals cost no extra products.
        confidence: level of ``mean_per_pair_ci`` and ``std_ci`` (default 0.95).
        method: ``"exact"`` (tiles) or ``"monte_carlo"`` (``num_pairs`` uniform ordered
            pairs with ``seed``; unbiased, with standard errors).
        block_size: tile edge (default 1024 on CPU, 4096 on CUDA).
        dtype: tile dtype; default float64 if any input is float64, else float32.
            Sums are accumulated in float64 either way.
        progress: called with the number of tiles done (e.g. ``tqdm.update``).
        sums_fn: replaces :func:`moment_sums` (same signature), e.g. to split the
            tiles over processes (:func:`tp_harness.distributed.distributed_moment_sums`).

    Returns:
        A :class:`MomentResult` for one array and one temperature; otherwise
        ``{model_name: {temperature: MomentResult}}`` (name ``"model"`` for an array),
        keyed by the temperatures as given. A degenerate model (numerically identical
        examples, see :mod:`tp_harness.core.kernels`) gets NaN moments,
        ``degenerate=True`` and a :class:`DegenerateKernelWarning` naming it.
    """
    temps, many_t = check_temperatures(temperature)
    if method not in METHODS:
        raise ValueError(f"method={method!r} is not supported; use one of {METHODS}.")
    check_kernel_name(model_kernel, "model_kernel")
    names = prior_kernel if isinstance(prior_kernel, (list, tuple)) else [prior_kernel]
    for kn in names or [None]:
        check_kernel_name(kn, "prior_kernel")  # type: ignore[arg-type]
    dev = resolve_device(device)
    # an unknown TP_HARNESS_TILE_MATMUL or TP_HARNESS_COMPILE_EPILOGUE fails before compute
    tile_matmul_mode(dev)
    torch_epilogue.use_compiled(dev)
    models, many_m = _build_models(model, model_kernel, normalize, dev)
    prior_k = build_kernels(
        prior, prior_kernel, weights=prior_weights, name="prior", normalize=normalize, device=dev
    )
    n = prior_k.n
    _check_rows(models, n, many_m)
    eff = effective_temperatures(prior_k, temps, temperature_scale)
    _warn_degenerate(models, prior_k, many_m)
    live = [name for name, m in models.items() if not m.degenerate]
    cdt = _compute_dtype([prior_k, *models.values()], dtype)
    prior_k = prior_k.to(dev, cdt)
    mks = [models[name].to(dev, cdt) for name in live]
    model_names = list(models)
    del models  # from here ``mks`` holds the only references: _sums replaces them in turn
    if not 0.0 < float(confidence) < 1.0:
        raise ValueError(f"confidence must lie in (0, 1); got {confidence!r}.")
    sums, se, by_block, blocks = _sums(
        mks,
        prior_k,
        eff,
        n,
        method,
        num_pairs,
        seed,
        block_size,
        dev,
        progress,
        sums_fn,
        num_blocks,
    )
    pk = prior_kernel if isinstance(prior_kernel, str) else "+".join(prior_kernel)
    mc_pairs = num_pairs if method == "monte_carlo" else None
    out: dict[str, dict[float, MomentResult]] = {}
    for name in model_names:
        mi = live.index(name) if name in live else None
        out[name] = {}
        for ti, t in enumerate(temps):
            r = _result(
                None if mi is None else sums[mi, ti],
                None if se is None or mi is None else se[mi, ti],
                n,
                t,
                eff[ti],
                temperature_scale,
                model_kernel,
                pk,
                normalize,
                method,
                mc_pairs,
            )
            out[name][t] = _with_intervals(
                r,
                None if by_block is None or mi is None else by_block[mi, ti],
                blocks,
                None if se is None or mi is None else se[mi, ti],
                float(confidence),
            )
    if not many_m and not many_t:
        return out["model"][temps[0]]
    return out
