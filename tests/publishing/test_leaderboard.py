"""Leaderboard table functions on hand-built results and on a real (tiny, offline) run."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from tests.publishing.runs import RANKED, N, make_results, write_run
from tp_harness.evaluation.results import Results
from tp_harness.publishing import leaderboard as lb


@pytest.fixture
def frame() -> pd.DataFrame:
    return lb.frame_from_runs([("run", make_results())])


def _group(
    df: pd.DataFrame, prior: str = "labels", t: float = 0.1, probe: str = "ridge q=2"
) -> pd.DataFrame:
    return df[(df[lb.PRIOR] == prior) & (df[lb.TEMPERATURE] == t) & (df[lb.PROBE] == probe)]


def test_frame_ranks_by_expected_alignment_within_groups(frame: pd.DataFrame) -> None:
    assert len(frame) == 5 * 2 * 2 * 2  # models x priors x temperatures x probe settings
    assert list(frame.columns) == list(lb.COLUMNS)
    top = _group(frame)
    assert top[lb.MODEL].tolist() == RANKED
    assert top[lb.RANK].tolist() == [1, 2, 3, 4, 5]
    assert top[lb.ALIGNMENT].is_monotonic_decreasing
    # every (dataset, prior, T, probe) group is ranked 1..5
    sizes = frame.groupby(list(lb.RANK_GROUP))[lb.RANK].agg(lambda r: sorted(r.tolist()))
    assert all(r == [1, 2, 3, 4, 5] for r in sizes)
    # groups sorted: prior, then temperature ascending
    assert frame[lb.PRIOR].iloc[0] == "labels" and frame[lb.TEMPERATURE].iloc[0] == 0.1


def test_frame_values_and_metadata(frame: pd.DataFrame) -> None:
    row = _group(frame).iloc[0]
    assert row[lb.MODEL] == "mini@layer1"
    assert row[lb.ALIGNMENT] == pytest.approx(0.03 / 1.1)
    assert row[lb.STD] == pytest.approx(math.sqrt(0.002 * N * N) / N)  # std / n
    assert row[lb.VAR_PER_PAIR] == pytest.approx(0.002)
    assert row[lb.ACC_MEAN] == pytest.approx(0.9) and row[lb.ACC_P5] == pytest.approx(0.8)
    assert row[lb.RANKME] == 11.0
    # layer outputs map to their model's revision and modality
    assert (row[lb.REVISION], row[lb.MODALITY], row[lb.MODEL_ID]) == ("abc123", "text", "org/mini")
    by_model = _group(frame).set_index(lb.MODEL)
    assert by_model.loc["vit", lb.MODALITY] == "image"
    assert by_model.loc["tfidf", lb.MODALITY] == "text"  # from the dataset's modality
    assert by_model.loc["tfidf", lb.REVISION] == "n/a"


def test_models_without_probes_keep_one_row() -> None:
    res = make_results()
    res["probes"] = [p for p in res["probes"] if p["model"] != "vit"]
    df = lb.frame_from_runs([("r", res)])
    vit = df[df[lb.MODEL] == "vit"]
    assert len(vit) == 4 and vit[lb.PROBE].isna().all() and vit[lb.ACC_MEAN].isna().all()
    kept = lb.filter_frame(df, probes=["ridge q=2"], priors=["labels"], temperatures=[0.1])
    assert "vit" in kept[lb.MODEL].tolist() and len(kept) == 5


def test_filters_narrow_and_keep_order(frame: pd.DataFrame) -> None:
    out = lb.filter_frame(
        frame, modalities=["text"], priors=["labels"], temperatures=[0.1], probes=["ridge q=2"]
    )
    assert out[lb.MODEL].tolist() == [m for m in RANKED if m != "vit"]
    assert out[lb.RANK].tolist() == [1, 3, 4, 5]  # ranks stay those of the full board
    assert len(lb.filter_frame(frame, temperatures=[1.0])) == 20
    assert lb.filter_frame(frame, priors=[]).empty
    assert lb.filter_frame(frame).equals(frame)


def test_search_matches_any_term_any_case(frame: pd.DataFrame) -> None:
    one = _group(lb.search(frame, "MINI@layer1"))
    assert one[lb.MODEL].tolist() == ["mini@layer1"]
    two = _group(lb.search(frame, " vit, TFIDF "))
    assert two[lb.MODEL].tolist() == ["vit", "tfidf"]
    assert lb.search(frame, "  ").equals(frame)
    assert lb.search(frame, "nothing-like-this").empty


def test_choices(frame: pd.DataFrame) -> None:
    assert lb.choices(frame, lb.MODALITY) == ["image", "text"]
    assert lb.choices(frame, lb.TEMPERATURE) == [0.1, 1.0]
    assert lb.choices(frame, lb.PROBE) == ["knn q=3", "ridge q=2"]


def test_defaults(frame: pd.DataFrame) -> None:
    assert lb.default_probe(frame) == "ridge q=2"  # linear probe first, whatever the name order
    assert lb.default_probe(lb.filter_frame(frame, probes=["knn q=3"])) == "knn q=3"
    assert lb.default_probe(frame.iloc[:0]) is None
    assert lb.default_columns(frame) == list(lb.DEFAULT_COLUMNS)
    assert lb.DATASET not in lb.default_columns(frame)  # one dataset: no dataset column
    two = pd.concat([frame, frame.assign(**{lb.DATASET: "other"})])
    assert lb.DATASET in lb.default_columns(two)
    assert set(lb.filter_frame(two, datasets=["other"])[lb.DATASET]) == {"other"}


def test_select_columns(frame: pd.DataFrame) -> None:
    assert list(lb.select_columns(frame).columns) == list(lb.DEFAULT_COLUMNS)
    picked = lb.select_columns(frame, [lb.REVISION, lb.MODEL, lb.RANKME])
    assert list(picked.columns) == [lb.MODEL, lb.RANKME, lb.REVISION]  # display order
    with pytest.raises(ValueError, match="unknown leaderboard columns"):
        lb.select_columns(frame, ["model", "nope"])


def test_csv_round_trip(frame: pd.DataFrame, tmp_path: Path) -> None:
    path = lb.to_csv(frame, tmp_path / "sub" / "board.csv")
    back = lb.read_csv(path)
    pd.testing.assert_frame_equal(back, frame, check_dtype=False)
    assert back.loc[back[lb.MODEL] == "tfidf", lb.REVISION].iloc[0] == "n/a"


def test_display_frame_rounds_significant_digits(frame: pd.DataFrame) -> None:
    shown = lb.display_frame(frame, digits=3)
    assert shown[lb.ALIGNMENT].iloc[0] == float(f"{frame[lb.ALIGNMENT].iloc[0]:.3g}")
    assert shown[lb.MODEL].equals(frame[lb.MODEL])


def test_load_from_run_folder_and_folder_of_runs(tmp_path: Path) -> None:
    write_run(tmp_path / "runs" / "a", dataset="toy")
    write_run(tmp_path / "runs" / "b", dataset="other", models={"vit": 0.5})
    write_run(tmp_path / "runs" / ".cache" / "x")  # hidden folders are skipped
    one = lb.load_frame(tmp_path / "runs" / "a")
    assert set(one[lb.RUN]) == {"a"} and len(one) == 40
    both = lb.load_frame(str(tmp_path / "runs"))
    assert set(both[lb.RUN]) == {"runs/a", "runs/b"} and len(both) == 48
    # vit is ranked 1st on its own dataset, 2nd on toy
    top = both[
        (both[lb.PRIOR] == "labels")
        & (both[lb.TEMPERATURE] == 0.1)
        & (both[lb.PROBE] == "ridge q=2")
        & (both[lb.MODEL] == "vit")
    ]
    assert dict(zip(top[lb.DATASET], top[lb.RANK], strict=True)) == {"toy": 2, "other": 1}
    assert len(lb.load_frame(tmp_path / "runs" / "a" / "results.json")) == 40


def test_bad_sources(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(FileNotFoundError, match=r"no results\.json"):
        lb.load_frame(tmp_path)
    with pytest.raises(FileNotFoundError, match="neither an existing folder"):
        lb.load_frame(str(tmp_path / "missing" / "deep" / "path"))
    monkeypatch.delenv(lb.SOURCE_ENV, raising=False)
    with pytest.raises(ValueError, match=lb.SOURCE_ENV):
        lb.load_frame(lb.default_source())


def test_hub_repo_id_is_downloaded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    snapshot = write_run(tmp_path / "snapshot")
    calls: list[tuple[Any, ...]] = []

    def fake_snapshot(repo_id: str, **kw: Any) -> str:
        calls.append((repo_id, kw["repo_type"]))
        return str(snapshot)

    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(lb.SOURCE_ENV, "org/results")
    df = lb.load_frame(lb.default_source())
    assert calls == [("org/results", "dataset")]
    assert set(df[lb.RUN]) == {"org/results"} and len(df) == 40


def test_hub_offline_error_names_repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.chdir(tmp_path)
    import huggingface_hub.constants as c

    monkeypatch.setattr(c, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(c, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    with pytest.raises(OSError, match=r"'org/absent-results'.*HF_HUB_OFFLINE"):
        lb.load_frame("org/absent-results")


def test_figures(frame: pd.DataFrame) -> None:
    fig = lb.alignment_std_figure(frame)
    assert len(fig.axes) == 4  # 2 priors x 2 temperatures
    assert sum(np.asarray(c.get_offsets()).shape[0] for c in fig.axes[0].collections) == 5
    layers = lb.layer_figure(
        lb.filter_frame(frame, priors=["labels"], temperatures=[0.1], probes=["ridge q=2"])
    )
    (line,) = layers.axes[0].get_lines()
    assert np.asarray(line.get_xdata()).tolist() == [0, 1, 2]
    expected = [a / 1.1 for a in (0.01, 0.03, 0.02)]  # labels prior, T = 0.1
    assert np.asarray(line.get_ydata()).tolist() == pytest.approx(expected)
    probes = lb.probe_figure(frame)
    assert [a.get_title() for a in probes.axes] == ["knn q=3", "ridge q=2"]
    two = pd.concat([frame, frame.assign(**{lb.DATASET: "other"})])
    split = lb.alignment_std_figure(two, max_panels=3)  # datasets never share a panel
    assert [a.get_title() for a in split.axes[:3]] == [
        "prior=labels  temperature=0.1  dataset=other",
        "prior=labels  temperature=0.1  dataset=toy",
        "prior=labels  temperature=1  dataset=other",
    ]
    assert "first 3 of 8 panels" in split.get_suptitle()
    empty = lb.alignment_std_figure(frame.iloc[:0])
    assert "no rows" in empty.axes[0].texts[0].get_text()
    no_layers = lb.layer_figure(lb.search(frame, "vit"))
    assert "no layered models" in no_layers.axes[0].texts[0].get_text()


def test_real_run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A tiny offline ``evaluate`` run reads back with one ranked row per model."""
    from tp_harness.evaluation.config import Config
    from tp_harness.evaluation.pipeline import run
    from tp_harness.publishing.run_folder import write_outputs

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    cfg = Config(
        models=("tfidf-lsa:dim=16", "tfidf-lsa:dim=4", "tfidf-lsa:dim=2"),
        priors=("labels",),
        dataset="bundled:drug_reviews",
        num_examples=120,
        num_tasks=16,
        num_classes=(2,),
        probes=("ridge",),
        temperatures=(0.1, 1.0),
        output_dir=str(tmp_path / "run"),
        cache_dir=str(tmp_path / "cache"),
        bootstrap=50,
    )
    res = run(cfg, progress=False)
    write_outputs(res, cfg.output_dir)
    df = lb.load_frame(tmp_path / "run")
    assert len(df) == 6 and set(df[lb.MODALITY]) == {"text"}
    for t in (0.1, 1.0):
        rows = df[df[lb.TEMPERATURE] == t]
        expect = sorted(
            (s for s in res.scores if s["temperature"] == t), key=lambda s: -s["mean_per_pair"]
        )
        assert rows[lb.MODEL].tolist() == [s["model"] for s in expect]
        assert rows[lb.RANK].tolist() == [1, 2, 3]
        assert rows[lb.ACC_MEAN].notna().all() and rows[lb.RANKME].notna().all()


