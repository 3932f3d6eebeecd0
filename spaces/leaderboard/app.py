"""Hugging Face Space: the tp-harness leaderboard.

Results come from the first command-line argument, else ``$TP_LEADERBOARD_SOURCE``: a Hub
dataset repo id written by ``tp-harness evaluate --push-to-hub`` (e.g.
``my-org/tp-harness-results``), a run folder, or a folder of run folders.
"""

import sys

from tp_harness.publishing.leaderboard import default_source
from tp_harness.publishing.leaderboard_app import build_app

demo = build_app(sys.argv[1] if len(sys.argv) > 1 else default_source())

if __name__ == "__main__":
    demo.launch()
