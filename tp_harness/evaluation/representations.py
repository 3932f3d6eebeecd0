"""From spec strings to named (n, d) arrays: Hub/local/bundled models and Python encoders
through the embedding cache (shards split over ranks), precomputed files
(``file:``/``dataset:``) and the baselines (``tfidf-lsa``, ``pixels``, ``pixels-pca``,
``random-projection``).

A spec may end in ``@layerK`` to select one layer (``bundled:minilm@layer3``); an
entry equal to an already computed representation name is used as is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .distributed import DistContext, split_evenly
from .embed.cache import CACHE_FORMAT
from .encoders import Encoder, encode_rows, encoder_info, encoder_key_fields
from .features import (
    FEATURES_VERSION,
    classic_features,
    is_classic_spec,
    parse_classic_spec,
    random_projection,
)
from .precomputed import is_precomputed_spec, load_precomputed


@dataclass
class Representations:
    """Named arrays in dataset order, with one info record per source spec."""

    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    info: list[dict[str, Any]] = field(default_factory=list)
    by_entry: dict[str, str] = field(default_factory=dict)  # spec string -> array name
    by_identity: dict[tuple, str] = field(default_factory=dict)  # resolved model -> final name

    def has(self, entry: str) -> bool:
        return entry in self.by_entry or entry in self.arrays

    def lookup(self, entry: str, fallback: Representations | None = None) -> tuple[str, Any]:
        """(name, array) for a spec string or representation name."""
        for reps in (self, fallback):
            if reps is None:
                continue
            name = reps.by_entry.get(entry, entry if entry in reps.arrays else None)
            if name is not None:
                return name, reps.arrays[name]
        known = sorted({*self.arrays, *(fallback.arrays if fallback else {})})
        raise ValueError(f"prior {entry!r} matches no representation; known: {known}.")


def _model_spec(entry: str, config: Any) -> Any:
    """The parsed spec of ``entry`` with the run's dtype/batch/max-length defaults filled in
    where the spec text did not set them."""
    from .embed import parse_model_spec

    return parse_model_spec(entry).with_defaults(
        dtype=config.dtype,
        batch_size=config.batch_size,
        max_length=config.max_length,
        trust_remote_code=config.trust_remote_code,
    )


def _embed_distributed(
    resolved: Any, data: Any, ctx: DistContext, cache: Any, progress: bool
) -> dict[str, np.ndarray]:
    """Each rank fills its share of the missing cache shards; then all ranks load them.

    The main process decides what is missing (checking every shard) and tells the others,
    so all ranks split the same list even when one has already written a shard."""
    from .embed import embed_cached, embedding_key_fields

    fields = embedding_key_fields(resolved, data)
    missing: list[int] = ctx.broadcast_object(
        cache.missing_shards(fields, len(data.dataset)) if ctx.is_main else []
    )
    mine = split_evenly(missing, ctx.rank, ctx.world_size)
    if mine:
        embed_cached(
            resolved,
            data,
            cache=cache,
            device=ctx.device,
            shards=mine,
            load=False,
            progress=progress and ctx.is_main,
        )
    ctx.barrier()
    out = embed_cached(resolved, data, cache=cache, device=ctx.device, shards=[], load=True)
    assert out is not None
    return out


def _identity(resolved: Any) -> tuple:
    """What makes two specs give the same final embedding."""
    s = resolved.spec
    return (
        s.model_id,
        resolved.revision,
        resolved.fingerprint,
        resolved.pooling,
        resolved.normalize,
        s.dtype,
        s.max_length,
        s.gguf_file,
    )


def _encode_distributed(
    name: str, enc: Encoder, data: Any, ctx: DistContext, cache: Any, progress: bool
) -> np.ndarray:
    """A Python encoder's embedding, shards split over ranks like a model's."""
    fields, n = encoder_key_fields(name, enc, data), len(data.dataset)
    missing: list[int] = ctx.broadcast_object(
        cache.missing_shards(fields, n) if ctx.is_main else []
    )
    mine = split_evenly(missing, ctx.rank, ctx.world_size)
    if mine:
        cache.compute_missing(
            fields,
            n,
            lambda rows: {"final": encode_rows(name, enc, data, rows)},
            shards=mine,
            progress=progress and ctx.is_main,
        )
    ctx.barrier()
    return np.asarray(cache.load(fields, n)["final"])


class _Inputs:
    """The dataset's texts or decoded images, read once when a baseline needs them."""

    def __init__(self, data: Any) -> None:
        self.data = data
        self._texts: list[str] | None = None
        self._images: list[Any] | None = None

    @property
    def texts(self) -> list[str] | None:
        if self._texts is None and self.data.text_column is not None:
            self._texts = list(self.data.dataset[self.data.text_column])
        return self._texts

    @property
    def images(self) -> list[Any] | None:
        if self._images is None and self.data.image_column is not None:
            self._images = list(self.data.dataset[self.data.image_column])
        return self._images


