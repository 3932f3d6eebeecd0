"""``run(config) -> Results``: embed, build priors, moments, sample, probe (writes nothing).

Every rank embeds its share and takes part in the moment tiles; sampling, probes and
baselines run on the main process only (they are cheap next to the O(n²) moments and
need no reduction), then all ranks meet at a barrier. Writing the run folder and
pushing are the publishing floor's (:func:`tp_harness.publishing.write_outputs`,
:func:`tp_harness.publishing.push_run`), composed by the CLI.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.moments import PAIRS_CONVENTION, MomentResult, task_prior_moments
from ..core.stats import correlation_with_ci
from . import representations
from .config import Config
from .distributed import DistContext, distributed_moment_sums, init_context
from .results import Results

LABELS_PRIOR = "labels"
SELF_PRIOR = "self"


@dataclass
class Prior:
    """A resolved prior: ``inputs`` and ``kernel`` as :func:`task_prior_moments` takes them."""

    name: str
    inputs: Any
    kernel: str | list[str]
    weights: list[float] | None = None
    per_model: bool = False  # "self": each model is its own prior


@dataclass
class Timer:
    """Wall-clock seconds per stage."""

    seconds: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = round(self.seconds.get(name, 0.0) + time.perf_counter() - t0, 3)


def _progress_bar(ctx: DistContext, enabled: bool, total: int, desc: str) -> Any:
    from tqdm.auto import tqdm

    return tqdm(total=total, desc=desc, disable=not (enabled and ctx.is_main), leave=False)


def resolve_priors(
    config: Config,
    reps: representations.Representations,
    prior_reps: representations.Representations,
    labels: np.ndarray | None,
) -> list[Prior]:
    """Turn ``config.priors`` into :class:`Prior` objects (a weighted sum when weights are set)."""
    entries = list(config.priors) or [SELF_PRIOR]
    priors = []
    for entry in entries:
        if entry == LABELS_PRIOR:
            if labels is None:
                raise ValueError(
                    "prior 'labels' needs a dataset with a label column; "
                    "pass --label-column or choose another prior."
                )
            priors.append(Prior(LABELS_PRIOR, labels, "label_graph"))
        elif entry == SELF_PRIOR:
            priors.append(Prior(SELF_PRIOR, None, config.prior_kernel, per_model=True))
        else:
            name, x = prior_reps.lookup(entry, fallback=reps)
            priors.append(Prior(name, x, config.prior_kernel))
    if config.prior_weights is None:
        return priors
    if any(p.per_model for p in priors):
        raise ValueError("prior 'self' cannot be part of a weighted sum (--prior-weights).")
    w = list(config.prior_weights)
    name = " + ".join(f"{wi:g}*{p.name}" for wi, p in zip(w, priors, strict=True))
    return [Prior(name, [p.inputs for p in priors], [str(p.kernel) for p in priors], w)]


def compute_scores(
    config: Config,
    reps: representations.Representations,
    priors: list[Prior],
    ctx: DistContext,
    progress: bool,
) -> list[dict[str, Any]]:
    """Moments for every model x prior x temperature (tiles split over ranks)."""
    sums_fn = functools.partial(distributed_moment_sums, ctx)
    common = dict(
        model_kernel=config.model_kernel,
        normalize=config.normalize,
        device=ctx.device,
        sums_fn=sums_fn,
        block_size=config.block_size,
    )
    records = []
    for prior in priors:
        groups = (
            [({name: x}, x) for name, x in reps.arrays.items()]
            if prior.per_model
            else [(reps.arrays, prior.inputs)]
        )
        for models, prior_inputs in groups:
            n = len(next(iter(models.values())))
            bar = _progress_bar(
                ctx, progress, _num_tiles(n, config.block_size, ctx), f"moments [{prior.name}]"
            )
            out = task_prior_moments(
                models,
                prior_inputs,
                list(config.temperatures),
                prior_kernel=prior.kernel,
                prior_weights=prior.weights,
                progress=bar.update,
                **common,
            )  # type: ignore[arg-type]
            bar.close()
            assert isinstance(out, dict)
            for name, by_t in out.items():
                records += [_score_record(name, prior.name, r) for r in by_t.values()]
    return records


def _num_tiles(n: int, block_size: int | None, ctx: DistContext) -> int:
    from ..core.moments import default_block_size

    b = -(-n // (block_size or default_block_size(ctx.device)))
    return -(-(b * (b + 1) // 2) // ctx.world_size)


def _score_record(model: str, prior: str, r: MomentResult) -> dict[str, Any]:
    d = r.to_dict()
    d.pop("pairs")
    return {"model": model, "prior": prior, **d}


def sample_all_tasks(
    config: Config, prior: Prior, reps: representations.Representations, ctx: DistContext
) -> dict[int, tuple[Any, dict[str, Any]]]:
    """Tasks for each class count from the first prior: {q: (tasks (S, n), info)}."""
    from ..core.sampling import sample_tasks_with_info

    inputs = prior.inputs
    kernel = prior.kernel
    if prior.per_model:  # "self" first: sample from the first model's kernel
        inputs = next(iter(reps.arrays.values()))
    out = {}
    for q in config.num_classes:
        out[q] = sample_tasks_with_info(
            inputs,
            config.num_tasks,
            q,
            config.sampler_temperature,
            seed=config.seed,
            prior_kernel=kernel,
            prior_weights=prior.weights,
            gibbs_sweeps=config.gibbs_sweeps,
            min_class_fraction=config.min_class_fraction,
            device=ctx.device,
        )
    return out


def run_probes(
    config: Config,
    reps: representations.Representations,
    tasks: dict[int, tuple[Any, dict[str, Any]]],
    progress: Callable[[int], None] | None = None,
) -> tuple[list[dict[str, Any]], dict[tuple[str, int, str], np.ndarray]]:
    """Probe every model on every task set: summary records and per-task accuracies."""
    from ..core.probes import probe_tasks

    records, accuracies = [], {}
    for name, x in reps.arrays.items():
        for q, (t, _) in tasks.items():
            for probe in config.probes:
                res = probe_tasks(
                    x,
                    t,
                    probe=probe,
                    alpha=config.probe_alpha,
                    k=config.knn_k,
                    test_fraction=config.test_fraction,
                    seed=config.seed,
                )
                acc = np.asarray(res.accuracy, dtype=np.float64)
                accuracies[(name, q, probe)] = acc
                records.append(
                    {
                        "model": name,
                        "num_classes": q,
                        "probe": probe,
                        **res.summary(),
                        "task_accuracies": acc.round(6).tolist(),
                    }
                )
                if progress is not None:
                    progress(1)
    return records, accuracies


def compute_baselines(
    reps: representations.Representations, labels: np.ndarray | None, prior: Prior | None
) -> list[dict[str, Any]]:
    """RankMe, alpha-ReQ, kernel-target alignment with labels, linear CKA with the prior."""
    from ..core import baselines as bl

    rows = []
    prior_x = (
        prior.inputs
        if prior is not None
        and not prior.per_model
        and prior.weights is None
        and prior.kernel != "label_graph"
        else None
    )
    for name, x in reps.arrays.items():
        row: dict[str, Any] = {
            "model": name,
            "rankme": _safe(bl.rankme, x),
            "alpha_req": _safe(bl.alpha_req, x),
        }
        if labels is not None:
            row["kernel_target_alignment"] = _safe(bl.kernel_target_alignment, x, labels)
        if prior_x is not None:
            row["linear_cka_prior"] = _safe(bl.linear_cka, x, prior_x)
        rows.append(row)
    return rows


def _safe(fn: Callable[..., float], *args: Any) -> float | None:
    """A baseline value, or None where it is undefined (e.g. constant features)."""
    try:
        return float(fn(*args))
    except ValueError:
        return None


def compute_correlations(
    config: Config, scores: list[dict[str, Any]], probes: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Across models: closed-form mean/std vs probe accuracy mean/std, bootstrap 95% CIs."""
    out = []
    pairs = [("mean_per_pair", "mean"), ("std", "std")]
    for prior, t in sorted({(s["prior"], s["temperature"]) for s in scores}):
        score_by_model = {
            s["model"]: s for s in scores if s["prior"] == prior and s["temperature"] == t
        }
        for q in config.num_classes:
            for probe in config.probes:
                pr = {
                    p["model"]: p for p in probes if p["num_classes"] == q and p["probe"] == probe
                }
                models = [m for m in score_by_model if m in pr]
                for xk, yk in pairs:
                    x = np.array([score_by_model[m][xk] for m in models])
                    y = np.array([pr[m][yk] for m in models])
                    c = correlation_with_ci(x, y, num_bootstrap=config.bootstrap, seed=config.seed)
                    out.append(
                        {
                            "prior": prior,
                            "temperature": t,
                            "num_classes": q,
                            "probe": probe,
                            "x": xk,
                            "y": f"accuracy_{yk}",
                            **c,
                        }
                    )
    return out


