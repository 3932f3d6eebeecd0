"""Pushing a run to a Hub: a real run, pushed to the local Hub-protocol server, read back.

``huggingface_hub`` and ``datasets`` read ``HF_ENDPOINT`` and ``HF_HUB_DISABLE_XET`` at
import time, so every network step runs in a subprocess with its own environment
(``HF_HOME`` in a temp folder, a dummy token). The server lives for this module only.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.hub_server import HubServer, client_env
from tp_harness.evaluation.results import Results
from tp_harness.publishing import hub

TOKEN = "dummy-secret-token"
ROOT = Path(__file__).resolve().parents[2]

PUSH_CLI = """
import sys
from tp_harness.cli import main
sys.exit(main())
"""

PUSH_API = """
import json, sys
from tp_harness.publishing.hub import push_run
run, repo, tasks, times = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
print(json.dumps([push_run(run, repo, tasks_repo_id=tasks, private=True) for _ in range(times)]))
"""

READ_BACK = """
import sys, datasets
from huggingface_hub import snapshot_download
repo, tasks, out = sys.argv[1:4]
snapshot_download(repo, repo_type="dataset", local_dir=f"{out}/scores_files")
snapshot_download(tasks, repo_type="dataset", local_dir=f"{out}/tasks_files")
datasets.load_dataset(repo, split="train").save_to_disk(f"{out}/scores_ds")
datasets.load_dataset(tasks, split="train").save_to_disk(f"{out}/tasks_ds")
"""


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real small run folder (TF-IDF models, bundled drug reviews, label prior)."""
    from tp_harness.evaluation.config import Config
    from tp_harness.evaluation.pipeline import run
    from tp_harness.publishing.run_folder import write_outputs

    tmp = tmp_path_factory.mktemp("hub-run")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        mp.setenv("TP_HARNESS_CACHE", str(tmp / "cache"))
        cfg = Config(
            models=("tfidf-lsa:dim=16", "tfidf-lsa:dim=4"),
            priors=("labels",),
            dataset="bundled:drug_reviews",
            num_examples=120,
            num_tasks=16,
            num_classes=(2,),
            probes=("ridge",),
            temperatures=(0.1, 1.0),
            output_dir=str(tmp / "run"),
            cache_dir=str(tmp / "cache"),
            bootstrap=50,
        )
        write_outputs(run(cfg, progress=False), cfg.output_dir)
    return tmp / "run"


@pytest.fixture(scope="module")
def server():
    with HubServer(token=TOKEN, lifetime_s=300) as s:
        yield s


def _env(server: HubServer, home: Path) -> dict[str, str]:
    return client_env(server.url, TOKEN, home, ROOT)


def _python(server: HubServer, home: Path, code: str, *args: str) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=_env(server, home),
        capture_output=True,
        text=True,
        timeout=240,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _read_back(server: HubServer, tmp: Path, repo: str, tasks: str) -> dict[str, Any]:
    import datasets
    import pyarrow.parquet as pq

    out = tmp / "back"
    proc = _python(server, tmp / "hf-home-read", READ_BACK, repo, tasks, str(out))
    return {
        "proc": proc,
        "files": out / "scores_files",
        "tasks_files": out / "tasks_files",
        "scores": datasets.load_from_disk(str(out / "scores_ds")).to_list(),
        "parquet": pq.read_table(out / "scores_files" / hub.SCORES_FILE).to_pylist(),
        "tasks": datasets.load_from_disk(str(out / "tasks_ds")),
    }


def _all_pushed_bytes(server: HubServer) -> list[bytes]:
    with server.state.lock:
        return [
            b.data for r in server.state.repos.values() for c in r.commits for b in c.files.values()
        ]


