"""The moments' tile epilogue as one ``torch.compile``'d function: Triton on CUDA.

:func:`tile_row_sums` is written in plain torch; compiled by inductor it becomes one
fused kernel per tile (checked on CPU with ``TORCH_LOGS=output_code``) that reads the
prior tile once, writes the two sigmoid arrays per temperature once and reads them with
each model tile for both products and the row sums (accumulated in float64), instead of
the eager path's passes over ``(models, b, c)`` temporaries. It is selected automatically
for CUDA tiles when Triton is installed (:func:`use_compiled`);
``TP_HARNESS_COMPILE_EPILOGUE=1`` selects it on CPU too (inductor's C++ backend: how the
tests check the same graph without a GPU), ``TP_HARNESS_COMPILE_EPILOGUE=0`` or
``TP_HARNESS_NO_JIT=1`` turns it off (another value is an error). If compiling fails, the
eager function (same math) is used and a warning says why.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import warnings
from collections.abc import Callable

import torch

_ENV = "TP_HARNESS_COMPILE_EPILOGUE"


def tile_row_sums(k: torch.Tensor, ms: torch.Tensor, inv_t: torch.Tensor) -> torch.Tensor:
    """Row sums of one tile: ``k (b, c)`` prior tile, ``ms (m, b, c)`` model tiles,
    ``inv_t (t,)`` inverse temperatures, one dtype -> ``(m, t, 2, b)`` float64:
    ``Σ_j M_ij s_ij`` and ``Σ_j M_ij² s_ij s(-x_ij)`` with ``x = K/T``, ``s = s(x)``
    (products in the tile dtype, sums in float64)."""
    x = k[None] * inv_t[:, None, None]  # (t, b, c)
    s = torch.sigmoid(x)
    v = s * torch.sigmoid(-x)
    mean = torch.sum(ms[:, None] * s[None], dim=-1, dtype=torch.float64)  # (m, t, b)
    var = torch.sum(ms[:, None] * ms[:, None] * v[None], dim=-1, dtype=torch.float64)
    return torch.stack([mean, var], dim=2)


def _setting() -> str | None:
    """``TP_HARNESS_COMPILE_EPILOGUE`` (``"0"``, ``"1"`` or unset), ``"0"`` under
    ``TP_HARNESS_NO_JIT=1``; raises ``ValueError`` naming the variable for another value."""
    value = os.environ.get(_ENV)
    if value is not None and value.strip() not in ("0", "1"):
        raise ValueError(f"{_ENV}={value!r} must be 0 or 1 (or unset: on for CUDA with Triton).")
    if os.environ.get("TP_HARNESS_NO_JIT", "0") == "1":
        return "0"
    return value.strip() if value is not None else None


def use_compiled(device: torch.device) -> bool:
    """Whether tiles on ``device`` take the compiled epilogue: CUDA with Triton installed,
    unless ``TP_HARNESS_COMPILE_EPILOGUE`` says otherwise (read at every call)."""
    setting = _setting()
    if setting is not None:
        return setting == "1"
    return device.type == "cuda" and importlib.util.find_spec("triton") is not None


@functools.cache
def _compiled() -> Callable[..., torch.Tensor]:
    return torch.compile(tile_row_sums, dynamic=True, fullgraph=True)


_failed: list[str] = []


def row_sums(k: torch.Tensor, ms: torch.Tensor, inv_t: torch.Tensor) -> torch.Tensor:
    """:func:`tile_row_sums` compiled; the eager function if compiling failed once."""
    if not _failed:
        try:
            return _compiled()(k, ms, inv_t)
        except Exception as exc:  # a missing compiler or Triton: fall back, say why once
            _failed.append(f"{type(exc).__name__}: {exc}".splitlines()[0])
            warnings.warn(
                "the compiled moment epilogue could not be built "
                f"({_failed[0]}); using the eager torch epilogue "
                f"(set {_ENV}=0 to skip the attempt).",
                RuntimeWarning,
                stacklevel=2,
            )
    return tile_row_sums(k, ms, inv_t)
