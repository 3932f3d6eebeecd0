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
