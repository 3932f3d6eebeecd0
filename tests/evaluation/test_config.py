"""Suites validate into one frozen config; CLI flags override; unknown keys are errors."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from tp_harness.cli import _overrides, build_parser
from tp_harness.evaluation.config import Config, from_mapping, load_config, read_suite


def test_default_suite_is_offline() -> None:
    cfg = load_config()
    assert cfg.dataset == "bundled:drug_reviews"
    assert all(m.startswith(("bundled:", "tfidf-lsa")) for m in cfg.models)
    assert cfg.priors == ("bundled:minilm",)
    with pytest.raises(dataclasses.FrozenInstanceError):
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
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['modles'\]"):
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
