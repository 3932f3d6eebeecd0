"""What the batched probes share: label and setting checks, class counts, the
majority-class baseline, and :class:`_TaskProbe` (sklearn-style ``fit``/``predict``
plumbing around each probe's ``_fit``/``_predict`` math)."""

from __future__ import annotations

import math
from typing import TypeVar

import numpy as np
import torch

from .._labels import class_counts
from ..checks import ArrayLike, as_tensor, check_positive_int, resolve_device

_P = TypeVar("_P", bound="_TaskProbe")
_CHUNK = 1 << 22  # elements per temporary block (32 MiB in float64)


def _check_alpha(alpha: float, *, positive: bool = False) -> float:
    try:
        a = float(alpha)
    except (TypeError, ValueError):
        raise TypeError(f"alpha must be a number >= 0; got {alpha!r}.") from None
    if not math.isfinite(a) or a < 0 or (positive and a == 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"alpha must be a finite number {bound}; got {alpha!r}.")
    return a


def as_tasks(
    tasks: ArrayLike,
    n: int | None = None,
    *,
    num_classes: int | None = None,
    device: torch.device | None = None,
    name: str = "tasks",
) -> tuple[torch.Tensor, int]:
    """Check integer task labels: (S, n) or (n,) -> ((S, n) LongTensor, q).

    ``q`` is ``num_classes`` or, if ``None``, ``max label + 1``. Labels must be ``>= 0``.
    """
    t = as_tensor(tasks, name, ndim=None, device=device)
    if t.ndim not in (1, 2):
        raise ValueError(f"{name} must be (num_tasks, n) or (n,); got shape {tuple(t.shape)}.")
    if t.is_floating_point():
        if not bool((t == t.round()).all()):
            raise ValueError(f"{name} must hold integer class labels; got non-integer values.")
    t = t.long().reshape(-1, t.shape[-1])
    if n is not None and t.shape[1] != n:
        raise ValueError(
            f"{name} has {t.shape[1]} examples per task but features has {n} "
            "rows; both must describe the same examples in the same order."
        )
    lo, hi = (int(v) for v in torch.aminmax(t))  # one pass
    if lo < 0:
        raise ValueError(f"{name} must hold labels 0..q-1; found {lo}.")
    q = hi + 1
    if num_classes is not None:
        num_classes = check_positive_int(num_classes, "num_classes")
        if q > num_classes:
            raise ValueError(f"{name} has label {q - 1} but num_classes={num_classes}.")
        q = num_classes
    return t, q


def _ndim(a: ArrayLike) -> int:
    return int(a.ndim) if hasattr(a, "ndim") else int(np.ndim(a))


def majority_rate(
    train_tasks: torch.Tensor,
    test_tasks: torch.Tensor,
    q: int,
    *,
    train_counts: torch.Tensor | None = None,
) -> torch.Tensor:
    """Test accuracy of predicting each task's most frequent train class. -> (S,) float64.

    Ties between train classes go to the smallest label. ``train_counts`` (S, q): the
    train class counts, when already known (a fitted probe's ``class_counts_``).
    """
    counts = class_counts(train_tasks, q) if train_counts is None else train_counts
    if counts.shape != (train_tasks.shape[0], q):
        raise ValueError(
            f"train_counts has shape {tuple(counts.shape)}; it must be "
            f"(num_tasks, q) = ({train_tasks.shape[0]}, {q})."
        )
    majority = counts.argmax(dim=1, keepdim=True)  # (S, 1)
    return (test_tasks == majority).double().mean(dim=1)


class _TaskProbe:
    """sklearn-style plumbing shared by the probes: checks in ``fit``/``predict``,
    math in ``_fit(x, y, q)`` / ``_predict(x) -> (S, m)`` on checked tensors.
    ``_fit(..., overwrite_x=True)`` says ``x`` is a private copy the probe may modify;
    ``class_counts`` (S, q), when given, are y's label counts (not counted again)."""

    num_classes: int | None
    device: str | torch.device | None

    def fit(self: _P, x: ArrayLike, tasks: ArrayLike) -> _P:
        """Fit on features (n, d) and integer tasks (S, n) or (n,); returns ``self``."""
        dev = resolve_device(self.device)
        xt = as_tensor(x, "x", device=dev)
        xt = xt if xt.is_floating_point() else xt.double()
        y, q = as_tasks(tasks, xt.shape[0], num_classes=self.num_classes, device=dev)
        self._single = _ndim(tasks) == 1
        return self._fit(xt, y, q)

    def predict(self, x: ArrayLike) -> torch.Tensor:
        """Predicted labels (S, m) LongTensor for features (m, d); (m,) if fitted on (n,)."""
        out = self._predict(self._check_x(x))
        return out[0] if self._single else out

    def _check_x(self, x: ArrayLike) -> torch.Tensor:
        if not hasattr(self, "n_features_in_"):
            raise RuntimeError(
                f"This {type(self).__name__} is not fitted yet; call fit(x, tasks) first."
            )
        xt = as_tensor(x, "x", device=self._device).to(self._dtype)
        if xt.shape[1] != self.n_features_in_:
            raise ValueError(
                f"x has {xt.shape[1]} features; the probe was fitted on {self.n_features_in_}."
            )
        return xt

    def _remember(self, x: torch.Tensor, q: int, dtype: torch.dtype) -> None:
        self.n_features_in_, self.num_classes_ = int(x.shape[1]), q
        self._device, self._dtype = x.device, dtype
        if not hasattr(self, "_single"):
            self._single = False

    def _fit(
        self: _P,
        x: torch.Tensor,
        y: torch.Tensor,
        q: int,
        *,
        overwrite_x: bool = False,
        class_counts: torch.Tensor | None = None,
    ) -> _P:
        raise NotImplementedError

    def _fit_rows(
        self: _P,
        x: torch.Tensor,
        rows: torch.Tensor,
        y: torch.Tensor,
        q: int,
        *,
        class_counts: torch.Tensor | None = None,
    ) -> _P:
        """``_fit`` on ``x[rows]`` (checked inputs). Probes override it to fuse the row
        gather into their fit."""
        return self._fit(
            x[rows],
            y,
            q,
            overwrite_x=True,  # x[rows] is a private copy
            class_counts=class_counts,
        )

    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError
