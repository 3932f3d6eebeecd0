"""Batched probes against per-task scikit-learn fits on asymmetric data."""

from __future__ import annotations

import warnings
from collections.abc import Iterator

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from tp_harness.core.probes import (
    PROBES,
    KNNProbe,
    LogisticProbe,
    ProbeResult,
    RidgeProbe,
    class_sums,
    probe_tasks,
    train_test_indices,
    vote,
)


def _features(seed: int, n: int, d: int) -> np.ndarray:
    """Non-centered, anisotropic, correlated features."""
    rng = np.random.default_rng(seed)
    mix = rng.normal(size=(d, d)) + np.eye(d) * 2
    return (rng.normal(size=(n, d)) * rng.uniform(0.2, 3.0, d)) @ mix + rng.normal(size=d) * 3


def _tasks(x: np.ndarray, num_tasks: int, q: int, seed: int, noise: float = 1.0) -> np.ndarray:
    """Learnable tasks: argmax of a random linear map plus noise. (S, n)."""
    rng = np.random.default_rng(seed + 1000)
    xs = (x - x.mean(0)) / x.std(0)
    out = []
    for _ in range(num_tasks):
        w = rng.normal(size=(x.shape[1], q))
        logits = xs @ w / np.sqrt(x.shape[1])
        out.append((logits + noise * rng.gumbel(size=logits.shape)).argmax(1))
    return np.stack(out)


def _split(result: ProbeResult) -> tuple[np.ndarray, np.ndarray]:
    return result.train_indices, result.test_indices


# ----------------------------------------------------------------------------- ridge


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize(("n", "d", "alpha"), [(160, 7, 0.5), (40, 55, 3.0), (90, 12, 1e-3)])
def test_ridge_equals_sklearn_per_task(
    seed: int, n: int, d: int, alpha: float, backend: str
) -> None:
    x = _features(seed, n, d)
    tasks = _tasks(x, 5, 4, seed)
    res = probe_tasks(x, tasks, probe="ridge", alpha=alpha, seed=seed)
    tr, te = _split(res)
    assert (d > len(tr)) == (n == 40)  # the (40, 55) case exercises the dual system
    fitted = RidgeProbe(alpha).fit(x[tr], tasks[:, tr])
    for s in range(len(tasks)):
        ref = Ridge(alpha=alpha).fit(x[tr], np.eye(4)[tasks[s, tr]])
        pred = ref.predict(x[te]).argmax(1)
        np.testing.assert_array_equal(res.predictions[s], pred)
        assert res.accuracy[s] == pytest.approx((pred == tasks[s, te]).mean(), abs=0)
        np.testing.assert_allclose(fitted.coef_[s].numpy(), ref.coef_, rtol=1e-7, atol=1e-9)
        np.testing.assert_allclose(
            fitted.intercept_[s].numpy(), ref.intercept_, rtol=1e-7, atol=1e-9
        )


def test_ridge_class_missing_from_train_and_decision_function() -> None:
    x = _features(5, 80, 6)
    tasks = _tasks(x, 3, 3, 5)
    tasks[1] = np.where(tasks[1] == 2, 0, tasks[1])  # task 1 never uses class 2
    tasks[2, 0] = 4  # q = 5; classes 3 absent everywhere
    probe = RidgeProbe(2.0).fit(x[:60], tasks[:, :60])
    scores = probe.decision_function(x[60:])
    assert scores.shape == (3, 20, 5)
    for s in range(3):
        ref = Ridge(alpha=2.0).fit(x[:60], np.eye(5)[tasks[s, :60]])
        np.testing.assert_allclose(scores[s].numpy(), ref.predict(x[60:]), rtol=1e-8, atol=1e-10)
        np.testing.assert_array_equal(
            probe.predict(x[60:])[s].numpy(), ref.predict(x[60:]).argmax(1)
        )


