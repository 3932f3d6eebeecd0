"""Write a run's folder: results.json, tasks/ (a datasets.Dataset), figures/, summary.md."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from ..evaluation.atomic import atomic_dir, atomic_write_text
from ..evaluation.results import Results
from . import plots
from .report import summary_markdown

TASKS_DIR = "tasks"
FIGURES_DIR = "figures"


def tasks_dataset(
    task_arrays: dict[int, np.ndarray], example_ids: np.ndarray, settings: list[dict[str, Any]]
) -> Any:
    """Long-format ``datasets.Dataset``: one row per (task, example).

    Columns ``example_id`` (row index in the source dataset), ``task_id`` (global over
    class counts), ``num_classes``, ``label``. The sampler settings go in ``info.description``
    as JSON.
    """
    import datasets

    cols: dict[str, list[np.ndarray]] = {
        "example_id": [],
        "task_id": [],
        "num_classes": [],
        "label": [],
    }
    offset = 0
    for q, t in task_arrays.items():
        s, n = t.shape
        cols["example_id"].append(np.tile(np.asarray(example_ids, dtype=np.int64), s))
        cols["task_id"].append(np.repeat(np.arange(offset, offset + s, dtype=np.int64), n))
        cols["num_classes"].append(np.full(s * n, q, dtype=np.int64))
        cols["label"].append(t.reshape(-1).astype(np.int64))
        offset += s
    table = {k: np.concatenate(v) for k, v in cols.items()}
    info = datasets.DatasetInfo(
        description=json.dumps({"sampler": settings}), homepage="https://github.com/tp-harness"
    )
    return datasets.Dataset.from_dict(table, info=info)


def save_dataset_atomically(ds: Any, path: Path) -> None:
    """``save_to_disk`` into a temp folder, then swap it in place."""
    atomic_dir(path, lambda tmp: ds.save_to_disk(str(tmp)))


def write_figures(results: Results, folder: Path) -> list[str]:
    """mean vs std scatter, accuracy distributions per task set, per-layer curves."""
    written = [plots.mean_std_scatter(results.scores, folder / "mean_vs_std.png")]
    acc = results.task_accuracies
    for q, probe in sorted({(k[1], k[2]) for k in acc}):
        per_model = {k[0]: v for k, v in acc.items() if k[1] == q and k[2] == probe}
        written.append(
            plots.accuracy_distributions(
                per_model,
                folder / f"accuracy_q{q}_{probe}.png",
                title=f"{probe} probes on {len(next(iter(per_model.values())))} sampled "
                f"{q}-class tasks",
            )
        )
    rows = _layer_rows(results)
    layer_fig = plots.layer_curves(
        rows, ["mean_per_pair", "std_per_n", "probe_accuracy", "rankme"], folder / "layers.png"
    )
    if layer_fig is not None:
        written.append(layer_fig)
    return [str(p) for p in written]


def _layer_rows(results: Results) -> list[dict[str, Any]]:
    """Per model: first prior x temperature score, first probe mean, RankMe."""
    if not results.scores:
        return []
    first = results.scores[0]
    rows: dict[str, dict[str, Any]] = {}
    for s in results.scores:
        if s["prior"] == first["prior"] and s["temperature"] == first["temperature"]:
            rows[s["model"]] = {
                "model": s["model"],
                "mean_per_pair": s["mean_per_pair"],
                "std_per_n": s["std"] / s["n"],
            }
    for p in results.probes:
        rows.get(p["model"], {}).setdefault("probe_accuracy", p["mean"])
    for b in results.baselines:
        if b["model"] in rows:
            rows[b["model"]]["rankme"] = b.get("rankme")
    return list(rows.values())


def write_outputs(results: Results, output_dir: str | Path) -> Path:
    """Write everything for a run into ``output_dir`` (each file atomically)."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if results.task_arrays and results.example_ids is not None:
        ds = tasks_dataset(results.task_arrays, results.example_ids, results.tasks)
        save_dataset_atomically(ds, out / TASKS_DIR)
    figures = write_figures(results, out / FIGURES_DIR)
    results.conventions["figures"] = [str(Path(f).relative_to(out)) for f in figures]
    path = results.save(out)
    atomic_write_text(out / "summary.md", summary_markdown(results.to_dict()))
    return path
