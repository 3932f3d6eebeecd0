"""From spec strings to named (n, d) arrays: Hub/local/bundled models through the
embedding cache (shards split over ranks), and classical features (TF-IDF/LSA).

A spec may end in ``@layerK`` to select one layer (``bundled:minilm@layer3``); an
entry equal to an already computed representation name is used as is.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .distributed import DistContext, split_evenly
from .features import classic_features, is_classic_spec


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


def compute(
    entries: Any,
    data: Any,
    config: Any,
    ctx: DistContext,
    *,
    progress: bool = True,
    known: Representations | None = None,
) -> Representations:
    """Representations for every spec string in ``entries`` (deduplicated, in order).

    A model whose final embedding is already in ``known`` (same weights, pooling,
    dtype, ...) is not embedded again: the entry points at the known array.
    """
    from .embed import EmbeddingCache, resolve_model

    reps = Representations()
    cache = EmbeddingCache(config.cache_dir, shard_size=config.shard_size)
    texts = None
    for entry in dict.fromkeys(entries):
        if is_classic_spec(entry):
            if texts is None and data.text_column is not None:
                texts = list(data.dataset[data.text_column])
            x = classic_features(entry, texts, seed=config.seed)
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
