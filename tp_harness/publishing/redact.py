"""What leaves the machine holds no local path and no user name.

:func:`local_roots` lists the machine's private prefixes (the run folder, the Python
environment, the Hugging Face and tp-harness caches, the working and temp folders, the
home folder) with the placeholder each becomes; :func:`redact` rewrites every string of
a JSON-like value with them (a path inside the run folder becomes relative, any other
absolute path ``<local>/NAME``); :func:`private_leaks` is the check run on every file
before it is pushed.
"""

from __future__ import annotations

import getpass
import os
import re
import site
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

LOCAL = "<local>"


def _user() -> str | None:
    try:
        return getpass.getuser() or None
    except Exception:  # no passwd entry (containers): nothing to hide
        return None


def _resolved(p: str | os.PathLike[str]) -> list[str]:
    """``p`` as given (absolute) and resolved (symlinks followed), without a trailing slash."""
    out = {os.path.abspath(os.fspath(p))}
    try:
        out.add(str(Path(p).resolve()))
    except OSError:
        pass
    return [x.rstrip("/") or "/" for x in out]


def local_roots(output_dir: str | os.PathLike[str] | None = None) -> list[tuple[str, str]]:
    """``(prefix, placeholder)`` pairs, longest prefix first."""
    pairs: list[tuple[str | os.PathLike[str], str]] = []
    if output_dir is not None:
        pairs.append((output_dir, "."))
    try:
        from huggingface_hub import constants

        pairs += [(constants.HF_HUB_CACHE, "<hf-cache>"), (constants.HF_HOME, "<hf-home>")]
    except ImportError:
        pass
    for sp in [*site.getsitepackages(), site.getusersitepackages()]:
        pairs.append((sp, "<site-packages>"))
    pairs += [
        (sys.prefix, "<python>"),
        (sys.base_prefix, "<python>"),
        (os.getcwd(), "<cwd>"),
        (tempfile.gettempdir(), "<tmp>"),
        (Path.home(), "~"),
    ]
    seen: dict[str, str] = {}
    for prefix, placeholder in pairs:
        for p in _resolved(prefix):
            if p not in ("/", "") and p not in seen:
                seen[p] = placeholder
    return sorted(seen.items(), key=lambda kv: -len(kv[0]))


def _substitute(text: str, roots: Iterable[tuple[str, str]]) -> str:
    for prefix, placeholder in roots:
        if prefix not in text:
            continue
        pattern = re.escape(prefix) + r"(?=/|$|[\s'\",:;)\]}])"
        if placeholder == ".":  # inside the run folder: a relative path
            text = re.sub(pattern + "/", "", text)
            text = re.sub(pattern, ".", text)
            continue
        text = re.sub(pattern, placeholder, text)
    return text


def redact_text(text: str, roots: list[tuple[str, str]]) -> str:
    """``text`` with local prefixes replaced; a whole-string absolute path (or the path
    after ``kind:`` in a spec such as ``file:/data/x.npy``) becomes ``<local>/NAME``."""
    out = _substitute(text, roots)
    head, sep, tail = out.partition(":")
    if os.path.isabs(out):
        return f"{LOCAL}/{Path(out).name}"
    if sep and os.path.isabs(tail) and not tail.startswith("//") and "/" not in head:
        path, _, options = tail.partition(":")
        return f"{head}:{LOCAL}/{Path(path).name}" + (f":{options}" if options else "")
    user = _user()
    if user and "/" in out:
        out = re.sub(rf"(?<=/){re.escape(user)}(?=/|$)", "<user>", out)
    return out


def redact(value: Any, roots: list[tuple[str, str]]) -> Any:
    """``value`` (dicts, lists, tuples, strings) with every string through :func:`redact_text`;
    dict keys too."""
    if isinstance(value, str):
        return redact_text(value, roots)
    if isinstance(value, dict):
        return {redact(k, roots): redact(v, roots) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(redact(v, roots) for v in value)
    return value


def private_leaks(text: str, roots: list[tuple[str, str]]) -> list[str]:
    """Local prefixes (and the user name as a path component) still present in ``text``."""
    found = [prefix for prefix, _ in roots if re.search(re.escape(prefix) + r"(?=/|\b|$)", text)]
    user = _user()
    if user and user not in ("root",) and re.search(rf"/{re.escape(user)}(?=/|\b)", text):
        found.append(f"user name {user!r}")
    return found
