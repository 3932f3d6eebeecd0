"""Deploy the leaderboard and the ``task_prior`` metric as Hugging Face Spaces.

``tp-harness leaderboard deploy ORG/NAME SOURCE`` and ``tp-harness metric deploy ORG/NAME``
upload a folder shipped with the package (``spaces/leaderboard/``, ``metrics/task_prior/``
in the repository; package data ``tp_harness/spaces``, ``tp_harness/metrics`` in the wheel)
to a Gradio Space, with three things filled in:

- ``README.md``: the YAML front matter a Space reads (``title``, ``sdk: gradio``,
  ``sdk_version``, ``app_file``);
- ``requirements.txt``: the install recipe. A Gradio Space installs
  ``gradio==sdk_version`` first, then ``pip install -r requirements.txt``, then copies the
  repo and runs ``python app.py``. tp-harness is not on PyPI, so its line is a pinned
  requirement (``tp-harness @ git+https://HOST/ORG/tp-harness@COMMIT``): ``requirement=``,
  else the VCS URL and commit this copy of tp-harness was installed from (PEP 610
  ``direct_url.json``), else an error before anything is uploaded;
- ``tp-harness-space.json``: what deploy wrote (kind, source, requirement, version, files),
  so that a later deploy deletes only the files an earlier one wrote and no longer needs.

A leaderboard SOURCE is a run folder or a folder of runs (their ``results.json`` files,
redacted of local paths, are copied under ``runs/``) or a Hub dataset results repo (the
Space reads it when it starts; a private one needs an ``HF_TOKEN`` secret on the Space).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

from ..evaluation.hub_access import hub_offline
from ..evaluation.results import RESULTS_FILE, Results
from .hub import (
    _check_private,
    _endpoint,
    _hub_errors,
    _public_results,
    _unreachable,
    check_repo_id,
    commit_files,
    resolve_token,
)

SPACE_FILE = "tp-harness-space.json"
RUNS_DIR = "runs"
README, APP, REQUIREMENTS = "README.md", "app.py", "requirements.txt"
PACKAGE = "tp-harness"
LEADERBOARD_TITLE = "tp-harness leaderboard"
METRIC_SCRIPT = "task_prior.py"
#: A placeholder that reads as a pin; deploy never uploads it.
PLACEHOLDER = "tp-harness @ git+https://HOST/ORG/tp-harness@COMMIT"
PIN_EXAMPLE = "tp-harness @ git+https://github.com/ORG/tp-harness@COMMIT"
_FRONT = re.compile(r"\A---\n(.*?\n)---\n", re.S)


# ------------------------------------------------------------------ shipped folders


def template_dir(name: str) -> Path:
    """A shipped folder: ``spaces/leaderboard`` or ``metrics/task_prior``. Package data
    ``tp_harness/<name>`` in an installed wheel, else the checkout's top-level folder."""
    from importlib.resources import files

    folder = files("tp_harness").joinpath(*name.split("/"))
    if folder.is_dir():
        return Path(str(folder))
    repo = Path(__file__).resolve().parents[2] / name
    if not repo.is_dir():
        raise FileNotFoundError(f"the shipped folder {name} is missing from this install")
    return repo


def _read_template(name: str) -> dict[str, bytes]:
    folder = template_dir(name)
    return {
        p.name: p.read_bytes()
        for p in sorted(folder.iterdir())
        if p.is_file() and p.suffix in (".md", ".py", ".txt")
    }


# ------------------------------------------------------------------ the requirement pin


def _git(root: Path, *args: str) -> str | None:
    import subprocess

    try:
        out = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() if out.returncode == 0 and out.stdout.strip() else None


