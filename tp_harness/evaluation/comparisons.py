"""Error bars and self-checks of a run: paired comparisons of ranked neighbours, the
closed form against the alignment of the sampled tasks, and rank agreement between priors.

* Ranked neighbours: the jackknife of the difference of two models' per-pair means (same
  blocks, same pass) gives a paired 95% interval; ``vs_next.tied`` says whether it holds 0.
* Sampled-task alignment: ``Tr(M G)`` of every sampled task (same kernel and normalisation
  as the closed form), mean and std per (model, prior, temperature, q), next to the closed
  form's mean and std and their ratios (docs/uncertainty.md explains the gap).
* Prior sensitivity: Kendall tau between the rankings under two priors, with a bootstrap
  CI over models (the paper's Figure 5 question).
"""

from __future__ import annotations

from itertools import combinations, pairwise
from typing import Any

import numpy as np

from ..core.alignment import kernel_task_alignment
from ..core.kernels import build_kernel
from ..core.stats import kendall_tau_with_ci
from ..core.uncertainty import paired_difference
from . import representations
from .config import Config
from .flags import rankable
from .results import TaskSet
from .tasks import task_temperature_for

REPLICATES = "_replicates"


def mark_ties(scores: list[dict[str, Any]], level: float = 0.95) -> None:
    """Give every ranked score record ``vs_next`` (the next-ranked model, the paired
    difference of their per-pair means, its interval and ``tied``); drop the replicates."""
    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for s in scores:
        if rankable(s) and s.get(REPLICATES) is not None:
            groups.setdefault((s["prior"], s["temperature"]), []).append(s)
    for recs in groups.values():
        recs.sort(key=lambda r: -float(r["mean_per_pair"]))
        for a, b in pairwise(recs):
            d, lo, hi = paired_difference(
                a["mean_per_pair"], b["mean_per_pair"], a[REPLICATES][0], b[REPLICATES][0], level
            )
            a["vs_next"] = {
                "model": b["model"],
                "difference": d,
                "difference_ci": [lo, hi],
                "tied": bool(lo <= 0.0 <= hi),
            }
    for s in scores:
        s.pop(REPLICATES, None)
        s.setdefault("vs_next", None)  # one schema for every record (flagged, last, ...)


def task_alignment_records(
    config: Config,
    reps: representations.Representations,
    task_sets: list[TaskSet],
    scores: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Per (model, prior, task temperature, q): mean and std over the sampled tasks of
    ``Tr(M G)/n²`` and ``std/n``, with the closed form at the same prior and temperature."""
    closed = {
        (s["model"], s["prior"], task_temperature_for(config, s["temperature"])): s for s in scores
    }
    out = []
    for name, x in reps.arrays.items():
        sets = [ts for ts in task_sets if ts.model in (None, name)]
        if not sets:
            continue
        # one kernel per representation for all its task sets (as sampled_task_alignment)
        k = build_kernel(x, config.model_kernel, name="features", normalize=config.normalize)
        for ts in sets:
            a = kernel_task_alignment(k, ts.tasks).numpy()
            n = ts.tasks.shape[1]
            cf = closed.get((name, ts.prior, ts.temperature), {})
            mean, std = float(a.mean()), float(a.std() * n)  # std of Tr(MG)/n
            cf_mean = cf.get("mean_per_pair")
            cf_std = None if cf.get("std") is None else cf["std"] / n
            out.append(
                {
                    "model": name,
                    "prior": ts.prior,
                    "temperature": ts.temperature,
                    "num_classes": ts.num_classes,
                    "sampled_alignment_mean": mean,
                    "sampled_alignment_std": std,
                    "closed_form_mean": cf_mean,
                    "closed_form_std": cf_std,
                    "mean_ratio": _ratio(mean, cf_mean),
                    "std_ratio": _ratio(std, cf_std),
                }
            )
    return out


def _ratio(a: float, b: float | None) -> float | None:
    return a / b if b is not None and np.isfinite(b) and b != 0 else None


def prior_agreement(config: Config, scores: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Kendall tau (bootstrap 95% CI over models) between the rankings of every pair of
    priors at every temperature, over the models unflagged under both."""
    by: dict[tuple[str, float], dict[str, float]] = {}
    for s in scores:
        if rankable(s) and s["prior"] != "self":
            by.setdefault((s["prior"], s["temperature"]), {})[s["model"]] = s["mean_per_pair"]
    priors = sorted({p for p, _ in by})
    out = []
    for t in sorted({t for _, t in by}):
        for pa, pb in combinations(priors, 2):
            a, b = by.get((pa, t), {}), by.get((pb, t), {})
            models = [m for m in a if m in b]
            c = kendall_tau_with_ci(
                np.array([a[m] for m in models]),
                np.array([b[m] for m in models]),
                num_bootstrap=config.bootstrap,
                seed=config.seed,
            )
            out.append({"prior_a": pa, "prior_b": pb, "temperature": t, "models": models, **c})
    return out


__all__ = ["REPLICATES", "mark_ties", "prior_agreement", "task_alignment_records"]
