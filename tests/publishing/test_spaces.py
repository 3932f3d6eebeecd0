"""Deploying the leaderboard and the metric as Spaces (issue 17, items 3 and 4).

The Hub steps run against the loopback Hub server in subprocesses (``huggingface_hub`` and
``evaluate`` read ``HF_ENDPOINT`` at import time). The slow test builds the leaderboard
Space exactly as a Gradio Space does: a fresh venv, ``gradio==sdk_version``, then
``pip install -r requirements.txt`` whose tp-harness line is a ``git+file://`` clone of
this working tree, then ``python app.py``, checked over HTTP and in headless Chromium.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.hub_server import HubServer, client_env
from tests.launch import fresh_venv, pip_install
from tests.publishing.runs import RANKED, write_run
from tp_harness.publishing import spaces

TOKEN = "dummy-space-token"
ROOT = Path(__file__).resolve().parents[2]
PIN = "tp-harness @ git+https://example.org/org/tp-harness@0123abcd"
CLI = "import sys\nfrom tp_harness.cli import main\nsys.exit(main())\n"
READ_SPACE = """
import sys
from huggingface_hub import snapshot_download
snapshot_download(sys.argv[1], repo_type="space", local_dir=sys.argv[2])
"""
LOAD_METRIC = """
import json, sys
import numpy as np
import evaluate
m = evaluate.load(sys.argv[1])
x, p, y = np.load(sys.argv[2]), np.load(sys.argv[3]), np.load(sys.argv[4])
out = m.compute(predictions=x, references=p, temperature=[0.1, 1.0])
lab = m.compute(predictions=x, references=y, prior_kernel="label_graph", temperature=0.5)
try:
    m.compute(predictions=x, references=y, temperature=0.5)
    refused = ""
except ValueError as err:
    refused = str(err)
