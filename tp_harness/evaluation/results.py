"""Results schema and IO: one versioned JSON document per run, written atomically."""

from __future__ import annotations

import json
import platform
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np

from .atomic import atomic_write_text

SCHEMA_VERSION = "1.0"
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
class Results:
    """A run's results; ``scores``, ``probes``, ``baselines``, ``correlations`` are record lists."""

    config: dict[str, Any]
    data: dict[str, Any] = field(default_factory=dict)
    models: list[dict[str, Any]] = field(default_factory=list)
    scores: list[dict[str, Any]] = field(default_factory=list)
    probes: list[dict[str, Any]] = field(default_factory=list)
    baselines: list[dict[str, Any]] = field(default_factory=list)
    correlations: list[dict[str, Any]] = field(default_factory=list)
    tasks: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)
    conventions: dict[str, Any] = field(default_factory=dict)
    environment: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str | None] = field(default_factory=package_versions)
    schema_version: str = SCHEMA_VERSION
    # In-memory only (not in results.json): what the run folder and figures are made of.
    task_arrays: dict[int, np.ndarray] = field(default_factory=dict, repr=False)
    """Sampled tasks per class count q: ``(num_tasks, n)`` int labels."""
    example_ids: np.ndarray | None = field(default=None, repr=False)
    """``(n,)`` row index of each example in the source dataset."""
    task_accuracies: dict[tuple[str, int, str], np.ndarray] = field(
        default_factory=dict, repr=False
    )
    """``(model, q, probe)`` -> ``(num_tasks,)`` held-out accuracy per task."""
    is_main: bool = field(default=True, repr=False)
    """Whether this process ran the main-process stages (tasks, probes, baselines)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": self.schema_version,
            "config": self.config,
            "data": self.data,
            "models": self.models,
            "scores": self.scores,
            "probes": self.probes,
            "baselines": self.baselines,
            "correlations": self.correlations,
            "tasks": self.tasks,
            "timings": self.timings,
            "conventions": self.conventions,
            "environment": self.environment,
            "versions": self.versions,
        }

    def save(self, output_dir: str | Path) -> Path:
        """Write ``results.json`` atomically into ``output_dir``; returns its path."""
        path = Path(output_dir) / RESULTS_FILE
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2, default=_json_default))
        return path

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Results:
        version = str(d.get("schema_version", ""))
        if version.split(".")[0] != SCHEMA_VERSION.split(".")[0]:
            raise ValueError(
                f"results schema {version!r} is not supported "
                f"(this tp-harness reads {SCHEMA_VERSION})."
            )
        keys = (
            "config",
            "data",
            "models",
            "scores",
            "probes",
            "baselines",
            "correlations",
            "tasks",
            "timings",
            "conventions",
            "environment",
            "versions",
        )
        return cls(**{k: d[k] for k in keys if k in d}, schema_version=version)

    @classmethod
    def load(cls, path: str | Path) -> Results:
        """Read a ``results.json`` (or the folder holding one)."""
        p = Path(path)
        p = p / RESULTS_FILE if p.is_dir() else p
        if not p.exists():
            raise FileNotFoundError(f"no {RESULTS_FILE} at {p}; pass a run's --output-dir.")
        return cls.from_dict(json.loads(p.read_text()))


def _json_default(o: Any) -> Any:
    if hasattr(o, "tolist"):
        return o.tolist()
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
