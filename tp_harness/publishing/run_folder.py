"""Write a run's folder: results.json, tasks/ (a datasets.Dataset), figures/, summary.md.

A run folder is *owned*: :data:`MANIFEST_FILE` lists every file tp-harness wrote there
(with its SHA-256). tp-harness refuses a non-empty folder without a manifest (unless
``overwrite``), never deletes or replaces a file it did not write, and replaces its own
previous outputs as a whole: the new run is built in a hidden staging folder inside the
run folder, then its entries are swapped in by renames and the previous entries removed
(so a rerun that fails leaves the previous run intact, and no stale figure survives a
rerun that succeeds). What is written holds no local path (:mod:`.redact`); the local
paths of the run go to :data:`LOCAL_FILE`, which is never pushed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ..evaluation.atomic import atomic_write_text
from ..evaluation.results import JSON_FIELDS, RESULTS_FILE, Results, TaskSet, strict_json
from . import plots
from .background import split_jobs
from .redact import local_roots, redact
from .report import summary_markdown

TASKS_DIR = "tasks"
FIGURES_DIR = "figures"
SUMMARY_FILE = "summary.md"
MANIFEST_FILE = "tp-harness-manifest.json"
LOCAL_FILE = "local.json"
#: Top-level entries a run writes (the manifest is written last).
RUN_ENTRIES = (RESULTS_FILE, SUMMARY_FILE, TASKS_DIR, FIGURES_DIR, LOCAL_FILE)
_STAGING = ".tp-harness-staging-"
_OLD = ".tp-harness-old-"


class OutputDirError(OSError):
    """The output folder cannot be used (not ours, not writable, a file...)."""


# ----------------------------------------------------------------------------- ownership


def read_manifest(out: str | Path) -> dict[str, Any] | None:
    """The folder's manifest, or None when tp-harness does not own it."""
    path = Path(out) / MANIFEST_FILE
    if not path.is_file():
        return None
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise OutputDirError(
            f"{path} is not a readable tp-harness manifest ({err}); move it away or "
            "choose another --output-dir."
        ) from None
    if not isinstance(doc, dict) or doc.get("written_by") != "tp-harness":
        raise OutputDirError(f"{path} was not written by tp-harness; choose another --output-dir.")
    return doc


def _owned_entries(manifest: dict[str, Any] | None) -> set[str]:
    return set(manifest.get("entries", [])) if manifest else set()


def _check_writable(out: Path) -> None:
    """A real write probe (permission bits do not stop root; read-only mounts do)."""
    if out.exists() and not out.is_dir():
        raise OutputDirError(
            f"--output-dir {out} is a file, not a folder; choose a folder path (new or empty)."
        )
    base = out
    while not base.exists():
        if base.parent == base:
            break
        base = base.parent
    if not base.is_dir():
        raise OutputDirError(
            f"--output-dir {out} cannot be created: {base} is a file; choose another path."
        )
    try:
        out.mkdir(parents=True, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=out, prefix=".tp-harness-write-test-")
        os.close(fd)
        os.unlink(probe)
    except OSError as err:
        raise OutputDirError(
            f"--output-dir {out} is not writable ({err.strerror or err}); choose a folder "
            "you can write to."
        ) from None


def check_output_dir(output_dir: str | Path, *, overwrite: bool = False) -> dict[str, Any] | None:
    """Raise :class:`OutputDirError` unless a run may be written into ``output_dir``;
    returns its manifest (None for a new, empty or foreign folder)."""
    out = Path(output_dir)
    _check_writable(out)
    manifest = read_manifest(out)
    present = {p.name for p in out.iterdir()} - {MANIFEST_FILE}
    present = {p for p in present if not p.startswith((_STAGING, _OLD))}
    if manifest is None and present and not overwrite:
        raise OutputDirError(
            f"--output-dir {out} is not empty and was not written by tp-harness (no "
            f"{MANIFEST_FILE}); choose a new or empty folder, or pass --overwrite to write "
            "beside its files (tp-harness never deletes files it did not write)."
        )
    foreign = sorted((present & set(RUN_ENTRIES)) - _owned_entries(manifest))
    if foreign:
        raise OutputDirError(
            f"--output-dir {out} already holds {', '.join(foreign)}, which tp-harness did not "
            "write (not in its manifest); tp-harness will not replace them. Move them away or "
            "choose another --output-dir."
        )
    return manifest


def claim_output_dir(output_dir: str | Path, *, overwrite: bool = False) -> Path:
    """:func:`check_output_dir`, then mark the folder as tp-harness's (an empty manifest)
    so that files other tools add during the run (a cache folder) do not block the write."""
    out = Path(output_dir)
    manifest = check_output_dir(out, overwrite=overwrite)
    if manifest is None:
        _write_manifest(out, {})
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _file_table(root: Path, entries: Sequence[str]) -> dict[str, dict[str, Any]]:
    files = {}
    for entry in entries:
        p = root / entry
        paths = sorted(x for x in p.rglob("*") if x.is_file()) if p.is_dir() else [p]
        for f in paths:
            if f.is_file():
                rel = f.relative_to(root).as_posix()
                files[rel] = {"bytes": f.stat().st_size, "sha256": _sha256(f)}
    return files


