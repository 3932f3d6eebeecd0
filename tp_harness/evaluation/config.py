"""One frozen config for a run, filled from a YAML suite and from CLI flags.

A suite is a YAML mapping whose keys are :class:`Config` field names; ``include:``
names another suite (relative to the including file) whose keys are read first.
Unknown keys are errors. CLI flags override suite values.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from ..core.kernels import NORMALIZATIONS, TEMPERATURE_SCALES, kernel_names
from ..core.probes import probe_names

SUITES_DIR = Path(__file__).resolve().parents[2] / "tasks"
DEFAULT_SUITE = "default"


@dataclass(frozen=True)
class Config:
    """Everything a run needs. Model and prior entries are spec strings (see README)."""

    models: tuple[str, ...] = ()
    priors: tuple[str, ...] = ()
    prior_weights: tuple[float, ...] | None = None
    dataset: str = "bundled:drug_reviews"
    dataset_config: str | None = None
    split: str | None = None
    text_column: str | None = None
    image_column: str | None = None
    label_column: str | None = None
    num_examples: int | None = None
    temperatures: tuple[float, ...] = (0.1,)
    model_kernel: str = "centered_cosine"
    prior_kernel: str = "centered_cosine"
    normalize: str | None = None
    temperature_scale: str = "absolute"
    num_tasks: int = 256
    num_classes: tuple[int, ...] = (2,)
    task_temperature: float | None = None
    gibbs_sweeps: int = 0
    min_class_fraction: float = 0.0
    probes: tuple[str, ...] = ("ridge",)
    probe_alpha: float = 1.0
    knn_k: int = 20
    test_fraction: float = 0.25
    bootstrap: int = 1000
    seed: int = 0
    output_dir: str = "outputs/default"
    cache_dir: str | None = None
    device: str | None = None
    block_size: int | None = None
    batch_size: int = 32
    max_length: int = 256
    dtype: str = "float32"
    trust_remote_code: bool = False
    push_to_hub: str | None = None
    name: str = "run"
    description: str = ""
    extra: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        validate(self)

    def replace(self, **changes: Any) -> Config:
        """A copy with ``changes`` applied (validated again)."""
        return dataclasses.replace(self, **_coerce(changes))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        return {f.name: _plain(getattr(self, f.name)) for f in fields(self)}


_TUPLE_FIELDS = {
    "models": str,
    "priors": str,
    "prior_weights": float,
    "temperatures": float,
    "num_classes": int,
    "probes": str,
}


def _plain(v: Any) -> Any:
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    if isinstance(v, Mapping):
        return {k: _plain(x) for k, x in v.items()}
    return v


def _coerce(values: Mapping[str, Any]) -> dict[str, Any]:
    """Lists -> tuples of the field's element type; scalars where a tuple is wanted -> 1-tuples."""
    out = dict(values)
    if out.get("normalize") == "none":  # the CLI's spelling of "not normalised"
        out["normalize"] = None
    for key, typ in _TUPLE_FIELDS.items():
        if key in out and out[key] is not None:
            v = out[key]
            seq = v if isinstance(v, (list, tuple)) else [v]
            try:
                out[key] = tuple(typ(x) for x in seq)
            except (TypeError, ValueError):
                raise ValueError(f"{key} must be a list of {typ.__name__}; got {v!r}.") from None
    return out


def _check(cond: bool, msg: str) -> None:
    if not cond:
        raise ValueError(msg)


