"""On-disk embedding cache: safetensors shards of fixed row ranges + JSON metadata.

Layout: ``<cache_dir>/<key>/meta.json`` and ``shard-00000.safetensors`` ... where
``key`` hashes the canonical JSON of the key fields (model id, resolved revision,
dataset fingerprint, split, selection, pooling, layers, dtype, max length). Shard
``s`` holds rows ``[s*shard_size, (s+1)*shard_size)`` of the selection whatever the
number of processes, so an interrupted run resumes from finished shards and ranks
can compute disjoint subsets of :meth:`EmbeddingCache.missing_shards`. Every file is
written to a temporary file in the same folder and moved into place with
``os.replace``: readers never see a partial file.

Distributed use::

    key = embedding_key_fields(resolved, data)
    todo = cache.missing_shards(key, n)
    embed_cached(resolved, data, cache=cache, shards=todo[rank::world], load=False)
    barrier()
    arrays = embed_cached(resolved, data, cache=cache, shards=[])  # load only
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..atomic import atomic_write

if TYPE_CHECKING:
    import torch

    from ..data import DataBundle
    from .loading import LoadedModel, ResolvedModel
    from .spec import ModelSpec

CACHE_FORMAT = 1
DEFAULT_SHARD_SIZE = 1024
ComputeFn = Callable[[np.ndarray], Mapping[str, np.ndarray]]


def default_cache_dir() -> Path:
    """``$HF_HOME/tp_harness/embeddings`` (``$TP_HARNESS_CACHE/embeddings`` if set)."""
    from .loading import model_cache_root

    return model_cache_root() / "embeddings"


def canonical_json(fields: Mapping[str, Any]) -> str:
    """Sorted, compact JSON of the key fields (non-JSON values via ``str``)."""
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), default=str)


def cache_key(fields: Mapping[str, Any]) -> str:
    """32-hex-digit SHA-256 of :func:`canonical_json`."""
    return hashlib.sha256(canonical_json(fields).encode()).hexdigest()[:32]


class EmbeddingCache:
    """Sharded store of ``{name: (n_rows, dim) float32}`` arrays per key."""

    def __init__(
        self,
        cache_dir: str | os.PathLike[str] | None = None,
        *,
        shard_size: int = DEFAULT_SHARD_SIZE,
    ) -> None:
        if shard_size < 1:
            raise ValueError(f"shard_size must be positive; got {shard_size}.")
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.shard_size = int(shard_size)

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.cache_dir)!r}, shard_size={self.shard_size})"

    # -- layout
    def entry_dir(self, fields: Mapping[str, Any]) -> Path:
        """Folder of one cache entry."""
        return self.cache_dir / cache_key(fields)

    def _read_meta(self, fields: Mapping[str, Any]) -> dict[str, Any] | None:
        path = self.entry_dir(fields) / "meta.json"
        return json.loads(path.read_text()) if path.is_file() else None

    def _shard_size(self, fields: Mapping[str, Any], n_rows: int) -> int:
        meta = self._read_meta(fields)
        if meta is None:
            return self.shard_size
        if int(meta["n_rows"]) != n_rows:
            raise ValueError(
                f"cache entry {self.entry_dir(fields)} holds {meta['n_rows']} rows, "
                f"not {n_rows}; the key fields do not pin the selection."
            )
        return int(meta["shard_size"])

    def num_shards(self, fields: Mapping[str, Any], n_rows: int) -> int:
        """Number of shards covering ``n_rows`` rows."""
        size = self._shard_size(fields, n_rows)
        return (n_rows + size - 1) // size

    def shard_rows(self, fields: Mapping[str, Any], n_rows: int, shard: int) -> np.ndarray:
        """Row positions ``(m,)`` int64 held by ``shard``."""
        size = self._shard_size(fields, n_rows)
        return np.arange(shard * size, min((shard + 1) * size, n_rows), dtype=np.int64)

    def shard_path(self, fields: Mapping[str, Any], shard: int) -> Path:
        """File of one shard."""
        return self.entry_dir(fields) / f"shard-{shard:05d}.safetensors"

    # -- state
    def missing_shards(self, fields: Mapping[str, Any], n_rows: int) -> list[int]:
        """Shards not yet on disk, ascending."""
        return [
            s
            for s in range(self.num_shards(fields, n_rows))
            if not self.shard_path(fields, s).is_file()
        ]

    def is_complete(self, fields: Mapping[str, Any], n_rows: int) -> bool:
        """Whether every shard is on disk."""
        return not self.missing_shards(fields, n_rows)

    # -- IO
    def _write_meta(self, fields: Mapping[str, Any], n_rows: int) -> None:
        path = self.entry_dir(fields) / "meta.json"
        if path.is_file():
            return
        meta = {
            "format": CACHE_FORMAT,
            "key": cache_key(fields),
            "n_rows": n_rows,
            "shard_size": self._shard_size(fields, n_rows),
            "key_fields": json.loads(canonical_json(fields)),
        }
        atomic_write(path, lambda tmp: tmp.write_text(json.dumps(meta, indent=2)))

    def write_shard(
        self, fields: Mapping[str, Any], n_rows: int, shard: int, arrays: Mapping[str, np.ndarray]
    ) -> Path:
        """Store ``{name: (rows_in_shard, dim)}`` for ``shard`` atomically; returns its path."""
        from safetensors.numpy import save_file

        rows = len(self.shard_rows(fields, n_rows, shard))
        if rows == 0:
            raise IndexError(f"shard {shard} is out of range for {n_rows} rows.")
        tensors = {}
        for name, value in arrays.items():
            arr = np.ascontiguousarray(value, dtype=np.float32)
            if arr.ndim != 2 or arr.shape[0] != rows:
                raise ValueError(
                    f"shard {shard} array {name!r} has shape {arr.shape}; expected ({rows}, dim)."
                )
            tensors[name] = arr
        if not tensors:
            raise ValueError(f"shard {shard}: no arrays to write.")
        self._write_meta(fields, n_rows)
        path = self.shard_path(fields, shard)
        meta = {"shard": str(shard), "rows": str(rows), "key": cache_key(fields)}
        atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))
        return path

    def load(self, fields: Mapping[str, Any], n_rows: int) -> dict[str, np.ndarray]:
        """All shards concatenated: ``{name: (n_rows, dim) float32}``."""
        from safetensors.numpy import load_file

        missing = self.missing_shards(fields, n_rows)
        if missing:
            raise FileNotFoundError(
                f"cache entry {self.entry_dir(fields)} lacks shards "
                f"{missing[:10]}{'...' if len(missing) > 10 else ''}."
            )
        parts = [
            load_file(str(self.shard_path(fields, s)))
            for s in range(self.num_shards(fields, n_rows))
        ]
        if not parts:
            return {}
        names = list(parts[0])
        for s, part in enumerate(parts):
            if sorted(part) != sorted(names):
                raise ValueError(f"shard {s} holds {sorted(part)}, shard 0 holds {sorted(names)}.")
        return {name: np.concatenate([p[name] for p in parts], axis=0) for name in names}

    def compute_missing(
        self,
        fields: Mapping[str, Any],
        n_rows: int,
        compute_fn: ComputeFn,
        *,
        shards: Iterable[int] | None = None,
        progress: bool = False,
    ) -> list[int]:
        """Compute and write the missing shards (only those in ``shards`` if given).

        ``compute_fn(rows)`` gets row positions ``(m,)`` and returns
        ``{name: (m, dim)}``. Returns the shards computed.
        """
        from tqdm.auto import tqdm

        todo = self.missing_shards(fields, n_rows)
        if shards is not None:
            wanted = set(shards)
            todo = [s for s in todo if s in wanted]
        for shard in tqdm(todo, desc="shards", disable=not progress, leave=False):
            rows = self.shard_rows(fields, n_rows, shard)
            self.write_shard(fields, n_rows, shard, compute_fn(rows))
        return todo

    def get_or_compute(
        self,
        fields: Mapping[str, Any],
        n_rows: int,
        compute_fn: ComputeFn,
        *,
        progress: bool = False,
    ) -> dict[str, np.ndarray]:
        """Load the entry, computing only the shards that are missing first."""
        self.compute_missing(fields, n_rows, compute_fn, progress=progress)
        return self.load(fields, n_rows)


# ----------------------------------------------------------------------------- embeddings


def embedding_key_fields(resolved: ResolvedModel, data: DataBundle) -> dict[str, Any]:
    """Cache key fields for embedding ``data`` with ``resolved`` (batch size excluded)."""
    spec = resolved.spec
    return {
        "format": CACHE_FORMAT,
        "model_id": spec.model_id,
        "revision": resolved.revision,
        "model_fingerprint": resolved.fingerprint,
        "gguf_file": spec.gguf_file,
        "kind": resolved.kind,
        "pooling": resolved.pooling,
        "normalize": resolved.normalize,
        "layers": list(resolved.layers),
        "dtype": spec.dtype,
        "max_length": spec.max_length,
        "dataset": data.fingerprint,
        "split": data.source.get("split"),
        "selection": data.source.get("selection"),
        "column": data.image_column if resolved.kind == "image" else data.text_column,
        "n_rows": len(data.dataset),
    }


def embed_cached(
    model: ModelSpec | ResolvedModel | LoadedModel,
    data: DataBundle,
    *,
    cache: EmbeddingCache | None,
    device: str | torch.device | None = None,
    shards: Iterable[int] | None = None,
    load: bool = True,
    progress: bool = False,
) -> dict[str, np.ndarray] | None:
    """Like :func:`~tp_harness.embed.embed` for all rows, through ``cache``.

    Computes the missing shards (only those in ``shards`` if given; the model is
    loaded only if one is missing), then with ``load=True`` returns
    ``{name: (n, dim) float32}`` for the whole dataset; with ``load=False`` None.
    """
    from .encode import embed, embed_rows
    from .loading import LoadedModel, ResolvedModel, resolve_model

    if cache is None:
        return embed(model, data, device=device, progress=progress) if load else None
    if isinstance(model, LoadedModel):
        resolved = model.resolved
    else:
        resolved = model if isinstance(model, ResolvedModel) else resolve_model(model)
    fields, n = embedding_key_fields(resolved, data), len(data.dataset)
    loaded: list[LoadedModel] = [model] if isinstance(model, LoadedModel) else []

    def compute(rows: np.ndarray) -> dict[str, np.ndarray]:
        if not loaded:
            loaded.append(resolved.load(device))
        return embed_rows(loaded[0], data, rows, progress=progress, canonical=True)

    cache.compute_missing(fields, n, compute, shards=shards, progress=progress)
    if not load:
        return None
    return {resolved.names.get(k, k): v for k, v in cache.load(fields, n).items()}
