"""The math core: kernels in factor form, exact streaming moments, task sampling,
batched probes, baselines and statistics (pure functions of arrays).

Imports only torch, numpy, numba (compiled kernels, loaded on first use) and
threadpoolctl; no Hugging Face library. Every public entry point checks its input
(:mod:`.checks`) and raises a ``ValueError``/``TypeError`` naming the argument.
"""

from . import baselines, kernels, moments, probes, sampling, stats
from .baselines import alpha_req, kernel_target_alignment, linear_cka, rankme
from .kernels import (
    FACTOR_KERNELS,
    NORMALIZATIONS,
    Kernel,
    build_kernel,
    build_kernels,
    kernel_names,
    register_kernel,
    weighted_sum,
)
from .moments import MomentResult, moment_sums, task_prior_moments, tile_plan
from .probes import PROBES, ProbeResult, probe_names, probe_tasks
from .sampling import sample_tasks, sample_tasks_with_info
from .stats import correlation_with_ci

__all__ = [
    "FACTOR_KERNELS",
    "NORMALIZATIONS",
    "PROBES",
    "Kernel",
    "MomentResult",
    "ProbeResult",
    "alpha_req",
    "baselines",
    "build_kernel",
    "build_kernels",
    "correlation_with_ci",
    "kernel_names",
    "kernel_target_alignment",
    "kernels",
    "linear_cka",
    "moment_sums",
    "moments",
    "probe_names",
    "probe_tasks",
    "probes",
    "rankme",
    "register_kernel",
    "sample_tasks",
    "sample_tasks_with_info",
    "sampling",
    "stats",
    "task_prior_moments",
    "tile_plan",
    "weighted_sum",
]
