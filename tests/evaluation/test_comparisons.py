"""Error bars and self-checks in every run: score and probe intervals, tied neighbours,
the sampled-task alignment and the rank agreement between priors."""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path

import numpy as np
import pytest

from tp_harness.core.kernels import build_kernel
from tp_harness.evaluation.comparisons import mark_ties
from tp_harness.evaluation.config import Config
from tp_harness.evaluation.data import load_data
from tp_harness.evaluation.pipeline import run
from tp_harness.publishing.report import ranked_tables, summary_markdown

pytestmark = pytest.mark.usefixtures("offline")


@pytest.fixture(scope="module")
def results(tmp_path_factory: pytest.TempPathFactory, topic_csv: Path):  # type: ignore[no-untyped-def]
    tmp = tmp_path_factory.mktemp("cmp")
    cfg = Config(
        models=("tfidf-lsa:dim=8", "tfidf-lsa:dim=4", "tfidf-lsa:dim=2"),
        priors=("tfidf-lsa:dim=6", "labels"),
        dataset=str(topic_csv),
        label_column="topic",
        temperatures=(0.5,),
        normalize="frobenius",
        temperature_scale="rms",
        num_tasks=10,
        num_classes=(2,),
        probes=("ridge",),
        min_class_fraction=0.0,
        output_dir=str(tmp / "out"),
        cache_dir=str(tmp / "cache"),
        bootstrap=50,
    )
    return cfg, run(cfg, progress=False)


def test_every_score_and_probe_carries_its_interval(results) -> None:  # type: ignore[no-untyped-def]
    _, res = results
    for s in res.scores:
        lo, hi = s["mean_per_pair_ci"]
        assert lo <= s["mean_per_pair"] <= hi and s["num_blocks"] == 18  # 90 rows: 18 blocks of 5
        slo, shi = s["std_ci"]
        assert slo <= s["std"] <= shi
        assert "_replicates" not in s and "replicates" not in s
    for p in res.probes:
        lo, hi = p["accuracy_mean_ci"]
        assert lo <= p["mean"] <= hi
        llo, lhi = p["label_accuracy_ci"]
        assert llo <= p["label_accuracy"] <= lhi


def test_ranked_neighbours_carry_a_paired_comparison(results) -> None:  # type: ignore[no-untyped-def]
    _, res = results
    ranked = sorted(
        (s for s in res.scores if s["prior"] == "labels" and not s["flags"]),
        key=lambda s: -s["mean_per_pair"],
    )
    for a, b in pairwise(ranked):
        vs = a["vs_next"]
        assert vs["model"] == b["model"]
        assert vs["difference"] == pytest.approx(a["mean_per_pair"] - b["mean_per_pair"])
        lo, hi = vs["difference_ci"]
        assert vs["tied"] == (lo <= 0 <= hi)
    assert ranked[-1].get("vs_next") is None
    table = ranked_tables(res.to_dict())
    assert "| ± |" in table and "vs next" in table and "jackknife" in table


def test_mark_ties_uses_the_paired_replicates() -> None:
    base = {"prior": "p", "temperature": 0.1, "flags": []}
    scores = [
        {**base, "model": "a", "mean_per_pair": 1.0, "_replicates": ([1.0, 1.1, 0.9], [0, 0, 0])},
        {**base, "model": "b", "mean_per_pair": 0.9, "_replicates": ([0.9, 1.0, 0.8], [0, 0, 0])},
        {**base, "model": "c", "mean_per_pair": 0.0, "_replicates": ([0.5, -0.5, 0.0], [0, 0, 0])},
    ]
    mark_ties(scores)
    assert scores[0]["vs_next"]["tied"] is False  # a - b is 0.1 in every replicate: no spread
    assert scores[1]["vs_next"]["model"] == "c" and "_replicates" not in scores[2]


def test_sampled_task_alignment_is_tr_mg_of_the_tasks(results, topic_csv: Path) -> None:  # type: ignore[no-untyped-def]
    from tp_harness.evaluation.features import tfidf_lsa

    _, res = results
    data = load_data(str(topic_csv), label_column="topic")
    x = tfidf_lsa(list(data.dataset["text"]), dim=8)
    m = build_kernel(x.astype(np.float64), normalize="frobenius").to_dense().numpy()
    ts = next(t for t in res.task_sets if t.prior == "labels")
    n = ts.tasks.shape[1]
    per_task = [(m * (t[:, None] == t[None, :])).sum() / n**2 for t in ts.tasks]
    (rec,) = [
        a for a in res.task_alignments if a["model"] == "tfidf-lsa:dim=8" and a["prior"] == "labels"
    ]
    assert rec["sampled_alignment_mean"] == pytest.approx(np.mean(per_task), rel=1e-6)
    assert rec["sampled_alignment_std"] == pytest.approx(np.std(per_task) * n, rel=1e-6)
    score = next(
        s for s in res.scores if s["model"] == "tfidf-lsa:dim=8" and s["prior"] == "labels"
    )
    assert rec["closed_form_mean"] == score["mean_per_pair"]
    assert rec["mean_ratio"] == pytest.approx(
        rec["sampled_alignment_mean"] / score["mean_per_pair"]
    )
    probe = next(
        p for p in res.probes if p["model"] == "tfidf-lsa:dim=8" and p["prior"] == "labels"
    )
    assert probe["sampled_alignment_mean"] == rec["sampled_alignment_mean"]


def test_prior_sensitivity_and_its_outputs(results, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from tp_harness.publishing.run_folder import write_outputs

    _, res = results
    (agree,) = res.prior_agreement
    assert {agree["prior_a"], agree["prior_b"]} == {"labels", "tfidf-lsa:dim=6"}
    assert set(agree["models"]) == {"tfidf-lsa:dim=8", "tfidf-lsa:dim=4", "tfidf-lsa:dim=2"}
    assert -1 <= agree["kendall_tau"] <= 1 and len(agree["kendall_tau_ci"]) == 2
    md = summary_markdown(res.to_dict())
    assert "## Prior sensitivity" in md and "## Closed form vs the sampled tasks" in md
    write_outputs(res, tmp_path / "run")
    figs = {p.name for p in (tmp_path / "run" / "figures").iterdir()}
    assert {"alignment_vs_probes.png", "prior_sensitivity.png"} <= figs
