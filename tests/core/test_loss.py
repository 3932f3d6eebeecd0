"""The task-prior loss (issue 19): value equals the moments, gradients equal autograd through
an independent dense float64 implementation written here, and central finite differences;
the tiled backward keeps no n x n buffer; bad input gets the moments' errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tp_harness.core.loss import TaskPriorLoss, task_prior_loss
from tp_harness.core.moments import task_prior_moments

# --------------------------------------------------------------------------- reference


def _rows(x: torch.Tensor) -> torch.Tensor:
    norms = torch.sqrt((x * x).sum(1, keepdim=True))
    return x / torch.clamp(norms, min=1e-12)


def ref_factor(x: torch.Tensor, kernel: str) -> torch.Tensor:
    """The model kernel's factor, written from the definitions (float64, differentiable)."""
    if kernel == "linear":
        return x
    if kernel == "cosine":
        return _rows(x)
    if kernel == "centered_cosine":
        z = _rows(x)
        return z - z.mean(0, keepdim=True)
    if kernel == "projection":
        xc = x - x.mean(0, keepdim=True)
        u, s, _ = torch.linalg.svd(xc, full_matrices=False)
        return u[:, s > s[0] * max(xc.shape) * 2.3e-16]
    raise AssertionError(kernel)


def ref_prior(p: np.ndarray | list, kernel: str | list, weights: list | None) -> torch.Tensor:
    """Dense prior kernel (float64)."""
    if isinstance(kernel, list):
        parts = [ref_prior(pi, ki, None) for pi, ki in zip(p, kernel, strict=True)]
        return sum(w * k for w, k in zip(weights, parts, strict=True))  # type: ignore[return-value]
    if kernel == "label_graph":
        y = torch.as_tensor(np.asarray(p))
        return (y[:, None] == y[None, :]).double()
    f = ref_factor(torch.as_tensor(np.asarray(p), dtype=torch.float64), kernel)
    return f @ f.T


def ref_loss(
    x: torch.Tensor,
    k: torch.Tensor,
    t: float,
    w: float,
    kernel: str,
    normalize: str | None,
    prior_done: bool = False,
) -> torch.Tensor:
    """``prior_done``: ``k`` is already normalised (a weighted sum of normalised parts)."""
    f = ref_factor(x, kernel)
    m = f @ f.T
    if normalize == "frobenius":
        m = m / torch.sqrt((m * m).sum())
        k = k if prior_done else k / torch.sqrt((k * k).sum())
    s = 1.0 / (1.0 + torch.exp(-k / t))
    mean = (m * s).sum()
    var = (m * m * s * (1.0 - s)).sum()
    n = x.shape[0]
    return -mean / n**2 + w * torch.sqrt(var) / n


# --------------------------------------------------------------------------- data


@pytest.fixture(scope="module")
def data() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(11)
    n = 200
    x = rng.normal(size=(n, 12)) * np.linspace(0.2, 3.0, 12) + 0.4  # asymmetric, offset
    x[:20] += rng.exponential(size=(20, 12))
    p = rng.normal(size=(n, 7)) + x[:, :7] * 0.5
    y = rng.integers(0, 4, n)
    return {"x": x, "p": p, "y": y}


CASES = [
    ("centered_cosine", "centered_cosine", None),
    ("cosine", "cosine", "frobenius"),
    ("linear", "linear", None),
    ("projection", "centered_cosine", "frobenius"),
    ("centered_cosine", "label_graph", "frobenius"),
    ("linear", "centered_cosine", "frobenius"),
]


