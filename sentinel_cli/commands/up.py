"""Install and start the services and the pipeline; with --demo, an MCP call through the proxy and its trace."""

from __future__ import annotations

import argparse
import time

from sentinel_local import processes, stack


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--demo", action="store_true", help="call a tool of a real MCP server through the proxy and print the trace"
    )


def run(args: argparse.Namespace) -> int:
    from workers.clickhouse.client import new_client
    from workers.clickhouse.schema import migrate

    print("services:")
    stack.up()
    migrate(new_client())
    print("pipeline:")
    for process in processes.PROCESSES:
        started = time.monotonic()
        outcome = process.up()
        where = "  ".join(f"{k}={v}" for k, v in process.addresses().items())
        print(f"{process.name:<11} {outcome:<8} {time.monotonic() - started:6.1f}s  {where}", flush=True)
    if args.demo:
        return demo()
    print("\nsend an event:  sentinel emit        follow it:  sentinel trace EVENT_ID        stop:  sentinel down")
    return 0


def demo() -> int:
    """A real MCP client's call through the proxy, then its row and trace (sentinel_cli.demo)."""
    from sentinel_cli import demo as mcp_demo

    return mcp_demo.run()
