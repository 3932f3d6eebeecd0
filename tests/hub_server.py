"""A small in-memory Hugging Face Hub for tests (stdlib ``http.server`` on 127.0.0.1).

It answers the endpoints ``huggingface_hub`` and ``datasets`` call to create repos,
commit files (regular and LFS), list trees and download files, so ``create_commit``,
``Dataset.push_to_hub``, ``snapshot_download`` and ``load_dataset`` run against it
unchanged. Clients set ``HF_ENDPOINT=server.url``, ``HF_TOKEN`` and
``HF_HUB_DISABLE_XET=1``. Not covered: branches, pull requests, Xet, multipart LFS.

Bounded: it binds a free port on 127.0.0.1 only, caps request bodies, drops idle
connections, and shuts itself down after ``lifetime_s`` if nobody stops it first.

    with HubServer(token="secret") as hub:
        os.environ["HF_ENDPOINT"] = hub.url
        ...
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

PREFIXES = {"datasets": "dataset", "spaces": "space"}  # URL prefix -> repo type
LFS_SUFFIXES = (
    ".parquet",
    ".arrow",
    ".png",
    ".jpg",
    ".bin",
    ".safetensors",
    ".pt",
    ".npy",
    ".gz",
    ".zip",
)
LFS_MIN_SIZE = 10 * 1024 * 1024
MAX_BODY = 512 * 1024 * 1024
GITATTRIBUTES = "".join(f"*{s} filter=lfs diff=lfs merge=lfs -text\n" for s in LFS_SUFFIXES)


def git_blob_sha1(data: bytes) -> str:
    """``git hash-object`` of ``data``."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer(sha256: str, size: int) -> bytes:
    return (
        f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256}\nsize {size}\n"
    ).encode()


@dataclass(frozen=True)
class Blob:
    data: bytes
    lfs: bool

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()

    @property
    def pointer(self) -> bytes:
        return lfs_pointer(self.sha256, len(self.data))

    @property
    def oid(self) -> str:
        """Git blob id: of the pointer for LFS files, of the content otherwise."""
        return git_blob_sha1(self.pointer if self.lfs else self.data)

    @property
    def etag(self) -> str:
        return self.sha256 if self.lfs else self.oid


@dataclass
class Commit:
    oid: str
    title: str
    date: str
    files: dict[str, Blob]


@dataclass
class Repo:
    repo_type: str
    repo_id: str
    private: bool
    commits: list[Commit] = field(default_factory=list)
    sdk: str | None = None  # spaces only: the Hub requires one at creation

    @property
    def head(self) -> Commit:
        return self.commits[-1]

    def at(self, revision: str) -> Commit | None:
        rev = unquote(revision)
        if rev in ("main", "HEAD"):
            return self.head
        return next((c for c in self.commits if c.oid == rev), None)

    def commit(self, title: str, files: dict[str, Blob]) -> Commit:
        h = hashlib.sha1(f"{self.repo_type}/{self.repo_id}:{len(self.commits)}:{title}".encode())
        for path in sorted(files):
            h.update(f"{path}:{files[path].oid}".encode())
        c = Commit(
            h.hexdigest(), title, time.strftime("%Y-%m-%dT%H:%M:%S.000Z", time.gmtime()), files
        )
        self.commits.append(c)
        return c


class HubError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        extra: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code
        self.extra = extra or {}


class HubState:
    """Repos and the LFS object store, guarded by one lock."""

    def __init__(self, token: str | None) -> None:
        self.token = token
        self.repos: dict[tuple[str, str], Repo] = {}
        self.lfs: dict[str, bytes] = {}
        self.lock = threading.Lock()
        self.requests: list[str] = []
        self.fail_commits: set[str] = set()  # repo ids whose commits answer 500 (tests)

    def repo(self, repo_type: str, repo_id: str, authorized: bool) -> Repo:
        r = self.repos.get((repo_type, repo_id))
        if r is None or (r.private and not authorized):
            raise HubError(404, f"Repository {repo_id} not found", "RepoNotFound")
        return r

    def create(self, repo_type: str, repo_id: str, private: bool, url: str) -> Repo:
        if (repo_type, repo_id) in self.repos:  # the Hub answers 409 with the repo's url
            raise HubError(409, "You already created this repo", extra={"url": url})
        r = Repo(repo_type, repo_id, private)
        r.commit("initial commit", {".gitattributes": Blob(GITATTRIBUTES.encode(), False)})
        self.repos[(repo_type, repo_id)] = r
        return r


