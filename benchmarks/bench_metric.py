"""The ``evaluate`` metric vs calling the library directly, at n = 5,000, d = r = 768.

Runs are interleaved (library, metric one call, metric in batches, ...) so a busy
machine slows all of them alike. Prints a markdown table of the median wall time and
the median CPU time of this process (all threads; steadier than wall time on a shared
machine) with the metric/library ratios (the issue's bar: at most 2x).

    python benchmarks/bench_metric.py                  # n=5000, d=r=768, 3 rounds
    python benchmarks/bench_metric.py --threads 1      # steadier on a shared machine
    python benchmarks/bench_metric.py --n 2000 --rounds 1
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

METRIC = str(Path(__file__).resolve().parents[1] / "metrics" / "task_prior")


def _timed(fn: Callable[[], Any]) -> tuple[tuple[float, float], Any]:
    """((wall s, CPU s), result)."""
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return (time.perf_counter() - t0, time.process_time() - c0), out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000)
    ap.add_argument("--d", type=int, default=768)
    ap.add_argument("--r", type=int, default=768)
    ap.add_argument("--batch", type=int, default=500, help="rows per add_batch call")
    ap.add_argument("--temperature", type=float, default=1.0)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (1 gives steady CPU times on a busy machine)",
    )
    args = ap.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")

    import evaluate
    import torch

    from tp_harness import task_prior_moments

    if args.threads:
        torch.set_num_threads(args.threads)

    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.n, args.d)).astype(np.float32)
    p = (rng.standard_normal((args.n, args.r)) + 0.5).astype(np.float32)
    t = args.temperature
    times: dict[str, list[tuple[float, float]]] = {
        "library": [],
        "metric: compute(...)": [],
        f"metric: add_batch x{args.batch} + compute": [],
    }
    with tempfile.TemporaryDirectory() as cache:
        metric = evaluate.load(METRIC, cache_dir=cache)

        def batched() -> Any:
            for i in range(0, args.n, args.batch):
                metric.add_batch(
                    predictions=x[i : i + args.batch], references=p[i : i + args.batch]
                )
            return metric.compute(temperature=t)

        task_prior_moments(x[:500], p[:500], t)  # warm up kernels and threads
        for _ in range(args.rounds):
            s, ref = _timed(lambda: task_prior_moments(x, p, t))
            times["library"].append(s)
            s, one = _timed(lambda: metric.compute(predictions=x, references=p, temperature=t))
            times["metric: compute(...)"].append(s)
            s, many = _timed(batched)
            times[f"metric: add_batch x{args.batch} + compute"].append(s)
            assert one["mean"] == ref.mean and many["mean"] == ref.mean, (one, many, ref)
    wall0 = statistics.median(w for w, _ in times["library"])
    cpu0 = statistics.median(c for _, c in times["library"])
    print(
        f"n = {args.n}, d = {args.d}, r = {args.r}, T = {t}, {args.rounds} rounds, "
        f"{torch.get_num_threads()} torch threads, {os.cpu_count()} CPUs\n"
    )
    print("| path | wall s (median) | wall ratio | CPU s (median) | CPU ratio |")
    print("|---|---|---|---|---|")
    for name, v in times.items():
        wall = statistics.median(w for w, _ in v)
        cpu = statistics.median(c for _, c in v)
        print(f"| {name} | {wall:.2f} | {wall / wall0:.2f}x | {cpu:.2f} | {cpu / cpu0:.2f}x |")


if __name__ == "__main__":
    main()
