"""Push a run folder to the Hugging Face Hub: scores to one dataset repo, sampled tasks to another.

Scores repo (``repo_id``), written in one commit; pushing again overwrites the same
files (unchanged files are skipped, stale figures deleted)::

    README.md         dataset card: YAML metadata + the run summary (ranked tables)
    results.json      the run's results document as the run folder holds it (redacted)
    scores.parquet    one row per model x prior x temperature (the ``scores`` records)
    figures/*.png     the run's figures

Tasks repo (``tasks_repo_id``, default ``<repo_id>-tasks``), by ``Dataset.push_to_hub``
(which replaces the split's shards) plus a dataset card recording the source dataset
and license, the prior, temperature, class counts, sampler settings and seeds::

    README.md
    data/train-*.parquet   columns example_id, task_id, num_classes, label

The token comes from ``token=``, else ``HF_TOKEN`` / the saved login
(``huggingface_hub.get_token``); it is never printed nor written into any file.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import socket
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..evaluation.hub_access import hub_offline
from ..evaluation.results import RESULTS_FILE, Results
from .report import summary_markdown
from .run_folder import FIGURES_DIR, SUMMARY_FILE, TASKS_DIR

SCORES_FILE = "scores.parquet"
CARD_FILE = "README.md"
TASKS_SPLIT = "train"
TAGS = ["tp-harness", "task-priors", "evaluation", "embeddings"]
MAX_REPO_ID = 96
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*$")
_HUB_LICENSES = {
    "apache-2.0",
    "mit",
    "cc0-1.0",
    "cc-by-4.0",
    "cc-by-sa-4.0",
    "cc-by-nc-4.0",
    "cc-by-nc-sa-4.0",
    "cc-by-nd-4.0",
    "cc-by-3.0",
    "cc-by-sa-3.0",
    "bsd-3-clause",
    "bsd-2-clause",
    "gpl-3.0",
    "lgpl-3.0",
    "odc-by",
    "odbl",
    "pddl",
    "openrail",
    "cdla-permissive-2.0",
    "unknown",
    "other",
}
CITATION = """@misc{patel2025taskpriors,
  title  = {taskpriors: Enhancing Model Evaluation by Considering the Entire Space of
            Downstream Tasks},
  author = {Patel, Niket and Balestriero, Randall},
  year   = {2025}
}"""


class HubPushError(OSError):
    """A push failed; the message names the repo and never contains the token."""


# ---------------------------------------------------------------- pure helpers (cards, table)


def default_tasks_repo_id(repo_id: str) -> str:
    """``ORG/NAME`` -> ``ORG/NAME-tasks``."""
    return f"{repo_id}-tasks"


def check_repo_id(repo_id: str, flag: str = "--repo-id") -> str:
    """Return ``repo_id`` if it reads ``ORG/NAME`` (letters, digits, ``-_.``, at most
    :data:`MAX_REPO_ID` characters, the Hub's rule), else raise."""
    if (
        not isinstance(repo_id, str)
        or not _REPO_ID.match(repo_id)
        or ".." in repo_id
        or "--" in repo_id
        or repo_id.endswith((".git", "."))
    ):
        raise ValueError(
            f"{flag} must read ORG/NAME (letters, digits, '-', '_', '.'); got {repo_id!r}."
        )
    if len(repo_id) > MAX_REPO_ID:
        raise ValueError(
            f"{flag} {repo_id!r} has {len(repo_id)} characters; the Hub allows at most "
            f"{MAX_REPO_ID}."
        )
    return repo_id


@dataclass(frozen=True)
class PushPlan:
    """What :func:`check_push` verified: both repo ids and the token to use."""

    repo_id: str
    tasks_repo_id: str
    token: str = field(repr=False)


def check_push(
    repo_id: str, tasks_repo_id: str | None = None, token: str | None = None
) -> PushPlan:
    """Every check that needs no upload: both repo ids (the default ``-tasks`` one too),
    distinct, the Hub not disabled, a token. Raises before anything is sent."""
    check_repo_id(repo_id, "--repo-id")
    if tasks_repo_id is None:
        tasks_id = default_tasks_repo_id(repo_id)
        try:
            check_repo_id(tasks_id, "the tasks repo id")
        except ValueError as err:
            raise ValueError(
                f"{err} It is derived from --repo-id {repo_id!r} + '-tasks': choose a "
                "shorter --repo-id or pass --tasks-repo-id."
            ) from None
    else:
        tasks_id = check_repo_id(tasks_repo_id, "--tasks-repo-id")
    if tasks_id == repo_id:
        raise ValueError(
            "--tasks-repo-id must differ from --repo-id (scores and tasks are two dataset repos)."
        )
    if hub_offline():
        raise _unreachable(repo_id, "HF_HUB_OFFLINE is set")
    return PushPlan(repo_id, tasks_id, resolve_token(token, repo_id))


def hub_license(text: str | None) -> str | None:
    """A license string as the Hub's id (``"CC BY 4.0"`` -> ``"cc-by-4.0"``), or None."""
    if not text:
        return None
    key = re.sub(r"[\s_]+", "-", str(text).strip().lower()).replace("license", "").strip("-")
    key = re.sub(r"-+", "-", key)
    return key if key in _HUB_LICENSES else None


# Fixed Arrow types of the known score columns, so tables of different runs concatenate
# (an all-None column would otherwise be typed null in one run and int64 in another).
SCORE_TYPES = {
    "model": "string",
    "prior": "string",
    "mean": "float64",
    "variance": "float64",
    "std": "float64",
    "mean_per_pair": "float64",
    "variance_per_pair": "float64",
    "n": "int64",
    "temperature": "float64",
    "model_kernel": "string",
    "prior_kernel": "string",
    "normalize": "string",
    "method": "string",
    "mean_stderr": "float64",
    "variance_stderr": "float64",
    "num_pairs": "int64",
}


def _column(values: list[Any], type_name: str | None) -> Any:
    import pyarrow as pa

    if type_name is not None:
        with contextlib.suppress(pa.ArrowInvalid, pa.ArrowTypeError, TypeError):
            return pa.array(values, type=pa.type_for_alias(type_name))
    return pa.array(values)


def scores_table(scores: Sequence[Mapping[str, Any]]) -> Any:
    """A pyarrow table with one row per score record (columns: union of keys, first-seen order).

    Known columns get the types of :data:`SCORE_TYPES`; others are inferred.
    """
    import pyarrow as pa

    columns: dict[str, None] = {}
    for rec in scores:
        columns.update(dict.fromkeys(rec))
    return pa.table(
        {k: _column([rec.get(k) for rec in scores], SCORE_TYPES.get(k)) for k in columns}
    )


def parquet_bytes(table: Any) -> bytes:
    import pyarrow.parquet as pq

    buf = io.BytesIO()
    pq.write_table(table, buf)
    return buf.getvalue()


def _card(metadata: Mapping[str, Any], body: str) -> str:
    from huggingface_hub import DatasetCard, DatasetCardData

    return str(DatasetCard(f"---\n{DatasetCardData(**metadata).to_yaml()}\n---\n\n{body}"))


def _demote(markdown: str) -> str:
    """Drop the first H1 and push every other heading one level down."""
    lines = markdown.splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    return "\n".join(f"#{ln}" if ln.startswith("#") else ln for ln in lines).strip()


def _source(results: Mapping[str, Any]) -> dict[str, Any]:
    data = results.get("data") or {}
    return {
        "dataset": data.get("dataset") or results.get("config", {}).get("dataset"),
        "source": data.get("source") or {},
        "fingerprint": data.get("fingerprint"),
        "n": data.get("n"),
    }


def _source_lines(results: Mapping[str, Any]) -> list[str]:
    s = _source(results)
    src = s["source"]
    sel = src.get("selection") or {}
    lines = [
        f"- **Dataset:** `{s['dataset']}`"
        + (
            f" ({src['kind']}" + (f", split `{src['split']}`" if src.get("split") else "") + ")"
            if src.get("kind")
            else ""
        ),
        f"- **License:** {src.get('license') or 'unknown (see the source dataset)'}",
    ]
    if src.get("homepage"):
        lines.append(f"- **Homepage:** {src['homepage']}")
    lines.append(f"- **Examples:** n = {s['n']}, fingerprint `{s['fingerprint']}`")
    if sel:
        lines.append("- **Selection:** " + ", ".join(f"{k} = {v}" for k, v in sel.items()))
    if src.get("labels"):
        lines.append(f"- **Labels:** {src['labels']}")
    return lines


def _metadata(results: Mapping[str, Any], pretty_name: str, tags: list[str]) -> dict[str, Any]:
    meta: dict[str, Any] = {"pretty_name": pretty_name, "tags": tags}
    lic = hub_license(_source(results)["source"].get("license"))
    if lic:
        meta = {"license": lic, **meta}
    return meta


def scores_card(
    results: Mapping[str, Any],
    summary: str,
    repo_id: str,
    tasks_repo_id: str | None,
    endpoint: str = "https://huggingface.co",
) -> str:
    """README.md of the scores repo: YAML metadata + setup, files, loading code and summary."""
    cfg = results.get("config", {})
    name, dataset = cfg.get("name", "run"), _source(results)["dataset"]
    meta = _metadata(results, f"tp-harness scores: {name} on {dataset}", TAGS)
    meta["configs"] = [
        {"config_name": "default", "data_files": [{"split": "train", "path": SCORES_FILE}]}
    ]
    models = ", ".join(
        f"`{m.get('name')}` (revision `{m.get('revision')}`)" for m in results.get("models", [])
    )
    cols = ", ".join(f"`{c}`" for c in scores_table(results.get("scores", [])).column_names)
    version = (results.get("versions") or {}).get("tp-harness")
    body = [
        f"# tp-harness scores: {name}",
        "",
        f"Task-prior scores of {len(results.get('models', []))} model(s) on `{dataset}` from a "
        f"tp-harness {version or ''} run: the closed-form mean and variance of the alignment "
        "Tr(MG) over all tasks drawn from the task prior (Patel & Balestriero, Theorem 3.6). "
        "Sums run over all ordered pairs (i, j), diagonal included; `*_per_pair` = value / n².",
        "",
        *_source_lines(results),
        f"- **Models:** {models}",
        f"- **Priors:** {', '.join(f'`{p}`' for p in cfg.get('priors', []))}; "
        f"**temperatures:** {cfg.get('temperatures')}; kernels: model "
        f"`{cfg.get('model_kernel')}`, prior `{cfg.get('prior_kernel')}`, "
        f"normalize `{cfg.get('normalize')}`",
    ]
    if tasks_repo_id:
        body.append(
            f"- **Sampled tasks:** [`{tasks_repo_id}`]({endpoint}/datasets/{tasks_repo_id})"
        )
    body += [
        "",
        "## Files",
        "",
        "| file | content |",
        "|---|---|",
        f"| `{RESULTS_FILE}` | the run's results document (schema "
        f"{results.get('schema_version')}): config, data, models, scores, probes, "
        "baselines, correlations, tasks, timings, versions |",
        f"| `{SCORES_FILE}` | one row per model × prior × temperature: {cols} |",
        f"| `{FIGURES_DIR}/*.png` | the run's figures |",
        "",
        "## Load",
        "",
        "```python",
        "import json",
        "from datasets import load_dataset",
        "from huggingface_hub import hf_hub_download",
        "",
        f'scores = load_dataset("{repo_id}", split="train")',
        f'path = hf_hub_download("{repo_id}", "{RESULTS_FILE}", repo_type="dataset")',
        "results = json.load(open(path))",
        "```",
        "",
        "## Summary",
        "",
        _demote(summary),
        "",
        "## Citation",
        "",
        "```bibtex",
        CITATION,
        "```",
        "",
    ]
    return _card(meta, "\n".join(body))


_TASK_COLUMNS = (
    "prior",
    "prior_kernel",
    "temperature",
    "num_classes",
    "num_tasks",
    "seed",
    "gibbs_sweeps",
    "min_class_fraction",
    "n",
    "rank",
)


def tasks_card_metadata(results: Mapping[str, Any]) -> dict[str, Any]:
    name = results.get("config", {}).get("name", "run")
    return _metadata(
        results,
        f"tp-harness sampled tasks: {name} on {_source(results)['dataset']}",
        [*TAGS, "synthetic-tasks"],
    )


def tasks_card_body(
    results: Mapping[str, Any],
    tasks_repo_id: str,
    scores_repo_id: str,
    num_rows: int,
    endpoint: str = "https://huggingface.co",
) -> str:
    """Body of the tasks repo card: source, prior and sampler settings, seeds, usage."""
    from .report import markdown_table

    settings = list(results.get("tasks", []))
    cfg = results.get("config", {})
    total = sum(int(t.get("num_tasks", 0)) for t in settings)
    cols = [(k, k) for k in _TASK_COLUMNS if any(k in t for t in settings)]
    body = [
        f"# tp-harness sampled tasks: {cfg.get('name', 'run')}",
        "",
        f"{total} classification tasks sampled from the task prior (prefix sampler, "
        "Algorithm 1 of Patel & Balestriero, with optional Gibbs refinement) on the examples "
        f"below, in long format: {num_rows} rows, one per (task, example).",
        "",
        "| column | meaning |",
        "|---|---|",
        "| `example_id` | row of the example in the source dataset |",
        "| `task_id` | task index, global over class counts |",
        "| `num_classes` | q, the number of classes of the task |",
        "| `label` | the example's class in this task, in [0, q) |",
        "",
        "## Source dataset",
        "",
        *_source_lines(results),
        "",
        "## Task prior and sampler",
        "",
        markdown_table(settings, cols) if cols else "",
        "",
        f"Run seed: {cfg.get('seed')}. Every setting of every task set, as recorded by the run:",
        "",
        "```json",
        json.dumps(settings, indent=1, default=str),
        "```",
        "",
        "## Use",
        "",
        "```python",
        "from datasets import load_dataset",
        "",
        f'tasks = load_dataset("{tasks_repo_id}", split="{TASKS_SPLIT}")',
        'task0 = tasks.filter(lambda r: r["task_id"] == 0)  # labels of task 0',
        "```",
        "",
        f"Scores of the same run: [`{scores_repo_id}`]({endpoint}/datasets/{scores_repo_id}).",
        "",
        "## Citation",
        "",
        "```bibtex",
        CITATION,
        "```",
        "",
    ]
    return "\n".join(body)


def merge_tasks_card(pushed_card: str, results: Mapping[str, Any], body: str) -> str:
    """Keep the YAML that ``push_to_hub`` wrote (dataset_info, configs), add ours, set the body.

    Serialised the way ``datasets`` re-serialises cards, so pushing again is a no-op.
    """
    from huggingface_hub import DatasetCard

    card = DatasetCard(pushed_card)
    for k, v in tasks_card_metadata(results).items():
        setattr(card.data, k, v)
    card.text = "\n" + body
    return str(card)


# ---------------------------------------------------------------- Hub access


def _endpoint() -> str:
    from huggingface_hub import constants

    return str(constants.ENDPOINT)


def _unreachable(repo_id: str, reason: str) -> HubPushError:
    return HubPushError(
        f"cannot reach the Hugging Face Hub at {_endpoint()} to push {repo_id} ({reason}). "
        "Pushing needs the network: unset HF_HUB_OFFLINE if it is set, check the connection, "
        "or point HF_ENDPOINT at a reachable Hub (mirror)."
    )


def _transport_errors() -> tuple[type[BaseException], ...]:
    """Connection-level exception types of the HTTP clients already imported."""
    out: list[type[BaseException]] = [ConnectionError, TimeoutError, socket.gaierror]
    for mod, attr in (
        ("httpx2", "TransportError"),
        ("httpx", "TransportError"),
        ("requests", "ConnectionError"),
        ("requests", "Timeout"),
    ):
        cls = getattr(sys.modules.get(mod), attr, None)
        if isinstance(cls, type) and issubclass(cls, BaseException):
            out.append(cls)
    return tuple(out)


def _chain(err: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    cur: BaseException | None = err
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        yield cur
        cur = cur.__cause__ or cur.__context__


@contextlib.contextmanager
def _hub_errors(repo_id: str, token: str) -> Iterator[None]:
    """Turn connection and HTTP failures into :class:`HubPushError` naming ``repo_id``."""
    from huggingface_hub.utils import HfHubHTTPError

    try:
        yield
    except HubPushError:
        raise
    except Exception as err:
        transport = _transport_errors()
        for e in _chain(err):
            if isinstance(e, transport):
                raise _unreachable(repo_id, _scrub(f"{type(e).__name__}: {e}", token)) from None
            if isinstance(e, HfHubHTTPError):
                status = getattr(getattr(e, "response", None), "status_code", None)
                hint = (
                    " Check that the token (HF_TOKEN or `hf auth login`) has write access "
                    "to that namespace."
                    if status in (401, 403)
                    else ""
                )
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                raise HubPushError(
                    f"pushing to {repo_id} at {_endpoint()} failed: {_scrub(first, token)}.{hint}"
                ) from None
        raise


def _scrub(text: str, token: str) -> str:
    return text.replace(token, "***") if token else text


def resolve_token(token: str | None, repo_id: str) -> str:
    """``token``, else the usual Hugging Face sources (HF_TOKEN, saved login)."""
    from huggingface_hub import get_token

    tok = token or get_token()
    if not tok:
        raise HubPushError(
            f"no Hugging Face token to push {repo_id}: set HF_TOKEN or run "
            "`hf auth login` with a token that can write to that namespace."
        )
    return tok


def _listed_figures(run: Path, doc: Mapping[str, Any]) -> list[str]:
    """The figures results.json lists (only those are pushed); each must exist."""
    listed = [str(f) for f in doc.get("conventions", {}).get("figures", [])]
    missing = [f for f in listed if not (run / f).is_file()]
    if missing:
        raise ValueError(
            f"{run / RESULTS_FILE} lists {', '.join(missing)}, which the run folder lacks; "
            "rerun `tp-harness evaluate` into it before pushing."
        )
    return listed


def _public_results(run: Path, raw: bytes, roots: list[tuple[str, str]]) -> bytes:
    """results.json as on disk when it holds no local path, else a redacted copy
    (run folders written before redaction existed)."""
    from .redact import private_leaks, redact

    text = raw.decode("utf-8")
    if not private_leaks(text, roots):
        return raw
    doc = redact(json.loads(text), roots)
    return json.dumps(doc, indent=2, allow_nan=False).encode("utf-8")


def _run_files(
    run: Path, doc: Mapping[str, Any], raw: bytes, repo_id: str, tasks_repo_id: str | None
) -> dict[str, bytes]:
    """Files of the scores repo: results.json, scores.parquet, card, the listed figures."""
    summary_path = run / SUMMARY_FILE
    summary = summary_path.read_text() if summary_path.exists() else summary_markdown(dict(doc))
    files = {
        RESULTS_FILE: raw,
        SCORES_FILE: parquet_bytes(scores_table(doc.get("scores", []))),
        CARD_FILE: scores_card(doc, summary, repo_id, tasks_repo_id, _endpoint()).encode(),
    }
    for fig in _listed_figures(run, doc):
        files[fig] = (run / fig).read_bytes()
    return files


def _check_private(files: Mapping[str, bytes], roots: list[tuple[str, str]], run: Path) -> None:
    """Refuse (before any upload) when a text file to push holds a local path."""
    from .redact import private_leaks

    for name, data in files.items():
        if name.endswith((".json", ".md")):
            leaks = private_leaks(data.decode("utf-8", "replace"), roots)
            if leaks:
                raise ValueError(
                    f"{name} for the push would hold local paths ({', '.join(leaks[:3])}); "
                    f"nothing was pushed. Rerun `tp-harness evaluate` into {run} (this version "
                    "writes redacted run folders) and push again."
                )


def _tasks_dataset(run: Path, roots: list[tuple[str, str]]) -> Any:
    """The run's tasks dataset, checked for local paths (prior names, sampler settings)."""
    import datasets

    from .redact import private_leaks

    ds = datasets.load_from_disk(str(run / TASKS_DIR))
    text = json.dumps(sorted(set(ds.unique("prior")))) + (ds.info.description or "")
    leaks = private_leaks(text, roots)
    if leaks:
        raise ValueError(
            f"{run / TASKS_DIR} names local paths ({', '.join(leaks[:3])}); nothing was pushed. "
            f"Rerun `tp-harness evaluate` into {run} and push again."
        )
    return ds


def commit_files(
    api: Any,
    repo_id: str,
    repo_type: str,
    files: Mapping[str, bytes],
    deleted: Sequence[str],
    message: str,
) -> Any:
    """One commit that writes ``files`` (path -> bytes) and deletes ``deleted``."""
    from huggingface_hub import CommitOperationAdd, CommitOperationDelete

    ops: list[Any] = [
        CommitOperationAdd(path_in_repo=p, path_or_fileobj=b) for p, b in files.items()
    ]
    ops += [CommitOperationDelete(path_in_repo=p) for p in deleted]
    return api.create_commit(repo_id, operations=ops, repo_type=repo_type, commit_message=message)


def _push_scores(api: Any, files: dict[str, bytes], repo_id: str, private: bool) -> dict[str, Any]:
    url = api.create_repo(repo_id, repo_type="dataset", private=private, exist_ok=True)
    existing = api.list_repo_files(repo_id, repo_type="dataset")
    stale = [f for f in existing if f.startswith(f"{FIGURES_DIR}/") and f not in files]
    commit = commit_files(api, repo_id, "dataset", files, stale, "tp-harness: push run scores")
    return {
        "repo_id": repo_id,
        "url": str(url),
        "commit": commit.oid,
        "files": sorted(files),
        "deleted": stale,
    }


def _push_tasks(
    api: Any,
    ds: Any,
    results: dict[str, Any],
    tasks_repo_id: str,
    repo_id: str,
    private: bool,
    token: str,
    pushed: list[str],
) -> dict[str, Any]:
    from huggingface_hub import CommitOperationAdd

    ds.push_to_hub(
        tasks_repo_id,
        split=TASKS_SPLIT,
        private=private,
        token=token,
        commit_message="tp-harness: push sampled tasks",
    )
    pushed.append(f"the sampled tasks' data to {tasks_repo_id}")
    with tempfile.TemporaryDirectory() as tmp:
        path = api.hf_hub_download(tasks_repo_id, CARD_FILE, repo_type="dataset", local_dir=tmp)
        pushed_card = Path(path).read_text(encoding="utf-8")
    body = tasks_card_body(results, tasks_repo_id, repo_id, len(ds), _endpoint())
    card = merge_tasks_card(pushed_card, results, body)
    commit = api.create_commit(
        tasks_repo_id,
        repo_type="dataset",
        operations=[CommitOperationAdd(CARD_FILE, card.encode())],
        commit_message="tp-harness: sampled tasks card",
    )
    pushed.append(f"the tasks card to {tasks_repo_id} (commit {commit.oid[:8]})")
    return {
        "tasks_repo_id": tasks_repo_id,
        "tasks_url": f"{_endpoint()}/datasets/{tasks_repo_id}",
        "tasks_commit": commit.oid,
        "num_task_rows": len(ds),
    }


@contextlib.contextmanager
def _say_what_went_up(pushed: list[str], retry: str) -> Iterator[None]:
    """A failure after a first upload names what is already on the Hub and how to retry."""
    try:
        yield
    except HubPushError as err:
        if not pushed:
            raise HubPushError(f"{err} Nothing was pushed.") from None
        raise HubPushError(
            f"{err} Already pushed: {'; '.join(pushed)}. The rest was not. Retry with "
            f"`{retry}` (pushing again rewrites the same files)."
        ) from None


def push_run(
    results_dir: str | Path,
    repo_id: str,
    *,
    tasks_repo_id: str | None = None,
    private: bool = False,
    token: str | None = None,
) -> dict[str, Any]:
    """Push a run folder's sampled tasks to ``tasks_repo_id`` and its scores to ``repo_id``.

    Every check comes before the first upload (:func:`check_push`: both ids, the token;
    the files results.json lists; no local path in anything pushed). Both are dataset
    repos, created if missing (``private`` applies at creation; an existing repo keeps its
    visibility). The tasks go first, the scores (which link to them) last, each repo in
    as few commits as the Hub allows; if an upload fails, the error says what was already
    pushed and how to retry. Pushing the same run again rewrites the same files: nothing
    is duplicated, and unchanged files make no new commit. Without a ``tasks/`` folder
    only the scores are pushed.

    Returns a dict: ``repo_id``, ``url``, ``commit``, ``files``, ``deleted``, ``num_scores``
    and, when tasks were pushed, ``tasks_repo_id``, ``tasks_url``, ``tasks_commit``,
    ``num_task_rows``. Raises :class:`HubPushError` (an ``OSError``) when the Hub cannot
    be reached or refuses the push, ``ValueError`` for a bad id or run folder.
    """
    from huggingface_hub import HfApi

    from .redact import local_roots

    run = Path(results_dir)
    Results.load(run)  # schema check
    plan = check_push(repo_id, tasks_repo_id, token)
    roots = local_roots(run)
    raw = _public_results(run, (run / RESULTS_FILE).read_bytes(), roots)
    doc = json.loads(raw)
    has_tasks = (run / TASKS_DIR).is_dir()
    files = _run_files(run, doc, raw, plan.repo_id, plan.tasks_repo_id if has_tasks else None)
    _check_private(files, roots, run)
    ds = _tasks_dataset(run, roots) if has_tasks else None
    api = HfApi(token=plan.token)
    pushed: list[str] = []
    retry = f"tp-harness push {run} --repo-id {plan.repo_id}" + (
        f" --tasks-repo-id {plan.tasks_repo_id}" if tasks_repo_id else ""
    )
    out: dict[str, Any] = {}
    with _say_what_went_up(pushed, retry):
        if ds is not None:
            with _hub_errors(plan.tasks_repo_id, plan.token):
                tasks = _push_tasks(
                    api, ds, doc, plan.tasks_repo_id, plan.repo_id, private, plan.token, pushed
                )
        with _hub_errors(plan.repo_id, plan.token):
            out = _push_scores(api, files, plan.repo_id, private)
    out["num_scores"] = len(doc.get("scores", []))
    if ds is not None:
        out.update(tasks)
    return out


def push_report(info: Mapping[str, Any]) -> str:
    """Two human lines about a :func:`push_run` result."""
    lines = [
        f"scores: {info['url']} (commit {str(info['commit'])[:8]}, "
        f"{len(info['files'])} files, {info['num_scores']} score rows)"
    ]
    if "tasks_url" in info:
        lines.append(
            f"tasks:  {info['tasks_url']} (commit {str(info['tasks_commit'])[:8]}, "
            f"{info['num_task_rows']} rows)"
        )
    return "\n".join(lines)
