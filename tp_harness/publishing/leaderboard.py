"""Leaderboard tables and figures from run folders or Hub results repos (pure functions).

A *source* is a run folder (``tp-harness evaluate --output-dir DIR``), a folder holding
several run folders, a ``results.json`` file, or a Hub dataset repo id (``org/name``, as
pushed by :mod:`tp_harness.hub`). Every source becomes one tidy :class:`pandas.DataFrame`
with one row per (run, model, prior, temperature, probe setting); the functions below rank,
filter, select, export and plot that frame. The Gradio app
(:mod:`tp_harness.leaderboard_app`) only wires them to components.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..evaluation.embed.spec import split_layer
from ..evaluation.results import RESULTS_FILE, Results

if TYPE_CHECKING:
    import pandas as pd
    from matplotlib.figure import Figure

SOURCE_ENV = "TP_LEADERBOARD_SOURCE"
_REPO_ID = re.compile(r"[\w.-]+/[\w.-]+")

RANK, MODEL, MODALITY, PRIOR, TEMPERATURE = "rank", "model", "modality", "prior", "temperature"
ALIGNMENT, STD, VAR_PER_PAIR = "expected alignment", "std", "variance per pair"
MEAN, VARIANCE, N = "E[Tr(MG)]", "Var[Tr(MG)]", "n"
PROBE, ACC_MEAN, ACC_STD = "probe", "probe acc mean", "probe acc std"
ACC_P5, ACC_MIN, GAIN = "probe acc p5", "probe acc min", "gain over majority"
RANKME, ALPHA_REQ, KTA = "RankMe", "alpha-ReQ", "kernel-target alignment"
REVISION, MODEL_ID, DATASET, RUN = "revision", "model id", "dataset", "run"
MODEL_KERNEL, PRIOR_KERNEL = "model kernel", "prior kernel"
NORMALIZE, T_SCALE, T_EFFECTIVE = "normalize", "temperature scale", "effective T"
LABEL_ACC, FLAGS = "label acc", "flags"
ALIGN_PM, VS_NEXT = "alignment ±", "vs next"

#: Every column, in display order.
COLUMNS = (
    RANK,
    MODEL,
    MODALITY,
    DATASET,
    PRIOR,
    TEMPERATURE,
    T_EFFECTIVE,
    T_SCALE,
    NORMALIZE,
    ALIGNMENT,
    ALIGN_PM,
    VS_NEXT,
    STD,
    VAR_PER_PAIR,
    MEAN,
    VARIANCE,
    N,
    PROBE,
    ACC_MEAN,
    ACC_STD,
    ACC_P5,
    ACC_MIN,
    GAIN,
    LABEL_ACC,
    FLAGS,
    RANKME,
    ALPHA_REQ,
    KTA,
    REVISION,
    MODEL_ID,
    MODEL_KERNEL,
    PRIOR_KERNEL,
    RUN,
)
#: Columns shown before the user picks others.
DEFAULT_COLUMNS = (
    RANK,
    MODEL,
    MODALITY,
    PRIOR,
    TEMPERATURE,
    NORMALIZE,
    ALIGNMENT,
    ALIGN_PM,
    VS_NEXT,
    STD,
    VAR_PER_PAIR,
    N,
    PROBE,
    ACC_MEAN,
    ACC_STD,
    ACC_P5,
    LABEL_ACC,
    FLAGS,
    RANKME,
    REVISION,
)
#: A rank is the position by expected alignment among unflagged rows sharing these values:
#: only records of the same dataset, n, normalisation, kernels, prior and temperature compare.
RANK_GROUP = (
    DATASET,
    N,
    NORMALIZE,
    MODEL_KERNEL,
    PRIOR,
    PRIOR_KERNEL,
    T_SCALE,
    TEMPERATURE,
    PROBE,
)


# ----------------------------------------------------------------------------- sources


def default_source() -> str | None:
    """The source named by ``$TP_LEADERBOARD_SOURCE`` (``None`` when unset or empty)."""
    return os.environ.get(SOURCE_ENV) or None


def download_repo(repo_id: str, revision: str | None = None) -> Path:
    """Snapshot of a Hub dataset repo's ``results.json`` files and card; a clear error offline."""
    from huggingface_hub import snapshot_download

    try:
        folder = snapshot_download(
            repo_id,
            repo_type="dataset",
            revision=revision,
            allow_patterns=[f"*{RESULTS_FILE}", "*.md"],
        )
    except Exception as err:  # offline, missing repo, no auth: one message naming the id
        raise OSError(
            f"could not download results repo {repo_id!r} (dataset) from the Hub: "
            f"{type(err).__name__}: {err}. If HF_HUB_OFFLINE=1 is set or the machine "
            f"is offline, pass a local run folder instead."
        ) from err
    return Path(folder)