print(json.dumps({"out": out, "labels": lab, "refused": refused}))
"""


# --------------------------------------------------------------------------- pure parts


def test_requirement_must_pin_tp_harness(monkeypatch: pytest.MonkeyPatch) -> None:
    assert spaces.check_requirement(PIN) == PIN
    assert spaces.check_requirement("tp-harness==0.1.0") == "tp-harness==0.1.0"
    extra = "tp_harness[space] @ git+https://h/o/r@v1"
    assert spaces.check_requirement(extra) == extra
    for bad, needle in (
        ("numpy>=1", "must name the tp-harness package"),
        ("tp-harness", "pins nothing"),
        ("tp-harness @@ nope", "is not a pip requirement"),
        (spaces.PLACEHOLDER, "placeholder"),
    ):
        with pytest.raises(ValueError, match=needle) as err:
            spaces.check_requirement(bad)
        assert "--requirement" in str(err.value)
    monkeypatch.setattr(spaces, "installed_requirement", lambda: None)
    with pytest.raises(ValueError, match=r"--requirement is needed: tp-harness is not on PyPI"):
        spaces.check_requirement(None)


class _Dist:
    def __init__(self, direct_url: dict[str, Any] | None) -> None:
        self.version = "0.1.0"
        self._raw = None if direct_url is None else json.dumps(direct_url)

    def read_text(self, name: str) -> str | None:
        return self._raw if name == "direct_url.json" else None


@pytest.mark.parametrize(
    ("direct_url", "expected"),
    [
        (None, "tp-harness==0.1.0"),  # from an index
        (
            {
                "url": "https://git.example/o/tp-harness",
                "vcs_info": {"vcs": "git", "commit_id": "abc"},
            },
            "tp-harness @ git+https://git.example/o/tp-harness@abc",
        ),
        ({"url": "file:///tmp/x.whl", "archive_info": {}}, None),  # a local wheel
        ({"url": "file:///tmp/clone", "vcs_info": {"vcs": "git", "commit_id": "abc"}}, None),
    ],
)
def test_installed_requirement(
    monkeypatch: pytest.MonkeyPatch, direct_url: dict[str, Any] | None, expected: str | None
) -> None:
    monkeypatch.setattr(spaces.metadata, "distribution", lambda name: _Dist(direct_url))
    assert spaces.installed_requirement() == expected


def test_installed_requirement_of_an_editable_checkout(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    subprocess.run(
        [
            "git",
            "-C",
            str(tmp_path),
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@t",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "x",
        ],
        check=True,
    )
    sha = subprocess.run(
        ["git", "-C", str(tmp_path), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    editable = {"url": f"file://{tmp_path}", "dir_info": {"editable": True}}
    monkeypatch.setattr(spaces.metadata, "distribution", lambda name: _Dist(editable))
    assert spaces.installed_requirement() is None  # no remote: nothing a Space can reach
    remote = "https://git.example/org/tp-harness.git"
    subprocess.run(["git", "-C", str(tmp_path), "remote", "add", "origin", remote], check=True)
    assert spaces.installed_requirement() == f"tp-harness @ git+{remote}@{sha}"


def test_pin_requirements_replaces_only_the_tp_harness_line() -> None:
    template = (spaces.template_dir("spaces/leaderboard") / "requirements.txt").read_text()
    pinned = spaces.pin_requirements(template, PIN)
    before, after = template.splitlines(), pinned.splitlines()
    assert len(before) == len(after)
    changed = [(a, b) for a, b in zip(before, after, strict=True) if a != b]
    assert changed == [(spaces.PLACEHOLDER, PIN)]
    assert spaces.pin_requirements("pandas\n", PIN) == f"pandas\n{PIN}\n"


def _runs(root: Path) -> Path:
    write_run(root / "toy")
    write_run(root / "other", dataset="other", models={"vit": 0.03, "tfidf": 0.01})
    # a local path, as results of a run written before redaction existed would hold
    doc = json.loads((root / "toy" / "results.json").read_text())
    doc.setdefault("config", {})["cache_dir"] = str(root / "toy" / "cache")
    (root / "toy" / "results.json").write_text(json.dumps(doc))
    return root


def test_leaderboard_files_from_a_folder_of_runs(tmp_path: Path) -> None:
    space = spaces.leaderboard_files(_runs(tmp_path / "runs"), requirement=PIN, title="My board")
    files = space.with_record()
    assert sorted(files) == sorted(
        [
            "README.md",
            "app.py",
            "requirements.txt",
            spaces.SPACE_FILE,
            "runs/other/results.json",
            "runs/toy/results.json",
        ]
    )
    meta, body = spaces.split_front_matter(files["README.md"].decode())
    assert meta["title"] == "My board" and meta["sdk"] == "gradio" and meta["app_file"] == "app.py"
    assert meta["sdk_version"] == _installed_gradio()
    assert "# tp-harness leaderboard" in body and meta["emoji"] == "📐"
    assert PIN in files["requirements.txt"].decode().splitlines()
    record = json.loads(files[spaces.SPACE_FILE])
    assert record["source"] == "runs" and record["requirement"] == PIN
    assert record["files"] == sorted(files)
    toy = files["runs/toy/results.json"].decode()
    assert str(tmp_path) not in toy and json.loads(toy)["config"]["cache_dir"] == "cache"
    assert (
        json.loads(toy)["scores"]
        == json.loads((tmp_path / "runs" / "toy" / "results.json").read_text())["scores"]
    )
    app = (spaces.template_dir("spaces/leaderboard") / "app.py").read_bytes()
    assert files["app.py"] == app


def _installed_gradio() -> str:
    from importlib import metadata

    return metadata.version("gradio")


def test_leaderboard_files_refuse_bad_sources(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="neither an existing run folder nor a Hub dataset"):
        spaces.leaderboard_files(str(tmp_path / "missing/deep/x"), requirement=PIN)
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "results.json").write_text("{not json")
    with pytest.raises(ValueError, match="cannot be read"):
        spaces.leaderboard_files(bad, requirement=PIN)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match=r"no results\.json"):
        spaces.leaderboard_files(empty, requirement=PIN)
    hub = spaces.leaderboard_files("org/results", requirement=PIN)
    assert not any(p.startswith("runs/") for p in hub.files)
    assert hub.record["source"] == "org/results"


def test_metric_files() -> None:
    space = spaces.metric_files("org/task_prior_v2", requirement=PIN)
    template = spaces.template_dir("metrics/task_prior")
    assert sorted(space.files) == ["README.md", "app.py", "requirements.txt", "task_prior_v2.py"]
    assert space.files["task_prior_v2.py"] == (template / "task_prior.py").read_bytes()
    card = space.files["README.md"].decode()
    meta, _ = spaces.split_front_matter(card)
    assert meta["sdk"] == "gradio" and meta["sdk_version"] == _installed_gradio()
    assert meta["title"] == "Task Prior" and "metric" in meta["tags"]
    assert 'evaluate.load("org/task_prior_v2")' in card and '"metrics/task_prior"' not in card
    with pytest.raises(ValueError, match="must be a Python identifier"):
        spaces.metric_files("org/task-prior", requirement=PIN)


def test_the_shipped_cards_name_a_gradio_the_space_extra_allows() -> None:
    """The cards' ``sdk_version`` (what a Space installs) satisfies the ``space`` extra's
    gradio range, the one the apps are tested with (a deploy writes the installed one)."""
    from packaging.requirements import Requirement

    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    extra = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    (gradio,) = [
        Requirement(r) for r in extra["optional-dependencies"]["space"] if r.startswith("gradio")
    ]
    for name in ("spaces/leaderboard", "metrics/task_prior"):
        meta, _ = spaces.split_front_matter((ROOT / name / "README.md").read_text())
        assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py", name
        assert gradio.specifier.contains(str(meta["sdk_version"])), (name, meta["sdk_version"])


# --------------------------------------------------------------------------- the Hub


@pytest.fixture(scope="module")
def server():
    with HubServer(token=TOKEN, lifetime_s=900) as s:
        yield s


def _env(server: HubServer, home: Path) -> dict[str, str]:
    return client_env(server.url, TOKEN, home, ROOT)


def _python(
    server: HubServer, home: Path, code: str, *args: str, ok: bool = True
) -> subprocess.CompletedProcess:
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        env=_env(server, home),
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    if ok:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def _read_space(server: HubServer, tmp: Path, repo: str) -> Path:
    out = tmp / f"space-{repo.replace('/', '_')}-{time.monotonic_ns()}"
    _python(server, tmp / "hf-read", READ_SPACE, repo, str(out))
    return out


def test_leaderboard_deploy_round_trip(server: HubServer, tmp_path: Path) -> None:
    runs = _runs(tmp_path / "runs")
    deploy = ["leaderboard", "deploy", "org/board", str(runs), "--requirement", PIN]
    first = _python(server, tmp_path / "hf", CLI, *deploy, "--private", "--title", "Board")
    assert "spaces/org/board" in first.stdout and PIN in first.stdout
    repo = server.state.repos[("space", "org/board")]
    assert repo.private and repo.sdk == "gradio"
    back = _read_space(server, tmp_path, "org/board")
    local = spaces.leaderboard_files(runs, requirement=PIN, title="Board").with_record()
    for name, data in local.items():
        assert (back / name).read_bytes() == data, name
    commits = server.num_commits("org/board", "space")

    # The same deploy again: nothing new. A user's own file stays; a run left out goes.
    _python(server, tmp_path / "hf", CLI, *deploy, "--title", "Board")
    assert server.num_commits("org/board", "space") == commits
    _python(
        server,
        tmp_path / "hf",
        "import sys\nfrom huggingface_hub import HfApi\n"
        "HfApi().upload_file(path_or_fileobj=b'mine', path_in_repo='runs/notes.txt', "
        "repo_id='org/board', repo_type='space')",
    )
    shutil.rmtree(runs / "other")
    again = _python(server, tmp_path / "hf", CLI, *deploy)
    assert "1 stale deleted" in again.stdout
    files = server.files("org/board", "space")
    assert "runs/other/results.json" not in files and "runs/toy/results.json" in files
    assert files["runs/notes.txt"] == b"mine"
    meta, _ = spaces.split_front_matter(files["README.md"].decode())
    assert meta["title"] == spaces.LEADERBOARD_TITLE
    for text in (first.stdout, first.stderr, again.stdout, again.stderr):
        assert TOKEN not in text


def test_leaderboard_deploy_of_a_hub_results_repo(server: HubServer, tmp_path: Path) -> None:
    def deploy(source: str, ok: bool) -> subprocess.CompletedProcess:
        argv = ["leaderboard", "deploy", "org/board-hub", source, "--requirement", PIN]
        return _python(server, tmp_path / "hf", CLI, *argv, ok=ok)

    missing = deploy("org/no-such-results", ok=False)
    assert missing.returncode == 2 and "org/no-such-results" in missing.stderr
    assert ("space", "org/board-hub") not in server.state.repos  # checked before creating
    results = json.dumps({"schema": 1})
    with server.state.lock:
        from tests.hub_server import Blob

        server.state.create("dataset", "org/results", False, "").commit(
            "results", {"results.json": Blob(results.encode(), False)}
        )
    deploy("org/results", ok=True)
    files = server.files("org/board-hub", "space")
    assert json.loads(files[spaces.SPACE_FILE])["source"] == "org/results"
    assert not any(p.startswith("runs/") for p in files)


def test_deploy_errors_come_before_any_request(server: HubServer, tmp_path: Path) -> None:
    before = len(server.state.requests)
    cases = [
        (["leaderboard", "deploy", "bad id", str(tmp_path)], "ORG/NAME must read ORG/NAME"),
        (["leaderboard", "deploy", "org/x", str(tmp_path / "nope")], "neither an existing"),
        (["leaderboard", "deploy", "org/x", "org/r", "--requirement", "numpy"], "must name"),
        (["metric", "deploy", "org/bad-name", "--requirement", PIN], "Python identifier"),
    ]
    for argv, needle in cases:
        proc = _python(server, tmp_path / "hf", CLI, *argv, ok=False)
        assert proc.returncode == 2 and needle in proc.stderr, (argv, proc.stderr)
        assert "Traceback" not in proc.stderr
    assert len(server.state.requests) == before


def test_metric_deploy_loads_back_with_evaluate(server: HubServer, tmp_path: Path) -> None:
    """``evaluate.load("ORG/NAME")`` through HF_ENDPOINT fetches NAME.py from the Space and
    returns the library's numbers."""
    import tp_harness

    deploy = _python(
        server, tmp_path / "hf", CLI, "metric", "deploy", "org/task_prior", "--requirement", PIN
    )
    assert 'evaluate.load("org/task_prior")' in deploy.stdout
    rng = np.random.default_rng(3)
    x, p = rng.normal(size=(90, 7)), rng.normal(size=(90, 5)) + 0.3
    y = rng.integers(0, 3, 90)
    for name, a in (("x", x), ("p", p), ("y", y)):
        np.save(tmp_path / f"{name}.npy", a)
    proc = _python(
        server,
        tmp_path / "hf-evaluate",
        LOAD_METRIC,
        "org/task_prior",
        *(str(tmp_path / f"{n}.npy") for n in ("x", "p", "y")),
    )
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert any("/spaces/org/task_prior/resolve/" in r for r in server.state.requests)
    x32, p32 = x.astype(np.float32), p.astype(np.float32)
    ref = tp_harness.task_prior_moments(x32, p32, [0.1, 1.0])["model"]
    np.testing.assert_allclose(got["out"]["mean"], [ref[t].mean for t in (0.1, 1.0)], rtol=1e-6)
    np.testing.assert_allclose(
        got["out"]["variance"], [ref[t].variance for t in (0.1, 1.0)], rtol=1e-6
    )
    lab = tp_harness.task_prior_moments(x.astype(np.float32), y, 0.5, prior_kernel="label_graph")
    np.testing.assert_allclose(got["labels"]["mean"], float(lab.mean), rtol=1e-6)
    assert "label_graph" in got["refused"]


