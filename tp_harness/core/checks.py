"""Input checks shared by the math modules: arrays in, clear errors out.

Every public entry point converts its arrays with :func:`as_tensor` so that bad
input fails early with a message naming the argument and the fix.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

ArrayLike = Any  # numpy array, torch tensor or nested sequence

_HALF = (torch.float16, torch.bfloat16)


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``None`` -> CPU; otherwise ``torch.device(device)`` with a clear error for CUDA."""
    if device is None:
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"device={device!r} is not a torch device; use 'cpu', 'cuda' or 'cuda:N' "
            "(or None for the CPU)."
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(
            f"device={device!r} was requested but CUDA is not available; "
            "pass device='cpu' or leave it as None."
        )
    return dev


def as_tensor(
    x: ArrayLike,
    name: str,
    *,
    ndim: int | None = 2,
    device: torch.device | None = None,
    check_finite: bool = True,
) -> torch.Tensor:
    """Convert ``x`` to a torch tensor and check it.

    Float16/bfloat16 are upcast to float32 (CPU half kernels are slow and lossy);
    other float dtypes are kept. Raises ``TypeError`` for non-numeric input and
    ``ValueError`` naming ``name`` for wrong ``ndim``, empty input or NaN/inf.
    """
    if isinstance(x, torch.Tensor):
        t = x.detach()
    elif isinstance(x, np.ndarray) or isinstance(x, (list, tuple)):
        arr = np.asarray(x)
        if arr.dtype == object or not (
            np.issubdtype(arr.dtype, np.number) or arr.dtype == np.bool_
        ):
            raise TypeError(f"{name} must be a numeric array; got dtype {arr.dtype}.")
        t = torch.from_numpy(np.ascontiguousarray(arr))
    else:
        raise TypeError(f"{name} must be a numpy array or torch tensor; got {type(x).__name__}.")
    if t.is_complex():
        raise TypeError(f"{name} must be real-valued; got dtype {t.dtype}.")
    if ndim is not None and t.ndim != ndim:
        hint = " Reshape a single feature with x[:, None]." if ndim == 2 and t.ndim == 1 else ""
        raise ValueError(f"{name} must be {ndim}-D; got shape {tuple(t.shape)}.{hint}")
    if t.numel() == 0:
        raise ValueError(f"{name} is empty (shape {tuple(t.shape)}); pass at least one example.")
    if t.dtype in _HALF:
        t = t.float()
    if device is not None:
        t = t.to(device)
    if check_finite and t.is_floating_point() and not _all_finite(t):
        bad = (
            int((~torch.isfinite(t)).any(dim=-1).sum())
            if t.ndim > 1
            else int((~torch.isfinite(t)).sum())
        )
        raise ValueError(
            f"{name} contains NaN or inf values ({bad} rows affected); "
            "clean or drop those rows before scoring."
        )
    return t


def _all_finite(t: torch.Tensor) -> bool:
    """Whether every entry of a float tensor is finite.

    A finite sum proves it (NaN and inf propagate through a sum), at the cost of one
    reduction; only a non-finite sum (bad entries, or an overflow) needs the full check.
    """
    return bool(torch.isfinite(t.sum())) or bool(torch.isfinite(t).all())


def check_temperature(temperature: float, name: str = "temperature") -> float:
    """Return ``float(temperature)`` or raise if it is not a finite number > 0."""
    try:
        t = float(temperature)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a positive number; got {temperature!r}.") from None
    if not math.isfinite(t) or t <= 0:
        raise ValueError(f"{name} must be a finite number > 0; got {temperature!r}.")
    return t


def inverse_temperatures(temperatures: Sequence[float], dtype: torch.dtype) -> list[float]:
    """``1/T`` for each ``T``, capped at the largest finite value of ``dtype``.

    For ``T`` below ``1/finfo.max`` (1e-39 in float32, 1e-309 in float64) ``1/T`` would
    overflow and ``0 · inf`` would make ``s(K/T)`` NaN where ``K = 0``. With the cap,
    ``K/T`` is ``±inf`` for every ``|K| >= ~100/finfo.max`` and 0 for ``K = 0``, so the
    sigmoid is the exact ``T → 0`` limit ``1[K > 0] + ½·1[K = 0]`` (what the smallest
    representable ``T`` already gives): no finite ``T > 0`` yields NaN.
    """
    big = float(torch.finfo(dtype).max)
    return [big if t * big <= 1.0 else min(1.0 / t, big) for t in temperatures]


def check_temperatures(temperature: float | Sequence[float]) -> tuple[list[float], bool]:
    """Normalise one or many temperatures. Returns (list, was_sequence)."""
    if isinstance(temperature, (list, tuple, np.ndarray, torch.Tensor)):
        values = [check_temperature(t) for t in list(temperature)]
        if not values:
            raise ValueError("temperature is an empty sequence; pass at least one T > 0.")
        return values, True
    return [check_temperature(temperature)], False  # type: ignore[arg-type]


def check_same_n(n_expected: int, t: torch.Tensor, name: str, ref_name: str) -> None:
    """Raise if ``t`` does not have ``n_expected`` rows."""
    if t.shape[0] != n_expected:
        raise ValueError(
            f"{name} has {t.shape[0]} rows but {ref_name} has {n_expected}; "
            "both must describe the same examples in the same order."
        )


def check_positive_int(value: int, name: str, minimum: int = 1) -> int:
    """Return ``int(value)`` or raise if it is not an integer >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an integer >= {minimum}; got {value!r}.")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}; got {value}.")
    return int(value)