def _entry(path: str, blob: Blob | None, commit: Commit, expand: bool) -> dict[str, Any]:
    """A tree / paths-info entry for a file (``blob``) or a folder (``blob`` None)."""
    if blob is None:
        out: dict[str, Any] = {
            "type": "directory",
            "path": path,
            "size": 0,
            "oid": hashlib.sha1(f"{commit.oid}:{path}".encode()).hexdigest(),
        }
    else:
        out = {"type": "file", "path": path, "size": len(blob.data), "oid": blob.oid}
        if blob.lfs:
            out["lfs"] = {
                "oid": blob.sha256,
                "size": len(blob.data),
                "pointerSize": len(blob.pointer),
            }
    if expand:
        out["lastCommit"] = {"id": commit.oid, "title": commit.title, "date": commit.date}
    return out


def _folders(files: dict[str, Blob]) -> set[str]:
    out: set[str] = set()
    for p in files:
        parts = p.split("/")[:-1]
        out.update("/".join(parts[: i + 1]) for i in range(len(parts)))
    return out


def list_tree(commit: Commit, path: str, recursive: bool, expand: bool) -> list[dict[str, Any]]:
    path = path.strip("/")
    folders = _folders(commit.files)
    if path and path not in folders:
        raise HubError(404, f"{path} does not exist", "EntryNotFound")
    prefix = f"{path}/" if path else ""

    def wanted(p: str) -> bool:
        return p.startswith(prefix) and (recursive or "/" not in p[len(prefix) :])

    out = [_entry(f, None, commit, expand) for f in sorted(folders) if wanted(f)]
    out += [_entry(p, b, commit, expand) for p, b in sorted(commit.files.items()) if wanted(p)]
    return out


def apply_commit(state: HubState, repo: Repo, lines: list[dict[str, Any]]) -> Commit:
    """Apply an NDJSON commit payload (header, file, lfsFile, deletedFile, deletedFolder)."""
    files = dict(repo.head.files)
    header: dict[str, Any] = {}
    for item in lines:
        key, value = item["key"], item["value"]
        if key == "header":
            header = value
            parent = value.get("parentCommit")
            if parent is not None and parent != repo.head.oid:
                raise HubError(412, "parentCommit is not the head of the branch")
        elif key == "file":
            files[value["path"]] = Blob(base64.b64decode(value["content"]), False)
        elif key == "lfsFile":
            data = state.lfs.get(value["oid"])
            if data is None:
                raise HubError(422, f"LFS object {value['oid']} was not uploaded")
            files[value["path"]] = Blob(data, True)
        elif key == "deletedFile":
            if files.pop(value["path"], None) is None:
                raise HubError(404, "A file with this name doesn't exist", "EntryNotFound")
        elif key == "deletedFolder":
            root = value["path"].rstrip("/") + "/"
            files = {p: b for p, b in files.items() if not p.startswith(root)}
        else:
            raise HubError(400, f"unsupported commit operation {key!r}")
    return repo.commit(str(header.get("summary", "commit")), files)


