"""Does the closed form (Theorem 3.6) predict held-out probe accuracy on sampled tasks?

Offline, on 600 of the bundled drug reviews: 36 representations (every MiniLM layer,
every third SmolLM2-135M layer with mean and last-token pooling, TF-IDF/LSA, random
projections to a few dims), prior = the all-MiniLM-L6-v2 sentence embedding (centered
cosine). For each temperature ``T`` and class count ``q``:

* the closed-form mean and std of ``Tr(MG)`` for every representation, in four variants
  (model kernel ``centered_cosine`` or ``projection``, with or without Frobenius
  normalisation; Frobenius runs use ``T / ||K||_F``, which is the same prior);
* ``--num-tasks`` tasks sampled from that prior at temperature ``T`` (prefix sampler,
  Algorithm 1) and three probes per task, accuracy on one shared held-out split:
  ``ridge_tuned`` (standardised features, alpha chosen on an inner split of the training
  rows), ``ridge_raw`` (the harness default: raw features, alpha = 1) and ``knn`` (cosine);
* across representations, Pearson and Spearman with bootstrap 95% CIs between the
  closed-form mean and the mean probe accuracy, and between the closed-form std and the
  std of probe accuracy over tasks (RankMe and linear CKA with the prior for reference).

Check with the real labels: prior = label graph of the 3 sentiment classes, closed form
vs probe accuracy on the true labels (mean over ``--label-splits`` random splits).

    python benchmarks/validation_study.py   # cold 6 min (11 CPU-min) on 2 cores, warm 1.5 min
    python benchmarks/validation_study.py --num-examples 200 --num-tasks 64 --no-last-token

Embeddings go through the harness's on-disk cache, so a rerun skips the models.
Writes ``docs/figures/validation_results.json`` and ``docs/figures/validation_*.png``;
``docs/validation.md`` reads them.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

PRIOR_SPEC = "bundled:minilm"
MINILM_SPEC = "bundled:minilm:layers=all"
SMOLLM_SPECS = {
    "mean": "bundled:smollm2:pooling=mean,layers=all,name=SmolLM2-mean",
    "last": "bundled:smollm2:pooling=last,layers=all,name=SmolLM2-last",
}
FAMILIES = ("MiniLM", "SmolLM2-mean", "SmolLM2-last", "TF-IDF/LSA", "random projection")
# Every subset holds unflagged representations only (see study_flags): the prior's own
# kernel, duplicates and degenerate representations are left out of every correlation.
SUBSETS = ("all", "SmolLM2 layers")
# (model kernel, normalisation) of the closed form; the first is the harness default
VARIANTS = (
    ("centered_cosine", None),
    ("centered_cosine", "frobenius"),
    ("projection", None),
    ("projection", "frobenius"),
)
ROOT = Path(__file__).resolve().parent.parent


@dataclass
class StudySettings:
    """Everything that changes the numbers (saved in the JSON)."""

    temperatures: tuple[float, ...] = (0.001, 0.01, 0.1, 1.0)
    num_classes: tuple[int, ...] = (2, 3)
    num_tasks: int = 256
    min_class_fraction: float = 0.1
    gibbs_sweeps: int = 0
    probes: tuple[str, ...] = ("ridge_tuned", "ridge_raw", "knn")  # first = primary
    probe_alphas: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0, 1e3, 1e4, 1e5)  # ridge_tuned
    raw_alpha: float = 1.0  # ridge_raw: the harness default (probe_alpha)
    knn_k: int = 20
    test_fraction: float = 0.25
    label_splits: int = 5
    label_temperatures: tuple[float, ...] = (0.1, 1.0)
    bootstrap: int = 1000
    seed: int = 0
    prior_layer: str = "all-MiniLM-L6-v2@layer6"  # same kernel as the prior: flagged "prior"
    kernel: str = "centered_cosine"
    extra: dict[str, Any] = field(default_factory=dict)


# ----------------------------------------------------------------------------- representations


def family(name: str) -> str:
    """Family of a representation name (for colours and subsets)."""
    if name.startswith("rp"):
        return "random projection"
    if name.startswith("tfidf"):
        return "TF-IDF/LSA"
    if name.startswith("SmolLM2-mean"):
        return "SmolLM2-mean"
    if name.startswith("SmolLM2-last"):
        return "SmolLM2-last"
    return "MiniLM"


def select_layers(
    arrays: Mapping[str, np.ndarray], base: str, layers: Iterable[int]
) -> dict[str, np.ndarray]:
    """``{base@layerK: array}`` for the wanted layers that exist (in layer order)."""
    out = {}
    for k in layers:
        key = f"{base}@layer{k}"
        if key in arrays:
            out[key] = arrays[key]
    return out


def add_projections(
    reps: dict[str, np.ndarray],
    sources: Mapping[str, np.ndarray],
    projections: Sequence[tuple[str, int]],
    seed: int,
) -> dict[str, np.ndarray]:
    """Append ``rp{dim}({source})``: seeded Gaussian random projections of ``sources``."""
    from tp_harness.evaluation.features import random_projection

    for i, (src, dim) in enumerate(projections):
        x = np.asarray(sources[src], dtype=np.float32)
        reps[f"rp{dim}({src})"] = random_projection(x, dim, seed=seed + i)
    return reps


# ----------------------------------------------------------------------------- math


def frobenius_norm(x: np.ndarray, kernel: str = "centered_cosine") -> float:
    """``||K||_F`` of the kernel of ``x`` (computed from the factor, no n x n matrix)."""
    from tp_harness.core.kernels import build_kernel

    return float(build_kernel(np.asarray(x, dtype=np.float64), kernel).frobenius_norm())


def closed_form(
    reps: Mapping[str, np.ndarray],
    prior: Any,
    temperatures: Sequence[float],
    *,
    normalize: str | None,
    prior_kernel: str = "centered_cosine",
    model_kernel: str = "centered_cosine",
) -> dict[str, dict[float, dict[str, float]]]:
    """``{name: {T: {mean_per_pair, std_per_n, variance_per_pair}}}`` (float64 tiles)."""
    from tp_harness import task_prior_moments

    models = {k: np.asarray(v, dtype=np.float64) for k, v in reps.items()}
    p = prior if prior_kernel == "label_graph" else np.asarray(prior, dtype=np.float64)
    out = task_prior_moments(
        models,
        p,
        list(temperatures),
        model_kernel=model_kernel,
        prior_kernel=prior_kernel,
        normalize=normalize,
    )
    assert isinstance(out, dict)
    return {
        name: {
            float(t): {
                "mean_per_pair": r.mean_per_pair,
                "std_per_n": r.std / r.n,
                "variance_per_pair": r.variance_per_pair,
            }
            for t, r in by_t.items()
        }
        for name, by_t in out.items()
    }


def sample_task_sets(
    prior: np.ndarray, temperatures: Sequence[float], num_classes: Sequence[int], s: StudySettings
) -> dict[tuple[float, int], tuple[np.ndarray, dict]]:
    """``{(T, q): (tasks (S, n) int64, sampler info)}`` from the prior at temperature T."""
    from tp_harness.core.sampling import sample_tasks_with_info

    out = {}
    for t in temperatures:
        for q in num_classes:
            tasks, info = sample_tasks_with_info(
                np.asarray(prior, dtype=np.float32),
                s.num_tasks,
                q,
                float(t),
                seed=s.seed,
                prior_kernel=s.kernel,
                gibbs_sweeps=s.gibbs_sweeps,
                min_class_fraction=s.min_class_fraction,
            )
            out[(float(t), int(q))] = (tasks.cpu().numpy(), _plain(info))
    return out


def standardize(x: np.ndarray) -> np.ndarray:
    """Columns to zero mean and unit variance (constant columns to 0). -> float32."""
    x = np.asarray(x, dtype=np.float64)
    sd = x.std(0)
    return np.asarray((x - x.mean(0)) / np.where(sd > 0, sd, 1.0), dtype=np.float32)


def ridge_path_accuracy(
    x_train: np.ndarray,
    tasks_train: np.ndarray,
    x_val: np.ndarray,
    tasks_val: np.ndarray,
    alphas: Sequence[float],
) -> np.ndarray:
    """Held-out accuracy (len(alphas), S) of one-hot ridge (sklearn ``Ridge``: X and Y
    centered on the train rows, intercept not penalised, argmax) for every alpha, from
    one SVD of the centered train features. ``tasks_*``: (S, rows) labels ``0..q-1``."""
    x_train = np.asarray(x_train, dtype=np.float64)
    mean = x_train.mean(0)
    u, sv, vt = np.linalg.svd(x_train - mean, full_matrices=False)
    q = int(max(tasks_train.max(), tasks_val.max())) + 1
    num_tasks, m = tasks_train.shape
    y = np.zeros((m, num_tasks * q))
    y[np.arange(m)[:, None], np.arange(num_tasks)[None, :] * q + tasks_train.T] = 1.0
    y_mean = y.mean(0)
    a = u.T @ (y - y_mean)  # (k, S q)
    xv = (np.asarray(x_val, dtype=np.float64) - mean) @ vt.T  # (m_val, k)
    out = np.empty((len(alphas), num_tasks))
    for i, alpha in enumerate(alphas):
        scores = (xv * (sv / (sv**2 + alpha))) @ a + y_mean  # (m_val, S q)
        pred = scores.reshape(len(xv), num_tasks, q).argmax(-1).T  # (S, m_val)
        out[i] = (pred == tasks_val).mean(1)
    return out


def run_probe(
    x: np.ndarray, tasks: np.ndarray, probe: str, s: StudySettings, *, seed: int
) -> tuple[Any, float | None]:
    """One probe on all tasks (split ``seed``) -> (ProbeResult, alpha used or None).

    * ``ridge_tuned``: ridge on standardised features; alpha from ``probe_alphas``
      maximising the mean accuracy over tasks on an inner split of the *training* rows
      (the test rows are never seen; :func:`ridge_path_accuracy`), shared by all tasks
      of the set, then :func:`tp_harness.core.probes.probe_tasks` with that alpha;
    * ``ridge_raw``: ridge on the features as given, ``alpha = raw_alpha`` (the harness);
    * ``knn``: cosine kNN with ``knn_k`` neighbours (scale-free).
    """
    from tp_harness.core.probes import probe_tasks, train_test_indices

    tasks = np.asarray(tasks).reshape(-1, np.shape(tasks)[-1])
    common = {"test_fraction": s.test_fraction, "seed": seed}
    if probe == "ridge_raw":
        return probe_tasks(x, tasks, probe="ridge", alpha=s.raw_alpha, **common), s.raw_alpha
    if probe == "knn":
        return probe_tasks(x, tasks, probe="knn", k=s.knn_k, **common), None
    if probe != "ridge_tuned":
        raise ValueError(f"unknown probe {probe!r}; use ridge_tuned, ridge_raw or knn.")
    z = standardize(x)
    train = train_test_indices(len(z), s.test_fraction, seed)[0].numpy()
    fit, val = (i.numpy() for i in train_test_indices(len(train), s.test_fraction, seed + 10_000))
    scores = ridge_path_accuracy(
        z[train[fit]], tasks[:, train[fit]], z[train[val]], tasks[:, train[val]], s.probe_alphas
    ).mean(1)
    best = s.probe_alphas[int(np.argmax(scores))]
    return probe_tasks(z, tasks, probe="ridge", alpha=best, **common), best


def probe_stats(
    reps: Mapping[str, np.ndarray], tasks: np.ndarray, s: StudySettings
) -> dict[str, dict[str, dict[str, Any]]]:
    """``{probe: {name: {mean, std, var, p5, gain_over_majority, alpha}}}`` over tasks."""
    out: dict[str, dict[str, dict[str, Any]]] = {p: {} for p in s.probes}
    for probe in s.probes:
        for name, x in reps.items():
            r, alpha = run_probe(x, tasks, probe, s, seed=s.seed)
            acc = np.asarray(r.accuracy, dtype=np.float64)
            out[probe][name] = {
                "mean": float(acc.mean()),
                "std": float(acc.std()),
                "var": float(acc.var()),
                "p5": float(np.percentile(acc, 5)),
                "gain_over_majority": float((acc - r.majority_rate).mean()),
                "alpha": alpha,
            }
    return out


def label_accuracy(
    reps: Mapping[str, np.ndarray], labels: np.ndarray, s: StudySettings
) -> dict[str, dict[str, dict[str, float]]]:
    """``{probe: {name: {mean, std_over_splits, balanced_mean}}}`` on the true labels,
    over ``label_splits`` random train/test splits."""
    out: dict[str, dict[str, dict[str, float]]] = {p: {} for p in s.probes}
    for probe in s.probes:
        for name, x in reps.items():
            accs, bals = [], []
            for k in range(s.label_splits):
                r, _ = run_probe(x, labels, probe, s, seed=s.seed + k)
                accs.append(float(r.accuracy[0]))
                bals.append(balanced_accuracy(labels[np.asarray(r.test_indices)], r.predictions[0]))
            out[probe][name] = {
                "mean": float(np.mean(accs)),
                "std_over_splits": float(np.std(accs)),
                "balanced_mean": float(np.mean(bals)),
            }
    return out


def balanced_accuracy(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean over the classes present in ``y_true`` of the recall of that class."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    return float(np.mean([(y_pred[y_true == c] == c).mean() for c in np.unique(y_true)]))


def baselines(
    reps: Mapping[str, np.ndarray], prior: np.ndarray, labels: np.ndarray | None
) -> dict[str, dict[str, float]]:
    """RankMe, linear CKA with the prior, kernel-target alignment with the labels."""
    from tp_harness.core import baselines as bl

    out = {}
    for name, x in reps.items():
        row = {"rankme": float(bl.rankme(x)), "linear_cka_prior": float(bl.linear_cka(x, prior))}
        if labels is not None:
            row["kernel_target_alignment"] = float(bl.kernel_target_alignment(x, labels))
        out[name] = row
    return out


def correlate(
    x: Mapping[str, float],
    y: Mapping[str, float],
    names: Sequence[str],
    *,
    bootstrap: int,
    seed: int,
) -> dict[str, Any]:
    """Pearson/Spearman of x vs y over ``names`` with percentile bootstrap 95% CIs."""
    from tp_harness.core.stats import correlation_with_ci

    xs = np.array([x[n] for n in names], dtype=np.float64)
    ys = np.array([y[n] for n in names], dtype=np.float64)
    return correlation_with_ci(xs, ys, num_bootstrap=bootstrap, seed=seed)


def study_flags(
    reps: Mapping[str, np.ndarray], prior: Any, prior_kernel: str = "centered_cosine"
) -> dict[str, list[str]]:
    """The harness's ranking hygiene on the study's representations: ``{name: flags}`` for
    those whose kernel is the prior's (``prior``), equals an earlier one's (``duplicate_of``)
    or is degenerate (numerically identical examples). ``prior=None``: no prior check."""
    from tp_harness.core.hygiene import duplicate_of, same_kernel
    from tp_harness.core.kernels import build_kernel

    kernels = {n: build_kernel(np.asarray(x), "centered_cosine") for n, x in reps.items()}
    pk = None if prior is None else build_kernel(np.asarray(prior), prior_kernel)
    dupes = duplicate_of(kernels)
    out: dict[str, list[str]] = {}
    for name, k in kernels.items():
        flags = ["degenerate"] if k.degenerate else []
        if pk is not None and same_kernel(k, pk):
            flags.append("prior")
        if name in dupes:
            flags.append(f"duplicate_of:{dupes[name]}")
        if flags:
            out[name] = flags
    return out


def subset_names(names: Sequence[str], subset: str, prior_layer: str = "") -> list[str]:
    """Representations in one of :data:`SUBSETS` (``names`` are the unflagged ones)."""
    if subset == "all":
        return list(names)
    if subset == "SmolLM2 layers":
        return [n for n in names if family(n).startswith("SmolLM2")]
    raise ValueError(f"unknown subset {subset!r}; choose from {SUBSETS}.")


# ----------------------------------------------------------------------------- the study


def _key(t: float, q: int | None = None) -> str:
    return f"T={t:g}" if q is None else f"T={t:g},q={q}"


def _plain(v: Any) -> Any:
    """JSON-ready copy (numpy/torch scalars and tuples converted)."""
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_plain(x) for x in v]
    if isinstance(v, (np.floating, np.integer)):
        return v.item()
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return str(v)


_PAIRS = (("mean_per_pair", "mean"), ("std_per_n", "std"))


def _correlation_rows(
    cf: Mapping[str, Any],
    pr: Mapping[str, Any],
    names: Sequence[str],
    meta: dict[str, Any],
    s: StudySettings,
    pairs: Sequence[tuple[str, str]] = _PAIRS,
    y_name: str = "probe_accuracy",
    subsets: Sequence[str] = SUBSETS,
) -> list[dict[str, Any]]:
    """Mean-vs-mean and std-vs-std for every subset with >= 3 members."""
    rows = []
    for subset in subsets:
        sub = subset_names(names, subset, s.prior_layer)
        if len(sub) < 3:
            continue
        for xk, yk in pairs:
            c = correlate(
                {n: cf[n][xk] for n in sub},
                {n: pr[n][yk] for n in sub},
                sub,
                bootstrap=s.bootstrap,
                seed=s.seed,
            )
            rows.append(
                {
                    **meta,
                    "subset": subset,
                    "x": f"closed_form_{xk}",
                    "y": f"{y_name}_{yk}",
                    "models": list(sub),
                    **c,
                }
            )
    return rows


def _baseline_rows(
    base: Mapping[str, Any],
    pr: Mapping[str, Any],
    names: Sequence[str],
    meta: dict[str, Any],
    s: StudySettings,
) -> list[dict[str, Any]]:
    rows = []
    for bk in ("rankme", "linear_cka_prior"):
        c = correlate(
            {n: base[n][bk] for n in names},
            {n: pr[n]["mean"] for n in names},
            names,
            bootstrap=s.bootstrap,
            seed=s.seed,
        )
        rows.append({**meta, "subset": "all", "x": bk, "y": "probe_accuracy_mean", **c})
    return rows


def variant_name(model_kernel: str, normalize: str | None) -> str:
    """``centered_cosine``, ``centered_cosine+frobenius``, ``projection``, ..."""
    return model_kernel + (f"+{normalize}" if normalize else "")


def all_closed_forms(
    reps: Mapping[str, np.ndarray],
    prior: Any,
    temperatures: Sequence[float],
    prior_norm: float,
    prior_kernel: str,
) -> dict[str, dict[str, dict[float, dict[str, float]]]]:
    """Closed form for every :data:`VARIANTS`; Frobenius runs at ``T / prior_norm``."""
    out = {}
    for kernel, norm in VARIANTS:
        temps = [t / prior_norm for t in temperatures] if norm else list(temperatures)
        out[variant_name(kernel, norm)] = closed_form(
            reps, prior, temps, normalize=norm, prior_kernel=prior_kernel, model_kernel=kernel
        )
    return out


def _variant_meta(kernel: str, norm: str | None, t: float, prior_norm: float) -> dict[str, Any]:
    return {
        "variant": variant_name(kernel, norm),
        "model_kernel": kernel,
        "normalize": norm or "none",
        "temperature": t / prior_norm if norm else t,
    }


def run_study(
    reps: Mapping[str, np.ndarray],
    prior: np.ndarray,
    labels: np.ndarray | None,
    s: StudySettings,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """All numbers of the study (a JSON-ready dict); pure on the given arrays."""
    flags = study_flags(reps, prior, s.kernel)
    names = [n for n in reps if n not in flags]
    log(f"flagged (left out of every correlation): {flags}")
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    prior_norm = frobenius_norm(prior, s.kernel)
    temps_f = [t / prior_norm for t in s.temperatures]
    cf = all_closed_forms(reps, prior, s.temperatures, prior_norm, s.kernel)
    base = baselines(reps, prior, labels)
    timings["closed_form_and_baselines"] = time.perf_counter() - t0
    log(f"closed form: {timings['closed_form_and_baselines']:.1f} s")

    t0 = time.perf_counter()
    task_sets = sample_task_sets(prior, s.temperatures, s.num_classes, s)
    timings["sampling"] = time.perf_counter() - t0
    log(f"sampling: {timings['sampling']:.1f} s")

    t0 = time.perf_counter()
    probes = {(t, q): probe_stats(reps, tasks, s) for (t, q), (tasks, _) in task_sets.items()}
    timings["probes"] = time.perf_counter() - t0
    log(f"probes: {timings['probes']:.1f} s")

    t0 = time.perf_counter()
    rows: list[dict[str, Any]] = []
    for (t, q), by_probe in probes.items():
        for probe, pr in by_probe.items():
            for kernel, norm in VARIANTS:
                meta = {
                    "prior": "MiniLM sentence embedding",
                    "probe": probe,
                    **_variant_meta(kernel, norm, t, prior_norm),
                    "task_temperature": t,
                    "num_classes": q,
                }
                by_t = {n: cf[meta["variant"]][n][meta["temperature"]] for n in names}
                primary = probe == s.probes[0] and kernel == VARIANTS[0][0]
                rows += _correlation_rows(
                    by_t, pr, names, meta, s, subsets=SUBSETS if primary else SUBSETS[:1]
                )
            rows += _baseline_rows(
                base,
                pr,
                names,
                {
                    "prior": "MiniLM sentence embedding",
                    "probe": probe,
                    "variant": "n/a",
                    "normalize": "n/a",
                    "temperature": None,
                    "task_temperature": t,
                    "num_classes": q,
                },
                s,
            )
    labels_flags = study_flags(reps, None)
    labels_out = _labels_check(reps, labels, base, s, labels_flags) if labels is not None else None
    timings["labels_and_correlations"] = time.perf_counter() - t0
    log(f"labels check and correlations: {timings['labels_and_correlations']:.1f} s")

    return _plain(
        {
            "settings": asdict(s),
            "representations": [
                {
                    "name": n,
                    "family": family(n),
                    "dim": int(reps[n].shape[1]),
                    "flags": flags.get(n, []),
                    **base[n],
                }
                for n in reps
            ],
            "flags": flags,
            "labels_flags": labels_flags,
            "n": len(prior),
            "prior": {"spec": PRIOR_SPEC, "kernel": s.kernel, "frobenius_norm": prior_norm},
            "frobenius_temperatures": {
                _key(t): tf for t, tf in zip(s.temperatures, temps_f, strict=True)
            },
            "variants": [variant_name(k, nm) for k, nm in VARIANTS],
            "closed_form": {
                v: {n: {_key(t): x for t, x in by_t.items()} for n, by_t in d.items()}
                for v, d in cf.items()
            },
            "tasks": {_key(t, q): info for (t, q), (_, info) in task_sets.items()},
            "probes": {
                p: {_key(t, q): by_probe[p] for (t, q), by_probe in probes.items()}
                for p in s.probes
            },
            "correlations": rows,
            "labels": labels_out,
            "timings": timings,
        }
    )


def _labels_check(
    reps: Mapping[str, np.ndarray],
    labels: np.ndarray,
    base: Mapping[str, Any],
    s: StudySettings,
    flags: Mapping[str, list[str]],
) -> dict[str, Any]:
    """Prior = label graph: closed form vs ridge accuracy on the true labels (unflagged)."""
    names = [n for n in reps if n not in flags]
    acc = label_accuracy(reps, labels, s)
    label_norm = float(np.sqrt(np.sum(np.bincount(labels).astype(np.float64) ** 2)))
    cf = all_closed_forms(reps, labels, s.label_temperatures, label_norm, "label_graph")
    rows = []
    for probe in s.probes:
        for kernel, norm in VARIANTS:
            primary = probe == s.probes[0] and kernel == VARIANTS[0][0]
            for t in s.label_temperatures:
                meta = {
                    "prior": "labels",
                    "probe": probe,
                    **_variant_meta(kernel, norm, t, label_norm),
                    "label_temperature": t,
                    "num_classes": int(labels.max()) + 1,
                }
                by_t = {n: cf[meta["variant"]][n][meta["temperature"]] for n in names}
                rows += _correlation_rows(
                    by_t,
                    acc[probe],
                    names,
                    meta,
                    s,
                    pairs=(("mean_per_pair", "mean"), ("mean_per_pair", "balanced_mean")),
                    y_name="label_accuracy",
                    subsets=SUBSETS if primary else SUBSETS[:1],
                )
        for bk in ("kernel_target_alignment", "rankme", "linear_cka_prior"):
            c = correlate(
                {n: base[n][bk] for n in names},
                {n: acc[probe][n]["mean"] for n in names},
                names,
                bootstrap=s.bootstrap,
                seed=s.seed,
            )
            rows.append(
                {
                    "prior": "labels",
                    "probe": probe,
                    "variant": "n/a",
                    "normalize": "n/a",
                    "temperature": None,
                    "subset": "all",
                    "x": bk,
                    "y": "label_accuracy_mean",
                    **c,
                }
            )
    return {
        "num_classes": int(labels.max()) + 1,
        "class_counts": np.bincount(labels).tolist(),
        "frobenius_norm": label_norm,
        "accuracy": acc,
        "closed_form": {
            v: {n: {_key(t): x for t, x in by_t.items()} for n, by_t in d.items()}
            for v, d in cf.items()
        },
        "correlations": rows,
    }


# ----------------------------------------------------------------------------- figures


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _colors() -> dict[str, str]:
    return dict(
        zip(
            FAMILIES, ("tab:green", "tab:blue", "tab:orange", "tab:purple", "tab:gray"), strict=True
        )
    )


def _find(rows: Iterable[Mapping[str, Any]], **match: Any) -> Mapping[str, Any] | None:
    for r in rows:
        if all(r.get(k) == v for k, v in match.items()):
            return r
    return None


def _primary(res: Mapping[str, Any]) -> str:
    return str(res["settings"]["probes"][0])


def _tkey(res: Mapping[str, Any], variant: str, t: float) -> str:
    """JSON key of the temperature a variant used for task temperature ``t``."""
    return _key(res["frobenius_temperatures"][_key(t)] if "frobenius" in variant else t)


def _legend_below(fig: Any, ax: Any) -> None:
    handles, labels = ax.get_legend_handles_labels()
    uniq = dict(zip(labels, handles, strict=True))
    fig.legend(uniq.values(), uniq.keys(), loc="lower center", ncol=len(uniq), fontsize=8)


def plot_scatter(res: Mapping[str, Any], path: Path, *, stat: str, q: int) -> Path:
    """Grid (closed-form variant x temperature) of closed form vs probe accuracy."""
    plt = _pyplot()
    probe = _primary(res)
    temps = res["settings"]["temperatures"]
    variants = res["variants"]
    colors = _colors()
    xk, yk = ("mean_per_pair", "mean") if stat == "mean" else ("std_per_n", "std")
    fig, axes = plt.subplots(
        len(variants),
        len(temps),
        figsize=(3.4 * len(temps), 2.9 * len(variants) + 0.5),
        squeeze=False,
    )
    for i, variant in enumerate(variants):
        for j, t in enumerate(temps):
            ax = axes[i][j]
            pr = res["probes"][probe][_key(t, q)]
            tk = _tkey(res, variant, t)
            for rep in res["representations"]:
                n = rep["name"]
                ax.scatter(
                    res["closed_form"][variant][n][tk][xk],
                    pr[n][yk],
                    s=14,
                    color=colors[rep["family"]],
                    label=rep["family"],
                )
            c = _find(
                res["correlations"],
                probe=probe,
                variant=variant,
                task_temperature=t,
                num_classes=q,
                subset="all",
                x=f"closed_form_{xk}",
            )
            r = f"r={c['pearson']:.2f} ρ={c['spearman']:.2f}" if c else ""
            ax.set_title(f"{variant}, {tk}\n{r}", fontsize=8)
            ax.tick_params(labelsize=6)
            ax.xaxis.get_offset_text().set_fontsize(6)
            if j == 0:
                ax.set_ylabel(f"{probe} acc. {yk} (q={q})", fontsize=7)
        axes[i][0].figure.align_ylabels()
    for ax in axes[-1]:
        ax.set_xlabel(f"closed-form {xk}", fontsize=7)
    _legend_below(fig, axes[0][0])
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


_VARIANT_COLORS = {
    "centered_cosine": "tab:blue",
    "centered_cosine+frobenius": "tab:red",
    "projection": "tab:green",
    "projection+frobenius": "tab:olive",
}


def _errorbar_series(
    ax: Any,
    rows: Sequence[Mapping[str, Any]],
    temps: Sequence[float],
    corr: str,
    shift: float,
    color: str,
    fmt: str,
    label: str,
) -> None:
    v = np.array([r[corr] for r in rows])
    ci = np.array([r[f"{corr}_ci"] for r in rows], dtype=float)
    ax.errorbar(
        np.array(temps) * shift,
        v,
        yerr=[v - ci[:, 0], ci[:, 1] - v],
        fmt=fmt,
        color=color,
        capsize=2,
        ms=4,
        label=label,
    )


def plot_correlations(res: Mapping[str, Any], path: Path) -> Path:
    """Pearson / Spearman (95% CI) vs temperature: mean (left) and std (right)."""
    plt = _pyplot()
    probe = _primary(res)
    temps = res["settings"]["temperatures"]
    fig, axes = plt.subplots(2, 2, figsize=(11, 7.5), squeeze=False)
    for i, corr in enumerate(("pearson", "spearman")):
        for j, xk in enumerate(("mean_per_pair", "std_per_n")):
            ax = axes[i][j]
            for k, variant in enumerate(res["variants"]):
                for q, fmt in zip(res["settings"]["num_classes"], ("-o", "--s"), strict=False):
                    pts = [
                        _find(
                            res["correlations"],
                            probe=probe,
                            variant=variant,
                            task_temperature=t,
                            num_classes=q,
                            subset="all",
                            x=f"closed_form_{xk}",
                        )
                        for t in temps
                    ]
                    if all(p is not None for p in pts):
                        _errorbar_series(
                            ax,
                            pts,
                            temps,
                            corr,
                            1.0 + 0.04 * (2 * k + (q > 2)),
                            _VARIANT_COLORS.get(variant, "k"),
                            fmt,
                            f"{variant}, q={q}",
                        )
            if xk == "mean_per_pair":
                for bk, color in (("rankme", "tab:gray"), ("linear_cka_prior", "tab:purple")):
                    pts = [
                        _find(
                            res["correlations"],
                            probe=probe,
                            x=bk,
                            task_temperature=t,
                            num_classes=res["settings"]["num_classes"][0],
                        )
                        for t in temps
                    ]
                    if all(p is not None for p in pts):
                        ax.plot(temps, [p[corr] for p in pts], ":", color=color, label=bk)
            ax.axhline(0, color="k", lw=0.5)
            ax.set_xscale("log")
            ax.set_ylim(-1.05, 1.05)
            ax.set_title(
                f"{corr}: closed-form {xk} vs {probe} accuracy "
                f"{'mean' if xk.startswith('mean') else 'std'}",
                fontsize=9,
            )
            ax.set_xlabel("task temperature T (Frobenius variants use T/||K||_F)", fontsize=8)
    axes[0][0].legend(fontsize=6, ncol=2)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_probes(res: Mapping[str, Any], path: Path, *, q: int) -> Path:
    """Pearson of closed-form mean vs probe-accuracy mean, one panel per probe."""
    plt = _pyplot()
    temps = res["settings"]["temperatures"]
    probes = res["settings"]["probes"]
    fig, axes = plt.subplots(1, len(probes), figsize=(4.2 * len(probes), 3.6), squeeze=False)
    for ax, probe in zip(axes[0], probes, strict=True):
        for k, variant in enumerate(res["variants"]):
            pts = [
                _find(
                    res["correlations"],
                    probe=probe,
                    variant=variant,
                    task_temperature=t,
                    num_classes=q,
                    subset="all",
                    x="closed_form_mean_per_pair",
                )
                for t in temps
            ]
            if all(p is not None for p in pts):
                _errorbar_series(
                    ax,
                    pts,
                    temps,
                    "pearson",
                    1.0 + 0.05 * k,
                    _VARIANT_COLORS.get(variant, "k"),
                    "-o",
                    variant,
                )
        pts = [
            _find(
                res["correlations"],
                probe=probe,
                x="linear_cka_prior",
                task_temperature=t,
                num_classes=q,
            )
            for t in temps
        ]
        if all(p is not None for p in pts):
            ax.plot(
                temps,
                [p["pearson"] for p in pts],
                ":",
                color="tab:purple",
                label="linear_cka_prior",
            )
        ax.set_xscale("log")
        ax.set_ylim(-0.6, 1.0)
        ax.axhline(0, color="k", lw=0.5)
        ax.set_title(f"Pearson, closed-form mean vs {probe} mean (q={q})", fontsize=9)
        ax.set_xlabel("task temperature T", fontsize=8)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_labels(res: Mapping[str, Any], path: Path) -> Path | None:
    """Labels prior: closed-form mean (each variant) vs probe accuracy on the true labels."""
    lab = res.get("labels")
    if not lab:
        return None
    plt = _pyplot()
    colors = _colors()
    probe = _primary(res)
    acc = lab["accuracy"][probe]
    t = res["settings"]["label_temperatures"][0]
    variants = res["variants"]
    fig, axes = plt.subplots(1, len(variants) + 1, figsize=(3.5 * (len(variants) + 1), 3.8))
    for ax, variant in zip(axes, variants, strict=False):
        tu = t / lab["frobenius_norm"] if "frobenius" in variant else t
        for rep in res["representations"]:
            n = rep["name"]
            ax.scatter(
                lab["closed_form"][variant][n][_key(tu)]["mean_per_pair"],
                acc[n]["mean"],
                s=14,
                color=colors[rep["family"]],
                label=rep["family"],
            )
        c = _find(
            lab["correlations"],
            probe=probe,
            variant=variant,
            label_temperature=t,
            subset="all",
            y="label_accuracy_mean",
        )
        ax.set_title(
            f"labels prior: {variant}, T={tu:.3g}\n"
            + (f"r={c['pearson']:.2f} ρ={c['spearman']:.2f}" if c else ""),
            fontsize=8,
        )
        ax.set_xlabel("closed-form mean_per_pair", fontsize=7)
        ax.tick_params(labelsize=6)
    axes[0].set_ylabel(f"{probe} accuracy, true labels", fontsize=8)
    ax = axes[-1]
    temps = res["settings"]["temperatures"]
    key = _key(temps[min(1, len(temps) - 1)], res["settings"]["num_classes"][0])
    for rep in res["representations"]:
        n = rep["name"]
        ax.scatter(
            res["probes"][probe][key][n]["mean"],
            acc[n]["mean"],
            s=14,
            color=colors[rep["family"]],
            label=rep["family"],
        )
    ax.set_title(f"true labels vs sampled tasks ({key})", fontsize=8)
    ax.set_xlabel(f"mean {probe} accuracy, sampled tasks", fontsize=7)
    ax.tick_params(labelsize=6)
    _legend_below(fig, axes[0])
    fig.tight_layout(rect=(0, 0.07, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_layers(res: Mapping[str, Any], path: Path, *, t: float, q: int) -> Path:
    """Per layer: closed-form means (each variant), probe accuracies, true-label accuracy."""
    from tp_harness.evaluation.embed.spec import split_layer

    plt = _pyplot()
    probe = _primary(res)
    panels: list[tuple[str, Callable[[str], float]]] = []
    for variant in res["variants"]:
        tk = _tkey(res, variant, t)
        panels.append(
            (
                f"closed form: {variant}\n{tk}",
                lambda n, v=variant, k=tk: res["closed_form"][v][n][k]["mean_per_pair"],
            )
        )
    for p in res["settings"]["probes"]:
        panels.append(
            (
                f"{p}: sampled tasks, T={t:g}, q={q}",
                lambda n, p=p: res["probes"][p][_key(t, q)][n]["mean"],
            )
        )
    if res.get("labels"):
        panels.append(
            (f"{probe}: true labels", lambda n: res["labels"]["accuracy"][probe][n]["mean"])
        )
    colors = _colors()
    cols = 4
    rows = -(-len(panels) // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(3.6 * cols, 3.0 * rows), squeeze=False)
    for ax, (title, get) in zip(axes.flat, panels, strict=False):
        series: dict[str, list[tuple[int, float]]] = {}
        for rep in res["representations"]:
            base, layer = split_layer(rep["name"])
            if layer is not None:
                series.setdefault(base, []).append((layer, get(rep["name"])))
        for base, pts in series.items():
            pts.sort()
            ax.plot(
                [p[0] for p in pts],
                [p[1] for p in pts],
                "-o",
                ms=3,
                label=base,
                color=colors[family(base)],
            )
        ax.set_title(title, fontsize=8)
        ax.tick_params(labelsize=6)
        ax.yaxis.get_offset_text().set_fontsize(6)
    for ax in list(axes.flat)[len(panels) :]:
        ax.axis("off")
    for ax in axes[-1]:
        ax.set_xlabel("layer", fontsize=7)
    axes[0][0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def write_figures(res: Mapping[str, Any], folder: Path) -> list[str]:
    """All validation_*.png figures; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    q0 = res["settings"]["num_classes"][0]
    temps = res["settings"]["temperatures"]
    paths = [
        plot_scatter(res, folder / "validation_mean_scatter.png", stat="mean", q=q0),
        plot_scatter(res, folder / "validation_std_scatter.png", stat="std", q=q0),
        plot_correlations(res, folder / "validation_correlations.png"),
        plot_probes(res, folder / "validation_probes.png", q=q0),
        plot_layers(res, folder / "validation_layers.png", t=temps[min(1, len(temps) - 1)], q=q0),
        plot_labels(res, folder / "validation_labels.png"),
    ]
    return [str(p) for p in paths if p is not None]


