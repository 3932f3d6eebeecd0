"""Resolve a :class:`ModelSpec` (where, which revision, which kind, which pooling)
without loading weights, then load model + tokenizer/processor on a device.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from ..hub_access import (
    HubUnavailableError,
    commit_from_path,
    hub_file_exists,
    looks_like_path,
    resolve_hub_file,
)
from .pooling import POOLINGS_BY_KIND
from .spec import BUNDLED_MODELS, ModelSpec, layer_name

logger = logging.getLogger(__name__)

KINDS = ("text", "causal", "image", "sentence-transformers")
# Vision transformers whose token sequence has no CLS token in front.
_NO_CLS = frozenset(
    {
        "swin",
        "swinv2",
        "donut-swin",
        "maskformer-swin",
        "siglip",
        "siglip2",
        "siglip_vision_model",
        "hiera",
        "pvt",
        "pvt_v2",
        "segformer",
        "poolformer",
        "focalnet",
        "nat",
        "dinat",
        "mobilevit",
        "mobilevitv2",
    }
)
_ST_POOLING = {"cls": "cls", "mean": "mean", "max": "max", "lasttoken": "last"}
_ST_SUPPORTED = ("Transformer", "Pooling", "Normalize")
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass
class ResolvedModel:
    """A spec made concrete: source to load from, revision, kind, pooling, layers.

    ``revision`` is the Hub commit hash, ``"<package>==<version>"`` for bundled models,
    or ``"local"``; ``fingerprint`` identifies the weights for caching.
    """

    spec: ModelSpec
    source: str
    revision: str
    kind: str
    pooling: str
    normalize: bool
    num_layers: int | None
    layers: list[int]
    fingerprint: str
    local_files_only: bool = False
    load_revision: str | None = None
    num_prefix_tokens: int = 0
    max_length_limit: int | None = None
    config: Any = field(default=None, repr=False)

    def model_config(self) -> Any:
        """The transformers config, loaded on first use (a resolution read from the
        resolution cache has none until the model is loaded)."""
        if self.config is None:
            spec = self.spec.replace(gguf_file=None) if self.spec.gguf_file else self.spec
            self.config = _load_config(spec, self.source, self.load_revision, self.local_files_only)
        return self.config

    @property
    def name(self) -> str:
        """Display name of the final embedding."""
        return self.spec.name

    @property
    def names(self) -> dict[str, str]:
        """Canonical key (``final``, ``layer3``) -> display name (``NAME``, ``NAME@layer3``)."""
        out = {"final": self.name}
        out.update({f"layer{i}": layer_name(self.name, i) for i in self.layers})
        return out

    def describe(self) -> dict[str, Any]:
        """JSON-ready record for results files."""
        return {
            "name": self.name,
            "model_id": self.spec.model_id,
            "revision": self.revision,
            "kind": self.kind,
            "pooling": self.pooling,
            "normalize": self.normalize,
            "layers": self.layers,
            "num_layers": self.num_layers,
            "dtype": self.spec.dtype,
            "max_length": self.spec.max_length,
            "batch_size": self.spec.batch_size,
            "gguf_file": self.spec.gguf_file,
            **({"random_init": True} if self.spec.random_init else {}),
        }

    def load(self, device: str | torch.device | None = None) -> LoadedModel:
        """Load weights and tokenizer/processor onto ``device`` (default CPU), in eval mode."""
        return load_model(self, device)


@dataclass
class LoadedModel:
    """Weights in eval mode on ``device`` plus the matching tokenizer or image processor."""

    resolved: ResolvedModel
    model: torch.nn.Module
    preprocessor: Any
    device: torch.device
    max_length: int
    forward_args: frozenset[str] = frozenset()


# ----------------------------------------------------------------------------- resolve


RANDOM_INIT_SEED = 0


def _bundled_revision(path: Path) -> str | None:
    import importlib.metadata
    import importlib.util

    from .onnx_dinov2 import conversion_record

    record = conversion_record(path)
    if record is not None:  # a folder converted from a bundled package's file
        return str(record["source"])

    for entry in BUNDLED_MODELS.values():
        spec = importlib.util.find_spec(entry.package)
        if spec is None or not spec.submodule_search_locations:
            continue
        root = Path(next(iter(spec.submodule_search_locations))).resolve()
        if path == root or root in path.parents:
            dist = entry.package.replace("_", "-")
            try:
                return f"{dist}=={importlib.metadata.version(dist)}"
            except importlib.metadata.PackageNotFoundError:
                return dist
    return None


def _local_fingerprint(path: Path, gguf_file: str | None) -> str:
    """Hash of config bytes and weight file names/sizes/mtimes of a local folder."""
    h = hashlib.sha256()
    names = (
        [gguf_file]
        if gguf_file
        else sorted(
            p.name for p in path.iterdir() if p.suffix in (".safetensors", ".bin", ".json", ".pt")
        )
    )
    for name in names:
        f = path / name
        if f.is_file():
            st = f.stat()
            h.update(f"{name}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()[:16]


def _locate(spec: ModelSpec) -> tuple[str, str, str, bool, str | None]:
    """(source, revision, fingerprint, local_files_only, load_revision) for a spec."""
    path = Path(spec.model_id).expanduser()
    if path.is_dir():
        path = path.resolve()
        if spec.gguf_file and not (path / spec.gguf_file).is_file():
            raise FileNotFoundError(f"gguf_file {spec.gguf_file!r} not found in {path}.")
        revision = _bundled_revision(path) or "local"
        return str(path), revision, _local_fingerprint(path, spec.gguf_file), True, None
    if looks_like_path(spec.model_id):
        raise FileNotFoundError(f"Model folder {spec.model_id!r} does not exist.")
    probe, local_only = resolve_hub_file(
        spec.model_id, spec.gguf_file or "config.json", spec.revision
    )
    commit = commit_from_path(probe) or spec.revision or "unknown"
    return spec.model_id, commit, commit, local_only, commit


def _read_json(source: str, name: str, rev: str | None, local_only: bool) -> Any | None:
    if Path(source).is_dir():
        file: str | Path | None = Path(source) / name
        file = file if Path(file).is_file() else None  # type: ignore[arg-type]
    else:
        file = hub_file_exists(source, name, rev, local_only)
    return json.loads(Path(file).read_text()) if file else None


def _st_pooling(
    source: str, rev: str | None, local_only: bool, modules: list[dict[str, Any]]
) -> tuple[str, bool]:
    """(pooling, normalize) reproduced from a sentence-transformers repo's modules."""
    types = [str(m.get("type", "")).rsplit(".", 1)[-1] for m in modules]
    unsupported = [t for t in types if t not in _ST_SUPPORTED]
    if unsupported:
        raise NotImplementedError(
            f"sentence-transformers modules {unsupported} of {source!r} are not reproduced; "
            "pass an explicit pooling (e.g. ':pooling=mean') to use the transformer output."
        )
    pooling, normalize = "mean", "Normalize" in types
    for mod, kind in zip(modules, types, strict=True):
        if kind != "Pooling":
            continue
        prefix = f"{mod['path']}/" if mod.get("path") else ""
        cfg = _read_json(source, f"{prefix}config.json", rev, local_only) or {}
        modes = [
            k[len("pooling_mode_") :].removesuffix("_tokens").replace("_token", "")
            for k, v in cfg.items()
            if k.startswith("pooling_mode_") and v is True
        ]
        if isinstance(cfg.get("pooling_mode"), str):
            modes = [cfg["pooling_mode"]]
        if len(modes) != 1 or modes[0] not in _ST_POOLING:
            raise NotImplementedError(
                f"sentence-transformers pooling {modes} of {source!r} is "
                f"not supported; use one of {sorted(_ST_POOLING)}."
            )
        pooling = _ST_POOLING[modes[0]]
    return pooling, normalize


