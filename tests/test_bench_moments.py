"""Smoke tests of ``benchmarks/bench_moments.py --ceiling`` (issue 20): the command that
benchmarks/README.md quotes for the epilogue's ceiling runs, and its child reports every
column the table divides by."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_moments.py"


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    spec = importlib.util.spec_from_file_location("bench_moments", SCRIPT)
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_ceiling_child_times_every_part(bench: ModuleType, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("numba")
    from tp_harness.core import moments

    # the child forces the compiled epilogue at every size; keep that to this test
    monkeypatch.setattr(moments, "FUSED_MIN_WORK", moments.FUSED_MIN_WORK)
    # n not a multiple of the tile edge: edge tiles and ring tiles from spread row blocks
    out = bench.ceiling_one(1500, 32, 2, 2, repeats=1)
    assert set(out) == {
        "build_seconds",
        "gemm_seconds",
        "epilogue_cached",
        "epilogue_memory",
        "seconds",
    }
    assert all(v > 0 and v != float("inf") for v in out.values()), out


def test_ceiling_child_command_prints_its_timings_as_json() -> None:
    pytest.importorskip("numba")
    res = subprocess.run(
        [sys.executable, str(SCRIPT), "--ceiling-child", "1024", "16", "1", "1"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    row = json.loads(res.stdout.strip().splitlines()[-1])
    assert row["gemm_seconds"] > 0 and row["seconds"] > 0
