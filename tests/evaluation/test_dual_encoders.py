"""Image-text dual encoders (issue 18 item 6): CLIP and SigLIP image embeddings default to
the projected ``get_image_features`` output; ``pooling=`` takes the vision tower's tokens;
the choice is recorded. Tiny random configs saved with ``save_pretrained``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tp_harness.evaluation.embed import embed, load_model, parse_model_spec, resolve_model

pytestmark = pytest.mark.usefixtures("offline")


def _tiny(arch: str, folder: Path) -> Path:
    import transformers as tf

    torch.manual_seed(5)
    vision = {
        "image_size": 32,
        "patch_size": 8,
        "hidden_size": 32,
        "intermediate_size": 37,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
    }
    text = {
        "vocab_size": 99,
        "hidden_size": 32,
        "intermediate_size": 37,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
    }
    if arch == "clip":
        cfg = tf.CLIPConfig(text_config=text, vision_config=vision, projection_dim=24)
        model: Any = tf.CLIPModel(cfg)
        proc: Any = tf.CLIPImageProcessorPil(
            size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}
        )
    else:
        cfg = tf.SiglipConfig(text_config=text, vision_config=vision)
        model = tf.SiglipModel(cfg)
        proc = tf.SiglipImageProcessorPil(size={"height": 32, "width": 32})
    model.save_pretrained(folder)
    proc.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module", params=["clip", "siglip"])
def dual_dir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _tiny(request.param, tmp_path_factory.mktemp(request.param))


def _pixels(loaded: Any, images: list[Any]) -> torch.Tensor:
    enc = loaded.preprocessor(images=[im.convert("RGB") for im in images], return_tensors="pt")
    return enc["pixel_values"]


def test_default_is_the_projected_image_embedding(dual_dir: Path, image_data: Any) -> None:
    from transformers import AutoModel

    res = resolve_model(parse_model_spec(f"{dual_dir}:layers=all"))
    assert res.kind == "image" and res.pooling == "projected"
    assert res.describe()["pooling"] == "projected"
    arrays = embed(res, image_data)
    reference = AutoModel.from_pretrained(dual_dir).eval()
    loaded = load_model(res)
    with torch.no_grad():
        out = reference.get_image_features(
            pixel_values=_pixels(loaded, list(image_data.dataset["image"]))
        )
    want = getattr(out, "pooler_output", out).numpy()
    np.testing.assert_allclose(arrays[res.name], want, rtol=1e-5, atol=1e-6)
    assert want.shape[1] == (24 if "clip" in dual_dir.name else 32)
    assert sorted(k for k in arrays if "@layer" in k) == [f"{res.name}@layer{i}" for i in range(3)]


def test_pooling_takes_the_towers_tokens(dual_dir: Path, image_data: Any) -> None:
    from transformers import AutoModel

    spec = "cls" if "clip" in dual_dir.name else "mean"  # SigLIP has no CLS token
    res = resolve_model(parse_model_spec(f"{dual_dir}:pooling={spec}"))
    arrays = embed(res, image_data)
    tower = AutoModel.from_pretrained(dual_dir).eval().vision_model
    loaded = load_model(res)
    with torch.no_grad():
        h = tower(pixel_values=_pixels(loaded, list(image_data.dataset["image"]))).last_hidden_state
    want = h[:, 0] if spec == "cls" else h.mean(1)
    np.testing.assert_allclose(arrays[res.name], want.numpy(), rtol=1e-5, atol=1e-6)


def test_projected_needs_a_dual_encoder(tiny_vision_dir: Path) -> None:
    res = resolve_model(parse_model_spec(f"{tiny_vision_dir}:pooling=projected"))
    with pytest.raises(ValueError, match="needs an image-text dual encoder"):
        load_model(res)
