"""Trust contracts of a run: one prior, one task distribution; flags; honest correlations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tp_harness.core.kernels import build_kernels
from tp_harness.core.sampling import sample_tasks
from tp_harness.evaluation.config import Config
from tp_harness.evaluation.data import load_data
from tp_harness.evaluation.flags import flag_scores
from tp_harness.evaluation.pipeline import compute_correlations, run
from tp_harness.evaluation.priors import Prior
from tp_harness.evaluation.representations import Representations
from tp_harness.publishing.report import ranked_tables, summary_markdown

pytestmark = pytest.mark.usefixtures("offline")


def _cfg(tmp_path: Path, data: Path, **kw: object) -> Config:
    values: dict[str, object] = dict(
        models=("tfidf-lsa:dim=8", "tfidf-lsa:dim=4"),
        priors=("tfidf-lsa:dim=6", "labels"),
        dataset=str(data),
        label_column="topic",
        temperatures=(0.2, 2.0),
        normalize="frobenius",
        temperature_scale="rms",
        num_tasks=6,
        num_classes=(2,),
        probes=("ridge",),
        output_dir=str(tmp_path / "out"),
        cache_dir=str(tmp_path / "cache"),
        bootstrap=20,
    )
    values.update(kw)
    return Config(**values)  # type: ignore[arg-type]


def test_each_prior_and_temperature_gets_the_tasks_of_its_closed_form(
    tmp_path: Path, topic_csv: Path
) -> None:
    from tp_harness.evaluation.features import tfidf_lsa

    cfg = _cfg(tmp_path, topic_csv)
    res = run(cfg, progress=False)
    keys = {(ts.prior, ts.temperature) for ts in res.task_sets}
    assert keys == {(p, t) for p in ("tfidf-lsa:dim=6", "labels") for t in (0.2, 2.0)}
    data = load_data(str(topic_csv), label_column="topic")
    prior_x = tfidf_lsa(list(data.dataset["text"]), dim=6)
    inputs = {
        "tfidf-lsa:dim=6": (prior_x, "centered_cosine"),
        "labels": (data.labels, "label_graph"),
    }
    for ts in res.task_sets:
        x, kernel = inputs[ts.prior]
        k = build_kernels(x, kernel, normalize="frobenius")
        want = sample_tasks(
            k,
            6,
            2,
            ts.temperature,
            seed=cfg.seed,
            temperature_scale="rms",
            min_class_fraction=cfg.min_class_fraction,
        )
        np.testing.assert_array_equal(ts.tasks, want.numpy())
        assert ts.info["effective_temperature"] == pytest.approx(
            ts.temperature * k.frobenius_norm() / k.n
        )
    # scores record the given and the effective temperature; probes name their tasks
    for s in res.scores:
        assert s["temperature_scale"] == "rms" and s["effective_temperature"] > 0
    assert {(p["prior"], p["temperature"]) for p in res.probes} == keys
    # each correlation pairs a (prior, T) group with the probes on that group's tasks
    for c in res.correlations:
        assert c["task_temperature"] == c["temperature"]
        assert c["models"] == ["tfidf-lsa:dim=8", "tfidf-lsa:dim=4"]


def test_task_temperature_only_when_set(tmp_path: Path, topic_csv: Path) -> None:
    res = run(_cfg(tmp_path, topic_csv, task_temperature=0.7, priors=("labels",)), progress=False)
    assert {ts.temperature for ts in res.task_sets} == {0.7}
    assert {c["task_temperature"] for c in res.correlations} == {0.7}


def test_self_prior_gives_each_model_its_own_tasks(tmp_path: Path, topic_csv: Path) -> None:
    from tp_harness.evaluation.features import tfidf_lsa

    cfg = _cfg(tmp_path, topic_csv, priors=("self",), temperatures=(0.5,))
    res = run(cfg, progress=False)
    assert sorted(ts.model for ts in res.task_sets) == ["tfidf-lsa:dim=4", "tfidf-lsa:dim=8"]
    data = load_data(str(topic_csv), label_column="topic")
    for ts in res.task_sets:
        x = tfidf_lsa(list(data.dataset["text"]), dim=int(str(ts.model).rsplit("=", 1)[1]))
        want = sample_tasks(
            build_kernels(x, "centered_cosine", normalize="frobenius"),
            6,
            2,
            0.5,
            seed=cfg.seed,
            temperature_scale="rms",
            min_class_fraction=cfg.min_class_fraction,
        )
        np.testing.assert_array_equal(ts.tasks, want.numpy())
    # each model is probed on its own tasks only
    assert sorted(p["model"] for p in res.probes) == ["tfidf-lsa:dim=4", "tfidf-lsa:dim=8"]
    assert {ts.label for ts in res.task_sets} == {"self:tfidf-lsa:dim=4", "self:tfidf-lsa:dim=8"}


def _reps(arrays: dict[str, np.ndarray]) -> Representations:
    return Representations(arrays=arrays, by_entry={k: k for k in arrays})


def test_flags_prior_copy_duplicate_and_degenerate() -> None:
    rng = np.random.default_rng(0)
    good, prior = rng.normal(size=(40, 6)), rng.normal(size=(40, 5))
    arrays = {
        "good": good,
        "good-rotated": good @ np.linalg.qr(rng.normal(size=(6, 6)))[0],  # same kernel
        "prior-copy": prior * 3.0,  # the prior's kernel (scale does not matter)
        "const": np.tile(rng.normal(size=6), (40, 1)),
        "other": rng.normal(size=(40, 4)),
    }
    cfg = Config(models=tuple(arrays), priors=("p",), normalize="frobenius")
    priors = [Prior("p", prior, "centered_cosine")]
    scores = [
        {"model": m, "prior": "p", "temperature": 0.1, "degenerate": m == "const"} for m in arrays
    ]
    flag_scores(cfg, _reps(arrays), priors, scores)
    flags = {s["model"]: s["flags"] for s in scores}
    assert flags == {
        "good": [],
        "good-rotated": ["duplicate_of:good"],
        "prior-copy": ["prior"],
        "const": ["degenerate"],
        "other": [],
    }
    # self priors flag no model as "the prior"
    self_scores = [{"model": "good", "prior": "self", "temperature": 0.1}]
    flag_scores(
        cfg,
        _reps({"good": good}),
        [Prior("self", None, "centered_cosine", per_model=True)],
        self_scores,
    )
    assert self_scores[0]["flags"] == []


def test_flagged_rows_are_unranked_and_left_out_of_correlations() -> None:
    cfg = Config(models=("a", "b", "c", "d"), probes=("ridge",), num_classes=(2,), bootstrap=20)
    scores = [
        {
            "model": m,
            "prior": "p",
            "temperature": 0.1,
            "mean_per_pair": v,
            "std": 1.0,
            "n": 10,
            "flags": f,
        }
        for m, v, f in (("a", 0.3, []), ("b", 0.1, []), ("c", 0.9, ["prior"]), ("d", 0.2, []))
    ]
    probes = [
        {
            "model": m,
            "prior": "p",
            "temperature": 0.1,
            "num_classes": 2,
            "probe": "ridge",
            "mean": acc,
            "std": 0.1,
            "label_accuracy": None,
        }
        for m, acc in (("a", 0.9), ("b", 0.6), ("c", 0.99), ("d", 0.7))
    ]
    (corr, _) = compute_correlations(cfg, scores, probes)
    assert corr["models"] == ["a", "b", "d"] and corr["n"] == 3
    assert corr["pearson"] == pytest.approx(np.corrcoef([0.3, 0.1, 0.2], [0.9, 0.6, 0.7])[0, 1])
    table = ranked_tables({"scores": scores, "probes": probes, "config": {}})
    lines = [ln for ln in table.splitlines() if ln.startswith("| ") and "rank" not in ln]
    assert [ln.split("|")[1].strip() for ln in lines] == ["1", "2", "3", ""]
    assert lines[-1].split("|")[2].strip() == "c" and "prior" in lines[-1]
    assert "ridge acc (q=2)" in table and "flags" in table


def test_summary_states_each_prior_kernel_and_both_temperatures(
    tmp_path: Path, topic_csv: Path
) -> None:
    res = run(_cfg(tmp_path, topic_csv), progress=False)
    md = summary_markdown(res.to_dict())
    assert "`labels` (kernel `label_graph`)" in md
    assert "`tfidf-lsa:dim=6` (kernel `centered_cosine`)" in md
    assert "normalize `frobenius`" in md and "rms scale" in md
    eff = [s["effective_temperature"] for s in res.scores if s["temperature"] == 0.2]
    assert f"effective {eff[0]:.4g}" in md
    assert "ridge acc (q=2)" in md and "ridge label acc" in md


def test_an_exact_copy_is_computed_once_and_reported_as_its_alias(
    tmp_path: Path, topic_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tp_harness.evaluation import pipeline
    from tp_harness.evaluation.aliases import find_aliases

    data = load_data(str(topic_csv), label_column="topic")
    x = np.random.default_rng(0).normal(size=(len(data.example_ids), 6)).astype(np.float32)
    np.save(tmp_path / "a.npy", x)
    np.save(tmp_path / "b.npy", x)  # the same array under another name: an alias
    np.save(tmp_path / "twice.npy", 2 * x)  # the same kernel, not the same probes
    np.save(tmp_path / "c.npy", x[::-1].copy())
    seen: list[list[str]] = []
    real = pipeline.task_prior_moments

    def spy(models: dict[str, object], *args: object, **kw: object) -> object:
        seen.append(list(models))
        return real(models, *args, **kw)

    monkeypatch.setattr(pipeline, "task_prior_moments", spy)
    files = tuple(f"file:{tmp_path / f}.npy" for f in ("a", "b", "twice", "c"))
    res = run(_cfg(tmp_path, topic_csv, models=files), progress=False)
    assert all("b" not in names for names in seen) and any("a" in names for names in seen)
    assert res.conventions["aliases"] == {"b": "a"}
    for kind in ("scores", "probes", "task_alignments", "baselines"):
        recs = getattr(res, kind)
        by = {
            (r["model"], *(r.get(k) for k in ("prior", "temperature", "num_classes"))): r
            for r in recs
        }
        copies = [r for r in recs if r["model"] == "b"]
        assert copies, kind
        for r in copies:
            orig = by[("a", *(r.get(k) for k in ("prior", "temperature", "num_classes")))]
            assert r["alias_of"] == "a"
            same = {
                k: v for k, v in r.items() if k not in ("model", "alias_of", "flags", "vs_next")
            }
            assert same == {k: orig[k] for k in same}, kind
    flags = {(s["model"], s["prior"]): s["flags"] for s in res.scores}
    assert all(flags[("b", p)] == ["duplicate_of:a"] for p in res.config["priors"])
    assert all(flags[("twice", p)] == ["duplicate_of:a"] for p in res.config["priors"])
    assert {k[0] for k in res.task_accuracies} == {"a", "b", "twice", "c"}
    # only exact copies are aliases: a rescaled or reordered array is not
    assert find_aliases({"a": x, "b": x.copy(), "twice": 2 * x, "f64": x.astype(np.float64)}) == {
        "b": "a"
    }


def test_baseline_features_are_cached_like_embeddings(
    tmp_path: Path, topic_csv: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tp_harness.evaluation import features, representations

    calls: list[str] = []
    real = features.classic_features

    def spy(spec: str, *args: object, **kw: object) -> object:
        calls.append(spec)
        return real(spec, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(representations, "classic_features", spy)
    cfg = _cfg(tmp_path, topic_csv)
    first = run(cfg, progress=False)
    assert sorted(calls) == ["tfidf-lsa:dim=4", "tfidf-lsa:dim=6", "tfidf-lsa:dim=8"]
    again = run(cfg, progress=False)
    assert len(calls) == 3  # a warm run reads them from the cache
    assert [s["mean"] for s in again.scores] == [s["mean"] for s in first.scores]
    run(cfg.replace(num_examples=30), progress=False)  # another selection: another entry
    assert len(calls) == 6