def resolve_source(source: str | os.PathLike[str] | None) -> tuple[Path, str]:
    """``(local folder or file, label)`` for a path or a Hub dataset repo id."""
    if source is None or str(source) == "":
        raise ValueError(
            f"no results source: pass a run folder or a Hub dataset repo id, or set ${SOURCE_ENV}."
        )
    path = Path(source).expanduser()
    if path.exists():
        return path, path.resolve().name
    repo_id = str(source).removeprefix("hf://").removeprefix("datasets/")
    if not _REPO_ID.fullmatch(repo_id):
        raise FileNotFoundError(
            f"{str(source)!r} is neither an existing folder nor a Hub "
            "dataset repo id of the form org/name."
        )
    return download_repo(repo_id), repo_id


def _walk_results(root: Path) -> list[Path]:
    """Every ``results.json`` under ``root``, following symlinked folders (each real folder
    once, so a link cycle ends), hidden folders such as ``.cache`` skipped."""
    found, seen = [], set()
    for here, dirs, files in os.walk(root, followlinks=True):
        real = os.path.realpath(here)
        if real in seen:
            dirs[:] = []
            continue
        seen.add(real)
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        if RESULTS_FILE in files:
            found.append(Path(here))
    return sorted(found)


def find_runs(root: str | os.PathLike[str]) -> list[Path]:
    """Run folders under ``root``: itself if it holds ``results.json``, else every subfolder
    that does (symlinks followed, hidden folders such as ``.cache`` skipped), sorted."""
    root = Path(root)
    if root.is_file():
        return [root.parent]
    if (root / RESULTS_FILE).is_file():
        return [root]
    found = _walk_results(root)
    if not found:
        raise FileNotFoundError(
            f"no {RESULTS_FILE} in {root} or its subfolders: pass a run's "
            "--output-dir, a folder of runs, or a Hub dataset repo id."
        )
    return found


class SkippedRunWarning(UserWarning):
    """A results.json that could not be read (corrupt, foreign or another schema)."""


def load_runs(
    source: str | os.PathLike[str] | None, skipped: list[str] | None = None
) -> list[tuple[str, dict[str, Any]]]:
    """``[(run label, results dict)]`` for every readable run in ``source``.

    A corrupt or foreign results.json is skipped with a :class:`SkippedRunWarning`
    naming it (and appended to ``skipped`` as ``"PATH: reason"``); the others load.
    """
    root, label = resolve_source(source)
    base = root.parent if root.is_file() else root
    runs = []
    for folder in find_runs(root):
        rel = folder.relative_to(base).as_posix()
        try:
            doc = Results.load(folder).to_dict()
            if not isinstance(doc.get("scores"), list):
                raise ValueError("no list of scores")
        except (ValueError, TypeError, KeyError, OSError) as err:
            why = f"{folder / RESULTS_FILE}: {type(err).__name__}: {err}"
            warnings.warn(f"skipping {why}", SkippedRunWarning, stacklevel=2)
            if skipped is not None:
                skipped.append(why)
            continue
        runs.append((label if rel == "." else f"{label}/{rel}", doc))
    return runs


def load_frame(
    source: str | os.PathLike[str] | None, skipped: list[str] | None = None
) -> pd.DataFrame:
    """The ranked leaderboard frame of every readable run in ``source``."""
    return frame_from_runs(load_runs(source, skipped))


# ----------------------------------------------------------------------------- frame


def _model_meta(
    models: Sequence[Mapping[str, Any]], name: str, data_modality: str | None
) -> dict[str, Any]:
    """Modality, revision and id of a representation (``base@layerK`` maps to its model)."""
    base = split_layer(name)[0]
    rec: Mapping[str, Any] = next(
        (m for m in models if m.get("name") == name or name in (m.get("outputs") or [])),
        next((m for m in models if m.get("name") == base), {}),
    )
    modality = rec.get("modality") or data_modality
    if modality is None:
        modality = "image" if rec.get("kind") == "image" else "text"
    return {MODALITY: modality, REVISION: rec.get("revision"), MODEL_ID: rec.get("model_id", base)}


