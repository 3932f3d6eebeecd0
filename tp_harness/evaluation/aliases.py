"""Representations that are bit-for-bit copies of another: computed once, reported twice.

A layer sweep often holds the same array under two names (``all-MiniLM-L6-v2@layer6`` is
the final MiniLM embedding: same pooling, same normalisation). Every score, probe,
sampled-task alignment and baseline of such an *alias* equals its original's, so the run
computes them for the original only and copies the records under the alias's name with
``alias_of`` set; :mod:`~tp_harness.evaluation.flags` then flags the alias
``duplicate_of:ORIGINAL`` like any other duplicate, so it is never ranked.

Only exact copies are aliases (same shape, dtype and bytes): two kernels that are merely
proportional give the same closed form after normalisation but not the same probes, so
they are computed separately and caught by the kernel check of the flags.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Mapping
from typing import Any

import numpy as np

from . import representations

ALIAS_OF = "alias_of"


def _digest(x: np.ndarray) -> tuple[tuple[int, ...], str, str]:
    """Shape, dtype and a hash of about 64 evenly spaced rows: equal for equal arrays,
    cheap at any n (candidates are then compared in full)."""
    rows = np.ascontiguousarray(x[:: max(1, len(x) // 64)] if x.ndim else x)
    return x.shape, x.dtype.str, hashlib.blake2b(rows.tobytes()).hexdigest()


def find_aliases(arrays: Mapping[str, np.ndarray]) -> dict[str, str]:
    """``{alias: original}`` for every array identical (shape, dtype, bytes) to an earlier
    one in mapping order; the first of each group is the original."""
    first: dict[tuple[tuple[int, ...], str, str], str] = {}
    out: dict[str, str] = {}
    for name, x in arrays.items():
        key = _digest(x)
        orig = first.get(key)
        if orig is not None and np.array_equal(arrays[orig], x):
            out[name] = orig
        else:
            first.setdefault(key, name)
    return out


def distinct(
    reps: representations.Representations, aliases: Mapping[str, str]
) -> representations.Representations:
    """``reps`` without the aliases' arrays (what the run computes on)."""
    return representations.Representations(
        arrays={k: v for k, v in reps.arrays.items() if k not in aliases},
        info=reps.info,
        by_entry=reps.by_entry,
        by_identity=reps.by_identity,
    )


def with_aliases(
    records: list[dict[str, Any]], aliases: Mapping[str, str], key: str = "model"
) -> list[dict[str, Any]]:
    """``records`` plus, after each original's records, a copy per alias (``key`` renamed,
    ``alias_of`` set); the order of the originals is kept."""
    if not aliases:
        return records
    by_orig: dict[str, list[str]] = {}
    for alias, orig in aliases.items():
        by_orig.setdefault(orig, []).append(alias)
    out = []
    for rec in records:
        out.append(rec)
        for alias in by_orig.get(rec[key], []):
            out.append({**copy.deepcopy(rec), key: alias, ALIAS_OF: rec[key]})
    return out


def alias_accuracies(
    acc: dict[tuple[str, str, float, int, str], np.ndarray], aliases: Mapping[str, str]
) -> dict[tuple[str, str, float, int, str], np.ndarray]:
    """Per-task accuracies keyed ``(model, prior, T, q, probe)``, with the aliases' copies."""
    out = dict(acc)
    for alias, orig in aliases.items():
        for key, v in acc.items():
            if key[0] == orig:
                renamed = (alias, *key[1:])
                out[renamed] = v
    return out


__all__ = ["ALIAS_OF", "alias_accuracies", "distinct", "find_aliases", "with_aliases"]
