"""Representations that need no neural model: the baselines every model should beat.

Text: ``tfidf-lsa[:dim=K]`` (TF-IDF + LSA). Images: ``pixels[:size=S]`` (the pixels,
flattened, in [0, 1]), ``pixels-pca:dim=K[,size=S]`` (exact PCA of the pixels). Either:
``random-projection:dim=K,of=SPEC[,seed=S]`` (a seeded Gaussian projection of another
representation; ``of=`` comes last and takes the rest of the text, so ``SPEC`` may hold
colons and options). All run offline in seconds and are deterministic.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .embed.spec import split_options, split_spec


@dataclass(frozen=True)
class Classic:
    """A registered baseline: the input it needs and the options it takes."""

    modality: str | None  # "text", "image", or None (that of ``of=``)
    options: tuple[str, ...]
    required: tuple[str, ...] = ()
    example: str = ""


#: The one registry of baselines (``tp-harness list models`` shows them).
CLASSICS: dict[str, Classic] = {
    "tfidf-lsa": Classic("text", ("dim",), example="tfidf-lsa:dim=K"),
    "pixels": Classic("image", ("size",), example="pixels"),
    "pixels-pca": Classic("image", ("dim", "size"), ("dim",), example="pixels-pca:dim=K"),
    "random-projection": Classic(
        None, ("dim", "of", "seed"), ("dim", "of"), example="random-projection:dim=K,of=SPEC"
    ),
}
CLASSIC_PREFIXES = tuple(CLASSICS)
_INT_OPTIONS = ("dim", "size", "seed")


def _kind(spec: str) -> str:
    return spec.split(":", 1)[0].split("@", 1)[0]


def is_classic_spec(spec: str) -> bool:
    """True for spec strings handled here instead of by a model."""
    return _kind(spec) in CLASSICS


def parse_classic_spec(spec: str) -> tuple[str, dict[str, Any]]:
    """``"pixels-pca:dim=64"`` -> ``("pixels-pca", {"dim": 64})``; ``of=`` keeps its text."""
    kind = _kind(spec)
    if kind not in CLASSICS:
        raise ValueError(f"bad baseline spec {spec!r}: one of {', '.join(CLASSICS)}.")
    info = CLASSICS[kind]
    rest = spec[len(kind) :]
    of = None
    if kind == "random-projection":
        body = rest[1:] if rest.startswith(":") else rest
        i = body.find("of=")
        if i < 0 or not body[i + 3 :].strip() or (i > 0 and body[i - 1] != ","):
            raise ValueError(
                f"{spec!r}: give the representation to project last, e.g. {info.example}."
            )
        of, head = body[i + 3 :].strip(), body[:i].rstrip(",")
        raw = split_options(head) if head else {}
    else:
        _, raw, layer = split_spec(spec)
        if layer is not None:
            raise ValueError(f"{spec!r}: a baseline has no layers (@layer{layer}).")
        if not raw and rest:
            raise ValueError(f"{spec!r}: options read key=value, e.g. {info.example}.")
    opts: dict[str, Any] = {}
    for key, values in raw.items():
        value = ",".join(values)
        if key not in info.options or key == "of":
            raise ValueError(
                f"bad option {key}={value!r} in {spec!r}; {kind} takes "
                f"{', '.join(o + '=' for o in info.options)} (e.g. {info.example})."
            )
        if key in _INT_OPTIONS:
            if not value.isdigit() or (int(value) < 1 and key != "seed"):
                raise ValueError(f"{spec!r}: {key}={value!r} must be an integer >= 1.")
            opts[key] = int(value)
    if of is not None:
        opts["of"] = of
    missing = [k for k in info.required if k not in opts]
    if missing:
        raise ValueError(f"{spec!r}: {kind} needs {', '.join(missing)}= (e.g. {info.example}).")
    return kind, opts


def classic_modality(spec: str) -> str | None:
    """The input a baseline needs; for ``random-projection`` that of its ``of=`` (None when
    ``of=`` is not itself a baseline)."""
    kind, opts = parse_classic_spec(spec)
    if kind == "random-projection":
        of = str(opts["of"])
        return classic_modality(of) if is_classic_spec(of) else None
    return CLASSICS[kind].modality


# --------------------------------------------------------------------------- math


#: Part of the cache key of every baseline's features: bump when any baseline's output
#: changes (the exact LSA of small n was version 1).
FEATURES_VERSION = 1

#: Up to this many texts LSA is exact: the top-k eigenpairs of the n x n Gram matrix.
EXACT_LSA_MAX_N = 2048


def _fix_signs(scores: np.ndarray) -> np.ndarray:
    """Each column's largest-magnitude entry made positive (a deterministic sign)."""
    pivot = np.abs(scores).argmax(axis=0)
    signs = np.sign(scores[pivot, np.arange(scores.shape[1])])
    signs[signs == 0] = 1.0
    return scores * signs