def _write_manifest(out: Path, files: dict[str, dict[str, Any]]) -> None:
    from ..evaluation.results import package_versions

    entries = sorted({rel.split("/")[0] for rel in files})
    doc = {
        "written_by": "tp-harness",
        "version": package_versions().get("tp-harness"),
        "entries": entries,
        "files": files,
    }
    atomic_write_text(out / MANIFEST_FILE, json.dumps(doc, indent=2, sort_keys=True))


def _swap_in(out: Path, staging: Path, owned: set[str]) -> None:
    """Move our previous entries aside, the staged ones in, then drop the previous ones;
    on any failure put the previous entries back."""
    old = out / f"{_OLD}{uuid.uuid4().hex[:8]}"
    old.mkdir()
    moved_old: list[str] = []
    moved_new: list[str] = []
    try:
        for name in sorted(owned):
            if (out / name).exists() or (out / name).is_symlink():
                os.replace(out / name, old / name)
                moved_old.append(name)
        for child in sorted(staging.iterdir(), key=lambda p: p.name == RESULTS_FILE):
            os.replace(child, out / child.name)  # results.json last
            moved_new.append(child.name)
    except BaseException:
        for name in moved_new:
            with contextlib.suppress(OSError):
                os.replace(out / name, staging / name)
        for name in moved_old:
            with contextlib.suppress(OSError):
                os.replace(old / name, out / name)
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


def tasks_dataset(
    task_sets: Sequence[TaskSet], example_ids: np.ndarray, settings: list[dict[str, Any]]
) -> Any:
    """Long-format ``datasets.Dataset``: one row per (task, example).

    Columns ``example_id`` (row index in the source dataset), ``task_id`` (global over
    task sets), ``prior`` (``self:MODEL`` for the self prior), ``temperature`` (of the
    tasks, as given), ``num_classes``, ``label``. The sampler settings go in
    ``info.description`` as JSON. Built as one Arrow table from the task arrays (the
    ``prior`` strings through a dictionary, not one Python string per row) and
    fingerprinted by a hash of its content.
    """
    import datasets
    import pyarrow as pa

    labels = [ts.label for ts in task_sets]
    names = list(dict.fromkeys(labels))
    ids = np.asarray(example_ids, dtype=np.int64)
    cols: dict[str, list[np.ndarray]] = {
        k: [] for k in ("example_id", "task_id", "prior", "temperature", "num_classes", "label")
    }
    h = hashlib.blake2b(ids.tobytes(), digest_size=16)
    offset = 0
    for ts, label in zip(task_sets, labels, strict=True):
        s, n = ts.tasks.shape
        tasks = np.ascontiguousarray(ts.tasks, dtype=np.int64)
        cols["example_id"].append(np.tile(ids, s))
        cols["task_id"].append(np.repeat(np.arange(offset, offset + s, dtype=np.int64), n))
        cols["prior"].append(np.full(s * n, names.index(label), dtype=np.int32))
        cols["temperature"].append(np.full(s * n, ts.temperature, dtype=np.float64))
        cols["num_classes"].append(np.full(s * n, ts.num_classes, dtype=np.int64))
        cols["label"].append(tasks.reshape(-1))
        h.update(f"{label}|{ts.temperature!r}|{ts.num_classes}|{s}x{n}".encode())
        h.update(tasks.tobytes())
        offset += s
    table = {k: np.concatenate(v) if v else np.zeros(0, np.int64) for k, v in cols.items()}
    prior = pa.DictionaryArray.from_arrays(
        pa.array(table.pop("prior").astype(np.int32)), pa.array(names, pa.string())
    ).cast(pa.string())
    arrow = pa.table(
        {
            "example_id": table["example_id"],
            "task_id": table["task_id"],
            "prior": prior,
            "temperature": table["temperature"].astype(np.float64),
            "num_classes": table["num_classes"],
            "label": table["label"],
        }
    )
    description = json.dumps({"sampler": settings})
    h.update(description.encode())
    info = datasets.DatasetInfo(description=description, homepage="https://github.com/tp-harness")
    return datasets.Dataset(arrow, info=info, fingerprint=h.hexdigest())


@contextlib.contextmanager
def _quiet_fast_writes() -> Any:
    """``save_to_disk`` without its progress bar, writing record batches of 100k rows (its
    default of 1,000 costs ~1 ms of Python per batch: about 0.2 s per million rows)."""
    import datasets
    from datasets import config as ds_config

    bar, batch = datasets.is_progress_bar_enabled(), ds_config.DEFAULT_MAX_BATCH_SIZE
    datasets.disable_progress_bar()
    ds_config.DEFAULT_MAX_BATCH_SIZE = max(batch, 100_000)
    try:
        yield
    finally:
        ds_config.DEFAULT_MAX_BATCH_SIZE = batch
        if bar:
            datasets.enable_progress_bar()


