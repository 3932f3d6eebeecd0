"""Smoke test of benchmarks/validation_study.py on tiny synthetic data (no models)."""

from __future__ import annotations

import importlib.util
import json
import math
import sys
from pathlib import Path

import numpy as np
import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "validation_study.py"


@pytest.fixture(scope="module")
def vs():
    spec = importlib.util.spec_from_file_location("validation_study", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    sys.modules["validation_study"] = mod
    spec.loader.exec_module(mod)
    return mod


def _synthetic(n: int = 48, seed: int = 0):
    """Prior with 3 clusters; representations that keep more or less of it."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(3), n // 3)
    centers = rng.normal(size=(3, 8)) * 3
    prior = (centers[labels] + rng.normal(size=(n, 8))).astype(np.float32)
    reps = {
        f"toy@layer{k}": (prior * (k + 1) / 4 + rng.normal(size=(n, 8)) * (4 - k)).astype(
            np.float32
        )
        for k in range(4)
    }
    reps["tfidf-toy"] = rng.normal(size=(n, 5)).astype(np.float32)
    return reps, prior, labels


def test_family_and_subsets(vs):
    assert vs.family("all-MiniLM-L6-v2@layer3") == "MiniLM"
    assert vs.family("SmolLM2-last@layer0") == "SmolLM2-last"
    assert vs.family("rp4(MiniLM)") == "random projection"
    assert vs.family("tfidf-lsa16") == "TF-IDF/LSA"
    names = ["all-MiniLM-L6-v2@layer6", "SmolLM2-mean@layer3", "rp4(MiniLM)"]
    assert vs.subset_names(names, "all") == names
    assert vs.subset_names(names, "SmolLM2 layers") == ["SmolLM2-mean@layer3"]
    with pytest.raises(ValueError, match="unknown subset"):
        vs.subset_names(names, "nope")


def test_study_flags_follow_the_harness_hygiene(vs):
    rng = np.random.default_rng(0)
    prior = rng.normal(size=(30, 4)).astype(np.float32)
    reps = {
        "copy": prior * 2,
        "const": np.tile(rng.normal(size=3), (30, 1)).astype(np.float32),
        "a": rng.normal(size=(30, 5)).astype(np.float32),
        "a-again": None,
    }
    reps["a-again"] = reps["a"] * 5
    assert vs.study_flags(reps, prior) == {
        "copy": ["prior"],
        "const": ["degenerate"],
        "a-again": ["duplicate_of:a"],
    }
    assert vs.study_flags(reps, None) == {"const": ["degenerate"], "a-again": ["duplicate_of:a"]}


def test_select_layers_and_projections(vs):
    arrays = {f"m@layer{k}": np.ones((4, 3), np.float32) for k in range(3)}
    assert list(vs.select_layers(arrays, "m", [2, 0, 9])) == ["m@layer2", "m@layer0"]
    reps = vs.add_projections({}, {"m": np.eye(4, 6, dtype=np.float32)}, [("m", 2), ("m", 3)], 0)
    assert {k: v.shape for k, v in reps.items()} == {"rp2(m)": (4, 2), "rp3(m)": (4, 3)}


def test_frobenius_pairing_gives_same_prior(vs):
    """K/||K||_F at T/||K||_F is the same prior: the moments of a model only rescale."""
    reps, prior, _ = _synthetic()
    norm = vs.frobenius_norm(prior)
    x = reps["toy@layer2"]
    z = x / np.linalg.norm(x, axis=1, keepdims=True)
    z -= z.mean(0)
    m_norm = np.linalg.norm(z @ z.T)
    a = vs.closed_form({"m": x}, prior, [0.1], normalize=None)["m"][0.1]
    b = vs.closed_form({"m": x}, prior, [0.1 / norm], normalize="frobenius")["m"][0.1 / norm]
    assert b["mean_per_pair"] == pytest.approx(a["mean_per_pair"] / m_norm, rel=1e-6)
    assert b["std_per_n"] == pytest.approx(a["std_per_n"] / m_norm, rel=1e-6)


def test_run_study_and_figures(vs, tmp_path):
    reps, prior, labels = _synthetic()
    s = vs.StudySettings(
        temperatures=(0.05, 0.5),
        num_classes=(2,),
        num_tasks=12,
        label_splits=1,
        label_temperatures=(0.5,),
        bootstrap=20,
        probe_alphas=(1.0, 100.0),
        prior_layer="toy@layer3",
    )
    reps["copy"] = prior * 2.0  # the prior's own kernel: flagged and left out
    res = vs.run_study(reps, prior, labels, s, log=lambda m: None)
    json.dumps(res)  # JSON-ready
    assert res["n"] == 48 and len(res["representations"]) == 6
    assert res["flags"] == {"copy": ["prior"]}
    rows_with_models = [r for r in res["correlations"] if "models" in r]
    assert rows_with_models and all("copy" not in r["models"] for r in rows_with_models)
    assert set(res["probes"]) == {"ridge_tuned", "ridge_raw", "knn"}
    assert set(res["probes"]["knn"]) == {"T=0.05,q=2", "T=0.5,q=2"}
    acc = res["probes"]["ridge_tuned"]["T=0.05,q=2"]["toy@layer3"]
    assert 0.0 <= acc["mean"] <= 1.0 and acc["var"] == pytest.approx(acc["std"] ** 2)
    assert acc["alpha"] in s.probe_alphas
    rows = [
        r
        for r in res["correlations"]
        if r["subset"] == "all"
        and r["x"] == "closed_form_mean_per_pair"
        and r["probe"] == "ridge_tuned"
    ]
    assert {(r["normalize"], r["task_temperature"]) for r in rows} == {
        (nm, t) for nm in ("none", "frobenius") for t in (0.05, 0.5)
    }
    for r in rows:
        assert -1 <= r["pearson"] <= 1 and len(r["pearson_ci"]) == 2
    # the strongest copy of the prior scores higher than pure noise, in closed form and probes
    assert res["variants"] == [
        "centered_cosine",
        "centered_cosine+frobenius",
        "projection",
        "projection+frobenius",
    ]
    cf = res["closed_form"]["centered_cosine"]
    assert cf["toy@layer3"]["T=0.05"]["mean_per_pair"] > cf["tfidf-toy"]["T=0.05"]["mean_per_pair"]
    pr = res["probes"]["ridge_tuned"]["T=0.05,q=2"]
    assert pr["toy@layer3"]["mean"] > pr["tfidf-toy"]["mean"]
    lab = res["labels"]
    assert lab["class_counts"] == [16, 16, 16]
    assert lab["frobenius_norm"] == pytest.approx(math.sqrt(3 * 16**2))
    # labels prior + Frobenius: the closed-form mean is an affine map of kernel-target
    # alignment (centered M sums to 0), so both rank the models identically
    kta = next(
        r
        for r in lab["correlations"]
        if r["x"] == "kernel_target_alignment" and r["probe"] == "ridge_tuned"
    )
    frob = next(
        r
        for r in lab["correlations"]
        if r["variant"] == "centered_cosine+frobenius"
        and r["probe"] == "ridge_tuned"
        and r["y"] == "label_accuracy_mean"
        and r["subset"] == "all"
    )
    assert frob["pearson"] == pytest.approx(kta["pearson"], abs=1e-6)
    assert "| centered_cosine+frobenius |" in vs.summary_table(res)

    figs = vs.write_figures(res, tmp_path)
    assert len(figs) == 6 and all(Path(f).stat().st_size > 0 for f in figs)


def test_balanced_accuracy(vs):
    assert vs.balanced_accuracy(np.array([0, 0, 1]), np.array([0, 1, 1])) == pytest.approx(0.75)


def test_run_probe_tuned_ignores_feature_scale(vs):
    """Standardised + tuned ridge gives the same accuracy whatever the column scales."""
    reps, _, labels = _synthetic()
    s = vs.StudySettings(probe_alphas=(0.1, 10.0, 1000.0))
    x = reps["toy@layer2"]
    scaled = x * np.array([1e3] + [1.0] * (x.shape[1] - 1), dtype=np.float32)
    a, alpha_a = vs.run_probe(x, labels, "ridge_tuned", s, seed=0)
    b, alpha_b = vs.run_probe(scaled, labels, "ridge_tuned", s, seed=0)
    assert alpha_a == alpha_b and a.accuracy[0] == pytest.approx(b.accuracy[0])
    assert vs.run_probe(x, labels, "ridge_raw", s, seed=0)[1] == s.raw_alpha
    assert vs.run_probe(x, labels, "knn", s, seed=0)[1] is None
    with pytest.raises(ValueError, match="unknown probe"):
        vs.run_probe(x, labels, "svm", s, seed=0)
    z = vs.standardize(np.c_[x, np.ones(len(x))])
    assert np.allclose(z[:, -1], 0) and np.allclose(z[:, 0].std(), 1, atol=1e-5)


def test_ridge_path_matches_library_ridge(vs):
    """The alpha path equals tp_harness.core.probes' ridge (itself checked against sklearn)."""
    from tp_harness.core.probes import probe_tasks, train_test_indices

    reps, _, labels = _synthetic()
    x = reps["toy@layer1"]
    rng = np.random.default_rng(1)
    tasks = np.stack([labels, rng.integers(0, 3, size=len(labels))])
    train, test = (i.numpy() for i in train_test_indices(len(x), 0.25, 0))
    path = vs.ridge_path_accuracy(x[train], tasks[:, train], x[test], tasks[:, test], [0.5, 50.0])
    for i, alpha in enumerate([0.5, 50.0]):
        ref = probe_tasks(x, tasks, probe="ridge", alpha=alpha, test_fraction=0.25, seed=0)
        np.testing.assert_allclose(path[i], ref.accuracy)