def probe_setting(record: Mapping[str, Any]) -> str:
    """Label of a probe record's setting, e.g. ``"ridge q=2"``."""
    return f"{record['probe']} q={record['num_classes']}"


def _probe_columns(p: Mapping[str, Any] | None) -> dict[str, Any]:
    if p is None:
        return {PROBE: None}
    return {
        PROBE: probe_setting(p),
        ACC_MEAN: p.get("mean"),
        ACC_STD: p.get("std"),
        ACC_P5: p.get("p5"),
        ACC_MIN: p.get("min"),
        GAIN: p.get("gain_over_majority"),
        LABEL_ACC: p.get("label_accuracy"),
    }


def _matching_probes(
    probes: Sequence[Mapping[str, Any]], score: Mapping[str, Any], task_temperature: Any
) -> list[Mapping[str, Any]]:
    """The probe records on the tasks of the score's prior and temperature (records of older
    runs, which name no prior, match every score of their model)."""
    t_tasks = _float(task_temperature if task_temperature is not None else score.get("temperature"))
    return [
        p
        for p in probes
        if "probe" in p
        and "num_classes" in p
        and (
            "prior" not in p
            or (
                p["prior"] == score["prior"]
                and t_tasks is not None
                and _float(p.get("temperature")) is not None
                and math.isclose(float(p["temperature"]), t_tasks)
            )
        )
    ]


def _float(v: Any) -> float | None:
    try:
        return None if v is None else float(v)
    except (TypeError, ValueError):
        return None


def _half_width(ci: Sequence[float | None] | None) -> float | None:
    if not ci or len(ci) != 2 or ci[0] is None or ci[1] is None:
        return None
    return (float(ci[1]) - float(ci[0])) / 2


def _vs_next(vs: Mapping[str, Any] | None) -> str:
    """``≈``: tied with the next-ranked model (paired 95% interval holds 0); ``>``: above."""
    return "" if not vs else ("≈" if vs.get("tied") else ">")


def run_rows(results: Mapping[str, Any], run: str = "") -> list[dict[str, Any]]:
    """Rows of one run: each score record joined with each of its model's probe settings."""
    data = results.get("data") or {}
    dataset = data.get("dataset") or (results.get("config") or {}).get("dataset")
    models = results.get("models") or []
    baselines = {
        str(b["model"]): b
        for b in results.get("baselines") or []
        if isinstance(b, Mapping) and "model" in b
    }
    probes: dict[str, list[Mapping[str, Any]]] = {}
    for p in results.get("probes") or []:
        if isinstance(p, Mapping) and "model" in p:
            probes.setdefault(str(p["model"]), []).append(p)
    t_task = (results.get("config") or {}).get("task_temperature")
    rows = []
    for s in results.get("scores") or []:
        if not isinstance(s, Mapping) or not all(k in s for k in ("model", "prior")):
            continue  # a record that names no model or prior cannot be placed
        name, n, b = str(s["model"]), s.get("n"), baselines.get(str(s["model"]), {})
        std = s.get("std")
        common = {
            MODEL: name,
            PRIOR: str(s["prior"]),
            TEMPERATURE: _float(s.get("temperature")),
            T_EFFECTIVE: s.get("effective_temperature", s.get("temperature")),
            T_SCALE: s.get("temperature_scale", "absolute"),
            NORMALIZE: s.get("normalize") or "none",
            FLAGS: ", ".join(s.get("flags") or []),
            ALIGNMENT: s.get("mean_per_pair"),
            ALIGN_PM: _half_width(s.get("mean_per_pair_ci")),
            VS_NEXT: _vs_next(s.get("vs_next")),
            STD: None if std is None or not n else std / n,
            VAR_PER_PAIR: s.get("variance_per_pair"),
            MEAN: s.get("mean"),
            VARIANCE: s.get("variance"),
            N: n,
            RANKME: b.get("rankme"),
            ALPHA_REQ: b.get("alpha_req"),
            KTA: b.get("kernel_target_alignment"),
            DATASET: dataset,
            MODEL_KERNEL: s.get("model_kernel"),
            PRIOR_KERNEL: s.get("prior_kernel"),
            RUN: run,
            **_model_meta(models, name, data.get("modality")),
        }
        mine = _matching_probes(probes.get(name, []), s, t_task)
        settings: list[Mapping[str, Any] | None] = [*mine] or [None]
        rows += [{**common, **_probe_columns(p)} for p in settings]
    return rows


