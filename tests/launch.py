"""Launcher command lines shared by the multi-process tests (a helper, not a test module)."""

from __future__ import annotations

import subprocess
import sys
import venv
from pathlib import Path

#: ``accelerate launch`` with 2 CPU processes (append ``-m MODULE`` or a script path).
ACCELERATE_TWO = [
    sys.executable,
    "-m",
    "accelerate.commands.launch",
    "--multi_gpu",
    "--num_processes",
    "2",
    "--num_machines",
    "1",
    "--mixed_precision",
    "no",
    "--dynamo_backend",
    "no",
]


def fresh_venv(folder: Path) -> Path:
    """A new venv with pip in ``folder``; returns its python."""
    venv.create(folder, with_pip=True)
    return folder / "bin" / "python"


def pip_install(
    py: Path, *args: str, env: dict[str, str] | None = None, cwd: Path | None = None
) -> None:
    """``py -m pip install -q ARGS``; fails the test with pip's stderr tail."""
    proc = subprocess.run(
        [str(py), "-m", "pip", "install", "-q", *args],
        capture_output=True,
        text=True,
        timeout=900,
        env=env,
        cwd=cwd,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
