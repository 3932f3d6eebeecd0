"""The ``evaluate`` metric ``metrics/task_prior``: loads offline, equals the library exactly."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tp_harness import MomentResult, task_prior_moments

METRIC_DIR = Path(__file__).resolve().parents[1] / "metrics" / "task_prior"

pytestmark = pytest.mark.usefixtures("offline")

METRIC = str(Path(__file__).resolve().parents[1] / "metrics" / "task_prior")
FIELDS = ("mean", "variance", "std", "mean_per_pair", "variance_per_pair", "n", "temperature")


def _load(tmp_path: Path, config: str | None = None, **kwargs: object):
    import evaluate

    return evaluate.load(METRIC, config, cache_dir=str(tmp_path / "metric-cache"), **kwargs)


def _data(seed: int, n: int = 61, d: int = 7, r: int = 5, dtype: str = "float32"):
    """Asymmetric, non-degenerate features: different widths, scales and offsets."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, d)) * rng.uniform(0.2, 3.0, size=d) + rng.normal(size=d)
    p = rng.normal(size=(n, r)) + 0.5
    return x.astype(dtype), p.astype(dtype)


def _expected(x: np.ndarray, p: np.ndarray, t: float, **kw: Any) -> dict[str, object]:
    res = task_prior_moments(x, p, t, **kw)
    assert isinstance(res, MomentResult)
    return {k: getattr(res, k) for k in FIELDS}


