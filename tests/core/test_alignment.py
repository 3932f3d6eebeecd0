"""Alignment of concrete sampled tasks: ``Tr(M G)/n²`` against a dense float64 reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from tp_harness.core import alignment
from tp_harness.core.alignment import kernel_task_alignment, sampled_task_alignment
from tp_harness.core.kernels import build_kernel


def _dense_reference(
    x: np.ndarray, tasks: np.ndarray, normalize: str | None, kernel: str = "centered_cosine"
) -> np.ndarray:
    """``Tr(M G)/n²`` per task from the dense n x n kernel and label graph, float64."""
    m = build_kernel(x.astype(np.float64), kernel, normalize=normalize).to_dense().numpy()
    n = tasks.shape[1]
    return np.array([(m * (t[:, None] == t[None, :])).sum() / n**2 for t in tasks])


@pytest.mark.parametrize("q", [1, 2, 3, 5])
@pytest.mark.parametrize("normalize", [None, "frobenius"])
@pytest.mark.parametrize("kernel", ["centered_cosine", "linear"])  # Σ z_i = 0 and != 0
def test_matches_the_dense_label_graph(q: int, normalize: str | None, kernel: str) -> None:
    rng = np.random.default_rng(q)
    x = rng.standard_normal((57, 6)) + 0.3
    tasks = rng.integers(0, q, size=(9, 57))
    tasks[0] = 0  # one class only: the last class's sum is the whole total (q > 1)
    got = sampled_task_alignment(x, tasks, kernel=kernel, normalize=normalize).numpy()
    want = _dense_reference(x, tasks, normalize, kernel)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-15)


def test_chunks_give_the_same_values(monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 5))
    tasks = rng.integers(0, 3, size=(11, 40))
    whole = sampled_task_alignment(x, tasks)
    monkeypatch.setattr(alignment, "_CHUNK_ENTRIES", 3 * 40 * 2)  # 3 tasks per chunk
    chunked = sampled_task_alignment(x, tasks)
    np.testing.assert_allclose(chunked.numpy(), whole.numpy(), rtol=1e-13)
    np.testing.assert_allclose(chunked.numpy(), _dense_reference(x, tasks, None), rtol=1e-12)


def test_one_kernel_serves_several_task_sets() -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((30, 4))
    k = build_kernel(x, normalize="frobenius")
    for q in (2, 4):
        tasks = rng.integers(0, q, size=(5, 30))
        assert torch.equal(
            kernel_task_alignment(k, tasks), sampled_task_alignment(x, tasks, normalize="frobenius")
        )


def test_degenerate_and_bad_input() -> None:
    tasks = np.zeros((3, 8), dtype=np.int64)
    assert torch.isnan(sampled_task_alignment(np.ones((8, 3)), tasks)).all()
    k = build_kernel(np.random.default_rng(0).standard_normal((8, 3)))
    with pytest.raises(ValueError, match="examples per task but features has 8 rows"):
        kernel_task_alignment(k, np.zeros((2, 7), dtype=np.int64))
    with pytest.raises(TypeError, match=r"takes a Kernel.*use sampled_task_alignment"):
        kernel_task_alignment(np.ones((8, 3)), tasks)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="needs a factor kernel"):
        kernel_task_alignment(build_kernel(np.eye(8), "precomputed"), tasks)