def test_app_callback_and_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The app's one callback, the ``leaderboard`` subcommand and the Space entry point."""
    pytest.importorskip("gradio")
    import runpy

    import gradio as gr

    from tp_harness.publishing import leaderboard_app as app

    run_dir = write_run(tmp_path / "run")
    frame = lb.load_frame(run_dir)
    table, csv, *figs = app.views(
        frame, "mini", None, None, ["labels"], [0.1], "ridge q=2", [lb.MODEL, lb.RANK]
    )
    assert table.values.tolist() == [[1, "mini@layer1"], [3, "mini@layer2"], [4, "mini@layer0"]]
    assert lb.read_csv(csv).values.tolist() == table.values.tolist()
    assert [len(f.axes) for f in figs] == [1, 4, 1]
    assert isinstance(app.build_app(frame), gr.Blocks)

    from tp_harness import cli

    args = cli.build_parser().parse_args(["leaderboard", str(run_dir), "--port", "7999"])
    assert (args.source, args.port, args.host) == (str(run_dir), 7999, "127.0.0.1")
    launched: list[dict[str, Any]] = []
    monkeypatch.setattr(gr.Blocks, "launch", lambda self, **kw: launched.append(kw))
    assert args.func(args) == 0
    assert launched == [{"server_name": "127.0.0.1", "server_port": 7999}]

    monkeypatch.setenv(lb.SOURCE_ENV, str(run_dir))
    monkeypatch.setattr("sys.argv", ["app.py"])
    space = runpy.run_path(str(Path(__file__).parents[2] / "spaces/leaderboard/app.py"))
    assert isinstance(space["demo"], gr.Blocks) and launched == launched[:1]  # not launched


