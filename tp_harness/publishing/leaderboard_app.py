"""The Gradio leaderboard: wires :mod:`tp_harness.leaderboard` functions to components.

``build_app(source)`` returns a ``gr.Blocks``; ``tp-harness leaderboard SOURCE`` launches it
locally and ``spaces/leaderboard/app.py`` launches it on a Space. No table or plot logic
lives here.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..evaluation.atomic import atomic_write_text
from . import leaderboard as lb

if TYPE_CHECKING:
    import gradio as gr
    import pandas as pd

TITLE = "tp-harness leaderboard: representations scored over all tasks"

ABOUT = r"""
## What this leaderboard measures

A benchmark scores a model on a handful of hand-picked tasks. Here a model is scored on
**every classification task one could pose on a dataset**, weighted by how plausible each
task is. The weighting is a *task prior*: a reference similarity `K` between examples (from
a prior backbone, from the dataset's labels, or from augmented views) says that examples
which look alike under `K` tend to share a label; the temperature `T` says how strictly
(small `T`: tasks follow `K` closely; large `T`: tasks are nearly random).

For one task, write `G` for its "same label" matrix (`G_ij = 1` when examples `i` and `j`
share a label) and `M` for the model's similarity between examples (centered cosine of its
embeddings). The alignment `Tr(MG)` is large when the model puts examples of the same class
close together. Averaged over all tasks drawn from the prior it has a closed form
(Theorem 3.6 of the *Task Priors* paper by Patel et al.), with `σ` the logistic sigmoid and the
sums over all ordered pairs of examples:

$$\mathbb{E}[\mathrm{Tr}(MG)] = \sum_{i,j} M_{ij}\,\sigma(K_{ij}/T)$$

$$\mathrm{Var}[\mathrm{Tr}(MG)] = \sum_{i,j} M_{ij}^2\,\sigma(K_{ij}/T)\,(1-\sigma(K_{ij}/T))$$

No probe is trained and no task is built to get these two numbers: one pass over pairs.

## Columns

- **expected alignment**: `E[Tr(MG)] / n²`, the mean per pair. The table ranks it only
  among rows that share dataset, `n`, normalisation, kernels, prior, temperature and probe
  setting: scores of different settings are not comparable and get separate ranks. With
  Frobenius normalisation (**normalize** = frobenius) it tracked the mean probe accuracy
  across representations in this project's validation study (docs/validation.md, Pearson
  about 0.8 on text); without it much less.
- **alignment ±**: half-width of the 95% interval of the expected alignment (a
  delete-one-block jackknife over 20 example blocks of the same pass; coverage checked in
  docs/uncertainty.md). **vs next**: `≈` when the paired 95% interval of the difference to
  the next-ranked model holds 0 (the two are not distinguishable), `>` when it does not.
- **flags**: rows marked `prior` (the model's kernel is the prior's own), `duplicate_of:X`
  (the same kernel as model X) or `degenerate` (numerically identical examples) are shown
  but get no rank.
- **std**: `sqrt(Var[Tr(MG)]) / n`, how much the alignment changes from task to task under
  the prior's independent-edge model. The validation study found it does not predict the
  spread of probe accuracy, so it is shown, not ranked on.
