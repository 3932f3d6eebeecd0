"""Command line: ``tp-harness <command>``. One function per subcommand, no logic here.

``evaluate`` composes the floors: :func:`tp_harness.evaluation.run` (compute, writes
nothing) -> :func:`tp_harness.publishing.write_outputs` (the run folder) ->
:func:`tp_harness.publishing.push_run` (the Hub). Choices come from the registries.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import time
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def _cmd_demo(args: argparse.Namespace) -> int:
    from .evaluation.demo import run_demo

    print(run_demo(args.temperature, device=args.device))
    return 0


def _add_demo_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="moments of digits representations (bundled, offline)")
    p.add_argument(
        "--temperature",
        type=float,
        nargs="+",
        default=[0.1, 1.0],
        help="temperatures T of s(K/T) (default: 0.1 1.0)",
    )
    p.add_argument("--device", default=None, help="cpu or cuda (default: cuda if any)")
    p.set_defaults(func=_cmd_demo)


def _scalar_type(annotation: Any) -> type:
    """The scalar a flag parses to (int, float or str), from a field's annotation."""
    found: list[type] = []

    def walk(a: Any) -> None:
        if a in (bool, int, float, str):
            found.append(a)
        for sub in typing.get_args(a):
            walk(sub)

    walk(annotation)
    for t in (bool, int, float):
        if t in found:
            return t
    return str


def _show(default: Any) -> str:
    if isinstance(default, tuple):
        return " ".join(map(str, default)) if default else "none"
    return "none" if default is None or default == "" else str(default)


def _add_config_flags(p: argparse.ArgumentParser) -> None:
    """One flag per config field, grouped as the schema groups them; help shows the default."""
    from .evaluation.config import CHOICES, GROUPS, cli_fields, flag_of

    groups = {g: p.add_argument_group(g) for g in GROUPS}
    for key, info in cli_fields():
        extra = info.json_schema_extra if isinstance(info.json_schema_extra, dict) else {}
        action = extra.get("action")
        kw: dict[str, Any] = {
            "dest": key,
            "default": None,
            "help": f"{info.description} (default: {_show(info.default)})",
        }
        if "metavar" in extra:
            kw["metavar"] = extra["metavar"]
        if key in CHOICES:
            kw["choices"] = CHOICES[key]()
        typ = _scalar_type(info.annotation)
        if typ is bool:
            kw["action"] = "store_true"
        else:
            kw["type"] = typ
            if action == "append":
                kw["action"] = "append"
            elif action == "nargs":
                kw["nargs"] = "+"
        groups[str(extra["group"])].add_argument(flag_of(key), **kw)


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    """CLI flags that override suite keys (unset flags are None and ignored)."""
    from .evaluation.config import cli_fields

    return {k: getattr(args, k, None) for k, _ in cli_fields()}


def _process_seconds() -> float | None:
    """Seconds since this process started (interpreter and imports included), from
    ``/proc`` on Linux; None elsewhere."""
    try:
        ticks = int(Path("/proc/self/stat").read_text().rsplit(")", 1)[1].split()[19])
        uptime = float(Path("/proc/uptime").read_text().split()[0])
        return max(0.0, uptime - ticks / os.sysconf("SC_CLK_TCK"))
    except (OSError, ValueError, IndexError):
        return None


def _timings_line(startup: float | None, stages: dict[str, float], write: float) -> str:
    """``timings (s): startup 2.10 · data 1.42 · ... · write 2.51 · total 10.02``: the
    interpreter and imports before the command, the run's stages, writing the run folder,
    and the process's wall time so far (the sum of the parts where ``/proc`` is missing)."""
    parts = [("startup", startup)] if startup is not None else []
    parts += [*stages.items(), ("write", write)]
    total = _process_seconds() or sum(v for _, v in parts if v is not None)
    return "timings (s): " + " · ".join(f"{k} {v:.2f}" for k, v in parts) + f" · total {total:.2f}"


