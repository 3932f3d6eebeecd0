"""Hub access that fails at once: local cache first, one quick answer probe.

``huggingface_hub`` retries an unreachable endpoint for ~20 s, and an endpoint that
accepts connections but never answers cost ~400 s (6 attempts of ~60 s, as issue 16
reported); these helpers
instead check the local cache, then send the endpoint one HTTP request and wait at most
:func:`hub_timeout` seconds (``TP_HARNESS_HUB_TIMEOUT``, default 10; the run's
``hub_timeout``) for its first byte, and raise :class:`HubUnavailableError` naming the
repo, the reason and ``HF_HUB_OFFLINE``. Downloads that follow run with the same timeout
(``huggingface_hub``'s etag and download timeouts, set for the call).
"""

from __future__ import annotations

import contextlib
import contextvars
import os
import socket
import ssl
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

_TRUE = ("1", "on", "yes", "true")
TIMEOUT_ENV = "TP_HARNESS_HUB_TIMEOUT"
DEFAULT_TIMEOUT = 10.0
_TIMEOUT: contextvars.ContextVar[float | None] = contextvars.ContextVar("hub_timeout", default=None)


def hub_timeout() -> float:
    """Seconds to wait for the Hub: the run's ``hub_timeout``, else ``$TP_HARNESS_HUB_TIMEOUT``,
    else 10."""
    override = _TIMEOUT.get()
    if override is not None:
        return override
    env = os.environ.get(TIMEOUT_ENV, "").strip()
    try:
        value = float(env) if env else DEFAULT_TIMEOUT
    except ValueError:
        raise ValueError(f"{TIMEOUT_ENV} must be a number of seconds; got {env!r}.") from None
    if not value > 0:
        raise ValueError(f"{TIMEOUT_ENV} must be > 0; got {env!r}.")
    return value


@contextlib.contextmanager
def timeout_set(seconds: float | None) -> Iterator[None]:
    """Within the block, :func:`hub_timeout` is ``seconds`` (``None``: unchanged)."""
    token = _TIMEOUT.set(seconds if seconds is not None else _TIMEOUT.get())
    try:
        yield
    finally:
        _TIMEOUT.reset(token)


@contextlib.contextmanager
def bounded_downloads() -> Iterator[None]:
    """``huggingface_hub``'s etag and download timeouts set to :func:`hub_timeout`."""
    from huggingface_hub import constants

    t = hub_timeout()
    saved = (constants.HF_HUB_ETAG_TIMEOUT, constants.HF_HUB_DOWNLOAD_TIMEOUT)
    constants.HF_HUB_ETAG_TIMEOUT = constants.HF_HUB_DOWNLOAD_TIMEOUT = t  # type: ignore[assignment]
    try:
        yield
    finally:
        constants.HF_HUB_ETAG_TIMEOUT, constants.HF_HUB_DOWNLOAD_TIMEOUT = saved


class HubUnavailableError(OSError):
    """A Hub repo is neither local nor in the cache, and the Hub cannot be used."""


def hub_offline() -> bool:
    """True when ``HF_HUB_OFFLINE`` (read now, not at import) forbids Hub calls."""
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE")
    if env is not None:
        return env.strip().lower() in _TRUE
    return bool(constants.HF_HUB_OFFLINE)


@contextlib.contextmanager
def offline_libraries(offline: bool) -> Iterator[None]:
    """Within the block, make ``huggingface_hub`` and ``datasets`` follow :func:`hub_offline`
    too: both read ``HF_HUB_OFFLINE`` once at import, so a process that imported them
    before the variable was set would otherwise retry the network for ~20 s."""
    if not offline:
        yield
        return
    import datasets.config
    from huggingface_hub import constants

    saved = (constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE)
    constants.HF_HUB_OFFLINE = datasets.config.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE, datasets.config.HF_HUB_OFFLINE = saved