def rank_frame(df: pd.DataFrame) -> pd.DataFrame:
    """Add ``rank`` (1 = highest expected alignment among the unflagged rows of each
    :data:`RANK_GROUP`; flagged rows and rows without a score get no rank) and sort by
    group (temperature ascending), then rank, then model name."""
    out = df.copy()
    keys = list(RANK_GROUP)
    score = out[ALIGNMENT].where(out[FLAGS].fillna("") == "")
    ranks = score.groupby([out[k] for k in keys], dropna=False).rank(ascending=False, method="min")
    out[RANK] = ranks.astype("Int64")
    out = out.sort_values([*keys, RANK, MODEL], na_position="last", kind="stable")
    return out[[c for c in COLUMNS if c in out.columns]].reset_index(drop=True)


def frame_from_runs(runs: Iterable[tuple[str, Mapping[str, Any]]]) -> pd.DataFrame:
    """The ranked frame of ``[(run label, results dict)]``, all :data:`COLUMNS` present."""
    import pandas as pd

    rows = [r for label, res in runs for r in run_rows(res, label)]
    df = pd.DataFrame(rows, columns=[c for c in COLUMNS if c != RANK])
    for col in (
        ALIGNMENT,
        ALIGN_PM,
        STD,
        VAR_PER_PAIR,
        MEAN,
        VARIANCE,
        ACC_MEAN,
        ACC_STD,
        ACC_P5,
        ACC_MIN,
        GAIN,
        LABEL_ACC,
        RANKME,
        ALPHA_REQ,
        KTA,
        TEMPERATURE,
        T_EFFECTIVE,
    ):
        df[col] = pd.to_numeric(df[col], errors="coerce").astype("float64")
    return rank_frame(df)


# ----------------------------------------------------------------------------- views


def choices(df: pd.DataFrame, column: str) -> list[Any]:
    """Sorted distinct non-missing values of ``column`` (filter choices)."""
    return sorted(df[column].dropna().unique().tolist())


def search(df: pd.DataFrame, query: str) -> pd.DataFrame:
    """Rows whose model name contains any of the comma/space separated terms (any case)."""
    terms = [t for t in re.split(r"[,\s]+", query.lower()) if t]
    if not terms:
        return df
    names = df[MODEL].astype(str).str.lower()
    return df[names.map(lambda s: any(t in s for t in terms))]


def default_probe(df: pd.DataFrame) -> str | None:
    """The probe setting shown first: a linear (ridge) probe when present, fewest classes."""

    def key(setting: str) -> tuple[bool, int, str]:
        q = re.search(r"q=(\d+)$", setting)
        return (not setting.startswith("ridge "), int(q[1]) if q else 0, setting)

    return min(choices(df, PROBE), key=key, default=None)


def default_columns(df: pd.DataFrame) -> list[str]:
    """:data:`DEFAULT_COLUMNS`, plus ``dataset`` when the frame holds several datasets."""
    extra = [DATASET] if df[DATASET].nunique() > 1 else []
    return [c for c in COLUMNS if c in DEFAULT_COLUMNS or c in extra]


