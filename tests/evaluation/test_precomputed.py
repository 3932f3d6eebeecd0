"""Bring your own representations (issue 18 items 1, 2, 3, 7): ``file:`` / ``dataset:``
specs, Python encoders in ``run()``, and the image baselines, against independent
references (the rows a file holds, sklearn's PCA, the pixels themselves)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tp_harness.evaluation.config import Config
from tp_harness.evaluation.data import load_data
from tp_harness.evaluation.encoders import Encoder, as_encoders
from tp_harness.evaluation.features import (
    classic_modality,
    exact_pca,
    parse_classic_spec,
    pixel_matrix,
)
from tp_harness.evaluation.pipeline import run
from tp_harness.evaluation.precomputed import load_precomputed, parse_precomputed_spec

pytestmark = pytest.mark.usefixtures("offline")


@pytest.fixture(scope="module")
def digits() -> Any:
    return load_data("bundled:digits", num_examples=60, seed=0)


@pytest.fixture(scope="module")
def all_pixels() -> np.ndarray:
    """(1797, 64) pixels of the whole split, computed here from the images."""
    full = load_data("bundled:digits")
    return np.stack(
        [np.asarray(im, dtype=np.float32).reshape(-1) / 255 for im in full.dataset["image"]]
    )


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# ------------------------------------------------------------------ file specs


def test_npy_of_the_whole_split_is_indexed_by_the_selected_rows(
    tmp_path: Path, digits: Any, all_pixels: np.ndarray
) -> None:
    path = tmp_path / "px.npy"
    np.save(path, all_pixels.astype(np.float64))
    arrays, info, name = load_precomputed(f"file:{path}", digits)
    assert name == "px" and list(arrays) == ["px"]
    np.testing.assert_array_equal(arrays["px"], all_pixels[digits.example_ids])
    assert arrays["px"].dtype == np.float32
    assert info["content_sha256"] == _sha(path) and info["format"] == "npy"
    assert info["aligned_by"] == "position (one row per split row)"
    # one row per selected example: taken as is
    np.save(tmp_path / "sel.npy", all_pixels[digits.example_ids][::-1].copy())
    arrays, info, _ = load_precomputed(f"file:{tmp_path / 'sel.npy'}:name=mine", digits)
    np.testing.assert_array_equal(arrays["mine"], all_pixels[digits.example_ids][::-1])
    assert info["aligned_by"] == "position (one row per selected example)"


def test_layer_stacks_and_named_tensors(tmp_path: Path, digits: Any) -> None:
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    stack = rng.normal(size=(3, 1797, 5)).astype(np.float32)
    np.save(tmp_path / "stack.npy", stack)
    arrays, _, name = load_precomputed(f"file:{tmp_path / 'stack.npy'}", digits)
    assert list(arrays) == ["stack@layer0", "stack@layer1", "stack@layer2"]
    assert name == "stack@layer2"
    one, _, name = load_precomputed(f"file:{tmp_path / 'stack.npy'}@layer1", digits)
    assert name == "stack@layer1" and list(one) == [name]
    np.testing.assert_array_equal(one[name], stack[1][digits.example_ids])
    with pytest.raises(ValueError, match="no layer 7"):
        load_precomputed(f"file:{tmp_path / 'stack.npy'}@layer7", digits)

    st = tmp_path / "t.safetensors"
    save_file({"emb": stack[0], "other": stack[1]}, str(st))
    with pytest.raises(ValueError, match="tensor=NAME"):
        load_precomputed(f"file:{st}", digits)
    arrays, _, _ = load_precomputed(f"file:{st}:tensor=other", digits)
    np.testing.assert_array_equal(arrays["t"], stack[1][digits.example_ids])
    layers = tmp_path / "layers.safetensors"
    save_file({f"layer{i}": stack[i] for i in range(3)}, str(layers))
    arrays, _, _ = load_precomputed(f"file:{layers}@layer2", digits)
    np.testing.assert_array_equal(arrays["layers@layer2"], stack[2][digits.example_ids])


def test_tables_align_by_id_column(tmp_path: Path, digits: Any, all_pixels: np.ndarray) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    order = np.random.default_rng(1).permutation(1797)
    table = pa.table(
        {
            "example_id": order.tolist(),
            "vec": [all_pixels[i].tolist() for i in order],
            "note": ["x"] * 1797,
        }
    )
    pq.write_table(table, tmp_path / "emb.parquet")
    arrays, info, _ = load_precomputed(f"file:{tmp_path / 'emb.parquet'}", digits)
    np.testing.assert_array_equal(arrays["emb"], all_pixels[digits.example_ids])
    assert info["aligned_by"] == "id column 'example_id'"
    # a saved Dataset and a parquet folder read through datasets.load_dataset
    import datasets

    ds = datasets.Dataset(table)
    ds.save_to_disk(str(tmp_path / "saved"))
    arrays, info, _ = load_precomputed(f"file:{tmp_path / 'saved'}:column=vec", digits)
    np.testing.assert_array_equal(arrays["saved"], all_pixels[digits.example_ids])
    assert info["format"] == "saved_dataset"
    (tmp_path / "hubish").mkdir()
    pq.write_table(table, tmp_path / "hubish" / "train.parquet")
    arrays, info, _ = load_precomputed(f"dataset:{tmp_path / 'hubish'}:column=vec", digits)
    np.testing.assert_array_equal(arrays["hubish"], all_pixels[digits.example_ids])
    assert info["content_sha256"].startswith("datasets-fingerprint:")
    # ids that miss some of the selected examples
    pq.write_table(table.slice(0, 1000), tmp_path / "part.parquet")
    with pytest.raises(ValueError, match=r"of the 60 selected examples have no row"):
        load_precomputed(f"file:{tmp_path / 'part.parquet'}", digits)


@pytest.mark.parametrize(
    ("spec", "error", "needle"),
    [
        ("file:", ValueError, "give a path"),
        ("file:/no/such/emb.npy", FileNotFoundError, "no such file"),
        ("file:{tmp}/a.npy:colour=red", ValueError, "unknown option 'colour'"),
        ("file:{tmp}/a.txt", ValueError, "cannot tell the format"),
        ("file:{tmp}/short.npy", ValueError, "has 10 rows, but the dataset split has 1797"),
        ("file:{tmp}/nan.npy", ValueError, "hold NaN or inf"),
        ("file:{tmp}/two.parquet", ValueError, "name the column of vectors"),
        ("file:{tmp}/two.parquet:column=zz", ValueError, "has no column 'zz'"),
    ],
)
def test_bad_files_say_what_is_wrong(
    tmp_path: Path, digits: Any, spec: str, error: type, needle: str
) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    np.save(tmp_path / "a.npy", np.zeros((1797, 2)))
    (tmp_path / "a.txt").write_text("1 2 3")
    np.save(tmp_path / "short.npy", np.zeros((10, 2)))
    nan = np.zeros((1797, 2))
    nan[digits.example_ids[3]] = np.nan
    np.save(tmp_path / "nan.npy", nan)
    pq.write_table(pa.table({"a": [[1.0]] * 3, "b": [[2.0]] * 3}), tmp_path / "two.parquet")
    with pytest.raises(error, match=needle):
        load_precomputed(spec.format(tmp=tmp_path), digits)


# ------------------------------------------------------------------ image baselines


def test_pixels_and_exact_pca(digits: Any, all_pixels: np.ndarray) -> None:
    from sklearn.decomposition import PCA

    x = pixel_matrix(list(digits.dataset["image"]))
    np.testing.assert_array_equal(x, all_pixels[digits.example_ids])
    for data in (x, x[:20]):  # d <= n (covariance) and d > n (Gram)
        k = 6
        ref = PCA(n_components=k, svd_solver="full").fit_transform(data.astype(np.float64))
        got = exact_pca(data, k)
        signs = np.sign((got * ref).sum(axis=0))
        np.testing.assert_allclose(got, ref * signs, atol=2e-5)
        np.testing.assert_array_equal(exact_pca(data[::-1].copy(), k), got[::-1])  # row order


def test_pixel_matrix_modes_and_sizes() -> None:
    from PIL import Image

    grey = Image.fromarray(np.arange(16, dtype=np.uint8).reshape(4, 4), "L")
    rgb = Image.fromarray(np.full((2, 2, 3), 255, dtype=np.uint8), "RGB")
    assert pixel_matrix([grey, grey]).shape == (2, 16)
    mixed = pixel_matrix([grey, rgb])  # RGB, resized to the first image's 4x4
    assert mixed.shape == (2, 48) and mixed[1].min() == 1.0
    assert pixel_matrix([grey], size=2).shape == (1, 4)


def test_baseline_specs_parse_strictly() -> None:
    assert parse_classic_spec("pixels-pca:dim=8") == ("pixels-pca", {"dim": 8})
    kind, opts = parse_classic_spec("random-projection:dim=4,seed=3,of=file:/x/a.npy:name=y")
    assert (kind, opts) == (
        "random-projection",
        {"dim": 4, "seed": 3, "of": "file:/x/a.npy:name=y"},
    )
    assert classic_modality("random-projection:dim=4,of=pixels") == "image"
    assert classic_modality("tfidf-lsa") == "text"
    for bad, needle in (
        ("pixels-pca", "needs dim="),
        ("pixels:dim=4", "bad option dim"),
        ("random-projection:dim=4", "give the representation to project"),
        ("pixels-pca:dim=0", "integer >= 1"),
        ("pixels@layer3", "no layers"),
    ):
        with pytest.raises(ValueError, match=needle):
            parse_classic_spec(bad)


# ------------------------------------------------------------------ end to end


def _config(tmp_path: Path, **kw: Any) -> Config:
    base = dict(
        dataset="bundled:digits",
        num_examples=60,
        num_tasks=8,
        num_classes=(2,),
        probes=("ridge",),
        temperatures=(0.1,),
        priors=("labels",),
        cache_dir=str(tmp_path / "cache"),
        output_dir=str(tmp_path / "out"),
        bootstrap=20,
    )
    return Config(**{**base, **kw})


def _means(results: Any) -> dict[str, float]:
    return {s["model"]: s["mean"] for s in results.scores if s["prior"] == "labels"}


def test_a_run_with_files_and_image_baselines(tmp_path: Path, all_pixels: np.ndarray) -> None:
    path = tmp_path / "raw.npy"
    np.save(path, all_pixels)
    cfg = _config(
        tmp_path,
        models=(
            f"file:{path}",
            "pixels",
            "pixels-pca:dim=8",
            "random-projection:dim=16,of=pixels",
        ),
        priors=("labels", f"file:{path}:name=pixel-prior"),
    )
    res = run(cfg, progress=False)
    means = _means(res)
    assert means["raw"] == means["pixels"]  # the same vectors, through two routes
    assert {"pixels-pca:dim=8", "random-projection:dim=16,of=pixels"} <= set(means)
    info = {m["name"]: m for m in res.models}
    assert info["raw"]["content_sha256"] == _sha(path) and info["raw"]["kind"] == "precomputed"
    assert info["random-projection:dim=16,of=pixels"]["of"] == "pixels"
    assert {s["prior"] for s in res.scores} == {"labels", "pixel-prior"}
    json.dumps(res.to_dict())  # JSON-ready


class Hasher:
    """A sentence-transformers-style encoder: ``encode(list of str) -> (B, d)``."""

    def __init__(self, dim: int = 16) -> None:
        self.dim, self.calls = dim, 0

    def encode(self, texts: list[str]) -> np.ndarray:
        self.calls += 1
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.lower().split():
                out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % self.dim] += 1
        return out


def test_python_encoders_in_run(tmp_path: Path) -> None:
    import torch

    enc = Hasher()
    cfg = _config(
        tmp_path, dataset="bundled:drug_reviews", models=("tfidf-lsa:dim=8",), num_examples=80
    )

    def on_rows(rows: dict[str, list[Any]]) -> torch.Tensor:  # a callable on a batch of rows
        return torch.as_tensor(enc.encode(rows["review"]))

    res = run(cfg, progress=False, encoders={"hasher": Encoder(enc, version="1"), "rows": on_rows})
    means = _means(res)
    assert means["hasher"] == pytest.approx(means["rows"], rel=1e-12)
    info = {m["name"]: m for m in res.models}
    assert info["hasher"]["kind"] == "encoder" and info["hasher"]["revision"] == "1"
    assert info["rows"]["interface"] == "callable"
    # same name and version: served from the cache, encode not called again
    calls = enc.calls
    again = run(cfg, progress=False, encoders={"hasher": Encoder(enc, version="1")})
    assert enc.calls == calls and _means(again)["hasher"] == means["hasher"]
    run(cfg, progress=False, encoders={"hasher": Encoder(enc, version="2")})
    assert enc.calls > calls
    # the same vectors saved to a file score the same
    data = load_data("bundled:drug_reviews", num_examples=80, seed=0)
    np.save(tmp_path / "h.npy", enc.encode(list(data.dataset[data.text_column])))
    filed = run(cfg.replace(models=(f"file:{tmp_path / 'h.npy'}",)), progress=False)
    assert _means(filed)["h"] == pytest.approx(means["hasher"], rel=1e-12)


def test_encoder_errors_come_first(tmp_path: Path) -> None:
    for bad, needle in (
        ({"x": 3}, "has no encode"),
        ({"labels": Hasher()}, "reserved"),
        ({"a:b": Hasher()}, "without ':'"),
        ({"x": Encoder(Hasher(), version="")}, "version"),
    ):
        with pytest.raises(ValueError, match=needle):
            as_encoders(bad)
    cfg = _config(tmp_path, models=("pixels",))
    with pytest.raises(ValueError, match="takes text but the dataset holds image"):
        run(cfg, progress=False, encoders={"h": Encoder(Hasher(), modality="text")})

    def wrong(rows: dict[str, list[Any]]) -> np.ndarray:
        return np.zeros((3, 2))

    with pytest.raises(ValueError, match=r"returned shape \(3, 2\)"):
        run(cfg, progress=False, encoders={"w": wrong})


def test_every_spec_is_checked_before_any_embedding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Item 7: a text model, a text baseline or a bad file among image specs fails in
    preflight, naming the spec, before the first model is embedded."""
    from tp_harness.evaluation import representations

    def refuse(*a: object, **k: object) -> None:
        raise AssertionError("embedded before the checks")

    monkeypatch.setattr(representations, "compute", refuse)
    for models, priors, needle in (
        (("pixels", "tfidf-lsa"), ("labels",), "model 'tfidf-lsa' embeds text"),
        (("pixels", "bundled:minilm"), ("labels",), "model 'bundled:minilm' embeds text"),
        (("pixels",), ("random-projection:dim=4,of=tfidf-lsa",), "prior 'random-projection"),
        (("pixels", "file:/no/such.npy"), ("labels",), "no such file"),
    ):
        with pytest.raises((ValueError, FileNotFoundError), match=needle):
            run(_config(tmp_path, models=models, priors=priors), progress=False)