def _cmd_evaluate(args: argparse.Namespace) -> int:
    startup = _process_seconds()
    from .evaluation.config import load_config
    from .evaluation.distributed import launched_rank
    from .evaluation.pipeline import run
    from .publishing.report import ranked_tables
    from .publishing.run_folder import check_output_dir, claim_output_dir, write_outputs

    config = load_config(args.suite, _overrides(args))
    push = None
    if config.push_to_hub:
        from .publishing.hub import check_push

        push = check_push(config.push_to_hub)  # ids, token: before any compute
    if launched_rank() == 0:
        claim_output_dir(config.output_dir, overwrite=config.overwrite)
    else:
        check_output_dir(config.output_dir, overwrite=True)
    results = run(config, progress=not args.no_progress)
    if not results.is_main:
        return 0
    t_write = time.perf_counter()
    write_outputs(results, config.output_dir, overwrite=config.overwrite)
    write = time.perf_counter() - t_write
    print(ranked_tables(results.to_dict()))
    print(f"results: {config.output_dir}/results.json  summary: {config.output_dir}/summary.md")
    if push is not None:
        from .publishing.hub import push_report, push_run

        print(push_report(push_run(config.output_dir, push.repo_id, token=push.token)))
    print(_timings_line(startup, results.timings, write), file=sys.stderr)
    return 0


def _add_evaluate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="score models with task priors (default: offline suite)",
        description="Score models with task priors. Every flag overrides the suite's key of "
        "the same name (tasks/*.yaml); unset flags keep the suite's value.",
    )
    p.add_argument(
        "--suite",
        default=None,
        help="suite name in tasks/ or a YAML path (default: default)",
    )
    _add_config_flags(p)
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=_cmd_evaluate)


def _cmd_push(args: argparse.Namespace) -> int:
    from .publishing.hub import push_report, push_run

    info = push_run(
        args.results_dir, args.repo_id, tasks_repo_id=args.tasks_repo_id, private=args.private
    )
    print(push_report(info))
    return 0


def _add_push_parser(sub: argparse._SubParsersAction) -> None:
    """The ``push`` subcommand: ``tp-harness push RESULTS_DIR --repo-id ORG/NAME ...``."""
    p = sub.add_parser(
        "push",
        help="push a run folder's scores and sampled tasks to the Hugging Face Hub",
        description="Push RESULTS_DIR (a folder written by `tp-harness evaluate`) to the Hub: "
        "results.json, scores.parquet and a card to --repo-id; the sampled tasks "
        "to --tasks-repo-id. The token comes from HF_TOKEN or `hf auth login`.",
    )
    p.add_argument("results_dir", metavar="RESULTS_DIR", help="a run's --output-dir")
    p.add_argument(
        "--repo-id", required=True, metavar="ORG/NAME", help="dataset repo for the scores"
    )
    p.add_argument(
        "--tasks-repo-id",
        default=None,
        metavar="ORG/NAME",
        help="dataset repo for the sampled tasks (default: <repo-id>-tasks)",
    )
    p.add_argument("--private", action="store_true", help="create the repos as private")
    p.set_defaults(func=_cmd_push)


def _cmd_leaderboard(args: argparse.Namespace) -> int:
    try:
        import gradio  # noqa: F401
    except ImportError:
        print(
            "tp-harness leaderboard: gradio is not installed; "
            "pip install 'gradio>=6,<7' (the [space] extra)",
            file=sys.stderr,
        )
        return 2
    from .publishing.leaderboard_app import build_app

    build_app(args.source).launch(server_name=args.host, server_port=args.port)
    return 0


def _add_space_flags(p: argparse.ArgumentParser, title: str) -> None:
    """The flags both deploy commands share."""
    from .publishing.spaces import PIN_EXAMPLE

    p.add_argument(
        "--private", action="store_true", help="create the Space as private (default: public)"
    )
    p.add_argument(
        "--requirement",
        default=None,
        metavar="PIP_REQUIREMENT",
        help="the tp-harness line of the Space's requirements.txt, e.g. "
        f"'{PIN_EXAMPLE}' (default: the VCS URL and commit this copy was installed from; "
        "an error when it came from a local folder or wheel)",
    )
    p.add_argument("--title", default=None, help=f"the Space's title (default: {title})")
    p.add_argument(
        "--sdk-version",
        default=None,
        metavar="X.Y.Z",
        help="gradio version the Space installs (default: the installed gradio 6.x, else the "
        "version the shipped card names)",
    )


