"""The `sentinel` command line: one subcommand per module of `SUBCOMMANDS` (`sentinel --help` lists
them, each with the first line of its module's docstring)."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Protocol, cast

from sentinel_local import processes, stack


class Subcommand(Protocol):
    """What a subcommand's module provides. Its docstring's first line is the subcommand's help."""

    def add_arguments(self, parser: argparse.ArgumentParser) -> None: ...

    def run(self, args: argparse.Namespace) -> int: ...


# Subcommand name -> the module that implements it. Imported by name, so a package that provides
# its own (a process's CLI) is one line here and the CLI's package does not import it otherwise.
SUBCOMMANDS: dict[str, str] = {
    "up": "sentinel_cli.commands.up",
    "down": "sentinel_cli.commands.down",
    "status": "sentinel_cli.commands.status",
    "stack": "sentinel_cli.commands.stack",
    "emit": "sentinel_cli.commands.emit",
    "dlq": "sentinel_cli.commands.dlq",
    "trace": "sentinel_cli.commands.trace",
    "proxy": "mcp_proxy.cli",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sentinel", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for name, module_name in SUBCOMMANDS.items():
        module = importlib.import_module(module_name)
        command = cast(Subcommand, module)
        doc = (module.__doc__ or "").strip()
        subparser = sub.add_parser(name, help=doc.partition("\n")[0], description=doc)
        command.add_arguments(subparser)
        subparser.set_defaults(run=command.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # The CLI exports its own spans (emit) to the local Jaeger unless told otherwise.
    for key, value in processes.process_env().items():
        if key.startswith("OTEL_"):
            os.environ.setdefault(key, value)
    try:
        return int(args.run(args))
    except stack.ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
