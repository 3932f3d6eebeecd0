"""Probes fitted on many sampled tasks at once: ridge, cosine kNN, multinomial logistic.

A *task* is an integer label vector over the ``n`` examples; ``S`` tasks form a
``(S, n)`` array with labels ``0..q-1``. All tasks share one train/test split and
all the work that does not depend on the labels:

* ``ridge``: one factorisation of the train Gram matrix (the ``d x d`` primal or
  the ``n_train x n_train`` dual system, whichever is smaller, Cholesky in float64)
  and one product for the ``S·q`` one-hot targets, whose class sums come from a
  compiled kernel on the CPU. Per task this is exactly
  ``sklearn.linear_model.Ridge(alpha)`` on one-hot targets (X and Y centered on the
  train set, intercept not penalised); the prediction is the argmax, from float32
  scores whose decisions are certified against a rounding-error bound or redone in
  float64 (see ``docs/probes.md``).
* ``knn``: one cosine neighbour graph (top-``k`` train rows per test row), then a
  majority vote per task; ties go to the smallest label, as in sklearn's
  ``KNeighborsClassifier(n_neighbors=k, metric="cosine")``.
* ``logistic``: multinomial logistic regression on features standardised with the
  train mean/std, all tasks optimised together by L-BFGS; the objective per task is
  sklearn's ``C Σ_i log-loss + ½||W||²`` with ``C = 1/alpha`` (intercept not
  penalised; a task with two classes gets sklearn's binomial penalty).

:func:`probe_tasks` draws the split and returns a :class:`ProbeResult`; the
estimator classes (:class:`RidgeProbe`, :class:`KNNProbe`, :class:`LogisticProbe`)
follow sklearn's conventions: settings in ``__init__``, ``fit`` returns ``self``,
learned state ends in ``_``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import torch

from . import _jit
from ._labels import class_counts, take_columns
from ._validation import ArrayLike, as_tensor, check_positive_int, resolve_device

PROBES = ("ridge", "knn", "logistic")
_P = TypeVar("_P", bound="_TaskProbe")
_EPS = 1e-12
_CHUNK = 1 << 22  # elements per temporary block (32 MiB in float64)
_LOGIT_CHUNK = 1 << 25  # logits per L-BFGS block of tasks (n · tasks · q)


# ----------------------------------------------------------------------------- checks

def _check_alpha(alpha: float, *, positive: bool = False) -> float:
    try:
        a = float(alpha)
    except (TypeError, ValueError):
        raise TypeError(f"alpha must be a number >= 0; got {alpha!r}.") from None
    if not math.isfinite(a) or a < 0 or (positive and a == 0):
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"alpha must be a finite number {bound}; got {alpha!r}.")
    return a


def _check_fraction(test_fraction: float) -> float:
    f = float(test_fraction)
    if not 0.0 < f < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1); got {test_fraction!r}.")
    return f


def as_tasks(tasks: ArrayLike, n: int | None = None, *, num_classes: int | None = None,
             device: torch.device | None = None, name: str = "tasks") -> tuple[torch.Tensor, int]:
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
        raise ValueError(f"{name} has {t.shape[1]} examples per task but features has {n} "
                         "rows; both must describe the same examples in the same order.")
    if int(t.min()) < 0:
        raise ValueError(f"{name} must hold labels 0..q-1; found {int(t.min())}.")
    q = int(t.max()) + 1
    if num_classes is not None:
        num_classes = check_positive_int(num_classes, "num_classes")
        if q > num_classes:
            raise ValueError(f"{name} has label {q - 1} but num_classes={num_classes}.")
        q = num_classes
    return t, q


def _ndim(a: ArrayLike) -> int:
    return int(a.ndim) if hasattr(a, "ndim") else int(np.ndim(a))


def train_test_indices(n: int, test_fraction: float = 0.25,
                       seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """One seeded random split of ``range(n)``: sorted (train, test) LongTensors.

    ``n_test = ceil(test_fraction · n)`` as in sklearn's ``train_test_split``. Not
    stratified (the tasks differ). Both sides need at least 2 examples.
    """
    f = _check_fraction(test_fraction)
    seed = check_positive_int(seed, "seed", minimum=0)
    n_test = math.ceil(f * n)
    if n_test < 2 or n - n_test < 2:
        raise ValueError(f"test_fraction={test_fraction} on n={n} examples gives {n_test} test "
                         f"and {n - n_test} train examples; each split needs at least 2.")
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return perm[n_test:].sort().values, perm[:n_test].sort().values


def _class_counts(y: torch.Tensor, q: int) -> torch.Tensor:
    """Class counts per task: (S, n) labels in 0..q-1 -> (S, q) float64."""
    return class_counts(y, q).double()


def majority_rate(train_tasks: torch.Tensor, test_tasks: torch.Tensor, q: int) -> torch.Tensor:
    """Test accuracy of predicting each task's most frequent train class. -> (S,) float64.

    Ties between train classes go to the smallest label.
    """
    majority = _class_counts(train_tasks, q).argmax(dim=1, keepdim=True)  # (S, 1)
    return (test_tasks == majority).double().mean(dim=1)


# ----------------------------------------------------------------------------- ridge

def _gram(m: torch.Tensor) -> torch.Tensor:
    """``mᵀ m`` (p, p) for m (n, p), from three quarters of a full product.

    With ``m = [m1 m2]`` (columns split in half): ``m1ᵀ m`` gives the top block rows,
    ``m2ᵀ m2`` the bottom-right block and symmetry the rest; the entries equal those
    of ``m.T @ m``.
    """
    p = m.shape[1]
    if p < 128:
        return m.T @ m
    h = p // 2
    top = m[:, :h].T @ m  # (h, p)
    gram = torch.empty(p, p, dtype=m.dtype, device=m.device)
    gram[:h] = top
    gram[h:, :h] = top[:, h:].T
    gram[h:, h:] = m[:, h:].T @ m[:, h:]
    return gram


def _psd_solve_rows(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``b a⁻¹`` (rows of ``b`` solved) for symmetric PSD ``a``; contiguous (k, p).

    Cholesky; with many rows one product with the explicit inverse, otherwise
    triangular solves; the pseudo-inverse when ``a`` is singular.
    """
    chol, info = torch.linalg.cholesky_ex(a)
    if int(info) == 0:
        if b.shape[0] > 2 * a.shape[0]:  # many right-hand sides: one GEMM with a⁻¹
            return b @ torch.cholesky_inverse(chol)
        return torch.cholesky_solve(b.T, chol).T.contiguous()
    evals, evecs = torch.linalg.eigh(a)
    tol = float(evals.abs().max()) * a.shape[0] * torch.finfo(a.dtype).eps
    inv = torch.where(evals > tol, 1.0 / evals.clamp_min(tol), torch.zeros_like(evals))
    return ((b @ evecs) * inv) @ evecs.T


