"""The one atomic-write helper: files and folders appear whole or not at all.

A file is written to a temp file in the same folder, flushed and fsynced, then
``os.replace``-d over the target; a folder is built as a temp sibling, then swapped in
(the old one is renamed aside first and removed last). Readers never see a partial
file, and a failure leaves the previous version in place. New files get the mode the
user's umask gives (not ``mkstemp``'s 0600).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path


def _umask_mode(base: int) -> int:
    mask = os.umask(0)
    os.umask(mask)
    return base & ~mask


def _fsync(path: Path) -> None:
    with contextlib.suppress(OSError), open(path, "rb") as fh:
        os.fsync(fh.fileno())


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], object]) -> Path:
    """Call ``write(tmp)`` on a temp file next to ``path``, fsync it, then move it in place."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        write(tmp)
        _fsync(tmp)
        os.chmod(tmp, _umask_mode(0o666))
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return p


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically."""
    return atomic_write(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write UTF-8 ``text`` to ``path`` atomically."""
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_dir(
    path: str | os.PathLike[str], build: Callable[[Path], object], *, replace: bool = True
) -> Path:
    """Call ``build(tmp)`` on an empty temp folder next to ``path``, then swap it in.

    With ``replace=False`` an existing ``path`` wins (another process got there
    first) and the new build is discarded.
    """
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=p.parent, prefix=f".{p.name}.", suffix=".tmp"))
    old: Path | None = None
    try:
        build(tmp)
        os.chmod(tmp, _umask_mode(0o777))
        if p.exists() and not replace:
            return p
        if p.exists():
            old = Path(tempfile.mkdtemp(dir=p.parent, prefix=f".{p.name}.", suffix=".old"))
            os.replace(p, old / p.name)
        try:
            os.replace(tmp, p)
        except BaseException:
            if old is not None:
                os.replace(old / p.name, p)
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    return p


__all__ = ["atomic_dir", "atomic_write", "atomic_write_bytes", "atomic_write_text"]