def _first_group(results: Results) -> tuple[str, float] | None:
    """(prior, temperature) of the first score record: the group the figures show."""
    if not results.scores:
        return None
    first = results.scores[0]
    return str(first["prior"]), float(first["temperature"])


FigureJob = Callable[[], "Path | None"]


def figure_jobs(results: Results, folder: Path) -> list[FigureJob]:
    """One thunk per figure (each writes its file and returns its path, or None when the
    run has nothing to show): mean vs std scatter, accuracy distributions per task set,
    closed form vs sampled tasks, prior sensitivity, per-layer curves.

    The accuracy and layer figures show the first prior and temperature (and the tasks
    drawn for them); flagged models are marked.
    """
    jobs: list[FigureJob] = [
        functools.partial(plots.mean_std_scatter, results.scores, folder / "mean_vs_std.png")
    ]
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
        jobs.append(
            functools.partial(
                plots.accuracy_distributions,
                per_model,
                folder / f"accuracy_q{q}_{probe}.png",
                title=f"{probe} probes on {num} {q}-class tasks sampled from prior "
                f"{group[0] if group else ''} at T={t_tasks:g}",
            )
        )
    if results.task_alignments:
        jobs.append(
            functools.partial(
                plots.alignment_vs_probes,
                results.task_alignments,
                results.probes,
                folder / "alignment_vs_probes.png",
                flags,
            )
        )
    if group is not None:
        jobs.append(
            functools.partial(
                plots.prior_sensitivity, results.scores, folder / "prior_sensitivity.png", group[1]
            )
        )
    jobs.append(
        functools.partial(
            plots.layer_curves,
            _layer_rows(results, group, t_tasks),
            ["mean_per_pair", "std_per_n", "probe_accuracy", "rankme"],
            folder / "layers.png",
        )
    )
    return jobs


def write_figures(results: Results, folder: Path) -> list[str]:
    """Every figure of :func:`figure_jobs`, in this process; the paths written."""
    return [str(p) for p in (job() for job in figure_jobs(results, folder)) if p is not None]


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


def redacted_results(results: Results, output_dir: str | Path | None = None) -> Results:
    """A copy of ``results`` whose strings hold no local path (see :mod:`.redact`):
    what results.json, the figures, the tasks dataset and the cards are made from."""
    roots = local_roots(output_dir)
    changes: dict[str, Any] = {f: redact(getattr(results, f), roots) for f in JSON_FIELDS}
    changes["task_sets"] = [
        dataclasses.replace(
            ts,
            prior=redact(ts.prior, roots),
            model=None if ts.model is None else redact(ts.model, roots),
            info=redact(ts.info, roots),
        )
        for ts in results.task_sets
    ]
    changes["task_accuracies"] = {
        (redact(m, roots), redact(p, roots), t, q, probe): v
        for (m, p, t, q, probe), v in results.task_accuracies.items()
    }
    return dataclasses.replace(results, **changes)


def _local_record(results: Results, out: Path) -> dict[str, Any]:
    return {
        "note": "local paths of this run; never pushed (results.json holds redacted ones)",
        "output_dir": str(out.resolve()),
        "config": results.config,
        "data_source": results.data.get("source"),
        "models": results.models,
    }


def _build(results: Results, folder: Path) -> None:
    """Write the run's entries into ``folder`` (the staging folder). Half of the figures
    are drawn in a forked process meanwhile (:func:`.background.split_jobs`)."""
    jobs = figure_jobs(results, folder / FIGURES_DIR)
    with split_jobs(jobs) as mine:
        if results.task_sets and results.example_ids is not None:
            ds = tasks_dataset(results.task_sets, results.example_ids, results.tasks)
            with _quiet_fast_writes():
                ds.save_to_disk(str(folder / TASKS_DIR))
        mine.run()
    figures = [p for p in mine.results() if p is not None]
    results.conventions["figures"] = [str(Path(f).relative_to(folder)) for f in figures]
    results.save(folder)
    atomic_write_text(folder / SUMMARY_FILE, summary_markdown(results.to_dict()))


def write_outputs(results: Results, output_dir: str | Path, *, overwrite: bool = False) -> Path:
    """Write the run folder (see the module docstring for ownership and the swap);
    returns the path of results.json."""
    out = Path(output_dir)
    manifest = check_output_dir(out, overwrite=overwrite)
    owned = _owned_entries(manifest)
    public = redacted_results(results, out)
    staging = Path(tempfile.mkdtemp(dir=out, prefix=_STAGING))
    try:
        _build(public, staging)
        text = json.dumps(strict_json(_local_record(results, out)), indent=2, default=str)
        atomic_write_text(staging / LOCAL_FILE, text)
        files = _file_table(staging, sorted(p.name for p in staging.iterdir()))
        # own the union first, so a crash inside the swap leaves no entry unowned
        _write_manifest(out, {**(manifest or {}).get("files", {}), **files})
        _swap_in(out, staging, owned)
        _write_manifest(out, files)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    results.conventions["figures"] = public.conventions["figures"]
    return out / RESULTS_FILE
