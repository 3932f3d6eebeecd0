"""Ranking hygiene of a run: which score records must not be ranked, and why.

Every score record gets ``flags``, a list with any of

* ``"degenerate"``: the model's examples are numerically identical (NaN moments);
* ``"prior"``: the model's kernel is the prior's own (same representation, or
  proportional kernels: alignment >= 1 - 1e-6 in factor form), so it scores the prior
  against itself;
* ``"duplicate_of:NAME"``: the model's kernel equals that of ``NAME``, listed earlier.

Flagged rows stay in every table, marked, but get no rank and are left out of the
correlations (``docs/conventions.md``).
"""

from __future__ import annotations

from typing import Any

from ..core.hygiene import duplicate_of, same_kernel
from ..core.kernels import Kernel, build_kernel
from . import representations
from .config import Config
from .priors import Prior

DEGENERATE = "degenerate"
PRIOR = "prior"
DUPLICATE = "duplicate_of:"


def model_kernels(config: Config, reps: representations.Representations) -> dict[str, Kernel]:
    """Each representation's kernel as the closed form builds it (before normalisation,
    which the comparisons do not depend on)."""
    return {
        name: build_kernel(x, config.model_kernel, name=f"model[{name!r}]")
        for name, x in reps.arrays.items()
    }


def prior_copies(kernels: dict[str, Kernel], prior: Prior, config: Config) -> set[str]:
    """Models whose kernel is the prior's: the same representation or a proportional kernel."""
    if prior.per_model:  # "self": every model is its own prior by definition
        return set()
    same_name = {name for name in kernels if name == prior.name}
    pk = prior.build(config)
    return same_name | {name for name, k in kernels.items() if same_kernel(k, pk)}


def flag_scores(
    config: Config,
    reps: representations.Representations,
    priors: list[Prior],
    scores: list[dict[str, Any]],
    aliases: dict[str, str] | None = None,
) -> dict[str, str]:
    """Add ``flags`` to every score record (in place); returns the duplicates found.

    ``aliases`` (``{alias: original}``, exact copies left out of ``reps``) share their
    original's flags and are duplicates of it (or of the model it duplicates)."""
    kernels = model_kernels(config, reps)
    dupes = duplicate_of(kernels)
    copies = {p.name: prior_copies(kernels, p, config) for p in priors}
    for alias, orig in (aliases or {}).items():
        dupes[alias] = dupes.get(orig, orig)
        for names in copies.values():
            if orig in names:
                names.add(alias)
    for rec in scores:
        flags = []
        if rec.get("degenerate"):
            flags.append(DEGENERATE)
        if rec["model"] in copies.get(rec["prior"], set()):
            flags.append(PRIOR)
        if rec["model"] in dupes:
            flags.append(DUPLICATE + dupes[rec["model"]])
        rec["flags"] = flags
    return dupes


def rankable(record: dict[str, Any]) -> bool:
    """Whether a score record may be ranked (no flags)."""
    return not record.get("flags")


__all__ = ["flag_scores", "model_kernels", "prior_copies", "rankable"]