def validate(c: Config) -> None:
    """Raise ``ValueError`` naming the field for any inconsistent setting."""
    _check(
        all(isinstance(t, float) and math.isfinite(t) and t > 0 for t in c.temperatures)
        and len(c.temperatures) > 0,
        f"temperatures must be numbers > 0; got {c.temperatures}.",
    )
    _check(
        c.task_temperature is None or c.task_temperature > 0,
        f"task_temperature must be > 0; got {c.task_temperature}.",
    )
    _check(
        all(q >= 2 for q in c.num_classes) and len(c.num_classes) > 0,
        f"num_classes must be integers >= 2; got {c.num_classes}.",
    )
    _check(
        c.block_size is None or c.block_size >= 1, f"block_size must be >= 1; got {c.block_size}."
    )
    _check(c.num_tasks >= 1, f"num_tasks must be >= 1; got {c.num_tasks}.")
    _check(
        c.num_examples is None or c.num_examples >= 2,
        f"num_examples must be >= 2; got {c.num_examples}.",
    )
    _check(
        all(p in probe_names() for p in c.probes),
        f"probes must be among {probe_names()}; got {c.probes}.",
    )
    for key in ("model_kernel", "prior_kernel"):
        _check(
            getattr(c, key) in kernel_names(),
            f"{key}={getattr(c, key)!r} is not a known "
            f"kernel; choose one of {', '.join(kernel_names())}.",
        )
    _check(c.normalize in NORMALIZATIONS, f"normalize must be one of {NORMALIZATIONS}.")
    _check(
        c.temperature_scale in TEMPERATURE_SCALES,
        f"temperature_scale must be one of {TEMPERATURE_SCALES}; got {c.temperature_scale!r}.",
    )
    _check(
        c.dtype in ("float32", "bfloat16", "float16"),
        f"dtype must be float32, bfloat16 or float16; got {c.dtype!r}.",
    )
    _check(0.0 < c.test_fraction < 1.0, f"test_fraction must be in (0, 1); got {c.test_fraction}.")
    _check(
        c.prior_weights is None or len(c.prior_weights) == len(c.priors),
        f"prior_weights has {len(c.prior_weights or ())} values for {len(c.priors)} priors; "
        "pass one weight per --prior.",
    )
    _check(
        c.prior_weights is None or all(w >= 0 for w in c.prior_weights),
        f"prior_weights must be >= 0; got {c.prior_weights}.",
    )


def resolve_suite_path(suite: str) -> Path:
    """A suite name (``default``) or a path to a YAML file."""
    p = Path(suite)
    if p.suffix in (".yaml", ".yml") and p.exists():
        return p
    cand = SUITES_DIR / f"{suite}.yaml"
    if cand.exists():
        return cand
    known = sorted(x.stem for x in SUITES_DIR.glob("*.yaml")) if SUITES_DIR.exists() else []
    raise ValueError(f"suite {suite!r} not found: pass a YAML path or one of {known}.")


def read_suite(path: str | Path, _seen: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The suite's keys, with ``include:`` resolved (cycles are errors)."""
    import yaml

    p = Path(path).resolve()
    if p in _seen:
        raise ValueError(f"suite include cycle: {' -> '.join(map(str, (*_seen, p)))}")
    data = yaml.safe_load(p.read_text()) or {}
    if not isinstance(data, dict):
        raise ValueError(f"suite {p} must be a YAML mapping of config keys.")
    base: dict[str, Any] = {}
    if "include" in data:
        base = read_suite(p.parent / str(data.pop("include")), (*_seen, p))
    base.update(data)
    return base


def from_mapping(values: Mapping[str, Any], source: str = "config") -> Config:
    """Build a :class:`Config`, refusing unknown keys with the list of known ones."""
    known = {f.name for f in fields(Config)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"{source}: unknown key(s) {unknown}; known keys: {sorted(known)}.")
    return Config(**_coerce(values))


def load_config(suite: str | None = None, overrides: Mapping[str, Any] | None = None) -> Config:
    """Suite (default ``tasks/default.yaml``) with CLI ``overrides`` (``None`` values ignored)."""
    path = resolve_suite_path(suite or DEFAULT_SUITE)
    values = read_suite(path)
    values.update({k: v for k, v in (overrides or {}).items() if v is not None})
    return from_mapping(values, source=str(path))
