"""Command line: ``tp-harness <command>``. One function per subcommand, no logic here."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence


def _cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    print(run_demo(args.temperature, device=args.device))
    return 0


def _add_demo_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="moments of digits representations (bundled, offline)")
    p.add_argument("--temperature", type=float, nargs="+", default=[0.01, 0.1, 1.0])
    p.add_argument("--device", default=None)
    p.set_defaults(func=_cmd_demo)


def _overrides(args: argparse.Namespace) -> dict[str, object]:
    """CLI flags that override suite keys (unset flags are None and ignored)."""
    keys = ("models", "priors", "prior_weights", "dataset", "dataset_config", "split",
            "text_column", "image_column", "label_column", "num_examples", "temperatures",
            "num_tasks", "num_classes", "task_temperature", "gibbs_sweeps", "probes",
            "model_kernel", "prior_kernel", "normalize", "output_dir", "cache_dir", "seed",
            "device", "batch_size", "max_length", "dtype", "push_to_hub", "block_size",
            "min_class_fraction")
    out = {k: getattr(args, k, None) for k in keys}
    if args.trust_remote_code:
        out["trust_remote_code"] = True
    return out


def _cmd_evaluate(args: argparse.Namespace) -> int:
    from .config import load_config
    from .pipeline import run
    from .report import ranked_tables

    config = load_config(args.suite, _overrides(args))
    results = run(config, progress=not args.no_progress)
    if _is_main():
        print(ranked_tables(results.to_dict()))
        print(f"results: {config.output_dir}/results.json  summary: {config.output_dir}/summary.md")
        if "push" in results.extras:
            from .hub import push_report

            print(push_report(results.extras["push"]))
    return 0


def _is_main() -> bool:
    import os

    return os.environ.get("RANK", "0") == "0"


def _add_evaluate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="score models with task priors (default: offline suite)")
    p.add_argument("--suite", default=None, help="suite name in tasks/ or a YAML path "
                   "(default: tasks/default.yaml)")
    p.add_argument("--model", dest="models", action="append", help="model spec (repeatable)")
    p.add_argument("--prior", dest="priors", action="append",
                   help="prior: a model spec, 'labels' or 'self' (repeatable)")
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
    p.add_argument("--min-class-fraction", type=float, default=None,
                   help="redraw sampled tasks whose smallest class is below this fraction")
    p.add_argument("--probe", dest="probes", action="append", choices=["ridge", "knn", "logistic"])
    p.add_argument("--model-kernel", default=None)
    p.add_argument("--prior-kernel", default=None)
    p.add_argument("--normalize", default=None, choices=["frobenius"])
    p.add_argument("--output-dir", default=None)
    p.add_argument("--cache-dir", default=None)
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default=None)
    p.add_argument("--batch-size", type=int, default=None)
    p.add_argument("--block-size", type=int, default=None, help="moment tile edge")
    p.add_argument("--max-length", type=int, default=None)
    p.add_argument("--dtype", default=None, choices=["float32", "bfloat16", "float16"])
    p.add_argument("--trust-remote-code", action="store_true")
    p.add_argument("--push-to-hub", default=None, metavar="ORG/NAME")
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=_cmd_evaluate)


def build_parser() -> argparse.ArgumentParser:
    """The ``tp-harness`` parser with all subcommands."""
    parser = argparse.ArgumentParser(prog="tp-harness",
                                     description="Task-prior evaluation of representations.")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_evaluate_parser(sub)
    _add_demo_parser(sub)
    from .hub import add_push_parser
    from .leaderboard_app import add_leaderboard_parser

    add_push_parser(sub)
    add_leaderboard_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tp-harness`` script."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args))
    except (ValueError, FileNotFoundError, OSError) as err:
        print(f"tp-harness {args.command}: error: {err}", file=sys.stderr)
        return 2
