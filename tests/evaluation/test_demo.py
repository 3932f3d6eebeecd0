"""`tp-harness demo`: the prior's own representation is marked, not ranked."""

from __future__ import annotations

from tp_harness.evaluation.demo import run_demo


def test_demo_marks_the_prior_copy_and_ranks_the_rest() -> None:
    text = run_demo((0.1,))
    pixel_prior = text.split("Same models")[0]
    rows = [
        ln.split("|") for ln in pixel_prior.splitlines() if ln.startswith("| ") and "rank" not in ln
    ]
    by_model = {r[2].strip(): (r[1].strip(), r[-2].strip()) for r in rows}
    assert by_model["pixels"] == ("", "prior")
    assert sorted(rank for rank, _ in by_model.values() if rank) == ["1", "2", "3", "4", "5"]
    labels = text.split("Same models")[1]
    assert "| prior |" not in labels  # under the label prior, pixels is ranked
