"""How far is the prefix sampler (Algorithm 1) from the Potts measure it approximates?

For small n every labeling can be enumerated, so the exact Potts measure and the exact
law of the prefix process (averaged over all n! visiting orders) are computed in
float64, and the sampler's empirical law is compared with them in total variation.

    python benchmarks/sampler_fidelity.py            # the tables in docs/sampling.md
    python benchmarks/sampler_fidelity.py --quick    # fewer tasks

Prior: centered-cosine kernel of random 3-d Gaussian features (seed 0). "noise" is
the mean TV between an exact sampler of the same size and its own law (prefix law /
Potts): sampled TVs at or below it are indistinguishable from 0.
"""

from __future__ import annotations

import argparse
import itertools
import math
import time

import numpy as np
import torch

from tp_harness.core.kernels import centered_cosine
from tp_harness.core.sampling import sample_tasks

SWEEPS = (1, 2, 5, 10, 20)


def labelings(n: int, q: int) -> np.ndarray:
    m = np.arange(q**n)
    return (m[:, None] // q ** np.arange(n)[None, :]) % q


def potts_law(k: np.ndarray, q: int, t: float) -> np.ndarray:
    y = labelings(k.shape[0], q)
    energy = ((y[:, :, None] == y[:, None, :]) * k[None]).sum(axis=(1, 2)) / t
    p = np.exp(energy - energy.max())
    return p / p.sum()


def prefix_law(k: np.ndarray, q: int, t: float) -> np.ndarray:
    n = k.shape[0]
    y = labelings(n, q)
    onehot = np.eye(q)[y]
    rows = np.arange(len(y))
    total = np.zeros(len(y))
    for order in itertools.permutations(range(n)):
        logp = np.zeros(len(y))
        for step, i in enumerate(order):
            seen = list(order[:step])
            logits = np.einsum("j,mjc->mc", k[i, seen], onehot[:, seen, :]) / t
            logits -= logits.max(axis=1, keepdims=True)
            logp += logits[rows, y[:, i]] - np.log(np.exp(logits).sum(axis=1))
        total += np.exp(logp)
    return total / math.factorial(n)


def empirical(tasks: torch.Tensor, q: int) -> np.ndarray:
    y = tasks.numpy()
    code = (y * q ** np.arange(y.shape[1])[None, :]).sum(axis=1)
    return np.bincount(code, minlength=q ** y.shape[1]) / len(y)


def tv(p: np.ndarray, r: np.ndarray) -> float:
    return 0.5 * float(np.abs(p - r).sum())


def noise(p: np.ndarray, num: int) -> float:
    draws = np.random.default_rng(0).multinomial(num, p, size=100) / num
    return float((0.5 * np.abs(draws - p[None]).sum(axis=1)).mean())


def kernel(n: int) -> tuple[np.ndarray, np.ndarray]:
    x = np.random.default_rng(0).normal(size=(n, 3))
    z = centered_cosine(torch.from_numpy(x)).numpy()
    return x, z @ z.T


def exact_table(settings: list[tuple[int, int]], temps: list[float]) -> None:
    print(
        "\nExact TV to Potts(T), no sampling. Prefix(T/2) runs Algorithm 1 at half the "
        "temperature, i.e. with the Gibbs factor 2:\n"
    )
    print("| n | q | law | " + " | ".join(f"T={t:g}" for t in temps) + " |")
    print("| ---: | ---: | --- | " + " | ".join("---:" for _ in temps) + " |")
    for n, q in settings:
        _, k = kernel(n)
        for name, scale in (("prefix(T)", 1.0), ("prefix(T/2)", 0.5)):
            row = [tv(prefix_law(k, q, scale * t), potts_law(k, q, t)) for t in temps]
            print(f"| {n} | {q} | {name} | " + " | ".join(f"{v:.3f}" for v in row) + " |")


def sampled_table(settings: list[tuple[int, int, float]], num: int) -> None:
    print(f"\nSampler vs exact laws, {num:,} tasks per cell (seed 0):\n")
    head = [
        "n",
        "q",
        "T",
        "noise prefix / Potts",
        "prefix vs exact prefix",
        "prefix vs Potts",
        *(f"+{s} sweeps vs Potts" for s in SWEEPS),
    ]
    print("| " + " | ".join(head) + " |")
    print("| " + " | ".join("---:" for _ in head) + " |")
    for n, q, t in settings:
        x, k = kernel(n)
        pre, pot = prefix_law(k, q, t), potts_law(k, q, t)
        emp = empirical(sample_tasks(x, num, q, t, seed=0), q)
        cells = [tv(emp, pre), tv(emp, pot)]
        cells += [
            tv(empirical(sample_tasks(x, num, q, t, seed=0, gibbs_sweeps=s), q), pot)
            for s in SWEEPS
        ]
        print(
            f"| {n} | {q} | {t:g} | {noise(pre, num):.3f} / {noise(pot, num):.3f} | "
            + " | ".join(f"{v:.3f}" for v in cells)
            + " |"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="20k tasks per cell instead of 200k")
    args = ap.parse_args()
    start = time.perf_counter()
    exact_table([(6, 2), (7, 2), (6, 3)], [0.05, 0.1, 0.3, 1.0, 3.0])
    sampled_table(
        [(7, 2, 0.1), (7, 2, 0.3), (6, 3, 0.1), (6, 3, 0.3)], 20_000 if args.quick else 200_000
    )
    print(f"\n({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
