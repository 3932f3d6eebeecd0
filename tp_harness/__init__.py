"""tp-harness: score representation models over the whole space of tasks (Task Priors).

The house has three floors (``docs/architecture.md``): :mod:`tp_harness.core` (the
math: kernels, moments, sampling, probes, baselines; torch and numpy only),
:mod:`tp_harness.evaluation` (config, data, embedding, pipeline) and
:mod:`tp_harness.publishing` (run folder, report, Hub, leaderboard), with
:mod:`tp_harness.cli` on top. ``import tp_harness`` loads the core only; ``run``,
``Config``, ``load_config`` and ``Results`` are imported on first access.
"""

from __future__ import annotations

import importlib
from typing import Any

from .core import kernels
from .core.kernels import Kernel, build_kernel, build_kernels, kernel_names
from .core.loss import TaskPriorLoss, task_prior_loss
from .core.moments import MomentResult, task_prior_moments
from .core.probes import ProbeResult, probe_tasks
from .core.sampling import sample_tasks, sample_tasks_with_info

__version__ = "0.1.0"

_LAZY = {"Config": "config", "load_config": "config", "run": "pipeline", "Results": "results"}


def __getattr__(name: str) -> Any:
    """``run``, ``Config``, ``load_config``, ``Results``: the evaluation floor, on first use."""
    if name in _LAZY:
        module = importlib.import_module(f".evaluation.{_LAZY[name]}", __name__)
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})


__all__ = [
    "Config",
    "Kernel",
    "MomentResult",
    "ProbeResult",
    "Results",
    "TaskPriorLoss",
    "__version__",
    "build_kernel",
    "build_kernels",
    "kernel_names",
    "kernels",
    "load_config",
    "probe_tasks",
    "run",
    "sample_tasks",
    "sample_tasks_with_info",
    "task_prior_loss",
    "task_prior_moments",
]
