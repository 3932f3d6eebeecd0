"""Errors come early and say what to do (issue 16, findings 12, 13, 14): checks before
any compute, clear library messages, and missing labels never used as a class."""

from __future__ import annotations

import csv
import warnings
from pathlib import Path

import numpy as np
import pytest

from tp_harness import cli, sample_tasks, task_prior_moments
from tp_harness.evaluation.config import Config
from tp_harness.evaluation.data import load_data
from tp_harness.evaluation.preflight import check_task_memory, task_bytes

pytestmark = pytest.mark.usefixtures("offline")

X = np.random.default_rng(0).normal(size=(6, 3))


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: task_prior_moments(X, X, 0.1, prior_kernel=None),
            ValueError,
            r"prior_kernel=None is not a known kernel; choose one of centered_cosine",
        ),
        (
            lambda: task_prior_moments(X, [X, X], 0.1, prior_weights=["a", "b"]),
            TypeError,
            r"prior_weights must be numbers \(one per kernel\); got \['a', 'b'\]",
        ),
        (
            lambda: task_prior_moments(X, X, 0.1, device="tpu"),
            ValueError,
            r"device='tpu' is not a torch device; use 'cpu', 'cuda' or 'cuda:N'",
        ),
        (
            lambda: sample_tasks(X, 4, 2, 0.1, seed=-1),
            ValueError,
            r"seed must be a non-negative integer",
        ),
    ],
)
def test_library_messages_name_the_argument(call, error: type, message: str) -> None:  # type: ignore[no-untyped-def]
    """Finding 13: raw torch errors and "'NoneType' object is not iterable"."""
    with pytest.raises(error, match=message):
        call()


def test_a_nested_list_prior_is_one_matrix_not_a_weighted_sum() -> None:
    """Finding 13: a nested Python list was read as a weighted sum ("prior[0] must be 2-D")."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        a = task_prior_moments(X, X.tolist(), 0.1)
        b = task_prior_moments(X, X, 0.1)
        c = task_prior_moments(X, [X.tolist(), X], 0.1)  # a list of matrices is a sum
        d = task_prior_moments(X, [X, X], 0.1)
    assert a.mean == b.mean and c.mean == d.mean


def _csv_with_missing(tmp_path: Path) -> Path:
    path = tmp_path / "partial.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["text", "label"])
        for i in range(30):
            w.writerow(
                [f"drug worked well {i}", "" if i % 10 == 3 else ("good" if i % 2 else "bad")]
            )
    return path


def test_missing_labels_are_an_error_or_dropped_never_a_class(tmp_path: Path) -> None:
    """Finding 14: missing labels became class -1 and the labels prior used it as a class."""
    path = _csv_with_missing(tmp_path)
    with pytest.raises(ValueError, match=r"3 of 30 rows without a label.*--missing-labels drop"):
        load_data(str(path), label_column="label")
    data = load_data(str(path), label_column="label", missing_labels="drop")
    assert len(data.example_ids) == 27 and data.labels is not None and data.labels.min() == 0
    assert 3 not in data.example_ids and 13 not in data.example_ids
    assert data.source["selection"]["dropped_unlabelled"] == 3
    sub = load_data(str(path), label_column="label", missing_labels="drop", num_examples=10)
    assert len(sub.example_ids) == 10 and (sub.labels >= 0).all()  # type: ignore[operator]


def test_task_memory_is_checked_before_compute() -> None:
    """Finding 12: `--num-tasks 100000000` failed only after all the compute."""
    cfg = Config(models=("a", "b"), priors=("labels",), num_tasks=100_000_000, num_classes=(2, 3))
    assert task_bytes(cfg, 1000, 2) == 2 * 100_000_000 * 1000 * 16
    with pytest.raises(ValueError, match=r"num_tasks=100000000 would hold ~2980\.2 GiB"):
        check_task_memory(cfg, 1000, memory=64 * 2**30)
    check_task_memory(cfg.replace(num_tasks=256), 1000, memory=64 * 2**30)


def _no_embedding(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("embedding started")

    monkeypatch.setattr("tp_harness.evaluation.representations.compute", refuse)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["--model", "tfidf-lsa:dim=8", "--dataset", "bundled:digits"],
            "model 'tfidf-lsa:dim=8' embeds text but dataset 'bundled:digits' holds image",
        ),
        (["--model", "tfidf-lsa:dim=8", "--num-tasks", "100000000000"], "--num-tasks"),
        (["--model", "tfidf-lsa:dim=8", "--push-to-hub", "org/" + "a" * 88], "at most 96"),
        (["--model", "tfidf-lsa:dim=8", "--push-to-hub", "not an id"], "ORG/NAME"),
    ],
)
def test_late_errors_now_come_before_any_embedding(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    args: list[str],
    message: str,
) -> None:
    """Finding 12: a text model on an image dataset failed after 81 s of embedding; a bad
    --push-to-hub id and a huge --num-tasks after all the compute."""
    _no_embedding(monkeypatch)
    monkeypatch.setenv("HF_TOKEN", "dummy")
    monkeypatch.delenv("HF_HUB_OFFLINE")
    code = cli.main(
        [
            "evaluate",
            *args,
            "--prior",
            "labels",
            "--output-dir",
            str(tmp_path / "o"),
            "--no-progress",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and message in err, err
    assert len(err.strip().splitlines()) == 1
