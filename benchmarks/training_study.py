"""Fine-tuning with the task-prior loss: a small study, offline, one command.

    python benchmarks/training_study.py                  # writes docs/figures/training_*.{json,png}

Frozen all-MiniLM-L6-v2 sentence embeddings (``bundled:minilm``) of the 979 bundled drug
reviews, split 70/30 (stratified, seed 0). A 2-layer adapter (384 -> 256 -> 128, GELU) is
trained on the training rows, full batch, Adam, with

- ``task prior (w)``: :func:`tp_harness.task_prior_loss` against the prior
  ``0.5 * labels + 0.5 * MiniLM`` (label graph + centered cosine, T = 0.1), for several
  ``variance_weight`` w;
- ``cross-entropy``: a linear classifier head on the adapter, the plain supervised loss;
- ``supervised contrastive``: SupCon (Khosla et al.) on the normalised adapter outputs
  (positives: same label, temperature 0.1);
- ``view graph``: the task-prior loss with ``prior_kernel="view_graph"`` on V = 2 SimCSE
  views per review (MiniLM forward passes with dropout on), no labels at all.

Reported on the held-out rows, "before" (the frozen embeddings, and the adapter at its
random init) and after: the closed-form mean per pair and std / n against the same prior,
sampled-task probe accuracy (128 tasks from the prior, q = 2, ridge), and real-label
accuracy (ridge and 20-NN on the true classes). Every method gets the same adapter init,
steps and learning rate.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tp_harness import probe_tasks, sample_tasks, task_prior_loss, task_prior_moments  # noqa: E402
from tp_harness.core.probes import train_test_indices  # noqa: E402

T = 0.1
PRIOR_WEIGHTS = [0.5, 0.5]
PRIOR_KERNELS = ["label_graph", "centered_cosine"]


def adapter(seed: int, d: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Linear(d, 256), torch.nn.GELU(), torch.nn.Linear(256, 128)
    ).double()


def supcon(z: torch.Tensor, y: torch.Tensor, tau: float = 0.1) -> torch.Tensor:
    """Supervised contrastive loss (mean over anchors with at least one positive)."""
    z = torch.nn.functional.normalize(z, dim=1)
    logits = z @ z.T / tau
    eye = torch.eye(len(y), dtype=torch.bool)
    logits = logits.masked_fill(eye, -1e9)
    log_prob = logits - torch.logsumexp(logits, dim=1, keepdim=True)
    pos = (y[:, None] == y[None, :]) & ~eye
    has = pos.any(1)
    return -((log_prob * pos).sum(1)[has] / pos.sum(1)[has]).mean()


def label_accuracy(
    z_tr: np.ndarray, y_tr: np.ndarray, z_te: np.ndarray, y_te: np.ndarray
) -> dict[str, float]:
    """Real-label probes fit on the training rows, scored on the held-out rows: logistic
    regression (standardised features) and 20-NN (cosine); accuracy and balanced accuracy."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import balanced_accuracy_score
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    out = {}
    for name, clf in (
        ("logreg", make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000))),
        ("knn", KNeighborsClassifier(n_neighbors=20, metric="cosine")),
    ):
        pred = clf.fit(z_tr, y_tr).predict(z_te)
        out[f"label_acc_{name}"] = float((pred == y_te).mean())
        out[f"label_bacc_{name}"] = float(balanced_accuracy_score(y_te, pred))
    return out


def evaluate(z: np.ndarray, y: np.ndarray, x_prior: np.ndarray) -> dict[str, float]:
    """Held-out metrics of features ``z`` (n, k) against the prior on the same rows."""
    prior = [y, x_prior]
    m = task_prior_moments(
        z, prior, T, prior_kernel=PRIOR_KERNELS, prior_weights=PRIOR_WEIGHTS, num_blocks=None
    )
    tasks = sample_tasks(
        prior,
        128,
        2,
        T,
        seed=0,
        prior_kernel=PRIOR_KERNELS,
        prior_weights=PRIOR_WEIGHTS,
        min_class_fraction=0.1,
    )
    sampled = probe_tasks(z, tasks, probe="ridge").accuracy
    n = len(y)
    return {
        "mean_per_pair": float(m.mean_per_pair),
        "std_per_n": float(m.std / n),
        "sampled_task_acc": float(np.mean(sampled)),
    }


def train(
    method: str,
    x: torch.Tensor,
    y: torch.Tensor,
    views: torch.Tensor | None,
    steps: int,
    lr: float,
    weight: float = 1.0,
) -> torch.nn.Module:
    net = adapter(0, x.shape[1])
    head = torch.nn.Linear(128, int(y.max()) + 1).double()
    params = list(net.parameters()) + (list(head.parameters()) if method == "ce" else [])
    opt = torch.optim.Adam(params, lr=lr)
    prior = [y.numpy(), x.numpy()]
    for _ in range(steps):
        opt.zero_grad()
        if method == "task_prior":
            loss = task_prior_loss(
                net(x),
                prior,
                T,
                variance_weight=weight,
                prior_kernel=PRIOR_KERNELS,
                prior_weights=PRIOR_WEIGHTS,
            )
        elif method == "view_graph":
            assert views is not None
            loss = task_prior_loss(
                net(views), 2, T, variance_weight=weight, prior_kernel="view_graph"
            )
        elif method == "ce":
            loss = torch.nn.functional.cross_entropy(head(net(x)), y)
        else:
            loss = supcon(net(x), y)
        loss.backward()
        opt.step()
    return net