def class_sums(m: torch.Tensor, y: torch.Tensor, q: int, *,
               rows_sum_to_zero: bool = False) -> torch.Tensor:
    """``onehot(y)ᵀ m`` for all tasks: (n, p), (S, n) -> (S·q, p), row ``s·q + c``.

    Row ``s·q + c`` is the sum of the rows of ``m`` whose label in task ``s`` is ``c``.
    On the CPU a compiled pass over the rows per block of tasks (``S·n·p`` adds);
    otherwise one dense product per block of tasks (one-hot blocks built on the fly),
    where ``rows_sum_to_zero`` (the rows of ``m`` sum to 0, e.g. centered features)
    makes the last class minus the sum of the others, saving one class in ``q``.
    """
    n, p = m.shape
    s_total = y.shape[0]
    if _jit.use_jit(m.device) and m.dtype in (torch.float32, torch.float64):
        return _class_sums_compiled(m, y, q)
    qb = q - 1 if rows_sum_to_zero and q > 1 else q
    sums = torch.empty(s_total * qb, p, dtype=m.dtype, device=m.device)
    step = max(1, _CHUNK // (n * qb))
    classes = torch.arange(qb, device=y.device)[None, :, None]
    onehot = torch.empty(min(step, s_total), qb, n, dtype=m.dtype, device=m.device)
    for s0 in range(0, s_total, step):
        yb = y[s0:s0 + step]  # (Sb, n)
        block = onehot[:yb.shape[0]]
        torch.eq(yb[:, None, :], classes, out=block)  # (Sb, qb, n) 0/1 in m's dtype
        torch.mm(block.view(-1, n), m, out=sums[s0 * qb:(s0 + yb.shape[0]) * qb])
    if qb == q:
        return sums
    g = sums.view(s_total, qb, p)
    return torch.cat([g, -g.sum(dim=1, keepdim=True)], dim=1).reshape(s_total * q, p)


def _class_sums_compiled(m: torch.Tensor, y: torch.Tensor, q: int) -> torch.Tensor:
    """:func:`class_sums` by the numba kernel. -> (S·q, p) in m's dtype."""
    kern = _jit.kernels("_probe_kernels")
    out = torch.empty(y.shape[0] * q, m.shape[1], dtype=m.dtype)
    group, groups = kern.plan_groups(q, m.shape[1], m.element_size())
    bad = kern.class_sums(m.contiguous().numpy(), y.contiguous().numpy(), q, group, groups,
                          _jit.sync_threads(), out.numpy())
    if bad:
        raise ValueError(f"y has labels outside 0..{q - 1}; labels must be 0..q-1.")
    return out


def _exact_float32_products() -> bool:
    """True when float32 matrix products are IEEE float32 (no bf16/TF32 shortcuts)."""
    mkldnn = getattr(getattr(torch.backends, "mkldnn", None), "matmul", None)
    return (torch.get_float32_matmul_precision() == "highest"
            and getattr(mkldnn, "fp32_precision", "none") in ("none", "ieee"))


class _TaskProbe:
    """sklearn-style plumbing shared by the probes: checks in ``fit``/``predict``,
    math in ``_fit(x, y, q)`` / ``_predict(x) -> (S, m)`` on checked tensors.
    ``_fit(..., overwrite_x=True)`` says ``x`` is a private copy the probe may modify."""

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
            raise RuntimeError(f"This {type(self).__name__} is not fitted yet; "
                               "call fit(x, tasks) first.")
        xt = as_tensor(x, "x", device=self._device).to(self._dtype)
        if xt.shape[1] != self.n_features_in_:
            raise ValueError(f"x has {xt.shape[1]} features; the probe was fitted on "
                             f"{self.n_features_in_}.")
        return xt

    def _remember(self, x: torch.Tensor, q: int, dtype: torch.dtype) -> None:
        self.n_features_in_, self.num_classes_ = int(x.shape[1]), q
        self._device, self._dtype = x.device, dtype
        if not hasattr(self, "_single"):
            self._single = False

    def _fit(self: _P, x: torch.Tensor, y: torch.Tensor, q: int, *,
             overwrite_x: bool = False) -> _P:
        raise NotImplementedError

    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError


class RidgeProbe(_TaskProbe):
    """Ridge regression on one-hot targets for ``S`` tasks at once.

    Per task equal to ``sklearn.linear_model.Ridge(alpha)`` fitted on
    ``onehot(y, q)``; ``predict`` is the argmax over classes. Computed in float64.

    Learned state: ``coef_`` (S, q, d), ``intercept_`` (S, q), ``num_classes_``,
    ``n_features_in_``.
    """

    def __init__(self, alpha: float = 1.0, *, num_classes: int | None = None,
                 device: str | torch.device | None = None) -> None:
        self.alpha = alpha
        self.num_classes = num_classes
        self.device = device

    def _fit(self, x: torch.Tensor, y: torch.Tensor, q: int, *,
             overwrite_x: bool = False) -> RidgeProbe:
        alpha = _check_alpha(self.alpha)
        xd = x.double()
        own = overwrite_x or xd.data_ptr() != x.data_ptr()  # a private copy: center in place
        x = xd
        n, d = x.shape
        x_mean = x.mean(dim=0)
        xc = x.sub_(x_mean) if own else x - x_mean
        if d <= n:  # primal: W = Yᵀ Xc (XcᵀXc + αI)⁻¹
            gram = _gram(xc)
            gram.diagonal().add_(alpha)
            w = _psd_solve_rows(gram, class_sums(xc, y, q, rows_sum_to_zero=True))
        else:  # dual: Wᵀ = Xcᵀ (XcXcᵀ + αI)⁻¹ Y  (Y need not be centered: Xcᵀ1 = 0)
            gram = xc @ xc.T
            gram.diagonal().add_(alpha)
            w = class_sums(_psd_solve_rows(gram, xc.T).T, y, q)  # (a⁻¹ Xc), a symmetric
        y_mean = (_class_counts(y, q) / n).reshape(-1)  # (S·q,)
        self.coef_ = w.reshape(-1, q, d)  # (S, q, d); row s·q + c of w
        self.intercept_ = (y_mean - w @ x_mean).reshape(-1, q)  # (S, q)
        self._x_mean, self._y_mean = x_mean, y_mean.view(-1, q)
        self._remember(x, q, torch.float64)
        return self

    def decision_function(self, x: ArrayLike) -> torch.Tensor:
        """Scores (S, m, q) for features (m, d)."""
        xt = self._check_x(x)
        return torch.einsum("md,sqd->smq", xt, self.coef_) + self.intercept_[:, None, :]

    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        if _jit.use_jit(x.device) and _exact_float32_products():
            return self._predict_checked(x)
        return self._predict_float64(x)

    def _predict_float64(self, x: torch.Tensor) -> torch.Tensor:
        """argmax of ``x wᵀ + b`` in float64, in row blocks. -> (S, m)."""
        w, b = self.coef_.reshape(-1, self.n_features_in_), self.intercept_.reshape(-1)
        q = self.num_classes_
        out = torch.empty(w.shape[0] // q, x.shape[0], dtype=torch.long, device=x.device)
        rows = max(1, _CHUNK // w.shape[0])
        for i in range(0, x.shape[0], rows):
            scores = torch.addmm(b, x[i:i + rows], w.T)  # (rows, S·q)
            out[:, i:i + rows] = scores.reshape(scores.shape[0], -1, q).argmax(2).T
        return out  # (S, m)

    def _predict_checked(self, x: torch.Tensor) -> torch.Tensor:
        """The float64 argmax, from float32 scores plus a rounding-error certificate.

        Scores ``(x - μ)·w + ȳ`` are formed in float32 (half the time of float64).
        For ``d`` features each float32 score is within
        ``e = (d + 2) 2⁻²⁴ (‖x - μ‖ ‖w‖ + |ȳ|)`` of its exact value (the dot-product
        bound ``γ_d Σ|x_k w_k|`` plus one rounding of each input); a decision whose
        top-two gap exceeds ``2e`` (taken with a margin) is the exact argmax, and the
        rest (well under 1% on typical tasks) are recomputed in float64 by the kernel
        as ``(x - μ)·w + ȳ``. The labels equal the float64 path's except at float64
        ties (scores equal to ~1e-16), as any two float64 evaluations may differ.
        """
        kern = _jit.kernels("_probe_kernels")
        q, d = self.num_classes_, self.n_features_in_
        xc = x.double() - self._x_mean  # (m, d)
        w = self.coef_.reshape(-1, d)  # (S·q, d)
        w32, b32, xc32 = w.float(), self._y_mean.reshape(-1).float(), xc.float()
        x_norm, w_norm = xc.norm(dim=1), w.norm(dim=1).view(-1, q).amax(dim=1)
        if float(x_norm.max()) * float(w_norm.max()) > 1e30:  # float32 could overflow
            return self._predict_float64(x)
        gamma = 2.0 * (d + 4) * 2.0**-24 * (1 + 1e-3)
        slack = (gamma * (x_norm + 1.0)).numpy()  # (m,)
        # per task ≥ max_c ‖w_c‖ + |ȳ_c|; 1e-30 covers inputs that round to subnormals
        slack_task = (w_norm + self._y_mean.abs().amax(dim=1) + 1e-30).numpy()
        coef, y_mean = self.coef_.contiguous().numpy(), self._y_mean.contiguous().numpy()
        xc64 = xc.numpy()
        out = np.empty((w.shape[0] // q, x.shape[0]), dtype=np.int64)
        rows = max(1, 2 * _CHUNK // w.shape[0])
        self._n_recomputed = 0
        products = torch.empty(min(rows, x.shape[0]), w.shape[0])  # reused per row block
        for i in range(0, x.shape[0], rows):
            block = products[:min(rows, x.shape[0] - i)]
            torch.mm(xc32[i:i + rows], w32.T, out=block)  # (rows, S·q) float32
            self._n_recomputed += kern.argmax_checked(
                block.numpy(), b32.numpy(), q, slack, slack_task, xc64, coef, y_mean, i, out)
        return torch.from_numpy(out)  # (S, m)


# ----------------------------------------------------------------------------- kNN

def _normalize_rows(x: torch.Tensor) -> torch.Tensor:
    return x / x.norm(dim=1, keepdim=True).clamp_min(_EPS)


def vote(labels: torch.Tensor, neighbors: torch.Tensor, q: int) -> torch.Tensor:
    """Majority label among neighbours, ties to the smallest label.

    labels (S, n_train), neighbors (m, k) train indices -> (S, m) LongTensor.
    """
    s_total, (m, k) = labels.shape[0], neighbors.shape
    step = max(1, _CHUNK // (m * max(k, q)))
    out = []
    for s0 in range(0, s_total, step):
        neigh = labels[s0:s0 + step][:, neighbors]  # (Sb, m, k)
        counts = torch.zeros(neigh.shape[0], m, q, dtype=torch.int32, device=labels.device)
        counts.scatter_add_(2, neigh, torch.ones(1, dtype=torch.int32,
                                                 device=labels.device).expand_as(neigh))
        out.append(counts.argmax(dim=2))
    return torch.cat(out)


class KNNProbe(_TaskProbe):
    """k-nearest-neighbour classifier with cosine similarity, ``S`` tasks at once.

    Per task equal to ``KNeighborsClassifier(n_neighbors=k, metric="cosine")``
    (uniform weights, ties to the smallest label). One neighbour graph serves all
    tasks; similarities are computed in the features' float dtype, in row batches.

    Learned state: ``train_`` (n, d) unit rows, ``labels_`` (S, n), ``num_classes_``.
    """

    def __init__(self, k: int = 20, *, num_classes: int | None = None, batch_size: int = 2048,
                 device: str | torch.device | None = None) -> None:
        self.k = k
        self.num_classes = num_classes
        self.batch_size = batch_size
        self.device = device

    def _fit(self, x: torch.Tensor, y: torch.Tensor, q: int, *,
             overwrite_x: bool = False) -> KNNProbe:
        k = check_positive_int(self.k, "k")
        if k > x.shape[0]:
            raise ValueError(f"k={k} is larger than the {x.shape[0]} training examples.")
        self.train_, self.labels_ = _normalize_rows(x), y
        self._remember(x, q, x.dtype)
        return self

    def kneighbors(self, x: ArrayLike) -> torch.Tensor:
        """Indices (m, k) of the ``k`` most cosine-similar train rows, nearest first."""
        return self._kneighbors(self._check_x(x))

    def _kneighbors(self, x: torch.Tensor) -> torch.Tensor:
        xn, b = _normalize_rows(x), check_positive_int(self.batch_size, "batch_size")
        return torch.cat([(xn[i:i + b] @ self.train_.T).topk(self.k, dim=1).indices
                          for i in range(0, xn.shape[0], b)])

    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        return vote(self.labels_, self._kneighbors(x), self.num_classes_)


# ----------------------------------------------------------------------------- logistic

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
    features, ``mean_``, ``scale_`` (d,), ``classes_mask_`` (S, q), ``n_iter_`` (L-BFGS
    iterations, the most over blocks of tasks; blocks bound the logits to 2^25 entries).
    """

    def __init__(self, alpha: float = 1.0, *, max_iter: int = 100, tol: float = 1e-4,
                 num_classes: int | None = None,
                 device: str | torch.device | None = None) -> None:
        self.alpha = alpha
        self.max_iter = max_iter
        self.tol = tol
        self.num_classes = num_classes
        self.device = device

    def _fit(self, x: torch.Tensor, y: torch.Tensor, q: int, *,
             overwrite_x: bool = False) -> LogisticProbe:
        alpha = _check_alpha(self.alpha, positive=True)
        max_iter = check_positive_int(self.max_iter, "max_iter")
        self.mean_ = x.mean(dim=0)
        std = x.std(dim=0, unbiased=False)
        self.scale_ = torch.where(std > 0, std, torch.ones_like(std))
        self.classes_mask_ = _class_counts(y, q) > 0  # (S, q)
        two = self.classes_mask_.sum(dim=1) == 2
        penalty = alpha * torch.where(two, 2.0, 1.0).to(x.dtype)  # (S,)
        xs = (x - self.mean_) / self.scale_
        step = max(1, _LOGIT_CHUNK // (x.shape[0] * q))  # tasks per block: bounds memory
        blocks = [_lbfgs_multinomial(xs, y[i:i + step], self.classes_mask_[i:i + step],
                                     penalty[i:i + step], max_iter, float(self.tol))
                  for i in range(0, y.shape[0], step)]
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


def _lbfgs_multinomial(xs: torch.Tensor, y: torch.Tensor, mask: torch.Tensor,
                       penalty: torch.Tensor, max_iter: int,
                       tol: float) -> tuple[torch.Tensor, torch.Tensor, int]:
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
    opt = torch.optim.LBFGS([w, b], lr=1.0, max_iter=max_iter, tolerance_grad=tol,
                            tolerance_change=1e-12, history_size=10,
                            line_search_fn="strong_wolfe")

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


# ----------------------------------------------------------------------------- driver

@dataclass(frozen=True, eq=False)
class ProbeResult:
    """Held-out probe accuracy on ``S`` tasks sharing one train/test split.

    ``accuracy`` (S,) and ``majority_rate`` (S,) are float64; ``majority_rate`` is the
    test accuracy of always predicting the task's most frequent *train* class (ties to
    the smallest label). ``predictions`` is (S, n_test) int64 in ``test_indices``
    order. Arrays are read-only.
    """

    probe: str
    accuracy: np.ndarray
    majority_rate: np.ndarray
    predictions: np.ndarray
    train_indices: np.ndarray
    test_indices: np.ndarray
    num_classes: int
    settings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("accuracy", "majority_rate", "predictions", "train_indices",
                     "test_indices"):
            view = np.asarray(getattr(self, name)).view()
            view.setflags(write=False)
            object.__setattr__(self, name, view)

    @property
    def num_tasks(self) -> int:
        return int(self.accuracy.shape[0])

    def summary(self) -> dict[str, float | int]:
        """mean, std (population, ddof=0), p5 (5th percentile, linear), min,
        gain_over_majority (mean of accuracy - majority_rate), num_tasks."""
        acc = self.accuracy
        return {"mean": float(acc.mean()), "std": float(acc.std()),
                "p5": float(np.percentile(acc, 5)), "min": float(acc.min()),
                "gain_over_majority": float((acc - self.majority_rate).mean()),
                "num_tasks": self.num_tasks}


def make_probe(probe: str, *, alpha: float = 1.0, k: int = 20, num_classes: int | None = None,
               device: str | torch.device | None = None) -> RidgeProbe | KNNProbe | LogisticProbe:
    """The estimator for ``probe`` in :data:`PROBES`, with checked settings."""
    if probe not in PROBES:
        raise ValueError(f"probe={probe!r} is not known; choose one of {', '.join(PROBES)}.")
    check_positive_int(k, "k")
    _check_alpha(alpha, positive=probe == "logistic")
    if probe == "ridge":
        return RidgeProbe(alpha, num_classes=num_classes, device=device)
    if probe == "knn":
        return KNNProbe(k, num_classes=num_classes, device=device)
    return LogisticProbe(alpha, num_classes=num_classes, device=device)


def probe_tasks(features: ArrayLike, tasks: ArrayLike, *, probe: str = "ridge",
                alpha: float = 1.0, k: int = 20, test_fraction: float = 0.25, seed: int = 0,
                device: str | torch.device | None = None) -> ProbeResult:
    """Fit ``probe`` on every task and score it on one shared held-out split.

    features (n, d); tasks (S, n) or (n,) integer labels ``0..q-1`` (``q = max + 1``).
    ``alpha``: ridge penalty / logistic ``1/C``; ``k``: kNN neighbours. The split is
    :func:`train_test_indices` ``(n, test_fraction, seed)``.
    """
    dev = resolve_device(device)
    x = as_tensor(features, "features", device=dev)
    x = x if x.is_floating_point() else x.double()
    y, q = as_tasks(tasks, x.shape[0], device=dev)
    est = make_probe(probe, alpha=alpha, k=k, num_classes=q, device=dev)
    train, test = (i.to(dev) for i in train_test_indices(x.shape[0], test_fraction, seed))
    if probe == "knn" and k > train.numel():
        raise ValueError(f"k={k} is larger than the {train.numel()} training examples.")
    y_train, y_test = take_columns(y, train), take_columns(y, test)
    est._fit(x[train], y_train, q, overwrite_x=True)  # checked inputs; x[train] is a copy
    pred = est._predict(x[test].to(est._dtype))  # (S, n_test)
    settings = {"alpha": float(alpha), "k": int(k), "test_fraction": float(test_fraction),
                "seed": int(seed), "device": str(dev)}
    return ProbeResult(
        probe=probe,
        accuracy=(pred == y_test).double().mean(dim=1).cpu().numpy(),
        majority_rate=majority_rate(y_train, y_test, q).cpu().numpy(),
        predictions=pred.cpu().numpy(),
        train_indices=train.cpu().numpy(),
        test_indices=test.cpu().numpy(),
        num_classes=q, settings=settings)