def test_ridge_alpha_zero_is_least_squares() -> None:
    x = _features(1, 50, 5)
    y = _tasks(x, 2, 3, 1)
    probe = RidgeProbe(0.0).fit(x, y)
    for s in range(2):
        target = np.eye(3)[y[s]]
        design = np.c_[x, np.ones(len(x))]
        coef, *_ = np.linalg.lstsq(design, target, rcond=None)
        np.testing.assert_allclose(probe.coef_[s].numpy(), coef[:-1].T, rtol=1e-7, atol=1e-9)
    # singular Gram (duplicated column) still solves (pseudo-inverse)
    dup = np.c_[x, x[:, :1]]
    assert RidgeProbe(0.0).fit(dup, y).predict(dup).shape == (2, 50)


@given(
    st.integers(1, 40),
    st.integers(2, 13),
    st.integers(2, 30),
    st.booleans(),
    st.integers(0, 2**16),
    st.booleans(),
)
@settings(max_examples=40, deadline=None)
def test_class_sums_matches_numpy(
    s: int, q: int, n: int, centered: bool, seed: int, compiled: bool
) -> None:
    """Both implementations; q from 2 (groups of 7 tasks) to 13 (one task per group)."""
    rng = np.random.default_rng(seed)
    m = rng.normal(size=(n, 3))
    if centered:
        m -= m.mean(0)
    y = rng.integers(0, q, size=(s, n))
    with pytest.MonkeyPatch.context() as mp:
        if not compiled:
            mp.setenv("TP_HARNESS_NO_JIT", "1")
        got = class_sums(torch.from_numpy(m), torch.from_numpy(y), q, rows_sum_to_zero=centered)
    want = np.concatenate([np.eye(q)[y[t]].T @ m for t in range(s)])
    np.testing.assert_allclose(got.numpy(), want, atol=1e-12)


def test_class_sums_rejects_labels_out_of_range(backend: str) -> None:
    m = torch.randn(20, 4, dtype=torch.float64)
    y = torch.zeros(3, 20, dtype=torch.long)
    y[1, 5] = 3
    if backend == "compiled":
        with pytest.raises(ValueError, match=r"outside 0\.\.2"):
            class_sums(m, y, 3)
    with pytest.raises(ValueError, match="label 3 but num_classes=3"):
        RidgeProbe(num_classes=3).fit(m, y)


def _boundary_points(probe: RidgeProbe, x: np.ndarray, tasks: range, seed: int) -> np.ndarray:
    """Rows next to a decision boundary of ``probe``: for task s, move a far-away row along
    ``w_a - w_b`` (its top two classes) until their scores differ by 1e-10 to 1e-8 of the
    original gap: far above float64 rounding, far below float32's (large scores cancel)."""
    rng = np.random.default_rng(seed)
    w, b = probe.coef_.numpy(), probe.intercept_.numpy()
    rows = []
    for s in tasks:
        for x0 in x[rng.integers(0, len(x), 40)] * 20.0:
            top2 = np.argsort(w[s] @ x0 + b[s])[::-1][:2]
            v = w[s, top2[0]] - w[s, top2[1]]
            gap = b[s, top2[0]] - b[s, top2[1]] + x0 @ v
            shift = 1 - rng.choice([-1.0, 1.0]) * 10.0 ** rng.uniform(-10, -8)
            rows.append(x0 - (gap / (v @ v)) * v * shift)
    return np.array(rows)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_ridge_float32_certificate_gives_the_float64_labels(seed: int) -> None:
    from tp_harness.core import compiled as _jit

    if not _jit.enabled():
        pytest.skip("numba is not installed")
    x = _features(seed, 400, 9)
    tasks = _tasks(x, 30, 5, seed, noise=3.0)
    probe = RidgeProbe(0.7).fit(x, tasks)
    rng = np.random.default_rng(seed)
    x_test = np.concatenate(
        [
            x[rng.integers(0, 400, 300)] * rng.uniform(0.5, 30, (300, 1)),
            _boundary_points(probe, x, range(0, 30, 3), seed),
        ]
    )
    checked = probe._predict_checked(torch.from_numpy(x_test))
    assert 0 < probe._n_recomputed < 0.1 * checked.numel()  # the near-ties were redone
    assert torch.equal(checked, probe._predict_float64(torch.from_numpy(x_test)))
    for s in (0, 3, 4):  # and both are sklearn's
        ref = Ridge(alpha=0.7).fit(x, np.eye(5)[tasks[s]]).predict(x_test).argmax(1)
        np.testing.assert_array_equal(checked[s].numpy(), ref)


