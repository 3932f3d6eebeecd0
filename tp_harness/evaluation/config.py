"""One frozen, validated config for a run, filled from a YAML suite and from CLI flags.

:class:`Config` is a pydantic v2 model: every value is type-checked (booleans only from
real booleans, integers never from strings or floats, numbers never from strings),
unknown keys are errors, and a wrong value is a :class:`ConfigError` of one line per
problem naming the key (and, for a suite, the file and line). The field metadata
(group, flag, help) is the one schema the CLI builds its ``evaluate`` flags from, and
the choices come from the registries (kernels, probes, normalisations, temperature scales).

A suite is a YAML mapping whose keys are :class:`Config` field names; ``include:``
names another suite (relative to the including file) whose keys are read first.
CLI flags override suite values.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
    model_validator,
)

from ..core.kernels import NORMALIZATIONS, TEMPERATURE_SCALES, kernel_names
from ..core.probes import probe_names


def _suites_dir() -> Path:
    """The shipped suites: package data ``tp_harness/tasks`` in an installed wheel, else the
    checkout's top-level ``tasks/`` (the same files: pyproject maps one onto the other)."""
    from importlib.resources import files

    folder = files("tp_harness") / "tasks"  # a data folder of the regular package
    if folder.is_dir() and any(p.name.endswith(".yaml") for p in folder.iterdir()):
        return Path(str(folder))
    return Path(__file__).resolve().parents[2] / "tasks"


SUITES_DIR = _suites_dir()
DEFAULT_SUITE = "default"
DTYPES = ("float32", "bfloat16", "float16", "auto")
MISSING_LABELS = ("error", "drop")

#: Field groups, in the order ``tp-harness evaluate --help`` shows them.
GROUPS = ("data", "models", "priors", "closed form", "tasks", "probes", "outputs", "runtime")


class ConfigError(ValueError):
    """A config value of the wrong type or out of range; one line per problem."""

    def __init__(self, message: str, validation: ValidationError | None = None) -> None:
        super().__init__(message)
        self.validation = validation


# ----------------------------------------------------------------------------- value types


def _number(v: Any) -> Any:
    """Numbers only: no strings ("0.1") and no booleans (``true`` is not 1.0)."""
    if isinstance(v, (bool, str, bytes)):
        raise ValueError(f"expected a number, got {type(v).__name__} {v!r}")
    return v


def _listed(v: Any) -> Any:
    """A scalar where a list is wanted becomes a one-item list; strings stay whole."""
    if v is None or isinstance(v, (list, tuple)):
        return v
    if isinstance(v, Mapping) or isinstance(v, (set, frozenset)):
        raise ValueError(f"expected a list, got {type(v).__name__}")
    return [v]


Number = Annotated[float, BeforeValidator(_number), Field(allow_inf_nan=False)]
Count = Annotated[StrictInt, Field(ge=1)]
Strs = Annotated[tuple[StrictStr, ...], BeforeValidator(_listed)]
Numbers = Annotated[tuple[Number, ...], BeforeValidator(_listed)]
Ints = Annotated[tuple[StrictInt, ...], BeforeValidator(_listed)]

#: Allowed values of the choice fields, from the registries (the CLI uses the same).
CHOICES: dict[str, Callable[[], list[str]]] = {
    "model_kernel": lambda: list(kernel_names()),
    "prior_kernel": lambda: list(kernel_names()),
    "probes": lambda: list(probe_names()),
    "normalize": lambda: [n or "none" for n in NORMALIZATIONS],
    "temperature_scale": lambda: list(TEMPERATURE_SCALES),
    "dtype": lambda: list(DTYPES),
    "missing_labels": lambda: list(MISSING_LABELS),
}


def _f(default: Any, group: str, help: str, **cli: Any) -> Any:
    """A field with its CLI metadata: ``flag`` (default ``--key-name``), ``action``
    (``append`` for repeatable flags, ``nargs`` for one flag with several values,
    ``store_true``), ``metavar``; ``cli=False`` hides it from the command line."""
    return Field(default=default, description=help, json_schema_extra={"group": group, **cli})