def conventions(config: Config) -> dict[str, Any]:
    """What the numbers mean (copied into results.json)."""
    return {
        "pairs": PAIRS_CONVENTION,
        "per_pair": "mean/n², variance/n²",
        "model_kernel": config.model_kernel,
        "prior_kernel": config.prior_kernel,
        "normalize": config.normalize,
        "accumulation": "float64",
        "sampler": "prefix sampler (Algorithm 1), fresh random order per task"
        + (f", then {config.gibbs_sweeps} Gibbs sweeps" if config.gibbs_sweeps else ""),
        "probe_split": f"one shared train/test split, test_fraction={config.test_fraction}",
    }


def run(config: Config, *, ctx: DistContext | None = None, progress: bool = True) -> Results:
    """Run a suite end to end and return its :class:`Results` (nothing is written).

    On the main process the results hold the tasks, probes and baselines; on the
    other ranks ``results.is_main`` is False and only the scores are filled.
    """
    from .data import load_data

    ctx = ctx or init_context(config.device)
    timer = Timer()
    with timer.stage("data"):
        data = load_data(
            config.dataset,
            split=config.split,
            config_name=config.dataset_config,
            text_column=config.text_column,
            image_column=config.image_column,
            label_column=config.label_column,
            num_examples=config.num_examples,
            seed=config.seed,
        )
    with timer.stage("embed"):
        reps = representations.compute(config.models, data, config, ctx, progress=progress)
        extra = [
            p for p in config.priors if p not in (LABELS_PRIOR, SELF_PRIOR) and not reps.has(p)
        ]
        prior_reps = representations.compute(
            extra, data, config, ctx, progress=progress, known=reps
        )
    priors = resolve_priors(config, reps, prior_reps, data.labels)
    with timer.stage("moments"):
        scores = compute_scores(config, reps, priors, ctx, progress)
    results = Results(
        config=config.to_dict(),
        data=_data_record(data),
        models=reps.info + prior_reps.info,
        scores=scores,
        conventions=conventions(config),
        environment={"world_size": ctx.world_size, "device": str(ctx.device)},
    )
    if ctx.is_main:
        _main_process_stages(config, results, reps, priors, data, ctx, timer, progress)
    results.timings = timer.seconds
    results.is_main = ctx.is_main
    ctx.barrier()
    return results


