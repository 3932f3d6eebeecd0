"""The main job (`tp-harness evaluate`, tasks/default.yaml) cold and warm, stage by stage.

    python benchmarks/bench_main_job.py            # first run, new data, 5 warm runs
    python benchmarks/bench_main_job.py --warm 10

Each run is a fresh `tp-harness evaluate --no-progress` process; its stage timings come
from the `timings (s): ...` line it prints ("startup" is the interpreter and imports
before the command, "write" the run folder, "total" the process's wall time at the end),
and "wall" is measured here around the process (interpreter shutdown included).

* first run: nothing cached (a fresh NUMBA_CACHE_DIR, so the compiled kernels are built,
  a fresh TP_HARNESS_CACHE, so the models' configs are parsed, and a fresh --cache-dir,
  so the embeddings and baselines are computed);
* new data: compiled kernels and model resolutions cached, embeddings computed (a fresh
  --cache-dir);
* warm: everything cached (what a second `make demo` does).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_once(cache: Path, out: Path, env: dict[str, str]) -> dict[str, float]:
    """One `tp-harness evaluate` process: its stage timings and the wall time around it."""
    cmd = [sys.executable, "-m", "tp_harness", "evaluate", "--no-progress"]
    cmd += ["--cache-dir", str(cache), "--output-dir", str(out), "--overwrite"]
    t0 = time.perf_counter()
    res = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    wall = time.perf_counter() - t0
    if res.returncode != 0:
        raise RuntimeError(res.stderr[-3000:])
    line = next(x for x in reversed(res.stderr.splitlines()) if x.startswith("timings (s): "))
    parts = line.removeprefix("timings (s): ").split(" · ")
    out_t = {p.split()[0]: float(p.split()[1]) for p in parts}
    out_t["wall"] = wall
    return out_t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--warm", type=int, default=5, help="number of warm runs")
    args = ap.parse_args()
    base = {**os.environ, "HF_HUB_OFFLINE": "1"}
    rows: list[tuple[str, dict[str, float]]] = []
    with tempfile.TemporaryDirectory() as tmp:
        t = Path(tmp)
        first_env = {**base, "NUMBA_CACHE_DIR": str(t / "numba"), "TP_HARNESS_CACHE": str(t / "tp")}
        rows.append(("first run", run_once(t / "cache0", t / "out", first_env)))
        rows.append(("new data", run_once(t / "cache1", t / "out", first_env)))
        warm = [run_once(t / "cache1", t / "out", first_env) for _ in range(args.warm)]
    keys = list(warm[0])
    median = {k: statistics.median(w[k] for w in warm) for k in keys}
    best = {k: min(w[k] for w in warm) for k in keys}
    rows += [(f"warm, median of {len(warm)}", median), (f"warm, best of {len(warm)}", best)]
    print("| run | " + " | ".join(keys) + " |")
    print("|---|" + "---|" * len(keys))
    for name, r in rows:
        print(f"| {name} | " + " | ".join(f"{r.get(k, float('nan')):.2f}" for k in keys) + " |")
    walls = ", ".join(f"{w['wall']:.2f}" for w in warm)
    print(f"\nwarm wall times: {walls} s")


if __name__ == "__main__":
    main()
