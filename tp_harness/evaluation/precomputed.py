"""Precomputed representations as models or priors: your own saved embeddings.

Spec strings::

    file:PATH[:key=value,...][@layerK]
    dataset:ID[:key=value,...][@layerK]

``PATH`` by suffix: ``.npy`` (``(N, d)``, or ``(L, N, d)`` for L layers), ``.safetensors``
(the only tensor, ``tensor=NAME``, or tensors named ``layer0 .. layerK``), ``.parquet`` /
``.arrow`` / ``.feather`` (a column of vectors, ``column=NAME``), or a folder written by
``Dataset.save_to_disk`` (``column=NAME``). ``dataset:ID`` reads a local or Hub dataset with
``datasets.load_dataset(ID, name=config, split=split)`` (``column=NAME``).

Options: ``column``, ``tensor``, ``id_column``, ``name`` (display name; default the
file's stem or the dataset id's last part), ``split`` (default ``train``), ``config``.

Alignment with the run's dataset: by an id column when the file has one (``id_column=``,
else a column named ``example_id`` or ``id``): the dataset's column of that name when it
has one, else the row index of each example in the source split. Without ids, by position:
a file with one row per row of the source split is indexed by the selected rows; a file
with one row per selected example is taken as is; any other length is an error. The
results record the format, how rows were aligned and a content hash (SHA-256 of the
file's bytes; for a dataset, its ``datasets`` fingerprint).
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .embed.spec import layer_name, split_spec

PREFIXES = ("file:", "dataset:")
OPTIONS = ("column", "tensor", "id_column", "name", "split", "config")
ID_COLUMNS = ("example_id", "id")
ARRAY_SUFFIXES = (".npy",)
TENSOR_SUFFIXES = (".safetensors",)
TABLE_SUFFIXES = (".parquet", ".arrow", ".feather")
_LAYER_KEY = re.compile(r"^(?:layer|layers\.|hidden_states\.)(\d+)$")


def is_precomputed_spec(spec: str) -> bool:
    """True for ``file:`` and ``dataset:`` specs."""
    return spec.startswith(PREFIXES)


@dataclass(frozen=True)
class PrecomputedSpec:
    """A parsed ``file:`` / ``dataset:`` spec."""

    source: str  # "file" or "dataset"
    location: str  # the path or the dataset id
    options: dict[str, str] = field(default_factory=dict)
    layer: int | None = None
    text: str = ""

    @property
    def base_name(self) -> str:
        if "name" in self.options:
            return self.options["name"]
        if self.source == "dataset":
            return self.location.rstrip("/").split("/")[-1]
        return Path(self.location).name.split(".")[0] or "file"

    @property
    def path(self) -> Path:
        return Path(os.path.expanduser(self.location))

    @property
    def format(self) -> str:
        if self.source == "dataset":
            return "dataset"
        suffix = self.path.suffix.lower()
        for fmt, suffixes in (
            ("npy", ARRAY_SUFFIXES),
            ("safetensors", TENSOR_SUFFIXES),
            ("table", TABLE_SUFFIXES),
        ):
            if suffix in suffixes:
                return fmt
        if self.path.is_dir():
            return "saved_dataset"
        known = ", ".join((*ARRAY_SUFFIXES, *TENSOR_SUFFIXES, *TABLE_SUFFIXES))
        raise ValueError(
            f"{self.text!r}: cannot tell the format of {self.location!r}; use a file ending in "
            f"{known}, or a folder written by Dataset.save_to_disk."
        )


def parse_precomputed_spec(spec: str) -> PrecomputedSpec:
    """Parse ``file:PATH[:k=v,...][@layerK]`` / ``dataset:ID[...]``; ``ValueError`` on
    unknown options, an empty location or a missing file."""
    base, raw, layer = split_spec(spec)
    prefix, _, location = base.partition(":")
    if not location:
        raise ValueError(f"{spec!r}: give a path after {prefix}: (e.g. file:embeddings.npy).")
    options: dict[str, str] = {}
    for key, values in raw.items():
        if key not in OPTIONS:
            raise ValueError(f"{spec!r}: unknown option {key!r}; known: {', '.join(OPTIONS)}.")
        if len(values) != 1 or not values[0]:
            raise ValueError(f"{spec!r}: option {key} takes one value; got {values}.")
        options[key] = values[0]
    out = PrecomputedSpec(prefix, location, options, layer, spec)
    if out.source == "file" and not out.path.exists():
        raise FileNotFoundError(f"{spec!r}: no such file or folder {str(out.path)!r}.")
    out.format  # noqa: B018 (raises for an unknown format)
    return out


# --------------------------------------------------------------------------- reading


def file_sha256(path: Path) -> str:
    """SHA-256 of a file, or of a folder's files (relative names and bytes, sorted)."""
    h = hashlib.sha256()
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    for p in files:
        if path.is_dir():
            h.update(p.relative_to(path).as_posix().encode() + b"\0")
        with p.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()


