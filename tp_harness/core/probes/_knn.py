"""kNN probes: one cosine neighbour graph, a majority vote per task."""

from __future__ import annotations

import torch

from ..checks import ArrayLike, check_positive_int
from ..kernels import row_normalize
from ._base import _CHUNK, _TaskProbe


def vote(labels: torch.Tensor, neighbors: torch.Tensor, q: int) -> torch.Tensor:
    """Majority label among neighbours, ties to the smallest label.

    labels (S, n_train), neighbors (m, k) train indices -> (S, m) LongTensor.
    """
    s_total, (m, k) = labels.shape[0], neighbors.shape
    step = max(1, _CHUNK // (m * max(k, q)))
    out = []
    for s0 in range(0, s_total, step):
        neigh = labels[s0 : s0 + step][:, neighbors]  # (Sb, m, k)
        counts = torch.zeros(neigh.shape[0], m, q, dtype=torch.int32, device=labels.device)
        counts.scatter_add_(
            2, neigh, torch.ones(1, dtype=torch.int32, device=labels.device).expand_as(neigh)
        )
        out.append(counts.argmax(dim=2))
    return torch.cat(out)


class KNNProbe(_TaskProbe):
    """k-nearest-neighbour classifier with cosine similarity, ``S`` tasks at once.

    Per task equal to ``KNeighborsClassifier(n_neighbors=k, metric="cosine")``
    (uniform weights, ties to the smallest label). One neighbour graph serves all
    tasks; similarities are computed in the features' float dtype, in row batches.

    Learned state: ``train_`` (n, d) unit rows, ``labels_`` (S, n), ``num_classes_``.
    """

    def __init__(
        self,
        k: int = 20,
        *,
        num_classes: int | None = None,
        batch_size: int = 2048,
        device: str | torch.device | None = None,
    ) -> None:
        self.k = k
        self.num_classes = num_classes
        self.batch_size = batch_size
        self.device = device

    def _fit(
        self,
        x: torch.Tensor,
        y: torch.Tensor,
        q: int,
        *,
        overwrite_x: bool = False,
        class_counts: torch.Tensor | None = None,
    ) -> KNNProbe:
        k = check_positive_int(self.k, "k")
        if k > x.shape[0]:
            raise ValueError(f"k={k} is larger than the {x.shape[0]} training examples.")
        self.train_, self.labels_ = row_normalize(x), y
        self._remember(x, q, x.dtype)
        return self

    def kneighbors(self, x: ArrayLike) -> torch.Tensor:
        """Indices (m, k) of the ``k`` most cosine-similar train rows, nearest first."""
        return self._kneighbors(self._check_x(x))

    def _kneighbors(self, x: torch.Tensor) -> torch.Tensor:
        xn, b = row_normalize(x), check_positive_int(self.batch_size, "batch_size")
        return torch.cat(
            [
                (xn[i : i + b] @ self.train_.T).topk(self.k, dim=1).indices
                for i in range(0, xn.shape[0], b)
            ]
        )

    def _predict(self, x: torch.Tensor) -> torch.Tensor:
        return vote(self.labels_, self._kneighbors(x), self.num_classes_)