def _mapping(name: str) -> Any:
    from transformers.models.auto import modeling_auto

    return getattr(modeling_auto, name, {})


def _detect_kind(config: Any) -> str:
    model_type = getattr(config, "model_type", "")
    if (
        model_type in _mapping("MODEL_FOR_IMAGE_MAPPING_NAMES")
        or model_type in _mapping("MODEL_FOR_ZERO_SHOT_IMAGE_CLASSIFICATION_MAPPING_NAMES")
        or (getattr(config, "num_channels", None) and not hasattr(config, "vocab_size"))
    ):
        return "image"
    archs = getattr(config, "architectures", None) or []
    if any(a.endswith(("ForCausalLM", "LMHeadModel")) for a in archs):
        return "causal"
    if (
        model_type in _mapping("MODEL_FOR_CAUSAL_LM_MAPPING_NAMES")
        and model_type not in _mapping("MODEL_FOR_MASKED_LM_MAPPING_NAMES")
        and not getattr(config, "is_encoder_decoder", False)
    ):
        return "causal"
    return "text"


def _vision_config(config: Any) -> Any:
    return getattr(config, "vision_config", None) or config


def _num_prefix_tokens(config: Any) -> int:
    cfg = _vision_config(config)
    model_type = getattr(cfg, "model_type", "")
    if model_type in _NO_CLS or getattr(cfg, "patch_size", None) is None:
        return 0
    extra = 1 if model_type in ("deit", "levit") else 0
    return 1 + extra + int(getattr(cfg, "num_register_tokens", 0) or 0)


