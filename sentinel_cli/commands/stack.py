"""Install, start, stop only the real services (Kafka, ClickHouse, RabbitMQ, Redis, Jaeger, the Collector)."""

from __future__ import annotations

import argparse

from sentinel_local import stack


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["up", "down", "status"])
    parser.add_argument("services", nargs="*", help="limit to these services (default: all)")


def run(args: argparse.Namespace) -> int:
    if args.action == "up":
        stack.up(args.services)
    elif args.action == "down":
        stack.down(args.services)
    else:
        print_services()
    return 0


def print_services() -> None:
    for name, state in stack.status().items():
        print(f"{name:<11} {state}")
