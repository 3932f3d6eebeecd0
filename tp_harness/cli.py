"""Command line: ``tp-harness <command>``. One function per subcommand, no logic here.

``evaluate`` composes the floors: :func:`tp_harness.evaluation.run` (compute, writes
nothing) -> :func:`tp_harness.publishing.write_outputs` (the run folder) ->
:func:`tp_harness.publishing.push_run` (the Hub). Choices come from the registries.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .core.kernels import NORMALIZATIONS, TEMPERATURE_SCALES, kernel_names
from .core.probes import probe_names

_NORMALIZE_CHOICES = [n or "none" for n in NORMALIZATIONS]
_DTYPE_CHOICES = ["float32", "bfloat16", "float16"]


def _cmd_demo(args: argparse.Namespace) -> int:
    from .evaluation.demo import run_demo

    print(run_demo(args.temperature, device=args.device))
    return 0


def _add_demo_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="moments of digits representations (bundled, offline)")
    p.add_argument("--temperature", type=float, nargs="+", default=[0.1, 1.0])
    p.add_argument("--device", default=None)
    p.set_defaults(func=_cmd_demo)


_OVERRIDE_KEYS = (
    "models",
    "priors",
    "prior_weights",
    "dataset",
    "dataset_config",
    "split",
    "text_column",
    "image_column",
    "label_column",
    "num_examples",
    "temperatures",
    "num_tasks",
    "num_classes",
    "task_temperature",
    "gibbs_sweeps",
    "probes",
    "model_kernel",
    "prior_kernel",
    "normalize",
    "temperature_scale",
    "output_dir",
    "cache_dir",
    "seed",
    "device",
    "batch_size",
    "max_length",
    "dtype",
    "push_to_hub",
    "block_size",
    "min_class_fraction",
)


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    """CLI flags that override suite keys (unset flags are None and ignored)."""
    out = {k: getattr(args, k, None) for k in _OVERRIDE_KEYS}
    if args.trust_remote_code:
        out["trust_remote_code"] = True
    return out


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .evaluation.config import load_config
    from .evaluation.pipeline import run
    from .publishing.report import ranked_tables
    from .publishing.run_folder import write_outputs

    config = load_config(args.suite, _overrides(args))
    results = run(config, progress=not args.no_progress)
    if not results.is_main:
        return 0
    write_outputs(results, config.output_dir)
    print(ranked_tables(results.to_dict()))
    print(f"results: {config.output_dir}/results.json  summary: {config.output_dir}/summary.md")
    if config.push_to_hub:
        from .publishing.hub import push_report, push_run

        print(push_report(push_run(config.output_dir, config.push_to_hub)))
    return 0


def _add_evaluate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="score models with task priors (default: offline suite)")
    p.add_argument(
        "--suite",
        default=None,
        help="suite name in tasks/ or a YAML path (default: tasks/default.yaml)",
    )
    p.add_argument("--model", dest="models", action="append", help="model spec (repeatable)")
    p.add_argument(
        "--prior",
        dest="priors",
        action="append",
        help="prior: a model spec, 'labels' or 'self' (repeatable)",
    )
    p.add_argument("--prior-weights", type=float, nargs="+", default=None)
    p.add_argument("--dataset", default=None)
    p.add_argument("--dataset-config", default=None)
    p.add_argument("--split", default=None)
    p.add_argument("--text-column", default=None)
    p.add_argument("--image-column", default=None)
    p.add_argument("--label-column", default=None)
    p.add_argument("--num-examples", type=int, default=None)
    p.add_argument("--temperature", dest="temperatures", type=float, action="append")
    p.add_argument("--task-temperature", type=float, default=None)
    p.add_argument("--num-tasks", type=int, default=None)
    p.add_argument("--num-classes", type=int, action="append")
    p.add_argument("--gibbs-sweeps", type=int, default=None)
    p.add_argument(
        "--min-class-fraction",
        type=float,
        default=None,
        help="redraw sampled tasks whose smallest class is below this fraction",
    )
    p.add_argument("--probe", dest="probes", action="append", choices=probe_names())
    p.add_argument("--model-kernel", default=None, choices=kernel_names())
    p.add_argument("--prior-kernel", default=None, choices=kernel_names())
    p.add_argument("--normalize", default=None, choices=_NORMALIZE_CHOICES)
    p.add_argument(
        "--temperature-scale",
        default=None,
        choices=list(TEMPERATURE_SCALES),
        help="read T as given (absolute) or relative to the RMS of the prior kernel's entries",
    )
    p.add_argument("--output-dir", default=None)
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--block-size", type=int, default=None, help="moment tile edge")
    p.add_argument("--max-length", type=int, default=None)
    p.add_argument("--dtype", default=None, choices=_DTYPE_CHOICES)
    p.add_argument("--trust-remote-code", action="store_true")
    p.add_argument("--push-to-hub", default=None, metavar="ORG/NAME")
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
            "tp-harness leaderboard: gradio is not installed; pip install 'tp-harness[space]'",
            file=sys.stderr,
        )
        return 2
    from .publishing.leaderboard_app import build_app

    build_app(args.source).launch(server_name=args.host, server_port=args.port)
    return 0


def _add_leaderboard_parser(sub: argparse._SubParsersAction) -> None:
    """``tp-harness leaderboard RESULTS_DIR_OR_REPO [--port P] [--host H]``."""
    from .publishing.leaderboard import SOURCE_ENV

    p = sub.add_parser("leaderboard", help="browse results in a local Gradio leaderboard")
    p.add_argument(
        "source",
        metavar="RESULTS_DIR_OR_REPO",
        nargs="?",
        default=None,
        help=f"a run folder, a folder of runs, or a Hub dataset repo id (default: ${SOURCE_ENV})",
    )
    p.add_argument("--port", type=int, default=7860)
    p.add_argument(
        "--host",
        default="127.0.0.1",
        help="interface to listen on (0.0.0.0 to share on the network)",
    )
    p.set_defaults(func=_cmd_leaderboard)


def build_parser() -> argparse.ArgumentParser:
    """The ``tp-harness`` parser with all subcommands."""
    parser = argparse.ArgumentParser(
        prog="tp-harness", description="Task-prior evaluation of representations."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    _add_evaluate_parser(sub)
    _add_demo_parser(sub)
    _add_push_parser(sub)
    _add_leaderboard_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tp-harness`` script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, FileNotFoundError, OSError) as err:
        print(f"tp-harness {args.command}: error: {err}", file=sys.stderr)
        return 2