def _space_options(args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of both deploy commands (the flags of ``_add_space_flags``)."""
    return {
        "private": args.private,
        "requirement": args.requirement,
        "title": args.title,
        "sdk": args.sdk_version,
    }


def _cmd_leaderboard_deploy(args: argparse.Namespace) -> int:
    from .publishing.spaces import deploy_leaderboard, deploy_report

    print(deploy_report(deploy_leaderboard(args.repo_id, args.source, **_space_options(args))))
    return 0


def _add_leaderboard_parser(sub: argparse._SubParsersAction) -> None:
    """``tp-harness leaderboard [serve] SOURCE [--port P] [--host H]`` and
    ``tp-harness leaderboard deploy ORG/NAME SOURCE``."""
    from .publishing.leaderboard import SOURCE_ENV
    from .publishing.spaces import LEADERBOARD_TITLE

    p = sub.add_parser(
        "leaderboard",
        help="browse results in a local Gradio leaderboard, or deploy it as a Space",
        description="`tp-harness leaderboard SOURCE` (short for `leaderboard serve SOURCE`) "
        "serves the leaderboard locally; `tp-harness leaderboard deploy ORG/NAME SOURCE` "
        "creates or updates a Gradio Space that shows it.",
    )
    verbs = p.add_subparsers(dest="verb", required=True)
    serve = verbs.add_parser("serve", help="serve the leaderboard locally (the default verb)")
    serve.add_argument(
        "source",
        metavar="RESULTS_DIR_OR_REPO",
        nargs="?",
        default=None,
        help=f"a run folder, a folder of runs, or a Hub dataset repo id (default: ${SOURCE_ENV})",
    )
    serve.add_argument("--port", type=int, default=7860, help="port (default: 7860)")
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to listen on, 0.0.0.0 to share on the network (default: 127.0.0.1)",
    )
    serve.set_defaults(func=_cmd_leaderboard)
    deploy = verbs.add_parser(
        "deploy",
        help="create or update a Gradio Space showing SOURCE",
        description="Upload the leaderboard app, its card and its install recipe to the "
        "Space ORG/NAME. A local SOURCE's results.json files (redacted of local paths) go "
        "into the Space; a Hub results repo is read by the Space when it starts. The token "
        "comes from HF_TOKEN or `hf auth login`.",
    )
    deploy.add_argument("repo_id", metavar="ORG/NAME", help="the Space repo id")
    deploy.add_argument(
        "source",
        metavar="SOURCE",
        help="a run folder, a folder of runs, or a Hub dataset repo id of results",
    )
    _add_space_flags(deploy, LEADERBOARD_TITLE)
    deploy.set_defaults(func=_cmd_leaderboard_deploy)


def _cmd_metric_deploy(args: argparse.Namespace) -> int:
    from .publishing.spaces import deploy_metric, deploy_report

    print(deploy_report(deploy_metric(args.repo_id, **_space_options(args))))
    print(f'load it with: evaluate.load("{args.repo_id}")')
    return 0


def _add_metric_parser(sub: argparse._SubParsersAction) -> None:
    """``tp-harness metric deploy ORG/NAME``."""
    p = sub.add_parser("metric", help="deploy the task_prior evaluate metric as a Space")
    verbs = p.add_subparsers(dest="verb", required=True)
    deploy = verbs.add_parser(
        "deploy",
        help="create or update the metric Space ORG/NAME",
        description="Upload the task_prior evaluate module (as NAME.py), its card, a Gradio "
        'app and its install recipe to the Space ORG/NAME; `evaluate.load("ORG/NAME")` '
        "then loads it. The token comes from HF_TOKEN or `hf auth login`.",
    )
    deploy.add_argument(
        "repo_id", metavar="ORG/NAME", help="the Space repo id (NAME: a Python identifier)"
    )
    _add_space_flags(deploy, "the card's, Task Prior")
    deploy.set_defaults(func=_cmd_metric_deploy)


LISTS = ("suites", "models", "datasets", "kernels", "probes")


def listing(what: str) -> list[str]:
    """Names for ``tp-harness list WHAT`` (from the registries)."""
    if what == "suites":
        from .evaluation.config import suite_names

        return suite_names()
    if what == "models":
        from .evaluation.embed.spec import BUNDLED_MODELS
        from .evaluation.features import CLASSICS

        return [
            *(f"bundled:{m}" for m in sorted(BUNDLED_MODELS)),
            *(c.example for c in CLASSICS.values()),
            "file:PATH[:column=,tensor=,id_column=,name=]",
            "dataset:ID[:column=,split=,config=,id_column=,name=]",
        ]
    if what == "datasets":
        from .evaluation.bundled import BUNDLED_DATASETS

        return [f"bundled:{d}" for d in sorted(BUNDLED_DATASETS)]
    if what == "kernels":
        from .core.kernels import kernel_names

        return list(kernel_names())
    from .core.probes import probe_names

    return list(probe_names())


def _cmd_list(args: argparse.Namespace) -> int:
    print("\n".join(listing(args.what)))
    return 0


def _add_list_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("list", help="list suites, bundled models and datasets, kernels, probes")
    p.add_argument("what", choices=LISTS, help="what to list")
    p.set_defaults(func=_cmd_list)


def _version() -> str:
    from importlib import metadata

    try:
        return metadata.version("tp-harness")
    except metadata.PackageNotFoundError:
        return "unknown (not installed)"


class _Parser(argparse.ArgumentParser):
    """The top-level parser: ``leaderboard SOURCE`` reads as ``leaderboard serve SOURCE``."""

    def parse_known_args(  # type: ignore[override]
        self, args: Sequence[str] | None = None, namespace: argparse.Namespace | None = None
    ) -> tuple[argparse.Namespace, list[str]]:
        argv = _with_default_verb(list(sys.argv[1:] if args is None else args))
        return super().parse_known_args(argv, namespace)


def build_parser() -> argparse.ArgumentParser:
    """The ``tp-harness`` parser with all subcommands."""
    parser = _Parser(prog="tp-harness", description="Task-prior evaluation of representations.")
    parser.add_argument("--version", action="version", version=f"tp-harness {_version()}")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_evaluate_parser(sub)
    _add_demo_parser(sub)
    _add_push_parser(sub)
    _add_leaderboard_parser(sub)
    _add_metric_parser(sub)
    _add_list_parser(sub)
    return parser


LEADERBOARD_VERBS = ("serve", "deploy", "-h", "--help")


def _with_default_verb(argv: list[str]) -> list[str]:
    """``leaderboard SOURCE`` reads as ``leaderboard serve SOURCE`` (the old spelling)."""
    if argv[:1] == ["leaderboard"] and (len(argv) == 1 or argv[1] not in LEADERBOARD_VERBS):
        return ["leaderboard", "serve", *argv[1:]]
    return argv


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tp-harness`` script."""
    args = build_parser().parse_args(argv)
    # Cyclic collections of the long-lived module objects (torch, then datasets, numba,
    # matplotlib as the stages import them) cost a warm `evaluate` ~0.6 s (6 full passes,
    # measured with gc.callbacks): freeze what is imported so far and collect less often.
    # Array memory is freed by reference counting either way.
    thresholds = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(10_000, 10, 10)
    try:
        return int(args.func(args))
    except (ValueError, OSError, ImportError) as err:  # ImportError: a missing optional package
        print(f"tp-harness {args.command}: error: {err}", file=sys.stderr)
        return 2
    finally:
        gc.set_threshold(*thresholds)
        # The objects left (torch, datasets, matplotlib modules) need no cyclic collection
        # at exit: freezing them makes interpreter shutdown ~0.5-1 s faster (measured).
        gc.freeze()
