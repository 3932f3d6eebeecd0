"""Time the batched task sampler against per-task numpy loops of Algorithm 1.

Two loops, one task at a time with a Python loop over the points in a random order:
the authors' style (``np.random.Generator.choice`` for each draw) and a leaner one
(uniforms drawn up front, inverse CDF by ``searchsorted``). Both run with one BLAS
thread (faster for their tiny products), are timed on a few tasks and extrapolated
per task (their cost is linear in the number of tasks); the speed-up is against the
faster of the two.

    python benchmarks/bench_sampler.py                       # S=256, n=10000, r=384, q=10
    python benchmarks/bench_sampler.py --device cuda --loop-tasks 1
    python benchmarks/bench_sampler.py --tasks 64 --n 2000   # quick run

Prints a markdown table with wall-clock and CPU seconds (CPU time is steadier on a
shared machine; the speed-up is the wall-clock throughput ratio). Run it twice.
On a machine shared with other busy processes, torch's OpenMP threads spin-wait for a
core and the engine can slow down 10x or more: use ``--threads 1`` or set
``OMP_WAIT_POLICY=PASSIVE`` there.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from tp_harness.core.kernels import centered_cosine
from tp_harness.core.sampling import sample_tasks


def numpy_loop_task(
    z: np.ndarray, num_classes: int, temperature: float, rng: np.random.Generator
) -> np.ndarray:
    """Algorithm 1 for one task, one point at a time. z (n, r) -> labels (n,)."""
    n, r = z.shape
    u_sum = np.zeros((r, num_classes), dtype=z.dtype)
    labels = np.empty(n, dtype=np.int64)
    for i in rng.permutation(n):
        h = (z[i] @ u_sum) / temperature
        h -= h.max()
        p = np.exp(h)
        p /= p.sum()
        c = rng.choice(num_classes, p=p)
        labels[i] = c
        u_sum[:, c] += z[i]
    return labels


def lean_loop_task(
    z: np.ndarray, num_classes: int, temperature: float, rng: np.random.Generator
) -> np.ndarray:
    """Algorithm 1 for one task with fewer numpy calls per point. z (n, r) -> labels (n,)."""
    n, r = z.shape
    u_sum = np.zeros((num_classes, r), dtype=z.dtype)
    labels = np.empty(n, dtype=np.int64)
    uniforms = rng.random(n)
    zt = z / temperature
    for t, i in enumerate(rng.permutation(n)):
        h = u_sum @ zt[i]
        cdf = np.cumsum(np.exp(h - h.max()))
        c = min(int(np.searchsorted(cdf, uniforms[t] * cdf[-1], side="right")), num_classes - 1)
        labels[i] = c
        u_sum[c] += z[i]
    return labels


LoopFn = Callable[[np.ndarray, int, float, np.random.Generator], np.ndarray]


def time_loop(
    loop: LoopFn, z: np.ndarray, args: argparse.Namespace, rng: np.random.Generator
) -> tuple[float, float]:
    """Seconds per task (wall, CPU) of ``loop`` over ``args.loop_tasks`` tasks, 1 BLAS thread."""
    with threadpool_limits(1):
        t0, c0 = time.perf_counter(), time.process_time()
        for _ in range(args.loop_tasks):
            loop(z, args.q, args.temperature, rng)
        return (
            (time.perf_counter() - t0) / args.loop_tasks,
            (time.process_time() - c0) / args.loop_tasks,
        )


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tasks", type=int, default=256, help="S, tasks sampled by the engine")
    ap.add_argument("--n", type=int, default=10_000, help="examples")
    ap.add_argument("--r", type=int, default=384, help="prior feature width")
    ap.add_argument("--q", type=int, default=10, help="classes")
    ap.add_argument("--temperature", type=float, default=0.1)
    ap.add_argument("--gibbs-sweeps", type=int, default=0)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--loop-tasks", type=int, default=2, help="tasks timed for the numpy loop")
    ap.add_argument("--repeats", type=int, default=3, help="engine runs; the best is kept")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    load = os.getloadavg()[0]
    rng = np.random.default_rng(args.seed)
    x = rng.normal(size=(args.n, args.r)).astype(np.float32)
    z = centered_cosine(torch.from_numpy(x)).numpy()

    sample_tasks(
        x[: min(args.n, 256)], 4, args.q, args.temperature, seed=0, device=args.device
    )  # warm-up
    best, best_cpu = float("inf"), float("inf")
    for rep in range(args.repeats):
        _sync(args.device)
        t0, c0 = time.perf_counter(), time.process_time()
        sample_tasks(
            x,
            args.tasks,
            args.q,
            args.temperature,
            seed=args.seed + rep,
            gibbs_sweeps=args.gibbs_sweeps,
            device=args.device,
        )
        _sync(args.device)
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)

    loops = {
        "numpy loop, authors' style (Generator.choice per draw)": numpy_loop_task,
        "numpy loop, lean (uniforms up front, searchsorted)": lean_loop_task,
    }
    timed = {name: time_loop(fn, z, args, rng) for name, fn in loops.items()}
    ref_per_task = min(wall for wall, _ in timed.values())
    eng_tps = args.tasks / best
    sweeps = f" + {args.gibbs_sweeps} Gibbs sweeps" if args.gibbs_sweeps else ""
    print(
        f"\nS={args.tasks}, n={args.n}, r={args.r}, q={args.q}, T={args.temperature}"
        f"{sweeps}; device={args.device}, torch threads={torch.get_num_threads()}, "
        f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}); "
        f"loops timed on {args.loop_tasks} task(s) each and extrapolated to S; "
        f"1-min load {load:.2f} before.\n"
    )
    print("| sampler | S tasks, wall (s) | CPU (s) | tasks/s | points/s | speed-up |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, (wall, cpu) in timed.items():
        print(
            f"| {name} | {wall * args.tasks:.1f} (extrap.) | {cpu * args.tasks:.1f} | "
            f"{1 / wall:.2f} | {args.n / wall:,.0f} | {ref_per_task / wall:.2f}x |"
        )
    print(
        f"| tp_harness.sample_tasks ({args.device}) | {best:.2f} | {best_cpu:.2f} | "
        f"{eng_tps:.1f} | {eng_tps * args.n:,.0f} | **{eng_tps * ref_per_task:.1f}x** |"
    )
    print("\nspeed-up: throughput over the faster loop's.")


if __name__ == "__main__":
    main()