def test_spec_grammar_of_files() -> None:
    spec = parse_precomputed_spec("dataset:org/emb:column=vec,split=test,name=mine@layer2")
    assert (spec.source, spec.location, spec.layer) == ("dataset", "org/emb", 2)
    assert spec.options == {"column": "vec", "split": "test", "name": "mine"}
    assert spec.base_name == "mine"


ENCODER_SCRIPT = """
import json, os, sys
import numpy as np
from tp_harness.evaluation.config import Config
from tp_harness.evaluation.encoders import Encoder
from tp_harness.evaluation.pipeline import run

out, cache = sys.argv[1], sys.argv[2]
rank = os.environ.get("RANK", "0")


class Lengths:
    def encode(self, texts):
        with open(f"{out}/rows-{rank}.txt", "a") as f:
            f.write(f"{len(texts)}\\n")  # texts may hold newlines: count them
        return np.array([[len(t), t.count(" "), t.count("e")] for t in texts], dtype=np.float32)


cfg = Config(models=("tfidf-lsa:dim=4",), priors=("labels",), dataset="bundled:drug_reviews",
             num_examples=64, num_tasks=4, num_classes=(2,), probes=("ridge",),
             temperatures=(0.1,), cache_dir=cache, output_dir=out, bootstrap=10, shard_size=8)
res = run(cfg, progress=False, encoders={"len": Encoder(Lengths(), batch_size=5)})
if res.is_main:
    print(json.dumps({s["model"]: s["mean"] for s in res.scores}))
"""