def test_ridge_uses_float64_products_when_float32_matmul_is_not_ieee(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    x = _features(4, 120, 6)
    tasks = _tasks(x, 4, 3, 4)
    probe = RidgeProbe().fit(x, tasks)
    expected = probe._predict_float64(torch.from_numpy(x))

    def refuse(self: RidgeProbe, x: torch.Tensor) -> torch.Tensor:
        raise AssertionError("float32 path used with reduced-precision matmuls")

    monkeypatch.setattr(RidgeProbe, "_predict_checked", refuse)
    previous = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("medium")
        assert torch.equal(probe.predict(x), expected)
    finally:
        torch.set_float32_matmul_precision(previous)


# ----------------------------------------------------------------------------- kNN


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("k", [1, 6, 9])
def test_knn_equals_sklearn_per_task(seed: int, k: int) -> None:
    x = _features(seed, 150, 6)
    tasks = _tasks(x, 4, 3, seed, noise=2.0)  # even k and 3 classes: vote ties do occur
    res = probe_tasks(x, tasks, probe="knn", k=k, seed=seed)
    tr, te = _split(res)
    for s in range(len(tasks)):
        ref = KNeighborsClassifier(n_neighbors=k, metric="cosine").fit(x[tr], tasks[s, tr])
        np.testing.assert_array_equal(res.predictions[s], ref.predict(x[te]))


def test_knn_neighbours_and_vote_ties() -> None:
    x = _features(3, 60, 4)
    probe = KNNProbe(5).fit(x[:40], np.zeros(40, dtype=int))
    ref = KNeighborsClassifier(5, metric="cosine").fit(x[:40], np.zeros(40))
    np.testing.assert_array_equal(
        probe.kneighbors(x[40:]).numpy(), ref.kneighbors(x[40:], return_distance=False)
    )
    labels = torch.tensor([[2, 1, 1, 2, 0, 0]])
    neigh = torch.tensor([[0, 1, 2, 3], [4, 5, 0, 1], [0, 4, 1, 2]])
    # counts: {1:2, 2:2} -> 1; {0:2, 2:1, 1:1} -> 0; {2:1, 0:1, 1:2} -> 1
    np.testing.assert_array_equal(vote(labels, neigh, 3).numpy(), [[1, 0, 1]])


# ----------------------------------------------------------------------------- logistic


def test_logistic_matches_sklearn_accuracy_on_20_tasks() -> None:
    x = _features(7, 320, 8)
    tasks = _tasks(x, 20, 3, 7)
    res = probe_tasks(x, tasks, probe="logistic", alpha=1.0, seed=1)
    tr, te = _split(res)
    ref_acc, agree = [], []
    for s in range(20):
        ref = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000))
        pred = ref.fit(x[tr], tasks[s, tr]).predict(x[te])
        ref_acc.append((pred == tasks[s, te]).mean())
        agree.append((pred == res.predictions[s]).mean())
    assert abs(np.mean(ref_acc) - res.accuracy.mean()) <= 0.01
    assert np.mean(agree) >= 0.98


@pytest.mark.parametrize("q", [2, 3])
def test_logistic_penalty_convention_matches_sklearn_coefficients(q: int) -> None:
    x = _features(2, 200, 5)
    tasks = _tasks(x, 3, q, 2)
    alpha = 4.0
    probe = LogisticProbe(alpha, max_iter=500, tol=1e-10).fit(x, tasks)
    for s in range(3):
        ref = make_pipeline(
            StandardScaler(), LogisticRegression(C=1 / alpha, tol=1e-12, max_iter=5000)
        )
        lr = ref.fit(x, tasks[s])[-1]
        coef, icpt = probe.coef_[s].numpy(), probe.intercept_[s].numpy()
        if q == 2:  # sklearn's binomial model: w = w_1 - w_0
            coef, icpt = coef[1:] - coef[:1], icpt[1:] - icpt[:1]
        else:  # softmax is shift-invariant; the L2 optimum has zero-sum coefficients
            icpt = icpt - icpt.mean()
        np.testing.assert_allclose(coef, lr.coef_, atol=2e-4)
        np.testing.assert_allclose(icpt, lr.intercept_ - lr.intercept_.mean() * (q > 2), atol=2e-4)


