"""tp-harness: score representation models over the whole space of tasks (Task Priors)."""

from .kernels import Kernel, build_kernel, build_kernels, kernel_names
from .moments import MomentResult, task_prior_moments

__version__ = "0.1.0"

__all__ = [
    "Kernel",
    "MomentResult",
    "__version__",
    "build_kernel",
    "build_kernels",
    "kernel_names",
    "task_prior_moments",
]
