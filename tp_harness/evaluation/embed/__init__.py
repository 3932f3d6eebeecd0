"""Embedding any Hub, local or bundled model: text encoders, sentence-transformers,
causal LMs (hidden states layer by layer) and vision encoders, with a sharded cache.

>>> spec = parse_model_spec("bundled:minilm:layers=all")        # doctest: +SKIP
>>> arrays = embed(spec, load_data("bundled:drug_reviews"))      # doctest: +SKIP
>>> sorted(arrays)[:2]                                           # doctest: +SKIP
['all-MiniLM-L6-v2', 'all-MiniLM-L6-v2@layer0']
"""

from ..hub_access import HubUnavailableError
from .cache import (
    DEFAULT_SHARD_SIZE,
    EmbeddingCache,
    cache_key,
    default_cache_dir,
    embed_cached,
    embedding_key_fields,
)
from .encode import embed, embed_rows
from .loading import LoadedModel, ResolvedModel, load_model, resolve_model
from .spec import BUNDLED_MODELS, ModelSpec, bundled_model_spec, parse_model_spec

__all__ = [
    "BUNDLED_MODELS",
    "DEFAULT_SHARD_SIZE",
    "EmbeddingCache",
    "HubUnavailableError",
    "LoadedModel",
    "ModelSpec",
    "ResolvedModel",
    "bundled_model_spec",
    "cache_key",
    "default_cache_dir",
    "embed",
    "embed_cached",
    "embed_rows",
    "embedding_key_fields",
    "load_model",
    "parse_model_spec",
    "resolve_model",
]