def test_loads_by_the_documented_relative_path(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import evaluate

    monkeypatch.chdir(Path(METRIC).parents[1])
    metric = evaluate.load("metrics/task_prior", cache_dir=str(tmp_path))
    assert metric.name == "task_prior" and "Patel" in metric.citation


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_compute_equals_library(tmp_path: Path, seed: int) -> None:
    metric = _load(tmp_path)
    x, p = _data(seed)
    assert metric.compute(predictions=x, references=p, temperature=0.3) == _expected(x, p, 0.3)


def test_add_batch_equals_one_call(tmp_path: Path) -> None:
    import torch

    metric = _load(tmp_path)
    x, p = _data(3)
    one = metric.compute(
        predictions=x,
        references=p,
        temperature=0.7,
        model_kernel="cosine",
        prior_kernel="linear",
        normalize="frobenius",
    )
    for a, b in ((0, 1), (1, 18), (18, 40), (40, 61)):  # uneven batches, mixed input types
        preds = torch.from_numpy(x[a:b]) if a else x[a:b].tolist()
        metric.add_batch(predictions=preds, references=p[a:b])
    batched = metric.compute(
        temperature=0.7, model_kernel="cosine", prior_kernel="linear", normalize="frobenius"
    )
    assert (
        batched
        == one
        == _expected(x, p, 0.7, model_kernel="cosine", prior_kernel="linear", normalize="frobenius")
    )
    for i in range(len(x)):
        metric.add(prediction=x[i], reference=p[i])
    assert (
        metric.compute(
            temperature=0.7, model_kernel="cosine", prior_kernel="linear", normalize="frobenius"
        )
        == one
    )


def test_default_temperature_is_the_harness_default(tmp_path: Path) -> None:
    from tp_harness.evaluation.config import Config

    x, p = _data(10)
    (t,) = Config().temperatures
    assert _load(tmp_path).compute(predictions=x, references=p) == _expected(x, p, t)


def test_several_temperatures_give_lists(tmp_path: Path) -> None:
    metric = _load(tmp_path)
    x, p = _data(4)
    out = metric.compute(predictions=x, references=p, temperature=[0.1, 1.0, 10.0])
    assert out["temperature"] == [0.1, 1.0, 10.0] and out["n"] == len(x)
    for i, t in enumerate((0.1, 1.0, 10.0)):
        exp = _expected(x, p, t)
        assert all(out[k][i] == exp[k] for k in FIELDS if k != "n")


def test_class_ids_as_references(tmp_path: Path) -> None:
    metric = _load(tmp_path)
    x, _ = _data(5)
    y = np.random.default_rng(5).integers(0, 4, size=len(x))
    out = metric.compute(predictions=x, references=y, temperature=0.5, prior_kernel="label_graph")
    assert out == _expected(x, y, 0.5, prior_kernel="label_graph")


def test_integer_references_need_the_label_graph(tmp_path: Path) -> None:
    """Issue 17: 1-D integer references without prior_kernel='label_graph' returned a
    meaningless number (the library refuses the same call)."""
    metric = _load(tmp_path)
    x, _ = _data(5)
    y = np.random.default_rng(5).integers(0, 4, size=len(x))
    with pytest.raises(ValueError, match=r"one integer per example.*prior_kernel='label_graph'"):
        metric.compute(predictions=x, references=y, temperature=0.5)


def test_float64_config_keeps_float64(tmp_path: Path) -> None:
    metric = _load(tmp_path, "float64")
    x, p = _data(6, dtype="float64")
    assert metric.compute(predictions=x, references=p, temperature=0.2) == _expected(x, p, 0.2)


def test_monte_carlo_reports_standard_errors(tmp_path: Path) -> None:
    metric = _load(tmp_path)
    x, p = _data(7)
    out = metric.compute(
        predictions=x, references=p, temperature=1.0, method="monte_carlo", num_pairs=2000, seed=0
    )
    res = task_prior_moments(x, p, 1.0, method="monte_carlo", num_pairs=2000, seed=0)
    assert isinstance(res, MomentResult)
    assert (out["mean"], out["mean_stderr"], out["variance_stderr"]) == (
        res.mean,
        res.mean_stderr,
        res.variance_stderr,
    )


def test_two_processes_equal_one(tmp_path: Path) -> None:
    """evaluate's multi-process mode: two workers share a cache dir; process 0 gets the result."""
    x, p = _data(8)
    workers = [
        _load(tmp_path, num_process=2, process_id=i, experiment_id="two-proc", timeout=60)
        for i in range(2)
    ]
    shards = (slice(0, 25), slice(25, None))
    out: dict[int, object] = {}

    def work(i: int) -> None:
        workers[i].add_batch(predictions=x[shards[i]], references=p[shards[i]])
        out[i] = workers[i].compute(temperature=0.4)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert out[1] is None
    assert out[0] == _expected(x, p, 0.4)


def test_errors_are_clear(tmp_path: Path) -> None:
    import evaluate

    metric = _load(tmp_path)
    x, p = _data(9)
    with pytest.raises(ValueError, match="temperature"):
        metric.compute(predictions=x, references=p, temperature=-1.0)
    with pytest.raises(ValueError, match="not supported by the metric"):
        metric.compute(predictions=x, references=p, temperature=1.0, prior_kernel="precomputed")
    with pytest.raises(ValueError, match="same length"):
        metric.add_batch(predictions=[[1.0, 2.0], [3.0]], references=[[1.0], [2.0]])
    with pytest.raises(ValueError, match="Mismatch"):
        metric.add_batch(predictions=x[:3], references=p[:2])
    with pytest.raises(ValueError, match="unknown config"):
        evaluate.load(METRIC, "float16")


def test_the_metric_app_runs_with_the_installed_gradio(tmp_path: Path) -> None:
    """Issue 17: `python metrics/task_prior/app.py` crashed (`gradio.inputs`, gradio 3 API).
    Our Blocks app builds, serves HTTP 200 and computes the library's numbers."""
    import importlib.util
    import socket
    import urllib.request

    pytest.importorskip("gradio")
    spec = importlib.util.spec_from_file_location("metric_app", METRIC_DIR / "app.py")
    assert spec is not None and spec.loader is not None
    app_mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(app_mod)
    metric = _load(tmp_path)
    x, p = _data(9)
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "p.npy", p)
    out = app_mod.compute(
        metric,
        str(tmp_path / "x.npy"),
        str(tmp_path / "p.npy"),
        0.3,
        "centered_cosine",
        "centered_cosine",
    )
    assert out == _expected(x, p, 0.3)
    y = np.arange(len(x)) % 3
    np.save(tmp_path / "y.npy", y)
    out = app_mod.compute(
        metric,
        str(tmp_path / "x.npy"),
        str(tmp_path / "y.npy"),
        0.3,
        "centered_cosine",
        "centered_cosine",
    )
    assert out == _expected(x, y, 0.3, prior_kernel="label_graph")
    assert "error" in app_mod.compute(metric, None, None, 0.1, "cosine", "cosine")
    app = app_mod.build_app(metric)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    app.launch(server_name="127.0.0.1", server_port=port, prevent_thread_lock=True, quiet=True)
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as resp:
            assert resp.status == 200 and b"task_prior" in resp.read()
    finally:
        app.close()
