"""The engine on bundled data: scikit-learn's digits, pixels and PCAs of them vs a pixel prior."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from ..core.hygiene import same_kernel
from ..core.kernels import build_kernel
from ..core.moments import MomentResult, task_prior_moments


def digits_representations(seed: int = 0) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Representations of the 1,797 digits: pixels, PCA-k, a random projection.

    Returns (models name -> (n, d), prior features (n, 64), labels (n,)).
    """
    from sklearn.datasets import load_digits

    x, y = load_digits(return_X_y=True)
    x = x.astype(np.float64)
    xc = x - x.mean(axis=0)
    _, _, vt = np.linalg.svd(xc, full_matrices=False)
    rng = np.random.default_rng(seed)
    models = {"pixels": x}
    for k in (2, 8, 32):
        models[f"pca{k}"] = xc @ vt[:k].T
    models["random16"] = x @ rng.normal(size=(x.shape[1], 16))
    models["noise"] = rng.normal(size=x.shape)
    return models, x, y


def ranked_table(
    results: dict[str, dict[float, MomentResult]],
    temperatures: Sequence[float],
    flags: dict[str, str] | None = None,
) -> str:
    """Markdown table, unflagged models ranked by mean per pair at the first temperature;
    flagged ones (``flags``: name -> reason) listed after them without a rank."""
    t0 = temperatures[0]
    flags = dict(flags or {})
    flags.update({m: "degenerate" for m in results if results[m][t0].degenerate})
    order = sorted(results, key=lambda m: (m in flags, -results[m][t0].mean_per_pair))
    head = (
        "| rank | model | "
        + " | ".join(f"mean/n² (T={t:g}) | std/n (T={t:g})" for t in temperatures)
        + " | flags |"
    )
    lines = [head, "|" + "---|" * (3 + 2 * len(temperatures))]
    rank = 0
    for name in order:
        rank += name not in flags
        cells = []
        for t in temperatures:
            r = results[name][t]
            cells += [f"{r.mean_per_pair:.4e}", f"{r.std / r.n:.4e}"]
        shown = "" if name in flags else str(rank)
        lines.append(f"| {shown} | {name} | " + " | ".join(cells) + f" | {flags.get(name, '')} |")
    return "\n".join(lines)


def _prior_copies(models: dict[str, np.ndarray], prior: np.ndarray) -> dict[str, str]:
    """Models whose kernel is the prior's (the harness's hygiene: not ranked)."""
    pk = build_kernel(prior)
    return {name: "prior" for name, x in models.items() if same_kernel(build_kernel(x), pk)}


def run_demo(temperatures: Sequence[float] = (0.1, 1.0), device: str | None = None) -> str:
    """Moments of each digits representation against the pixel prior; returns the table.

    Frobenius-normalised kernels, temperatures relative to the RMS of the prior kernel's
    entries (the settings of the shipped suites, docs/validation.md).
    """
    models, prior, labels = digits_representations()
    common: dict[str, Any] = dict(
        normalize="frobenius", temperature_scale="rms", device=device, dtype=torch.float64
    )
    res = task_prior_moments(models, prior, list(temperatures), **common)
    assert isinstance(res, dict)
    lab = task_prior_moments(
        models, labels, list(temperatures), prior_kernel="label_graph", **common
    )
    assert isinstance(lab, dict)
    n = prior.shape[0]
    out = [
        f"Digits (n={n}), centered-cosine kernels, Frobenius-normalised, T relative to the "
        "RMS of the prior kernel's entries; prior = pixels (ordered pairs incl. diagonal; "
        "mean/n², std/n). The prior's own kernel (pixels) is marked, not ranked:",
        "",
        ranked_table(res, temperatures, _prior_copies(models, prior)),
        "",
        "Same models, prior = the true label graph:",
        "",
        ranked_table(lab, temperatures),
    ]
    return "\n".join(out)
