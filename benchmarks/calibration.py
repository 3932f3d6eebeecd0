"""Coverage of the closed form's 95% jackknife intervals on subsamples of a fixed pool.

A pool of 3,000 synthetic examples (5 clusters; model features a noisy projection of the
prior's) has a known per-pair value for an n-row sample,
``E_diag / n + (1 - 1/n) E_offdiag`` of ``M_ij s(K_ij / T)`` over the pool (cosine kernels,
whose entries do not depend on the sample). Each of ``--datasets`` subsamples gets its
interval from ``task_prior_moments``; the share that covers the value is the coverage.

    python benchmarks/calibration.py            # writes docs/figures/uncertainty_calibration.*
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
from scipy.special import expit

ROOT = Path(__file__).resolve().parent.parent


def pool(seed: int = 0, size: int = 3000) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(5, 8)) * 2
    p = centers[rng.integers(0, 5, size)] + rng.normal(size=(size, 8))
    x = p[:, :6] @ rng.normal(size=(6, 10)) + rng.normal(size=(size, 10)) * 2
    return x, p


def cosine(a: np.ndarray) -> np.ndarray:
    a = a / np.linalg.norm(a, axis=1, keepdims=True)
    return a @ a.T


def coverage(n: int, datasets: int, temperature: float, blocks: int, seed: int) -> dict:
    from tp_harness import task_prior_moments

    x, p = pool()
    m, k = cosine(x), cosine(p)
    f = m * expit(k / temperature)
    g = m**2 * expit(k / temperature) * expit(-k / temperature)
    size = len(x)

    def value(a: np.ndarray) -> float:
        off = (a.sum() - np.trace(a)) / (size * (size - 1))
        return float(np.diag(a).mean() / n + (1 - 1 / n) * off)

    target, std_target = value(f), math.sqrt(value(g)) * n
    rng = np.random.default_rng(seed)
    hits = std_hits = 0
    widths = []
    for i in range(datasets):
        idx = rng.choice(size, n, replace=False)
        r = task_prior_moments(
            x[idx],
            p[idx],
            temperature,
            model_kernel="cosine",
            prior_kernel="cosine",
            num_blocks=blocks,
            seed=i,
        )
        lo, hi = r.mean_per_pair_ci
        hits += lo <= target <= hi
        std_hits += r.std_ci[0] <= std_target <= r.std_ci[1]
        widths.append(hi - lo)
    return {
        "n": n,
        "datasets": datasets,
        "blocks": blocks,
        "mean_coverage": hits / datasets,
        "std_coverage": std_hits / datasets,
        "median_width": float(np.median(widths)),
        "target": target,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", type=int, nargs="+", default=[50, 100, 200, 400])
    ap.add_argument("--datasets", type=int, default=300)
    ap.add_argument("--temperature", type=float, default=0.3)
    ap.add_argument("--blocks", type=int, default=20)
    ap.add_argument("--out", default=str(ROOT / "docs" / "figures" / "uncertainty_calibration"))
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows = [coverage(n, args.datasets, args.temperature, args.blocks, seed=n) for n in args.sizes]
    print("| n | datasets | blocks | mean CI coverage | std CI coverage | median CI width |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['n']} | {r['datasets']} | {r['blocks']} | {r['mean_coverage']:.3f} | "
            f"{r['std_coverage']:.3f} | {r['median_width']:.3g} |"
        )
    seconds = time.perf_counter() - t0
    print(f"total {seconds:.1f} s")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out + ".json").write_text(
        json.dumps({"rows": rows, "temperature": args.temperature, "seconds": seconds}, indent=1)
        + "\n"
    )
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 3.5))
    ns = [r["n"] for r in rows]
    ax.plot(ns, [r["mean_coverage"] for r in rows], marker="o", label="mean per pair")
    ax.plot(ns, [r["std_coverage"] for r in rows], marker="s", label="std")
    ax.axhline(0.95, color="black", lw=0.8, ls="--", label="nominal 95%")
    ax.axhspan(0.90, 0.99, color="grey", alpha=0.15, label="tested band 90-99%")
    ax.set_xscale("log")
    ax.set_xticks(ns, [str(n) for n in ns])
    ax.minorticks_off()
    ax.set_ylim(0.8, 1.0)
    ax.set_xlabel("n (rows per subsample)")
    ax.set_ylabel(f"coverage over {args.datasets} subsamples")
    ax.set_title("95% block-jackknife intervals (20 blocks)", fontsize=9)
    ax.legend(fontsize=7)
    fig.savefig(args.out + ".png", dpi=120, bbox_inches="tight")


if __name__ == "__main__":
    main()