@pytest.mark.slow
def test_encoders_split_their_shards_over_processes(tmp_path: Path) -> None:
    """Under ``accelerate launch`` with 2 CPU processes each rank encodes its share of the
    cache shards (disjoint, together every row) and the scores equal one process."""
    import os
    import subprocess
    import sys

    from tests.launch import ACCELERATE_TWO

    script = tmp_path / "enc.py"
    script.write_text(ENCODER_SCRIPT)
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    got = {}
    for procs in (1, 2):
        out = tmp_path / f"p{procs}"
        out.mkdir()
        launch = ACCELERATE_TWO if procs == 2 else [sys.executable]
        proc = subprocess.run(
            [*launch, str(script), str(out), str(tmp_path / f"cache{procs}")],
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        got[procs] = json.loads(proc.stdout.strip().splitlines()[-1])
        rows = {p.name: sum(map(int, p.read_text().split())) for p in out.glob("rows-*.txt")}
        assert sum(rows.values()) == 64  # every row encoded once
        if procs == 2:
            assert sorted(rows) == ["rows-0.txt", "rows-1.txt"]
            assert all(rows.values())  # both ranks worked
    assert got[1]["len"] == pytest.approx(got[2]["len"], rel=1e-5)


def test_small_n_lsa_is_exact() -> None:
    """Issue 20: up to EXACT_LSA_MAX_N texts tfidf-lsa is the exact top-k SVD (U_k S_k),
    equal to numpy's full SVD of the TF-IDF matrix up to each component's sign."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    from tp_harness.evaluation.features import tfidf_lsa

    texts = [str(t) for t in load_data("bundled:drug_reviews", num_examples=150).dataset["review"]]
    got = tfidf_lsa(texts, dim=12)
    x = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=1).fit_transform(texts)
    u, s, _ = np.linalg.svd(x.toarray(), full_matrices=False)
    want = u[:, :12] * s[:12]
    signs = np.sign((got * want).sum(axis=0))
    np.testing.assert_allclose(got, want * signs, rtol=1e-4, atol=1e-5)
    np.testing.assert_array_equal(tfidf_lsa(texts, dim=12), got)  # deterministic
