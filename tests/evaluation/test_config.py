"""Suites validate into one frozen config; CLI flags override; unknown keys are errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from tp_harness.cli import _overrides, build_parser
from tp_harness.evaluation.config import Config, from_mapping, load_config, read_suite


def test_default_suite_is_offline() -> None:
    cfg = load_config()
    assert cfg.dataset == "bundled:drug_reviews"
    assert all(m.startswith(("bundled:", "tfidf-lsa")) for m in cfg.models)
    assert cfg.priors == ("bundled:minilm",)
    with pytest.raises(ValueError, match="frozen"):
        cfg.seed = 3  # type: ignore[misc]


def test_include_and_override(tmp_path: Path) -> None:
    base = tmp_path / "base.yaml"
    base.write_text("models: [a]\ntemperatures: [0.5]\nnum_tasks: 10\n")
    child = tmp_path / "child.yaml"
    child.write_text("include: base.yaml\nnum_tasks: 20\n")
    assert read_suite(child) == {"models": ["a"], "temperatures": [0.5], "num_tasks": 20}
    cfg = load_config(str(child), {"num_tasks": 30, "seed": None, "temperatures": [1, 2]})
    assert (cfg.num_tasks, cfg.temperatures, cfg.models) == (30, (1.0, 2.0), ("a",))
    cyc = tmp_path / "cyc.yaml"
    cyc.write_text("include: cyc.yaml\n")
    with pytest.raises(ValueError, match="cycle"):
        read_suite(cyc)


def test_unknown_keys_and_bad_values(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"modles: unknown key \(did you mean models\?\)"):
        from_mapping({"modles": ["x"]})
    bad = tmp_path / "bad.yaml"
    bad.write_text("models: [a]\ntemprature: 1\n")
    with pytest.raises(ValueError, match="temprature"):
        load_config(str(bad))
    with pytest.raises(ValueError, match="suite 'nope' not found"):
        load_config("nope")
    for kwargs, match in [
        ({"temperatures": (0.0,)}, "temperatures"),
        ({"num_classes": (1,)}, "num_classes"),
        ({"num_tasks": 0}, "num_tasks"),
        ({"probes": ("svm",)}, "probes"),
        ({"model_kernel": "rbf"}, "model_kernel"),
        ({"priors": ("a", "b"), "prior_weights": (1.0,)}, "prior_weights"),
        ({"priors": ("a",), "prior_weights": (-1.0,)}, "prior_weights"),
        ({"test_fraction": 1.0}, "test_fraction"),
        ({"dtype": "int8"}, "dtype"),
    ]:
        with pytest.raises(ValueError, match=match):
            Config(**kwargs)  # type: ignore[arg-type]


def test_cli_flags_map_to_config_keys() -> None:
    args = build_parser().parse_args(
        [
            "evaluate",
            "--model",
            "a",
            "--model",
            "b",
            "--prior",
            "p",
            "--prior",
            "q",
            "--prior-weights",
            "0.7",
            "0.3",
            "--temperature",
            "0.1",
            "--temperature",
            "1",
            "--num-classes",
            "2",
            "--num-classes",
            "5",
            "--num-tasks",
            "7",
            "--seed",
            "3",
            "--num-examples",
            "50",
            "--output-dir",
            "o",
            "--cache-dir",
            "c",
        ]
    )
    cfg = load_config(None, _overrides(args))
    assert cfg.models == ("a", "b") and cfg.priors == ("p", "q")
    assert cfg.prior_weights == (0.7, 0.3) and cfg.temperatures == (0.1, 1.0)
    assert cfg.num_classes == (2, 5) and (cfg.num_tasks, cfg.seed, cfg.num_examples) == (7, 3, 50)
    assert (cfg.output_dir, cfg.cache_dir) == ("o", "c")
    # unset flags keep the suite's values
    assert load_config(None, _overrides(build_parser().parse_args(["evaluate"]))) == load_config()


# ----------------------------------------------------------------------------- issue 16 (3)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('trust_remote_code: "false"', "trust_remote_code: must be true or false"),
        ('num_tasks: "32"', "num_tasks: must be an integer; got '32'"),
        ("num_tasks: 32.7", "num_tasks: must be an integer; got 32.7"),
        ("seed: 1.5", "seed: must be an integer; got 1.5"),
        ("block_size: '64'", "block_size: must be an integer; got '64'"),
        ("temperatures: ['0.1']", "temperatures[0]: expected a number, got str '0.1'"),
        ("seed: -1", "seed: must be >= 0; got -1"),
        ("models: []", "models: list at least one model spec"),
        ("normalize: l2", "normalize: 'l2' is not one of none, frobenius"),
    ],
)
def test_wrong_types_are_one_line_errors_with_file_and_line(
    tmp_path: Path, line: str, message: str
) -> None:
    """Finding 3: every wrong-typed YAML value names the key, the file and the line."""
    suite = tmp_path / "s.yaml"
    suite.write_text(f"# a suite\nmodels: [tfidf-lsa:dim=8]\nname: x\n{line}\n")
    with pytest.raises(ValueError) as info:
        load_config(str(suite))
    text = str(info.value)
    assert message in text
    assert f"{suite.resolve()}:4: " in text and "\n" not in text
    assert "Traceback" not in text and "pydantic" not in text


def test_quoted_false_never_enables_remote_code(tmp_path: Path) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text("models: [a]\ntrust_remote_code: 'false'\n")
    with pytest.raises(ValueError, match="trust_remote_code"):
        load_config(str(suite))
    suite.write_text("models: [a]\ntrust_remote_code: false\n")
    assert load_config(str(suite)).trust_remote_code is False
    with pytest.raises(ValueError, match="trust_remote_code"):
        Config(trust_remote_code=1)  # type: ignore[arg-type]


def test_yaml_syntax_errors_name_file_and_line(tmp_path: Path) -> None:
    suite = tmp_path / "s.yaml"
    suite.write_text("models: [a\nnum_tasks: 3\n")
    with pytest.raises(ValueError, match=r"s\.yaml:\d+:\d+: YAML syntax error"):
        load_config(str(suite))
    suite.write_text("- a\n- b\n")
    with pytest.raises(ValueError, match="must be a YAML mapping"):
        load_config(str(suite))


def test_cli_errors_name_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    from tp_harness import cli

    assert cli.main(["evaluate", "--seed", "-1", "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.strip() == "tp-harness evaluate: error: --seed: seed: must be >= 0; got -1"
    with pytest.raises(SystemExit):
        cli.main(["evaluate", "--num-tasks", "3.5"])
    assert "--num-tasks: invalid int value: '3.5'" in capsys.readouterr().err


def test_every_config_field_has_a_flag_with_help_and_default() -> None:
    """The CLI is generated from the schema: one flag per field, grouped, defaults shown."""
    from tp_harness.evaluation.config import GROUPS, cli_fields, flag_of

    sub = build_parser()._subparsers._group_actions[0].choices["evaluate"]  # type: ignore[union-attr]
    by_flag = {s: a for a in sub._actions for s in a.option_strings}
    titles = [g.title for g in sub._action_groups]
    assert all(g in titles for g in GROUPS)
    for key, _ in cli_fields():
        action = by_flag[flag_of(key)]
        assert action.dest == key and action.help and "(default: " in action.help
    assert {k for k, _ in cli_fields()} == set(Config.model_fields) - {"extra"}