@dataclass
class Loaded:
    """Arrays of a precomputed file: ``final`` and/or ``layerK`` -> ``(N, d)``."""

    arrays: dict[str, np.ndarray]
    ids: np.ndarray | None
    id_column: str | None
    content_hash: str


def _layers_of(named: dict[str, np.ndarray], what: str) -> dict[str, np.ndarray]:
    """``{"final": x}`` for one array; ``layerK`` keys for a stack ``(L, N, d)`` or for
    arrays all named like layers; an error otherwise."""
    if len(named) == 1:
        (x,) = named.values()
        if x.ndim == 3:
            return {f"layer{i}": x[i] for i in range(x.shape[0])}
        return {"final": x}
    layers = {k: _LAYER_KEY.match(k) for k in named}
    if all(layers.values()):
        return {f"layer{int(m[1])}": named[k] for k, m in layers.items() if m}
    raise ValueError(
        f"{what} holds several tensors ({', '.join(sorted(named)[:8])}): pick one with "
        "tensor=NAME (or name them layer0, layer1, ... for a layer stack)."
    )


def _table_column(table: Any, spec: PrecomputedSpec, where: str) -> tuple[np.ndarray, Any]:
    """(vectors ``(N, d)``, id values or None) of an Arrow table or a Dataset's table."""
    import pyarrow as pa

    names = list(table.column_names)
    col = spec.options.get("column")
    if col is None:
        vectors = [
            n
            for n in names
            if pa.types.is_list(table.schema.field(n).type)
            or pa.types.is_large_list(table.schema.field(n).type)
            or pa.types.is_fixed_size_list(table.schema.field(n).type)
        ]
        if len(vectors) != 1:
            raise ValueError(
                f"{where}: name the column of vectors with column=NAME; list columns: "
                f"{vectors or 'none'} (all columns: {names})."
            )
        col = vectors[0]
    if col not in names:
        raise ValueError(f"{where} has no column {col!r}; columns: {names}.")
    values = table.column(col).combine_chunks()
    try:
        x = np.asarray(values.flatten().to_numpy(zero_copy_only=False))
        x = x.reshape(len(values), -1)
    except (ValueError, pa.ArrowInvalid) as err:
        raise ValueError(
            f"{where}: column {col!r} does not hold equal-length vectors: {err}"
        ) from None
    id_col = spec.options.get("id_column") or next((c for c in ID_COLUMNS if c in names), None)
    if spec.options.get("id_column") and id_col not in names:
        raise ValueError(f"{where} has no id column {id_col!r}; columns: {names}.")
    ids = None if id_col is None else np.asarray(table.column(id_col).to_pylist(), dtype=object)
    return x, (id_col, ids)


def _read_tensors(spec: PrecomputedSpec) -> dict[str, np.ndarray]:
    if spec.format == "npy":
        return _layers_of(
            {"x": np.load(spec.path, mmap_mode="r", allow_pickle=False)}, spec.location
        )
    from safetensors.numpy import load_file

    named = load_file(str(spec.path))
    if "tensor" in spec.options:
        key = spec.options["tensor"]
        if key not in named:
            raise ValueError(f"{spec.location} has no tensor {key!r}; tensors: {sorted(named)}.")
        named = {key: named[key]}
    return _layers_of(named, spec.location)


def _read_table(spec: PrecomputedSpec) -> tuple[Any, str, str]:
    """(Arrow table, where, content hash) of a table file, a saved or a Hub dataset."""
    if spec.format == "table":
        import pyarrow.feather as feather
        import pyarrow.parquet as pq

        if spec.path.suffix.lower() == ".parquet":
            table = pq.read_table(spec.path)
        else:
            table = _read_arrow(spec.path)
            if table is None:
                table = feather.read_table(spec.path)
        return table, spec.location, file_sha256(spec.path)
    import datasets

    split = spec.options.get("split", "train")
    if spec.format == "saved_dataset":
        ds = datasets.load_from_disk(str(spec.path))
        if isinstance(ds, datasets.DatasetDict):
            ds = ds[split]
        digest = file_sha256(spec.path)
    else:
        ds = datasets.load_dataset(spec.location, spec.options.get("config"), split=split)
        digest = f"datasets-fingerprint:{ds._fingerprint}"
    if ds._indices is not None:
        ds = ds.flatten_indices()
    return ds.data.table, f"{spec.location} ({spec.format})", digest


