"""Install and start the services and the pipeline; with --demo, send an event and print its trace."""

from __future__ import annotations

import argparse
import json
import sys
import time

from sentinel_local import processes, stack


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--demo", action="store_true", help="send a demo event and print its trace")


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
    """Post one event like the MCP proxy does and print its row and trace once they are stored."""
    from sentinel.telemetry import setup_tracing
    from sentinel_cli.commands.emit import flush_tracing
    from sentinel_cli.commands.trace import print_trace
    from sentinel_cli.emit import audit_event, emit

    setup_tracing("mcp-proxy")
    event = audit_event(tool="demo_search", attributes={"demo": True})
    result = emit([event])
    print(f"\ndemo event {event['event_id']} -> HTTP {result.status} (trace {result.trace_id})")
    if result.status != 202:
        print(json.dumps(result.body), file=sys.stderr)
        return 1
    flush_tracing()
    return print_trace(event["event_id"], wait_s=60.0)
