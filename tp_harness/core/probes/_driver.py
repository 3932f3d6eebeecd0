"""Probes fitted on many sampled tasks at once: ridge, cosine kNN, multinomial logistic.

A *task* is an integer label vector over the ``n`` examples; ``S`` tasks form a
``(S, n)`` array with labels ``0..q-1``. All tasks share one train/test split and
all the work that does not depend on the labels:

* ``ridge``: one factorisation of the train Gram matrix (the ``d x d`` primal or
  the ``n_train x n_train`` dual system, whichever is smaller, Cholesky in float64)
  and one product for the ``S·q`` one-hot targets, whose class sums come from a
  compiled kernel on the CPU. Per task this is exactly
  ``sklearn.linear_model.Ridge(alpha)`` on one-hot targets (X and Y centered on the
  train set, intercept not penalised); the prediction is the argmax, from float32
  scores whose decisions are certified against a rounding-error bound or redone in
  float64 (see ``docs/probes.md``).
* ``knn``: one cosine neighbour graph (top-``k`` train rows per test row), then a
  majority vote per task; ties go to the smallest label, as in sklearn's
  ``KNeighborsClassifier(n_neighbors=k, metric="cosine")``.
* ``logistic``: multinomial logistic regression on features standardised with the
  train mean/std, all tasks optimised together by L-BFGS; the objective per task is
  sklearn's ``C Σ_i log-loss + ½||W||²`` with ``C = 1/alpha`` (intercept not
  penalised; a task with two classes gets sklearn's binomial penalty).

:func:`probe_tasks` draws the split and returns a :class:`ProbeResult`; the
estimator classes (:class:`RidgeProbe`, :class:`KNNProbe`, :class:`LogisticProbe`)
follow sklearn's conventions: settings in ``__init__``, ``fit`` returns ``self``,
learned state ends in ``_``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from .._labels import split_columns
from ..checks import ArrayLike, as_tensor, check_positive_int, resolve_device
from ._base import _check_alpha, _TaskProbe, as_tasks, majority_rate
from ._knn import KNNProbe
from ._logistic import LogisticProbe
from ._ridge import RidgeProbe

PROBES: dict[str, type[_TaskProbe]] = {
    "ridge": RidgeProbe,
    "knn": KNNProbe,
    "logistic": LogisticProbe,
}
"""The probe registry: name -> estimator class. Config, CLI choices and tests read it."""


def probe_names() -> tuple[str, ...]:
    """Registered probe names, in registry order."""
    return tuple(PROBES)


def _check_test_fraction(test_fraction: float) -> float:
    f = float(test_fraction)
    if not 0.0 < f < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1); got {test_fraction!r}.")
    return f


def train_test_indices(
    n: int, test_fraction: float = 0.25, seed: int = 0
) -> tuple[torch.Tensor, torch.Tensor]:
    """One seeded random split of ``range(n)``: sorted (train, test) LongTensors.

    ``n_test = ceil(test_fraction · n)`` as in sklearn's ``train_test_split``. Not
    stratified (the tasks differ). Both sides need at least 2 examples.
    """
    f = _check_test_fraction(test_fraction)
    seed = check_positive_int(seed, "seed", minimum=0)
    n_test = math.ceil(f * n)
    if n_test < 2 or n - n_test < 2:
        raise ValueError(
            f"test_fraction={test_fraction} on n={n} examples gives {n_test} test "
            f"and {n - n_test} train examples; each split needs at least 2."
        )
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[n_test:].sort().values, perm[:n_test].sort().values


# ----------------------------------------------------------------------------- driver


@dataclass(frozen=True, eq=False)
class ProbeResult:
    """Held-out probe accuracy on ``S`` tasks sharing one train/test split.

    ``accuracy`` (S,) and ``majority_rate`` (S,) are float64; ``majority_rate`` is the
    test accuracy of always predicting the task's most frequent *train* class (ties to
    the smallest label). ``predictions`` is (S, n_test) int64 in ``test_indices``
    order. Arrays are read-only.
    """

    probe: str
    accuracy: np.ndarray
    majority_rate: np.ndarray
    predictions: np.ndarray
    train_indices: np.ndarray
    test_indices: np.ndarray
    num_classes: int
    settings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("accuracy", "majority_rate", "predictions", "train_indices", "test_indices"):
            view = np.asarray(getattr(self, name)).view()
            view.setflags(write=False)
            object.__setattr__(self, name, view)

    @property
    def num_tasks(self) -> int:
        return int(self.accuracy.shape[0])

    def summary(self) -> dict[str, float | int]:
        """mean, std (population, ddof=0), p5 (5th percentile, linear), min,
        gain_over_majority (mean of accuracy - majority_rate), num_tasks."""
        acc = self.accuracy
        return {
            "mean": float(acc.mean()),
            "std": float(acc.std()),
            "p5": float(np.percentile(acc, 5)),
            "min": float(acc.min()),
            "gain_over_majority": float((acc - self.majority_rate).mean()),
            "num_tasks": self.num_tasks,
        }


def make_probe(
    probe: str,
    *,
    alpha: float = 1.0,
    k: int = 20,
    num_classes: int | None = None,
    device: str | torch.device | None = None,
) -> RidgeProbe | KNNProbe | LogisticProbe:
    """The estimator for ``probe`` in :data:`PROBES`, with checked settings."""
    if probe not in PROBES:
        raise ValueError(f"probe={probe!r} is not known; choose one of {', '.join(probe_names())}.")
    check_positive_int(k, "k")
    _check_alpha(alpha, positive=probe == "logistic")
    if probe == "ridge":
        return RidgeProbe(alpha, num_classes=num_classes, device=device)
    if probe == "knn":
        return KNNProbe(k, num_classes=num_classes, device=device)
    return LogisticProbe(alpha, num_classes=num_classes, device=device)


def probe_tasks(
    features: ArrayLike,
    tasks: ArrayLike,
    *,
    probe: str = "ridge",
    alpha: float = 1.0,
    k: int = 20,
    test_fraction: float = 0.25,
    seed: int = 0,
    device: str | torch.device | None = None,
) -> ProbeResult:
    """Fit ``probe`` on every task and score it on one shared held-out split.

    features (n, d); tasks (S, n) or (n,) integer labels ``0..q-1`` (``q = max + 1``).
    ``alpha``: ridge penalty / logistic ``1/C``; ``k``: kNN neighbours. The split is
    :func:`train_test_indices` ``(n, test_fraction, seed)``.
    """
    dev = resolve_device(device)
    x = as_tensor(features, "features", device=dev)
    x = x if x.is_floating_point() else x.double()
    y, q = as_tasks(tasks, x.shape[0], device=dev)
    est = make_probe(probe, alpha=alpha, k=k, num_classes=q, device=dev)
    train, test = (i.to(dev) for i in train_test_indices(x.shape[0], test_fraction, seed))
    if probe == "knn" and k > train.numel():
        raise ValueError(f"k={k} is larger than the {train.numel()} training examples.")
    y_train, y_test, train_counts = split_columns(y, train, test, q)
    est._fit_rows(x, train, y_train, q, class_counts=train_counts)  # checked inputs
    pred = est._predict(x[test].to(est._dtype))  # (S, n_test)
    settings = {
        "alpha": float(alpha),
        "k": int(k),
        "test_fraction": float(test_fraction),
        "seed": int(seed),
        "device": str(dev),
    }
    return ProbeResult(
        probe=probe,
        accuracy=(pred == y_test).double().mean(dim=1).cpu().numpy(),
        majority_rate=majority_rate(y_train, y_test, q, train_counts=train_counts).cpu().numpy(),
        predictions=pred.cpu().numpy(),
        train_indices=train.cpu().numpy(),
        test_indices=test.cpu().numpy(),
        num_classes=q,
        settings=settings,
    )
