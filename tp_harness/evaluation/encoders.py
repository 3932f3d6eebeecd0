"""Python encoders as models: ``run(config, encoders={"name": obj})``.

``obj`` is either an object with ``encode(batch) -> (B, d)`` (the sentence-transformers and
mteb convention: ``batch`` is a list of the dataset's texts, or of its PIL images for an
image dataset) or a callable on a batch of rows (``fn(rows) -> (B, d)``, ``rows`` a dict of
column -> list, as ``Dataset[i:j]`` gives). The output may be a NumPy array, a torch tensor
or a list of rows. Wrap it in :class:`Encoder` to set a version string (part of the cache
key: change it when the encoder changes), the batch size or the modality it accepts.

Encoders are embedded like Hub models: in batches, shards split over processes, through
the same cache (keyed by the encoder's name and version, the dataset's fingerprint and
selection), and reported under their name with ``kind: "encoder"``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .embed.cache import CACHE_FORMAT

RESERVED = ("labels", "self")
MODALITIES = ("text", "image")


@dataclass(frozen=True)
class Encoder:
    """A Python encoder with the settings the run needs (see the module docstring)."""

    obj: Any
    version: str = "0"
    batch_size: int = 64
    modality: str | None = None  # "text", "image" or None (any)

    @property
    def interface(self) -> str:
        return "encode" if callable(getattr(self.obj, "encode", None)) else "callable"


def as_encoders(encoders: Mapping[str, Any] | None) -> dict[str, Encoder]:
    """Validated encoders (bare objects wrapped in :class:`Encoder`); raises ``ValueError``
    naming the entry, before anything is computed."""
    if encoders is None:
        return {}
    if not isinstance(encoders, Mapping):
        raise ValueError(
            f"encoders must be a dict of name -> encoder; got {type(encoders).__name__}."
        )
    out: dict[str, Encoder] = {}
    for name, value in encoders.items():
        if not isinstance(name, str) or not name.strip() or ":" in name or "@" in name:
            raise ValueError(
                f"encoders: name {name!r} must be a non-empty string without ':' or '@' "
                "(those belong to spec strings)."
            )
        if name in RESERVED:
            raise ValueError(f"encoders: {name!r} is reserved for a prior; choose another name.")
        enc = value if isinstance(value, Encoder) else Encoder(value)
        if not callable(getattr(enc.obj, "encode", None)) and not callable(enc.obj):
            raise ValueError(
                f"encoders[{name!r}]: a {type(enc.obj).__name__} has no encode(batch) method "
                "and is not callable; pass a sentence-transformers/mteb-style model or a "
                "function of a batch of rows."
            )
        if not isinstance(enc.version, str) or not enc.version:
            raise ValueError(f"encoders[{name!r}]: version must be a non-empty string.")
        if not isinstance(enc.batch_size, int) or enc.batch_size < 1:
            raise ValueError(f"encoders[{name!r}]: batch_size must be an int >= 1.")
        if enc.modality not in (None, *MODALITIES):
            raise ValueError(f"encoders[{name!r}]: modality must be one of {MODALITIES} or None.")
        out[name] = enc
    return out


def check_encoder_modality(name: str, enc: Encoder, data: Any) -> None:
    """An encoder that declares a modality must match the dataset's."""
    if enc.modality is not None and enc.modality != data.modality:
        raise ValueError(
            f"encoder {name!r} takes {enc.modality} but the dataset holds {data.modality}."
        )


def _as_matrix(y: Any, name: str, rows: int) -> np.ndarray:
    if hasattr(y, "detach"):
        y = y.detach().float().cpu().numpy()
    x = np.asarray(y, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] != rows or x.shape[1] == 0:
        raise ValueError(
            f"encoder {name!r} returned shape {tuple(x.shape)} for a batch of {rows}; "
            "expected (batch, dim)."
        )
    return x


def encode_rows(name: str, enc: Encoder, data: Any, rows: np.ndarray) -> np.ndarray:
    """Embed rows ``rows`` of ``data.dataset`` with ``enc``: ``(len(rows), d)`` float32."""
    column = data.image_column if data.modality == "image" else data.text_column
    parts = []
    for start in range(0, len(rows), enc.batch_size):
        idx = [int(i) for i in rows[start : start + enc.batch_size]]
        batch = data.dataset.select(idx)
        if enc.interface == "encode":
            inputs = list(batch[column])
            if data.modality == "text":
                inputs = ["" if t is None else str(t) for t in inputs]
            y = enc.obj.encode(inputs)
        else:
            y = enc.obj(batch[:])
        parts.append(_as_matrix(y, name, len(idx)))
    if not parts:
        return np.zeros((0, 0), dtype=np.float32)
    dims = {p.shape[1] for p in parts}
    if len(dims) != 1:
        raise ValueError(f"encoder {name!r} returned different widths across batches: {dims}.")
    return np.concatenate(parts, axis=0)


def encoder_key_fields(name: str, enc: Encoder, data: Any) -> dict[str, Any]:
    """Cache key of an encoder's embedding of ``data``."""
    return {
        "format": CACHE_FORMAT,
        "encoder": name,
        "version": enc.version,
        "interface": enc.interface,
        "dataset": data.fingerprint,
        "split": data.source.get("split"),
        "selection": data.source.get("selection"),
        "column": data.image_column if data.modality == "image" else data.text_column,
        "n_rows": len(data.dataset),
    }


def encoder_info(name: str, enc: Encoder, dim: int, modality: str) -> dict[str, Any]:
    """The results' record of an encoder."""
    cls = type(enc.obj)
    return {
        "name": name,
        "spec": name,
        "model_id": f"{cls.__module__}.{cls.__qualname__}",
        "revision": enc.version,
        "kind": "encoder",
        "interface": enc.interface,
        "pooling": "n/a",
        "dim": dim,
        "outputs": [name],
        "modality": modality,
    }