def _main_process_stages(
    config: Config,
    results: Results,
    reps: representations.Representations,
    priors: list[Prior],
    data: Any,
    ctx: DistContext,
    timer: Timer,
    progress: bool,
) -> None:
    with timer.stage("sampling"):
        tasks = sample_all_tasks(config, priors[0], reps, ctx)
    results.tasks = [dict(info, prior=priors[0].name) for _, info in tasks.values()]
    results.task_arrays = {q: t.cpu().numpy() for q, (t, _) in tasks.items()}
    results.example_ids = np.asarray(data.example_ids)
    with timer.stage("probes"):
        total = len(reps.arrays) * len(tasks) * len(config.probes)
        bar = _progress_bar(ctx, progress, total, "probes")
        results.probes, acc = run_probes(config, reps, tasks, bar.update)
        bar.close()
    results.task_accuracies = acc
    with timer.stage("baselines"):
        results.baselines = compute_baselines(reps, data.labels, priors[0])
    results.correlations = compute_correlations(config, results.scores, results.probes)


def _data_record(data: Any) -> dict[str, Any]:
    labels = data.labels
    return {
        "dataset": data.source.get("id", ""),
        "source": data.source,
        "fingerprint": data.fingerprint,
        "n": len(data.example_ids),
        "modality": data.modality,
        "text_column": data.text_column,
        "image_column": data.image_column,
        "label_column": data.label_column,
        "num_labels": None if labels is None else len(np.unique(labels)),
    }


__all__ = ["Prior", "compute_correlations", "compute_scores", "resolve_priors", "run"]
