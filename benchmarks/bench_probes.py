"""Batched probes on S tasks vs a Python loop of per-task scikit-learn fits.

S = 256 tasks on n = 10,000 random features (d = 384), q = 10 classes, one shared
75/25 split. Tasks are learnable: each is the argmax of a random linear map of the
features plus Gumbel noise. Ridge is timed against the full loop of
``Ridge(alpha).fit(onehot).predict().argmax()`` and the accuracies must be identical;
kNN and logistic are timed for the record against sklearn on a few tasks,
extrapolated to S. For ridge the loop runs in ``--repeats`` chunks with one timed call
of ours after each, so both sides are timed over the same stretch of time.

sklearn is given its best setting: a few fits are timed with the BLAS thread pool at
its default and at 1 thread (threadpoolctl; oversubscription next to torch's own
threads can make the default slower), and the full loop runs with the faster one.
sklearn gets float64 features for ridge (it would otherwise solve in float32).

    python benchmarks/bench_probes.py                  # CPU
    python benchmarks/bench_probes.py --device cuda    # ours on the GPU, sklearn on CPU
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import torch
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from threadpoolctl import threadpool_limits

from tp_harness.core.probes import probe_tasks, train_test_indices


def make_data(n: int, d: int, num_tasks: int, q: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Anisotropic float32 features (n, d) and learnable tasks (S, n)."""
    rng = np.random.default_rng(seed)
    x = (rng.normal(size=(n, d)) * rng.uniform(0.3, 2.0, d) + rng.normal(size=d)).astype(np.float32)
    xs = (x - x.mean(0)) / x.std(0)
    tasks = np.empty((num_tasks, n), dtype=np.int64)
    for s in range(num_tasks):
        logits = 3 * xs @ rng.normal(size=(d, q)).astype(np.float32) / np.sqrt(d)
        tasks[s] = (logits + rng.gumbel(size=logits.shape)).argmax(1)
    return x, tasks


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def time_ours(
    fn: Callable[[], Any], device: torch.device, repeats: int
) -> tuple[float, float, Any]:
    """Best and median wall time of ``repeats`` calls (after one warm-up), last result."""
    out = fn()
    times = []
    for _ in range(repeats):
        _sync(device)
        t0 = time.perf_counter()
        out = fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return min(times), float(np.median(times)), out


def sklearn_ridge(
    x: np.ndarray, tasks: np.ndarray, tr: np.ndarray, te: np.ndarray, alpha: float, q: int, s: int
) -> np.ndarray:
    return Ridge(alpha=alpha).fit(x[tr], np.eye(q)[tasks[s, tr]]).predict(x[te]).argmax(1)


def sklearn_knn(
    x: np.ndarray, tasks: np.ndarray, tr: np.ndarray, te: np.ndarray, k: int, s: int
) -> np.ndarray:
    return (
        KNeighborsClassifier(n_neighbors=k, metric="cosine").fit(x[tr], tasks[s, tr]).predict(x[te])
    )


def sklearn_logistic(
    x: np.ndarray, tasks: np.ndarray, tr: np.ndarray, te: np.ndarray, alpha: float, s: int
) -> np.ndarray:
    est = make_pipeline(StandardScaler(), LogisticRegression(C=1.0 / alpha, max_iter=100))
    return est.fit(x[tr], tasks[s, tr]).predict(x[te])


def sklearn_loop(
    fit: Callable[[int], np.ndarray], tasks: range, threads: int | None
) -> tuple[float, np.ndarray]:
    """Seconds for ``fit(s)`` over ``tasks`` under a BLAS thread limit, and predictions."""
    with threadpool_limits(threads):
        t0 = time.perf_counter()
        preds = np.stack([fit(s) for s in tasks])
        return time.perf_counter() - t0, preds


def best_threads(fit: Callable[[int], np.ndarray], sample: int) -> tuple[int | None, str]:
    """The faster BLAS setting for sklearn on ``sample`` fits: None (default) or 1."""
    fit(0)  # warm-up
    times = {t: sklearn_loop(fit, range(sample), t)[0] for t in (None, 1)}
    best = min(times, key=lambda t: times[t])
    note = ", ".join(
        f"{'default' if t is None else t} BLAS thr: {v / sample * 1e3:.0f} ms/fit"
        for t, v in times.items()
    )
    return best, note


def interleaved(
    ours: Callable[[], Any],
    fit: Callable[[int], np.ndarray],
    num_tasks: int,
    threads: int | None,
    repeats: int,
    device: torch.device,
) -> tuple[list[float], float, np.ndarray, Any]:
    """The sklearn loop in ``repeats`` chunks of tasks, one timed call of ours after each.

    Both sides thus sample the same stretch of time: a slow spell of this shared machine
    lands on both, not on ours' few seconds alone. Returns ours' times, the loop's total
    seconds, its predictions (S, n_test) and ours' last result.
    """
    out = ours()  # warm-up
    times, sk_total, preds = [], 0.0, []
    for chunk in np.array_split(np.arange(num_tasks), repeats):
        sk_s, p = sklearn_loop(fit, range(int(chunk[0]), int(chunk[-1]) + 1), threads)
        sk_total += sk_s
        preds.append(p)
        _sync(device)
        t0 = time.perf_counter()
        out = ours()
        _sync(device)
        times.append(time.perf_counter() - t0)
    return times, sk_total, np.concatenate(preds), out


