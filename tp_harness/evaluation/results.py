"""Results schema and IO: one versioned JSON document per run, written atomically."""

from __future__ import annotations

import json
import math
import platform
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_write_text

SCHEMA_VERSION = "1.1"
#: The fields of :class:`Results` that results.json holds, in file order.
JSON_FIELDS = (
    "config",
    "data",
    "models",
    "scores",
    "probes",
    "baselines",
    "correlations",
    "task_alignments",
    "prior_agreement",
    "tasks",
    "timings",
    "conventions",
    "environment",
    "versions",
)
RESULTS_FILE = "results.json"
_PACKAGES = (
    "tp-harness",
    "torch",
    "numpy",
    "transformers",
    "datasets",
    "accelerate",
    "sentence-transformers",
    "huggingface-hub",
    "evaluate",
    "scikit-learn",
)


def package_versions() -> dict[str, str | None]:
    """Installed versions of the packages that shape the numbers."""
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in _PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


@dataclass
class TaskSet:
    """One set of sampled tasks: ``tasks (num_tasks, n)`` int labels in ``0..q-1``.

    Sampled from ``prior`` at ``temperature`` (as given, read in the run's
    ``temperature_scale``); ``model`` is set for the ``self`` prior, whose tasks belong
    to one model. ``info`` holds the sampler's settings and counters.
    """

    prior: str
    temperature: float
    num_classes: int
    tasks: np.ndarray
    info: dict[str, Any] = field(default_factory=dict)
    model: str | None = None

    @property
    def label(self) -> str:
        """The prior as the tasks dataset names it (``self:MODEL`` for the self prior)."""
        return self.prior if self.model is None else f"{self.prior}:{self.model}"


@dataclass
class Results:
    """A run's results; ``scores``, ``probes``, ``baselines``, ``correlations`` are record lists."""

    config: dict[str, Any]
    data: dict[str, Any] = field(default_factory=dict)
    models: list[dict[str, Any]] = field(default_factory=list)
    scores: list[dict[str, Any]] = field(default_factory=list)
    probes: list[dict[str, Any]] = field(default_factory=list)
    baselines: list[dict[str, Any]] = field(default_factory=list)
    correlations: list[dict[str, Any]] = field(default_factory=list)
    task_alignments: list[dict[str, Any]] = field(default_factory=list)
    prior_agreement: list[dict[str, Any]] = field(default_factory=list)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    conventions: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str | None] = field(default_factory=package_versions)
    schema_version: str = SCHEMA_VERSION
    # In-memory only (not in results.json): what the run folder and figures are made of.
    task_sets: list[TaskSet] = field(default_factory=list, repr=False)
    """The sampled tasks, one :class:`TaskSet` per (prior, temperature, q[, model])."""
    example_ids: np.ndarray | None = field(default=None, repr=False)
    """``(n,)`` row index of each example in the source dataset."""
    task_accuracies: dict[tuple[str, str, float, int, str], np.ndarray] = field(
        default_factory=dict, repr=False
    )
    """``(model, prior, temperature, q, probe)`` -> ``(num_tasks,)`` held-out accuracy."""
    is_main: bool = field(default=True, repr=False)
    """Whether this process ran the main-process stages (tasks, probes, baselines)."""

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": self.schema_version, **{k: getattr(self, k) for k in JSON_FIELDS}}

    def save(self, output_dir: str | Path) -> Path:
        """Write ``results.json`` atomically into ``output_dir``; returns its path."""
        path = Path(output_dir) / RESULTS_FILE
        text = json.dumps(strict_json(self.to_dict()), indent=2, allow_nan=False)
        atomic_write_text(path, text)
        return path

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Results:
        version = str(d.get("schema_version", ""))
        if version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
            raise ValueError(
                f"results schema {version!r} is not supported "
                f"(this tp-harness reads {SCHEMA_VERSION})."
            )
        return cls(**{k: d[k] for k in JSON_FIELDS if k in d}, schema_version=version)

    @classmethod
    def load(cls, path_or_repo: str | Path, *, revision: str | None = None) -> Results:
        """Read a ``results.json``, the run folder holding one, or the scores dataset repo
        ``ORG/NAME`` that ``tp-harness push`` wrote (downloaded through the Hub cache)."""
        p = Path(path_or_repo).expanduser()
        if not p.exists() and _looks_like_repo(str(path_or_repo)):
            p = _download_results(str(path_or_repo), revision)
        p = p / RESULTS_FILE if p.is_dir() else p
        if not p.exists():
            raise FileNotFoundError(
                f"no {RESULTS_FILE} at {p}; pass a run's --output-dir or a results repo ORG/NAME."
            )
        try:
            doc = json.loads(p.read_text(encoding="utf-8"))
        except ValueError as err:
            raise ValueError(f"{p} is not valid JSON ({err}).") from None
        if not isinstance(doc, dict):
            raise ValueError(f"{p} is not a tp-harness results document.")
        return cls.from_dict(doc)

    def to_pandas(self) -> dict[str, Any]:
        """Tidy ``pandas.DataFrame`` tables: ``{"scores": one row per model x prior x
        temperature, "probes": one row per model x task set x probe}`` (intervals as
        ``*_low`` / ``*_high`` columns)."""
        import pandas as pd

        def tidy(records: list[dict[str, Any]]) -> Any:
            rows = []
            for r in records:
                row = {}
                for k, v in r.items():
                    if k.endswith("_ci") and isinstance(v, (list, tuple)) and len(v) == 2:
                        row[f"{k[:-3]}_low"], row[f"{k[:-3]}_high"] = v
                    elif isinstance(v, (dict, list)):
                        row[k] = json.dumps(v)
                    else:
                        row[k] = v
                rows.append(row)
            return pd.DataFrame(rows)

        return {"scores": tidy(self.scores), "probes": tidy(self.probes)}


def _looks_like_repo(text: str) -> bool:
    import re

    return (
        re.fullmatch(r"(hf://)?(datasets/)?[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*", text) is not None
    )


def _download_results(repo: str, revision: str | None) -> Path:
    """``results.json`` of a scores dataset repo, through the local Hub cache."""
    from .hub_access import resolve_hub_file

    repo_id = repo.removeprefix("hf://").removeprefix("datasets/")
    path, _ = resolve_hub_file(repo_id, RESULTS_FILE, revision, repo_type="dataset")
    return Path(path)


def strict_json(o: Any) -> Any:
    """``o`` with arrays and numpy scalars as plain values and NaN/inf as None (``null``),
    so every file is strictly valid JSON (Node's ``JSON.parse`` reads it)."""
    if isinstance(o, dict):
        return {k: strict_json(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [strict_json(v) for v in o]
    if isinstance(o, float):
        return o if math.isfinite(o) else None
    if hasattr(o, "tolist") or hasattr(o, "item"):
        return strict_json(_json_default(o))
    return o


def _json_default(o: Any) -> Any:
    if hasattr(o, "tolist"):
        return o.tolist()
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