def test_hub_repo_through_a_local_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A results repo pushed to the local Hub-protocol server, read with snapshot_download."""
    from huggingface_hub import HfApi, constants

    from tests.hub_server import HubServer

    repo = write_run(tmp_path / "push")
    (repo / "README.md").write_text("---\nlicense: apache-2.0\n---\n# scores\n")
    (repo / "scores.parquet").write_bytes(b"PAR1 not needed by the leaderboard")
    with HubServer(token="secret", lifetime_s=120) as hub:
        for name, value in (
            ("ENDPOINT", hub.url),
            ("HF_HUB_OFFLINE", False),
            ("HF_HUB_CACHE", str(tmp_path / "cache")),
            ("HF_HUB_DISABLE_XET", True),
        ):
            monkeypatch.setattr(constants, name, value)
        monkeypatch.setattr(
            constants,
            "HUGGINGFACE_CO_URL_TEMPLATE",
            hub.url + "/{repo_id}/resolve/{revision}/{filename}",
        )
        monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
        monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
        api = HfApi(endpoint=hub.url, token="secret")
        api.create_repo("org/results", repo_type="dataset")
        api.upload_folder(folder_path=str(repo), repo_id="org/results", repo_type="dataset")
        monkeypatch.chdir(tmp_path)
        df = lb.load_frame("org/results")
    assert set(df[lb.RUN]) == {"org/results"} and len(df) == 40
    assert _group(df)[lb.MODEL].tolist() == RANKED
    snapshot = next((tmp_path / "cache").rglob("results.json")).parent
    assert not (snapshot / "scores.parquet").exists()  # only results.json and cards fetched


def _scored(
    model: str,
    mean: float,
    *,
    n: int = 100,
    normalize: str | None = "frobenius",
    flags: list[str] | None = None,
    prior: str = "p",
) -> dict[str, Any]:
    return {
        "model": model,
        "prior": prior,
        "temperature": 0.1,
        "n": n,
        "mean": mean * n * n,
        "variance": 1.0,
        "std": 1.0,
        "mean_per_pair": mean,
        "variance_per_pair": 1e-4,
        "normalize": normalize,
        "model_kernel": "centered_cosine",
        "prior_kernel": "centered_cosine",
        "flags": flags or [],
    }


def test_flagged_rows_get_no_rank_and_only_comparable_records_share_a_ranking() -> None:
    scores = [
        _scored("a", 0.2),
        _scored("b", 0.1),
        _scored("copy", 0.9, flags=["prior"]),
        _scored("big-n", 0.5, n=200),
        _scored("raw", 0.7, normalize=None),
    ]
    probes = [
        {
            "model": m,
            "prior": "p",
            "temperature": 0.1,
            "num_classes": 2,
            "probe": "ridge",
            "mean": 0.8,
            "std": 0.1,
            "p5": 0.6,
            "min": 0.5,
            "gain_over_majority": 0.2,
            "label_accuracy": 0.7,
        }
        for m in ("a", "b", "copy", "big-n", "raw")
    ] + [  # tasks of another prior: never joined with prior "p"
        {
            "model": "a",
            "prior": "q",
            "temperature": 0.1,
            "num_classes": 2,
            "probe": "ridge",
            "mean": 0.1,
            "std": 0.1,
            "p5": 0.1,
            "min": 0.1,
            "gain_over_majority": 0.0,
            "label_accuracy": 0.7,
        }
    ]
    res = Results(
        config={"dataset": "toy"}, data={"dataset": "toy", "n": 100}, scores=scores, probes=probes
    ).to_dict()
    df = lb.frame_from_runs([("run", res)])
    rank = dict(zip(df[lb.MODEL], df[lb.RANK], strict=True))
    assert rank["a"] == 1 and rank["b"] == 2 and pd.isna(rank["copy"])
    assert rank["big-n"] == 1 and rank["raw"] == 1  # other n, other normalisation: own ranks
    assert df.loc[df[lb.MODEL] == "copy", lb.FLAGS].item() == "prior"
    assert df.loc[df[lb.MODEL] == "a", lb.ACC_MEAN].tolist() == [0.8]  # prior q's probes left out
    assert df[lb.LABEL_ACC].eq(0.7).all()
    assert {lb.NORMALIZE, lb.N, lb.FLAGS, lb.LABEL_ACC} <= set(lb.DEFAULT_COLUMNS)
    assert set(df[lb.NORMALIZE]) == {"frobenius", "none"}


# ----------------------------------------------------------------------------- issue 16 (9)


def test_a_corrupt_or_foreign_run_is_skipped_with_a_warning(tmp_path: Path) -> None:
    """Finding 9: one corrupt results.json among good runs stopped the whole app."""
    write_run(tmp_path / "good")
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "results.json").write_text('{"schema_version": "1.1",\n')
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "results.json").write_text('{"accuracy": 0.9}')
    skipped: list[str] = []
    with pytest.warns(lb.SkippedRunWarning) as record:
        df = lb.load_frame(tmp_path, skipped)
    assert set(df[lb.RUN]) == {f"{tmp_path.name}/good"}
    assert len(skipped) == 2 and len(record) == 2
    assert any(str(tmp_path / "broken" / "results.json") in s for s in skipped)
    assert any(str(tmp_path / "foreign" / "results.json") in s for s in skipped)


def test_records_with_missing_fields_are_tolerated() -> None:
    """Finding 9: a record without `n` raised KeyError."""
    res = make_results()
    del res["scores"][0]["n"]
    del res["scores"][1]["variance_per_pair"]
    res["scores"].append({"prior": "labels"})  # no model: cannot be placed, dropped
    del res["probes"][0]["num_classes"]
    df = lb.frame_from_runs([("r", res)])
    assert len(df) > 0 and df[lb.STD].isna().sum() >= 1


def test_symlinked_run_folders_are_found(tmp_path: Path) -> None:
    """Finding 9: symlinked run folders were not found."""
    real = write_run(tmp_path / "elsewhere" / "run1")
    board = tmp_path / "board"
    board.mkdir()
    (board / "linked").symlink_to(real, target_is_directory=True)
    (board / "loop").symlink_to(board, target_is_directory=True)  # a cycle ends
    assert lb.find_runs(board) == [board / "linked"]


def test_empty_selections_give_an_empty_table_and_no_temp_folder_leak(tmp_path: Path) -> None:
    """Finding 9: empty filters crashed the callback; each update leaked a temp folder."""
    pytest.importorskip("gradio")
    import tempfile

    from tp_harness.publishing import leaderboard_app as app

    df = lb.frame_from_runs([("r", make_results())])
    before = set(Path(tempfile.gettempdir()).glob("tp-leaderboard-*"))
    folder = tmp_path / "csv"
    folder.mkdir()
    probe = lb.default_probe(df)
    for args in (
        ("no-such-model", None, None, None, None, probe, None),  # search matches nothing
        ("", None, None, [], None, probe, None),  # every prior unchecked
        ("", [], [], [], [], None, []),  # everything unchecked
    ):
        table, csv, *figs = app.views(df, *args, csv_folder=folder)
        assert len(table) == 0 and lb.read_csv(csv).empty and len(figs) == 3
    for _ in range(3):
        app.views(df, "", None, None, None, None, probe, None, csv_folder=folder)
    assert len(list(folder.iterdir())) == 2  # one file per distinct view (empty, full)
    assert set(Path(tempfile.gettempdir()).glob("tp-leaderboard-*")) == before