def _num_layers(config: Any, kind: str) -> int | None:
    sub = "vision_config" if kind == "image" else "text_config"
    for cfg in (getattr(config, sub, None), config):
        for attr in ("num_hidden_layers", "n_layer", "num_layers"):
            value = getattr(cfg, attr, None) if cfg is not None else None
            if isinstance(value, int):
                return value
    return None


def _resolve_layers(spec: ModelSpec, num_layers: int | None) -> list[int]:
    if spec.layers is None:
        return []
    if num_layers is None:
        raise ValueError(
            f"{spec.model_id!r}: cannot tell the number of layers from its config; "
            "layer extraction is not supported for it."
        )
    if spec.layers == "all":
        return list(range(num_layers + 1))
    out = []
    for i in spec.layers:
        j = i + num_layers + 1 if i < 0 else i
        if not 0 <= j <= num_layers:
            raise ValueError(
                f"layer {i} out of range for {spec.model_id!r}: hidden states are "
                f"0..{num_layers} (0 = embeddings)."
            )
        out.append(j)
    return list(dict.fromkeys(out))


def _auto_pooling(kind: str, prefix: int, config: Any) -> str:
    """last for causal LMs; mean for encoders; for vision the CLS token, except
    image-text dual encoders (CLIP, SigLIP and kin: ``projected``, the image embedding
    ``get_image_features`` returns, in the space shared with text) and models without a
    CLS token (pooler, i.e. global average or attention pooling)."""
    if kind == "causal":
        return "last"
    if kind == "image":
        if getattr(config, "vision_config", None) is not None:
            return "projected"
        return "cls" if prefix > 0 else "pooler"
    return "mean"


def _load_config(spec: ModelSpec, source: str, rev: str | None, local_only: bool) -> Any:
    from transformers import AutoConfig

    kwargs: dict[str, Any] = {"revision": rev, "trust_remote_code": spec.trust_remote_code}
    if local_only:
        kwargs["local_files_only"] = True
    if spec.gguf_file:
        kwargs["gguf_file"] = spec.gguf_file
    return AutoConfig.from_pretrained(source, **kwargs)


