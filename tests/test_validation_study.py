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
    reps = {f"toy@layer{k}": (prior * (k + 1) / 4 + rng.normal(size=(n, 8)) * (4 - k))
            .astype(np.float32) for k in range(4)}
    reps["tfidf-toy"] = rng.normal(size=(n, 5)).astype(np.float32)
    return reps, prior, labels


def test_family_and_subsets(vs):
    assert vs.family("all-MiniLM-L6-v2@layer3") == "MiniLM"
    assert vs.family("SmolLM2-last@layer0") == "SmolLM2-last"
    assert vs.family("rp4(MiniLM)") == "random projection"
    assert vs.family("tfidf-lsa16") == "TF-IDF/LSA"
    names = ["all-MiniLM-L6-v2@layer6", "SmolLM2-mean@layer3", "rp4(MiniLM)"]
    assert vs.subset_names(names, "without prior's layer", "all-MiniLM-L6-v2@layer6") == \
        names[1:]
    assert vs.subset_names(names, "SmolLM2 layers", "x") == ["SmolLM2-mean@layer3"]
    with pytest.raises(ValueError, match="unknown subset"):
        vs.subset_names(names, "nope", "x")


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
    s = vs.StudySettings(temperatures=(0.05, 0.5), num_classes=(2,), num_tasks=12,
                         label_splits=2, label_temperatures=(0.5,), bootstrap=20,
                         prior_layer="toy@layer3")
    res = vs.run_study(reps, prior, labels, s, log=lambda m: None)
    json.dumps(res)  # JSON-ready
    assert res["n"] == 48 and len(res["representations"]) == 5
    assert set(res["probes"]) == {"T=0.05,q=2", "T=0.5,q=2"}
    acc = res["probes"]["T=0.05,q=2"]["toy@layer3"]
    assert 0.0 <= acc["mean"] <= 1.0 and acc["var"] == pytest.approx(acc["std"] ** 2)
    rows = [r for r in res["correlations"] if r["subset"] == "all"
            and r["x"] == "closed_form_mean_per_pair"]
    assert {(r["normalize"], r["task_temperature"]) for r in rows} == \
        {(nm, t) for nm in ("none", "frobenius") for t in (0.05, 0.5)}
    for r in rows:
        assert -1 <= r["pearson"] <= 1 and len(r["pearson_ci"]) == 2
    # the strongest copy of the prior scores higher than pure noise, in closed form and probes
    cf = res["closed_form"]["none"]
    assert cf["toy@layer3"]["T=0.05"]["mean_per_pair"] > cf["tfidf-toy"]["T=0.05"]["mean_per_pair"]
    assert res["probes"]["T=0.05,q=2"]["toy@layer3"]["mean"] > \
        res["probes"]["T=0.05,q=2"]["tfidf-toy"]["mean"]
    lab = res["labels"]
    assert lab["class_counts"] == [16, 16, 16]
    assert lab["frobenius_norm"] == pytest.approx(math.sqrt(3 * 16**2))
    assert any(r["x"] == "kernel_target_alignment" for r in lab["correlations"])
    assert "| none |" in vs.summary_table(res)

    figs = vs.write_figures(res, tmp_path)
    assert len(figs) == 5 and all(Path(f).stat().st_size > 0 for f in figs)


def test_balanced_accuracy(vs):
    assert vs.balanced_accuracy(np.array([0, 0, 1]), np.array([0, 1, 1])) == pytest.approx(0.75)