def test_logistic_masks_classes_absent_from_train() -> None:
    x = _features(4, 90, 4)
    tasks = _tasks(x, 2, 3, 4)
    tasks[0] = np.minimum(tasks[0], 1)
    probe = LogisticProbe(1.0).fit(x, tasks)
    assert probe.classes_mask_[0].tolist() == [True, True, False]
    assert not bool((probe.predict(x)[0] == 2).any())
    assert torch.isinf(probe.decision_function(x)[0, :, 2]).all()


def test_logistic_task_blocks_give_the_same_fit(monkeypatch: pytest.MonkeyPatch) -> None:
    x = _features(6, 150, 4)
    tasks = _tasks(x, 5, 3, 6)
    whole = LogisticProbe(tol=1e-9, max_iter=500).fit(x, tasks)
    # 2 tasks per block
    monkeypatch.setattr("tp_harness.core.probes._logistic._LOGIT_CHUNK", 150 * 3 * 2)
    blocks = LogisticProbe(tol=1e-9, max_iter=500).fit(x, tasks)
    np.testing.assert_allclose(blocks.coef_.numpy(), whole.coef_.numpy(), atol=2e-4)
    assert torch.equal(blocks.predict(x), whole.predict(x))


# ----------------------------------------------------------------------------- driver


def test_split_is_seeded_disjoint_and_sized() -> None:
    tr, te = train_test_indices(103, 0.25, seed=4)
    assert len(te) == 26 and len(tr) == 77  # ceil(0.25 · 103)
    assert set(tr.tolist()).isdisjoint(te.tolist())
    assert sorted(tr.tolist() + te.tolist()) == list(range(103))
    tr2, te2 = train_test_indices(103, 0.25, seed=4)
    assert torch.equal(tr, tr2) and torch.equal(te, te2)
    assert not torch.equal(te, train_test_indices(103, 0.25, seed=5)[1])