def checkpoint_dtype(config: Any) -> str:
    """The dtype a checkpoint's config names (``dtype``, or ``torch_dtype`` before
    transformers 5; the vision/text sub-config of a dual encoder too), as one of the spec
    dtypes; float32 when it names none or another one."""
    names = {torch.float32: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}
    for cfg in (
        config,
        getattr(config, "vision_config", None),
        getattr(config, "text_config", None),
    ):
        for attr in ("dtype", "torch_dtype"):
            value = getattr(cfg, attr, None) if cfg is not None else None
            if isinstance(value, str):
                value = getattr(torch, value, None)
            if value in names:
                return names[value]
    return "float32"


#: Bump when what :func:`_resolution_facts` derives from a config changes.
RESOLUTION_VERSION = 1


def _resolution_facts(
    spec: ModelSpec, source: str, config: Any, rev: str | None, local_only: bool
) -> dict[str, Any]:
    """What resolution derives from the config files: JSON-able."""
    dtype = checkpoint_dtype(config) if spec.dtype == "auto" else spec.dtype
    modules = _read_json(source, "modules.json", rev, local_only)
    kind = "sentence-transformers" if modules else _detect_kind(config)
    prefix = _num_prefix_tokens(config) if kind == "image" else 0
    pooling, normalize = spec.pooling, spec.normalize
    st_config: dict[str, Any] = {}
    if modules:
        st_config = _read_json(source, "sentence_bert_config.json", rev, local_only) or {}
        if pooling == "auto":
            pooling, st_normalize = _st_pooling(source, rev, local_only, modules)
            normalize = normalize or st_normalize
    elif pooling == "auto":
        pooling = _auto_pooling(kind, prefix, config)
    return {
        "dtype": dtype,
        "kind": kind,
        "prefix": prefix,
        "pooling": pooling,
        "normalize": bool(normalize),
        "num_layers": _num_layers(config, kind),
        "max_length_limit": st_config.get("max_seq_length"),
    }


def _resolution_cache_file(spec: ModelSpec, located: tuple[Any, ...]) -> Path | None:
    """``model_cache_root()/resolved/<key>.json`` for this spec and these exact files (the
    local fingerprint hashes every config file's size and mtime; a Hub commit is fixed), or
    None when the files cannot be pinned (a Hub id without a commit)."""
    source, _, fingerprint, local_only, rev, gguf_source = located
    if fingerprint == "unknown":
        return None
    from importlib.metadata import version

    from .cache import cache_key

    key = cache_key(
        {
            "v": RESOLUTION_VERSION,
            "spec": _spec_fields(spec),
            "source": gguf_source or source,
            "fingerprint": fingerprint,
            "local_only": local_only,
            "rev": rev,
            "transformers": version("transformers"),
            "json_files": _json_stats(Path(source)) if Path(source).is_dir() else None,
        }
    )
    return model_cache_root() / "resolved" / f"{key}.json"


def _spec_fields(spec: ModelSpec) -> dict[str, Any]:
    """The spec's fields in a process-independent form (sets sorted: a frozenset's repr
    follows the per-process string hash)."""
    import dataclasses

    return {
        f.name: sorted(v) if isinstance(v := getattr(spec, f.name), frozenset) else v
        for f in dataclasses.fields(spec)
    }


def _json_stats(path: Path) -> list[tuple[str, int, int]]:
    """(relative path, size, mtime) of the JSON files a local folder's resolution reads,
    sub-folders included (sentence-transformers' ``1_Pooling/config.json``)."""
    files = [*path.glob("*.json"), *path.glob("*/*.json")]
    return sorted(
        (str(f.relative_to(path)), f.stat().st_size, f.stat().st_mtime_ns)
        for f in files
        if f.is_file()
    )


def _cached_facts(file: Path | None) -> dict[str, Any] | None:
    try:
        return dict(json.loads(file.read_text())) if file is not None else None
    except (OSError, ValueError):  # absent or unreadable: resolve again
        return None