def test_push_round_trip(run_dir: Path, server: HubServer, tmp_path: Path) -> None:
    import datasets

    push = _python(
        server, tmp_path / "hf-home", PUSH_CLI, "push", str(run_dir), "--repo-id", "org/trip"
    )
    back = _read_back(server, tmp_path, "org/trip", "org/trip-tasks")

    local = Results.load(run_dir)
    assert (back["files"] / "results.json").read_bytes() == (run_dir / "results.json").read_bytes()
    assert back["scores"] == local.scores == back["parquet"]
    assert len(back["scores"]) == 2 * 1 * 2  # models x priors x temperatures
    tasks = datasets.load_from_disk(str(run_dir / "tasks"))
    assert back["tasks"].to_list() == tasks.to_list()
    assert back["tasks"].features == tasks.features
    assert sorted(p.name for p in (back["files"] / "figures").iterdir()) == sorted(
        p.name for p in (run_dir / "figures").iterdir()
    )

    card = (back["files"] / "README.md").read_text()
    assert "license: cc-by-4.0" in card and "path: scores.parquet" in card
    assert "| rank | model |" in card and "org/trip-tasks" in card
    tcard = (back["tasks_files"] / "README.md").read_text()
    for needle in (
        "dataset_info:",
        "license: cc-by-4.0",
        "bundled:drug_reviews",
        "CC BY 4.0",
        "| labels | label_graph | 0.1 | 2 | 16 | 0 |",
        '"gibbs_sweeps": 0',
    ):
        assert needle in tcard, needle
    assert "scores: " in push.stdout and "org/trip-tasks" in push.stdout
    assert not server.state.repos[("dataset", "org/trip")].private

    for text in (push.stdout, push.stderr, back["proc"].stdout, back["proc"].stderr):
        assert TOKEN not in text
    assert not any(TOKEN.encode() in data for data in _all_pushed_bytes(server))


def test_second_push_replaces(run_dir: Path, server: HubServer, tmp_path: Path) -> None:
    import datasets

    proc = _python(
        server, tmp_path / "hf-home", PUSH_API, str(run_dir), "org/again", "org/again-sampled", "2"
    )
    first, second = json.loads(proc.stdout.strip().splitlines()[-1])
    assert second["commit"] == first["commit"] and second["tasks_commit"] == first["tasks_commit"]
    assert server.num_commits("org/again") == 2  # repo creation + one push
    assert server.num_commits("org/again-sampled") == 3  # creation + shards + card
    assert server.state.repos[("dataset", "org/again")].private

    # A changed run: one score and one figure fewer. Same files rewritten, stale figure gone.
    changed = tmp_path / "changed"
    shutil.copytree(run_dir, changed)
    doc = json.loads((changed / "results.json").read_text())
    doc["scores"] = doc["scores"][:-1]
    gone = sorted((changed / "figures").iterdir())[0]
    gone.unlink()
    doc["conventions"]["figures"].remove(f"figures/{gone.name}")
    (changed / "results.json").write_text(json.dumps(doc, indent=2))
    _python(
        server, tmp_path / "hf-home", PUSH_API, str(changed), "org/again", "org/again-sampled", "1"
    )
    back = _read_back(server, tmp_path, "org/again", "org/again-sampled")
    assert back["scores"] == doc["scores"] == back["parquet"]
    assert not (back["files"] / "figures" / gone.name).exists()
    assert f"figures/{gone.name}" not in server.files("org/again")
    assert back["tasks"].num_rows == datasets.load_from_disk(str(run_dir / "tasks")).num_rows
    assert [p for p in server.files("org/again-sampled") if p.startswith("data/")] == [
        "data/train-00000-of-00001.parquet"
    ]
    assert server.num_commits("org/again") == 3 and server.num_commits("org/again-sampled") == 3
    assert not any(TOKEN.encode() in data for data in _all_pushed_bytes(server))