@pytest.mark.parametrize(("kernel", "prior_kernel", "normalize"), CASES)
@pytest.mark.parametrize("temperature", [0.05, 0.7, 5.0])
def test_gradient_equals_dense_autograd(
    data: dict[str, np.ndarray],
    kernel: str,
    prior_kernel: str,
    normalize: str | None,
    temperature: float,
) -> None:
    prior = data["y"] if prior_kernel == "label_graph" else data["p"]
    x = torch.tensor(data["x"], dtype=torch.float64, requires_grad=True)
    got = task_prior_loss(
        x,
        prior,
        temperature,
        variance_weight=0.7,
        model_kernel=kernel,
        prior_kernel=prior_kernel,
        normalize=normalize,
        block_size=37,  # ragged tiles, off-diagonal ones included
    )
    (g,) = torch.autograd.grad(got, x)
    xr = torch.tensor(data["x"], dtype=torch.float64, requires_grad=True)
    want = ref_loss(xr, ref_prior(prior, prior_kernel, None), temperature, 0.7, kernel, normalize)
    (gr,) = torch.autograd.grad(want, xr)
    assert float(got.detach()) == pytest.approx(float(want.detach()), rel=1e-10, abs=1e-15)
    torch.testing.assert_close(g, gr, rtol=1e-8, atol=1e-12 * float(gr.abs().max()))


def test_weighted_prior_and_float32(data: dict[str, np.ndarray]) -> None:
    prior, kernels, w = [data["p"], data["y"]], ["centered_cosine", "label_graph"], [0.6, 0.4]
    x64 = torch.tensor(data["x"], requires_grad=True)
    kw = dict(prior_kernel=kernels, prior_weights=w, normalize="frobenius", block_size=64)
    loss = task_prior_loss(x64, prior, 0.3, **kw)  # type: ignore[arg-type]
    (g,) = torch.autograd.grad(loss, x64)
    xr = torch.tensor(data["x"], requires_grad=True)
    parts = [ref_prior(p, kn, None) for p, kn in zip(prior, kernels, strict=True)]
    k = sum(wi * (kk / torch.sqrt((kk * kk).sum())) for wi, kk in zip(w, parts, strict=True))
    # frobenius with a sum normalises each part, then weights them (no second normalisation)
    want = ref_loss(xr, k, 0.3, 1.0, "centered_cosine", "frobenius", prior_done=True)
    (gr,) = torch.autograd.grad(want, xr)
    assert float(loss) == pytest.approx(float(want), rel=1e-10)
    torch.testing.assert_close(g, gr, rtol=1e-8, atol=1e-14)
    x32 = torch.tensor(data["x"], dtype=torch.float32, requires_grad=True)
    l32 = task_prior_loss(x32, prior, 0.3, **kw)  # type: ignore[arg-type]
    (g32,) = torch.autograd.grad(l32, x32)
    assert l32.dtype == torch.float32
    assert float(l32) == pytest.approx(float(want), rel=1e-5)
    torch.testing.assert_close(g32.double(), gr, rtol=2e-3, atol=2e-4 * float(gr.abs().max()))


def test_central_finite_differences(data: dict[str, np.ndarray]) -> None:
    x0 = torch.tensor(data["x"][:40], dtype=torch.float64)
    prior = data["p"][:40]

    def f(x: torch.Tensor) -> torch.Tensor:
        return task_prior_loss(x, prior, 0.4, variance_weight=2.0, block_size=16)

    x = x0.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(f(x), x)
    rng = np.random.default_rng(0)
    for _ in range(12):
        i, j = int(rng.integers(40)), int(rng.integers(12))
        h = 1e-6
        up, down = x0.clone(), x0.clone()
        up[i, j] += h
        down[i, j] -= h
        fd = (float(f(up)) - float(f(down))) / (2 * h)
        assert fd == pytest.approx(float(g[i, j]), rel=1e-5, abs=1e-12)


@pytest.mark.parametrize("normalize", [None, "frobenius"])
def test_value_equals_the_moments(data: dict[str, np.ndarray], normalize: str | None) -> None:
    for t in (0.1, 1.0):
        m = task_prior_moments(data["x"], data["p"], t, normalize=normalize, num_blocks=None)
        for w in (0.0, 1.0, 3.0):
            loss = task_prior_loss(
                torch.tensor(data["x"]), data["p"], t, variance_weight=w, normalize=normalize
            )
            n = data["x"].shape[0]
            assert float(loss) == pytest.approx(-m.mean_per_pair + w * m.std / n, rel=1e-10)


