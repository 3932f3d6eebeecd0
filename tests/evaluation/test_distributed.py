"""Multi-process runs cannot die at the end (issue 16, finding 2): the rank-0-only stages
(sampling, probes, baselines, writing) come after the last collective, so the other ranks
never wait in one past the process-group timeout."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.launch import ACCELERATE_TWO
from tp_harness.evaluation.results import Results

pytestmark = [pytest.mark.usefixtures("offline"), pytest.mark.slow]

SLOW_MAIN = """
import sys, time
from tp_harness.evaluation import pipeline

_stages = pipeline._main_process_stages
DELAY = float(sys.argv.pop(1))


def slow(*args, **kwargs):
    time.sleep(DELAY)  # a main-process stage longer than the timeout
    return _stages(*args, **kwargs)


pipeline._main_process_stages = slow
from tp_harness.cli import main

sys.exit(main(sys.argv[1:]))
"""


def test_a_slow_main_stage_outlives_a_short_process_group_timeout(
    tmp_path: Path, topic_csv: Path
) -> None:
    script = tmp_path / "slow_main.py"
    script.write_text(SLOW_MAIN)
    out = tmp_path / "out"
    cmd = [
        *ACCELERATE_TWO,
        str(script),
        "12",  # seconds of main-process work ...
        "evaluate",
        "--dist-timeout",
        "4",  # ... against a 4 s process-group timeout
        "--model",
        "tfidf-lsa:dim=8",
        "--model",
        "tfidf-lsa:dim=4",
        "--prior",
        "labels",
        "--dataset",
        str(topic_csv),
        "--label-column",
        "topic",
        "--temperature",
        "100",
        "--temperature-scale",
        "rms",
        "--num-tasks",
        "8",
        "--probe",
        "ridge",
        "--block-size",
        "16",
        "--output-dir",
        str(out),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--no-progress",
    ]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 0, proc.stderr[-3000:]
    res = Results.load(out)
    assert res.environment["world_size"] == 2 and res.probes
