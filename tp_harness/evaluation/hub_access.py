"""Hub access that fails at once: local cache first, one quick reachability probe.

``huggingface_hub`` retries an unreachable endpoint for ~20 s before giving up; these
helpers instead check the local cache, then probe the endpoint once with a short
timeout, and raise :class:`HubUnavailableError` naming the repo and ``HF_HUB_OFFLINE``.
"""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

_TRUE = ("1", "on", "yes", "true")


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


def hub_reachable(timeout: float = 3.0) -> bool:
    """One TCP connection attempt to ``HF_ENDPOINT`` (no retries)."""
    from huggingface_hub import constants

    url = urlparse(constants.ENDPOINT)
    host = url.hostname or "huggingface.co"
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


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
    if not hub_reachable():
        if cached is None:
            raise HubUnavailableError(
                unavailable_message(repo_id, repo_type, revision, "the Hub endpoint is unreachable")
            )
        return cached, True
    try:
        return hf_hub_download(repo_id, filename, revision=revision, repo_type=repo_type), False
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
