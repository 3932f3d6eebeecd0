"""``benchmarks/gpu_check.sh`` works before a GPU ever runs it (issue 20 item 2).

A session that is lent a GPU has minutes on it: the script must not fail there on a
command line, an import or a table that nobody ran. Its dry run (``GPU_CHECK_DEVICE=cpu``)
runs every step at tiny sizes on CPU, the accelerate 1-vs-2-processes comparison included.
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.sh"


def _run(py: str, device: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PY": py, "GPU_CHECK_DEVICE": device, "HF_HUB_OFFLINE": "1"}
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
    assert "step(s) failed:" in out and "## all steps passed" not in out
