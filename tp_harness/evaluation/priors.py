"""Priors of a run: ``config.priors`` resolved to kernels the closed form and the sampler share.

A prior entry is a model spec (its representation is computed like a model's),
``labels`` (the dataset's label graph) or ``self`` (each model is its own prior). With
``prior_weights`` the entries form one weighted sum of kernels.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..core.kernels import Kernel, build_kernels
from . import representations
from .config import Config

LABELS_PRIOR = "labels"
SELF_PRIOR = "self"


@dataclass
class Prior:
    """A resolved prior: ``inputs`` and ``kernel`` as :func:`task_prior_moments` takes them.

    ``entries`` are the config entries it came from (spec strings, ``labels``, ``self``).
    """

    name: str
    inputs: Any
    kernel: str | list[str]
    weights: list[float] | None = None
    per_model: bool = False  # "self": each model is its own prior
    entries: tuple[str, ...] = ()

    def build(self, config: Config, inputs: Any = None) -> Kernel:
        """The prior's :class:`Kernel` with the run's normalisation (``inputs`` for ``self``)."""
        return build_kernels(
            self.inputs if inputs is None else inputs,
            self.kernel,
            weights=self.weights,
            name="prior",
            normalize=config.normalize,
        )


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
            priors.append(Prior(LABELS_PRIOR, labels, "label_graph", entries=(entry,)))
        elif entry == SELF_PRIOR:
            priors.append(
                Prior(SELF_PRIOR, None, config.prior_kernel, per_model=True, entries=(entry,))
            )
        else:
            name, x = prior_reps.lookup(entry, fallback=reps)
            priors.append(Prior(name, x, config.prior_kernel, entries=(entry,)))
    if config.prior_weights is None:
        return priors
    if any(p.per_model for p in priors):
        raise ValueError("prior 'self' cannot be part of a weighted sum (--prior-weights).")
    w = list(config.prior_weights)
    name = " + ".join(f"{wi:g}*{p.name}" for wi, p in zip(w, priors, strict=True))
    kernels = [str(p.kernel) for p in priors]
    inputs = [p.inputs for p in priors]
    return [Prior(name, inputs, kernels, w, entries=tuple(config.priors))]


__all__ = ["LABELS_PRIOR", "SELF_PRIOR", "Prior", "resolve_priors"]
