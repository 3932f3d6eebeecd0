"""tp-harness: score representation models over the whole space of tasks (Task Priors).

The math is importable without transformers/datasets/accelerate: kernels, moments,
sampling, probes and baselines need only torch and numpy.
"""

from .config import Config, load_config
from .kernels import Kernel, build_kernel, build_kernels, kernel_names
from .moments import MomentResult, task_prior_moments
from .pipeline import run
from .probes import ProbeResult, probe_tasks
from .results import Results
from .sampling import sample_tasks, sample_tasks_with_info

__version__ = "0.1.0"


__all__ = [
    "Config",
    "Kernel",
    "MomentResult",
    "ProbeResult",
    "Results",
    "__version__",
    "build_kernel",
    "build_kernels",
    "kernel_names",
    "load_config",
    "probe_tasks",
    "run",
    "sample_tasks",
    "sample_tasks_with_info",
    "task_prior_moments",
]
