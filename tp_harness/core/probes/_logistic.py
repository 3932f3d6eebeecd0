"""Logistic probes: multinomial logistic regressions for all tasks, one L-BFGS run."""

from __future__ import annotations

import math

import torch

from .._labels import class_counts as count_labels
from ..checks import ArrayLike, check_positive_int
from ._base import _check_alpha, _TaskProbe

_LOGIT_CHUNK = 1 << 25  # logits per L-BFGS block of tasks (n · tasks · q)


class LogisticProbe(_TaskProbe):
    """Multinomial logistic regression for ``S`` tasks, optimised together by L-BFGS.

    Features are standardised with the train mean and std (``StandardScaler``); per
    task the objective is ``Σ_i log-loss_i + (alpha/2)||W||²`` (sklearn's
    ``LogisticRegression(C=1/alpha)``), intercept not penalised, classes absent from
    a task's train labels masked out. Tasks with two classes get penalty ``2·alpha``
    on the two-column softmax, which is sklearn's binomial model exactly. ``tol``
    bounds the largest gradient entry of the per-task mean objective (sklearn's
    ``tol`` for lbfgs). Computed in the features' float dtype.

    Learned state: ``coef_`` (S, q, d) and ``intercept_`` (S, q) on standardised
    features, ``mean_``, ``scale_`` (d,), ``class_counts_`` (S, q) train label counts,
    ``classes_mask_`` (S, q), ``n_iter_`` (L-BFGS iterations, the most over blocks of
    tasks; blocks bound the logits to 2^25 entries).
    """

    def __init__(
        self,
        alpha: float = 1.0,
        *,
        max_iter: int = 100,
        tol: float = 1e-4,
        num_classes: int | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.num_classes = num_classes
        self.device = device

    def _fit(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        q: int,
        *,
        overwrite_x: bool = False,
        class_counts: torch.Tensor | None = None,
    ) -> LogisticProbe:
        alpha = _check_alpha(self.alpha, positive=True)
        max_iter = check_positive_int(self.max_iter, "max_iter")
        self.mean_ = x.mean(dim=0)
        std = x.std(dim=0, unbiased=False)
        self.scale_ = torch.where(std > 0, std, torch.ones_like(std))
        self.class_counts_ = count_labels(y, q) if class_counts is None else class_counts
        self.classes_mask_ = self.class_counts_ > 0  # (S, q)
        two = self.classes_mask_.sum(dim=1) == 2
        penalty = alpha * torch.where(two, 2.0, 1.0).to(x.dtype)  # (S,)
        xs = (x - self.mean_) / self.scale_
        step = max(1, _LOGIT_CHUNK // (x.shape[0] * q))  # tasks per block: bounds memory
        blocks = [
            _lbfgs_multinomial(
                xs,
                y[i : i + step],
                self.classes_mask_[i : i + step],
                penalty[i : i + step],
                max_iter,
                float(self.tol),
            )
            for i in range(0, y.shape[0], step)
        ]
        self.coef_ = torch.cat([w for w, _, _ in blocks]).contiguous()  # (S, q, d)
        self.intercept_ = torch.cat([b for _, b, _ in blocks]).contiguous()  # (S, q)
        self.n_iter_ = max(it for _, _, it in blocks)
        self._remember(x, q, x.dtype)
        return self

    def decision_function(self, x: ArrayLike) -> torch.Tensor:
        """Logits (S, m, q) for features (m, d); absent classes get ``-inf``."""
        xs = (self._check_x(x) - self.mean_) / self.scale_
        logits = torch.einsum("md,sqd->smq", xs, self.coef_) + self.intercept_[:, None, :]
        return logits.masked_fill(~self.classes_mask_[:, None, :], -math.inf)

    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        xs = (x - self.mean_) / self.scale_
        bias = self.intercept_.masked_fill(~self.classes_mask_, -math.inf).reshape(-1)
        w = self.coef_.reshape(-1, self.n_features_in_)
        return torch.addmm(bias, xs, w.T).reshape(x.shape[0], -1, self.num_classes_).argmax(2).T


def _lbfgs_multinomial(
    xs: torch.Tensor,
    y: torch.Tensor,
    mask: torch.Tensor,
    penalty: torch.Tensor,
    max_iter: int,
    tol: float,
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """Minimise Σ_s [mean_i nll_si + penalty_s/(2n) ||W_s||²] -> (coef (S, q, d), b (S, q), it).

    Parameters are class-major (column ``c·S + s``) so the softmax reductions over
    ``q`` run vectorised across tasks; loss and gradient are written out by hand.
    """
    n, d = xs.shape
    s_total, q = mask.shape
    w = torch.zeros(d, q * s_total, dtype=xs.dtype, device=xs.device)
    b = torch.zeros(q * s_total, dtype=xs.dtype, device=xs.device)
    absent = torch.zeros(q, s_total, dtype=xs.dtype, device=xs.device)
    absent = absent.masked_fill(~mask.T, -math.inf).reshape(-1)  # (q·S,)
    true = y.T[:, None, :]  # (n, 1, S)
    reg = (penalty / n).repeat(q)  # (q·S,)
    opt = torch.optim.LBFGS(
        [w, b],
        lr=1.0,
        max_iter=max_iter,
        tolerance_grad=tol,
        tolerance_change=1e-12,
        history_size=10,
        line_search_fn="strong_wolfe",
    )

    def closure() -> torch.Tensor:
        z = torch.addmm(b + absent, xs, w).view(n, q, s_total)  # logits
        top = z.amax(dim=1, keepdim=True)
        picked = z.gather(1, true)
        z.sub_(top).exp_()  # (n, q, S), 0 for absent classes
        total = z.sum(dim=1, keepdim=True)
        nll = (top + total.log() - picked).sum(dtype=torch.float64) / n
        loss = nll + 0.5 * (reg * w.pow(2)).sum(dtype=torch.float64)
        z.div_(total).scatter_add_(1, true, torch.full_like(picked, -1.0)).div_(n)
        w.grad = torch.addmm(w * reg, xs.T, z.view(n, -1))
        b.grad = z.sum(dim=0).reshape(-1)
        return loss

    opt.step(closure)
    n_iter = int(opt.state[w].get("n_iter", 0))
    return w.view(d, q, s_total).permute(2, 1, 0), b.view(q, s_total).T, n_iter
