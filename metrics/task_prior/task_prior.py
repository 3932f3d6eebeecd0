"""Task-prior moments (Patel & Balestriero, Theorem 3.6) as a Hugging Face ``evaluate`` metric.

A thin wrapper: rows go through evaluate's cache (one row per example, float32 by
default), and ``_compute`` hands the stacked arrays to
:func:`tp_harness.task_prior_moments`. No math here.
"""

import datasets
import evaluate
import numpy as np
import pyarrow as pa

import tp_harness

_CITATION = """\
@misc{patel2025taskpriors,
  title  = {taskpriors: Enhancing Model Evaluation by Considering the Entire Space of
            Downstream Tasks},
  author = {Patel, Niket and Balestriero, Randall},
  year   = {2025}
}
"""

_DESCRIPTION = """\
Closed-form mean and variance of a representation's alignment Tr(MG) over *all*
downstream tasks G drawn from a task prior (Patel & Balestriero, Theorem 3.6):
mean = sum_ij M_ij s(K_ij/T), variance = sum_ij M_ij^2 s(K_ij/T) s(-K_ij/T), over all
ordered pairs (i, j) including the diagonal. M is the kernel of the model embeddings
(`predictions`), K the kernel of the prior embeddings (`references`), T the temperature.
Higher mean: the model's geometry agrees with the tasks the prior deems likely.
"""

_KWARGS_DESCRIPTION = """
Args:
    predictions: model embeddings, one row per example: (n, d) array, tensor or list of rows.
    references: prior embeddings for the same examples in the same order: (n, r); or class
        ids (n,) with `prior_kernel="label_graph"`.
    temperature (float or list of floats): T > 0, default 0.1 (the harness default); a list
        computes all of them in one pass.
    model_kernel (str): kernel of the embeddings: "centered_cosine" (default), "cosine",
        "linear", "projection".
    prior_kernel (str): same choices, plus "label_graph" (references are class ids).
    normalize (str or None): "frobenius" divides both kernels by their Frobenius norm.
    method (str): "exact" (default, streamed tiles) or "monte_carlo" (needs `num_pairs`).
    num_pairs (int), seed (int): Monte Carlo settings.
    block_size (int), device (str): engine settings (tile edge, e.g. "cuda").
Returns:
    mean, variance, std: moments of Tr(MG) summed over the n^2 ordered pairs.
    mean_per_pair, variance_per_pair: the same divided by n^2 (compare across n).
    n: number of examples. temperature: T.
    mean_stderr, variance_stderr: standard errors (method="monte_carlo" only).
    With a list of temperatures every value but n is a list, one entry per temperature.
Examples:
    >>> import numpy as np
    >>> import evaluate
    >>> metric = evaluate.load("metrics/task_prior")
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(50, 8)).astype("float32")
    >>> out = metric.compute(predictions=x, references=x, temperature=0.1)
    >>> sorted(out)
    ['mean', 'mean_per_pair', 'n', 'std', 'temperature', 'variance', 'variance_per_pair']
"""

_STORAGE = {"default": "float32", "float32": "float32", "float64": "float64"}
_FIELDS = ("mean", "variance", "std", "mean_per_pair", "variance_per_pair")
_MAX_VALUES = 1 << 30  # values per Arrow list chunk (int32 offsets)


def _row_kernels():
    """Kernels of row features: the library's factor-kernel registry (rows are examples)."""
    return tuple(tp_harness.kernels.FACTOR_KERNELS)


def _rows(x, dtype, name):
    """Arrays, tensors or lists of rows -> 2-D ``dtype`` array; a 1-D input becomes one column."""
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    try:
        a = np.asarray(x, dtype=dtype)
    except (ValueError, TypeError):
        raise ValueError(
            f"task_prior: {name} must be numbers in rows of the same length, shape (n, k)."
        ) from None
    if a.ndim not in (1, 2):
        raise ValueError(f"task_prior: {name} must be 2-D (n, k); got shape {a.shape}.")
    return a.reshape(-1, 1) if a.ndim == 1 else a


def _list_array(rows):
    """(b, k) array -> Arrow list array of its rows, without Python objects."""
    b, k = rows.shape
    offsets = pa.array(np.arange(0, (b + 1) * k, k, dtype=np.int32) if b else [0], pa.int32())
    return pa.ListArray.from_arrays(offsets, pa.array(rows.reshape(-1)))


