"""The run folder is owned (issue 16, findings 1, 4, 10, 12, 16): a manifest of what was
written; foreign files are never deleted or replaced; a rerun replaces our outputs as a
whole; a failed rerun leaves the previous run intact; nothing written names a local path."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from tp_harness import cli
from tp_harness.evaluation.config import Config
from tp_harness.evaluation.pipeline import run
from tp_harness.evaluation.results import Results
from tp_harness.publishing import plots
from tp_harness.publishing.run_folder import (
    LOCAL_FILE,
    MANIFEST_FILE,
    OutputDirError,
    check_output_dir,
    claim_output_dir,
    read_manifest,
    write_outputs,
)

pytestmark = pytest.mark.usefixtures("offline")


def _config(tmp_path: Path, data: Path, **kw: object) -> Config:
    values: dict[str, object] = dict(
        models=("tfidf-lsa:dim=8", "tfidf-lsa:dim=4"),
        priors=("labels",),
        dataset=str(data),
        label_column="topic",
        temperatures=(100.0,),
        temperature_scale="rms",
        normalize="frobenius",
        num_tasks=8,
        num_classes=(2, 3),
        probes=("ridge", "knn"),
        knn_k=5,
        bootstrap=20,
        output_dir=str(tmp_path / "out"),
        cache_dir=str(tmp_path / "cache"),
    )
    values.update(kw)
    return Config(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory: pytest.TempPathFactory, topic_csv: Path) -> tuple[Results, Results]:
    """A run with two probes and two class counts, and a smaller rerun (one of each)."""
    tmp = tmp_path_factory.mktemp("runs")
    big = run(_config(tmp, topic_csv), progress=False)
    small = run(_config(tmp, topic_csv, probes=("ridge",), num_classes=(2,)), progress=False)
    return big, small


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_a_repo_checkout_is_never_touched(
    tmp_path: Path, two_runs: tuple[Results, Results]
) -> None:
    """Finding 1: `--output-dir .` inside a checkout with tasks/*.yaml deleted them."""
    repo = tmp_path / "repo"
    (repo / "tasks").mkdir(parents=True)
    (repo / "tasks" / "default.yaml").write_text("models: [a]\n")
    (repo / "summary.md").write_text("my notes\n")
    before = _snapshot(repo)
    with pytest.raises(OutputDirError, match="not empty and was not written by tp-harness"):
        write_outputs(two_runs[0], repo)
    with pytest.raises(OutputDirError, match=r"already holds summary\.md, tasks"):
        write_outputs(two_runs[0], repo, overwrite=True)
    assert _snapshot(repo) == before


def test_overwrite_writes_beside_foreign_files(
    tmp_path: Path, two_runs: tuple[Results, Results]
) -> None:
    out = tmp_path / "shared"
    out.mkdir()
    (out / "notes.txt").write_text("keep me")
    write_outputs(two_runs[0], out, overwrite=True)
    assert (out / "notes.txt").read_text() == "keep me"
    manifest = read_manifest(out)
    assert manifest is not None and "notes.txt" not in manifest["files"]
    assert set(manifest["entries"]) == {
        "figures",
        "local.json",
        "results.json",
        "summary.md",
        "tasks",
    }
    # the manifest's checksums are those of the files on disk
    import hashlib

    for rel, rec in manifest["files"].items():
        assert hashlib.sha256((out / rel).read_bytes()).hexdigest() == rec["sha256"]
    # owned now: a rerun needs no --overwrite and still keeps the foreign file
    write_outputs(two_runs[1], out)
    assert (out / "notes.txt").read_text() == "keep me"


def test_a_smaller_rerun_leaves_no_stale_file(
    tmp_path: Path, two_runs: tuple[Results, Results]
) -> None:
    """Finding 4: a rerun with fewer probes or class counts left the old figures."""
    out = tmp_path / "out"
    write_outputs(two_runs[0], out)
    figs_big = {p.name for p in (out / "figures").iterdir()}
    assert {"accuracy_q3_knn.png", "accuracy_q2_ridge.png"} <= figs_big
    (out / "mine.txt").write_text("user file")
    write_outputs(two_runs[1], out)
    figs = {p.name for p in (out / "figures").iterdir()}
    listed = json.loads((out / "results.json").read_text())["conventions"]["figures"]
    assert figs == {Path(f).name for f in listed}
    assert "accuracy_q3_knn.png" not in figs and "accuracy_q2_ridge.png" in figs
    assert (out / "mine.txt").read_text() == "user file"
    assert not [p for p in out.iterdir() if p.name.startswith(".tp-harness")]
    manifest = read_manifest(out)
    assert manifest is not None
    on_disk = {
        p.relative_to(out).as_posix()
        for p in out.rglob("*")
        if p.is_file() and p.name not in (MANIFEST_FILE, "mine.txt")
    }
    assert set(manifest["files"]) == on_disk


def test_a_failed_rerun_leaves_the_previous_run_intact(
    tmp_path: Path, two_runs: tuple[Results, Results], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Finding 4: a rerun failing while writing figures left new tasks/ beside old results."""
    out = tmp_path / "out"
    write_outputs(two_runs[0], out)
    before = _snapshot(out)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("disk full while drawing")

    monkeypatch.setattr(plots, "accuracy_distributions", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        write_outputs(two_runs[1], out)
    assert _snapshot(out) == before
    assert not [p for p in out.iterdir() if p.name.startswith(".tp-harness")]


def test_nothing_written_names_a_local_path(
    tmp_path: Path, two_runs: tuple[Results, Results], topic_csv: Path
) -> None:
    """Finding 10: results.json held the dataset path, cache_dir, output_dir and venv paths."""
    out = tmp_path / "out"
    write_outputs(two_runs[0], out)
    text = (out / "results.json").read_text() + (out / "summary.md").read_text()
    for private in (str(topic_csv.parent), str(tmp_path), os.getcwd(), str(Path.home())):
        assert private not in text
    doc = json.loads((out / "results.json").read_text())
    assert doc["config"]["dataset"] == "<tmp>/" + str(topic_csv.relative_to("/tmp"))
    assert doc["config"]["output_dir"].startswith("<tmp>/")
    local = json.loads((out / LOCAL_FILE).read_text())
    assert local["config"]["dataset"] == str(topic_csv)
    assert local["output_dir"] == str(out.resolve())


def test_files_get_the_users_umask(tmp_path: Path, two_runs: tuple[Results, Results]) -> None:
    """Finding 16: results.json and shards were 0600."""
    old = os.umask(0o022)
    try:
        out = tmp_path / "out"
        write_outputs(two_runs[0], out)
    finally:
        os.umask(old)
    for name in ("results.json", "summary.md", MANIFEST_FILE):
        assert stat.S_IMODE((out / name).stat().st_mode) == 0o644, name
    assert stat.S_IMODE((out / "tasks").stat().st_mode) == 0o755


@pytest.mark.parametrize("case", ["file", "under_a_file", "read_only_fs", "foreign"])
def test_output_dir_problems_fail_before_any_compute(
    tmp_path: Path,
    topic_csv: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    case: str,
) -> None:
    """Finding 12: an output dir that is a file or read-only failed after all the compute."""
    (tmp_path / "f").write_text("x")
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "a.txt").write_text("x")
    out = {
        "file": tmp_path / "f",
        "under_a_file": tmp_path / "f" / "out",
        "read_only_fs": Path("/proc/tp-harness-out"),
        "foreign": tmp_path / "foreign",
    }[case]

    def no_compute(*a: object, **k: object) -> None:
        raise AssertionError("compute started")

    monkeypatch.setattr("tp_harness.evaluation.pipeline.run", no_compute)
    code = cli.main(
        [
            "evaluate",
            "--model",
            "tfidf-lsa:dim=4",
            "--prior",
            "labels",
            "--dataset",
            str(topic_csv),
            "--output-dir",
            str(out),
            "--no-progress",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "--output-dir" in err and str(out) in err
    assert len(err.strip().splitlines()) == 1


def test_claim_marks_an_empty_folder_as_ours(tmp_path: Path) -> None:
    out = claim_output_dir(tmp_path / "new")
    manifest = read_manifest(out)
    assert manifest is not None and manifest["files"] == {} and manifest["entries"] == []
    (out / "cache").mkdir()  # e.g. --cache-dir inside the run folder
    assert check_output_dir(out) is not None


def test_one_model_runs_write_strictly_valid_json(tmp_path: Path, topic_csv: Path) -> None:
    """Finding 11: runs with 1-2 models wrote bare NaN into `correlations`."""
    import shutil
    import subprocess

    res = run(_config(tmp_path, topic_csv, models=("tfidf-lsa:dim=8",)), progress=False)
    out = tmp_path / "one"
    write_outputs(res, out)

    def no_constants(name: str) -> None:
        raise AssertionError(f"bare {name} in results.json")

    for name in ("results.json", MANIFEST_FILE, LOCAL_FILE):
        doc = json.loads((out / name).read_text(), parse_constant=no_constants)
        assert doc
    assert json.loads((out / "results.json").read_text())["correlations"]
    node = shutil.which("node") or shutil.which("nodejs")
    if node:  # the reader the finding named
        code = "JSON.parse(require('fs').readFileSync(process.argv[1], 'utf8'))"
        subprocess.run([node, "-e", code, str(out / "results.json")], check=True, timeout=60)


def test_tasks_dataset_equals_the_row_by_row_table(tmp_path: Path) -> None:
    """The Arrow-built tasks dataset holds exactly what ``Dataset.from_dict`` of the long
    rows holds, survives save/load, and the write leaves datasets' settings as they were."""
    import datasets
    import numpy as np
    from datasets import config as ds_config

    from tp_harness.evaluation.results import TaskSet
    from tp_harness.publishing.run_folder import _quiet_fast_writes, tasks_dataset

    rng = np.random.default_rng(0)
    ids = rng.permutation(50)[:7]
    sets = [
        TaskSet("p", 0.5, 2, rng.integers(0, 2, (3, 7))),
        TaskSet("self", 1.0, 3, rng.integers(0, 3, (2, 7)), model="m"),
        TaskSet("p", 2.0, 3, rng.integers(0, 3, (4, 7))),
    ]
    settings = [{"num_classes": ts.num_classes} for ts in sets]
    rows: dict[str, list[object]] = {k: [] for k in ("example_id", "task_id", "prior")}
    rows.update(temperature=[], num_classes=[], label=[])
    task = 0
    for ts in sets:
        for labels in ts.tasks:
            for i, y in zip(ids, labels, strict=True):
                rows["example_id"].append(int(i))
                rows["task_id"].append(task)
                rows["prior"].append(ts.label)
                rows["temperature"].append(ts.temperature)
                rows["num_classes"].append(ts.num_classes)
                rows["label"].append(int(y))
            task += 1
    ref = datasets.Dataset.from_dict(rows)
    ds = tasks_dataset(sets, ids, settings)
    assert ds.features == ref.features and ds.to_dict() == ref.to_dict()
    assert json.loads(ds.info.description) == {"sampler": settings}
    assert tasks_dataset(sets, ids, settings)._fingerprint == ds._fingerprint
    sets[0].tasks[0, 0] ^= 1
    assert tasks_dataset(sets, ids, settings)._fingerprint != ds._fingerprint
    before = (datasets.is_progress_bar_enabled(), ds_config.DEFAULT_MAX_BATCH_SIZE)
    with _quiet_fast_writes():
        ds.save_to_disk(str(tmp_path / "tasks"))
    assert (datasets.is_progress_bar_enabled(), ds_config.DEFAULT_MAX_BATCH_SIZE) == before
    assert datasets.load_from_disk(str(tmp_path / "tasks")).to_dict() == ref.to_dict()


def test_evaluate_prints_its_stage_timings_and_forked_figures_equal_serial_ones(
    tmp_path: Path,
    topic_csv: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import yaml

    suite = tmp_path / "suite.yaml"
    values = {**_config(tmp_path, topic_csv).to_dict(), "output_dir": str(tmp_path / "a")}
    suite.write_text(yaml.safe_dump({k: v for k, v in values.items() if v is not None}))
    assert cli.main(["evaluate", "--suite", str(suite), "--no-progress"]) == 0
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert line.startswith("timings (s): ")
    names = [part.split()[0] for part in line.removeprefix("timings (s): ").split(" · ")]
    stages = ["data", "embed", "moments", "flags", "sampling", "probes", "task_alignment"]
    assert [n for n in names if n not in ("startup", "total")] == [*stages, "baselines", "write"]
    total = float(line.rsplit(" ", 1)[1])
    parts = [float(p.split()[1]) for p in line.removeprefix("timings (s): ").split(" · ")[:-1]]
    assert total >= sum(parts) - 0.05  # the wall time of the process covers its parts
    monkeypatch.setenv("TP_HARNESS_SERIAL_FIGURES", "1")
    assert cli.main(["evaluate", "--suite", str(suite), "--output-dir", str(tmp_path / "b")]) == 0
    figs = sorted(p.name for p in (tmp_path / "a" / "figures").iterdir())
    assert figs == sorted(p.name for p in (tmp_path / "b" / "figures").iterdir()) and figs
    for name in figs:
        a, b = ((tmp_path / d / "figures" / name).read_bytes() for d in ("a", "b"))
        assert a == b, name
