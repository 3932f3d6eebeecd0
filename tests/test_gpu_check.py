"""``benchmarks/gpu_check.sh`` works before a GPU ever runs it (issue 20 item 2).

A session that is lent a GPU has minutes on it: the script must not fail there on a
command line, an import or a table that nobody ran. Its dry run (``GPU_CHECK_DEVICE=cpu``)
runs every step at tiny sizes on CPU, the accelerate 1-vs-2-processes comparison included.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"


def _run(
    py: str, device: str, timeout: float = 600, **extra: str
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PY": py, "GPU_CHECK_DEVICE": device, "HF_HUB_OFFLINE": "1", **extra}
    return subprocess.run(
        ["bash", str(SCRIPT)], capture_output=True, text=True, env=env, timeout=timeout
    )


@pytest.mark.slow
def test_the_dry_run_runs_every_step_and_prints_its_tables() -> None:
    res = _run(sys.executable, "cpu")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = res.stdout
    for header in (
        "## CUDA tests",
        "## Moments on cpu",
        "## Tile-product precision",
        "## n = 8192, d = 64 with TP_HARNESS_TILE_MATMUL=3xtf32",
        "## n = 8192, d = 64 with TP_HARNESS_TILE_MATMUL=tf32",
        "## Sampler on cpu",
        "## Probes on cpu",
        "## 1 process vs all devices",
        "## Steps (",
        "| step | seconds | result |",
        "## all steps passed",
    ):
        assert header in out, header
    assert "| 2048 | " in out and "| 4096 | " in out and "| 8192 | " in out  # moment rows
    assert "error" not in "".join(line for line in out.splitlines() if line.startswith("| "))
    for mode in ("fp32", "3xtf32", "tf32"):
        assert f"| {mode} | " in out  # precision table rows
    assert "tp_harness.sample_tasks (cpu)" in out and "| ridge |" in out
    # two CPU processes under accelerate give the one process's scores, bit for bit
    assert "1 vs all: 4 scores, max relative difference of the mean 0.0e+00" in out
    assert "1 vs all: 4 scores, max relative difference of the variance 0.0e+00" in out
    rows = [line for line in out.splitlines() if line.endswith(" | passed |")]
    assert len(rows) == 8, rows  # every step in the closing table, with its seconds


def test_a_python_without_the_core_packages_is_named_before_any_step(tmp_path: Path) -> None:
    venv.create(tmp_path / "bare", with_pip=False)
    bare = str(tmp_path / "bare" / "bin" / "python")
    res = _run(bare, "cpu", timeout=60)
    assert res.returncode == 1
    assert "lacks torch, numpy, numba, threadpoolctl, pytest" in res.stderr
    assert "## CUDA tests" not in res.stdout


def test_an_unknown_device_is_refused() -> None:
    res = _run(sys.executable, "tpu", timeout=60)
    assert res.returncode == 2
    assert "GPU_CHECK_DEVICE=tpu: use cuda (default) or cpu (dry run)" in res.stderr


def test_without_a_gpu_the_real_check_stops_at_once() -> None:
    """On a machine without CUDA the (non-dry) check fails in its first step, saying why."""
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    res = _run(sys.executable, "cuda", timeout=60)
    assert res.returncode != 0
    assert "gpu_check.sh needs a CUDA device" in res.stderr
    assert "## CUDA tests" not in res.stdout


@pytest.mark.slow
def test_a_failing_step_is_reported_and_the_later_steps_still_run(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A setting that breaks every moment pass: those steps fail (the benchmark's exit
    status, not only an "error" cell), the sampler and probes still run, and the script
    ends with the list of failed steps and status 1."""
    monkeypatch.setenv("TP_HARNESS_COMPILE_EPILOGUE", "bogus")
    res = _run(sys.executable, "cpu")
    assert res.returncode == 1, res.stdout[-3000:]
    out = res.stdout
    assert "!! step failed: Moments on cpu" in out
    assert "!! step failed: n = 8192, d = 64 with TP_HARNESS_TILE_MATMUL=tf32" in out
    assert "tp_harness.sample_tasks (cpu)" in out and "| ridge |" in out
    assert "step(s) did not pass:" in out and "## all steps passed" not in out


