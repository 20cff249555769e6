"""What runs: each service and each of Sentinel's processes."""

from __future__ import annotations

import argparse

from sentinel_cli.commands.stack import print_services
from sentinel_local import processes


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options."""


def run(args: argparse.Namespace) -> int:
    print_services()
    for process in processes.PROCESSES:
        print(f"{process.name:<11} {'up' if process.pid() else 'down'}")
    return 0