def test_view_graph_prior() -> None:
    rng = np.random.default_rng(2)
    n, v = 30, 3
    x = torch.tensor(rng.normal(size=(n * v, 5)), requires_grad=True)
    loss = task_prior_loss(x, v, 0.5, prior_kernel="view_graph", block_size=16)
    (g,) = torch.autograd.grad(loss, x)
    groups = torch.arange(n * v) // v
    k = (groups[:, None] == groups[None, :]).double()
    xr = x.detach().clone().requires_grad_(True)
    want = ref_loss(xr, k, 0.5, 1.0, "centered_cosine", None)
    (gr,) = torch.autograd.grad(want, xr)
    assert float(loss) == pytest.approx(float(want), rel=1e-10)
    torch.testing.assert_close(g, gr, rtol=1e-8, atol=1e-14)
    with pytest.raises(ValueError, match="number of views"):
        task_prior_loss(x, 4, 0.5, prior_kernel="view_graph")


def test_module_scores_a_minibatch_against_its_prior_rows(data: dict[str, np.ndarray]) -> None:
    module = TaskPriorLoss(data["p"], 0.2, variance_weight=0.5)
    idx = torch.tensor([5, 1, 77, 150, 3, 42, 9, 120])
    x = torch.tensor(data["x"][idx.numpy()], requires_grad=True)
    got = module(x, idx)
    want = task_prior_loss(x, data["p"][idx.numpy()], 0.2, variance_weight=0.5)
    assert float(got) == float(want)
    got.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


def test_bad_input_gets_clear_errors(data: dict[str, np.ndarray]) -> None:
    x = torch.tensor(data["x"])
    for kwargs, needle in (
        ({"temperature": 0.0}, "temperature"),
        ({"temperature": [0.1, 1.0]}, "one temperature"),
        ({"model_kernel": "precomputed"}, "not differentiable"),
        ({"normalize": "l2"}, "normalize"),
        ({"variance_weight": -1.0}, "variance_weight"),
        ({"block_size": 0}, "block_size"),
    ):
        args = {"temperature": 0.1, **kwargs}
        t = args.pop("temperature")
        with pytest.raises((ValueError, TypeError), match=needle):
            task_prior_loss(x, data["p"], t, **args)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rows"):
        task_prior_loss(x, data["p"][:10], 0.1)
    bad = x.clone()
    bad[0, 0] = math.nan
    with pytest.raises(ValueError, match="features"):
        task_prior_loss(bad, data["p"], 0.1)
    with pytest.raises(TypeError):
        task_prior_loss(torch.ones(5, 2, dtype=torch.long), data["p"][:5], 0.1)


def test_backward_holds_no_n_by_n_buffer() -> None:
    """The saved tensors are the (n, d) factor only: autograd keeps nothing n x n."""
    n = 3000
    x = torch.randn(n, 8, requires_grad=True)
    p = torch.randn(n, 4)
    saved: list[tuple[int, ...]] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        saved.append(tuple(t.shape))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = task_prior_loss(x, p, 0.5, block_size=256)
    loss.backward()
    assert saved and all(math.prod(s) <= n * 8 for s in saved), saved


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_cuda_matches_cpu(data: dict[str, np.ndarray]) -> None:
    x = torch.tensor(data["x"], dtype=torch.float32, requires_grad=True)
    xc = x.detach().cuda().requires_grad_(True)
    lc = task_prior_loss(x, data["p"], 0.3, block_size=64)
    lg = task_prior_loss(xc, torch.tensor(data["p"]).cuda(), 0.3, block_size=64)
    (gc,) = torch.autograd.grad(lc, x)
    (gg,) = torch.autograd.grad(lg, xc)
    assert float(lg) == pytest.approx(float(lc), rel=1e-5)
    torch.testing.assert_close(gg.cpu(), gc, rtol=1e-3, atol=1e-6)
