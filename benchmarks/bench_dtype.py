"""Embedding dtype: bfloat16 against the exact float32 default on the main job.

    python benchmarks/bench_dtype.py                  # float32 vs bfloat16
    python benchmarks/bench_dtype.py --dtypes float32 bfloat16 float16

Runs `tp-harness evaluate` (tasks/default.yaml: MiniLM and every layer, TF-IDF/LSA, the
979 drug reviews) once per dtype, each with a fresh embedding cache, and compares with
the float32 run: the embed stage's seconds, the largest relative drift of
`mean_per_pair` and of `std` over every (model, prior, temperature), whether each
ranking is unchanged, and the largest change of a probe's mean accuracy.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def run(dtype: str, tmp: Path) -> dict[str, Any]:
    out = tmp / dtype
    cmd = [sys.executable, "-m", "tp_harness", "evaluate", "--no-progress", "--dtype", dtype]
    cmd += ["--cache-dir", str(tmp / f"cache-{dtype}"), "--output-dir", str(out)]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    if res.returncode != 0:
        raise RuntimeError(res.stderr[-3000:])
    return dict(json.loads((out / "results.json").read_text()))


def rankings(doc: dict[str, Any]) -> dict[tuple[str, float], list[str]]:
    """Ranked (unflagged) models per (prior, temperature)."""
    groups: dict[tuple[str, float], list[dict[str, Any]]] = {}
    for s in doc["scores"]:
        if not s["flags"]:
            groups.setdefault((s["prior"], s["temperature"]), []).append(s)
    return {
        k: [s["model"] for s in sorted(v, key=lambda s: -s["mean_per_pair"])]
        for k, v in groups.items()
    }


def compare(ref: dict[str, Any], other: dict[str, Any]) -> dict[str, Any]:
    key = ("model", "prior", "temperature")
    a = {tuple(s[k] for k in key): s for s in ref["scores"]}
    b = {tuple(s[k] for k in key): s for s in other["scores"]}
    drift = {
        f: max(abs(b[k][f] - a[k][f]) / abs(a[k][f]) for k in a if a[k][f])
        for f in ("mean_per_pair", "std")
    }
    pkey = ("model", "prior", "temperature", "num_classes", "probe")
    pa = {tuple(p[k] for k in pkey): p["mean"] for p in ref["probes"]}
    pb = {tuple(p[k] for k in pkey): p["mean"] for p in other["probes"]}
    return {
        **drift,
        "same_ranking": rankings(ref) == rankings(other),
        "probe_acc": max(abs(pb[k] - pa[k]) for k in pa),
        "embed_s": other["timings"]["embed"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"])
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        docs = {d: run(d, Path(tmp)) for d in args.dtypes}
    ref = docs[args.dtypes[0]]
    print(
        f"| dtype | embed s | vs {args.dtypes[0]} | max rel. drift mean_per_pair "
        "| max rel. drift std | rankings unchanged | max probe acc change |"
    )
    print("|---|---|---|---|---|---|---|")
    for d, doc in docs.items():
        c = compare(ref, doc)
        speed = ref["timings"]["embed"] / c["embed_s"]
        print(
            f"| {d} | {c['embed_s']:.1f} | {speed:.2f}x | {c['mean_per_pair']:.2e} | "
            f"{c['std']:.2e} | {'yes' if c['same_ranking'] else 'no'} | {c['probe_acc']:.4f} |"
        )


if __name__ == "__main__":
    main()
