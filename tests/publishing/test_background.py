"""Figures shared with a forked process: same files, same order, and every failure of
the child falls back to this process."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tp_harness.publishing.background import split_jobs


def _jobs(folder: Path, parent: int, fail_in_child: set[int] = frozenset()) -> list:  # type: ignore[assignment]
    def job(i: int) -> Path | None:
        if i in fail_in_child and os.getpid() != parent:
            raise RuntimeError("only in the child")
        if i == 3:
            return None  # a figure with nothing to show
        p = folder / f"f{i}.txt"
        p.write_text(f"{i} from {'parent' if os.getpid() == parent else 'child'}")
        return p

    return [lambda i=i: job(i) for i in range(6)]


def _run(jobs: list) -> list[Path | None]:  # type: ignore[type-arg]
    with split_jobs(jobs) as split:
        split.run()
    return split.results()


def test_forked_jobs_give_the_serial_results_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    forked = _run(_jobs(tmp_path, os.getpid()))
    assert [p.name if p else None for p in forked] == [
        "f0.txt",
        "f1.txt",
        "f2.txt",
        None,
        "f4.txt",
        "f5.txt",
    ]
    who = {p.name: p.read_text().split()[-1] for p in forked if p}
    if os.name == "posix" and hasattr(os, "fork"):
        assert who["f1.txt"] == "child" and who["f0.txt"] == "parent"
    monkeypatch.setenv("TP_HARNESS_SERIAL_FIGURES", "1")
    serial = _run(_jobs(tmp_path, os.getpid()))
    assert serial == forked and {p.read_text().split()[-1] for p in serial if p} == {"parent"}


def test_a_failing_child_falls_back_to_this_process(tmp_path: Path) -> None:
    out = _run(_jobs(tmp_path, os.getpid(), fail_in_child={1}))
    assert out[1] is not None and out[1].read_text() == "1 from parent"
    assert out[5] is not None and out[5].read_text().endswith("parent")  # the child's share


def test_an_error_in_this_process_still_waits_for_the_child(tmp_path: Path) -> None:
    with pytest.raises(ZeroDivisionError), split_jobs(_jobs(tmp_path, os.getpid())) as split:
        split.run()
        _ = 1 / 0
    assert split.pid is None or _reaped(split.pid)


def _reaped(pid: int) -> bool:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return False