def _row_chunks(preds, refs):
    """Row slices small enough for int32 list offsets."""
    step = max(1, _MAX_VALUES // max(preds.shape[1], refs.shape[1], 1))
    for i in range(0, preds.shape[0], step):
        yield preds[i : i + step], refs[i : i + step]


def _stacked(column, name, dtype):
    """The column read back from evaluate's cache (lists of rows) -> (n, k) array."""
    try:
        a = np.asarray(column, dtype=dtype)
    except ValueError:
        a = None
    if a is None or a.ndim != 2:
        lengths = sorted({len(r) for r in column})
        raise ValueError(
            f"task_prior: every row of {name} must have the same length; got "
            f"rows of lengths {lengths[:5]}."
        )
    return a


def _labels(refs):
    if refs.shape[1] != 1:
        raise ValueError(
            "task_prior: prior_kernel='label_graph' takes class ids as references "
            f"(one value per example); got {refs.shape[1]} values per row."
        )
    ids = refs[:, 0]
    if not np.array_equal(ids, np.round(ids)):
        raise ValueError("task_prior: class ids given as references must be integers.")
    return ids.astype(np.int64)


def _output(result, temperatures):
    """MomentResult (or {"model": {T: MomentResult}}) -> plain dict."""
    if isinstance(result, dict):
        per_t = [result["model"][t] for t in temperatures]
    else:
        per_t = [result]
    keys = list(_FIELDS) + (
        ["mean_stderr", "variance_stderr"] if per_t[0].method == "monte_carlo" else []
    )
    out = {k: [getattr(r, k) for r in per_t] for k in keys}
    out["temperature"] = [r.temperature for r in per_t]
    if not isinstance(result, dict):
        out = {k: v[0] for k, v in out.items()}
    out["n"] = per_t[0].n
    return out


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class TaskPrior(evaluate.Metric):
    """Task-prior mean and variance of the model/task alignment (see the metric card)."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Read the float32 cache back as NumPy: a list<float32> column comes out as one
        # (n, k) array instead of n Python lists. MetricInfo refuses format="numpy" for
        # non-Value features only at construction (a check older than datasets' nested
        # NumPy formatting). Not for float64: datasets' NumPy formatter casts floats to
        # float32. With other versions _compute may get lists; it converts them itself.
        if _STORAGE[self.config_name] == "float32":
            self.info.format = "numpy"

    def _info(self):
        if self.config_name not in _STORAGE:
            raise ValueError(
                f"task_prior: unknown config {self.config_name!r}; use one of "
                f"{sorted(_STORAGE)} (the dtype rows are cached in)."
            )
        seq = getattr(datasets, "List", datasets.Sequence)
        value = datasets.Value(_STORAGE[self.config_name])
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features({"predictions": seq(value), "references": seq(value)}),
        )

    def add_batch(self, *, predictions=None, references=None, **kwargs):
        """Add a batch of rows: ``predictions`` (b, d), ``references`` (b, r) or (b,).

        The first row goes through evaluate's own checks (it also opens the cache
        file); the others are written to the cache as one Arrow table built from the
        NumPy buffers, so no Python float objects are created.
        """
        if predictions is None or references is None or kwargs:
            return super().add_batch(predictions=predictions, references=references, **kwargs)
        dtype = _STORAGE[self.config_name]
        preds = _rows(predictions, dtype, "predictions")
        refs = _rows(references, dtype, "references")
        if len(preds) != len(refs):
            raise ValueError(
                f"Mismatch in the number of predictions ({len(preds)}) and references ({len(refs)})"
            )
        start = 0
        if getattr(self, "writer", None) is None and len(preds):
            super().add_batch(predictions=preds[:1].tolist(), references=refs[:1].tolist())
            start = 1
        if not hasattr(getattr(self, "writer", None), "write_table"):  # other evaluate versions
            return super().add_batch(
                predictions=preds[start:].tolist(), references=refs[start:].tolist()
            )
        for p, r in _row_chunks(preds[start:], refs[start:]):
            self.writer.write_table(
                pa.table({"predictions": _list_array(p), "references": _list_array(r)})
            )
        return None

    def _compute(
        self,
        predictions,
        references,
        temperature=0.1,
        model_kernel="centered_cosine",
        prior_kernel="centered_cosine",
        normalize=None,
        method="exact",
        num_pairs=None,
        seed=None,
        block_size=None,
        device=None,
    ):
        for arg, name in (("model_kernel", model_kernel), ("prior_kernel", prior_kernel)):
            allowed = _row_kernels() + (("label_graph",) if arg == "prior_kernel" else ())
            if name not in allowed:
                raise ValueError(
                    f"task_prior: {arg}={name!r} is not supported by the metric "
                    f"(rows are examples); use one of {allowed}."
                )
        dtype = _STORAGE[self.config_name]
        model = _stacked(predictions, "predictions", dtype)
        prior = _stacked(references, "references", dtype)
        if prior_kernel == "label_graph":
            prior = _labels(prior)
        elif prior.shape[1] == 1 and np.array_equal(prior, np.round(prior)):
            raise ValueError(
                "task_prior: references hold one integer per example (class ids?) but "
                f"prior_kernel={prior_kernel!r} reads them as 1-D embeddings, which gives a "
                "meaningless number. Pass prior_kernel='label_graph' to use the labels as "
                "the prior, or pass prior embeddings of shape (n, r)."
            )
        result = tp_harness.task_prior_moments(
            model,
            prior,
            temperature,
            model_kernel=model_kernel,
            prior_kernel=prior_kernel,
            normalize=normalize,
            method=method,
            num_pairs=num_pairs,
            seed=seed,
            block_size=block_size,
            device=device,
        )
        temps = [float(t) for t in temperature] if isinstance(result, dict) else [temperature]
        return _output(result, temps)
