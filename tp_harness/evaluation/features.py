"""Classical representations that need no neural model: TF-IDF + LSA, random projections.

They give the harness baselines that every embedding model should beat, and they
run offline in seconds. Spec strings: ``tfidf-lsa`` or ``tfidf-lsa:dim=128``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .embed.spec import split_spec

CLASSIC_PREFIXES = ("tfidf-lsa",)


def is_classic_spec(spec: str) -> bool:
    """True for spec strings handled here instead of by a Hub model."""
    return spec.split(":", 1)[0] in CLASSIC_PREFIXES


def parse_classic_spec(spec: str) -> tuple[str, dict[str, int]]:
    """``"tfidf-lsa:dim=64"`` -> ``("tfidf-lsa", {"dim": 64})`` (the model-spec grammar)."""
    kind, raw, layer = split_spec(spec)
    if kind not in CLASSIC_PREFIXES:
        raise ValueError(f"bad classic spec {spec!r}: use {CLASSIC_PREFIXES[0]}[:dim=K].")
    if layer is not None:
        raise ValueError(f"{spec!r}: a classic representation has no layers (@layer{layer}).")
    opts: dict[str, int] = {}
    for key, values in raw.items():
        value = ",".join(values)
        if key != "dim" or not value.isdigit() or int(value) < 1:
            raise ValueError(
                f"bad option {key}={value!r} in {spec!r}; the only option is dim=<int >= 1>."
            )
        opts[key] = int(value)
    return kind, opts


def tfidf_lsa(texts: Sequence[str], dim: int = 128, seed: int = 0) -> np.ndarray:
    """TF-IDF (sublinear tf, unigrams+bigrams) then truncated SVD (LSA). Returns (n, k) float32.

    ``k = min(dim, vocabulary size - 1, n - 1)``; deterministic for a given ``seed``.
    """
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    if len(texts) < 2:
        raise ValueError("tfidf-lsa needs at least 2 texts.")
    tfidf = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=1).fit_transform(texts)
    k = max(1, min(dim, tfidf.shape[1] - 1, len(texts) - 1))
    svd = TruncatedSVD(
        n_components=k, algorithm="arpack" if k < 50 else "randomized", random_state=seed
    )
    return np.asarray(svd.fit_transform(tfidf), dtype=np.float32)


def random_projection(x: np.ndarray, dim: int, seed: int = 0) -> np.ndarray:
    """Gaussian random projection ``x @ R / sqrt(dim)``, R (d, dim) seeded. Returns float32."""
    rng = np.random.default_rng(seed)
    r = rng.normal(size=(x.shape[1], dim)) / np.sqrt(dim)
    return np.asarray(x @ r, dtype=np.float32)


def classic_features(spec: str, texts: Sequence[str] | None, seed: int = 0) -> np.ndarray:
    """Features for a classic spec string, on the dataset's texts."""
    _, opts = parse_classic_spec(spec)
    if texts is None:
        raise ValueError(f"{spec!r} needs a text dataset; this dataset has no text column.")
    return tfidf_lsa(list(texts), dim=opts.get("dim", 128), seed=seed)
