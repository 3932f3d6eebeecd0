"""Streaming task-prior moments vs a dense n x n implementation of the same formula.

Each configuration runs in a fresh subprocess so its peak RSS is its own. Prints a
markdown table: time, peak RSS, achieved GFLOP/s of the tile matrix products and
the ratio to this machine's fp32 matmul rate measured in the same run.

    python benchmarks/bench_moments.py                 # CPU: 4k/8k/16k both, 50k/100k ours
    python benchmarks/bench_moments.py --device cuda   # the same on a GPU
    python benchmarks/bench_moments.py --device cuda --dim 768 --compare --alone 1000000
    python benchmarks/bench_moments.py --interval-cost # CI blocks vs no CIs, same process
    python benchmarks/bench_moments.py --epilogue      # compiled vs torch tile epilogue
    python benchmarks/bench_moments.py --ceiling       # products alone + epilogue alone
    python benchmarks/bench_moments.py --build --dim 768  # centered-cosine kernel build
    python benchmarks/bench_moments.py --device cuda --dim 768 --precision 100000  # TF32 modes
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from typing import Any

import torch

D = R = 384
T = 1.0


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def matmul_rate(device: torch.device, size: int = 2048, reps: int = 10) -> float:
    """Peak-ish fp32 GEMM rate (GFLOP/s) of a square ``size`` product."""
    a = torch.randn(size, size, device=device)
    b = torch.randn(size, size, device=device)
    a @ b
    _sync(device)
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    _sync(device)
    return 2 * size**3 * reps / (time.perf_counter() - t0) / 1e9


def _data(n: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(n)
    x = torch.randn(n, D, generator=g) * torch.rand(D, generator=g) * 3 + torch.randn(
        D, generator=g
    )
    p = torch.randn(n, R, generator=g) + 0.5
    return x.to(device), p.to(device)


def dense_moments(x: torch.Tensor, p: torch.Tensor, t: float) -> tuple[float, float]:
    """What the reference code does: full n x n float32 matrices, then reductions."""
    from tp_harness.core.kernels import centered_cosine

    zx, zp = centered_cosine(x), centered_cosine(p)
    m = zx @ zx.T
    k = zp @ zp.T
    s = torch.sigmoid(k / t)
    mean = (m * s).sum()
    var = (m * m * s * (1 - s)).sum()
    return float(mean), float(var)


#: the GEMM rate is timed on at most this many tiles of the plan (evenly spaced, edge
#: tiles included when they are picked): at n = 1M on a GPU the full plan has 30,135 tiles
#: of 4096 and timing them all would cost as much as the pass itself
BOUND_TILES = 1024


def tile_matmul_seconds(
    x: torch.Tensor, p: torch.Tensor, block: int, device: torch.device
) -> tuple[float, float, float]:
    """Time only the tile products of the streaming pass, on at most :data:`BOUND_TILES`
    of its tiles (the rate is what the table reports). Returns (seconds, flops of the
    timed tiles, flops of the whole plan)."""
    from tp_harness.core.kernels import centered_cosine
    from tp_harness.core.moments import Tile, tile_plan

    def flops(tile: Tile) -> float:
        rows, cols = tile.rows, tile.cols
        return 2.0 * (rows.stop - rows.start) * (cols.stop - cols.start) * (D + R)

    zx, zp = centered_cosine(x), centered_cosine(p)
    plan = tile_plan(x.shape[0], block, symmetric=True)
    tiles = plan[:: -(-len(plan) // BOUND_TILES)]
    zp[tiles[0].rows] @ zp[tiles[0].cols].T  # first-call setup (cuBLAS handle) untimed
    _sync(device)
    t0 = time.perf_counter()
    for tile in tiles:
        zp[tile.rows] @ zp[tile.cols].T
        zx[tile.rows] @ zx[tile.cols].T
    _sync(device)
    return time.perf_counter() - t0, sum(map(flops, tiles)), sum(map(flops, plan))


def run_one(impl: str, n: int, device_name: str, block: int | None) -> dict[str, float]:
    """Body of one subprocess: time one implementation at one n."""
    from tp_harness import task_prior_moments
    from tp_harness.core.moments import default_block_size

    device = torch.device(device_name)
    x, p = _data(n, device)
    _sync(device)
    t0 = time.perf_counter()
    if impl == "dense":
        mean, var = dense_moments(x, p, T)
    else:
        r = task_prior_moments(x, p, T, device=device, block_size=block)
        mean, var = r.mean, r.variance  # type: ignore[union-attr]
    _sync(device)
    seconds = time.perf_counter() - t0
    out = {"seconds": seconds, "mean": mean, "variance": var}
    if impl == "ours":
        bs = block or default_block_size(device)
        mm_s, timed, flops = tile_matmul_seconds(x, p, bs, device)
        out.update(matmul_seconds=mm_s, timed_flops=timed, flops=flops, block=bs)
    out["peak_rss_gib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20
    if device.type == "cuda":
        out["peak_gpu_gib"] = torch.cuda.max_memory_allocated() / 2**30
    return out


def interval_cost(n: int, device_name: str, repeats: int = 5) -> dict[str, float]:
    """Best-of-``repeats`` seconds of the exact pass without intervals and with the
    default 20 jackknife blocks, interleaved in one process (same data, same threads)."""
    from tp_harness import task_prior_moments

    device = torch.device(device_name)
    x, p = _data(n, device)
    best = {"plain": float("inf"), "blocks": float("inf")}
    for _ in range(repeats):
        for name, blocks in (("plain", None), ("blocks", 20)):
            _sync(device)
            t0 = time.perf_counter()
            task_prior_moments(x, p, T, device=device, num_blocks=blocks)
            _sync(device)
            best[name] = min(best[name], time.perf_counter() - t0)
    return best


#: temperatures of ``--precision`` (small T is where the prior tile's rounding matters)
PRECISION_TEMPS = (0.01, 0.1, 1.0)


def precision_table(n: int, device_name: str) -> None:
    """Each tile-product mode (``TP_HARNESS_TILE_MATMUL``) against a float64 pass on the
    same data: seconds and the largest relative difference of the mean and the variance
    over :data:`PRECISION_TEMPS` (one process, each mode timed after a warm-up)."""
    import os

    from tp_harness import task_prior_moments
    from tp_harness.core.tf32 import MODES

    device = torch.device(device_name)
    x, p = _data(n, device)
    temps = list(PRECISION_TEMPS)
    _sync(device)
    t0 = time.perf_counter()
    ref = task_prior_moments(x, p, temps, device=device, dtype=torch.float64, num_blocks=None)
    _sync(device)
    print(f"n = {n}, d = r = {D}, {device}; float64 reference {time.perf_counter() - t0:.2f} s\n")
    print("| tile products | seconds | max rel. diff mean | max rel. diff variance |")
    print("|---|---|---|---|")
    for mode in MODES:
        os.environ["TP_HARNESS_TILE_MATMUL"] = mode
        task_prior_moments(x[:4096], p[:4096], temps, device=device)  # warm-up
        _sync(device)
        t0 = time.perf_counter()
        got = task_prior_moments(x, p, temps, device=device, num_blocks=None)
        _sync(device)
        sec = time.perf_counter() - t0
        dm = max(
            abs(got["model"][t].mean - ref["model"][t].mean) / abs(ref["model"][t].mean)
            for t in temps
        )
        dv = max(
            abs(got["model"][t].variance - ref["model"][t].variance) / abs(ref["model"][t].variance)
            for t in temps
        )
        print(f"| {mode} | {sec:.2f} | {dm:.1e} | {dv:.1e} |")
    os.environ.pop("TP_HARNESS_TILE_MATMUL")


#: (d = r, models, temperatures) rows of ``--epilogue``.
EPILOGUE_CASES = ((64, 1, 1), (128, 1, 1), (384, 1, 1), (768, 1, 1), (384, 8, 3))


def _epilogue_inputs(
    n: int, d: int, m: int, t: int
) -> tuple[torch.Tensor, dict[str, torch.Tensor], list[float]]:
    """The prior features, ``m`` model features and ``t`` temperatures of ``--epilogue`` and
    ``--ceiling``, with the compiled epilogue forced at every size (the default takes it
    only above FUSED_MIN_WORK, which a 1 x 1 pass at n = 16k does not reach) and warmed
    outside the timing."""
    from tp_harness import task_prior_moments
    from tp_harness.core import moments

    g = torch.Generator().manual_seed(d)
    p = torch.randn(n, d, generator=g) + 0.5
    models = {f"m{i}": torch.randn(n, d, generator=g) + 0.2 * p for i in range(m)}
    temps = [10.0 ** (-1 + i) for i in range(t)]
    moments.FUSED_MIN_WORK = 0
    task_prior_moments({"w": p[:256]}, p[:256], temps)
    return p, models, temps


def _tile_products(zp: torch.Tensor, zs: list[torch.Tensor], plan: list[Any]) -> None:
    """The tile products alone (the GEMM bound): prior tile + every model tile per tile."""
    for tile in plan:
        zp[tile.rows] @ zp[tile.cols].T
        for z in zs:
            z[tile.rows] @ z[tile.cols].T


def epilogue_one(n: int, d: int, m: int, t: int, repeats: int = 3) -> dict[str, float]:
    """Body of one ``--epilogue`` subprocess: best-of-``repeats`` seconds of the exact pass
    (default jackknife blocks) for ``m`` models x ``t`` temperatures, and of the tile
    products alone (the GEMM bound: prior tile + ``m`` model tiles per tile)."""
    from tp_harness import task_prior_moments
    from tp_harness.core.kernels import centered_cosine
    from tp_harness.core.moments import tile_plan

    p, models, temps = _epilogue_inputs(n, d, m, t)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        r = task_prior_moments(models, p, temps)
        best = min(best, time.perf_counter() - t0)
    zs = [centered_cosine(x) for x in models.values()]
    zp = centered_cosine(p)
    plan = tile_plan(n, 1024, symmetric=True)
    gemm = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        _tile_products(zp, zs, plan)
        gemm = min(gemm, time.perf_counter() - t0)
    first = r["m0"][temps[0]]  # type: ignore[index]
    return {"seconds": best, "gemm_seconds": gemm, "mean": first.mean, "variance": first.variance}


def _spawn_epilogue(n: int, d: int, m: int, t: int, torch_path: bool) -> dict[str, float]:
    import os

    env = {**os.environ, **({"TP_HARNESS_NO_JIT": "1"} if torch_path else {})}
    cmd = [sys.executable, __file__, "--epilogue-child", str(n), str(d), str(m), str(t)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False, env=env)
    if res.returncode != 0:
        raise RuntimeError(res.stderr[-2000:])
    return dict(json.loads(res.stdout.strip().splitlines()[-1]))


def epilogue_table(n: int) -> None:
    """Compiled (numba) vs torch epilogue, one subprocess each, same inputs."""
    print(f"n = {n}, CPU, {torch.get_num_threads()} threads, exact pass with 20 jackknife blocks\n")
    print(
        "| d = r | models x T | GEMM bound s | torch s | torch % of bound | compiled s "
        "| compiled % of bound | speed-up | rel. diff mean |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for d, m, t in EPILOGUE_CASES:
        a = _spawn_epilogue(n, d, m, t, torch_path=True)
        b = _spawn_epilogue(n, d, m, t, torch_path=False)
        bound = min(a["gemm_seconds"], b["gemm_seconds"])
        rel = abs(a["mean"] - b["mean"]) / abs(a["mean"])
        print(
            f"| {d} | {m} x {t} | {bound:.2f} | {a['seconds']:.2f} | "
            f"{100 * bound / a['seconds']:.0f}% | {b['seconds']:.2f} | "
            f"{100 * bound / b['seconds']:.0f}% | {a['seconds'] / b['seconds']:.2f}x | {rel:.1e} |"
        )


#: (d = r, models, temperatures) rows of ``--ceiling``: the cells of issue 20's targets.
CEILING_CASES = ((64, 1, 1), (768, 1, 1), (384, 8, 3))
#: ``--ceiling`` reads its "from memory" tiles from a ring of at least this many bytes,
#: twice this machine's 32 MiB L3, so every tile comes from DRAM
RING_BYTES = 64 << 20


def ceiling_one(n: int, d: int, m: int, t: int, repeats: int = 5) -> dict[str, float]:
    """Body of one ``--ceiling`` subprocess: best-of-``repeats`` seconds, interleaved, of
    (1) building the prior's and the models' ``centered_cosine`` factors from the features
    (``build_kernel``, as the pass does before any product), (2) the tile products alone
    (the GEMM bound of ``--epilogue``), (3) the compiled epilogue alone (the pass's own
    per-tile call) on every tile of the plan with the pass's jackknife segments, once
    re-reading one tile (in cache) and once reading a ring of distinct tiles larger than
    L3 (from DRAM), and (4) the whole pass. ``bound / (bound + build + epilogue)`` is the
    highest share of products a pass that does these one after the other on the same
    cores can reach, whatever its loop costs."""
    from tp_harness import task_prior_moments
    from tp_harness.core import moments
    from tp_harness.core.kernels import build_kernel, centered_cosine
    from tp_harness.core.moments import tile_plan
    from tp_harness.core.uncertainty import DEFAULT_BLOCKS

    p, models, temps = _epilogue_inputs(n, d, m, t)
    plan = tile_plan(n, 1024, symmetric=True)
    blocks = moments._plan_blocks(n, DEFAULT_BLOCKS, 0)
    assert blocks is not None
    segs = [
        (moments._segments(tile.rows, blocks.edge), moments._segments(tile.cols, blocks.edge))
        for tile in plan
    ]
    zs = [centered_cosine(x) for x in models.values()]
    zp = centered_cosine(p)
    # tiles of the plan's edge, each in its own buffer, from row blocks spread over n
    edge = min(1024, n)
    ring = max(1, -(-RING_BYTES // ((1 + m) * edge * edge * 4)))
    starts = [(i * edge) % (n - edge + 1) for i in range(ring)]
    ks = [zp[a : a + edge] @ zp[:edge].T for a in starts]
    mss = [torch.stack([z[a : a + edge] @ z[:edge].T for z in zs]) for a in starts]
    inv_t = torch.tensor([1.0 / x for x in temps], dtype=torch.float32)
    buffers = moments._TileBuffers(m, torch.float32, torch.device("cpu"))

    def epilogue(distinct: bool) -> None:
        """The pass's own per-tile epilogue call on every tile of the plan."""
        for i, (tile, (rows, cols)) in enumerate(zip(plan, segs, strict=True)):
            j = i % ring if distinct else 0
            b, c = tile.rows.stop - tile.rows.start, tile.cols.stop - tile.cols.start
            k, ms = ks[j][:b, :c], mss[j][:, :b, :c].contiguous()
            moments._fused_block_sums(k, inv_t, ms, rows, cols, buffers)

    def build() -> None:
        for x in (p, *models.values()):
            build_kernel(x)

    timed = {
        "build_seconds": build,
        "gemm_seconds": lambda: _tile_products(zp, zs, plan),
        "epilogue_cached": lambda: epilogue(False),
        "epilogue_memory": lambda: epilogue(True),
        "seconds": lambda: task_prior_moments(models, p, temps),
    }
    out = dict.fromkeys(timed, float("inf"))
    for _ in range(repeats):  # interleaved, so a slow spell of the host hits every column
        for key, fn in timed.items():
            t0 = time.perf_counter()
            fn()
            out[key] = min(out[key], time.perf_counter() - t0)
    return out


