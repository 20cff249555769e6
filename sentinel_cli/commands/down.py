"""Stop Sentinel's processes and the services."""

from __future__ import annotations

import argparse

from sentinel_local import processes, stack


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """No options."""


def run(args: argparse.Namespace) -> int:
    for process in reversed(processes.PROCESSES):
        print(f"{process.name:<11} {'stopped' if process.down() else 'not running'}")
    stack.down()
    return 0
