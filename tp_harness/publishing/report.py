"""Human-readable views of a run: the ranked console table and ``summary.md`` (pure functions)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def _fmt(v: Any, spec: str = ".4g") -> str:
    return "" if v is None else format(v, spec) if isinstance(v, (int, float)) else str(v)


def ranked_rows(
    scores: Sequence[Mapping[str, Any]],
    probes: Sequence[Mapping[str, Any]],
    prior: str,
    temperature: float,
) -> list[dict[str, Any]]:
    """Score records of one prior x temperature, ranked by mean per pair, with probe means joined.

    Probe columns take the first probe record of each model (first class count, first probe).
    """
    first_probe: dict[str, Mapping[str, Any]] = {}
    for rec in probes:
        first_probe.setdefault(str(rec["model"]), rec)
    rows = [dict(s) for s in scores if s["prior"] == prior and s["temperature"] == temperature]
    rows.sort(key=lambda r: -float(r["mean_per_pair"]))
    for rank, r in enumerate(rows, start=1):
        r["rank"] = rank
        p: Mapping[str, Any] | None = first_probe.get(str(r["model"]))
        r["probe_accuracy_mean"] = p["mean"] if p else None
        r["probe_accuracy_p5"] = p["p5"] if p else None
    return rows


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[tuple[str, str]]) -> str:
    """Markdown table of ``rows`` with ``columns`` = [(key, header)]."""
    head = "| " + " | ".join(h for _, h in columns) + " |"
    sep = "|" + "---|" * len(columns)
    body = ["| " + " | ".join(_fmt(r.get(k)) for k, _ in columns) + " |" for r in rows]
    return "\n".join([head, sep, *body])


SCORE_COLUMNS = [
    ("rank", "rank"),
    ("model", "model"),
    ("mean_per_pair", "E[Tr(MG)]/n²"),
    ("std_per_n", "std/n"),
    ("probe_accuracy_mean", "probe acc"),
    ("probe_accuracy_p5", "probe acc p5"),
]


def ranked_tables(results: Mapping[str, Any]) -> str:
    """One ranked table per prior x temperature."""
    scores = [dict(s, std_per_n=s["std"] / s["n"]) for s in results["scores"]]
    keys = sorted({(s["prior"], s["temperature"]) for s in scores}, key=lambda k: (k[0], k[1]))
    out = []
    for prior, t in keys:
        rows = ranked_rows(scores, results.get("probes", []), prior, t)
        out += [f"prior = {prior}, T = {t:g}", "", markdown_table(rows, SCORE_COLUMNS), ""]
    return "\n".join(out)


def summary_markdown(results: Mapping[str, Any]) -> str:
    """The ``summary.md`` of a run: setup, ranked tables, probes, correlations, timings."""
    cfg, data = results["config"], results.get("data", {})
    lines = [
        f"# tp-harness run: {cfg.get('name', 'run')}",
        "",
        f"- dataset: `{data.get('dataset', cfg.get('dataset'))}` (n = {data.get('n')})",
        f"- models: {', '.join(f'`{m}`' for m in cfg.get('models', []))}",
        f"- priors: {', '.join(f'`{p}`' for p in cfg.get('priors', []))}",
        f"- temperatures: {cfg.get('temperatures')}; kernels: model "
        f"`{cfg.get('model_kernel')}`, prior `{cfg.get('prior_kernel')}`, "
        f"normalize `{cfg.get('normalize')}`",
        "",
        "## Closed-form scores",
        "",
        ranked_tables(results),
    ]
    if results.get("probes"):
        cols = [
            ("model", "model"),
            ("num_classes", "q"),
            ("probe", "probe"),
            ("mean", "mean"),
            ("std", "std"),
            ("p5", "p5"),
            ("min", "min"),
            ("gain_over_majority", "gain vs majority"),
        ]
        lines += ["## Probes on sampled tasks", "", markdown_table(results["probes"], cols), ""]
    if results.get("correlations"):
        cols = [
            ("prior", "prior"),
            ("temperature", "T"),
            ("num_classes", "q"),
            ("probe", "probe"),
            ("x", "closed form"),
            ("y", "probe"),
            ("pearson", "Pearson"),
            ("pearson_ci", "95% CI"),
            ("spearman", "Spearman"),
            ("spearman_ci", "95% CI"),
        ]
        rows = [
            dict(c, pearson_ci=_ci(c["pearson_ci"]), spearman_ci=_ci(c["spearman_ci"]))
            for c in results["correlations"]
        ]
        lines += ["## Closed form vs probes (across models)", "", markdown_table(rows, cols), ""]
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


def _ci(ci: Sequence[float]) -> str:
    return f"[{ci[0]:.2f}, {ci[1]:.2f}]"
