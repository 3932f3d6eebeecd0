"""Forward passes: rows of a :class:`~tp_harness.data.DataBundle` -> float32 arrays.

Every function returns ``{name: (len(indices), dim) float32}`` in the order of
``indices`` (positions in ``data.dataset``, not original example ids). One forward
pass per batch gives the final embedding and all requested layers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch

from ...core.kernels import row_normalize
from .loading import LoadedModel, ResolvedModel, resolve_model
from .pooling import pool_text, pool_vision, pooler_output
from .spec import ModelSpec

if TYPE_CHECKING:
    from ..data import DataBundle

Features = dict[str, torch.Tensor]


def _text_inputs(loaded: LoadedModel, texts: list[str]) -> dict[str, Any]:
    enc = loaded.preprocessor(
        texts, padding=True, truncation=True, max_length=loaded.max_length, return_tensors="pt"
    )
    inputs = {k: v.to(loaded.device) for k, v in enc.items()}
    if loaded.resolved.kind == "causal":
        if "position_ids" in loaded.forward_args:  # left padding must not shift positions
            inputs["position_ids"] = (inputs["attention_mask"].cumsum(-1) - 1).clamp(min=0)
        if "use_cache" in loaded.forward_args:
            inputs["use_cache"] = False
    return inputs


def token_order(loaded: LoadedModel, texts: list[str]) -> np.ndarray:
    """Positions of ``texts`` longest first by token count (after truncation; ties keep
    their order), so each batch pads to similar lengths. Falls back to character length
    when the tokenizer cannot count (e.g. a slow tokenizer that fails on a batch)."""
    try:
        ids = loaded.preprocessor(texts, truncation=True, max_length=loaded.max_length)["input_ids"]
        lengths = [len(i) for i in ids]
    except (TypeError, ValueError, KeyError):
        lengths = [len(t) for t in texts]
    return np.argsort([-n for n in lengths], kind="stable")


def _forward_text(loaded: LoadedModel, texts: list[str]) -> Features:
    """Pooled features of one batch: canonical key -> ``(B, D)`` float32."""
    res = loaded.resolved
    inputs = _text_inputs(loaded, texts)
    mask = inputs["attention_mask"]  # (B, L)
    out = loaded.model(**inputs, output_hidden_states=bool(res.layers))
    if res.pooling == "pooler":
        final = pooler_output(out)
        if final is None:
            raise ValueError(f"{res.name} has no pooler_output; use pooling=mean|cls|last.")
    else:
        final = pool_text(out.last_hidden_state, mask, res.pooling)
    feats = {"final": final}
    layer_pooling = "cls" if res.pooling == "pooler" else res.pooling
    for i in res.layers:
        feats[f"layer{i}"] = pool_text(out.hidden_states[i], mask, layer_pooling)
    return feats


def _to_image(x: Any, channels: int) -> Any:
    mode = "L" if channels == 1 else "RGB"
    if hasattr(x, "convert") and getattr(x, "mode", mode) != mode:
        return x.convert(mode)
    return x


def _forward_image(loaded: LoadedModel, images: list[Any]) -> Features:
    """Pooled features of one image batch: canonical key -> ``(B, D)`` float32."""
    res = loaded.resolved
    channels = int(getattr(getattr(loaded.model, "config", None), "num_channels", 3) or 3)
    enc = loaded.preprocessor(images=[_to_image(x, channels) for x in images], return_tensors="pt")
    dtype = next(loaded.model.parameters()).dtype
    pixels = enc["pixel_values"].to(loaded.device, dtype=dtype)  # (B, C, H, W)
    prefix = res.num_prefix_tokens
    if res.pooling == "projected":
        return _forward_projected(loaded, pixels)
    out = loaded.model(pixel_values=pixels, output_hidden_states=bool(res.layers))
    final = pooler_output(out) if res.pooling == "pooler" else None
    if final is None:
        pooling = "mean" if res.pooling == "pooler" else res.pooling
        final = pool_vision(out.last_hidden_state, pooling, prefix)
    feats = {"final": final}
    for i in res.layers:
        feats[f"layer{i}"] = pool_vision(out.hidden_states[i], res.pooling, prefix)
    return feats


def _forward_projected(loaded: LoadedModel, pixels: torch.Tensor) -> Features:
    """A dual encoder's image embedding (``get_image_features``: the tower's pooled output
    through its projection) and, per layer, the tower's tokens (CLS when it has one, else
    the patch mean)."""
    res, model = loaded.resolved, cast(Any, loaded.model)
    out = model.get_image_features(pixel_values=pixels, output_hidden_states=bool(res.layers))
    hidden: Any = getattr(out, "hidden_states", None)
    if isinstance(out, torch.Tensor):  # older transformers return the embedding alone
        final = out
        if res.layers:
            hidden = model.vision_model(pixel_values=pixels, output_hidden_states=True)
            hidden = hidden.hidden_states
    else:
        final = out.pooler_output
    feats = {"final": final.reshape(final.shape[0], -1).float()}
    tokens = "cls" if res.num_prefix_tokens > 0 else "mean"
    for i in res.layers:
        feats[f"layer{i}"] = pool_vision(hidden[i], tokens, res.num_prefix_tokens)
    return feats


def _rows(data: DataBundle, indices: np.ndarray, column: str) -> list[Any]:
    return list(data.dataset.select(indices.tolist())[column]) if len(indices) else []


def _check_modality(res: ResolvedModel, data: DataBundle) -> str:
    if res.kind == "image":
        if data.modality != "image" or data.image_column is None:
            raise ValueError(
                f"{res.name} is a vision model but the data has no image column "
                f"(modality {data.modality!r})."
            )
        return data.image_column
    if data.text_column is None:
        raise ValueError(
            f"{res.name} is a {res.kind} model but the data has no text column "
            f"(modality {data.modality!r})."
        )
    return data.text_column


def embed_rows(
    loaded: LoadedModel,
    data: DataBundle,
    indices: Sequence[int] | np.ndarray,
    *,
    progress: bool = False,
    canonical: bool = False,
) -> dict[str, np.ndarray]:
    """Embed rows ``indices`` of ``data.dataset``: name -> ``(len(indices), dim)`` float32.

    Texts are batched longest first by token count (less padding than by characters:
    10% fewer padded tokens on the drug reviews) and put back in ``indices`` order.
    With ``canonical=True`` keys are ``final`` / ``layer{i}`` instead of display names.
    """
    from tqdm.auto import tqdm

    res = loaded.resolved
    idx = np.asarray(indices, dtype=np.int64).reshape(-1)
    column = _check_modality(res, data)
    if res.kind == "image":  # decode images batch by batch
        order = np.arange(len(idx))
        forward = _forward_image

        def fetch(pos: np.ndarray) -> list[Any]:
            return _rows(data, idx[pos], column)
    else:
        texts = ["" if t is None else str(t) for t in _rows(data, idx, column)]
        order = token_order(loaded, texts)
        forward = _forward_text  # type: ignore[assignment]

        def fetch(pos: np.ndarray) -> list[Any]:
            return [texts[i] for i in pos]

    bs = res.spec.batch_size
    out: dict[str, np.ndarray] = {}
    batches = range(0, len(idx), bs)
    with torch.inference_mode():
        for start in tqdm(batches, desc=f"embed {res.name}", disable=not progress, leave=False):
            pos = order[start : start + bs]
            feats = forward(loaded, fetch(pos))
            for key, value in feats.items():
                value = row_normalize(value.float()) if res.normalize else value.float()
                arr = out.setdefault(key, np.empty((len(idx), value.shape[1]), np.float32))
                arr[pos] = value.cpu().numpy()
    if not out:  # no rows: empty arrays of unknown width
        out = {key: np.empty((0, 0), np.float32) for key in res.names}
    return out if canonical else {res.names[k]: v for k, v in out.items()}


def _as_loaded(
    model: ModelSpec | ResolvedModel | LoadedModel, device: str | torch.device | None
) -> LoadedModel:
    if isinstance(model, LoadedModel):
        return model
    resolved = model if isinstance(model, ResolvedModel) else resolve_model(model)
    return resolved.load(device)


def embed(
    spec: ModelSpec | ResolvedModel | LoadedModel,
    data: DataBundle,
    *,
    device: str | torch.device | None = None,
    indices: np.ndarray | None = None,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Embed ``data`` (all rows, or ``indices``) with one model, in dataset order.

    Returns ``{name: (n, dim) float32}``: ``spec.name`` for the final embedding plus
    ``f"{name}@layer{i}"`` for each requested layer, all from one forward pass.
    """
    loaded = _as_loaded(spec, device)
    idx = np.arange(len(data.dataset)) if indices is None else np.asarray(indices)
    return embed_rows(loaded, data, idx, progress=progress)
