"""Figures of a run (matplotlib, Agg backend). Each function takes plain records and a path."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..evaluation.atomic import atomic_write
from ..evaluation.embed.spec import split_layer


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: str | Path) -> Path:
    p = Path(path)
    fmt = p.suffix.lstrip(".") or "png"
    atomic_write(p, lambda tmp: fig.savefig(tmp, dpi=120, bbox_inches="tight", format=fmt))
    _pyplot().close(fig)
    return p


def mean_std_scatter(scores: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Expected alignment vs its std per model (the paper's Figure 2), one panel per prior x T."""
    plt = _pyplot()
    groups: dict[tuple[str, float], list[Mapping[str, Any]]] = defaultdict(list)
    for s in scores:
        groups[(s["prior"], s["temperature"])].append(s)
    keys = sorted(groups)
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 4), squeeze=False)
    for ax, key in zip(axes[0], keys, strict=True):
        recs = [r for r in groups[key] if _finite(r["mean_per_pair"])]
        for flagged in (False, True):
            sub = [r for r in recs if bool(r.get("flags")) == flagged]
            x = [r["mean_per_pair"] for r in sub]
            y = [r["std"] / r["n"] for r in sub]
            ax.scatter(
                x,
                y,
                marker="x" if flagged else "o",
                c="grey" if flagged else None,
                label="flagged (not ranked)" if flagged and sub else None,
            )
            for r, xi, yi in zip(sub, x, y, strict=True):
                mark = f" [{', '.join(r['flags'])}]" if flagged else ""
                ax.annotate(f"{r['model']}{mark}", (xi, yi), fontsize=7)
        if any(r.get("flags") for r in recs):
            ax.legend(fontsize=7)
        ax.set_xlabel("E[Tr(MG)] / n²")
        ax.set_ylabel("std[Tr(MG)] / n")
        ax.set_title(f"prior={key[0]}  T={key[1]:g}", fontsize=9)
    return _save(fig, path)


def _finite(v: Any) -> bool:
    return v is not None and np.isfinite(float(v))


def accuracy_distributions(
    accuracies: Mapping[str, np.ndarray], path: str | Path, title: str = ""
) -> Path:
    """Box plot of per-task probe accuracy for each model."""
    plt = _pyplot()
    names = list(accuracies)
    fig, ax = plt.subplots(figsize=(max(5, 0.6 * len(names) + 2), 4))
    ax.boxplot([np.asarray(accuracies[n]) for n in names], showmeans=True)
    ax.set_xticks(range(1, len(names) + 1), names, rotation=60, ha="right", fontsize=7)
    ax.set_ylabel("held-out accuracy per task")
    ax.set_title(title, fontsize=9)
    return _save(fig, path)


def layer_curves(
    rows: Sequence[Mapping[str, Any]], metrics: Sequence[str], path: str | Path
) -> Path | None:
    """Per-layer curves of ``metrics`` for every layered model; ``None`` if there is none.

    ``rows`` are records with ``model`` (``base@layerK``) and the metric keys.
    """
    series: dict[str, dict[str, list[tuple[int, float]]]] = defaultdict(lambda: defaultdict(list))
    marked: dict[str, dict[str, list[tuple[int, float]]]] = defaultdict(lambda: defaultdict(list))
    for r in rows:
        base, layer = split_layer(str(r["model"]))
        if layer is None:
            continue
        for m in metrics:
            if _finite(r.get(m)):
                series[base][m].append((layer, float(r[m])))
                if r.get("flags"):
                    marked[base][m].append((layer, float(r[m])))
    if not series:
        return None
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3.5), squeeze=False)
    for ax, m in zip(axes[0], metrics, strict=True):
        for base, by_metric in series.items():
            pts = sorted(by_metric.get(m, []))
            if pts:
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=base)
            bad = marked[base].get(m, [])
            if bad:
                ax.scatter(
                    [p[0] for p in bad],
                    [p[1] for p in bad],
                    marker="x",
                    c="black",
                    s=60,
                    zorder=3,
                    label=f"{base}: flagged (not ranked)",
                )
        ax.set_xlabel("layer")
        ax.set_title(m, fontsize=9)
    axes[0][0].legend(fontsize=7)
    return _save(fig, path)


def alignment_vs_probes(
    alignments: Sequence[Mapping[str, Any]],
    probes: Sequence[Mapping[str, Any]],
    path: str | Path,
    flags: Mapping[str, Sequence[str]] | None = None,
) -> Path:
    """Across models, for the first (prior, temperature, q): closed-form mean vs the mean
    alignment of the sampled tasks, and that alignment vs the first probe's accuracy."""
    plt = _pyplot()
    key = ("prior", "temperature", "num_classes")
    first = tuple(alignments[0][k] for k in key)
    rows = [a for a in alignments if tuple(a[k] for k in key) == first]
    probe = next((p["probe"] for p in probes), None)
    acc = {
        p["model"]: p["mean"]
        for p in probes
        if tuple(p[k] for k in key) == first and p["probe"] == probe
    }
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for r in rows:
        flagged = bool((flags or {}).get(r["model"]))
        style = dict(marker="x", color="grey") if flagged else dict(marker="o", color="C0")
        if _finite(r.get("closed_form_mean")) and _finite(r.get("sampled_alignment_mean")):
            axes[0].scatter(r["closed_form_mean"], r["sampled_alignment_mean"], **style)
            axes[0].annotate(
                r["model"], (r["closed_form_mean"], r["sampled_alignment_mean"]), fontsize=6
            )
        if r["model"] in acc and _finite(r.get("sampled_alignment_mean")):
            axes[1].scatter(r["sampled_alignment_mean"], acc[r["model"]], **style)
            axes[1].annotate(r["model"], (r["sampled_alignment_mean"], acc[r["model"]]), fontsize=6)
    axes[0].set_xlabel("closed form E[Tr(MG)] / n² (independent edges)")
    axes[0].set_ylabel("mean Tr(MG) / n² over sampled tasks")
    axes[1].set_xlabel("mean Tr(MG) / n² over sampled tasks")
    axes[1].set_ylabel(f"{probe} accuracy on the same tasks")
    fig.suptitle(f"prior={first[0]}  T={first[1]:g}  q={first[2]} (grey x: flagged)", fontsize=9)
    return _save(fig, path)


def prior_sensitivity(
    scores: Sequence[Mapping[str, Any]], path: str | Path, temperature: float
) -> Path | None:
    """Rank of every unflagged model under each prior at ``temperature`` (one line per
    model); None with fewer than two priors."""
    by: dict[str, dict[str, float]] = defaultdict(dict)
    for s in scores:
        if s["temperature"] == temperature and not s.get("flags") and s["prior"] != "self":
            by[s["prior"]][s["model"]] = float(s["mean_per_pair"])
    priors = sorted(by)
    if len(priors) < 2:
        return None
    models = sorted(set.intersection(*(set(v) for v in by.values())))
    ranks = {
        p: {m: i + 1 for i, m in enumerate(sorted(models, key=lambda m: -by[p][m]))} for p in priors
    }
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(2.5 + 1.5 * len(priors), 0.35 * len(models) + 2))
    for m in models:
        ax.plot(range(len(priors)), [ranks[p][m] for p in priors], marker="o", label=m)
    ax.set_xticks(range(len(priors)), priors, rotation=20, ha="right", fontsize=8)
    ax.invert_yaxis()
    ax.set_ylabel("rank (1 = highest E[Tr(MG)]/n²)")
    ax.set_title(f"Ranking under each prior, T={temperature:g}", fontsize=9)
    ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return _save(fig, path)