- **variance per pair**: `Var[Tr(MG)] / n²`; `E[Tr(MG)]`, `Var[Tr(MG)]`: the raw sums.
- **temperature / effective T / temperature scale**: `T` as given, and the value inside
  `σ(K/T)` (with the `rms` scale, `T` times the RMS of the prior kernel's entries).
- **probe acc mean / std / p5 / min**: a check with real training. Tasks are sampled from
  the same prior at the same temperature, a ridge or kNN probe is fit on each, and the
  held-out accuracy is summarised over tasks: mean, spread, 5th percentile and worst task.
- **label acc**: the same probe's held-out accuracy on the dataset's own labels.
- **RankMe, alpha-ReQ**: label-free baselines; **kernel-target alignment**: the model
  kernel's alignment with the dataset's labels (it uses the labels).
- **revision**: the model commit the embeddings came from, for reproducibility.

## Plots

- *Expected alignment vs std* (the paper's Figure 2): one point per model.
- *Per-layer curves*: for models evaluated layer by layer (`name@layerK`).
- *Probe accuracy*: mean ± std, 5th percentile and worst task over the sampled tasks.

Every number comes from a `results.json` written by `tp-harness evaluate`; the
Leaderboard tab downloads the table as shown (filters and columns applied) as CSV.
"""


def _csv_folder() -> Path:
    """One temp folder per app for the CSV downloads, removed when the process exits."""
    folder = Path(tempfile.mkdtemp(prefix="tp-leaderboard-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def _csv_file(table: pd.DataFrame, folder: Path) -> Path:
    """The table as CSV, named by its content: the same view reuses one file, and two
    sessions with different views never overwrite each other's download."""
    text = table.to_csv(index=False)
    path = folder / f"leaderboard-{hashlib.sha1(text.encode()).hexdigest()[:16]}.csv"
    if not path.exists():
        atomic_write_text(path, text)
    return path


def views(
    frame: pd.DataFrame,
    query: str,
    datasets: list[str] | None,
    modalities: list[str] | None,
    priors: list[str] | None,
    temperatures: list[float] | None,
    probe: str | None,
    columns: list[str] | None,
    *,
    csv_folder: Path | None = None,
) -> tuple[Any, ...]:
    """Table, CSV path and the three figures for one set of widget values (an empty
    selection gives an empty table and figures that say so)."""
    shown = lb.filter_frame(
        frame, query or "", modalities, priors, temperatures, [probe] if probe else None, datasets
    )
    table = lb.select_columns(shown, columns or [lb.MODEL])
    if shown.empty:
        figures = tuple(lb.empty_figure("no rows match the search and filters") for _ in range(3))
    else:
        figures = (lb.alignment_std_figure(shown), lb.layer_figure(shown), lb.probe_figure(shown))
    folder = csv_folder or _default_folder()
    return (lb.display_frame(table), str(_csv_file(table, folder)), *figures)


_FOLDER: list[Path] = []


def _default_folder() -> Path:
    if not _FOLDER:
        _FOLDER.append(_csv_folder())
    return _FOLDER[0]


def _header(frame: pd.DataFrame, source: str, skipped: list[str] | None = None) -> str:
    datasets = ", ".join(f"`{d}`" for d in lb.choices(frame, lb.DATASET))
    text = (
        f"# {TITLE}\n\nSource `{source}`: {frame[lb.RUN].nunique()} run(s), "
        f"{frame[lb.MODEL].nunique()} model(s), dataset(s) {datasets}. "
        "See the About tab for what the numbers mean."
    )
    if skipped:
        lines = "\n".join(f"- `{s}`" for s in skipped)
        text += f"\n\n**Skipped {len(skipped)} unreadable results file(s):**\n{lines}"
    return text


def build_app(source: str | os.PathLike[str] | pd.DataFrame | None = None) -> gr.Blocks:
    """The leaderboard app for ``source`` (see :func:`tp_harness.leaderboard.resolve_source`;
    default ``$TP_LEADERBOARD_SOURCE``), or for an already built frame."""
    import gradio as gr
    import pandas as pd

    name = "frame" if isinstance(source, pd.DataFrame) else str(source or lb.default_source())
    skipped: list[str] = []
    frame = (
        source
        if isinstance(source, pd.DataFrame)
        else lb.load_frame(source or lb.default_source(), skipped)
    )
    csv_folder = _csv_folder()
    probes = lb.choices(frame, lb.PROBE)
    with gr.Blocks(title="tp-harness leaderboard") as app:
        gr.Markdown(_header(frame, name, skipped), elem_id="lb-header")
        with gr.Tab("Leaderboard"):
            with gr.Row():
                query = gr.Textbox(
                    label="Search models",
                    placeholder="e.g. minilm, dim=16",
                    elem_id="lb-search",
                    scale=2,
                )
                probe = gr.Dropdown(
                    probes, value=lb.default_probe(frame), label="Probe setting", elem_id="lb-probe"
                )
            with gr.Row():
                dataset = _checkboxes(frame, lb.DATASET, "Dataset", "lb-dataset")
                modality = _checkboxes(frame, lb.MODALITY, "Modality", "lb-modality")
                prior = _checkboxes(frame, lb.PRIOR, "Prior", "lb-prior")
                temperature = gr.CheckboxGroup(
                    [(f"{t:g}", t) for t in lb.choices(frame, lb.TEMPERATURE)],
                    value=lb.choices(frame, lb.TEMPERATURE),
                    label="Temperature T",
                    elem_id="lb-temperature",
                )
            columns = gr.Dropdown(
                list(lb.COLUMNS),
                value=lb.default_columns(frame),
                multiselect=True,
                label="Columns",
                elem_id="lb-columns",
            )
            table = gr.Dataframe(interactive=False, elem_id="lb-table", max_height=600)
            download = gr.DownloadButton("Download CSV", elem_id="lb-download")
        with gr.Tab("Plots"):
            align, layers, accuracy = (
                gr.Plot(label=label, show_label=False, format="png", elem_id=f"plot-{key}")
                for key, label in (
                    ("alignment", "Expected alignment vs std"),
                    ("layers", "Per-layer curves"),
                    ("probes", "Probe accuracy over sampled tasks"),
                )
            )
        with gr.Tab("About"):
            gr.Markdown(ABOUT, elem_id="lb-about")
        inputs = [query, dataset, modality, prior, temperature, probe, columns]
        outputs = [table, download, align, layers, accuracy]
        gr.on(
            [app.load, *(c.change for c in inputs)],
            lambda *values: views(frame, *values, csv_folder=csv_folder),
            inputs,
            outputs,
            trigger_mode="always_last",
        )  # quick clicks: the last state always wins
    return app


def _checkboxes(frame: pd.DataFrame, column: str, label: str, elem_id: str) -> Any:
    import gradio as gr

    values = lb.choices(frame, column)
    return gr.CheckboxGroup(values, value=values, label=label, elem_id=elem_id)