def test_bad_budget_or_step_names_are_refused_before_anything_runs(tmp_path: Path) -> None:
    """Checked before the package preflight: a bare python still gets exit status 2."""
    venv.create(tmp_path / "bare", with_pip=False)
    bare = str(tmp_path / "bare" / "bin" / "python")
    for value in ("abc", "5", "-3"):
        res = _run(bare, "cpu", timeout=60, GPU_CHECK_BUDGET_S=value)
        assert res.returncode == 2, (value, res.stderr)
        assert f"GPU_CHECK_BUDGET_S={value}: give whole seconds, at least 10" in res.stderr
    res = _run(bare, "cpu", timeout=60, GPU_CHECK_STEPS="sampler probe")
    assert res.returncode == 2
    assert "GPU_CHECK_STEPS: unknown step 'probe'; choose from: tests moments" in res.stderr


def test_only_the_chosen_steps_run() -> None:
    res = _run(sys.executable, "cpu", timeout=300, GPU_CHECK_STEPS="sampler probes")
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    out = res.stdout
    assert "## Sampler on cpu" in out and "## Probes on cpu" in out
    assert "## CUDA tests" not in out and "## Moments" not in out and "## 1 process" not in out
    rows = [line for line in out.splitlines() if line.endswith(" | passed |")]
    assert [r.split(" | ")[0] for r in rows] == ["| Sampler on cpu", "| Probes on cpu"]


def _step_function() -> str:
    text = SCRIPT.read_text()
    return text[text.index("# -- step() begins") : text.index("# -- step() ends")]


def test_a_step_is_cut_at_what_is_left_of_the_budget_and_later_ones_are_skipped(
    tmp_path: Path,
) -> None:
    """The script's own ``step`` function: a command and a shell function (whose child
    outlives a plain ``kill``) are both stopped at the budget, children included; a step
    with under 10 s left is skipped; each lands in the summary."""
    pid_file = tmp_path / "child.pid"
    script = f"""
set -euo pipefail
BUDGET=14 STEPS="a b c" FAILED=() SUMMARY=()
{_step_function()}
slow_fn() {{ sleep 40 & echo $! > {pid_file}; wait; }}
SECONDS=0
step a "plain command" 60 sleep 2
step b "shell function" 60 slow_fn
step c "too late" 60 true
step d "not chosen" 60 false
printf '%s\n' "${{SUMMARY[@]}}"
printf 'failed: %s\n' "${{FAILED[@]}}"
"""
    res = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60)
    out = res.stdout
    assert res.returncode == 0, res.stderr
    # bash's SECONDS counts whole seconds: each figure may be one more than the sleep
    assert re.search(r"^\| plain command \| [23] \| passed \|$", out, re.M), out
    cut = re.search(r"^!! step failed: shell function \(timed out after (1[12]) s\)$", out, re.M)
    assert cut, out
    assert re.search(rf"^\| shell function \| 1[123] \| timed out after {cut[1]} s \|$", out, re.M)
    assert re.search(r"^!! step skipped: -?[01] s left of the 14-second budget$", out, re.M), out
    assert "| too late | - | skipped (budget) |" in out
    assert "not chosen" not in out
    assert "failed: too late (skipped: budget spent)" in out
    child = int(pid_file.read_text())
    assert (
        not Path(f"/proc/{child}").exists()
        or "zombie" in Path(f"/proc/{child}/status").read_text().lower()
    ), "the timed-out function's child was left running"


def test_the_gemm_bound_is_timed_on_a_sample_of_tiles_but_counts_the_whole_plan(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``bench_moments`` times the GEMM rate on at most ``BOUND_TILES`` tiles (the n = 1M
    pass would otherwise be paid twice) while the end-to-end rate uses every tile's flops:
    both counted here independently from the block sizes."""
    import importlib.util

    import torch

    spec = importlib.util.spec_from_file_location(
        "bench_moments", ROOT / "benchmarks" / "bench_moments.py"
    )
    assert spec and spec.loader
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    monkeypatch.setattr(bench, "BOUND_TILES", 5)
    monkeypatch.setattr(bench, "D", 8)
    monkeypatch.setattr(bench, "R", 8)
    n, block = 300, 64  # 5 row blocks (the last of 44 rows): 15 upper-triangle tiles
    x, p = torch.randn(n, 8), torch.randn(n, 8)
    _, timed, total = bench.tile_matmul_seconds(x, p, block, torch.device("cpu"))
    # upper triangle incl. the diagonal, one product pair per tile: 2 (d + r) flops per entry
    sizes = [min(block, n - a) for a in range(0, n, block)]
    pairs = sum(sizes[i] * sizes[j] for i in range(5) for j in range(i, 5))
    assert total == 2.0 * 16 * pairs
    every_third = [(i, j) for i in range(5) for j in range(i, 5)][::3]  # ceil(15 / 5) = 3
    assert timed == 2.0 * 16 * sum(sizes[i] * sizes[j] for i, j in every_third)
    assert 0 < timed < total