def installed_requirement() -> str | None:
    """A pin of the tp-harness this process runs, when its source is public: the VCS URL
    and commit it was installed from (``pip install git+URL``), or the ``origin`` remote
    and ``HEAD`` of an editable checkout. ``None`` otherwise (a local wheel or folder)."""
    try:
        dist = metadata.distribution(PACKAGE)
    except metadata.PackageNotFoundError:
        return None
    raw = dist.read_text("direct_url.json")
    if not raw:  # installed from an index
        return f"{PACKAGE}=={dist.version}"
    info = json.loads(raw)
    url = str(info.get("url", ""))
    vcs = info.get("vcs_info")
    if isinstance(vcs, dict) and not url.startswith("file:"):
        return f"{PACKAGE} @ {vcs.get('vcs', 'git')}+{url}@{vcs['commit_id']}"
    if info.get("dir_info", {}).get("editable") and url.startswith("file://"):
        root = Path(url.removeprefix("file://"))
        remote, commit = _git(root, "remote", "get-url", "origin"), _git(root, "rev-parse", "HEAD")
        if remote and commit and "://" in remote and not remote.startswith("file:"):
            return f"{PACKAGE} @ git+{remote}@{commit}"
    return None


def check_requirement(requirement: str | None, flag: str = "--requirement") -> str:
    """The tp-harness requirement line for a Space (see the module docstring); raises
    ``ValueError`` naming ``flag`` when there is none or it does not name tp-harness."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    spec = requirement if requirement is not None else installed_requirement()
    if spec is None:
        raise ValueError(
            f"{flag} is needed: tp-harness is not on PyPI and this copy was installed from a "
            "local folder or wheel, which a Space cannot reach. Pass a pinned requirement, "
            f"e.g. {flag} '{PIN_EXAMPLE}'."
        )
    try:
        req = Requirement(spec.strip())
    except InvalidRequirement as err:
        raise ValueError(f"{flag} {spec!r} is not a pip requirement: {err}") from None
    if canonicalize_name(req.name) != PACKAGE:
        raise ValueError(f"{flag} must name the tp-harness package; got {req.name!r}")
    if spec.strip() == PLACEHOLDER:
        raise ValueError(f"{flag} is the template's placeholder; pass a real URL and commit")
    if req.url is None and not req.specifier:
        raise ValueError(
            f"{flag} {spec!r} pins nothing, and tp-harness is not on PyPI: pass a URL "
            f"requirement, e.g. {flag} '{PIN_EXAMPLE}'."
        )
    return str(req)


def pin_requirements(text: str, requirement: str) -> str:
    """``requirements.txt`` with its tp-harness line replaced by ``requirement``."""
    from packaging.requirements import InvalidRequirement, Requirement
    from packaging.utils import canonicalize_name

    lines, found = [], False
    for line in text.splitlines():
        body = line.split(" #", 1)[0].strip()
        name = None
        if body and not body.startswith(("#", "-")):
            try:
                name = canonicalize_name(Requirement(body).name)
            except InvalidRequirement:
                name = None
        if name == PACKAGE:
            lines.append(requirement)
            found = True
        else:
            lines.append(line)
    if not found:
        lines.append(requirement)
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------ cards


def split_front_matter(text: str) -> tuple[dict[str, Any], str]:
    """``(YAML front matter, body)`` of a card."""
    import yaml

    m = _FRONT.match(text)
    if not m:
        return {}, text
    return dict(yaml.safe_load(m.group(1)) or {}), text[m.end() :]


def with_front_matter(text: str, **updates: Any) -> str:
    """The card with ``updates`` set in its front matter (other keys kept, in order)."""
    import yaml

    meta, body = split_front_matter(text)
    meta.update({k: v for k, v in updates.items() if v is not None})
    dumped = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=88)
    return f"---\n{dumped}---\n{body}"


def sdk_version(template_card: str, requested: str | None = None) -> str:
    """``requested``, else the installed gradio when it is 6.x (what ran here), else the
    version the shipped card names."""
    if requested:
        return requested
    try:
        installed = metadata.version("gradio")
    except metadata.PackageNotFoundError:
        installed = ""
    if installed.split(".")[0] == "6":
        return installed
    return str(split_front_matter(template_card)[0]["sdk_version"])


# ------------------------------------------------------------------ folders to upload


@dataclass(frozen=True)
class SpaceFiles:
    """What a deploy uploads: ``files`` (path in the Space -> bytes) and its record."""

    kind: str
    files: dict[str, bytes]
    record: dict[str, Any] = field(default_factory=dict)

    def with_record(self) -> dict[str, bytes]:
        record = {**self.record, "files": sorted([*self.files, SPACE_FILE])}
        return {**self.files, SPACE_FILE: (json.dumps(record, indent=2) + "\n").encode()}


def _record(kind: str, source: str, requirement: str) -> dict[str, Any]:
    try:
        version = metadata.version(PACKAGE)
    except metadata.PackageNotFoundError:
        version = "unknown"
    return {"kind": kind, "source": source, "requirement": requirement, "tp_harness": version}


def _local_runs(root: Path) -> dict[str, bytes]:
    """``runs/<run>/results.json`` for every run under ``root`` (redacted of local paths);
    an unreadable run is an error, not skipped."""
    from .leaderboard import find_runs
    from .redact import local_roots

    base = root.parent if root.is_file() else root
    files: dict[str, bytes] = {}
    for run in find_runs(root):
        try:
            Results.load(run)
        except (ValueError, TypeError, KeyError, OSError) as err:
            raise ValueError(
                f"{run / RESULTS_FILE} cannot be read ({type(err).__name__}: {err}); "
                "rerun `tp-harness evaluate` into that folder or leave it out of SOURCE."
            ) from None
        rel = run.relative_to(base).as_posix()
        name = (base.resolve().name if rel == "." else rel) or "run"
        roots = local_roots(run)
        files[f"{RUNS_DIR}/{name}/{RESULTS_FILE}"] = _public_results(
            run, (run / RESULTS_FILE).read_bytes(), roots
        )
        _check_private(files, roots, run)
    return files


def leaderboard_files(
    source: str | Path,
    *,
    requirement: str | None = None,
    title: str | None = None,
    sdk: str | None = None,
) -> SpaceFiles:
    """The leaderboard Space for ``source`` (a run folder, a folder of runs, or a Hub
    dataset repo id, which is not checked here). Raises before anything is uploaded."""
    req = check_requirement(requirement)
    template = _read_template("spaces/leaderboard")
    path = Path(source).expanduser()
    if path.exists():
        files = _local_runs(path)
        where = RUNS_DIR
    else:
        where = str(source).removeprefix("hf://").removeprefix("datasets/")
        try:
            check_repo_id(where, "SOURCE")
        except ValueError:
            raise ValueError(
                f"SOURCE {str(source)!r} is neither an existing run folder nor a Hub dataset "
                "repo id ORG/NAME."
            ) from None
        files = {}
    card = template[README].decode()
    files[README] = with_front_matter(
        card, title=title or LEADERBOARD_TITLE, sdk="gradio", sdk_version=sdk_version(card, sdk)
    ).encode()
    files[APP] = template[APP]
    files[REQUIREMENTS] = pin_requirements(template[REQUIREMENTS].decode(), req).encode()
    return SpaceFiles("leaderboard", files, _record("leaderboard", where, req))


def metric_files(
    repo_id: str,
    *,
    requirement: str | None = None,
    title: str | None = None,
    sdk: str | None = None,
) -> SpaceFiles:
    """The metric Space ``ORG/NAME``: the module script as ``NAME.py`` (the file
    ``evaluate.load("ORG/NAME")`` fetches), the app, the card and the requirements."""
    req = check_requirement(requirement)
    check_repo_id(repo_id, "ORG/NAME")
    name = repo_id.split("/")[1]
    if not name.isidentifier():
        raise ValueError(
            f"the metric Space's NAME {name!r} must be a Python identifier (letters, digits, "
            "'_'): evaluate imports the script NAME.py as a module."
        )
    template = _read_template("metrics/task_prior")
    # the card's examples load the repo's folder; on the Hub they load the Space
    card = template[README].decode().replace('"metrics/task_prior"', f'"{repo_id}"')
    files = {
        f"{name}.py": template[METRIC_SCRIPT],
        APP: template[APP],
        README: with_front_matter(
            card, title=title, sdk="gradio", sdk_version=sdk_version(card, sdk)
        ).encode(),
        REQUIREMENTS: pin_requirements(template[REQUIREMENTS].decode(), req).encode(),
    }
    return SpaceFiles("metric", files, _record("metric", repo_id, req))


# ------------------------------------------------------------------ upload


def _previous_files(api: Any, repo_id: str, existing: list[str]) -> list[str]:
    """Files an earlier deploy recorded (only those may be deleted)."""
    import tempfile

    if SPACE_FILE not in existing:
        return []
    with tempfile.TemporaryDirectory() as tmp:
        path = api.hf_hub_download(repo_id, SPACE_FILE, repo_type="space", local_dir=tmp)
        try:
            return [str(f) for f in json.loads(Path(path).read_text())["files"]]
        except (ValueError, KeyError, TypeError):
            return []


def deploy_space(
    repo_id: str,
    space: SpaceFiles,
    *,
    private: bool = False,
    token: str | None = None,
    check_source: bool = False,
) -> dict[str, Any]:
    """Create or update the Gradio Space ``repo_id`` with ``space`` in one commit.

    Files an earlier deploy wrote and this one does not are deleted; nothing else in the
    Space is touched. With ``check_source`` the recorded source (a Hub dataset repo) must
    exist. Returns ``repo_id``, ``url``, ``commit``, ``files``, ``deleted``."""
    from huggingface_hub import HfApi

    check_repo_id(repo_id, "ORG/NAME")
    if hub_offline():
        raise _unreachable(repo_id, "HF_HUB_OFFLINE is set")
    tok = resolve_token(token, repo_id)
    api = HfApi(token=tok)
    files = space.with_record()
    if check_source:
        source = str(space.record["source"])
        with _hub_errors(source, tok):
            api.repo_info(source, repo_type="dataset")
    with _hub_errors(repo_id, tok):
        url = api.create_repo(
            repo_id, repo_type="space", space_sdk="gradio", private=private, exist_ok=True
        )
        existing = api.list_repo_files(repo_id, repo_type="space")
        stale = [f for f in _previous_files(api, repo_id, existing) if f in existing]
        stale = [f for f in stale if f not in files]
        message = f"tp-harness: deploy the {space.kind} Space"
        commit = commit_files(api, repo_id, "space", files, stale, message)
    return {
        "repo_id": repo_id,
        "url": str(url),
        "commit": commit.oid,
        "files": sorted(files),
        "deleted": stale,
        "requirement": space.record["requirement"],
        "source": space.record["source"],
    }


def deploy_leaderboard(
    repo_id: str,
    source: str | Path,
    *,
    private: bool = False,
    requirement: str | None = None,
    title: str | None = None,
    sdk: str | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    """``tp-harness leaderboard deploy``: build the Space (:func:`leaderboard_files`),
    then upload it (:func:`deploy_space`). Every check comes before the upload."""
    check_repo_id(repo_id, "ORG/NAME")
    space = leaderboard_files(source, requirement=requirement, title=title, sdk=sdk)
    on_hub = not any(p.startswith(f"{RUNS_DIR}/") for p in space.files)
    return deploy_space(repo_id, space, private=private, token=token, check_source=on_hub)


def deploy_metric(
    repo_id: str,
    *,
    private: bool = False,
    requirement: str | None = None,
    title: str | None = None,
    sdk: str | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    """``tp-harness metric deploy``: the metric module as the Space ``repo_id``."""
    space = metric_files(repo_id, requirement=requirement, title=title, sdk=sdk)
    return deploy_space(repo_id, space, private=private, token=token)


def deploy_report(info: Mapping[str, Any]) -> str:
    """Human lines about a deploy."""
    lines = [
        f"space: {_endpoint()}/spaces/{info['repo_id']} (commit {str(info['commit'])[:8]}, "
        f"{len(info['files'])} files"
        + (f", {len(info['deleted'])} stale deleted" if info["deleted"] else "")
        + ")",
        f"installs: {info['requirement']}",
    ]
    if "file:" in str(info["requirement"]):
        lines.append("note: a file: URL works only on this machine, not on a Space.")
    return "\n".join(lines)
