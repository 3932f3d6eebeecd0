"""Hand-built run records for the leaderboard tests (a helper module, not a test module)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

from tp_harness.evaluation.results import Results

# expected alignment per pair for prior "labels" at T=0.1 (other groups are scaled copies)
ALIGN = {
    "mini@layer0": 0.010,
    "mini@layer1": 0.030,
    "mini@layer2": 0.020,
    "vit": 0.025,
    "tfidf": 0.005,
}
RANKED = ["mini@layer1", "vit", "mini@layer2", "mini@layer0", "tfidf"]  # by ALIGN, descending
N = 100


def make_results(
    models: dict[str, float] | None = None,
    dataset: str = "toy",
    priors: tuple[str, ...] = ("labels", "mini@layer2"),
    temperatures: tuple[float, ...] = (0.1, 1.0),
) -> dict[str, Any]:
    """A results dict like ``tp-harness evaluate`` writes, with a 3-layer text model,
    an image model and a classic model; scores scale with prior and temperature."""
    models = ALIGN if models is None else models
    scores, probes, baselines = [], [], []
    for i, (name, a) in enumerate(models.items()):
        for j, prior in enumerate(priors):
            for t in temperatures:
                mean_pp = a * (1 + j) / (1 + t)
                var_pp = 0.001 * (i + 1)
                scores.append(
                    {
                        "model": name,
                        "prior": prior,
                        "temperature": t,
                        "n": N,
                        "mean": mean_pp * N * N,
                        "variance": var_pp * N * N,
                        "std": math.sqrt(var_pp * N * N),
                        "mean_per_pair": mean_pp,
                        "variance_per_pair": var_pp,
                        "model_kernel": "centered_cosine",
                        "prior_kernel": "centered_cosine",
                        "normalize": None,
                    }
                )
        for probe, q, acc in (("ridge", 2, 0.6 + 10 * a), ("knn", 3, 0.4 + 5 * a)):
            probes.append(
                {
                    "model": name,
                    "num_classes": q,
                    "probe": probe,
                    "mean": acc,
                    "std": 0.05,
                    "p5": acc - 0.1,
                    "min": acc - 0.15,
                    "gain_over_majority": acc - 0.5,
                    "num_tasks": 16,
                }
            )
        baselines.append(
            {
                "model": name,
                "rankme": 10.0 + i,
                "alpha_req": 1.0,
                "kernel_target_alignment": 0.1,
                "linear_cka_prior": 0.2,
            }
        )
    model_recs: list[dict[str, Any]] = [
        {
            "name": "mini",
            "model_id": "org/mini",
            "revision": "abc123",
            "kind": "text",
            "pooling": "mean",
            "layers": [0, 1, 2],
            "modality": "text",
            "outputs": ["mini", "mini@layer0", "mini@layer1", "mini@layer2"],
        },
        {
            "name": "vit",
            "model_id": "org/vit",
            "revision": "def456",
            "kind": "image",
            "pooling": "cls",
            "outputs": ["vit"],
            "modality": "image",
        },
        {
            "name": "tfidf",
            "model_id": "tfidf",
            "revision": "n/a",
            "kind": "classic",
            "pooling": "n/a",
        },
    ]
    return Results(
        config={"dataset": dataset, "models": list(models)},
        data={"dataset": dataset, "n": N, "modality": "text"},
        models=model_recs,
        scores=scores,
        probes=probes,
        baselines=baselines,
    ).to_dict()


def write_run(folder: Path, **kw: Any) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "results.json").write_text(json.dumps(make_results(**kw)))
    return folder
