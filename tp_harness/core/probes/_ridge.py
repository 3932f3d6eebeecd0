"""Ridge probes: ``S`` one-hot ridge regressions from one train Gram factorisation.

Per task exactly ``sklearn.linear_model.Ridge(alpha)`` on one-hot targets (X and Y
centered on the train set, intercept not penalised): the primal ``d x d`` or the dual
``n_train x n_train`` system, whichever is smaller, Cholesky in float64; on the CPU the
Gram by a SYRK on numpy's BLAS, the centered train rows and the class sums of the
targets from compiled kernels; predictions from float32 scores whose decisions are
certified or redone in float64 (``docs/probes.md``).
"""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import torch

from .. import compiled
from .._labels import class_counts as count_labels
from ..checks import ArrayLike
from ..compiled import host_blas
from ._base import _CHUNK, _check_alpha, _TaskProbe

_GRAM_BLOCK = 192  # columns per block row of the Gram matrix (96 measured no faster)


def _gram(m: torch.Tensor) -> torch.Tensor:
    """``mᵀ m`` (p, p) for m (n, p), exactly symmetric.

    On the CPU a threaded SYRK on numpy's BLAS (:mod:`tp_harness.core.compiled.host_blas`: half the
    multiply-adds of a product), one row block per torch thread; elsewhere, or when
    threadpoolctl cannot hold numpy's BLAS to one thread, :func:`_torch_gram`.
    """
    if (
        m.device.type == "cpu"
        and m.dtype in (torch.float32, torch.float64)
        and host_blas.available()
    ):
        return torch.from_numpy(host_blas.syrk(m.numpy(), torch.get_num_threads()))
    return _torch_gram(m)


def _torch_gram(m: torch.Tensor) -> torch.Tensor:
    """``mᵀ m`` (p, p) for m (n, p), exactly symmetric, from about half to 3/4 of a full product.

    The columns are cut into ``k`` blocks of about 192; block row ``a`` is
    ``m_aᵀ [m_a ... m_k]`` and its transpose fills the lower triangle: ``(k + 1) / 2k``
    of the multiply-adds of ``m.T @ m`` (75% for p = 384), in ``k`` products.
    """
    p = m.shape[1]
    k = max(1, round(p / _GRAM_BLOCK))
    edges = [round(a * p / k) for a in range(k + 1)]
    gram = torch.empty(p, p, dtype=m.dtype, device=m.device)
    for lo, hi in pairwise(edges):
        row = m[:, lo:hi].T @ m[:, lo:]  # block row: (hi - lo, p - lo)
        gram[lo:hi, lo:hi] = _symmetric(row[:, : hi - lo])
        gram[lo:hi, hi:] = row[:, hi - lo :]
        gram[hi:, lo:hi] = row[:, hi - lo :].T
    return gram


def _symmetric(upper: torch.Tensor) -> torch.Tensor:
    """The symmetric matrix with ``upper``'s upper triangle (BLAS need not round
    ``g[i, j]`` and ``g[j, i]`` of a product alike)."""
    return upper.triu() + upper.triu(1).T


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