# ----------------------------------------------------------------------------- data + main


def load_representations(
    args: argparse.Namespace,
) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray, dict[str, float]]:
    """Embed (through the cache) and derive the representation set; prior; labels; timings."""
    from tp_harness.evaluation import representations
    from tp_harness.evaluation.config import Config
    from tp_harness.evaluation.data import load_data
    from tp_harness.evaluation.distributed import init_context
    from tp_harness.evaluation.features import tfidf_lsa

    cfg = Config(
        batch_size=args.batch_size,
        max_length=args.max_length,
        seed=args.seed,
        cache_dir=args.cache_dir,
    )
    data = load_data("bundled:drug_reviews", num_examples=args.num_examples or None, seed=args.seed)
    ctx = init_context("cpu")
    texts = list(data.dataset[data.text_column])
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    mini = representations.compute([MINILM_SPEC], data, cfg, ctx, progress=args.progress).arrays
    timings["embed_minilm"] = time.perf_counter() - t0
    prior = mini["all-MiniLM-L6-v2"]
    reps = select_layers(mini, "all-MiniLM-L6-v2", range(7))
    layers = [int(k) for k in args.smollm_layers.split(",")]
    sources = {"MiniLM": prior}
    for pooling in ("mean",) if args.no_last_token else ("mean", "last"):
        t0 = time.perf_counter()
        arr = representations.compute(
            [SMOLLM_SPECS[pooling]], data, cfg, ctx, progress=args.progress
        ).arrays
        timings[f"embed_smollm2_{pooling}"] = time.perf_counter() - t0
        reps.update(select_layers(arr, f"SmolLM2-{pooling}", layers))
        if pooling == "mean":
            sources["SmolLM2-mean@layer30"] = arr["SmolLM2-mean@layer30"]
    t0 = time.perf_counter()
    reps["tfidf-lsa128"] = tfidf_lsa(texts, dim=128, seed=args.seed)
    reps["tfidf-lsa16"] = tfidf_lsa(texts, dim=16, seed=args.seed)
    sources["tfidf-lsa128"] = reps["tfidf-lsa128"]
    add_projections(
        reps,
        sources,
        [
            ("MiniLM", 4),
            ("MiniLM", 16),
            ("SmolLM2-mean@layer30", 4),
            ("SmolLM2-mean@layer30", 16),
            ("tfidf-lsa128", 8),
        ],
        seed=args.seed,
    )
    timings["classic_features"] = time.perf_counter() - t0
    assert data.labels is not None
    return reps, prior, np.asarray(data.labels, dtype=np.int64), timings


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument(
        "--num-examples", type=int, default=600, help="random subsample of the 979 reviews (0: all)"
    )
    ap.add_argument("--num-tasks", type=int, default=256)
    ap.add_argument(
        "--temperatures",
        type=float,
        nargs="+",
        default=[0.001, 0.01, 0.1, 1.0],
        help="unnormalised T; the Frobenius runs use T/||K_prior||_F",
    )
    ap.add_argument("--num-classes", type=int, nargs="+", default=[2, 3])
    ap.add_argument("--smollm-layers", default="0,3,6,9,12,15,18,21,24,27,30")
    ap.add_argument("--no-last-token", action="store_true", help="skip SmolLM2 last-token pooling")
    ap.add_argument("--bootstrap", type=int, default=1000)
    ap.add_argument("--label-splits", type=int, default=5)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--cache-dir", default=None, help="embedding cache (default: harness cache)")
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    ap.add_argument("--output-json", default=str(ROOT / "docs/figures/validation_results.json"))
    ap.add_argument("--figures-dir", default=str(ROOT / "docs/figures"))
    ap.add_argument("--progress", action="store_true", help="show embedding progress bars")
    return ap.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    reps, prior, labels, timings = load_representations(args)
    print(
        f"{len(reps)} representations on n={len(prior)}: embedding {sum(timings.values()):.1f} s",
        flush=True,
    )
    s = StudySettings(
        temperatures=tuple(args.temperatures),
        num_classes=tuple(args.num_classes),
        num_tasks=args.num_tasks,
        bootstrap=args.bootstrap,
        label_splits=args.label_splits,
        seed=args.seed,
        extra={
            "smollm_layers": args.smollm_layers,
            "last_token": not args.no_last_token,
            "max_length": args.max_length,
        },
    )
    res = run_study(reps, prior, labels, s, log=lambda m: print(m, flush=True))
    res["timings"] = {**timings, **res["timings"]}
    figures = write_figures(res, Path(args.figures_dir))
    res["timings"]["total_seconds"] = time.perf_counter() - t_start
    res["figures"] = [
        str(Path(f).resolve().relative_to(ROOT)) if Path(f).resolve().is_relative_to(ROOT) else f
        for f in figures
    ]
    res["environment"] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpus": os.cpu_count(),
        "command": " ".join([Path(sys.argv[0]).name, *(argv or sys.argv[1:])]),
    }
    out = Path(args.output_json)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(_plain(res), indent=1, allow_nan=True) + "\n")
    print(summary_table(res))
    print(f"total {res['timings']['total_seconds']:.1f} s; wrote {out} and {len(figures)} figures")
    return 0


def summary_table(res: Mapping[str, Any], subset: str = "all", probe: str | None = None) -> str:
    """Markdown table of the closed-form vs probe correlations for one subset."""
    probe = probe or _primary(res)
    lines = [
        f"probe: {probe}, subset: {subset}",
        "| closed form | T | q | x | Pearson [95% CI] | Spearman [95% CI] |",
        "|---|---|---|---|---|---|",
    ]
    for r in res["correlations"]:
        if (
            r["subset"] != subset
            or not str(r["x"]).startswith("closed_form")
            or r.get("probe") != probe
        ):
            continue
        lines.append(
            f"| {r['variant']} | {r['temperature']:.3g} | {r['num_classes']} | "
            f"{r['x'].removeprefix('closed_form_')} | {_fmt(r, 'pearson')} | "
            f"{_fmt(r, 'spearman')} |"
        )
    return "\n".join(lines)


def _fmt(r: Mapping[str, Any], k: str) -> str:
    lo, hi = r[f"{k}_ci"]
    return f"{r[k]:.2f} [{lo:.2f}, {hi:.2f}]"


if __name__ == "__main__":
    sys.exit(main())