@pytest.mark.parametrize("host", [True, False])
@pytest.mark.parametrize("p", [1, 5, 127, 144, 300, 385])
def test_gram_matches_the_full_product_and_is_symmetric(
    p: int, host: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Both CPU paths: the threaded SYRK on numpy's BLAS and torch's block rows."""
    from tp_harness.core.compiled import host_blas as _host_blas
    from tp_harness.core.probes._ridge import _gram

    if host and not _host_blas.available():
        pytest.skip("threadpoolctl cannot limit numpy's BLAS")
    if not host:
        monkeypatch.setattr(_host_blas, "available", lambda: False)
    m = torch.from_numpy(_features(p, 400, p))
    g = _gram(m)
    assert torch.equal(g, g.T)
    ref = m.numpy().T @ m.numpy()
    np.testing.assert_allclose(g.numpy(), ref, rtol=1e-12, atol=1e-10 * np.abs(ref).max())


@pytest.mark.parametrize("workers", [1, 2, 3, 7])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_host_syrk_blocks_and_restores_the_blas_threads(workers: int, dtype: type) -> None:
    from threadpoolctl import threadpool_info

    from tp_harness.core.compiled import host_blas as _host_blas

    if not _host_blas.available():
        pytest.skip("threadpoolctl cannot limit numpy's BLAS")
    m = _features(workers, 5, 6).astype(dtype)  # fewer rows than some worker counts
    before = [(i["filepath"], i["num_threads"]) for i in threadpool_info()]
    a = m[:, ::2].T  # a strided (3, 5) view
    g = _host_blas.syrk(a, workers)
    assert [(i["filepath"], i["num_threads"]) for i in threadpool_info()] == before
    assert g.shape == (5, 5) and g.dtype == dtype and np.array_equal(g, g.T)
    ref = a.T.astype(np.float64) @ a.astype(np.float64)
    tol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(g, ref, rtol=tol, atol=tol * np.abs(ref).max())


def _child_syrk() -> bool:
    from tp_harness.core.compiled import host_blas as _host_blas

    m = np.arange(12.0).reshape(6, 2)
    return bool(np.allclose(_host_blas.syrk(m, 2), m.T @ m))


def test_host_syrk_works_in_a_forked_child() -> None:
    """The worker threads are per process (the parent's do not exist in a forked child)."""
    import multiprocessing

    from tp_harness.core.compiled import host_blas as _host_blas

    if not _host_blas.available() or "fork" not in multiprocessing.get_all_start_methods():
        pytest.skip("needs threadpoolctl and fork")
    assert _child_syrk()  # the parent's pool now exists
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # 3.12+: fork with threads
        with multiprocessing.get_context("fork").Pool(1) as pool:
            assert pool.apply_async(_child_syrk).get(timeout=60)


def test_host_syrk_without_a_limitable_blas_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    from tp_harness.core.compiled import host_blas as _host_blas

    monkeypatch.setattr(_host_blas, "_controller", lambda: None)
    assert not _host_blas.available()
    with pytest.raises(RuntimeError, match="threadpoolctl finds no BLAS"):
        _host_blas.syrk(np.ones((3, 2)), 2)


def test_split_columns_equals_indexing_and_bincount(backend: str) -> None:
    from tp_harness.core._labels import split_columns

    rng = np.random.default_rng(3)
    y = rng.integers(0, 5, size=(7, 40))
    y[2] = np.where(y[2] == 4, 0, y[2])  # a class missing from one task
    train, test = train_test_indices(40, 0.3, seed=1)
    y_tr, y_te, counts = split_columns(torch.from_numpy(y), train, test, 5)
    np.testing.assert_array_equal(y_tr.numpy(), y[:, train.numpy()])
    np.testing.assert_array_equal(y_te.numpy(), y[:, test.numpy()])
    want = np.stack([np.bincount(t, minlength=5) for t in y[:, train.numpy()]])
    np.testing.assert_array_equal(counts.numpy(), want)
    assert y_tr.dtype == y_te.dtype == counts.dtype == torch.int64
    y[4, int(train[0])] = 5
    with pytest.raises(ValueError, match=r"outside 0\.\.4"):
        split_columns(torch.from_numpy(y), train, test, 5)


@pytest.mark.parametrize("m", [1, 63, 64, 65, 300])
@pytest.mark.parametrize("workers", [1, 2, 5])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_gather_centered_matches_float64(m: int, workers: int, dtype: type) -> None:
    from tp_harness.core import compiled as _jit

    if not _jit.enabled():
        pytest.skip("numba is not installed")
    kern = _jit.kernels("probe_kernels")
    rng = np.random.default_rng(m)
    x = (rng.normal(size=(400, 9)) * 50 + 1e3).astype(dtype)
    rows = rng.choice(400, size=m, replace=m > 400)
    out = np.empty((m, 9))
    mean = kern.gather_centered(x, rows, out, workers)
    ref = x[rows].astype(np.float64)
    np.testing.assert_allclose(mean, ref.mean(0), rtol=1e-14)
    np.testing.assert_allclose(out, ref - ref.mean(0), rtol=0, atol=1e-10)


def test_fit_rows_equals_fit_on_the_gathered_rows(backend: str) -> None:
    x = _features(8, 200, 12).astype(np.float32)
    tasks = _tasks(x, 6, 4, 8)
    rows = torch.from_numpy(np.random.default_rng(0).permutation(200)[:150])
    xt = torch.from_numpy(x)
    whole = RidgeProbe(0.5, num_classes=4)._fit(xt[rows], torch.from_numpy(tasks)[:, rows], 4)
    fused = RidgeProbe(0.5, num_classes=4)._fit_rows(xt, rows, torch.from_numpy(tasks)[:, rows], 4)
    np.testing.assert_allclose(fused.coef_.numpy(), whole.coef_.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(
        fused.intercept_.numpy(), whole.intercept_.numpy(), rtol=1e-10, atol=1e-12
    )
    assert torch.equal(fused.class_counts_, whole.class_counts_)
    assert torch.equal(fused.predict(x), whole.predict(x))


@pytest.mark.parametrize("cls", [RidgeProbe, LogisticProbe])
def test_class_counts_are_the_train_label_counts(cls: type) -> None:
    x = _features(4, 90, 4)
    tasks = _tasks(x, 5, 4, 4)
    tasks[2] = np.where(tasks[2] == 3, 0, tasks[2])  # a task missing class 3
    est = cls(num_classes=4).fit(x, tasks)
    want = np.stack([np.bincount(t, minlength=4) for t in tasks])
    assert est.class_counts_.dtype == torch.int64
    np.testing.assert_array_equal(est.class_counts_.numpy(), want)


@pytest.mark.parametrize("probe", PROBES)
def test_result_fields_summary_and_majority(probe: str) -> None:
    x = _features(0, 120, 5).astype(np.float32)
    tasks = _tasks(x, 6, 3, 0)
    res = probe_tasks(torch.from_numpy(x), torch.from_numpy(tasks), probe=probe, k=5, seed=2)
    assert res.probe == probe and res.num_classes == 3 and res.num_tasks == 6
    assert res.accuracy.shape == res.majority_rate.shape == (6,)
    assert res.accuracy.dtype == np.float64 and res.predictions.shape == (6, 30)
    tr, te = _split(res)
    for s in range(6):
        majority = np.bincount(tasks[s, tr], minlength=3).argmax()
        assert res.majority_rate[s] == pytest.approx((tasks[s, te] == majority).mean())
        assert res.accuracy[s] == pytest.approx((res.predictions[s] == tasks[s, te]).mean())
    summ = res.summary()
    assert summ["mean"] == pytest.approx(res.accuracy.mean())
    assert summ["std"] == pytest.approx(res.accuracy.std())
    assert summ["p5"] == pytest.approx(np.percentile(res.accuracy, 5))
    assert summ["min"] == pytest.approx(res.accuracy.min())
    assert summ["gain_over_majority"] == pytest.approx((res.accuracy - res.majority_rate).mean())
    assert summ["num_tasks"] == 6
    assert summ["mean"] > 0.4  # learnable tasks: above chance (1/3)
    assert res.settings["seed"] == 2 and res.settings["k"] == 5
    with pytest.raises(ValueError):
        res.accuracy[0] = 0.0  # read-only


def test_same_answer_for_numpy_torch_and_single_task() -> None:
    x = _features(1, 80, 5)
    tasks = _tasks(x, 3, 4, 1)
    a = probe_tasks(x, tasks, seed=3)
    b = probe_tasks(torch.from_numpy(x), torch.from_numpy(tasks), seed=3)
    np.testing.assert_array_equal(a.predictions, b.predictions)
    one = probe_tasks(x, tasks[1], seed=3)
    assert one.num_tasks == 1 and one.accuracy[0] == a.accuracy[1]
    for est in (RidgeProbe(), KNNProbe(3), LogisticProbe()):
        assert est.fit(x, tasks[0]) is est
        assert est.predict(x).shape == (80,)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"probe": "svm"}, "probe"),
        ({"k": 0}, "k"),
        ({"alpha": -1.0}, "alpha"),
        ({"alpha": float("nan")}, "alpha"),
        ({"probe": "logistic", "alpha": 0.0}, "alpha"),
        ({"test_fraction": 0.0}, "test_fraction"),
        ({"test_fraction": 1.0}, "test_fraction"),
        ({"test_fraction": 0.01}, "test_fraction"),  # 1 test example
        ({"test_fraction": 0.97}, "test_fraction"),  # 1 train example
        ({"probe": "knn", "k": 40}, "k=40"),
    ],
)
def test_bad_settings_name_the_argument(kwargs: dict, match: str) -> None:
    x = _features(0, 40, 3)
    with pytest.raises(ValueError, match=match):
        probe_tasks(x, _tasks(x, 2, 2, 0), **kwargs)


