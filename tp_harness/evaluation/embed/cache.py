"""On-disk embedding cache: safetensors shards of fixed row ranges + JSON metadata.

Layout: ``<cache_dir>/<key>/meta.json`` and ``shard-00000.safetensors`` ... where
``key`` hashes the canonical JSON of the key fields (model id, resolved revision,
dataset fingerprint, split, selection, pooling, layers, dtype, max length). Shard
``s`` holds rows ``[s*shard_size, (s+1)*shard_size)`` of the selection whatever the
number of processes, so an interrupted run resumes from finished shards and ranks
can compute disjoint subsets of :meth:`EmbeddingCache.missing_shards`. The shard size
adapts to the entry (:func:`adaptive_shard_size`: about an eighth of the rows, at most
1024), so a kill loses at most ~1/8 of the work. Every file is written to a temporary
file in the same folder, fsynced and moved into place with ``os.replace``: readers never
see a partial file.

Integrity: each shard's header records the SHA-256 of its tensors, its shard index, row
count and entry key; every shard is verified when it is read. A corrupt or truncated
shard, or an unreadable ``meta.json``, is reported with its path
(:class:`CorruptCacheWarning`), removed and recomputed, never used.

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
import math
import os
import struct
import warnings
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
RESUME_FRACTION = 8
ComputeFn = Callable[[np.ndarray], Mapping[str, np.ndarray]]


class CorruptCacheWarning(UserWarning):
    """A cache file failed its check; it is removed and recomputed."""


def adaptive_shard_size(n_rows: int, cap: int = DEFAULT_SHARD_SIZE) -> int:
    """Rows per shard: ``ceil(n / 8)``, at most ``cap`` (a kill resumes within ~1/8)."""
    return max(1, min(cap, math.ceil(n_rows / RESUME_FRACTION)))


def tensors_digest(arrays: Mapping[str, np.ndarray]) -> str:
    """SHA-256 over the sorted names, dtypes, shapes and bytes of ``arrays``."""
    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


_DTYPES = {"F32": np.float32, "F64": np.float64, "F16": np.float16}


def read_shard(path: Path) -> tuple[dict[str, str], dict[str, np.ndarray]]:
    """``(header metadata, arrays)`` of a safetensors shard, checked against the SHA-256 its
    header records; raises ``ValueError`` saying what is wrong (one read of the file)."""
    data = path.read_bytes()
    if len(data) < 8:
        raise ValueError(f"{len(data)} bytes, shorter than a safetensors header")
    (hlen,) = struct.unpack("<Q", data[:8])
    if 8 + hlen > len(data):
        raise ValueError("truncated inside its header")
    try:
        header = json.loads(data[8 : 8 + hlen])
    except ValueError as err:
        raise ValueError(f"unreadable header ({err})") from None
    meta = header.pop("__metadata__", None) or {}
    body = memoryview(data)[8 + hlen :]
    arrays = {}
    for name, t in header.items():
        begin, end = t["data_offsets"]
        if end > len(body):
            raise ValueError(f"truncated: tensor {name!r} needs {end} bytes, {len(body)} present")
        dtype = _DTYPES.get(t["dtype"])
        if dtype is None:
            raise ValueError(f"tensor {name!r} has dtype {t['dtype']}")
        arrays[name] = np.frombuffer(body[begin:end], dtype=dtype).reshape(t["shape"])
    if "sha256" not in meta:
        raise ValueError("no checksum in its header (written by an older tp-harness)")
    if tensors_digest(arrays) != meta["sha256"]:
        raise ValueError("checksum mismatch: its bytes changed after it was written")
    return meta, arrays


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
        shard_size: int | None = None,
    ) -> None:
        if shard_size is not None and shard_size < 1:
            raise ValueError(f"shard_size must be positive; got {shard_size}.")
        self.cache_dir = Path(cache_dir) if cache_dir is not None else default_cache_dir()
        self.shard_size = None if shard_size is None else int(shard_size)
        self._verified: dict[Path, tuple[int, int]] = {}

    def __repr__(self) -> str:
        return f"EmbeddingCache({str(self.cache_dir)!r}, shard_size={self.shard_size})"

    # -- layout
    def entry_dir(self, fields: Mapping[str, Any]) -> Path:
        """Folder of one cache entry."""
        return self.cache_dir / cache_key(fields)

    def _read_meta(self, fields: Mapping[str, Any]) -> dict[str, Any] | None:
        path = self.entry_dir(fields) / "meta.json"
        if not path.is_file():
            return None
        try:
            meta = json.loads(path.read_text())
            int(meta["n_rows"]), int(meta["shard_size"])
        except (ValueError, KeyError, TypeError) as err:
            _corrupt(path, f"unreadable metadata: {err}")
            return None
        return dict(meta)

    def _shard_size(self, fields: Mapping[str, Any], n_rows: int) -> int:
        meta = self._read_meta(fields)
        if meta is None:
            return self.shard_size or adaptive_shard_size(n_rows)
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
        """Shards not on disk or failing their check (those are removed), ascending."""
        self._write_meta(fields, n_rows)
        return [
            s
            for s in range(self.num_shards(fields, n_rows))
            if not self._valid_shard(fields, n_rows, s)
        ]

    def _check_shard(
        self, fields: Mapping[str, Any], n_rows: int, shard: int
    ) -> dict[str, np.ndarray]:
        """The shard's arrays, after checking checksum, index, row count and key."""
        path = self.shard_path(fields, shard)
        meta, arrays = read_shard(path)
        rows = len(self.shard_rows(fields, n_rows, shard))
        if meta.get("key") != cache_key(fields) or meta.get("shard") != str(shard):
            raise ValueError("it belongs to another entry or shard")
        if meta.get("rows") != str(rows) or any(a.shape[0] != rows for a in arrays.values()):
            raise ValueError(f"it holds {meta.get('rows')} rows, not {rows}")
        st = path.stat()
        self._verified[path] = (st.st_size, st.st_mtime_ns)
        return arrays

    def _valid_shard(self, fields: Mapping[str, Any], n_rows: int, shard: int) -> bool:
        path = self.shard_path(fields, shard)
        if not path.is_file():
            return False
        st = path.stat()
        if self._verified.get(path) == (st.st_size, st.st_mtime_ns):
            return True
        try:
            self._check_shard(fields, n_rows, shard)
        except (ValueError, KeyError, TypeError, OSError) as err:
            _corrupt(path, str(err))
            return False
        return True

    def is_complete(self, fields: Mapping[str, Any], n_rows: int) -> bool:
        """Whether every shard is on disk."""
        return not self.missing_shards(fields, n_rows)

    # -- IO
    def _write_meta(self, fields: Mapping[str, Any], n_rows: int) -> None:
        path = self.entry_dir(fields) / "meta.json"
        if self._read_meta(fields) is not None:  # (an unreadable one is removed here)
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
        meta = {
            "shard": str(shard),
            "rows": str(rows),
            "key": cache_key(fields),
            "sha256": tensors_digest(tensors),
        }
        atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata=meta))
        st = path.stat()
        self._verified[path] = (st.st_size, st.st_mtime_ns)
        return path

    def load(self, fields: Mapping[str, Any], n_rows: int) -> dict[str, np.ndarray]:
        """All shards concatenated: ``{name: (n_rows, dim) float32}``."""
        missing = [
            s
            for s in range(self.num_shards(fields, n_rows))
            if not self.shard_path(fields, s).is_file()
        ]
        if missing:
            raise FileNotFoundError(
                f"cache entry {self.entry_dir(fields)} lacks shards "
                f"{missing[:10]}{'...' if len(missing) > 10 else ''}."
            )
        parts = []
        for s in range(self.num_shards(fields, n_rows)):
            try:
                parts.append(self._check_shard(fields, n_rows, s))
            except (ValueError, KeyError, TypeError) as err:
                path = self.shard_path(fields, s)
                _corrupt(path, str(err))
                raise ValueError(
                    f"cache shard {path} is corrupt ({err}); it was removed: run again to "
                    "recompute it."
                ) from None
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


def _corrupt(path: Path, why: str) -> None:
    """Report a failed cache file with its path and remove it (it is recomputed)."""
    warnings.warn(
        f"cache file {path} is corrupt ({why}); removing it and recomputing.",
        CorruptCacheWarning,
        stacklevel=3,
    )
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass


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