def _store_facts(file: Path | None, facts: dict[str, Any]) -> None:
    if file is None:
        return
    from ..atomic import atomic_write_text

    try:
        atomic_write_text(file, json.dumps(facts, sort_keys=True))
    except OSError:  # a read-only cache only costs the next run its config parse
        pass


def resolve_model(spec: ModelSpec) -> ResolvedModel:
    """Find the model (local, bundled, HF cache or Hub) and decide kind, pooling and layers.

    Reads only config files, and only the first time: what it derives from them is kept
    under ``model_cache_root()/resolved/`` keyed by the spec and the files' fingerprint
    (so a warm run neither parses the config nor imports transformers; the config is
    loaded when the model is). A Hub id that is neither cached nor reachable raises
    :class:`~tp_harness.embed.hub.HubUnavailableError` at once.
    """
    from .gguf import converted_source

    source, revision, fingerprint, local_only, rev = _locate(spec)
    gguf_source = converted_source(source, spec.gguf_file) if spec.gguf_file else None
    cache_file = _resolution_cache_file(
        spec, (source, revision, fingerprint, local_only, rev, gguf_source)
    )
    facts, config = _cached_facts(cache_file), None
    if facts is None:
        config = _load_config(
            spec.replace(gguf_file=None) if gguf_source else spec,
            gguf_source or source,
            rev,
            local_only or bool(gguf_source),
        )
        facts = _resolution_facts(spec, source, config, rev, local_only)
        _store_facts(cache_file, facts)
    if spec.dtype == "auto":  # the checkpoint's own dtype, fixed here (cache keys, results)
        spec = spec.replace(dtype=facts["dtype"])
    kind, pooling = facts["kind"], facts["pooling"]
    if pooling not in POOLINGS_BY_KIND[kind]:
        raise ValueError(
            f"pooling={pooling!r} is not available for a {kind} model; choose from "
            f"{list(POOLINGS_BY_KIND[kind])}."
        )
    num_layers = facts["num_layers"]
    if spec.random_init:  # the architecture only: weights from seed 0, not the checkpoint
        revision, fingerprint = (
            f"random init (seed {RANDOM_INIT_SEED}) of {revision}",
            (f"random-init-{RANDOM_INIT_SEED}-{fingerprint}"),
        )
    return ResolvedModel(
        spec=spec,
        source=gguf_source or source,
        revision=revision,
        kind=kind,
        pooling=pooling,
        normalize=facts["normalize"],
        num_layers=num_layers,
        layers=_resolve_layers(spec, num_layers),
        fingerprint=fingerprint,
        local_files_only=local_only or bool(gguf_source),
        load_revision=rev,
        num_prefix_tokens=facts["prefix"],
        config=config,
        max_length_limit=facts["max_length_limit"],
    )


# ----------------------------------------------------------------------------- load


def _from_pretrained_kwargs(resolved: ResolvedModel) -> dict[str, Any]:
    spec = resolved.spec
    kwargs: dict[str, Any] = {
        "revision": resolved.load_revision,
        "trust_remote_code": spec.trust_remote_code,
    }
    if resolved.local_files_only:
        kwargs["local_files_only"] = True
    if spec.gguf_file and not Path(resolved.source, "config.json").is_file():
        kwargs["gguf_file"] = spec.gguf_file
    return kwargs


def _load_tokenizer(resolved: ResolvedModel, kwargs: dict[str, Any]) -> Any:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(resolved.source, **kwargs)
    if tok.pad_token is None:
        fallback = tok.eos_token or tok.unk_token or tok.convert_ids_to_tokens(0)
        tok.pad_token = fallback
    return tok


def _max_length(resolved: ResolvedModel, tokenizer: Any) -> int:
    limits = [resolved.spec.max_length]
    if isinstance(resolved.max_length_limit, int) and resolved.max_length_limit > 0:
        limits.append(resolved.max_length_limit)  # sentence-transformers' max_seq_length
    model_max = getattr(tokenizer, "model_max_length", None)
    if isinstance(model_max, int) and model_max < 1_000_000:
        limits.append(model_max)
    config = resolved.model_config()
    positions = getattr(config, "max_position_embeddings", None) or getattr(
        config, "n_positions", None
    )
    if isinstance(positions, int) and positions > 0:
        limits.append(positions)
    return min(limits)


