"""Launcher command lines shared by the multi-process tests (a helper, not a test module)."""

from __future__ import annotations

import sys

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
