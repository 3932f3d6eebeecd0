"""Headless Chromium for the browser tests (a helper module, not a test module).

Chromium is Debian's (``apt-get install chromium``), never a playwright download; set
``TP_CHROMIUM`` to use another binary.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
TIMEOUT_MS = 30_000


def chromium() -> str:
    for candidate in (
        os.environ.get("TP_CHROMIUM"),
        "/usr/bin/chromium",
        shutil.which("chromium"),
        shutil.which("chromium-browser"),
    ):
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.skip("no Chromium binary (apt-get install chromium, or set TP_CHROMIUM)")