_API_REPO = re.compile(r"^/api/(models|datasets|spaces)/([^/]+/[^/]+)(?:/(.*))?$")
_LFS_BATCH = re.compile(r"^/(?:(datasets|spaces)/)?([^/]+/[^/]+)\.git/info/lfs/objects/batch$")
_RESOLVE = re.compile(r"^/(?:(datasets|spaces)/)?([^/]+/[^/]+)/resolve/([^/]+)/(.+)$")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # drop idle keep-alive connections
    server: HubHTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        return

    @property
    def state(self) -> HubState:
        return self.server.state

    def _authorized(self) -> bool:
        auth = self.headers.get("Authorization", "")
        return self.state.token is None or auth == f"Bearer {self.state.token}"

    def _require_auth(self) -> None:
        if not self._authorized():
            raise HubError(401, "Invalid credentials in Authorization header")

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks: list[bytes] = []
            total = 0
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                total += size
                if total > MAX_BODY:
                    raise HubError(413, "request body too large")
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise HubError(413, "request body too large")
        return self.rfile.read(length) if length else b""

    def _send(
        self,
        status: int,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        content_type: str = "application/json",
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, obj: Any, status: int = 200) -> None:
        self._send(status, json.dumps(obj).encode())

    def _dispatch(self) -> None:
        url = urlsplit(self.path)
        self.state.requests.append(f"{self.command} {url.path}")
        body = self._body() if self.command in ("POST", "PUT") else b""
        try:
            with self.state.lock:
                self._route(url.path, parse_qs(url.query), body)
        except HubError as err:
            headers = {"X-Error-Message": err.message}
            if err.code:
                headers["X-Error-Code"] = err.code
            body = json.dumps({"error": err.message, **err.extra}).encode()
            self._send(err.status, body, headers)
        except Exception as err:  # a server bug: answer 500 rather than drop the connection
            self._send(500, json.dumps({"error": repr(err)}).encode())

    do_GET = do_HEAD = do_POST = do_PUT = _dispatch

    def _route(self, path: str, query: dict[str, list[str]], body: bytes) -> None:
        if path == "/api/whoami-v2":
            self._require_auth()
            self._json(
                {
                    "type": "user",
                    "name": "tester",
                    "fullname": "Test User",
                    "orgs": [],
                    "auth": {
                        "type": "access_token",
                        "accessToken": {"displayName": "test", "role": "write"},
                    },
                }
            )
        elif path == "/api/validate-yaml":
            self._json({"errors": [], "warnings": []})
        elif path == "/api/repos/create" and self.command == "POST":
            self._create_repo(json.loads(body or b"{}"))
        elif path.startswith("/lfs-objects/") and self.command == "PUT":  # "presigned": no auth
            oid = path.rsplit("/", 1)[1]
            if hashlib.sha256(body).hexdigest() != oid:
                raise HubError(400, "uploaded content does not match its sha256")
            self.state.lfs[oid] = body
            self._send(200)
        elif m := _API_REPO.match(path):
            self._api_repo(m.group(1)[:-1], m.group(2), m.group(3) or "", query, body)
        elif m := _LFS_BATCH.match(path):
            self._lfs_batch(PREFIXES.get(m.group(1) or "", "model"), m.group(2), json.loads(body))
        elif m := _RESOLVE.match(path):
            self._resolve(
                PREFIXES.get(m.group(1) or "", "model"), m.group(2), m.group(3), unquote(m.group(4))
            )
        else:
            raise HubError(404, f"no route for {self.command} {path}")

    def _create_repo(self, payload: dict[str, Any]) -> None:
        self._require_auth()
        repo_id = f"{payload.get('organization') or 'tester'}/{payload['name']}"
        repo_type = payload.get("type") or "model"
        if repo_type == "space" and payload.get("sdk") not in ("gradio", "docker", "static"):
            raise HubError(
                400, "Invalid or missing sdk: a Space needs one of gradio, docker, static"
            )
        private = bool(payload.get("private")) or payload.get("visibility") == "private"
        prefix = "" if repo_type == "model" else f"{repo_type}s/"
        url = f"{self.server.url}/{prefix}{repo_id}"
        self.state.create(repo_type, repo_id, private, url).sdk = payload.get("sdk")
        self._json({"url": url, "name": repo_id})

    def _api_repo(
        self, repo_type: str, repo_id: str, rest: str, query: dict[str, list[str]], body: bytes
    ) -> None:
        repo = self.state.repo(repo_type, repo_id, self._authorized())
        action, _, tail = rest.partition("/")
        rev, _, sub = tail.partition("/")
        if action in ("preupload", "commit", "paths-info", "tree"):
            commit = repo.at(rev)
        else:
            commit = repo.at(rev) if action == "revision" else repo.head
        if commit is None:
            raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        expand = query.get("expand", ["false"])[0].lower() == "true"
        if action in ("", "revision"):
            self._json(self._repo_info(repo, commit))
        elif action == "tree":
            recursive = query.get("recursive", ["false"])[0].lower() == "true"
            self._json(list_tree(commit, unquote(sub), recursive, expand))
        elif action == "paths-info" and self.command == "POST":
            form = parse_qs(body.decode())
            self._json(
                self._paths_info(
                    commit,
                    form.get("paths", []),
                    form.get("expand", ["false"])[0].lower() == "true",
                )
            )
        elif action == "preupload" and self.command == "POST":
            self._require_auth()
            self._json({"files": [self._upload_mode(commit, f) for f in json.loads(body)["files"]]})
        elif action == "commit" and self.command == "POST":
            self._require_auth()
            if repo_id in self.state.fail_commits:
                raise HubError(500, "Internal Error (injected by the test)")
            lines = [json.loads(x) for x in body.splitlines() if x.strip()]
            c = apply_commit(self.state, repo, lines)
            prefix = "" if repo_type == "model" else f"{repo_type}s/"
            self._json(
                {
                    "success": True,
                    "commitOid": c.oid,
                    "pullRequestUrl": None,
                    "commitUrl": f"{self.server.url}/{prefix}{repo_id}/commit/{c.oid}",
                }
            )
        else:
            raise HubError(404, f"no route for {self.command} /api/{repo_type}s/{repo_id}/{rest}")

    @staticmethod
    def _repo_info(repo: Repo, commit: Commit) -> dict[str, Any]:
        return {
            "_id": hashlib.md5(repo.repo_id.encode()).hexdigest()[:24],
            "id": repo.repo_id,
            "author": repo.repo_id.split("/")[0],
            "sha": commit.oid,
            "private": repo.private,
            "gated": False,
            "disabled": False,
            "downloads": 0,
            "likes": 0,
            "tags": [],
            "lastModified": commit.date,
            "createdAt": repo.commits[0].date,
            "siblings": [{"rfilename": p} for p in sorted(commit.files)],
            **({"sdk": repo.sdk} if repo.repo_type == "space" else {}),
        }

    @staticmethod
    def _paths_info(commit: Commit, paths: list[str], expand: bool) -> list[dict[str, Any]]:
        folders = _folders(commit.files)
        out = []
        for p in (x.strip("/") for x in paths):
            if p in commit.files:
                out.append(_entry(p, commit.files[p], commit, expand))
            elif p in folders:
                out.append(_entry(p, None, commit, expand))
        return out

    @staticmethod
    def _upload_mode(commit: Commit, f: dict[str, Any]) -> dict[str, Any]:
        lfs = f["path"].endswith(LFS_SUFFIXES) or int(f["size"]) >= LFS_MIN_SIZE
        old = commit.files.get(f["path"])
        oid = None if old is None else (old.sha256 if old.lfs else old.oid)
        return {
            "path": f["path"],
            "uploadMode": "lfs" if lfs else "regular",
            "shouldIgnore": False,
            "oid": oid,
        }

    def _lfs_batch(self, repo_type: str, repo_id: str, payload: dict[str, Any]) -> None:
        self._require_auth()
        self.state.repo(repo_type, repo_id, True)
        objects = []
        for obj in payload.get("objects", []):
            entry: dict[str, Any] = {"oid": obj["oid"], "size": int(obj["size"])}
            if obj["oid"] not in self.state.lfs:
                href = f"{self.server.url}/lfs-objects/{obj['oid']}"
                entry["actions"] = {"upload": {"href": href, "header": {}}}
            objects.append(entry)
        self._send(
            200,
            json.dumps({"transfer": "basic", "objects": objects}).encode(),
            content_type="application/vnd.git-lfs+json",
        )

    def _resolve(self, repo_type: str, repo_id: str, rev: str, path: str) -> None:
        repo = self.state.repo(repo_type, repo_id, self._authorized())
        commit = repo.at(rev)
        if commit is None:
            raise HubError(404, f"Invalid rev id: {rev}", "RevisionNotFound")
        blob = commit.files.get(path)
        if blob is None:
            raise HubError(404, f"Entry not found: {path}", "EntryNotFound")
        data, status = blob.data, 200
        headers = {"ETag": f'"{blob.etag}"', "X-Repo-Commit": commit.oid, "Accept-Ranges": "bytes"}
        if blob.lfs:
            headers.update({"X-Linked-Etag": f'"{blob.etag}"', "X-Linked-Size": str(len(data))})
        rng = re.fullmatch(r"bytes=(\d*)-(\d*)", self.headers.get("Range", ""))
        if rng and data:
            start = int(rng.group(1)) if rng.group(1) else max(0, len(data) - int(rng.group(2)))
            end = int(rng.group(2)) if rng.group(1) and rng.group(2) else len(data) - 1
            if start >= len(data):
                raise HubError(416, "range not satisfiable")
            end = min(end, len(data) - 1)
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
            data, status = data[start : end + 1], 206
        self._send(status, data, headers, content_type="application/octet-stream")


class HubHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, state: HubState) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.state = state
        self.url = f"http://127.0.0.1:{self.server_address[1]}"


class HubServer:
    """Start/stop wrapper: a context manager serving on a daemon thread."""

    def __init__(self, token: str | None = None, lifetime_s: float = 600.0) -> None:
        self.state = HubState(token)
        self.httpd = HubHTTPServer(self.state)
        self.url = self.httpd.url
        self._thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._timer = threading.Timer(lifetime_s, self.stop)
        self._timer.daemon = True

    def start(self) -> HubServer:
        self._thread.start()
        self._timer.start()
        return self

    def stop(self) -> None:
        self._timer.cancel()
        if self._thread.is_alive():
            self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def files(self, repo_id: str, repo_type: str = "dataset") -> dict[str, bytes]:
        """Content of the head commit of a repo (for assertions)."""
        with self.state.lock:
            repo = self.state.repo(repo_type, repo_id, True)
            return {p: b.data for p, b in repo.head.files.items()}

    def num_commits(self, repo_id: str, repo_type: str = "dataset") -> int:
        with self.state.lock:
            return len(self.state.repo(repo_type, repo_id, True).commits)


class SilentServer:
    """A loopback TCP server that accepts every connection and never answers (the
    hanging endpoint of issue 16, finding 8). ``connections`` counts the accepted ones."""

    def __init__(self) -> None:
        import socket as _socket

        self._sock = _socket.socket()
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.connections = 0
        self._held: list[object] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        self._sock.settimeout(0.2)
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            self.connections += 1
            self._held.append(conn)  # keep it open, say nothing

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2)
        for conn in self._held:
            conn.close()  # type: ignore[attr-defined]
        self._sock.close()


#: Variables that would keep a client off the loopback Hub.
OFFLINE_VARS = (
    "HF_HUB_OFFLINE",
    "HF_DATASETS_OFFLINE",
    "TRANSFORMERS_OFFLINE",
    "HF_EVALUATE_OFFLINE",
)


def client_env(url: str, token: str, home: str | Path, pythonpath: str | Path) -> dict[str, str]:
    """The environment of a client subprocess talking to the server at ``url``:
    ``huggingface_hub``, ``datasets`` and ``evaluate`` read these at import time."""
    env = {k: v for k, v in os.environ.items() if k not in OFFLINE_VARS}
    env.update(
        HF_ENDPOINT=url,
        HF_TOKEN=token,
        HF_HUB_DISABLE_XET="1",
        HF_HOME=str(home),
        PYTHONPATH=str(pythonpath),
        HF_HUB_DISABLE_TELEMETRY="1",
        HF_UPDATE_DOWNLOAD_COUNTS="false",  # evaluate would HEAD an S3 bucket otherwise
        GRADIO_ANALYTICS_ENABLED="False",
        TOKENIZERS_PARALLELISM="false",
    )
    return env
