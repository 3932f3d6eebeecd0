"""Command line: ``tp-harness <command>``. One function per subcommand, no logic here."""

from __future__ import annotations

import argparse
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


def build_parser() -> argparse.ArgumentParser:
    """The ``tp-harness`` parser with all subcommands."""
    parser = argparse.ArgumentParser(prog="tp-harness",
                                     description="Task-prior evaluation of representations.")
    sub = parser.add_subparsers(dest="command", required=True)
    _add_demo_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``tp-harness`` script."""
    args = build_parser().parse_args(argv)
    return int(args.func(args))
