"""Dataset loading: Hub ids, local files/folders, bundled offline data; column
mapping, label encoding and deterministic (stratified) subsampling.

``load_data`` accepts:

* ``bundled:drug_reviews``, ``bundled:digits``, ``bundled:mnist_5k`` (see
  :mod:`tp_harness.bundled`);
* a local file (``.csv``, ``.tsv``, ``.json``, ``.jsonl``, ``.parquet``, ``.arrow``,
  ``.txt``) or folder (a ``save_to_disk`` folder, an image folder, or data files that
  ``datasets.load_dataset(folder)`` understands, with splits from file names);
* a Hub id for ``datasets.load_dataset`` (``config_name``, ``split``). Offline
  (``HF_HUB_OFFLINE``) or with the Hub unreachable, a dataset missing from the local
  cache fails at once naming the id and ``HF_HUB_OFFLINE``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

TEXT_NAMES = (
    "text",
    "sentence",
    "review",
    "content",
    "document",
    "body",
    "question",
    "prompt",
    "sentence1",
    "title",
)
IMAGE_NAMES = ("image", "img", "picture", "photo")
LABEL_NAMES = ("label", "labels", "class", "target", "category", "y")
_FILE_BUILDERS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".json": "json",
    ".jsonl": "json",
    ".parquet": "parquet",
    ".arrow": "arrow",
    ".txt": "text",
}


@dataclass
class DataBundle:
    """Selected rows plus everything a run needs to know about them.

    ``dataset`` holds the selected rows in original order; ``example_ids (n,)`` are
    their row indices in the source split; ``labels (n,)`` int64 (or None).
    """

    dataset: Any  # datasets.Dataset
    modality: str
    text_column: str | None
    image_column: str | None
    label_column: str | None
    labels: np.ndarray | None
    fingerprint: str
    source: dict[str, Any]
    example_ids: np.ndarray
    label_names: list[str] | None = field(default=None)

    def __len__(self) -> int:
        return len(self.dataset)

    @property
    def num_classes(self) -> int | None:
        """Number of label classes (None without labels)."""
        if self.labels is None:
            return None
        return len(self.label_names) if self.label_names else int(self.labels.max()) + 1


# ----------------------------------------------------------------------------- sources


def _hub_error(dataset: str, why: str) -> Exception:
    from .hub_access import HubUnavailableError, unavailable_message

    return HubUnavailableError(unavailable_message(dataset, "dataset", None, why))


def _load_hub(dataset: str, config_name: str | None, split: str | None) -> Any:
    import datasets

    from .hub_access import bounded_downloads, hub_offline, hub_problem, offline_libraries

    offline = hub_offline()
    problem = None if offline else hub_problem()
    if problem is not None:
        raise _hub_error(
            dataset, f"{problem}; set HF_HUB_OFFLINE=1 to use a copy in the local datasets cache"
        )
    kwargs: dict[str, Any] = {}
    if offline:
        kwargs["download_config"] = datasets.DownloadConfig(local_files_only=True)
    try:
        with offline_libraries(offline), bounded_downloads():
            return datasets.load_dataset(dataset, config_name, split=split, **kwargs)
    except (ConnectionError, FileNotFoundError, OSError) as err:
        if offline:
            raise _hub_error(dataset, f"HF_HUB_OFFLINE is set ({type(err).__name__})") from err
        raise
    except Exception as err:
        if offline and "offline" in str(err).lower():
            raise _hub_error(dataset, "HF_HUB_OFFLINE is set") from err
        raise


def _load_local(path: Path, config_name: str | None) -> Any:
    import datasets

    if path.is_file():
        builder = _FILE_BUILDERS.get(path.suffix.lower())
        if builder is None:
            raise ValueError(f"Cannot read {path}: use one of {sorted(_FILE_BUILDERS)}.")
        kwargs = {"delimiter": "\t"} if path.suffix.lower() == ".tsv" else {}
        return datasets.load_dataset(builder, data_files=str(path), **kwargs)
    if (path / "dataset_info.json").is_file() or (path / "dataset_dict.json").is_file():
        return datasets.load_from_disk(str(path))
    return datasets.load_dataset(str(path), config_name)


def _pick_split(ds: Any, split: str | None, name: str) -> tuple[Any, str | None]:
    import datasets

    if not isinstance(ds, (datasets.DatasetDict, dict)):
        return ds, split
    splits = list(ds)
    if split is None:
        split = "train" if "train" in ds else splits[0]
        if len(splits) > 1:
            logger.info("%s: no split given, using %r of %s", name, split, splits)
    if split not in ds:
        raise ValueError(f"{name} has splits {splits}; got split={split!r}.")
    return ds[split], split


def _base_fingerprint(ds: Any, name: str) -> str:
    fp = getattr(ds, "_fingerprint", None)
    return str(fp) if fp else hashlib.sha256(name.encode()).hexdigest()[:32]


def _load_source(
    dataset: str, split: str | None, config_name: str | None
) -> tuple[Any, dict[str, Any], str]:
    """(Dataset, source record, base fingerprint) for any source kind."""
    from .bundled import load_bundled
    from .hub_access import looks_like_path

    if dataset.startswith("bundled:"):
        bundle = load_bundled(dataset.split(":", 1)[1], split)
        return bundle.dataset, {"kind": "bundled", **bundle.source}, bundle.fingerprint
    path = Path(dataset).expanduser()
    if path.exists():
        raw, kind = _load_local(path, config_name), "local"
    elif looks_like_path(dataset):
        raise FileNotFoundError(f"Dataset path {dataset!r} does not exist.")
    else:
        raw, kind = _load_hub(dataset, config_name, split), "hub"
    ds, split = _pick_split(raw, split, dataset)
    info = getattr(ds, "info", None)
    source = {
        "kind": kind,
        "id": str(path.resolve()) if kind == "local" else dataset,
        "config": config_name,
        "split": split,
        "license": (getattr(info, "license", None) or None),
    }
    return ds, source, _base_fingerprint(ds, dataset)


# ----------------------------------------------------------------------------- columns


def _column_error(kind: str, name: str, ds: Any) -> ValueError:
    return ValueError(
        f"{kind} column {name!r} not found; available columns: "
        f"{list(ds.column_names)} (features: {dict(ds.features)})."
    )


def _is_image(feature: Any) -> bool:
    import datasets

    return isinstance(feature, datasets.Image)


def _is_string(feature: Any) -> bool:
    import datasets

    return isinstance(feature, datasets.Value) and feature.dtype in ("string", "large_string")


def _detect_text(ds: Any, exclude: set[str]) -> str | None:
    strings = [c for c, f in ds.features.items() if _is_string(f) and c not in exclude]
    for name in TEXT_NAMES:
        if name in strings:
            return name
    if not strings:
        return None
    head = ds.select(range(min(100, len(ds))))
    lengths = {c: np.mean([len(t or "") for t in head[c]]) for c in strings}
    return max(strings, key=lambda c: lengths[c])


def _detect_label(ds: Any) -> str | None:
    import datasets

    for column, feature in ds.features.items():
        if isinstance(feature, datasets.ClassLabel):
            return str(column)
    return next((n for n in LABEL_NAMES if n in ds.column_names), None)


def _resolve_columns(
    ds: Any, text: str | None, image: str | None, label: str | None
) -> tuple[str | None, str | None, str | None]:
    for kind, name in (("text", text), ("image", image), ("label", label)):
        if name is not None and name not in ds.column_names:
            raise _column_error(kind, name, ds)
    label = label if label is not None else _detect_label(ds)
    if image is None and text is None:
        image = next((c for c, f in ds.features.items() if _is_image(f)), None)
    if image is None and text is None:
        text = _detect_text(ds, {label} if label else set())
    if image is None and text is None:
        raise ValueError(
            f"No text or image column found; pass text_column= or image_column=. "
            f"Available columns: {list(ds.column_names)} "
            f"(features: {dict(ds.features)})."
        )
    return text, image, label


def encode_labels(ds: Any, column: str) -> tuple[np.ndarray, list[str] | None]:
    """Labels of ``column`` as int64 ``(n,)`` and class names; a missing label (None, or
    -1 in a ``ClassLabel`` column) is -1 here, and :func:`load_data` refuses or drops those
    rows (it never reaches a prior or a probe as a class)."""
    import datasets

    feature = ds.features[column]
    values = ds[column]
    if isinstance(feature, datasets.ClassLabel):
        return np.asarray(values, dtype=np.int64), list(feature.names)
    present = [v for v in values if v is not None]
    if present and all(isinstance(v, (int, np.integer, bool)) for v in present):
        return np.asarray([-1 if v is None else int(v) for v in values], dtype=np.int64), None
    if present and all(isinstance(v, float) and float(v).is_integer() for v in present):
        return np.asarray([-1 if v is None else int(v) for v in values], dtype=np.int64), None
    if not present or not all(isinstance(v, str) for v in present):
        raise ValueError(
            f"label column {column!r} ({feature}) is not categorical; pass "
            "label_column= naming a class column, or a column of strings/ints."
        )
    names = sorted(set(present))
    lookup = {n: i for i, n in enumerate(names)}
    return np.asarray([lookup.get(v, -1) for v in values], dtype=np.int64), names


# ----------------------------------------------------------------------------- selection


def subsample_indices(
    n: int, num_examples: int | None, seed: int = 0, labels: np.ndarray | None = None
) -> np.ndarray:
    """Sorted row indices ``(k,)``: all rows, or ``num_examples`` drawn with ``seed``.

    With ``labels (n,)`` the draw is stratified: each class gets its share of
    ``num_examples`` (largest remainders round), rows inside a class drawn at random.
    """
    if num_examples is None or num_examples >= n:
        return np.arange(n, dtype=np.int64)
    if num_examples < 1:
        raise ValueError(f"num_examples must be positive; got {num_examples}.")
    rng = np.random.default_rng(seed)
    if labels is None:
        return np.sort(rng.choice(n, size=num_examples, replace=False)).astype(np.int64)
    classes, inverse, counts = np.unique(labels, return_inverse=True, return_counts=True)
    quota = counts * num_examples / n
    take = np.floor(quota).astype(np.int64)
    extra = num_examples - int(take.sum())
    order = np.lexsort((np.arange(len(classes)), -(quota - take)))  # largest remainder first
    take[order[:extra]] += 1
    chosen = [rng.permutation(np.flatnonzero(inverse == c))[: take[c]] for c in range(len(classes))]
    return np.sort(np.concatenate(chosen)).astype(np.int64)


def _fingerprint(
    base: str, source: dict[str, Any], columns: dict[str, str | None], selection: dict[str, Any]
) -> str:
    record = {
        "base": base,
        "id": source.get("id"),
        "config": source.get("config"),
        "split": source.get("split"),
        "columns": columns,
        "selection": selection,
    }
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()[:32]


def load_data(
    dataset: str,
    *,
    split: str | None = None,
    config_name: str | None = None,
    text_column: str | None = None,
    image_column: str | None = None,
    label_column: str | None = None,
    num_examples: int | None = None,
    seed: int = 0,
    missing_labels: str = "error",
) -> DataBundle:
    """Load ``dataset`` (bundled, local or Hub), map columns and subsample.

    Columns are auto-detected when not given (image: an ``Image`` feature; text: a
    column named like ``text``/``review``/``sentence``, else the longest string column;
    label: a ``ClassLabel`` or a column named ``label``...). ``num_examples`` rows are
    drawn with ``seed`` (stratified when labels exist) and kept in original order.

    Rows without a label are an error (``missing_labels="error"``, the default: a
    ``ValueError`` before anything is embedded) or left out before the subset is drawn
    (``"drop"``; the count is recorded as ``source["selection"]["dropped_unlabelled"]``).
    """
    if missing_labels not in ("error", "drop"):
        raise ValueError(f"missing_labels must be 'error' or 'drop'; got {missing_labels!r}.")
    ds, source, base = _load_source(dataset, split, config_name)
    text, image, label = _resolve_columns(ds, text_column, image_column, label_column)
    labels_all, names = encode_labels(ds, label) if label else (None, None)
    n_total = len(ds)
    keep = np.arange(n_total)
    dropped = 0
    if labels_all is not None and (labels_all < 0).any():
        dropped = int((labels_all < 0).sum())
        if missing_labels == "error":
            raise ValueError(
                f"label column {label!r} of {dataset} has {dropped} of {n_total} rows without a "
                "label (None or -1); a missing label is never used as a class. Pass "
                "missing_labels='drop' (--missing-labels drop) to leave those rows out (the "
                "count is recorded), or label_column= another column."
            )
        keep = np.flatnonzero(labels_all >= 0)
    sub = subsample_indices(
        len(keep), num_examples, seed, None if labels_all is None else labels_all[keep]
    )
    idx = keep[sub]
    if len(idx) < n_total:
        ds = ds.select(idx.tolist())
    subset = len(idx) < len(keep)
    selection = {
        "num_examples": num_examples,
        "seed": seed if subset else None,
        "stratified": labels_all is not None and subset,
        "num_rows_total": n_total,
        "num_rows": len(idx),
        **({"dropped_unlabelled": dropped} if dropped else {}),
    }
    source = {**source, "selection": selection}
    columns = {"text": text, "image": image, "label": label}
    return DataBundle(
        dataset=ds,
        modality="image" if image else "text",
        text_column=text,
        image_column=image,
        label_column=label,
        labels=None if labels_all is None else labels_all[idx],
        label_names=names,
        fingerprint=_fingerprint(base, source, columns, selection),
        source=source,
        example_ids=idx,
    )
