"""Forward + backward of the task-prior loss: tiled (``task_prior_loss``) vs dense autograd.

    python benchmarks/bench_loss.py                 # n = 4096, 16384; d = r = 384; T = 0.5
    python benchmarks/bench_loss.py --n 2048 --repeats 1

"dense" writes the same formula with n x n float32 matrices and lets autograd keep what it
needs (``M``, ``K``, ``s(K/T)``, ``s(-K/T)``, their products); "tiled" is
:func:`tp_harness.core.loss.task_prior_loss`. Each row runs in its own subprocess; "peak
extra" is that process's peak RSS minus its RSS after the inputs were built, so it counts
what the loss itself needs. Time: median of ``--repeats`` forward + backward passes.
Prints a markdown table; the two losses and gradients are compared in the same run.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _child(method: str, n: int, d: int, repeats: int, threads: int) -> dict[str, float]:
    import torch

    sys.path.insert(0, str(ROOT))
    from tp_harness.core.kernels import centered_cosine
    from tp_harness.core.loss import task_prior_loss

    torch.set_num_threads(threads)
    g = torch.Generator().manual_seed(0)
    x0 = torch.randn(n, d, generator=g)
    p = torch.randn(n, d, generator=g) + 0.3 * x0
    t, w = 0.5, 1.0
    q = centered_cosine(p)  # the prior factor, fixed

    def dense(x: torch.Tensor) -> torch.Tensor:
        phi = centered_cosine(x)
        m = phi @ phi.T
        z = (q @ q.T) / t
        s = torch.sigmoid(z)
        mean = (m * s).sum(dtype=torch.float64)
        var = (m * m * s * torch.sigmoid(-z)).sum(dtype=torch.float64)
        return (-mean / n**2 + w * var.sqrt() / n).float()

    def tiled(x: torch.Tensor) -> torch.Tensor:
        return task_prior_loss(x, p, t, variance_weight=w)

    fn = dense if method == "dense" else tiled
    base = _rss_mib()
    times, loss, grad = [], 0.0, None
    for _ in range(repeats):
        x = x0.clone().requires_grad_(True)
        start = time.perf_counter()
        out = fn(x)
        out.backward()
        times.append(time.perf_counter() - start)
        loss, grad = float(out), x.grad
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    assert grad is not None
    torch.save(grad, f"/tmp/bench_loss_grad_{method}_{n}.pt")
    return {"s": statistics.median(times), "extra_mib": peak - base, "loss": loss}


def _run(method: str, n: int, d: int, repeats: int, threads: int) -> dict[str, float] | None:
    cmd = [sys.executable, __file__, "--child", method, str(n), str(d), str(repeats), str(threads)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        print(f"{method} n={n} failed: {proc.stderr[-500:]}", file=sys.stderr)
        return None
    return dict(json.loads(proc.stdout.strip().splitlines()[-1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--n", type=int, nargs="+", default=[4096, 16384])
    ap.add_argument("--d", type=int, default=384)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        method, n, d, repeats, threads = args.child
        print(json.dumps(_child(method, int(n), int(d), int(repeats), int(threads))))
        return
    import torch

    print(f"d = r = {args.d}, T = 0.5, variance_weight = 1, float32, {args.threads} threads\n")
    print(
        "| n | dense s | dense peak extra MiB | tiled s | tiled peak extra MiB | time tiled/dense "
        "| memory dense/tiled | rel. diff loss | max rel. diff grad |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for n in args.n:
        dn = _run("dense", n, args.d, args.repeats, args.threads)
        tl = _run("tiled", n, args.d, args.repeats, args.threads)
        if tl is None:
            continue
        if dn is None:
            print(f"| {n} | - | - | {tl['s']:.2f} | {tl['extra_mib']:.0f} | - | - | - | - |")
            continue
        gd = torch.load(f"/tmp/bench_loss_grad_dense_{n}.pt")
        gt = torch.load(f"/tmp/bench_loss_grad_tiled_{n}.pt")
        rel_g = float((gd - gt).abs().max() / gd.abs().max())
        rel_l = abs(dn["loss"] - tl["loss"]) / abs(dn["loss"])
        print(
            f"| {n} | {dn['s']:.2f} | {dn['extra_mib']:.0f} | {tl['s']:.2f} | "
            f"{tl['extra_mib']:.0f} | {tl['s'] / dn['s']:.2f}x | "
            f"{dn['extra_mib'] / max(tl['extra_mib'], 1.0):.1f}x | {rel_l:.1e} | {rel_g:.1e} |"
        )


if __name__ == "__main__":
    main()
