"""Share independent writing jobs (the figures) with a forked process.

Drawing the figures is pure Python and matplotlib (one core); on Linux a forked child
draws every other figure while this process writes the tasks dataset and draws the rest
(about 0.7 s of a warm main job's 2 s of writing, measured in benchmarks/README.md). The
child inherits the results by copy-on-write, touches neither torch nor numba, reports
its paths through a pipe and leaves with ``os._exit`` (no atexit handler runs twice). If
it fails in any way its jobs are run again here, so an error surfaces with this
process's traceback. ``TP_HARNESS_SERIAL_FIGURES=1`` (or a platform without ``fork``)
runs everything here.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import warnings
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

Job = Callable[[], "Path | None"]


def _can_fork() -> bool:
    return (
        sys.platform == "linux"
        and hasattr(os, "fork")
        and os.environ.get("TP_HARNESS_SERIAL_FIGURES", "") in ("", "0")
    )


class Split:
    """The jobs of this process (:meth:`run`) and of the child; :meth:`results` in the
    jobs' order once the context has exited."""

    def __init__(self, jobs: Sequence[Job]) -> None:
        self.jobs = list(jobs)
        self.pid: int | None = None
        self.fd: int | None = None
        self.theirs = list(range(1, len(self.jobs), 2)) if _can_fork() else []
        self.mine = [i for i in range(len(self.jobs)) if i not in set(self.theirs)]
        self.out: dict[int, Path | None] = {}

    def start(self) -> None:
        if not self.theirs:
            return
        r, w = os.pipe()
        with warnings.catch_warnings():  # Python >= 3.12 warns about fork with threads
            warnings.simplefilter("ignore", DeprecationWarning)
            pid = os.fork()
        if pid == 0:  # the child: draw, report, leave without any cleanup of the parent's
            code = 1
            try:
                os.close(r)
                paths = [self.jobs[i]() for i in self.theirs]
                os.write(w, json.dumps([None if p is None else str(p) for p in paths]).encode())
                code = 0
            finally:
                os._exit(code)
        os.close(w)
        self.pid, self.fd = pid, r

    def run(self) -> None:
        """Run this process's share."""
        for i in self.mine:
            self.out[i] = self.jobs[i]()

    def join(self, failed: bool) -> None:
        """Collect the child's paths; on any failure of the child, run its jobs here."""
        if self.pid is None or self.fd is None:
            return
        with os.fdopen(self.fd, "rb") as pipe:
            data = pipe.read()
        _, status = os.waitpid(self.pid, 0)
        if failed:
            return
        paths: list[Any] | None = None
        if os.waitstatus_to_exitcode(status) == 0:
            with contextlib.suppress(ValueError):
                paths = json.loads(data.decode())
        if paths is None or len(paths) != len(self.theirs):
            for i in self.theirs:
                self.out[i] = self.jobs[i]()
            return
        for i, p in zip(self.theirs, paths, strict=True):
            self.out[i] = None if p is None else Path(p)

    def results(self) -> list[Path | None]:
        return [self.out[i] for i in range(len(self.jobs))]


@contextlib.contextmanager
def split_jobs(jobs: Sequence[Job]) -> Iterator[Split]:
    """Fork a child for every other job; the body calls ``split.run()`` for the rest.
    The child is always waited for, also when the body raises."""
    split = Split(jobs)
    split.start()
    failed = True
    try:
        yield split
        failed = False
    finally:
        split.join(failed)


__all__ = ["Split", "split_jobs"]
