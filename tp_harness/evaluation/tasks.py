"""Sampled tasks and probes: each prior gets its own tasks, from exactly the kernel,
normalisation and temperature of the closed form they are compared with.

By default the tasks of a (prior, temperature) pair are drawn at that temperature, read in
the run's ``temperature_scale`` on the run's normalised prior kernel; a user-set
``task_temperature`` replaces every temperature for sampling. The ``self`` prior gives
each model tasks from its own kernel, probed by that model only.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from ..core.kernels import Kernel
from . import representations
from .config import Config
from .priors import Prior
from .results import TaskSet


def task_temperatures(config: Config) -> tuple[float, ...]:
    """The temperatures tasks are drawn at: ``(task_temperature,)`` or all temperatures."""
    if config.task_temperature is not None:
        return (config.task_temperature,)
    return tuple(config.temperatures)


def task_temperature_for(config: Config, temperature: float) -> float:
    """The temperature of the tasks that scores at ``temperature`` are compared with."""
    return config.task_temperature if config.task_temperature is not None else temperature


def _prior_kernels(
    config: Config, prior: Prior, reps: representations.Representations
) -> Iterator[tuple[str | None, Kernel]]:
    """(model or None, prior kernel) for each kernel the tasks come from."""
    if prior.per_model:
        for name, x in reps.arrays.items():
            yield name, prior.build(config, x)
    else:
        yield None, prior.build(config)


def sample_task_sets(
    config: Config,
    priors: list[Prior],
    reps: representations.Representations,
    device: Any,
    skip: set[str] | None = None,
) -> list[TaskSet]:
    """Every :class:`TaskSet` of the run: prior x task temperature x q (x model for ``self``).

    ``skip`` names models whose ``self`` tasks are not drawn (degenerate kernels).
    """
    from ..core.sampling import sample_tasks_with_info

    out = []
    for prior in priors:
        for model, kernel in _prior_kernels(config, prior, reps):
            if model is not None and model in (skip or set()):
                continue
            for t in task_temperatures(config):
                for q in config.num_classes:
                    tasks, info = sample_tasks_with_info(
                        kernel,
                        config.num_tasks,
                        q,
                        t,
                        seed=config.seed,
                        temperature_scale=config.temperature_scale,
                        gibbs_sweeps=config.gibbs_sweeps,
                        min_class_fraction=config.min_class_fraction,
                        device=device,
                    )
                    info.update(prior=prior.name, normalize=config.normalize, model=model)
                    out.append(TaskSet(prior.name, t, q, tasks.cpu().numpy(), info, model))
    return out


def label_accuracy(
    config: Config, x: np.ndarray, labels: np.ndarray | None, probe: str
) -> tuple[float | None, list[float] | None]:
    """Held-out accuracy of ``probe`` on the true labels (same split policy) and its 95%
    bootstrap CI over the test examples; ``(None, None)`` without usable labels."""
    from ..core.probes import probe_tasks
    from ..core.stats import bootstrap_mean_ci

    if labels is None or len(np.unique(labels)) < 2 or bool((labels < 0).any()):
        return None, None
    res = probe_tasks(
        x,
        np.asarray(labels, dtype=np.int64)[None, :],
        probe=probe,
        alpha=config.probe_alpha,
        k=config.knn_k,
        test_fraction=config.test_fraction,
        seed=config.seed,
    )
    y = np.asarray(labels, dtype=np.int64)[np.asarray(res.test_indices)]
    correct = (np.asarray(res.predictions[0]) == y).astype(np.float64)
    ci = bootstrap_mean_ci(correct, num_bootstrap=config.bootstrap, seed=config.seed)
    return float(res.accuracy[0]), ci


def run_probes(
    config: Config,
    reps: representations.Representations,
    task_sets: list[TaskSet],
    labels: np.ndarray | None,
    progress: Callable[[int], None] | None = None,
) -> tuple[list[dict[str, Any]], dict[tuple[str, str, float, int, str], np.ndarray]]:
    """Probe every model on every task set it owns: summary records, per-task accuracies.

    Each record names the ``prior`` and ``temperature`` of its tasks and carries the same
    probe's ``label_accuracy`` on the dataset's labels (None without labels).
    """
    from ..core.probes import probe_tasks
    from ..core.stats import bootstrap_mean_ci

    records, accuracies = [], {}
    for name, x in reps.arrays.items():
        label_acc = {p: label_accuracy(config, x, labels, p) for p in config.probes}
        for ts in task_sets:
            if ts.model not in (None, name):
                continue
            for probe in config.probes:
                res = probe_tasks(
                    x,
                    ts.tasks,
                    probe=probe,
                    alpha=config.probe_alpha,
                    k=config.knn_k,
                    test_fraction=config.test_fraction,
                    seed=config.seed,
                )
                acc = np.asarray(res.accuracy, dtype=np.float64)
                accuracies[(name, ts.prior, ts.temperature, ts.num_classes, probe)] = acc
                records.append(
                    {
                        "model": name,
                        "prior": ts.prior,
                        "temperature": ts.temperature,
                        "num_classes": ts.num_classes,
                        "probe": probe,
                        **res.summary(),
                        "accuracy_mean_ci": bootstrap_mean_ci(
                            acc, num_bootstrap=config.bootstrap, seed=config.seed
                        ),
                        "label_accuracy": label_acc[probe][0],
                        "label_accuracy_ci": label_acc[probe][1],
                        "task_accuracies": acc.round(6).tolist(),
                    }
                )
                if progress is not None:
                    progress(1)
    return records, accuracies


def num_probe_fits(
    config: Config, reps: representations.Representations, task_sets: list[TaskSet]
) -> int:
    """How many ``probe_tasks`` calls :func:`run_probes` makes (for the progress bar)."""
    owned = sum(1 for name in reps.arrays for ts in task_sets if ts.model in (None, name))
    return owned * len(config.probes)


__all__ = [
    "label_accuracy",
    "num_probe_fits",
    "run_probes",
    "sample_task_sets",
    "task_temperature_for",
    "task_temperatures",
]