def hub_problem(timeout: float | None = None) -> str | None:
    """Why ``HF_ENDPOINT`` cannot be used now, or None when it answers.

    One HTTP ``HEAD /api/whoami-v2`` (no retries); the connection, TLS handshake and the
    wait for the first byte of the answer together take at most ``timeout`` seconds
    (default :func:`hub_timeout`). Any answer, even an error status, counts as up.
    """
    import time

    from huggingface_hub import constants

    limit = hub_timeout() if timeout is None else timeout
    url = urlparse(constants.ENDPOINT)
    host = url.hostname or "huggingface.co"
    port = url.port or (443 if url.scheme == "https" else 80)
    deadline = time.monotonic() + limit
    try:
        sock = socket.create_connection((host, port), timeout=limit)
    except OSError as err:
        return f"the Hub endpoint {constants.ENDPOINT} is unreachable ({err.strerror or err})"
    try:
        if url.scheme == "https":
            sock.settimeout(max(deadline - time.monotonic(), 0.01))
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=host)
        request = (
            f"HEAD /api/whoami-v2 HTTP/1.1\r\nHost: {url.netloc}\r\n"
            "User-Agent: tp-harness-probe\r\nConnection: close\r\n\r\n"
        )
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        sock.sendall(request.encode())
        sock.settimeout(max(deadline - time.monotonic(), 0.01))
        if not sock.recv(1):
            return f"the Hub endpoint {constants.ENDPOINT} closed the connection without answering"
        return None
    except TimeoutError:
        return (
            f"the Hub endpoint {constants.ENDPOINT} accepted the connection but sent no answer "
            f"within {limit:g} s (raise {TIMEOUT_ENV} or --hub-timeout to wait longer)"
        )
    except OSError as err:
        return f"the Hub endpoint {constants.ENDPOINT} failed ({err.strerror or err})"
    finally:
        sock.close()


def looks_like_path(model_id: str) -> bool:
    """Whether ``model_id`` is meant as a filesystem path rather than ``org/name``."""
    return (
        model_id.startswith((".", "/", "~", "\\"))
        or model_id.count("/") > 1
        or "\\" in model_id
        or Path(model_id).expanduser().exists()
    )


def unavailable_message(repo_id: str, kind: str, revision: str | None, why: str) -> str:
    """The error text: names the repo and says how ``HF_HUB_OFFLINE`` applies."""
    from huggingface_hub import constants

    rev = f" (revision {revision!r})" if revision else ""
    where = (
        "file/folder or bundled:drug_reviews / bundled:digits"
        if kind == "dataset"
        else "folder or bundled:minilm / bundled:smollm2"
    )
    return (
        f"Cannot load {kind} {repo_id!r}{rev}: {why}. It is not a local path and is not "
        f"in the local Hugging Face cache ({constants.HF_HUB_CACHE}). "
        f"HF_HUB_OFFLINE={os.environ.get('HF_HUB_OFFLINE', '<unset>')}: with Hub access, "
        f"unset HF_HUB_OFFLINE to download it; offline, pass a local {where}."
    )


def _cached_file(repo_id: str, filename: str, revision: str | None, repo_type: str) -> str | None:
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    try:
        return hf_hub_download(
            repo_id, filename, revision=revision, repo_type=repo_type, local_files_only=True
        )
    except (LocalEntryNotFoundError, FileNotFoundError, ValueError):
        return None


def resolve_hub_file(
    repo_id: str, filename: str, revision: str | None = None, *, repo_type: str = "model"
) -> tuple[str, bool]:
    """Path to ``filename`` of a Hub repo and whether only the local cache may be used.

    Raises :class:`HubUnavailableError` at once when the file is not cached and the
    Hub is disabled (``HF_HUB_OFFLINE``) or unreachable.
    """
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    cached = _cached_file(repo_id, filename, revision, repo_type)
    if hub_offline():
        if cached is None:
            raise HubUnavailableError(
                unavailable_message(repo_id, repo_type, revision, "HF_HUB_OFFLINE is set")
            )
        return cached, True
    problem = hub_problem()
    if problem is not None:
        if cached is None:
            raise HubUnavailableError(unavailable_message(repo_id, repo_type, revision, problem))
        return cached, True
    try:
        with bounded_downloads():
            path = hf_hub_download(repo_id, filename, revision=revision, repo_type=repo_type)
        return path, False
    except LocalEntryNotFoundError as err:
        raise HubUnavailableError(
            unavailable_message(repo_id, repo_type, revision, f"download failed ({err})")
        ) from err
    except HfHubHTTPError as err:
        raise HubUnavailableError(
            f"Cannot load {repo_type} {repo_id!r}: {err}. Check the id and revision; "
            f"private or gated repos need `hf auth login` (HF_HUB_OFFLINE is unset)."
        ) from err


def hub_file_exists(
    repo_id: str, filename: str, revision: str | None, local_only: bool
) -> str | None:
    """Path to an optional repo file (e.g. ``modules.json``) or None if the repo lacks it."""
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, HfHubHTTPError

    cached = _cached_file(repo_id, filename, revision, "model")
    if cached is not None or local_only:
        return cached
    try:
        with bounded_downloads():
            return hf_hub_download(repo_id, filename, revision=revision)
    except (EntryNotFoundError, HfHubHTTPError):
        return None


def commit_from_path(path: str | Path) -> str | None:
    """The commit hash of a file inside a ``snapshots/<commit>/`` cache folder."""
    parts = Path(path).parts
    if "snapshots" in parts:
        i = len(parts) - 1 - parts[::-1].index("snapshots")
        if i + 1 < len(parts):
            return parts[i + 1]
    return None
