"""Whether the compiled CPU kernels of the sampler and the probes run, and loading them.

The kernels live in ``sampling_kernels``, ``probe_kernels`` and ``label_kernels`` (numba),
``moment_kernels`` (the moments' tile epilogue) and ``factor_kernels`` (the
``centered_cosine`` factor build), with ``host_blas`` (a threaded SYRK on numpy's BLAS)
beside them; this package does not import numba itself: :func:`kernels` imports a kernel module
on first use. Without numba, or with ``TP_HARNESS_NO_JIT=1``, every caller uses its torch
implementation, which is also the CUDA path; ``torch_epilogue`` is the moments' tile
epilogue through ``torch.compile`` (Triton), selected on CUDA.
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import os
from types import ModuleType

import torch


@functools.cache
def available() -> bool:
    """True when numba is installed (checked without importing it)."""
    return importlib.util.find_spec("numba") is not None


def enabled() -> bool:
    """True when numba is installed and ``TP_HARNESS_NO_JIT`` is not set to 1 (read at
    every call, so it can be switched at run time)."""
    return available() and os.environ.get("TP_HARNESS_NO_JIT", "0") != "1"


def use_jit(device: torch.device) -> bool:
    """Whether work on ``device`` runs the compiled kernels (CPU and numba only)."""
    return device.type == "cpu" and enabled()


def sync_threads() -> int:
    """Run numba's parallel loops on as many threads as torch uses; returns that number."""
    import numba

    limit = int(numba.config.NUMBA_NUM_THREADS)  # type: ignore[attr-defined]
    threads = max(1, min(torch.get_num_threads(), limit))
    numba.set_num_threads(threads)
    return threads


def kernels(name: str) -> ModuleType:
    """The kernel module ``tp_harness.core.compiled.<name>``, imported on first use, with numba's
    thread count set to torch's."""
    module = importlib.import_module(f"{__package__}.{name}")
    sync_threads()
    return module
