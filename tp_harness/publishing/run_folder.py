"""Write a run's folder: results.json, tasks/ (a datasets.Dataset), figures/, summary.md."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..evaluation.atomic import atomic_dir, atomic_write_text
from ..evaluation.results import Results, TaskSet
from . import plots
from .report import summary_markdown

TASKS_DIR = "tasks"
FIGURES_DIR = "figures"


def tasks_dataset(
    task_sets: Sequence[TaskSet], example_ids: np.ndarray, settings: list[dict[str, Any]]
) -> Any:
    """Long-format ``datasets.Dataset``: one row per (task, example).

    Columns ``example_id`` (row index in the source dataset), ``task_id`` (global over
    task sets), ``prior`` (``self:MODEL`` for the self prior), ``temperature`` (of the
    tasks, as given), ``num_classes``, ``label``. The sampler settings go in
    ``info.description`` as JSON.
    """
    import datasets

    cols: dict[str, list[np.ndarray]] = {
        "example_id": [],
        "task_id": [],
        "prior": [],
        "temperature": [],
        "num_classes": [],
        "label": [],
    }
    offset = 0
    for ts in task_sets:
        s, n = ts.tasks.shape
        cols["example_id"].append(np.tile(np.asarray(example_ids, dtype=np.int64), s))
        cols["task_id"].append(np.repeat(np.arange(offset, offset + s, dtype=np.int64), n))
        cols["prior"].append(np.full(s * n, ts.label, dtype=object))
        cols["temperature"].append(np.full(s * n, ts.temperature, dtype=np.float64))
        cols["num_classes"].append(np.full(s * n, ts.num_classes, dtype=np.int64))
        cols["label"].append(ts.tasks.reshape(-1).astype(np.int64))
        offset += s
    table = {k: np.concatenate(v) for k, v in cols.items()}
    table["prior"] = table["prior"].astype(str)
    info = datasets.DatasetInfo(
        description=json.dumps({"sampler": settings}), homepage="https://github.com/tp-harness"
    )
    return datasets.Dataset.from_dict(table, info=info)


def save_dataset_atomically(ds: Any, path: Path) -> None:
    """``save_to_disk`` into a temp folder, then swap it in place."""
    atomic_dir(path, lambda tmp: ds.save_to_disk(str(tmp)))


def _first_group(results: Results) -> tuple[str, float] | None:
    """(prior, temperature) of the first score record: the group the figures show."""
    if not results.scores:
        return None
    first = results.scores[0]
    return str(first["prior"]), float(first["temperature"])


def write_figures(results: Results, folder: Path) -> list[str]:
    """mean vs std scatter, accuracy distributions per task set, per-layer curves.

    The accuracy and layer figures show the first prior and temperature (and the tasks
    drawn for them); flagged models are marked.
    """
    written = [plots.mean_std_scatter(results.scores, folder / "mean_vs_std.png")]
    group = _first_group(results)
    flags = {
        s["model"]: s.get("flags", [])
        for s in results.scores
        if group and (s["prior"], s["temperature"]) == group
    }
    t_tasks = _task_temperature(results, group)
    acc = {
        k: v
        for k, v in results.task_accuracies.items()
        if group and k[1] == group[0] and k[2] == t_tasks
    }
    for q, probe in sorted({(k[3], k[4]) for k in acc}):
        per_model = {_marked(k[0], flags): v for k, v in acc.items() if k[3] == q and k[4] == probe}
        num = len(next(iter(per_model.values())))
        written.append(
            plots.accuracy_distributions(
                per_model,
                folder / f"accuracy_q{q}_{probe}.png",
                title=f"{probe} probes on {num} {q}-class tasks sampled from prior "
                f"{group[0] if group else ''} at T={t_tasks:g}",
            )
        )
    if results.task_alignments:
        written.append(
            plots.alignment_vs_probes(
                results.task_alignments, results.probes, folder / "alignment_vs_probes.png", flags
            )
        )
    if group is not None:
        sens = plots.prior_sensitivity(results.scores, folder / "prior_sensitivity.png", group[1])
        if sens is not None:
            written.append(sens)
    rows = _layer_rows(results, group, t_tasks)
    layer_fig = plots.layer_curves(
        rows, ["mean_per_pair", "std_per_n", "probe_accuracy", "rankme"], folder / "layers.png"
    )
    if layer_fig is not None:
        written.append(layer_fig)
    return [str(p) for p in written]


def _marked(name: str, flags: dict[str, list[str]]) -> str:
    """``name`` with its flags in brackets (how every figure and table marks them)."""
    return f"{name} [{', '.join(flags[name])}]" if flags.get(name) else name


def _task_temperature(results: Results, group: tuple[str, float] | None) -> float:
    """Temperature of the tasks probed for ``group`` (the config's task_temperature if set)."""
    t_task = results.config.get("task_temperature")
    return float(t_task) if t_task is not None else (group[1] if group else 0.0)


def _layer_rows(
    results: Results, group: tuple[str, float] | None, t_tasks: float
) -> list[dict[str, Any]]:
    """Per model: the group's score, the first probe's mean on its tasks, RankMe, flags."""
    if group is None:
        return []
    rows: dict[str, dict[str, Any]] = {}
    for s in results.scores:
        if (s["prior"], s["temperature"]) == group:
            rows[s["model"]] = {
                "model": s["model"],
                "mean_per_pair": s["mean_per_pair"],
                "std_per_n": s["std"] / s["n"],
                "flags": s.get("flags", []),
            }
    for p in results.probes:
        if p["prior"] == group[0] and p["temperature"] == t_tasks:
            rows.get(p["model"], {}).setdefault("probe_accuracy", p["mean"])
    for b in results.baselines:
        if b["model"] in rows:
            rows[b["model"]]["rankme"] = b.get("rankme")
    return list(rows.values())


def write_outputs(results: Results, output_dir: str | Path) -> Path:
    """Write everything for a run into ``output_dir`` (each file atomically)."""
    out = Path(output_dir)
    out.mkdir(parents=True, exist_ok=True)
    if results.task_sets and results.example_ids is not None:
        ds = tasks_dataset(results.task_sets, results.example_ids, results.tasks)
        save_dataset_atomically(ds, out / TASKS_DIR)
    figures = write_figures(results, out / FIGURES_DIR)
    results.conventions["figures"] = [str(Path(f).relative_to(out)) for f in figures]
    path = results.save(out)
    atomic_write_text(out / "summary.md", summary_markdown(results.to_dict()))
    return path