def read_precomputed(spec: PrecomputedSpec) -> Loaded:
    """Read the file or dataset of ``spec`` (no alignment yet)."""
    id_col: str | None = None
    ids = None
    if spec.format in ("npy", "safetensors"):
        arrays, digest = _read_tensors(spec), file_sha256(spec.path)
    else:
        table, where, digest = _read_table(spec)
        x, (id_col, ids) = _table_column(table, spec, where)
        arrays = {"final": x}
    for key, a in arrays.items():
        if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
            raise ValueError(
                f"{spec.text!r}: {key} has shape {tuple(a.shape)}; expected (rows, dim) with "
                "rows, dim >= 1 (or (layers, rows, dim) for a layer stack)."
            )
        if not np.issubdtype(a.dtype, np.number):
            raise ValueError(f"{spec.text!r}: {key} holds {a.dtype}, not numbers.")
    return Loaded(arrays, ids, id_col, digest)


def _read_arrow(path: Path) -> Any:
    """An Arrow IPC file or stream (as ``datasets`` writes), else None."""
    import pyarrow as pa

    for opener in (pa.ipc.open_file, pa.ipc.open_stream):
        try:
            with pa.memory_map(str(path)) as source:
                return opener(source).read_all()
        except (pa.ArrowInvalid, OSError):
            continue
    return None


# --------------------------------------------------------------------------- alignment


def _dataset_ids(data: Any, id_column: str) -> np.ndarray:
    """The ids the file's id column is matched against (see the module docstring)."""
    if id_column in data.dataset.column_names:
        return np.asarray(data.dataset[id_column], dtype=object)
    return np.asarray(data.example_ids, dtype=object)


def alignment(spec: PrecomputedSpec, loaded: Loaded, data: Any) -> tuple[np.ndarray, str]:
    """(row of the file for each selected example ``(n,)``, how rows were aligned)."""
    n = len(data.example_ids)
    rows = next(iter(loaded.arrays.values())).shape[0]
    if loaded.ids is not None and loaded.id_column is not None:
        if len(loaded.ids) != rows:
            raise ValueError(f"{spec.text!r}: {len(loaded.ids)} ids for {rows} rows.")
        where = {str(v): i for i, v in enumerate(loaded.ids)}
        if len(where) != rows:
            raise ValueError(f"{spec.text!r}: id column {loaded.id_column!r} has duplicates.")
        wanted = [str(v) for v in _dataset_ids(data, loaded.id_column)]
        missing = [v for v in wanted if v not in where]
        if missing:
            raise ValueError(
                f"{spec.text!r}: {len(missing)} of the {n} selected examples have no row in "
                f"{spec.location} by id column {loaded.id_column!r} (e.g. {missing[:3]}); the "
                "ids are the dataset's column of that name, else each example's row index in "
                "the source split."
            )
        return np.asarray([where[v] for v in wanted], dtype=np.int64), (
            f"id column {loaded.id_column!r}"
        )
    total = int(data.source.get("selection", {}).get("num_rows_total", n))
    if rows == total:
        return np.asarray(data.example_ids, dtype=np.int64), "position (one row per split row)"
    if rows == n:
        return np.arange(n), "position (one row per selected example)"
    raise ValueError(
        f"{spec.text!r} has {rows} rows, but the dataset split has {total} and the run selects "
        f"{n}: give a file with one row per row of the split (or per selected example), or "
        "an id column (id_column=NAME)."
    )


def load_precomputed(
    spec_text: str, data: Any
) -> tuple[dict[str, np.ndarray], dict[str, Any], str]:
    """``({display name: (n, d) float32}, info record, the entry's name)`` for a spec."""
    spec = parse_precomputed_spec(spec_text)
    loaded = read_precomputed(spec)
    rows, aligned = alignment(spec, loaded, data)
    arrays = loaded.arrays
    if spec.layer is not None:
        key = f"layer{spec.layer}"
        if key not in arrays:
            raise ValueError(
                f"{spec_text!r}: no layer {spec.layer}; the file holds {', '.join(sorted(arrays))}."
            )
        arrays = {key: arrays[key]}
    out: dict[str, np.ndarray] = {}
    for key, a in arrays.items():
        name = spec.base_name if key == "final" else layer_name(spec.base_name, int(key[5:]))
        x = np.ascontiguousarray(np.asarray(a)[rows], dtype=np.float32)
        bad = ~np.isfinite(x).all(axis=1)
        if bad.any():
            raise ValueError(
                f"{spec_text!r}: {int(bad.sum())} of the selected rows hold NaN or inf "
                f"({key}); fix the file or leave those examples out."
            )
        out[name] = x
    entry_name = list(out)[-1] if spec.layer is None else next(iter(out))
    info = {
        "name": entry_name,
        "spec": spec_text,
        "model_id": spec.location,
        "revision": "n/a",
        "kind": "precomputed",
        "format": spec.format,
        "content_sha256": loaded.content_hash,
        "aligned_by": aligned,
        "pooling": "n/a",
        "dim": int(next(iter(out.values())).shape[1]),
        "outputs": list(out),
    }
    return out, info, entry_name