def simcse_views(texts: list[str], num_views: int = 2) -> np.ndarray:
    """(n * V, 384) MiniLM mean-pooled embeddings with dropout on (sample-major)."""
    from transformers import AutoModel, AutoTokenizer

    from tp_harness.evaluation.embed import parse_model_spec

    folder = parse_model_spec("bundled:minilm").model_id
    tok = AutoTokenizer.from_pretrained(folder)
    model = AutoModel.from_pretrained(folder).train()  # dropout on: SimCSE views
    torch.manual_seed(1)
    out = np.zeros((len(texts), num_views, model.config.hidden_size))
    with torch.no_grad():
        for v in range(num_views):
            for i in range(0, len(texts), 64):
                enc = tok(
                    texts[i : i + 64],
                    padding=True,
                    truncation=True,
                    max_length=128,
                    return_tensors="pt",
                )
                h = model(**enc).last_hidden_state
                mask = enc["attention_mask"][..., None].float()
                out[i : i + 64, v] = ((h * mask).sum(1) / mask.sum(1)).numpy()
    return out.reshape(len(texts) * num_views, -1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--steps", type=int, default=300)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--weights", type=float, nargs="+", default=[0.0, 0.01, 0.03, 0.1, 1.0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "figures"))
    args = ap.parse_args()
    start = time.perf_counter()
    from tp_harness.evaluation.data import load_data
    from tp_harness.evaluation.embed import embed, parse_model_spec

    data = load_data("bundled:drug_reviews")
    x_all = next(iter(embed(parse_model_spec("bundled:minilm"), data).values())).astype(np.float64)
    y_all = np.asarray(data.labels)
    n = len(y_all)
    train_idx, test_idx = (i.numpy() for i in train_test_indices(n, 0.3, 0))
    x_tr, y_tr = torch.tensor(x_all[train_idx]), torch.tensor(y_all[train_idx])
    x_te, y_te = x_all[test_idx], y_all[test_idx]
    texts = [str(t) for t in data.dataset[data.text_column]]
    views = torch.tensor(simcse_views([texts[i] for i in train_idx]))

    rows: list[dict[str, Any]] = []

    def record(name: str, net: Any, **extra: Any) -> None:
        with torch.no_grad():
            z_tr, z_te = (net(torch.tensor(a)).numpy() for a in (x_all[train_idx], x_te))
        labels = label_accuracy(z_tr, y_all[train_idx], z_te, y_te)
        rows.append({"method": name, **extra, **evaluate(z_te, y_te, x_te), **labels})
        print(json.dumps(rows[-1]), flush=True)

    record("frozen MiniLM (before)", torch.nn.Identity())
    record("adapter at init (before)", adapter(0, x_all.shape[1]))
    plans = [("task_prior", w) for w in args.weights] + [("ce", 0.0), ("supcon", 0.0)]
    plans += [("view_graph", 0.0), ("view_graph", 0.01)]
    for method, w in plans:
        t0 = time.perf_counter()
        net = train(method, x_tr, y_tr, views, args.steps, args.lr, w)
        name = {
            "task_prior": f"task prior (w={w:g})",
            "ce": "cross-entropy",
            "supcon": "supervised contrastive",
            "view_graph": f"view graph (SimCSE views, w={w:g})",
        }[method]
        record(name, net, train_s=round(time.perf_counter() - t0, 2))
    total = time.perf_counter() - start
    out = Path(args.out)
    meta = {
        "n_train": len(train_idx),
        "n_test": len(test_idx),
        "T": T,
        "steps": args.steps,
        "lr": args.lr,
        "prior": "0.5 labels + 0.5 MiniLM",
        "seconds": round(total, 1),
    }
    (out / "training_results.json").write_text(json.dumps({"meta": meta, "rows": rows}, indent=1))
    _figure(rows, out / "training_study.png")
    print(f"total {total:.1f} s")


def _figure(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = [
        "mean_per_pair",
        "std_per_n",
        "sampled_task_acc",
        "label_acc_logreg",
        "label_bacc_logreg",
        "label_acc_knn",
    ]
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 4.2))
    names = [r["method"] for r in rows]
    for ax, key in zip(axes, keys, strict=True):
        vals = [r[key] for r in rows]
        ax.barh(range(len(vals)), vals, color=["#999"] * 2 + ["#3366cc"] * (len(vals) - 2))
        ax.set_yticks(range(len(vals)), names if ax is axes[0] else [""] * len(vals), fontsize=8)
        ax.set_title(key, fontsize=9)
        lo = min(vals)
        ax.set_xlim(lo - 0.05 * abs(lo) if key.startswith("label") or "acc" in key else None)
        ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