def test_offline_fails_fast_with_a_clear_message(
    run_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_TOKEN", TOKEN)
    with pytest.raises(hub.HubPushError, match=r"org/x.*HF_HUB_OFFLINE.*HF_ENDPOINT") as info:
        hub.push_run(run_dir, "org/x")
    assert TOKEN not in str(info.value)


def test_unreachable_hub_names_the_repo(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import constants

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "ENDPOINT", f"http://127.0.0.1:{port}")
    with pytest.raises(hub.HubPushError, match=rf"127.0.0.1:{port} to push org/y.*HF_ENDPOINT"):
        hub.push_run(run_dir, "org/y", token=TOKEN)


def test_no_token_is_a_clear_error(run_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    with pytest.raises(hub.HubPushError, match=r"no Hugging Face token to push org/z.*HF_TOKEN"):
        hub.push_run(run_dir, "org/z")


@pytest.mark.parametrize("bad", ["noslash", "a/b/c", "org/", "org/na me", "org/x..y", "org/x.git"])
def test_repo_ids_are_checked(bad: str) -> None:
    with pytest.raises(ValueError, match="ORG/NAME"):
        hub.check_repo_id(bad)


def test_same_repo_for_scores_and_tasks_is_refused(run_dir: Path) -> None:
    with pytest.raises(ValueError, match="must differ"):
        hub.push_run(run_dir, "org/a", tasks_repo_id="org/a")


def test_licenses_map_to_hub_ids() -> None:
    assert hub.hub_license("CC BY 4.0") == "cc-by-4.0"
    assert hub.hub_license("MIT License") == "mit"
    assert hub.hub_license("Apache 2.0") == hub.hub_license("apache-2.0") == "apache-2.0"
    assert hub.hub_license(None) is None and hub.hub_license("my own terms") is None


def test_scores_table_keeps_every_column_and_row() -> None:
    recs = [
        {"model": "a", "mean": 1.5, "num_pairs": None},
        {"model": "b", "mean": 2.0, "num_pairs": 10, "extra": "x"},
    ]
    table = hub.scores_table(recs)
    assert table.column_names == ["model", "mean", "num_pairs", "extra"]
    assert table.to_pylist() == [{**recs[0], "extra": None}, recs[1]]
    assert str(table.schema.field("num_pairs").type) == "int64"
    assert str(hub.scores_table(recs[:1]).schema.field("num_pairs").type) == "int64"
    assert str(hub.scores_table([{"n": "many"}]).schema.field("n").type) == "string"


def test_tasks_card_merge_is_idempotent(run_dir: Path) -> None:
    results = json.loads((run_dir / "results.json").read_text())
    pushed = (
        "---\nconfigs:\n- config_name: default\n  data_files:\n  - split: train\n"
        "    path: data/train-*\n---\n"
    )
    body = hub.tasks_card_body(results, "org/t", "org/s", 1920)
    once = hub.merge_tasks_card(pushed, results, body)
    assert hub.merge_tasks_card(once, results, body) == once
    assert once.index("configs:") < once.index("license: cc-by-4.0") < once.index("# tp-harness")


def test_push_parser() -> None:
    from tp_harness import cli

    args = cli.build_parser().parse_args(["push", "runs/x", "--repo-id", "org/n", "--private"])
    assert (args.results_dir, args.repo_id, args.tasks_repo_id, args.private) == (
        "runs/x",
        "org/n",
        None,
        True,
    )
    assert args.func is cli._cmd_push


def test_evaluate_push_to_hub_from_the_cli(server: HubServer, tmp_path: Path) -> None:
    """``tp-harness evaluate --push-to-hub`` pushes scores and tasks; the token never shows."""
    cmd = [
        sys.executable,
        "-m",
        "tp_harness",
        "evaluate",
        "--model",
        "tfidf-lsa:dim=8",
        "--model",
        "tfidf-lsa:dim=3",
        "--prior",
        "labels",
        "--num-examples",
        "90",
        "--num-tasks",
        "6",
        "--probe",
        "ridge",
        "--no-progress",
        "--min-class-fraction",
        "0",
        "--output-dir",
        str(tmp_path / "run"),
        "--cache-dir",
        str(tmp_path / "cache"),
        "--push-to-hub",
        "cli-org/cli-scores",
    ]
    proc = subprocess.run(
        cmd,
        env=_env(server, tmp_path / "hf-home"),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "cli-org/cli-scores" in proc.stdout and TOKEN not in proc.stdout + proc.stderr
    with server.state.lock:
        repos = set(server.state.repos)
    assert any("cli-org/cli-scores" in str(r) for r in repos)
    assert any("cli-org/cli-scores-tasks" in str(r) for r in repos)


# ----------------------------------------------------------------------------- issue 16 (5, 10)


def test_a_long_repo_id_is_refused_before_any_upload(server: HubServer, run_dir: Path) -> None:
    """Finding 5: a 92-character id pushed the scores, then failed on the '-tasks' name."""
    repo = "org/" + "a" * 88  # 92 characters: '-tasks' makes 98 > 96
    before = len(server.state.requests)
    with pytest.raises(ValueError, match=r"98 characters.*at most 96.*--tasks-repo-id"):
        hub.check_push(repo, token=TOKEN)
    with pytest.raises(ValueError, match="at most 96"):
        hub.push_run(run_dir, repo, token=TOKEN)
    assert len(server.state.requests) == before  # nothing was sent


def test_a_failed_scores_push_says_what_went_up(
    run_dir: Path, server: HubServer, tmp_path: Path
) -> None:
    """Finding 5: a 500 after the first upload did not say what was already pushed."""
    server.state.fail_commits.add("org/half")
    try:
        code = (
            "import sys\nfrom tp_harness.publishing.hub import push_run\n"
            "try:\n    push_run(sys.argv[1], 'org/half')\nexcept OSError as e:\n"
            "    print(e); sys.exit(3)\n"
        )
        proc = subprocess.run(
            [sys.executable, "-c", code, str(run_dir)],
            env=_env(server, tmp_path / "hf-home"),
            capture_output=True,
            text=True,
            timeout=240,
        )
    finally:
        server.state.fail_commits.discard("org/half")
    assert proc.returncode == 3, proc.stderr[-2000:]
    msg = proc.stdout
    assert "Already pushed: the sampled tasks' data to org/half-tasks" in msg
    assert f"tp-harness push {run_dir} --repo-id org/half" in msg and TOKEN not in msg
    assert server.num_commits("org/half") <= 1  # created at most; no scores commit
    # the retry it suggests completes the push
    _python(server, tmp_path / "hf-home", PUSH_API, str(run_dir), "org/half", "org/half-tasks", "1")
    assert "results.json" in server.files("org/half")


def test_nothing_pushed_holds_a_local_path(run_dir: Path, server: HubServer) -> None:
    """Finding 10: pushed cards and results.json held absolute local paths."""
    import getpass

    pushed = b"\n".join(_all_pushed_bytes(server)).decode("utf-8", "replace")
    assert pushed  # earlier tests pushed this run
    for private in (str(run_dir), str(Path.home()), os.getcwd(), sys.prefix, "/tmp/"):
        assert private not in pushed, private
    user = getpass.getuser()
    assert f"/{user}/" not in pushed


def test_a_legacy_run_with_paths_is_redacted_on_push(run_dir: Path, tmp_path: Path) -> None:
    from tp_harness.publishing.redact import local_roots, private_leaks

    legacy = tmp_path / "legacy"
    shutil.copytree(run_dir, legacy)
    doc = json.loads((legacy / "results.json").read_text())
    doc["config"]["cache_dir"] = str(tmp_path / "cache")
    doc["config"]["output_dir"] = str(legacy)
    raw = json.dumps(doc).encode()
    public = hub._public_results(legacy, raw, local_roots(legacy))
    assert public != raw and not private_leaks(public.decode(), local_roots(legacy))
    assert json.loads(public)["config"]["output_dir"] == "."


LOAD_BACK = """
import json, sys
from tp_harness.evaluation.results import Results
res = Results.load(sys.argv[1])
tables = res.to_pandas()
print(json.dumps({"scores": len(res.scores), "rows": len(tables["scores"]),
                  "probe_rows": len(tables["probes"]),
                  "columns": sorted(tables["scores"].columns)}))
"""


def test_results_load_from_a_pushed_repo(run_dir: Path, server: HubServer, tmp_path: Path) -> None:
    """Issue 17 (Python access): ``Results.load("ORG/NAME")`` reads a pushed run back."""
    _python(server, tmp_path / "hf-home", PUSH_API, str(run_dir), "org/loadme", "org/loadme-t", "1")
    proc = _python(server, tmp_path / "hf-home", LOAD_BACK, "org/loadme")
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    local = Results.load(run_dir)
    assert got["scores"] == got["rows"] == len(local.scores)
    assert got["probe_rows"] == len(local.probes)
    assert {"mean_per_pair_low", "mean_per_pair_high", "model", "prior"} <= set(got["columns"])
