"""Figures of a run (matplotlib, Agg backend). Each function takes plain records and a path.

Figures are saved as laid out, without ``bbox_inches="tight"`` (which renders every
figure twice, ~0.1 s a figure): margins are set in inches from the widths of the
longest labels (font metrics only, :func:`_text_width`), and point labels are anchored
on the side where they fit inside their axes. ``tests/publishing/test_plots.py`` checks
that no text of any figure leaves the canvas.
"""

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
    atomic_write(p, lambda tmp: fig.savefig(tmp, dpi=120, format=fmt))
    _pyplot().close(fig)
    return p


def _text_width(texts: Sequence[str], size: float) -> float:
    """Width in inches of the widest of ``texts`` at font ``size`` (points); 0 if none."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.textpath import TextToPath

    ttp, prop = TextToPath(), FontProperties(size=size)
    lines = [line for t in texts for line in t.split("\n") if line]
    widths = [ttp.get_text_width_height_descent(t, prop, ismath=False)[0] for t in lines]
    return max(widths, default=0.0) / 72.0


def _margins(
    fig: Any,
    left: float,
    right: float,
    bottom: float,
    top: float,
    wspace: float | None = None,
) -> None:
    """Margins in inches (``wspace``: the gap between panels, in inches)."""
    w, h = fig.get_size_inches()
    kw: dict[str, float] = {}
    if wspace is not None:
        ncols = max(1, len(fig.axes))
        panel = (w - left - right - wspace * (ncols - 1)) / ncols
        kw["wspace"] = wspace / panel
    fig.subplots_adjust(
        left=left / w, right=1 - right / w, bottom=bottom / h, top=1 - top / h, **kw
    )


def _label_points(ax: Any, labels: Sequence[tuple[str, float, float]], size: float) -> None:
    """Annotate ``(text, x, y)`` points, each text to the right of its point where it fits
    inside the axes and to the left otherwise (call after the axes' data are plotted)."""
    x0, x1 = ax.get_xlim()
    axes_in = ax.get_position().width * ax.figure.get_size_inches()[0]
    stacked: dict[tuple[float, float], list[str]] = defaultdict(list)
    for text, x, y in labels:  # points drawn on top of each other get one stacked label
        stacked[(x, y)].append(text)
    for (x, y), texts in stacked.items():
        text = "\n".join(texts)
        at = axes_in * ((x - x0) / (x1 - x0) if x1 != x0 else 0.5)  # inches from the left
        width = _text_width([text], size) + 3 / 72
        if at + width <= axes_in:
            ha, dx = "left", 3.0
        elif at - width >= 0:
            ha, dx = "right", -3.0
        else:  # wider than the room on either side: as far left as the axes allow
            ha, dx = "left", -72.0 * min(at, max(0.0, at + width - axes_in))
        ax.annotate(text, (x, y), xytext=(dx, 2), textcoords="offset points", ha=ha, fontsize=size)


def _short_ticks(ax: Any, axes: str = "xy") -> None:
    """Tick labels of a few digits whatever the data (so the margins need not depend on
    them): an axis whose values are below 1e-2 or above 1e3 is shown in units of
    ``10^e``, and its label says so (``(x 1e-4)``). Call after the data are plotted."""
    from matplotlib.ticker import FuncFormatter

    for name in axes:
        axis = ax.xaxis if name == "x" else ax.yaxis
        lo, hi = ax.get_xlim() if name == "x" else ax.get_ylim()
        top = max(abs(lo), abs(hi))
        if top == 0 or not np.isfinite(top) or -2 <= np.floor(np.log10(top)) <= 3:
            continue
        e = int(np.floor(np.log10(top)))
        axis.set_major_formatter(FuncFormatter(lambda v, _, e=e: f"{v / 10.0**e:.4g}"))
        axis.set_label_text(f"{axis.get_label_text()} (x 1e{e})")


def mean_std_scatter(scores: Sequence[Mapping[str, Any]], path: str | Path) -> Path:
    """Expected alignment vs its std per model (the paper's Figure 2), one panel per prior x T."""
    plt = _pyplot()
    groups: dict[tuple[str, float], list[Mapping[str, Any]]] = defaultdict(list)
    for s in scores:
        groups[(s["prior"], s["temperature"])].append(s)
    keys = sorted(groups)
    fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 4), squeeze=False)
    _margins(fig, left=0.8, right=0.2, bottom=0.55, top=0.35, wspace=0.85)
    for ax, key in zip(axes[0], keys, strict=True):
        recs = [r for r in groups[key] if _finite(r["mean_per_pair"])]
        labels = []
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
                labels.append((f"{r['model']}{mark}", xi, yi))
        if any(r.get("flags") for r in recs):
            ax.legend(fontsize=7)
        ax.set_xlabel("E[Tr(MG)] / n²")
        ax.set_ylabel("std[Tr(MG)] / n")
        _short_ticks(ax)
        _label_points(ax, labels, 7)
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
    # tick labels rotated 60 degrees, anchored at their right end under each box
    label_w = _text_width(names, 7)
    axes_w = max(3.0, 0.6 * len(names))
    first_tick = axes_w / (2 * max(1, len(names)))
    left = max(0.8, label_w * 0.5 - first_tick + 0.15)
    bottom = label_w * 0.87 + 0.25
    fig, ax = plt.subplots(figsize=(left + axes_w + 0.3, bottom + 3.2))
    _margins(fig, left=left, right=0.3, bottom=bottom, top=0.4)
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
    _margins(fig, left=0.8, right=0.2, bottom=0.55, top=0.35, wspace=0.8)
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
        _short_ticks(ax, "y")
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
    _margins(fig, left=0.85, right=0.2, bottom=0.55, top=0.4, wspace=0.9)
    labels: tuple[list[tuple[str, float, float]], ...] = ([], [])
    for r in rows:
        flagged = bool((flags or {}).get(r["model"]))
        style = dict(marker="x", color="grey") if flagged else dict(marker="o", color="C0")
        if _finite(r.get("closed_form_mean")) and _finite(r.get("sampled_alignment_mean")):
            axes[0].scatter(r["closed_form_mean"], r["sampled_alignment_mean"], **style)
            labels[0].append((r["model"], r["closed_form_mean"], r["sampled_alignment_mean"]))
        if r["model"] in acc and _finite(r.get("sampled_alignment_mean")):
            axes[1].scatter(r["sampled_alignment_mean"], acc[r["model"]], **style)
            labels[1].append((r["model"], r["sampled_alignment_mean"], acc[r["model"]]))
    axes[0].set_xlabel("closed form E[Tr(MG)] / n² (independent edges)")
    axes[0].set_ylabel("mean Tr(MG) / n² over sampled tasks")
    axes[1].set_xlabel("mean Tr(MG) / n² over sampled tasks")
    axes[1].set_ylabel(f"{probe} accuracy on the same tasks")
    for ax, pts in zip(axes, labels, strict=True):
        _short_ticks(ax)
        _label_points(ax, pts, 6)
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
    legend_w = _text_width(models, 6) + 0.5  # handle, padding, frame
    axes_w = 1.5 * len(priors)
    # tick labels rotated 20 degrees, anchored at their right end: the first reaches left
    bottom = 0.3 + _text_width(priors, 8) * 0.34 + 0.15
    left = max(0.8, 0.94 * _text_width(priors[:1], 8) + 0.15)
    height = 0.35 * len(models) + 1 + bottom
    fig, ax = plt.subplots(figsize=(left + axes_w + legend_w + 0.2, height))
    _margins(fig, left=left, right=legend_w + 0.2, bottom=bottom, top=0.4)
    for m in models:
        ax.plot(range(len(priors)), [ranks[p][m] for p in priors], marker="o", label=m)
    ax.set_xticks(range(len(priors)), priors, rotation=20, ha="right", fontsize=8)
    ax.invert_yaxis()
    ax.set_ylabel("rank (1 = highest E[Tr(MG)]/n²)")
    ax.set_title(f"Ranking under each prior, T={temperature:g}", fontsize=9)
    ax.legend(fontsize=6, loc="center left", bbox_to_anchor=(1.0, 0.5))
    return _save(fig, path)
