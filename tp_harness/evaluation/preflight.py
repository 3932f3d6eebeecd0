"""Checks that run after the data is loaded and before anything is embedded.

A run that cannot finish should say so in seconds, not after the compute: every model
and prior spec must fit the dataset's modality, and the sampled tasks must fit in
memory. (The output folder and the push ids are checked by the CLI before this.)
"""

from __future__ import annotations

import os
from typing import Any

from .config import Config
from .encoders import Encoder, check_encoder_modality
from .features import classic_modality, is_classic_spec, parse_classic_spec
from .precomputed import is_precomputed_spec, parse_precomputed_spec
from .priors import LABELS_PRIOR, SELF_PRIOR

#: Sampled tasks may take at most this fraction of the machine's memory.
TASK_MEMORY_FRACTION = 0.5
_BYTES_PER_LABEL = 8 * 2  # int64 tasks + the probes' per-task working copy


def spec_modality(
    entry: str, config: Config, encoders: dict[str, Encoder] | None = None
) -> str | None:
    """``"text"`` or ``"image"``: the input a spec embeds (None when any fits: a
    precomputed file, an encoder that declares none)."""
    if encoders and entry in encoders:
        return encoders[entry].modality
    if is_precomputed_spec(entry):
        parse_precomputed_spec(entry)  # grammar, options, the file exists, a known format
        return None
    if is_classic_spec(entry):
        kind, opts = parse_classic_spec(entry)
        if kind == "random-projection" and not is_classic_spec(str(opts["of"])):
            return spec_modality(str(opts["of"]), config, encoders)
        return classic_modality(entry)
    from .embed import resolve_model
    from .representations import _model_spec

    resolved = resolve_model(_model_spec(entry, config))
    return "image" if resolved.kind == "image" else "text"


def check_modalities(config: Config, data: Any, encoders: dict[str, Encoder] | None = None) -> None:
    """Raise ``ValueError`` naming the first model or prior spec whose input is not the
    dataset's (a text model on an image dataset failed only after the others embedded).
    Every kind of spec is checked: models, baselines (``random-projection`` by its
    ``of=``), precomputed files (they exist, their options parse) and encoders."""
    column = data.image_column if data.modality == "image" else data.text_column
    priors = [
        p for p in config.priors if p not in (LABELS_PRIOR, SELF_PRIOR) and p not in config.models
    ]
    for role, entries in (("model", config.models), ("prior", priors)):
        for entry in entries:
            try:
                kind = spec_modality(entry, config, encoders)
            except (ValueError, FileNotFoundError, OSError):
                if role == "prior" and not is_precomputed_spec(entry) and ":" not in entry:
                    continue  # may name a representation a model spec computes
                raise
            if kind is not None and kind != data.modality:
                raise ValueError(
                    f"{role} {entry!r} embeds {kind} but dataset {config.dataset!r} holds "
                    f"{data.modality} (column {column!r}); choose a {data.modality} model, or "
                    f"a dataset with a {kind} column (text_column= / image_column=)."
                )


def num_task_sets(config: Config, num_models: int) -> int:
    """How many task sets the run samples: prior x task temperature x q (x model for self)."""
    temps = 1 if config.task_temperature is not None else len(config.temperatures)
    per_prior = [num_models if p == SELF_PRIOR else 1 for p in config.priors]
    return sum(per_prior) * temps * len(config.num_classes)


def task_bytes(config: Config, n: int, num_models: int) -> int:
    """Bytes the sampled tasks (and the probes' copy of one set) take for ``n`` examples."""
    return num_task_sets(config, num_models) * config.num_tasks * n * _BYTES_PER_LABEL


def physical_memory() -> int | None:
    """Bytes of memory on this machine (None where the OS does not say)."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return None


def check_task_memory(config: Config, n: int, memory: int | None = None) -> None:
    """Raise ``ValueError`` naming ``num_tasks`` when the tasks would not fit in memory."""
    need = task_bytes(config, n, len(config.models))
    total = physical_memory() if memory is None else memory
    if total is None or need <= TASK_MEMORY_FRACTION * total:
        return
    sets = num_task_sets(config, len(config.models))
    raise ValueError(
        f"num_tasks={config.num_tasks} would hold ~{need / 2**30:.1f} GiB of sampled tasks "
        f"({sets} task sets x {config.num_tasks} tasks x {n} examples x {_BYTES_PER_LABEL} "
        f"bytes), more than {TASK_MEMORY_FRACTION:.0%} of this machine's "
        f"{total / 2**30:.1f} GiB; lower --num-tasks (or the number of priors, temperatures "
        "or class counts)."
    )


def preflight(config: Config, data: Any, encoders: dict[str, Encoder] | None = None) -> None:
    """Every check that needs the data but no embedding."""
    if not config.models:
        raise ValueError("config.models is empty: pass at least one model spec.")
    check_task_memory(config, len(data.example_ids))
    for name, enc in (encoders or {}).items():
        check_encoder_modality(name, enc, data)
    check_modalities(config, data, encoders)