def class_sums(
    m: torch.Tensor, y: torch.Tensor, q: int, *, rows_sum_to_zero: bool = False
) -> torch.Tensor:
    """``onehot(y)ᵀ m`` for all tasks: (n, p), (S, n) -> (S·q, p), row ``s·q + c``.

    Row ``s·q + c`` is the sum of the rows of ``m`` whose label in task ``s`` is ``c``.
    On the CPU a compiled pass over the rows per block of tasks (``S·n·p`` adds);
    otherwise one dense product per block of tasks (one-hot blocks built on the fly),
    where ``rows_sum_to_zero`` (the rows of ``m`` sum to 0, e.g. centered features)
    makes the last class minus the sum of the others, saving one class in ``q``.
    """
    n, p = m.shape
    s_total = y.shape[0]
    if compiled.use_jit(m.device) and m.dtype in (torch.float32, torch.float64):
        return _class_sums_compiled(m, y, q)
    qb = q - 1 if rows_sum_to_zero and q > 1 else q
    sums = torch.empty(s_total * qb, p, dtype=m.dtype, device=m.device)
    step = max(1, _CHUNK // (n * qb))
    classes = torch.arange(qb, device=y.device)[None, :, None]
    onehot = torch.empty(min(step, s_total), qb, n, dtype=m.dtype, device=m.device)
    for s0 in range(0, s_total, step):
        yb = y[s0 : s0 + step]  # (Sb, n)
        block = onehot[: yb.shape[0]]
        torch.eq(yb[:, None, :], classes, out=block)  # (Sb, qb, n) 0/1 in m's dtype
        torch.mm(block.view(-1, n), m, out=sums[s0 * qb : (s0 + yb.shape[0]) * qb])
    if qb == q:
        return sums
    g = sums.view(s_total, qb, p)
    return torch.cat([g, -g.sum(dim=1, keepdim=True)], dim=1).reshape(s_total * q, p)


def _class_sums_compiled(m: torch.Tensor, y: torch.Tensor, q: int) -> torch.Tensor:
    """:func:`class_sums` by the numba kernel. -> (S·q, p) in m's dtype."""
    kern = compiled.kernels("probe_kernels")
    out = torch.empty(y.shape[0] * q, m.shape[1], dtype=m.dtype)
    workers = compiled.sync_threads()
    group, groups = kern.plan_groups(q, m.shape[1], m.element_size(), y.shape[0], workers)
    bad = kern.class_sums(
        m.contiguous().numpy(), y.contiguous().numpy(), q, group, groups, workers, out.numpy()
    )
    if bad:
        raise ValueError(f"y has labels outside 0..{q - 1}; labels must be 0..q-1.")
    return out


def _exact_float32_products() -> bool:
    """True when CPU float32 matrix products are IEEE float32 (no bf16/TF32 shortcuts).

    Read through the per-backend precision API (``torch.backends.mkldnn.matmul``, then its
    parents; ``"none"`` inherits), never through ``torch.get_float32_matmul_precision()``:
    that raises once the legacy and the new TF32 APIs have both been used, e.g. after the
    new API's ``torch.backends.cuda.matmul.fp32_precision = "tf32"`` (a CUDA-only setting,
    which leaves CPU products exact). The legacy ``set_float32_matmul_precision("high")``
    (or ``"medium"``) sets ``mkldnn.matmul`` too, so it is seen here."""
    backends = torch.backends
    mkldnn = getattr(backends, "mkldnn", None)
    for holder in (getattr(mkldnn, "matmul", None), mkldnn, backends):
        value = getattr(holder, "fp32_precision", None)
        if value is not None and value != "none":
            return bool(value == "ieee")
    if getattr(backends, "fp32_precision", None) is None:  # torch without the new API
        return torch.get_float32_matmul_precision() == "highest"
    return True


class RidgeProbe(_TaskProbe):
    """Ridge regression on one-hot targets for ``S`` tasks at once.

    Per task equal to ``sklearn.linear_model.Ridge(alpha)`` fitted on
    ``onehot(y, q)``; ``predict`` is the argmax over classes. Computed in float64.

    Learned state: ``coef_`` (S, q, d), ``intercept_`` (S, q), ``class_counts_`` (S, q)
    train label counts, ``num_classes_``, ``n_features_in_``.
    """

    def __init__(
        self,
        alpha: float = 1.0,
        *,
        num_classes: int | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        self.alpha = alpha
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
    ) -> RidgeProbe:
        xd = x.double()
        own = overwrite_x or xd.data_ptr() != x.data_ptr()  # a private copy: center in place
        x_mean = xd.mean(dim=0)
        return self._fit_centered(
            xd.sub_(x_mean) if own else xd - x_mean, x_mean, y, q, class_counts
        )

    def _fit_rows(
        self,
        x: torch.Tensor,
        rows: torch.Tensor,
        y: torch.Tensor,
        q: int,
        *,
        class_counts: torch.Tensor | None = None,
    ) -> RidgeProbe:
        """``_fit`` on ``x[rows]``; on the CPU one compiled pass gathers, converts to
        float64 and centers the rows."""
        if not (compiled.use_jit(x.device) and x.dtype in (torch.float32, torch.float64)):
            return super()._fit_rows(x, rows, y, q, class_counts=class_counts)
        kern = compiled.kernels("probe_kernels")
        xc = torch.empty(rows.numel(), x.shape[1], dtype=torch.float64)
        x_mean = kern.gather_centered(
            x.contiguous().numpy(), rows.contiguous().numpy(), xc.numpy(), compiled.sync_threads()
        )
        return self._fit_centered(xc, torch.from_numpy(x_mean), y, q, class_counts)

    def _fit_centered(
        self,
        xc: torch.Tensor,
        x_mean: torch.Tensor,
        y: torch.Tensor,
        q: int,
        counts: torch.Tensor | None = None,
    ) -> RidgeProbe:
        """Fit on centered float64 features xc (n, d) with column means x_mean (d,);
        ``counts`` (S, q): y's label counts when known."""
        alpha = _check_alpha(self.alpha)
        n, d = xc.shape
        if d <= n:  # primal: W = Yᵀ Xc (XcᵀXc + αI)⁻¹
            gram = _gram(xc)
            gram.diagonal().add_(alpha)
            w = _psd_solve_rows(gram, class_sums(xc, y, q, rows_sum_to_zero=True))
        else:  # dual: Wᵀ = Xcᵀ (XcXcᵀ + αI)⁻¹ Y  (Y need not be centered: Xcᵀ1 = 0)
            gram = _gram(xc.T)  # (n, n)
            gram.diagonal().add_(alpha)
            w = class_sums(_psd_solve_rows(gram, xc.T).T, y, q)  # (a⁻¹ Xc), a symmetric
        self.class_counts_ = count_labels(y, q) if counts is None else counts  # (S, q) int64
        y_mean = (self.class_counts_.double() / n).reshape(-1)  # (S·q,)
        self.coef_ = w.reshape(-1, q, d)  # (S, q, d); row s·q + c of w
        self.intercept_ = (y_mean - w @ x_mean).reshape(-1, q)  # (S, q)
        self._x_mean, self._y_mean = x_mean, y_mean.view(-1, q)
        self._remember(xc, q, torch.float64)
        return self

    def decision_function(self, x: ArrayLike) -> torch.Tensor:
        """Scores (S, m, q) for features (m, d)."""
        xt = self._check_x(x)
        return torch.einsum("md,sqd->smq", xt, self.coef_) + self.intercept_[:, None, :]

    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        if compiled.use_jit(x.device) and _exact_float32_products():
            return self._predict_checked(x)
        return self._predict_float64(x)

    def _predict_float64(self, x: torch.Tensor) -> torch.Tensor:
        """argmax of ``x wᵀ + b`` in float64, in row blocks. -> (S, m)."""
        w, b = self.coef_.reshape(-1, self.n_features_in_), self.intercept_.reshape(-1)
        q = self.num_classes_
        out = torch.empty(w.shape[0] // q, x.shape[0], dtype=torch.long, device=x.device)
        rows = max(1, _CHUNK // w.shape[0])
        for i in range(0, x.shape[0], rows):
            scores = torch.addmm(b, x[i : i + rows], w.T)  # (rows, S·q)
            out[:, i : i + rows] = scores.reshape(scores.shape[0], -1, q).argmax(2).T
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
        kern = compiled.kernels("probe_kernels")
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
            block = products[: min(rows, x.shape[0] - i)]
            torch.mm(xc32[i : i + rows], w32.T, out=block)  # (rows, S·q) float32
            self._n_recomputed += kern.argmax_checked(
                block.numpy(), b32.numpy(), q, slack, slack_task, xc64, coef, y_mean, i, out
            )
        return torch.from_numpy(out)  # (S, m)