# --------------------------------------------------------------------------- as a Space


def _tree_clone(tmp: Path) -> tuple[Path, str]:
    """A git repo holding this working tree (tracked and untracked, not ignored files)."""
    listed = subprocess.run(
        ["git", "-C", str(ROOT), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    clone = tmp / "tp-harness-clone"
    for rel in filter(None, (p.decode() for p in listed)):
        src = ROOT / rel
        if src.is_file():
            (clone / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, clone / rel)
    git = ["git", "-C", str(clone), "-c", "user.name=test", "-c", "user.email=t@t"]
    subprocess.run([*git[:3], "init", "-q"], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "working tree"], check=True)
    sha = subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True).stdout
    return clone, sha.strip()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_http(url: str, proc: subprocess.Popen, log: Path, timeout: float = 240) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(
                f"the Space app exited ({proc.returncode}): {log.read_text()[-3000:]}"
            )
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                return int(r.status)
        except OSError:
            time.sleep(1)
    raise AssertionError(f"no answer from {url}: {log.read_text()[-3000:]}")


@pytest.mark.slow
def test_leaderboard_space_builds_and_serves(server: HubServer, tmp_path: Path) -> None:
    """The Space as the Hub builds it: gradio==sdk_version, then requirements.txt (the
    tp-harness line a git+file:// clone of this tree), then ``python app.py``."""
    from tests.publishing.browser import CHROMIUM_ARGS, chromium

    executable = chromium()
    sync_api = pytest.importorskip("playwright.sync_api")
    clone, sha = _tree_clone(tmp_path)
    pin = f"tp-harness @ git+file://{clone}@{sha}"
    runs = tmp_path / "runs"
    write_run(runs / "toy")
    _python(
        server,
        tmp_path / "hf",
        CLI,
        "leaderboard",
        "deploy",
        "org/lb",
        str(runs),
        "--requirement",
        pin,
    )
    space = _read_space(server, tmp_path, "org/lb")
    meta, _ = spaces.split_front_matter((space / "README.md").read_text())
    assert pin in (space / "requirements.txt").read_text().splitlines()

    env_dir = tmp_path / "space-venv"
    py = fresh_venv(env_dir)
    pip_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    pip_env["PIP_RETRIES"] = "0"  # the CPU torch index is unreachable here: fail it fast

    def pip(*args: str) -> None:
        pip_install(py, *args, env=pip_env, cwd=space)

    pip("-U", "pip")  # a Space's builder upgrades pip first (23.x rejects file:/// pins)
    pip("torch==2.13.0")  # what the CPU index line gives a Space; here from local disk
    pip(f"gradio=={meta['sdk_version']}")  # the Space builder's first step
    pip("-r", "requirements.txt")  # its second

    port = _free_port()
    log = tmp_path / "space.log"
    run_env = {
        **{k: v for k, v in pip_env.items() if not k.startswith(("HF_", "TP_"))},
        "GRADIO_SERVER_NAME": "127.0.0.1",
        "GRADIO_SERVER_PORT": str(port),
        "GRADIO_ANALYTICS_ENABLED": "False",
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "space-hf"),
    }
    with log.open("w") as out:
        app = subprocess.Popen(
            [str(py), "app.py"], cwd=space, env=run_env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        url = f"http://127.0.0.1:{port}/"
        assert _wait_http(url, app, log) == 200
        where = subprocess.run(
            [str(py), "-c", "import tp_harness; print(tp_harness.__file__)"],
            capture_output=True,
            text=True,
            env=run_env,
            cwd=tmp_path,
        ).stdout
        assert str(env_dir) in where and str(ROOT) not in where
        with sync_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1400, "height": 1100})
            page.set_default_timeout(60_000)
            page.goto(url)
            page.locator("#lb-table [role=gridcell]").first.wait_for(state="attached")
            deadline = time.monotonic() + 60
            while True:
                rows = page.eval_on_selector_all(
                    "#lb-table [role=grid] [role=row]",
                    "rows => rows.filter(r => r.offsetParent !== null)"
                    ".map(r => Array.from(r.querySelectorAll('[role=gridcell]'))"
                    ".map(c => c.innerText.trim())).filter(c => c.length > 0)",
                )
                if len(rows) >= len(RANKED) or time.monotonic() > deadline:
                    break
                page.wait_for_timeout(300)
            page.screenshot(path=str(tmp_path / "space.png"), full_page=True)
            browser.close()
        assert [r[1] for r in rows[: len(RANKED)]] == RANKED  # rank, model, ...
        assert [r[0] for r in rows[: len(RANKED)]] == [str(i) for i in range(1, 6)]
    finally:
        app.terminate()
        app.wait(timeout=30)
