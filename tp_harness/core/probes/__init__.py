"""Probes fitted on many sampled tasks at once (ridge, cosine kNN, multinomial logistic).

The public face of the probe subpackage; the estimators' shared parts live in its
private modules (``_base``, ``_ridge``, ``_knn``, ``_logistic``, ``_driver``).
"""

from ._base import as_tasks, majority_rate
from ._driver import (
    PROBES,
    ProbeResult,
    make_probe,
    probe_names,
    probe_tasks,
    train_test_indices,
)
from ._knn import KNNProbe, vote
from ._logistic import LogisticProbe
from ._ridge import RidgeProbe, class_sums

__all__ = [
    "PROBES",
    "KNNProbe",
    "LogisticProbe",
    "ProbeResult",
    "RidgeProbe",
    "as_tasks",
    "class_sums",
    "majority_rate",
    "make_probe",
    "probe_names",
    "probe_tasks",
    "train_test_indices",
    "vote",
]