def test_bad_inputs_name_the_argument() -> None:
    x = _features(0, 40, 3)
    tasks = _tasks(x, 2, 2, 0)
    with pytest.raises(ValueError, match="tasks has 39"):
        probe_tasks(x, tasks[:, :-1])
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="features contains NaN"):
        probe_tasks(bad, tasks)
    with pytest.raises(ValueError, match="tasks must hold labels"):
        probe_tasks(x, tasks - 1)
    with pytest.raises(ValueError, match="integer"):
        probe_tasks(x, tasks + 0.5)
    with pytest.raises(ValueError, match="tasks must be"):
        probe_tasks(x, tasks[None])
    with pytest.raises(RuntimeError, match="not fitted"):
        RidgeProbe().predict(x)
    with pytest.raises(ValueError, match="features"):
        RidgeProbe().fit(x, tasks).predict(x[:, :2])


def test_fit_warns_nothing_and_device_argument() -> None:
    x = _features(0, 40, 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        probe_tasks(x, _tasks(x, 2, 2, 0), device="cpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="CUDA"):
            probe_tasks(x, _tasks(x, 2, 2, 0), device="cuda")


def test_class_sum_blocks_balance_the_workers() -> None:
    from tp_harness.core.compiled.probe_kernels import _busiest, plan_groups

    g, b = plan_groups(10, 384, 8, 256, 2)
    assert g == 2 and _busiest(128, b, 2) == 64  # 128 groups split evenly
    assert plan_groups(10, 384, 8, 256, 1) == (2, 10)  # one worker: the largest block
    for s in (1, 7, 100, 257, 1000):
        g, b = plan_groups(3, 64, 8, s, 2)
        groups = -(-s // g)
        assert 1 <= b and _busiest(groups, b, 2) <= -(-groups // 2) + b


def test_majority_rate_rejects_counts_of_another_shape() -> None:
    from tp_harness.core.probes import majority_rate

    y = torch.tensor([[0, 1, 1], [2, 2, 0]])
    np.testing.assert_allclose(majority_rate(y, y, 3).numpy(), [2 / 3, 2 / 3])
    with pytest.raises(ValueError, match="train_counts has shape"):
        majority_rate(y, y, 3, train_counts=torch.zeros(2, 2, dtype=torch.long))


@pytest.fixture
def restore_precision_flags() -> Iterator[None]:
    """torch's default float32 precision flags for the test, the previous ones after: the
    legacy flag first (setting it rewrites the per-backend ones), then the per-backend
    ones from the root down."""
    b = torch.backends
    holders = (b, b.mkldnn, b.mkldnn.matmul, b.cuda.matmul)
    saved = [h.fp32_precision for h in holders]

    def put(values: list[str]) -> None:
        torch.set_float32_matmul_precision("highest")
        for h, value in zip(holders, values, strict=True):
            h.fp32_precision = value

    put(["none"] * len(holders))  # torch's defaults (another test may have set "ieee")
    yield
    put(saved)


@pytest.mark.usefixtures("restore_precision_flags")
@pytest.mark.parametrize(
    ("holder", "value", "exact"),
    [
        ("cuda.matmul", "tf32", True),  # the new API's CUDA TF32 switch: CPU stays IEEE
        ("mkldnn.matmul", "bf16", False),
        ("mkldnn", "bf16", False),
        ("", "bf16", False),  # torch.backends.fp32_precision: every backend
        ("mkldnn.matmul", "ieee", True),
    ],
)
def test_ridge_reads_the_new_precision_api_without_tripping_on_mixed_flags(
    monkeypatch: pytest.MonkeyPatch, holder: str, value: str, exact: bool
) -> None:
    """With only the new API set, ``torch.get_float32_matmul_precision()`` raises ("mix of
    the legacy and new APIs"); the probe must neither call it nor misjudge CPU products."""
    x = _features(5, 120, 6)
    tasks = _tasks(x, 4, 3, 5)
    probe = RidgeProbe().fit(x, tasks)
    expected = probe._predict_float64(torch.from_numpy(x))
    used: list[str] = []
    checked = RidgeProbe._predict_checked

    def spy(self: RidgeProbe, x: torch.Tensor) -> torch.Tensor:
        used.append("float32")
        return checked(self, x)

    monkeypatch.setattr(RidgeProbe, "_predict_checked", spy)
    target = torch.backends
    for part in filter(None, holder.split(".")):
        target = getattr(target, part)
    target.fp32_precision = value
    assert torch.equal(probe.predict(x), expected)
    assert used == (["float32"] if exact else [])
