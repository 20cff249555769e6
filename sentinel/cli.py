"""The `sentinel` command line: the local stack, the pipeline processes, and following an event.

sentinel stack up|down|status [SERVICE ...]   real services on loopback
"""

from __future__ import annotations

import argparse
import sys

from sentinel import stack


def _stack(args: argparse.Namespace) -> int:
    if args.action == "up":
        try:
            stack.up(args.services)
        except stack.ServiceError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    elif args.action == "down":
        stack.down(args.services)
    else:
        for name, state in stack.status().items():
            print(f"{name:<11} {state}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sentinel", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p_stack = sub.add_parser("stack", help="install, start, stop the real services on loopback")
    p_stack.add_argument("action", choices=["up", "down", "status"])
    p_stack.add_argument("services", nargs="*", help="limit to these services (default: all)")
    p_stack.set_defaults(func=_stack)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    sys.exit(main())
