"""Time the batched task sampler against a per-task numpy loop of Algorithm 1.

The loop is the authors' style: one task at a time, a Python loop over the points
in a random order, ``np.random.Generator.choice`` for each draw. It is timed on a
few tasks and extrapolated per task (its cost is linear in the number of tasks).

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

import numpy as np
import torch

from tp_harness.kernels import centered_cosine
from tp_harness.sampling import sample_tasks


def numpy_loop_task(z: np.ndarray, num_classes: int, temperature: float,
                    rng: np.random.Generator) -> np.ndarray:
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
    ap.add_argument("--repeats", type=int, default=1, help="engine runs; the best is kept")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    rng = np.random.default_rng(args.seed)
    x = rng.normal(size=(args.n, args.r)).astype(np.float32)
    z = centered_cosine(torch.from_numpy(x)).numpy()

    sample_tasks(x[: min(args.n, 256)], 4, args.q, args.temperature, seed=0,
                 device=args.device)                                        # warm-up
    best, best_cpu = float("inf"), float("inf")
    for rep in range(args.repeats):
        _sync(args.device)
        t0, c0 = time.perf_counter(), time.process_time()
        sample_tasks(x, args.tasks, args.q, args.temperature, seed=args.seed + rep,
                     gibbs_sweeps=args.gibbs_sweeps, device=args.device)
        _sync(args.device)
        best = min(best, time.perf_counter() - t0)
        best_cpu = min(best_cpu, time.process_time() - c0)

    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(args.loop_tasks):
        numpy_loop_task(z, args.q, args.temperature, rng)
    loop_per_task = (time.perf_counter() - t0) / args.loop_tasks
    loop_cpu = (time.process_time() - c0) / args.loop_tasks * args.tasks

    eng_tps = args.tasks / best
    loop_tps = 1.0 / loop_per_task
    sweeps = f" + {args.gibbs_sweeps} Gibbs sweeps" if args.gibbs_sweeps else ""
    print(f"\nS={args.tasks}, n={args.n}, r={args.r}, q={args.q}, T={args.temperature}"
          f"{sweeps}; device={args.device}, torch threads={torch.get_num_threads()}, "
          f"{os.cpu_count()} CPUs ({platform.processor() or platform.machine()}); "
          f"numpy loop timed on {args.loop_tasks} task(s) and extrapolated to S.\n")
    print("| sampler | S tasks, wall (s) | CPU (s) | tasks/s | points/s | speed-up |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    print(f"| numpy loop (per task, per point) | {loop_per_task * args.tasks:.1f} (extrap.) | "
          f"{loop_cpu:.1f} | {loop_tps:.2f} | {loop_tps * args.n:,.0f} | 1.0x |")
    print(f"| tp_harness.sample_tasks ({args.device}) | {best:.2f} | {best_cpu:.2f} | "
          f"{eng_tps:.1f} | {eng_tps * args.n:,.0f} | {eng_tps / loop_tps:.1f}x |")


if __name__ == "__main__":
    main()
