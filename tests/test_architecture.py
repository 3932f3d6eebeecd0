"""The floor plan holds: what each floor imports, what ``import tp_harness`` loads,
one registry per concept, and tests that mirror the package."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE_ALLOWED = {"torch", "numpy", "numba", "llvmlite", "threadpoolctl"}


def _graph():  # type: ignore[no-untyped-def]
    grimp = pytest.importorskip("grimp")
    return grimp.build_graph("tp_harness", include_external_packages=True)


def test_core_imports_only_torch_numpy_numba_threadpoolctl() -> None:
    graph = _graph()
    stdlib = set(sys.stdlib_module_names)
    external: dict[str, set[str]] = {}
    for module in graph.find_descendants("tp_harness.core") | {"tp_harness.core"}:
        for imported in graph.find_modules_directly_imported_by(module):
            top = imported.split(".")[0]
            if top != "tp_harness" and top not in stdlib:
                external.setdefault(top, set()).add(module)
    assert set(external) <= CORE_ALLOWED, external


@pytest.mark.parametrize(
    ("lower", "upper"),
    [
        ("tp_harness.core", "tp_harness.evaluation"),
        ("tp_harness.core", "tp_harness.publishing"),
        ("tp_harness.core", "tp_harness.cli"),
        ("tp_harness.evaluation", "tp_harness.publishing"),
        ("tp_harness.evaluation", "tp_harness.cli"),
        ("tp_harness.publishing", "tp_harness.cli"),
    ],
)
def test_no_floor_imports_a_floor_above(lower: str, upper: str) -> None:
    chains = _graph().find_shortest_chains(importer=lower, imported=upper)
    assert not chains, chains


def test_import_tp_harness_loads_the_core_only() -> None:
    """``python -X importtime -c "import tp_harness"``: no Hugging Face library, no UI, no
    pipeline; ``run``/``Config``/``Results`` resolve lazily to the evaluation floor."""
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import tp_harness"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=True,
    )
    loaded = {
        line.rsplit("|", 1)[-1].strip()
        for line in proc.stderr.splitlines()
        if line.startswith("import time:")
    }
    heavy = {
        "transformers",
        "datasets",
        "accelerate",
        "gradio",
        "matplotlib",
        "pandas",
        "huggingface_hub",
        "sentence_transformers",
        "sklearn",
        "numba",
        "tp_harness.evaluation",
        "tp_harness.evaluation.pipeline",
        "tp_harness.publishing",
    }
    assert "tp_harness.core" in loaded
    assert not heavy & loaded, sorted(heavy & loaded)


def test_lazy_names_are_the_evaluation_floors() -> None:
    import tp_harness
    from tp_harness.evaluation import config, pipeline, results

    assert tp_harness.run is pipeline.run and tp_harness.Config is config.Config
    assert tp_harness.Results is results.Results and tp_harness.load_config is config.load_config
    assert {"run", "Config", "Results"} <= set(dir(tp_harness))
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        tp_harness.nope  # noqa: B018


def test_readme_names_keep_working() -> None:
    import tp_harness
    from tp_harness import (  # noqa: F401
        Config,
        Kernel,
        MomentResult,
        ProbeResult,
        Results,
        build_kernel,
        build_kernels,
        kernel_names,
        load_config,
        probe_tasks,
        run,
        sample_tasks,
        sample_tasks_with_info,
        task_prior_moments,
    )

    assert tp_harness.kernels.centered_cosine is not None


def test_config_validation_reads_the_probe_and_kernel_registries() -> None:
    from tp_harness.core.kernels import kernel_names
    from tp_harness.core.probes import PROBES
    from tp_harness.evaluation.config import Config

    for probe in PROBES:
        assert Config(probes=(probe,)).probes == (probe,)
    for kernel in kernel_names():
        assert Config(model_kernel=kernel).model_kernel == kernel
    with pytest.raises(ValueError, match="probes: must be among"):
        Config(probes=("svm",))


def test_tests_mirror_the_package_and_import_no_other_test_module() -> None:
    tests = ROOT / "tests"
    floors = {p.name for p in (ROOT / "tp_harness").iterdir() if (p / "__init__.py").is_file()}
    assert floors <= {p.name for p in tests.iterdir() if p.is_dir()}
    for path in tests.rglob("test_*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                assert not name.split(".")[-1].startswith("test_"), (path, name)
