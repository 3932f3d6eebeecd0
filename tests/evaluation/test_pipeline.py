"""The harness end to end on a tiny BERT and a synthetic text csv (offline)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.launch import ACCELERATE_TWO
from tp_harness import task_prior_moments
from tp_harness.evaluation.config import Config, load_config
from tp_harness.evaluation.pipeline import run
from tp_harness.evaluation.results import Results
from tp_harness.publishing.run_folder import write_outputs

pytestmark = pytest.mark.usefixtures("offline")


def _config(tmp_path: Path, model_dir: Path, data: Path, **kw: object) -> Config:
    values = dict(
        models=(str(model_dir), f"{model_dir}:layers=all,pooling=mean", "tfidf-lsa:dim=8"),
        priors=(f"{model_dir}:pooling=mean",),
        dataset=str(data),
        label_column="topic",
        temperatures=(0.1, 1.0),
        num_tasks=12,
        num_classes=(2, 3),
        probes=("ridge", "knn"),
        knn_k=5,
        output_dir=str(tmp_path / "out"),
        cache_dir=str(tmp_path / "cache"),
        bootstrap=50,
        block_size=32,
        task_temperature=0.5,
    )
    values.update(kw)
    return Config(**values)  # type: ignore[arg-type]


def test_run_writes_nothing_and_the_run_folder_has_every_output(
    tmp_path: Path, tiny_bert_dir: Path, topic_csv: Path
) -> None:
    cfg = _config(tmp_path, tiny_bert_dir, topic_csv)
    res = run(cfg, progress=False)
    out = Path(cfg.output_dir)
    assert not out.exists()  # run() computes; the publishing floor writes
    write_outputs(res, out)
    doc = json.loads((out / "results.json").read_text())
    local = json.loads((out / "local.json").read_text())  # the local paths stay local
    assert doc["schema_version"] == "1.1" and local["config"]["models"] == list(cfg.models)
    assert doc["config"]["models"][0] == "<tmp>/" + os.path.relpath(cfg.models[0], "/tmp")
    assert doc["data"]["n"] == 90 and doc["environment"]["world_size"] == 1
    names = {s["model"] for s in doc["scores"]}
    layers = {n for n in names if "@layer" in n}
    assert len(layers) == 3  # tiny BERT: embeddings + 2 layers
    assert len(doc["scores"]) == len(names) * 2  # one prior x two temperatures
    for key in (
        "model",
        "prior",
        "temperature",
        "mean",
        "variance",
        "std",
        "mean_per_pair",
        "variance_per_pair",
        "n",
    ):
        assert key in doc["scores"][0]
    assert all(m.get("revision") for m in doc["models"])
    assert {p["num_classes"] for p in doc["probes"]} == {2, 3}
    # every probe names the prior and temperature of its tasks and has real-label accuracy
    prior = doc["scores"][0]["prior"]
    assert {(p["prior"], p["temperature"]) for p in doc["probes"]} == {(prior, 0.5)}
    assert all(0.0 <= p["label_accuracy"] <= 1.0 for p in doc["probes"])
    # the prior's own representation and its duplicate are flagged, not correlated
    flags = {s["model"]: s["flags"] for s in doc["scores"]}
    assert "prior" in flags[prior]
    assert flags[f"{prior}@layer2"] == ["prior", f"duplicate_of:{prior}"]
    assert flags["tfidf-lsa:dim=8"] == [] and flags[f"{prior}@layer0"] == []
    for c in doc["correlations"]:
        assert c["models"] and not set(c["models"]) & {prior, f"{prior}@layer2"}
    assert {c["x"] for c in doc["correlations"]} == {"mean_per_pair", "std"}
    assert doc["versions"]["torch"] and doc["timings"]["moments"] >= 0
    assert (out / "summary.md").read_text().startswith("# tp-harness run")
    for fig in ("mean_vs_std.png", "accuracy_q2_ridge.png", "accuracy_q3_knn.png", "layers.png"):
        assert (out / "figures" / fig).stat().st_size > 1000
    assert not list(out.glob(".*tmp*"))  # nothing half-written left behind
    # tasks dataset round trip
    import datasets

    ds = datasets.load_from_disk(str(out / "tasks"))
    cols = {"example_id", "task_id", "label", "num_classes", "prior", "temperature"}
    assert cols <= set(ds.column_names)
    assert len(ds) == 90 * 12 * 2  # one prior x task_temperature 0.5 x q in (2, 3)
    settings = json.loads(ds.info.description)["sampler"]
    assert [s["num_classes"] for s in settings] == [2, 3]
    assert settings[0]["temperature"] == 0.5 and settings[0]["seed"] == cfg.seed
    assert settings[0]["prior"] == prior and settings[0]["normalize"] is None
    t3 = np.array(ds.filter(lambda r: r["num_classes"] == 3)["label"]).reshape(12, 90)
    (ts3,) = [ts for ts in res.task_sets if ts.num_classes == 3]
    np.testing.assert_array_equal(t3, ts3.tasks)


def test_scores_equal_direct_engine_call(
    tmp_path: Path, tiny_bert_dir: Path, topic_csv: Path
) -> None:
    cfg = _config(
        tmp_path,
        tiny_bert_dir,
        topic_csv,
        models=("tfidf-lsa:dim=8",),
        priors=("labels",),
        probes=("ridge",),
        num_classes=(2,),
    )
    res = run(cfg, progress=False)
    from tp_harness.evaluation.data import load_data
    from tp_harness.evaluation.features import tfidf_lsa

    data = load_data(str(topic_csv), label_column="topic")
    x = tfidf_lsa(list(data.dataset["text"]), dim=8)
    direct = task_prior_moments(x, data.labels, [0.1, 1.0], prior_kernel="label_graph")
    assert isinstance(direct, dict)
    for s in res.scores:
        ref = direct["model"][s["temperature"]]
        assert s["prior"] == "labels"
        assert s["mean"] == pytest.approx(ref.mean, rel=1e-9)
        assert s["variance"] == pytest.approx(ref.variance, rel=1e-9)


def test_second_run_does_not_run_the_model(
    tmp_path: Path, tiny_bert_dir: Path, topic_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tp_harness.evaluation.embed.encode as encode

    calls = {"n": 0}
    original = encode.embed_rows

    def counting(*args: object, **kwargs: object) -> object:
        calls["n"] += 1
        return original(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(encode, "embed_rows", counting)
    cfg = _config(tmp_path, tiny_bert_dir, topic_csv, probes=("ridge",), num_classes=(2,))
    run(cfg, progress=False)
    first = calls["n"]
    assert first > 0
    run(cfg.replace(temperatures=[0.05], num_tasks=5, priors=["labels"]), progress=False)
    assert calls["n"] == first


def test_bad_prior_and_columns(tmp_path: Path, tiny_bert_dir: Path, topic_csv: Path) -> None:
    with pytest.raises(ValueError, match="topicz"):
        run(_config(tmp_path, tiny_bert_dir, topic_csv, label_column="topicz"), progress=False)
    cfg = _config(
        tmp_path,
        tiny_bert_dir,
        topic_csv,
        label_column=None,
        text_column="text",
        priors=("labels",),
    )
    with pytest.raises(ValueError, match="label"):
        run(cfg.replace(dataset=str(topic_csv)), progress=False)


def test_every_suite_loads() -> None:
    suites = sorted((Path(__file__).parents[2] / "tasks").glob("*.yaml"))
    assert len(suites) >= 3
    for path in suites:
        cfg = load_config(str(path))
        assert cfg.models and cfg.temperatures and cfg.output_dir


def test_two_processes_match_one(tmp_path: Path, tiny_bert_dir: Path, topic_csv: Path) -> None:
    """``accelerate launch --multi_gpu --num_processes 2`` on CPU gives the 1-process scores."""
    args = [
        "evaluate",
        "--model",
        str(tiny_bert_dir),
        "--model",
        "tfidf-lsa:dim=8",
        "--prior",
        f"{tiny_bert_dir}:pooling=mean",
        "--dataset",
        str(topic_csv),
        "--label-column",
        "topic",
        "--temperature",
        "0.1",
        "--temperature",
        "1.0",
        "--num-tasks",
        "8",
        "--probe",
        "ridge",
        "--block-size",
        "16",
        "--no-progress",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    outs = {}
    for procs in (1, 2):
        out = tmp_path / f"p{procs}"
        launch = [*ACCELERATE_TWO, "-m"] if procs == 2 else [sys.executable, "-m"]
        cmd = [
            *launch,
            "tp_harness",
            *args,
            "--output-dir",
            str(out),
            "--cache-dir",
            str(tmp_path / f"cache{procs}"),
        ]
        proc = subprocess.run(
            cmd, env=env, capture_output=True, text=True, timeout=600, check=False
        )
        assert proc.returncode == 0, proc.stderr[-3000:]
        outs[procs] = Results.load(out)
    assert outs[2].environment["world_size"] == 2
    one, two = outs[1].scores, outs[2].scores
    assert [s["model"] for s in one] == [s["model"] for s in two] and len(one) == 4
    for a, b in zip(one, two, strict=True):
        assert b["mean"] == pytest.approx(a["mean"], rel=1e-5)
        assert b["variance"] == pytest.approx(a["variance"], rel=1e-5)
        # every rank's block sums are reduced: the jackknife intervals match too
        assert b["mean_per_pair_ci"] == pytest.approx(a["mean_per_pair_ci"], rel=1e-5)
        assert b["std_ci"] == pytest.approx(a["std_ci"], rel=1e-5)
    assert outs[2].probes == outs[1].probes


def test_weighted_and_self_priors(tmp_path: Path, tiny_bert_dir: Path, topic_csv: Path) -> None:
    """``--prior A --prior B --prior-weights`` is one summed prior; ``self`` scores each model."""
    cfg = _config(
        tmp_path,
        tiny_bert_dir,
        topic_csv,
        models=("tfidf-lsa:dim=8",),
        priors=(f"{tiny_bert_dir}:pooling=mean", "labels"),
        prior_weights=(0.7, 0.3),
        probes=("ridge",),
        num_classes=(2,),
        temperatures=(0.5,),
    )
    res = run(cfg, progress=False)
    assert len(res.scores) == 1 and res.scores[0]["prior"].startswith("0.7*")
    from tp_harness.evaluation.data import load_data
    from tp_harness.evaluation.features import tfidf_lsa

    data = load_data(str(topic_csv), label_column="topic")
    x = tfidf_lsa(list(data.dataset["text"]), dim=8)
    from tp_harness.evaluation.embed import embed, parse_model_spec

    bert = embed(parse_model_spec(f"{tiny_bert_dir}:pooling=mean"), data)
    summed = task_prior_moments(
        x,
        [next(iter(bert.values())), data.labels],
        0.5,
        prior_kernel=["centered_cosine", "label_graph"],
        prior_weights=[0.7, 0.3],
    )
    assert res.scores[0]["mean"] == pytest.approx(summed.mean, rel=1e-5)  # type: ignore[union-attr]
    assert res.scores[0]["variance"] == pytest.approx(summed.variance, rel=1e-5)  # type: ignore[union-attr]
    selfres = run(cfg.replace(priors=["self"], prior_weights=None), progress=False)
    direct = task_prior_moments(x, x, 0.5)
    assert selfres.scores[0]["prior"] == "self"
    assert selfres.scores[0]["mean"] == pytest.approx(direct.mean, rel=1e-6)  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="self"):
        run(cfg.replace(priors=["self", "labels"], prior_weights=[0.5, 0.5]), progress=False)
