"""Hugging Face Space: the tp-harness leaderboard.

``tp-harness leaderboard deploy ORG/NAME SOURCE`` uploads this folder to a Space. The
results come from, in order: the first command-line argument; ``$TP_LEADERBOARD_SOURCE``
(a Space variable); the ``source`` that ``tp-harness-space.json`` beside this file records
(``runs``, the run folders deploy copied into the Space, or a Hub dataset repo id written
by ``tp-harness evaluate --push-to-hub``).
"""

import json
import os
import sys
from pathlib import Path

from tp_harness.publishing.leaderboard import default_source
from tp_harness.publishing.leaderboard_app import build_app

HERE = Path(__file__).resolve().parent
SPACE_FILE = HERE / "tp-harness-space.json"


def source() -> str | None:
    """Where the results are (see the module docstring)."""
    if len(sys.argv) > 1:
        return sys.argv[1]
    if default_source():
        return default_source()
    if SPACE_FILE.is_file():
        recorded = str(json.loads(SPACE_FILE.read_text())["source"])
        if not (HERE / recorded).exists():
            return recorded  # a Hub dataset repo id
        return recorded if Path.cwd() == HERE else str(HERE / recorded)
    return None


demo = build_app(source())

if __name__ == "__main__":
    demo.launch(server_name=os.environ.get("GRADIO_SERVER_NAME", "0.0.0.0"))
