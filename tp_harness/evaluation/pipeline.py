"""``run(config) -> Results``: embed, build priors, moments, sample, probe (writes nothing).

Every rank embeds its share and takes part in the moment tiles; sampling, probes and
baselines run on the main process only (they are cheap next to the O(n²) moments and
need no reduction). The moment reduction is the last collective: the other ranks return
then, so no rank ever waits in a collective while the main process works alone (which
would hit the process-group timeout on a long main stage). Writing the run folder and
pushing are the publishing floor's (:func:`tp_harness.publishing.write_outputs`,
:func:`tp_harness.publishing.push_run`), composed by the CLI.

Trust contracts (``docs/conventions.md``): each prior gets its own tasks, drawn from the
same kernel, normalisation and temperature as its closed form; every score record carries
``flags`` (degenerate, the prior's own kernel, a duplicate) and flagged records are left
out of the correlations, each of which lists the ``models`` it used.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..core.moments import PAIRS_CONVENTION, MomentResult, task_prior_moments
from ..core.stats import correlation_with_ci
from . import representations
from .aliases import alias_accuracies, distinct, find_aliases, with_aliases
from .comparisons import REPLICATES, mark_ties, prior_agreement, task_alignment_records
from .config import Config
from .distributed import DistContext, distributed_moment_sums, init_context
from .flags import flag_scores, rankable
from .preflight import preflight
from .priors import LABELS_PRIOR, SELF_PRIOR, Prior, resolve_priors
from .results import Results
from .tasks import num_probe_fits, run_probes, sample_task_sets, task_temperature_for


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


def compute_scores(
    config: Config,
    reps: representations.Representations,
    priors: list[Prior],
    ctx: DistContext,
    progress: bool,
) -> list[dict[str, Any]]:
    """Moments for every model x prior x temperature (tiles split over ranks)."""
    sums_fn = functools.partial(distributed_moment_sums, ctx)
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
                temperature_scale=config.temperature_scale,
                model_kernel=config.model_kernel,
                normalize=config.normalize,
                device=ctx.device,
                sums_fn=sums_fn,
                block_size=config.block_size,
                progress=bar.update,
            )
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
    """The JSON record of one score; the jackknife replicates ride along until
    :func:`~tp_harness.evaluation.comparisons.mark_ties` has used them."""
    d: dict[str, Any] = r.to_dict()
    d.pop("pairs")
    d[REPLICATES] = d.pop("replicates")
    for key in ("mean_per_pair_ci", "std_ci"):
        value = d[key]
        d[key] = None if value is None else list(value)
    return {"model": model, "prior": prior, **d}


def compute_baselines(
    reps: representations.Representations, labels: np.ndarray | None, prior: Prior | None
) -> list[dict[str, Any]]:
    # A baseline is None where it is undefined (degenerate features give NaN).
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
    """A baseline value, or None where it is undefined (degenerate or constant features)."""
    try:
        value = float(fn(*args))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


def compute_correlations(
    config: Config, scores: list[dict[str, Any]], probes: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    """Across unflagged models: closed-form mean/std vs probe accuracy mean/std on the tasks
    of the same prior (and temperature), and closed-form mean vs the probe's accuracy on the
    dataset's labels; bootstrap 95% CIs; each record lists its ``models``."""
    out = []
    for prior, t in sorted({(s["prior"], s["temperature"]) for s in scores}):
        score_by_model = {
            s["model"]: s
            for s in scores
            if s["prior"] == prior and s["temperature"] == t and rankable(s)
        }
        t_tasks = task_temperature_for(config, t)
        head = {"prior": prior, "temperature": t, "task_temperature": t_tasks}
        for probe in config.probes:
            mine = [
                p
                for p in probes
                if p["prior"] == prior and p["temperature"] == t_tasks and p["probe"] == probe
            ]
            for q in config.num_classes:
                pr = {p["model"]: p for p in mine if p["num_classes"] == q}
                for xk, yk in (("mean_per_pair", "mean"), ("std", "std")):
                    out.append(
                        _correlation(
                            config,
                            score_by_model,
                            pr,
                            xk,
                            yk,
                            {**head, "num_classes": q, "probe": probe, "y": f"accuracy_{yk}"},
                        )
                    )
            labelled = {p["model"]: p for p in mine if p.get("label_accuracy") is not None}
            if labelled:
                out.append(
                    _correlation(
                        config,
                        score_by_model,
                        labelled,
                        "mean_per_pair",
                        "label_accuracy",
                        {**head, "num_classes": None, "probe": probe, "y": "label_accuracy"},
                    )
                )
    return out


def _correlation(
    config: Config,
    scores: dict[str, dict[str, Any]],
    probes: dict[str, dict[str, Any]],
    xk: str,
    yk: str,
    meta: dict[str, Any],
) -> dict[str, Any]:
    models = [m for m in scores if m in probes]
    x = np.array([scores[m][xk] for m in models], dtype=np.float64)
    y = np.array([probes[m][yk] for m in models], dtype=np.float64)
    c = correlation_with_ci(x, y, num_bootstrap=config.bootstrap, seed=config.seed)
    return {**meta, "x": xk, "models": models, **c}


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