def filter_frame(
    df: pd.DataFrame,
    query: str = "",
    modalities: Sequence[str] | None = None,
    priors: Sequence[str] | None = None,
    temperatures: Sequence[float] | None = None,
    probes: Sequence[str] | None = None,
    datasets: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Search, then keep rows whose values are in each given list (``None`` = no filter).

    Rows of models without probe results are kept under any probe filter. Ranks are not
    recomputed: a row keeps its place in the full leaderboard.
    """
    out = search(df, query)
    for col, allowed in ((MODALITY, modalities), (PRIOR, priors), (DATASET, datasets)):
        if allowed is not None:
            out = out[out[col].isin(list(allowed))]
    if temperatures is not None:
        wanted = [float(t) for t in temperatures]
        keep = out[TEMPERATURE].map(lambda t: any(math.isclose(t, w) for w in wanted))
        out = out.loc[keep.astype(bool)]  # (an empty object mask would select columns)
    if probes is not None:
        out = out[out[PROBE].isin(list(probes)) | out[PROBE].isna()]
    return out


def select_columns(df: pd.DataFrame, columns: Sequence[str] | None = None) -> pd.DataFrame:
    """Keep ``columns`` (default :data:`DEFAULT_COLUMNS`) in :data:`COLUMNS` order."""
    wanted = set(DEFAULT_COLUMNS if columns is None else columns)
    unknown = wanted - set(COLUMNS)
    if unknown:
        raise ValueError(
            f"unknown leaderboard columns {sorted(unknown)}; choose from {list(COLUMNS)}."
        )
    return df[[c for c in COLUMNS if c in wanted and c in df.columns]]


def display_frame(df: pd.DataFrame, digits: int = 4) -> pd.DataFrame:
    """Floats rounded to ``digits`` significant digits for display (NaN kept)."""
    out = df.copy()
    for col in out.columns:
        if out[col].dtype.kind == "f" and col != TEMPERATURE:
            out[col] = out[col].map(lambda v: float(f"{v:.{digits}g}"))
    return out


def to_csv(df: pd.DataFrame, path: str | os.PathLike[str]) -> Path:
    """Write ``df`` as CSV (no index); returns the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(p, index=False)
    return p


def read_csv(path: str | os.PathLike[str]) -> pd.DataFrame:
    """Read a leaderboard CSV back (``"n/a"`` stays a string; floats exact)."""
    import pandas as pd

    df = pd.read_csv(path, keep_default_na=False, na_values=[""])
    for col in (FLAGS, VS_NEXT):  # "none" is an empty string, not a missing value
        if col in df.columns:
            df[col] = df[col].astype(object).where(df[col].notna(), "").astype(str)
    return df


# ----------------------------------------------------------------------------- figures


def _figure(
    panels: int, title: str, width: float = 5.0, height: float = 3.8, ncols: int = 2
) -> tuple[Figure, list[Any]]:
    """A titled figure with ``panels`` axes on a grid of at most ``ncols`` columns."""
    from matplotlib.figure import Figure

    ncols = max(1, min(ncols, panels))
    nrows = math.ceil(panels / ncols)
    fig = Figure(figsize=(width * ncols, height * nrows), layout="constrained")
    axes = list(fig.subplots(nrows, ncols, squeeze=False).ravel())
    for ax in axes[panels:]:
        ax.set_axis_off()
    fig.suptitle(title, fontsize=11)
    return fig, axes[:panels]


def empty_figure(message: str) -> Figure:
    fig, axes = _figure(1, "", height=2.0)
    axes[0].text(0.5, 0.5, message, ha="center", va="center", fontsize=11)
    axes[0].set_axis_off()
    return fig


def _panels(
    rows: pd.DataFrame, keys: Sequence[str], max_panels: int
) -> tuple[list[tuple[str, pd.DataFrame]], str]:
    """``[(title, rows)]`` per distinct value of ``keys`` (plus ``dataset`` when there are
    several: scores of different datasets do not compare), at most ``max_panels``; and a
    note saying how many were left out."""
    keys = [*keys, DATASET] if rows[DATASET].nunique() > 1 else list(keys)
    groups = list(rows.groupby(keys, dropna=False, sort=True))
    panels = []
    for values, part in groups[:max_panels]:
        title = "  ".join(
            f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
            for k, v in zip(keys, values, strict=True)
        )
        panels.append((title, part))
    left = len(groups) - len(panels)
    return panels, f" (first {len(panels)} of {len(groups)} panels: filter)" if left else ""


def alignment_std_figure(df: pd.DataFrame, max_panels: int = 4) -> Figure:
    """Expected alignment (x) vs its std (y) per model, one panel per prior x temperature
    (the paper's Figure 2); flagged rows (not ranked) are grey crosses."""
    rows = df.drop_duplicates([RUN, DATASET, MODEL, PRIOR, TEMPERATURE])
    if rows.empty:
        return empty_figure("no rows match the filters")
    panels, note = _panels(rows, [PRIOR, TEMPERATURE], max_panels)
    fig, axes = _figure(len(panels), f"Expected alignment vs std over tasks{note}")
    for ax, (title, sub) in zip(axes, panels, strict=True):
        flagged = sub[FLAGS].fillna("") != ""
        for modality, part in sub[~flagged].groupby(MODALITY):
            ax.scatter(part[ALIGNMENT], part[STD], label=str(modality))
        if flagged.any():
            part = sub[flagged]
            ax.scatter(part[ALIGNMENT], part[STD], marker="x", c="grey", label="flagged")
        for _, r in sub.iterrows():
            mark = f" [{r[FLAGS]}]" if r[FLAGS] else ""
            ax.annotate(
                f"{r[MODEL]}{mark}",
                (r[ALIGNMENT], r[STD]),
                fontsize=7,
                xytext=(3, 3),
                textcoords="offset points",
            )
        ax.margins(0.15)
        ax.set_xlabel("expected alignment  E[Tr(MG)] / n²")
        ax.set_ylabel("std  std[Tr(MG)] / n")
        ax.set_title(title, fontsize=9)
        ax.legend(fontsize=7)
    return fig


def layer_figure(
    df: pd.DataFrame, metrics: Sequence[str] = (ALIGNMENT, STD, ACC_MEAN, RANKME)
) -> Figure:
    """Per-layer curves of ``metrics`` for every layered model (``base@layerK`` rows), one
    line per base model and prior x temperature."""
    rows = df.drop_duplicates([RUN, DATASET, MODEL, PRIOR, TEMPERATURE]).copy()
    split = rows[MODEL].map(split_layer)
    rows["_base"], rows["_layer"] = split.map(lambda s: s[0]), split.map(lambda s: s[1])
    rows = rows[rows["_layer"].notna()]
    if rows.empty:
        return empty_figure("no layered models (name@layerK) in the selection")
    from matplotlib.ticker import MaxNLocator

    several = rows[[PRIOR, TEMPERATURE, DATASET]].drop_duplicates().shape[0] > 1
    fig, axes = _figure(len(metrics), "Per-layer curves", width=4.5, height=3.2)
    for (base, prior, t, data), part in rows.groupby(["_base", PRIOR, TEMPERATURE, DATASET]):
        part = part.sort_values("_layer")
        label = f"{base} ({data}, {prior}, T={t:g})" if several else str(base)
        for ax, metric in zip(axes, metrics, strict=True):
            ax.plot(part["_layer"].astype(int), part[metric], marker="o", label=label)
    for ax, metric in zip(axes, metrics, strict=True):
        ax.set_xlabel("layer")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_title(metric, fontsize=9)
    fig.legend(
        *axes[0].get_legend_handles_labels(),
        loc="outside lower center",
        fontsize=8,
        ncols=min(3, len(axes[0].get_lines())),
    )
    return fig


def probe_figure(df: pd.DataFrame, max_panels: int = 4) -> Figure:
    """Probe accuracy over sampled tasks per model: mean ± std bar, 5th percentile and worst
    task, one panel per probe setting, models sorted by mean accuracy."""
    rows = df.dropna(subset=[PROBE, ACC_MEAN]).drop_duplicates([RUN, DATASET, MODEL, PROBE])
    if rows.empty:
        return empty_figure("no probe results in the selection")
    panels, note = _panels(rows, [PROBE], max_panels)
    fig, axes = _figure(
        len(panels),
        f"Probe accuracy over sampled tasks{note}",
        width=max(5.0, 0.5 * rows[MODEL].nunique() + 2),
        height=4.2,
    )
    for ax, (title, part) in zip(axes, panels, strict=True):
        sub = part.sort_values(ACC_MEAN, ascending=False)
        x = list(range(len(sub)))
        ax.errorbar(
            x, sub[ACC_MEAN], yerr=sub[ACC_STD].fillna(0.0), fmt="o", capsize=4, label="mean ± std"
        )
        ax.scatter(x, sub[ACC_P5], marker="v", label="5th percentile")
        ax.scatter(x, sub[ACC_MIN], marker="x", label="worst task")
        ax.set_xlim(-0.5, len(x) - 0.5)
        ax.set_xticks(x, sub[MODEL].astype(str).tolist(), rotation=45, ha="right", fontsize=7)
        ax.set_ylabel("held-out accuracy per sampled task")
        ax.set_title(title.removeprefix("probe="), fontsize=9)
        ax.legend(fontsize=7)
    return fig
