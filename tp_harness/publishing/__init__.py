"""The publishing floor: the run folder (results.json, tasks/, figures/, summary.md),
reports, plots, Hub push and cards, and the leaderboard (pure tables + Gradio app).

The only floor that imports gradio and matplotlib (inside functions).
"""

from .hub import HubPushError, push_report, push_run
from .report import ranked_tables, summary_markdown
from .run_folder import FIGURES_DIR, TASKS_DIR, write_outputs

__all__ = [
    "FIGURES_DIR",
    "TASKS_DIR",
    "HubPushError",
    "push_report",
    "push_run",
    "ranked_tables",
    "summary_markdown",
    "write_outputs",
]