def classic_key_fields(entry: str, data: Any, seed: int) -> dict[str, Any]:
    """Cache key of a baseline's features of ``data`` (all rows: TF-IDF and PCA depend on
    the whole selection)."""
    from importlib.metadata import version

    return {
        "format": CACHE_FORMAT,
        "classic": entry,
        "features_version": FEATURES_VERSION,
        "scikit-learn": version("scikit-learn"),
        "seed": seed,
        "dataset": data.fingerprint,
        "split": data.source.get("split"),
        "selection": data.source.get("selection"),
        "column": data.image_column if data.modality == "image" else data.text_column,
        "n_rows": len(data.dataset),
    }


def _cached_classic(
    entry: str, data: Any, config: Any, ctx: DistContext, inputs: _Inputs
) -> np.ndarray:
    """A baseline's features through the embedding cache, as one shard of all rows (the
    main process computes them; a warm run reads them without importing scikit-learn)."""
    from .embed import EmbeddingCache

    n = len(data.dataset)
    cache = EmbeddingCache(config.cache_dir, shard_size=max(1, n))
    fields = classic_key_fields(entry, data, config.seed)

    def compute(rows: np.ndarray) -> dict[str, np.ndarray]:
        images = inputs.images if data.modality == "image" else None
        x = classic_features(entry, inputs.texts, seed=config.seed, images=images)
        return {"final": np.ascontiguousarray(x[rows])}

    if ctx.is_main:
        cache.compute_missing(fields, n, compute)
    ctx.barrier()
    return np.asarray(cache.load(fields, n)["final"])


def _baseline(
    entry: str,
    data: Any,
    config: Any,
    ctx: DistContext,
    inputs: _Inputs,
    reps: Representations,
    known: Representations | None,
    encoders: dict[str, Encoder],
    progress: bool,
) -> tuple[np.ndarray, dict[str, Any]]:
    """(features, extra info) of a baseline; ``random-projection`` embeds its ``of=``."""
    kind, opts = parse_classic_spec(entry)
    if kind != "random-projection":
        return _cached_classic(entry, data, config, ctx, inputs), {}
    of = str(opts["of"])
    if reps.has(of) or (known is not None and known.has(of)):
        base_name, base = reps.lookup(of, fallback=known)
    else:
        merged = Representations(
            {**(known.arrays if known else {}), **reps.arrays},
            by_identity={**(known.by_identity if known else {}), **reps.by_identity},
        )
        sub = compute([of], data, config, ctx, progress=progress, known=merged, encoders=encoders)
        base_name, base = sub.lookup(of)
    seed = int(opts.get("seed", config.seed))
    return random_projection(base, int(opts["dim"]), seed=seed), {"of": base_name, "seed": seed}


def compute(
    entries: Any,
    data: Any,
    config: Any,
    ctx: DistContext,
    *,
    progress: bool = True,
    known: Representations | None = None,
    encoders: dict[str, Encoder] | None = None,
) -> Representations:
    """Representations for every spec string in ``entries`` (deduplicated, in order).

    A model whose final embedding is already in ``known`` (same weights, pooling,
    dtype, ...) is not embedded again: the entry points at the known array. An entry that
    names one of ``encoders`` is embedded by it. Precomputed files are read (and aligned)
    first, so a file that does not fit the dataset fails before any model is embedded.
    """
    from .embed import EmbeddingCache, resolve_model

    encoders = encoders or {}
    reps = Representations()
    cache = EmbeddingCache(config.cache_dir, shard_size=config.shard_size)
    inputs = _Inputs(data)
    entries = list(dict.fromkeys(entries))
    files = {e: load_precomputed(e, data) for e in entries if is_precomputed_spec(e)}
    for entry in entries:
        if entry in encoders:
            x = _encode_distributed(entry, encoders[entry], data, ctx, cache, progress)
            reps.arrays[entry] = x
            reps.by_entry[entry] = entry
            reps.info.append(encoder_info(entry, encoders[entry], int(x.shape[1]), data.modality))
            continue
        if entry in files:
            arrays, info, name = files[entry]
            reps.arrays.update(arrays)
            reps.by_entry[entry] = name
            reps.info.append({**info, "modality": data.modality})
            continue
        if is_classic_spec(entry):
            x, extra = _baseline(entry, data, config, ctx, inputs, reps, known, encoders, progress)
            name = entry
            reps.arrays[name] = x
            reps.by_entry[entry] = name
            reps.info.append(
                {
                    "name": name,
                    "model_id": entry,
                    "revision": "n/a",
                    "kind": "classic",
                    "pooling": "n/a",
                    "dim": int(x.shape[1]),
                    "modality": data.modality,
                    **extra,
                }
            )
            continue
        spec = _model_spec(entry, config)
        layer = spec.layer
        resolved = resolve_model(spec)
        ident = _identity(resolved)
        if layer is None and known is not None and ident in known.by_identity:
            name = known.by_identity[ident]
            reps.arrays[name] = known.arrays[name]
            reps.by_entry[entry] = name
            continue
        arrays = _embed_distributed(resolved, data, ctx, cache, progress)
        if layer is not None:
            name = spec.output_name
            arrays = {name: arrays[name]}
        else:
            name = resolved.name
        reps.arrays.update(arrays)
        reps.by_entry[entry] = name
        reps.by_identity.setdefault(ident, resolved.name)
        reps.info.append(
            {
                **resolved.describe(),
                "spec": entry,
                "outputs": list(arrays),
                "modality": data.modality,
            }
        )
    return reps