def tfidf_lsa(texts: Sequence[str], dim: int = 128, seed: int = 0) -> np.ndarray:
    """TF-IDF (sublinear tf, unigrams+bigrams) then truncated SVD (LSA). Returns (n, k) float32.

    ``k = min(dim, vocabulary size - 1, n - 1)``. Up to :data:`EXACT_LSA_MAX_N` texts the
    SVD is exact (``U_k Σ_k`` from the float64 ``eigh`` of the n x n Gram matrix, signs
    fixed); above, scikit-learn's randomised ``TruncatedSVD`` (deterministic for ``seed``).
    """
    from sklearn.decomposition import TruncatedSVD
    from sklearn.feature_extraction.text import TfidfVectorizer

    if len(texts) < 2:
        raise ValueError("tfidf-lsa needs at least 2 texts.")
    tfidf = TfidfVectorizer(sublinear_tf=True, ngram_range=(1, 2), min_df=1).fit_transform(texts)
    k = max(1, min(dim, tfidf.shape[1] - 1, len(texts) - 1))
    if len(texts) <= EXACT_LSA_MAX_N:
        gram = np.asarray((tfidf @ tfidf.T).todense(), dtype=np.float64)
        vals, vecs = np.linalg.eigh(gram)
        top = vals[::-1][:k].clip(min=0.0)
        scores = vecs[:, ::-1][:, :k] * np.sqrt(top)
        return np.asarray(_fix_signs(scores), dtype=np.float32)
    svd = TruncatedSVD(
        n_components=k, algorithm="arpack" if k < 50 else "randomized", random_state=seed
    )
    return np.asarray(svd.fit_transform(tfidf), dtype=np.float32)


def random_projection(x: np.ndarray, dim: int, seed: int = 0) -> np.ndarray:
    """Gaussian random projection ``x @ R / sqrt(dim)``, R (d, dim) seeded. Returns float32."""
    rng = np.random.default_rng(seed)
    r = rng.normal(size=(x.shape[1], dim)) / np.sqrt(dim)
    return np.asarray(np.asarray(x, dtype=np.float64) @ r, dtype=np.float32)


def pixel_matrix(images: Sequence[Any], size: int | None = None) -> np.ndarray:
    """Images -> ``(n, H*W*C)`` float32 in [0, 1]: grey when every image is, else RGB;
    resized to ``size x size``, or to the first image's size when they differ."""
    from PIL import Image

    pil = [im if isinstance(im, Image.Image) else Image.fromarray(np.asarray(im)) for im in images]
    if not pil:
        raise ValueError("pixels needs at least one image.")
    mode = "L" if all(im.mode in ("L", "1", "I", "I;16", "F") for im in pil) else "RGB"
    target = (size, size) if size else pil[0].size
    rows = []
    for im in pil:
        im = im.convert(mode)
        if im.size != target:
            im = im.resize(target, Image.Resampling.BILINEAR)
        rows.append(np.asarray(im, dtype=np.float32).reshape(-1) / 255.0)
    return np.stack(rows)


def exact_pca(x: np.ndarray, dim: int) -> np.ndarray:
    """Exact PCA scores ``(n, k)``, ``k = min(dim, n - 1, d)``, from the smaller of the
    ``d x d`` covariance and the ``n x n`` Gram matrix (float64 ``eigh``). Each component's
    sign makes its largest-magnitude score positive (deterministic)."""
    xc = np.asarray(x, dtype=np.float64)
    xc = xc - xc.mean(axis=0, keepdims=True)
    n, d = xc.shape
    k = max(1, min(dim, n - 1, d))
    if d <= n:
        vals, vecs = np.linalg.eigh(xc.T @ xc)
        scores = xc @ vecs[:, ::-1][:, :k]
    else:
        vals, vecs = np.linalg.eigh(xc @ xc.T)
        top = vals[::-1][:k].clip(min=0.0)
        scores = vecs[:, ::-1][:, :k] * np.sqrt(top)
    return np.asarray(_fix_signs(scores), dtype=np.float32)


def classic_features(
    spec: str, texts: Sequence[str] | None, seed: int = 0, images: Sequence[Any] | None = None
) -> np.ndarray:
    """Features of a text or image baseline on the dataset's texts or images
    (``random-projection`` is computed by the caller, which embeds its ``of=``)."""
    kind, opts = parse_classic_spec(spec)
    modality = CLASSICS[kind].modality
    if kind == "random-projection":
        raise ValueError(f"{spec!r}: project a computed representation with random_projection.")
    if modality == "text":
        if texts is None:
            raise ValueError(f"{spec!r} needs a text dataset; this dataset has no text column.")
        return tfidf_lsa(list(texts), dim=opts.get("dim", 128), seed=seed)
    if images is None:
        raise ValueError(f"{spec!r} needs an image dataset; this dataset has no image column.")
    pixels = pixel_matrix(images, opts.get("size"))
    return pixels if kind == "pixels" else exact_pca(pixels, opts["dim"])