def ceiling_table(n: int) -> None:
    """The build, the products alone, the epilogue alone and the pass, one subprocess
    per cell."""
    threads = torch.get_num_threads()
    print(f"n = {n}, CPU, {threads} threads, 20 jackknife blocks, best of 5 interleaved\n")
    print(
        "| d = r | models x T | GEMM bound s | build s | epilogue alone s, cached / from "
        "memory | ceiling, cached / from memory | pass s | pass % of bound |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for d, m, t in CEILING_CASES:
        cmd = [sys.executable, __file__, "--ceiling-child", str(n), str(d), str(m), str(t)]
        res = subprocess.run(cmd, capture_output=True, text=True, check=True)
        r = json.loads(res.stdout.strip().splitlines()[-1])
        g, b, ec, em = (
            r[k] for k in ("gemm_seconds", "build_seconds", "epilogue_cached", "epilogue_memory")
        )
        print(
            f"| {d} | {m} x {t} | {g:.3f} | {b:.3f} | {ec:.3f} / {em:.3f} | "
            f"{100 * g / (g + b + ec):.0f}% / {100 * g / (g + b + em):.0f}% | "
            f"{r['seconds']:.3f} | {100 * g / r['seconds']:.0f}% |"
        )


def build_one(n: int, d: int, path: str, repeats: int = 3) -> dict[str, float]:
    """Body of one ``--build`` subprocess: best-of-``repeats`` seconds of building the
    ``centered_cosine`` kernel of an (n, d) float32 array on ``path`` ("torch" or
    "compiled", warmed outside the timing) and the peak RSS it adds to the input's (the
    factor itself is one input's size)."""
    from tp_harness.core import kernels

    kernels.COMPILED_FACTOR_MIN_ROWS = 0 if path == "compiled" else 1 << 62
    if path == "compiled":
        kernels.build_kernel(torch.randn(64, d))
    x = torch.randn(n, d, generator=torch.Generator().manual_seed(n))
    x += 0.3  # in place: no freed temporary for the build to reuse
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        k = kernels.build_kernel(x)
        best = min(best, time.perf_counter() - t0)
        del k
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": best, "extra_rss_gib": (peak - base) / 2**20}


def build_table(sizes: list[int], d: int) -> None:
    """The centered-cosine build, torch vs compiled (numba), one subprocess each."""
    print(f"d = {d}, float32 input, CPU, {torch.get_num_threads()} threads\n")
    print(
        "| n | input GiB | torch s | torch extra RSS GiB | compiled s "
        "| compiled extra RSS GiB | speed-up |"
    )
    print("|---|---|---|---|---|---|---|")
    for n in sizes:
        row = {}
        for path in ("torch", "compiled"):
            cmd = [sys.executable, __file__, "--build-child", str(n), str(d), path]
            res = subprocess.run(cmd, capture_output=True, text=True, check=True)
            row[path] = json.loads(res.stdout.strip().splitlines()[-1])
        a, b = row["torch"], row["compiled"]
        print(
            f"| {n} | {n * d * 4 / 2**30:.2f} | {a['seconds']:.3f} | {a['extra_rss_gib']:.2f} | "
            f"{b['seconds']:.3f} | {b['extra_rss_gib']:.2f} | {a['seconds'] / b['seconds']:.1f}x |"
        )


def _spawn(impl: str, n: int, device: str, block: int | None) -> dict[str, float]:
    cmd = [sys.executable, __file__, "--child", impl, "--n", str(n), "--device", device]
    cmd += ["--dim", str(D)]
    if block:
        cmd += ["--block-size", str(block)]
    res = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if res.returncode != 0:
        return {"error": res.stderr.strip().splitlines()[-1] if res.stderr else "failed"}
    return json.loads(res.stdout.strip().splitlines()[-1])


def _table_or_child(args: argparse.Namespace) -> bool:
    """Run ``--epilogue``/``--ceiling``/``--build`` or one of their subprocesses; False
    for the rest."""
    if args.epilogue_child:
        print(json.dumps(epilogue_one(*args.epilogue_child)))
    elif args.epilogue:
        epilogue_table(args.epilogue_n)
    elif args.ceiling_child:
        print(json.dumps(ceiling_one(*args.ceiling_child)))
    elif args.ceiling:
        ceiling_table(args.epilogue_n)
    elif args.build_child:
        n, d, path = args.build_child
        print(json.dumps(build_one(int(n), int(d), path)))
    elif args.build is not None:
        build_table(args.build or [16384, 100_000], args.dim)
    else:
        return False
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--compare", type=int, nargs="*", default=[4096, 8192, 16384])
    ap.add_argument("--alone", type=int, nargs="*", default=[50_000, 100_000])
    ap.add_argument("--block-size", type=int, default=None)
    ap.add_argument("--dim", type=int, default=384, help="d = r of the features")
    ap.add_argument("--child", choices=["dense", "ours"], default=None)
    ap.add_argument("--n", type=int, default=0)
    ap.add_argument("--epilogue", action="store_true", help="compiled vs torch tile epilogue")
    ap.add_argument("--epilogue-n", type=int, default=16384, help="n of --epilogue, --ceiling")
    ap.add_argument(
        "--ceiling",
        action="store_true",
        help="tile products alone, compiled epilogue alone and the pass: the highest share "
        "of products a pass can reach",
    )
    ap.add_argument("--ceiling-child", type=int, nargs=4, default=None, help=argparse.SUPPRESS)
    ap.add_argument(
        "--precision",
        type=int,
        default=0,
        metavar="N",
        help="tile-product modes (fp32 / 3xtf32 / tf32, CUDA) against float64 at n = N",
    )
    ap.add_argument("--epilogue-child", type=int, nargs=4, default=None, help=argparse.SUPPRESS)
    ap.add_argument(
        "--build",
        type=int,
        nargs="*",
        default=None,
        metavar="N",
        help="centered-cosine kernel build, torch vs compiled, at these n (default 16384 100000)",
    )
    ap.add_argument("--build-child", nargs=3, default=None, help=argparse.SUPPRESS)
    ap.add_argument(
        "--interval-cost",
        action="store_true",
        help="time the pass with and without jackknife blocks at --compare sizes",
    )
    args = ap.parse_args()
    global D, R
    D = R = args.dim
    if _table_or_child(args):
        return
    if args.precision:
        precision_table(args.precision, args.device)
        return
    if args.interval_cost:
        print("| n | no intervals s | 20 jackknife blocks s | cost |\n|---|---|---|---|")
        for n in args.compare:
            b = interval_cost(n, args.device)
            print(
                f"| {n} | {b['plain']:.3f} | {b['blocks']:.3f} | "
                f"{100 * (b['blocks'] / b['plain'] - 1):+.1f}% |"
            )
        return
    if args.child:
        print(json.dumps(run_one(args.child, args.n, args.device, args.block_size)))
        return
    device = torch.device(args.device)
    rate = matmul_rate(device)
    print(
        f"device={device} threads={torch.get_num_threads()} torch={torch.__version__} "
        f"fp32 matmul rate={rate:.1f} GFLOP/s (2048^3), d=r={D}, T={T}\n"
    )
    print(
        "| n | dense s | dense RSS GiB | ours s | ours RSS GiB | speed-up | "
        "rel. diff mean | tile GEMM GFLOP/s | % of matmul rate | end-to-end GFLOP/s |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    failed: list[int] = []
    for n in [*args.compare, *args.alone]:
        ours = _spawn("ours", n, args.device, args.block_size)
        dense = _spawn("dense", n, args.device, None) if n in args.compare else {}
        if "error" in ours:
            print(f"| {n} | | | error: {ours['error']} |")
            failed.append(n)
            continue
        gemm = ours["timed_flops"] / ours["matmul_seconds"] / 1e9
        e2e = ours["flops"] / ours["seconds"] / 1e9
        mem = ours.get("peak_gpu_gib", ours["peak_rss_gib"])
        if dense and "error" not in dense:
            dmem = dense.get("peak_gpu_gib", dense["peak_rss_gib"])
            rel = abs(dense["mean"] - ours["mean"]) / abs(ours["mean"])
            dcols = (
                f"{dense['seconds']:.2f} | {dmem:.2f} | {ours['seconds']:.2f} | {mem:.2f} | "
                f"{dense['seconds'] / ours['seconds']:.1f}x | {rel:.1e}"
            )
        elif dense:
            dcols = f"{dense['error'][:40]} | | {ours['seconds']:.2f} | {mem:.2f} | | "
        else:
            dcols = f"- | - | {ours['seconds']:.2f} | {mem:.2f} | - | -"
        print(f"| {n} | {dcols} | {gemm:.1f} | {100 * gemm / rate:.0f}% | {e2e:.1f} |")
    if failed:  # the dense reference may fail (memory) and is reported; ours must not
        sys.exit(f"bench_moments: the streaming pass failed at n = {failed}")


if __name__ == "__main__":
    main()