def _forward_args(module: torch.nn.Module) -> frozenset[str]:
    import inspect

    return frozenset(inspect.signature(module.forward).parameters)


@contextlib.contextmanager
def _no_weight_bars() -> Iterator[None]:
    """Hide transformers' per-load "Loading weights" bars (warnings still show)."""
    from transformers.utils import logging as hf_logging

    enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if enabled:
            hf_logging.enable_progress_bar()


def load_model(resolved: ResolvedModel, device: str | torch.device | None = None) -> LoadedModel:
    """Load ``resolved`` onto ``device`` (default CPU) with its tokenizer or image processor."""
    from transformers import AutoImageProcessor, AutoModel

    dev = torch.device(device) if device is not None else torch.device("cpu")
    kwargs = _from_pretrained_kwargs(resolved)
    with _no_weight_bars():
        if resolved.spec.random_init:
            torch.manual_seed(RANDOM_INIT_SEED)
            dtype = _DTYPES[resolved.spec.dtype]
            model = AutoModel.from_config(resolved.model_config(), dtype=dtype)
        else:
            model = AutoModel.from_pretrained(
                resolved.source, dtype=_DTYPES[resolved.spec.dtype], **kwargs
            )
    if resolved.kind == "image":
        if resolved.pooling != "projected":  # the vision tower alone
            model = getattr(model, "vision_model", model)
        elif not callable(getattr(model, "get_image_features", None)):
            raise ValueError(
                f"{resolved.name}: pooling=projected needs an image-text dual encoder "
                f"(a model with get_image_features); {type(model).__name__} has none. "
                "Use pooling=cls, mean or pooler."
            )
        kwargs.pop("gguf_file", None)
        pre = AutoImageProcessor.from_pretrained(resolved.source, **kwargs)
        max_len = 0
    else:
        encoder_decoder = getattr(resolved.model_config(), "is_encoder_decoder", False)
        if encoder_decoder and hasattr(model, "get_encoder"):
            model = model.get_encoder()
        pre = _load_tokenizer(resolved, kwargs)
        max_len = _max_length(resolved, pre)
    model = model.to(dev).eval()
    logger.info(
        "loaded %s (%s, revision %s) on %s", resolved.name, resolved.kind, resolved.revision, dev
    )
    return LoadedModel(
        resolved=resolved,
        model=model,
        preprocessor=pre,
        device=dev,
        max_length=max_len,
        forward_args=_forward_args(model),
    )


def converted_dir(source: Path, stem: str, salt: str = "") -> Path:
    """Where a model converted once from the local file ``source`` lives:
    ``model_cache_root()/converted/<stem>-<key>``, the key a hash of the file's resolved
    path, size and mtime (and ``salt``, e.g. a package version), so a changed file gets a
    new folder."""
    st = source.stat()
    text = f"{source.resolve()}:{st.st_size}:{st.st_mtime_ns}" + (f":{salt}" if salt else "")
    key = hashlib.sha256(text.encode()).hexdigest()
    return model_cache_root() / "converted" / f"{stem}-{key[:16]}"


def model_cache_root() -> Path:
    """``$HF_HOME/tp_harness`` (or ``$TP_HARNESS_CACHE``): home of converted models and caches."""
    env = os.environ.get("TP_HARNESS_CACHE")
    if env:
        return Path(env).expanduser()
    from huggingface_hub import constants

    return Path(constants.HF_HOME) / "tp_harness"


__all__ = [
    "KINDS",
    "HubUnavailableError",
    "LoadedModel",
    "ResolvedModel",
    "load_model",
    "model_cache_root",
    "resolve_model",
]