class Config(BaseModel):
    """Everything a run needs. Model and prior entries are spec strings (see README)."""

    model_config = ConfigDict(frozen=True, extra="forbid", validate_default=True)

    # data
    dataset: StrictStr = _f(
        "bundled:drug_reviews", "data", "dataset: bundled:NAME, a Hub id or a local file/folder"
    )
    dataset_config: StrictStr | None = _f(None, "data", "dataset configuration (subset) name")
    split: StrictStr | None = _f(None, "data", "dataset split (default: the first)")
    text_column: StrictStr | None = _f(None, "data", "text column (default: guessed)")
    image_column: StrictStr | None = _f(None, "data", "image column (default: guessed)")
    label_column: StrictStr | None = _f(None, "data", "label column (default: guessed)")
    num_examples: Annotated[StrictInt, Field(ge=2)] | None = _f(
        None, "data", "use a seeded random subset of this many examples (default: all)"
    )
    missing_labels: Literal["error", "drop"] = _f(
        "error",
        "data",
        "examples without a label: 'error' (refuse) or 'drop' them (the count is reported)",
    )
    # models
    models: Strs = _f(
        (),
        "models",
        "model spec: bundled:NAME, a Hub id, a local folder or tfidf-lsa:dim=K (repeatable)",
        flag="--model",
        action="append",
        metavar="SPEC",
    )
    batch_size: Count = _f(32, "models", "embedding batch size")
    max_length: Count = _f(256, "models", "token limit per text")
    dtype: Literal["float32", "bfloat16", "float16", "auto"] = _f(
        "float32",
        "models",
        "weights and activations dtype for embedding (auto: the checkpoint's own; the "
        "default float32 is exact, docs/conventions.md)",
    )
    trust_remote_code: StrictBool = _f(
        False, "models", "run code shipped with a model folder (only for code you trust)"
    )
    # priors
    priors: Strs = _f(
        (),
        "priors",
        "prior: a model spec, 'labels' or 'self' (repeatable)",
        flag="--prior",
        action="append",
        metavar="SPEC",
    )
    prior_weights: Numbers | None = _f(
        None, "priors", "one weight per --prior: score against their weighted sum", action="nargs"
    )
    prior_kernel: StrictStr = _f("centered_cosine", "priors", "kernel of the prior features")
    # closed form
    temperatures: Numbers = _f(
        (0.1,),
        "closed form",
        "temperature T of s(K/T) (repeatable)",
        flag="--temperature",
        action="append",
        metavar="T",
    )
    temperature_scale: StrictStr = _f(
        "absolute",
        "closed form",
        "read T as given (absolute) or relative to the RMS of the prior kernel's entries",
    )
    model_kernel: StrictStr = _f("centered_cosine", "closed form", "kernel of the model features")
    normalize: StrictStr | None = _f(
        None, "closed form", "kernel normalisation ('none' or 'frobenius')"
    )
    block_size: Count | None = _f(None, "closed form", "moment tile edge (default: by device)")
    # tasks
    num_tasks: Count = _f(256, "tasks", "tasks sampled per prior, temperature and class count")
    num_classes: Ints = _f(
        (2,),
        "tasks",
        "classes per sampled task (repeatable)",
        flag="--num-classes",
        action="append",
    )
    task_temperature: Annotated[Number, Field(gt=0)] | None = _f(
        None, "tasks", "sample tasks at this T instead of each closed-form T"
    )
    gibbs_sweeps: Annotated[StrictInt, Field(ge=0)] = _f(
        0, "tasks", "exact Gibbs sweeps after the prefix sampler"
    )
    min_class_fraction: Annotated[Number, Field(ge=0, lt=1)] = _f(
        0.0, "tasks", "redraw sampled tasks whose smallest class is below this fraction"
    )
    # probes
    probes: Strs = _f(
        ("ridge",),
        "probes",
        "probe fitted on every sampled task (repeatable)",
        flag="--probe",
        action="append",
    )
    probe_alpha: Annotated[Number, Field(gt=0)] = _f(1.0, "probes", "ridge/logistic L2 strength")
    knn_k: Count = _f(20, "probes", "neighbours of the k-NN probe")
    test_fraction: Annotated[Number, Field(gt=0, lt=1)] = _f(
        0.25, "probes", "held-out fraction of the one shared train/test split"
    )
    bootstrap: Annotated[StrictInt, Field(ge=0)] = _f(
        1000, "probes", "bootstrap resamples for correlation intervals"
    )
    seed: Annotated[StrictInt, Field(ge=0)] = _f(0, "runtime", "seed of subsets, tasks and splits")
    # outputs
    name: StrictStr = _f("run", "outputs", "run name shown in cards and the leaderboard")
    description: StrictStr = _f("", "outputs", "one-paragraph description for the cards")
    output_dir: StrictStr = _f("outputs/default", "outputs", "run folder to write")
    overwrite: StrictBool = _f(
        False,
        "outputs",
        "allow writing into a non-empty folder tp-harness does not own "
        "(its files are never deleted)",
    )
    push_to_hub: StrictStr | None = _f(
        None,
        "outputs",
        "push scores (and ORG/NAME-tasks) to this Hub dataset repo",
        metavar="ORG/NAME",
    )
    # runtime
    cache_dir: StrictStr | None = _f(
        None, "runtime", "embedding cache folder (default: $HF_HOME/tp_harness/embeddings)"
    )
    shard_size: Count | None = _f(
        None, "runtime", "rows per cache shard (default: ~1/8 of the rows, at most 1024)"
    )
    device: StrictStr | None = _f(None, "runtime", "cpu, cuda or cuda:N (default: cuda if any)")
    hub_timeout: Annotated[Number, Field(gt=0)] | None = _f(
        None,
        "runtime",
        "seconds to wait for the Hub endpoint before a clear error "
        "($TP_HARNESS_HUB_TIMEOUT, else 10)",
    )
    dist_timeout: Annotated[Number, Field(gt=0)] = _f(
        1800.0, "runtime", "process-group timeout in seconds under accelerate launch"
    )
    extra: dict[str, Any] = _f({}, "runtime", "free-form notes kept in results.json", cli=False)

    # ------------------------------------------------------------------ construction

    def __init__(self, **values: Any) -> None:
        try:
            super().__init__(**values)
        except ValidationError as err:
            raise ConfigError(format_errors(err), err) from None

    @field_validator("model_kernel", "prior_kernel", "temperature_scale")
    @classmethod
    def _known(cls, v: str, info: Any) -> str:
        allowed = CHOICES[info.field_name]()
        if v not in allowed:
            raise ValueError(f"{v!r} is not one of {', '.join(allowed)}")
        return v

    @field_validator("normalize", mode="before")
    @classmethod
    def _normalize(cls, v: Any) -> Any:
        if v == "none":  # the CLI's and YAML's spelling of "not normalised"
            return None
        if v is not None and v not in NORMALIZATIONS:
            raise ValueError(f"{v!r} is not one of {', '.join(CHOICES['normalize']())}")
        return v

    @field_validator("probes")
    @classmethod
    def _probes(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        unknown = [p for p in v if p not in probe_names()]
        if unknown or not v:
            raise ValueError(f"must be among {', '.join(probe_names())}; got {list(v)}")
        return v

    @field_validator("temperatures")
    @classmethod
    def _temperatures(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if not v or not all(math.isfinite(t) and t > 0 for t in v):
            raise ValueError(f"every temperature must be a number > 0; got {list(v)}")
        return tuple(float(t) for t in v)

    @field_validator("num_classes")
    @classmethod
    def _num_classes(cls, v: tuple[int, ...]) -> tuple[int, ...]:
        if not v or not all(q >= 2 for q in v):
            raise ValueError(f"every class count must be an integer >= 2; got {list(v)}")
        return v

    @field_validator("prior_weights")
    @classmethod
    def _weights(cls, v: tuple[float, ...] | None) -> tuple[float, ...] | None:
        if v is not None and not all(w >= 0 for w in v):
            raise ValueError(f"weights must be >= 0; got {list(v)}")
        return None if v is None else tuple(float(w) for w in v)

    @model_validator(mode="after")
    def _consistent(self) -> Config:
        if self.prior_weights is not None and len(self.prior_weights) != len(self.priors):
            raise ValueError(
                f"prior_weights has {len(self.prior_weights)} values for {len(self.priors)} "
                "priors; pass one weight per --prior."
            )
        return self

    # ------------------------------------------------------------------ API

    def replace(self, **changes: Any) -> Config:
        """A copy with ``changes`` applied (validated again)."""
        return type(self)(**{**self.model_dump(), **changes})

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict (tuples become lists)."""
        return _plain(self.model_dump())


def _plain(v: Any) -> Any:
    if isinstance(v, (tuple, list)):
        return [_plain(x) for x in v]
    if isinstance(v, Mapping):
        return {k: _plain(x) for k, x in v.items()}
    return v


def field_names() -> list[str]:
    """Every config key, in schema order."""
    return list(Config.model_fields)


def cli_fields() -> list[tuple[str, Any]]:
    """``(key, FieldInfo)`` of every field the command line sets, in schema order."""
    out = []
    for key, info in Config.model_fields.items():
        extra = info.json_schema_extra
        if isinstance(extra, dict) and extra.get("cli", True) is not False:
            out.append((key, info))
    return out


def flag_of(key: str) -> str:
    """The CLI flag of config key ``key`` (``num_tasks`` -> ``--num-tasks``)."""
    extra = Config.model_fields[key].json_schema_extra
    flag = extra.get("flag") if isinstance(extra, dict) else None
    return str(flag) if flag else "--" + key.replace("_", "-")


# ----------------------------------------------------------------------------- errors


_MESSAGES = {
    "int_type": "must be an integer",
    "int_from_float": "must be an integer",
    "bool_type": "must be true or false (a YAML boolean, not a quoted string)",
    "float_type": "must be a number",
    "string_type": "must be a string",
    "finite_number": "must be a finite number",
    "tuple_type": "must be a list",
    "missing": "is required",
    "frozen_instance": "the config is frozen; use config.replace(...)",
}
_BOUNDS = {
    "greater_than": ">",
    "greater_than_equal": ">=",
    "less_than": "<",
    "less_than_equal": "<=",
}
_BOUND_KEY = {
    "greater_than": "gt",
    "greater_than_equal": "ge",
    "less_than": "lt",
    "less_than_equal": "le",
}


def format_errors(err: ValidationError, where: Callable[[str], str] | None = None) -> str:
    """One line per problem: ``WHERE: key: message; got VALUE``.

    ``where(key)`` names the origin of a key (``suite.yaml:12`` or ``--num-tasks``).
    """
    lines = []
    for e in err.errors(include_url=False):
        key = str(e["loc"][0]) if e["loc"] else ""
        kind = str(e["type"])
        msg = _MESSAGES.get(kind, str(e["msg"]).removeprefix("Value error, "))
        ctx = e.get("ctx") or {}
        if kind in _BOUNDS:
            msg = f"must be {_BOUNDS[kind]} {ctx.get(_BOUND_KEY[kind])}"
        if kind == "extra_forbidden":
            close = difflib.get_close_matches(key, field_names(), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            msg = f"unknown key{hint}; known keys: {', '.join(field_names())}"
        elif kind == "literal_error" and key in CHOICES:
            msg = f"must be one of {', '.join(CHOICES[key]())}"
        got = "" if kind == "extra_forbidden" or "got" in msg else f"; got {e['input']!r}"
        sub = "".join(f"[{i}]" for i in e["loc"][1:] if isinstance(i, int))
        head = f"{where(key)}: " if where and key else ""
        lines.append(f"{head}{key}{sub}: {msg}{got}" if key else msg)
    return "\n".join(lines)


# ----------------------------------------------------------------------------- suites


def resolve_suite_path(suite: str) -> Path:
    """A suite name (``default``) or a path to a YAML file."""
    p = Path(suite)
    if p.suffix in (".yaml", ".yml"):
        if p.exists():
            return p
        raise ConfigError(f"suite file {suite!r} does not exist.")
    cand = SUITES_DIR / f"{suite}.yaml"
    if cand.exists():
        return cand
    raise ConfigError(f"suite {suite!r} not found: pass a YAML path or one of {suite_names()}.")


def suite_names() -> list[str]:
    """Names of the suites that ship with tp-harness."""
    return sorted(x.stem for x in SUITES_DIR.glob("*.yaml")) if SUITES_DIR.exists() else []


def _yaml_mapping(path: Path) -> tuple[dict[str, Any], dict[str, int]]:
    """The top-level mapping of a YAML file and the line of each of its keys."""
    import yaml

    text = path.read_text(encoding="utf-8")
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.MarkedYAMLError as err:
        mark = err.problem_mark or err.context_mark
        at = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        raise ConfigError(f"{at}: YAML syntax error: {err.problem or err.context}.") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: YAML error: {err}.") from None
    if data is None:
        return {}, {}
    if not isinstance(data, dict) or not isinstance(node, yaml.MappingNode):
        raise ConfigError(f"{path}: a suite must be a YAML mapping of config keys.")
    lines = {str(k.value): k.start_mark.line + 1 for k, _ in node.value}
    return {str(k): v for k, v in data.items()}, lines


def _read_suite(path: Path, seen: tuple[Path, ...]) -> tuple[dict[str, Any], dict[str, str]]:
    p = path.resolve()
    if p in seen:
        raise ConfigError(f"suite include cycle: {' -> '.join(map(str, (*seen, p)))}")
    if not p.is_file():
        raise ConfigError(f"suite {p} does not exist (included from {seen[-1] if seen else '-'}).")
    data, lines = _yaml_mapping(p)
    origins = {k: f"{p}:{line}" for k, line in lines.items()}
    values: dict[str, Any] = {}
    where: dict[str, str] = {}
    if "include" in data:
        inc = data.pop("include")
        if not isinstance(inc, str):
            raise ConfigError(f"{origins['include']}: include must be a file name; got {inc!r}")
        values, where = _read_suite(p.parent / inc, (*seen, p))
    values.update(data)
    where.update({k: origins[k] for k in data})
    return values, where


def read_suite(path: str | Path) -> dict[str, Any]:
    """The suite's keys, with ``include:`` resolved (cycles are errors)."""
    return _read_suite(Path(path), ())[0]


def from_mapping(
    values: Mapping[str, Any],
    source: str = "config",
    origins: Mapping[str, str] | None = None,
) -> Config:
    """Build a :class:`Config` from plain values; errors name ``origins[key]`` (else
    ``source``) for every bad key."""
    origins = origins or {}
    try:
        return Config(**dict(values))
    except ConfigError as err:
        if err.validation is None:
            raise
        where = format_errors(err.validation, lambda k: origins.get(k, source))
        raise ConfigError(where, err.validation) from None


def load_config(suite: str | None = None, overrides: Mapping[str, Any] | None = None) -> Config:
    """Suite (default ``tasks/default.yaml``) with CLI ``overrides`` (``None`` values ignored).

    A suite must name at least one model; errors name the file and line of a suite key,
    or the flag of an override.
    """
    path = resolve_suite_path(suite or DEFAULT_SUITE)
    values, origins = _read_suite(path, ())
    given = {k: v for k, v in (overrides or {}).items() if v is not None}
    values.update(given)
    origins = {**origins, **{k: flag_of(k) if k in Config.model_fields else k for k in given}}
    config = from_mapping(values, source=str(path), origins=origins)
    if not config.models:
        at = origins.get("models", str(path))
        raise ConfigError(f"{at}: models: list at least one model spec (or pass --model SPEC).")
    return config


def describe_fields(keys: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Schema rows (key, group, flag, default, help) for docs and ``tp-harness list``."""
    rows = []
    for key, info in Config.model_fields.items():
        if keys is not None and key not in keys:
            continue
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        rows.append(
            {
                "key": key,
                "group": extra.get("group"),
                "flag": flag_of(key),
                "default": info.default,
                "help": info.description,
            }
        )
    return rows