def run(
    config: Config,
    *,
    ctx: DistContext | None = None,
    progress: bool = True,
    encoders: Mapping[str, Any] | None = None,
) -> Results:
    """Run a suite end to end and return its :class:`Results` (nothing is written).

    ``encoders`` maps names to Python encoders (an object with ``encode(batch)``, a
    callable on a batch of rows, or an :class:`~tp_harness.evaluation.encoders.Encoder`):
    each is scored as a model under its name (after ``config.models``, or where
    ``config.models`` lists the name) and may be named as a prior.

    On the main process the results hold the tasks, probes and baselines; on the
    other ranks ``results.is_main`` is False and only the scores are filled.
    """
    from .encoders import as_encoders
    from .hub_access import timeout_set

    checked = as_encoders(encoders)
    if checked:
        models = (*config.models, *(n for n in checked if n not in config.models))
        config = config.replace(models=models)
    with timeout_set(config.hub_timeout):
        return _run(config, ctx, progress, checked)


def _run(
    config: Config, ctx: DistContext | None, progress: bool, encoders: dict[str, Any]
) -> Results:
    from .data import load_data

    ctx = ctx or init_context(config.device, config.dist_timeout)
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
            missing_labels=config.missing_labels,
        )
        preflight(config, data, encoders)
    with timer.stage("embed"):
        reps = representations.compute(
            config.models, data, config, ctx, progress=progress, encoders=encoders
        )
        extra = [
            p for p in config.priors if p not in (LABELS_PRIOR, SELF_PRIOR) and not reps.has(p)
        ]
        prior_reps = representations.compute(
            extra, data, config, ctx, progress=progress, known=reps, encoders=encoders
        )
    priors = resolve_priors(config, reps, prior_reps, data.labels)
    aliases = find_aliases(reps.arrays)  # exact copies: computed once, reported twice
    work = distinct(reps, aliases)
    with timer.stage("moments"):
        scores = with_aliases(compute_scores(config, work, priors, ctx, progress), aliases)
    with timer.stage("flags"):
        flag_scores(config, work, priors, scores, aliases)
        mark_ties(scores)
    results = Results(
        config=config.to_dict(),
        data=_data_record(data),
        models=reps.info + prior_reps.info,
        scores=scores,
        conventions=conventions(config),
        environment={"world_size": ctx.world_size, "device": str(ctx.device)},
    )
    if aliases:
        results.conventions["aliases"] = dict(aliases)
    if ctx.is_main:
        _main_process_stages(config, results, work, aliases, priors, data, ctx, timer, progress)
    results.timings = timer.seconds
    results.is_main = ctx.is_main
    return results


def _main_process_stages(
    config: Config,
    results: Results,
    reps: representations.Representations,
    aliases: dict[str, str],
    priors: list[Prior],
    data: Any,
    ctx: DistContext,
    timer: Timer,
    progress: bool,
) -> None:
    """Sampling, probes, sampled-task alignments and baselines on the distinct
    representations ``reps``; the ``aliases`` get copies of their originals' records."""
    degenerate = {s["model"] for s in results.scores if s.get("degenerate")}
    with timer.stage("sampling"):
        task_sets = sample_task_sets(config, priors, reps, ctx.device, skip=degenerate)
    results.task_sets = task_sets
    results.tasks = [dict(ts.info, prior=ts.label) for ts in task_sets]
    results.example_ids = np.asarray(data.example_ids)
    with timer.stage("probes"):
        bar = _progress_bar(ctx, progress, num_probe_fits(config, reps, task_sets), "probes")
        probes, acc = run_probes(config, reps, task_sets, data.labels, bar.update)
        bar.close()
    results.task_accuracies = alias_accuracies(acc, aliases)
    with timer.stage("task_alignment"):
        alignments = task_alignment_records(config, reps, task_sets, results.scores)
        _attach_alignments(probes, alignments)
    results.probes = with_aliases(probes, aliases)
    results.task_alignments = with_aliases(alignments, aliases)
    results.prior_agreement = prior_agreement(config, results.scores)
    with timer.stage("baselines"):
        results.baselines = with_aliases(compute_baselines(reps, data.labels, priors[0]), aliases)
    results.correlations = compute_correlations(config, results.scores, results.probes)


def _attach_alignments(probes: list[dict[str, Any]], alignments: list[dict[str, Any]]) -> None:
    """Copy each task set's sampled alignment mean/std into its probe records."""
    key = ("model", "prior", "temperature", "num_classes")
    by = {tuple(a[k] for k in key): a for a in alignments}
    for p in probes:
        a = by.get(tuple(p[k] for k in key), {})
        p["sampled_alignment_mean"] = a.get("sampled_alignment_mean")
        p["sampled_alignment_std"] = a.get("sampled_alignment_std")


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


__all__ = [
    "LABELS_PRIOR",
    "SELF_PRIOR",
    "Prior",
    "compute_correlations",
    "compute_scores",
    "resolve_priors",
    "run",
]