def bench_ridge(
    args: argparse.Namespace,
    x: np.ndarray,
    tasks: np.ndarray,
    tr: np.ndarray,
    te: np.ndarray,
    device: torch.device,
) -> dict[str, Any]:
    """Ours vs the full sklearn loop, interleaved; accuracies must be identical."""
    x64 = torch.from_numpy(x.astype(np.float64)).to(device)
    td = torch.from_numpy(tasks).to(device)
    ours = partial(probe_tasks, x64, td, alpha=args.alpha, seed=args.seed, device=device)
    fit = partial(sklearn_ridge, x.astype(np.float64), tasks, tr, te, args.alpha, args.classes)
    threads, note = best_threads(fit, args.sample)
    times, sk_s, preds, res = interleaved(
        ours, fit, args.num_tasks, threads, min(args.repeats, args.num_tasks), device
    )
    ours_s, ours_med = min(times), float(np.median(times))
    sk_acc = (preds == tasks[:, te]).mean(1)
    check = (
        f"accuracies identical: {bool(np.array_equal(sk_acc, res.accuracy))} "
        f"(max abs diff {np.abs(sk_acc - res.accuracy).max():.1e}, "
        f"{int((preds != res.predictions).sum())} differing predictions)"
    )
    return {
        "probe": "ridge",
        "ours": ours_s,
        "ours_median": ours_med,
        "sklearn": sk_s,
        "fits": args.num_tasks,
        "extrapolated": False,
        "note": note,
        "check": check,
        "mean_acc": float(res.accuracy.mean()),
    }


def bench_sampled(
    args: argparse.Namespace,
    probe: str,
    fit: Callable[[int], np.ndarray],
    x: np.ndarray,
    tasks: np.ndarray,
    te: np.ndarray,
    device: torch.device,
) -> dict[str, Any]:
    """Ours on all tasks vs sklearn on ``args.sample`` tasks, extrapolated."""
    xd, td = torch.from_numpy(x).to(device), torch.from_numpy(tasks).to(device)
    ours_s, ours_med, res = time_ours(
        partial(
            probe_tasks,
            xd,
            td,
            probe=probe,
            alpha=args.alpha,
            k=args.k,
            seed=args.seed,
            device=device,
        ),
        device,
        args.repeats,
    )
    threads, note = best_threads(fit, min(args.sample, 2))
    sk_s, preds = sklearn_loop(fit, range(args.sample), threads)
    agree = (preds == res.predictions[: args.sample]).mean()
    gap = (preds == tasks[: args.sample, te]).mean() - res.accuracy[: args.sample].mean()
    return {
        "probe": probe,
        "ours": ours_s,
        "ours_median": ours_med,
        "sklearn": sk_s * args.num_tasks / args.sample,
        "fits": args.sample,
        "extrapolated": True,
        "note": note,
        "check": f"on {args.sample} tasks: {agree:.2%} same predictions, "
        f"sklearn - ours mean acc = {gap:+.4f}",
        "mean_acc": float(res.accuracy.mean()),
    }


def run(args: argparse.Namespace) -> list[dict[str, Any]]:
    device = torch.device(args.device)
    x, tasks = make_data(args.n, args.dim, args.num_tasks, args.classes, args.seed)
    tr, te = (i.numpy() for i in train_test_indices(args.n, 0.25, seed=args.seed))
    rows = [bench_ridge(args, x, tasks, tr, te, device)]
    fits = {
        "knn": partial(sklearn_knn, x, tasks, tr, te, args.k),
        "logistic": partial(sklearn_logistic, x, tasks, tr, te, args.alpha),
    }
    rows += [
        bench_sampled(args, probe, fit, x, tasks, te, device)
        for probe, fit in fits.items()
        if probe not in args.skip
    ]
    return rows


def table(rows: list[dict[str, Any]], args: argparse.Namespace) -> str:
    dev = args.device if args.device == "cpu" else torch.cuda.get_device_name(args.device)
    head = (
        f"S = {args.num_tasks} tasks, n = {args.n:,} (75/25 split), d = {args.dim}, "
        f"q = {args.classes}, alpha = {args.alpha}, k = {args.k}; ours on {dev}, "
        f"{os.cpu_count()} CPU cores ({platform.processor() or platform.machine()}), "
        f"torch {torch.__version__}, {torch.get_num_threads()} torch threads.\n\n"
    )
    lines = [
        f"| probe | ours, best of {args.repeats} (s) | ours, median (s) | sklearn loop (s) "
        "| speed-up | at the median | mean acc | check | sklearn BLAS |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |",
    ]
    for r in rows:
        sk = f"{r['sklearn']:.2f}" + (f" (from {r['fits']} fits)" if r["extrapolated"] else "")
        lines.append(
            f"| {r['probe']} | {r['ours']:.3f} | {r['ours_median']:.3f} | {sk} "
            f"| {r['sklearn'] / r['ours']:.3g}x | {r['sklearn'] / r['ours_median']:.3g}x "
            f"| {r['mean_acc']:.3f} | {r['check']} | {r['note']} |"
        )
    return head + "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--num-tasks", type=int, default=256)
    ap.add_argument("--n", type=int, default=10_000)
    ap.add_argument("--dim", type=int, default=384)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--k", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--repeats",
        type=int,
        default=5,
        help="timed calls of ours per probe (best and median reported)",
    )
    ap.add_argument("--sample", type=int, default=8, help="sklearn fits timed for knn/logistic")
    ap.add_argument("--skip", nargs="*", default=[], choices=["knn", "logistic"])
    args = ap.parse_args()
    load_before = os.getloadavg()[0]
    rows = run(args)
    print(table(rows, args))
    print(
        f"\n1-min load average: {load_before:.2f} before, {os.getloadavg()[0]:.2f} after "
        f"(other processes on a shared machine slow both sides, ours more: it uses all cores)."
    )


if __name__ == "__main__":
    main()
