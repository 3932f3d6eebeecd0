"""Human-readable views of a run: the ranked console table and ``summary.md`` (pure functions).

Every column says what it is: the closed-form columns are per pair (``E[Tr(MG)]/n²``,
``std/n``) with ``±`` the half-width of their 95% jackknife interval; ``vs next`` is ``≈``
when the paired 95% interval of the difference to the next-ranked model holds 0 (a tie)
and ``>`` when it does not; each probe column names its probe and class count
(``ridge acc (q=2)``: mean held-out accuracy over the tasks sampled from the same prior and
temperature) and ``ridge label acc`` is the same probe on the dataset's labels. Flagged
models (the prior's own kernel, a duplicate, a degenerate kernel) are listed with their
flags but get no rank.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

FLAG_LEGEND = (
    "rank: among unflagged models only. flags: `prior` = the model's kernel is the prior's "
    "own; `duplicate_of:X` = the same kernel as model X; `degenerate` = numerically "
    "identical examples (no score)."
)
TIE_LEGEND = (
    "±: half-width of the 95% block-jackknife interval. vs next: `≈` = not significantly "
    "above the next-ranked model (paired 95% interval of the difference holds 0), `>` = "
    "significantly above."
)


def _fmt(v: Any, spec: str = ".4g") -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "" if v is None else "nan"
    if isinstance(v, (list, tuple)):
        return ", ".join(_fmt(x, spec) for x in v)
    return format(v, spec) if isinstance(v, (int, float)) else str(v)


def _key(v: Any) -> float:
    """Sort key: larger first, None/NaN last."""
    return -float(v) if v is not None and not math.isnan(float(v)) else math.inf


def task_temperature(config: Mapping[str, Any], temperature: float) -> float:
    """The temperature of the tasks compared with scores at ``temperature``."""
    t = config.get("task_temperature")
    return float(t) if t is not None else float(temperature)


def probe_settings(probes: Sequence[Mapping[str, Any]]) -> list[tuple[str, int]]:
    """The (probe, q) pairs of a run, in first-seen order."""
    return list(dict.fromkeys((str(p["probe"]), int(p["num_classes"])) for p in probes))


def probe_column(probe: str, q: int) -> str:
    """Header of a sampled-task accuracy column: ``ridge acc (q=2)``."""
    return f"{probe} acc (q={q})"


def label_column(probe: str) -> str:
    """Header of a real-label accuracy column: ``ridge label acc``."""
    return f"{probe} label acc"


def ranked_rows(
    scores: Sequence[Mapping[str, Any]],
    probes: Sequence[Mapping[str, Any]],
    prior: str,
    temperature: float,
    task_temp: float | None = None,
) -> list[dict[str, Any]]:
    """Score records of one prior x temperature: unflagged ones ranked by mean per pair
    (rank 1 = largest), flagged ones after them without a rank.

    Each row gets one ``probe acc (q=..)`` value per (probe, q) from the probes on the
    tasks of the same prior at ``task_temp`` (default ``temperature``), and one
    ``label acc`` value per probe.
    """
    t_tasks = temperature if task_temp is None else task_temp
    mine = [p for p in probes if p.get("prior") == prior and p.get("temperature") == t_tasks]
    rows = [dict(s) for s in scores if s["prior"] == prior and s["temperature"] == temperature]
    rows.sort(key=lambda r: (bool(r.get("flags")), _key(r.get("mean_per_pair"))))
    rank = 0
    for r in rows:
        rank += 0 if r.get("flags") else 1
        r["rank"] = None if r.get("flags") else rank
        r["std_per_n"] = None if r.get("std") is None else r["std"] / r["n"]
        r["mean_pm"] = _half(r.get("mean_per_pair_ci"))
        std_ci = r.get("std_ci")
        r["std_pm"] = None if not std_ci else _half([v / r["n"] for v in std_ci if v is not None])
        vs = r.get("vs_next")
        r["vs_next_mark"] = "" if not vs else ("≈" if vs.get("tied") else ">")
        r["flags"] = ", ".join(r.get("flags") or [])
        for p in mine:
            if p["model"] == r["model"]:
                r[probe_column(p["probe"], p["num_classes"])] = p["mean"]
                r[label_column(p["probe"])] = p.get("label_accuracy")
    return rows


def _half(ci: Sequence[float | None] | None) -> float | None:
    """Half-width of a ``[lo, hi]`` interval (None when missing)."""
    if not ci or len(ci) != 2 or any(v is None or math.isnan(float(v)) for v in ci):
        return None
    return (float(ci[1]) - float(ci[0])) / 2  # type: ignore[arg-type]


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """Markdown table of ``rows`` with ``columns`` = [(key, header)]."""
    head = "| " + " | ".join(h for _, h in columns) + " |"
    sep = "|" + "---|" * len(columns)
    body = ["| " + " | ".join(_fmt(r.get(k)) for k, _ in columns) + " |" for r in rows]
    return "\n".join([head, sep, *body])


def score_columns(probes: Sequence[Mapping[str, Any]], labels: bool) -> list[tuple[str, str]]:
    """Columns of a ranked table: rank, model, the closed form, one per probe setting, flags."""
    cols = [
        ("rank", "rank"),
        ("model", "model"),
        ("mean_per_pair", "E[Tr(MG)]/n²"),
        ("mean_pm", "±"),
        ("vs_next_mark", "vs next"),
        ("std_per_n", "std/n"),
        ("std_pm", "±"),
    ]
    settings = probe_settings(probes)
    cols += [(probe_column(p, q), probe_column(p, q)) for p, q in settings]
    if labels:
        cols += [(label_column(p), label_column(p)) for p in dict.fromkeys(p for p, _ in settings)]
    return [*cols, ("flags", "flags")]


def _group_header(results: Mapping[str, Any], prior: str, t: float) -> str:
    rec = next(s for s in results["scores"] if s["prior"] == prior and s["temperature"] == t)
    eff = rec.get("effective_temperature")
    scale = rec.get("temperature_scale", "absolute")
    t_text = f"T = {t:g}" + (
        f" (effective {eff:.4g}, {scale} scale)" if scale != "absolute" else ""
    )
    return (
        f"prior = {prior} (kernel {rec.get('prior_kernel')}), model kernel "
        f"{rec.get('model_kernel')}, normalize {rec.get('normalize')}, {t_text}, n = {rec['n']}; "
        f"probes on tasks sampled from this prior at T = "
        f"{task_temperature(results.get('config', {}), t):g}"
    )


def ranked_tables(results: Mapping[str, Any]) -> str:
    """One ranked table per prior x temperature, with the flag legend."""
    scores = results["scores"]
    probes = results.get("probes", [])
    labels = any(p.get("label_accuracy") is not None for p in probes)
    cols = score_columns(probes, labels)
    cfg = results.get("config", {})
    keys = sorted({(s["prior"], s["temperature"]) for s in scores})
    out = []
    for prior, t in keys:
        rows = ranked_rows(scores, probes, prior, t, task_temperature(cfg, t))
        out += [_group_header(results, prior, t), "", markdown_table(rows, cols), ""]
    if any(s.get("mean_per_pair_ci") for s in scores):
        out += [TIE_LEGEND, ""]
    if any(s.get("flags") for s in scores):
        out += [FLAG_LEGEND, ""]
    return "\n".join(out)


def _setup_lines(results: Mapping[str, Any]) -> list[str]:
    cfg, data = results["config"], results.get("data", {})
    scores = results.get("scores", [])
    priors = dict.fromkeys((s["prior"], s.get("prior_kernel")) for s in scores)
    temps = dict.fromkeys(
        (s["prior"], s["temperature"], s.get("effective_temperature")) for s in scores
    )
    scale = scores[0].get("temperature_scale", "absolute") if scores else "absolute"
    t_task = cfg.get("task_temperature")
    return [
        f"- dataset: `{data.get('dataset', cfg.get('dataset'))}` (n = {data.get('n')})",
        f"- models: {', '.join(f'`{m}`' for m in cfg.get('models', []))}",
        "- priors: " + ", ".join(f"`{p}` (kernel `{k}`)" for p, k in priors),
        f"- model kernel `{cfg.get('model_kernel')}`, normalize `{cfg.get('normalize')}`",
        f"- temperatures ({scale} scale): "
        + "; ".join(f"`{p}`: T = {t:g} (effective {e:.4g})" for p, t, e in temps if e is not None),
        f"- tasks: {cfg.get('num_tasks')} per prior, temperature and q in "
        f"{cfg.get('num_classes')}, sampled from the same prior "
        + (f"at task_temperature = {t_task:g}" if t_task is not None else "at each temperature")
        + f" (prefix sampler, {cfg.get('gibbs_sweeps', 0)} Gibbs sweeps, "
        f"min_class_fraction {cfg.get('min_class_fraction')}); probes {cfg.get('probes')} "
        f"on one shared split (test_fraction {cfg.get('test_fraction')})",
    ]


def summary_markdown(results: Mapping[str, Any]) -> str:
    """The ``summary.md`` of a run: setup, ranked tables, probes, correlations, timings."""
    cfg = results["config"]
    lines = [f"# tp-harness run: {cfg.get('name', 'run')}", "", *_setup_lines(results), ""]
    lines += ["## Closed-form scores", "", ranked_tables(results)]
    if results.get("probes"):
        cols = [
            ("model", "model"),
            ("prior", "prior"),
            ("temperature", "T (tasks)"),
            ("num_classes", "q"),
            ("probe", "probe"),
            ("mean", "mean acc"),
            ("std", "std"),
            ("p5", "p5"),
            ("min", "min"),
            ("gain_over_majority", "gain vs majority"),
            ("label_accuracy", "label acc"),
            ("label_pm", "±"),
        ]
        rows = [
            dict(
                p,
                mean_pm=_half(p.get("accuracy_mean_ci")),
                label_pm=_half(p.get("label_accuracy_ci")),
            )
            for p in results["probes"]
        ]
        cols.insert(6, ("mean_pm", "±"))
        lines += [
            "## Probes on sampled tasks",
            "",
            markdown_table(rows, cols),
            "",
            "±: half-width of the 95% bootstrap interval (over tasks for the mean "
            "accuracy, over test examples for the label accuracy).",
            "",
        ]
    lines += _alignment_lines(results) + _agreement_lines(results)
    if results.get("correlations"):
        cols = [
            ("prior", "prior"),
            ("temperature", "T"),
            ("num_classes", "q"),
            ("probe", "probe"),
            ("x", "closed form"),
            ("y", "probe"),
            ("m", "models"),
            ("pearson", "Pearson"),
            ("pearson_ci", "95% CI"),
            ("spearman", "Spearman"),
            ("spearman_ci", "95% CI"),
        ]
        rows = [
            dict(
                c,
                m=len(c.get("models", [])),
                pearson_ci=_ci(c["pearson_ci"]),
                spearman_ci=_ci(c["spearman_ci"]),
            )
            for c in results["correlations"]
        ]
        lines += [
            "## Closed form vs probes (across unflagged models)",
            "",
            markdown_table(rows, cols),
            "",
        ]
    if results.get("timings"):
        lines += [
            "## Timings (s)",
            "",
            markdown_table(
                [{"stage": k, "seconds": v} for k, v in results["timings"].items()],
                [("stage", "stage"), ("seconds", "seconds")],
            ),
            "",
        ]
    return "\n".join(lines)


def _alignment_lines(results: Mapping[str, Any]) -> list[str]:
    if not results.get("task_alignments"):
        return []
    cols = [
        ("model", "model"),
        ("prior", "prior"),
        ("temperature", "T"),
        ("num_classes", "q"),
        ("closed_form_mean", "closed form E/n²"),
        ("sampled_alignment_mean", "sampled tasks mean/n²"),
        ("mean_ratio", "ratio"),
        ("closed_form_std", "closed form std/n"),
        ("sampled_alignment_std", "sampled tasks std/n"),
        ("std_ratio", "ratio"),
    ]
    return [
        "## Closed form vs the sampled tasks",
        "",
        "`Tr(MG)` of every sampled task (same kernel and normalisation as the closed form) "
        "against the closed form's mean and std: the closed form has independent edges, the "
        "tasks are one-hot labelings from the Potts measure (docs/uncertainty.md).",
        "",
        markdown_table(results["task_alignments"], cols),
        "",
    ]


def _agreement_lines(results: Mapping[str, Any]) -> list[str]:
    if not results.get("prior_agreement"):
        return []
    rows = [
        dict(a, m=len(a.get("models", [])), ci=_ci(a.get("kendall_tau_ci") or []))
        for a in results["prior_agreement"]
    ]
    cols = [
        ("prior_a", "prior A"),
        ("prior_b", "prior B"),
        ("temperature", "T"),
        ("m", "models"),
        ("kendall_tau", "Kendall tau"),
        ("ci", "95% CI"),
    ]
    return [
        "## Prior sensitivity: rank agreement between priors",
        "",
        markdown_table(rows, cols),
        "",
    ]


def _ci(ci: Sequence[float | None]) -> str:
    values = [v for v in ci or [] if v is not None and not math.isnan(float(v))]
    return f"[{values[0]:.2f}, {values[1]:.2f}]" if len(values) == 2 else ""
