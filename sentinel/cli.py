"""The `sentinel` command line.

sentinel up [--demo]           install and start everything; with --demo, send an event and show its trace
sentinel down                  stop Sentinel's processes and the services
sentinel status                what runs
sentinel stack up|down|status  only the real services (Kafka, ClickHouse, RabbitMQ, Redis, Jaeger)
sentinel emit [...]            post an audit event like the MCP proxy does
sentinel trace EVENT_ID        find the event's row and print its trace, with the linked insert
sentinel proxy [...] -- CMD    the MCP audit proxy in front of an MCP server (see mcp_proxy/cli.py)
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from sentinel import processes, settings, stack


def _stack(args: argparse.Namespace) -> int:
    if args.action == "up":
        stack.up(args.services)
    elif args.action == "down":
        stack.down(args.services)
    else:
        for name, state in stack.status().items():
            print(f"{name:<11} {state}")
    return 0


def _up(args: argparse.Namespace) -> int:
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
        return _demo()
    print("\nsend an event:  sentinel emit        follow it:  sentinel trace EVENT_ID        stop:  sentinel down")
    return 0


def _demo() -> int:
    from sentinel.emit import audit_event, emit
    from sentinel.telemetry import setup_tracing

    setup_tracing("mcp-proxy")
    event = audit_event(tool="demo_search", attributes={"demo": True})
    result = emit([event])
    print(f"\ndemo event {event['event_id']} -> HTTP {result.status} (trace {result.trace_id})")
    if result.status != 202:
        print(json.dumps(result.body), file=sys.stderr)
        return 1
    _flush_tracing()
    return _print_trace(event["event_id"], wait_s=60.0)


def _down(_args: argparse.Namespace) -> int:
    for process in reversed(processes.PROCESSES):
        print(f"{process.name:<11} {'stopped' if process.down() else 'not running'}")
    stack.down()
    return 0


def _status(_args: argparse.Namespace) -> int:
    for name, state in stack.status().items():
        print(f"{name:<11} {state}")
    for process in processes.PROCESSES:
        print(f"{process.name:<11} {'up' if process.pid() else 'down'}")
    return 0


def _emit(args: argparse.Namespace) -> int:
    from sentinel.emit import audit_event, emit
    from sentinel.telemetry import setup_tracing

    setup_tracing("mcp-proxy")
    extra = json.loads(args.json) if args.json else {}
    events = [
        audit_event(event_type=args.type, tool=args.tool, server=args.server, session_id=args.session, **extra)
        for _ in range(args.count)
    ]
    result = emit(events, url=args.url, token=args.token)
    _flush_tracing()
    print(json.dumps({"status": result.status, "trace_id": result.trace_id, **result.body}, indent=2))
    return 0 if result.status == 202 else 1


def _trace(args: argparse.Namespace) -> int:
    return _print_trace(args.event_id, wait_s=args.wait)


def _print_trace(event_id: str, *, wait_s: float) -> int:
    from sentinel import semconv
    from sentinel.jaeger import JaegerClient
    from sentinel.tracetree import render
    from workers.clickhouse.client import new_client
    from workers.clickhouse.queries import find_event

    client = new_client()
    deadline = time.monotonic() + wait_s
    row = find_event(client, event_id)
    while row is None and time.monotonic() < deadline:
        time.sleep(0.25)
        row = find_event(client, event_id)
    if row is None:
        print(f"event {event_id} is not in ClickHouse (yet)", file=sys.stderr)
        return 1
    print(
        f"\nrow: sentinel.mcp_events event_id={row.event_id} type={row.event_type} "
        f"partition={row.kafka_partition} offset={row.kafka_offset}\n"
        f"     trace_id={row.trace_id} span_id={row.span_id} insert_trace_id={row.insert_trace_id}"
    )
    jaeger = JaegerClient()
    spans = jaeger.wait_for(row.trace_id, {semconv.SPAN_CONSUME}, timeout_s=max(5.0, deadline - time.monotonic()))
    # Each process exports on its own schedule: ingest's spans can land after the bridge's. A few
    # seconds more for them (an event that did not come through ingest has none, and costs that).
    path = {semconv.SPAN_INGEST, semconv.SPAN_PUBLISH, semconv.SPAN_CONSUME}
    if not path <= {span.name for span in spans}:
        spans = jaeger.wait_for(row.trace_id, path, timeout_s=3.0) or spans
    insert = jaeger.wait_for(row.insert_trace_id, {semconv.SPAN_INSERT}, timeout_s=15.0)
    linked = {row.span_id: insert} if insert else {}
    print(f"\ntrace {row.trace_id}  ({settings.JAEGER_QUERY_URL}/trace/{row.trace_id})")
    print(render(spans, linked))
    return 0 if spans and insert else 1


def _dlq(args: argparse.Namespace) -> int:
    from workers.redrive import read_dead_letters, replay

    records = read_dead_letters(reason=args.reason, start=args.start, end=args.end)
    if args.action == "list":
        for count, record in enumerate(records, start=1):
            print(json.dumps(record.summary()))
            if args.limit and count >= args.limit:
                break
        return 0
    sent = replay(records)
    print(json.dumps({"replayed": sent, "to": settings.EVENTS_TOPIC}))
    return 0


def _flush_tracing() -> None:
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    if hasattr(provider, "force_flush"):
        provider.force_flush()


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sentinel", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("up", help="install and start the services and the pipeline")
    p.add_argument("--demo", action="store_true", help="send a demo event and print its trace")
    p.set_defaults(func=_up)
    sub.add_parser("down", help="stop the pipeline and the services").set_defaults(func=_down)
    sub.add_parser("status", help="what runs").set_defaults(func=_status)

    p = sub.add_parser("stack", help="install, start, stop only the real services")
    p.add_argument("action", choices=["up", "down", "status"])
    p.add_argument("services", nargs="*", help="limit to these services (default: all)")
    p.set_defaults(func=_stack)

    p = sub.add_parser("emit", help="post audit events through an instrumented HTTP client")
    p.add_argument("--type", default="tool_call")
    p.add_argument("--tool", default="search")
    p.add_argument("--server", default="demo-mcp-server")
    p.add_argument("--session", default=None)
    p.add_argument("--count", type=int, default=1)
    p.add_argument("--json", default=None, help="extra fields, as a JSON object")
    p.add_argument("--url", default=settings.INGEST_URL)
    p.add_argument("--token", default=None)
    p.set_defaults(func=_emit)

    p = sub.add_parser("dlq", help="list or replay dead letters (replaying twice is safe)")
    p.add_argument("action", choices=["list", "replay"])
    p.add_argument("--reason", default=None, help="only records whose reason contains this text")
    p.add_argument("--from", dest="start", type=int, default=None, help="first DLQ offset (inclusive)")
    p.add_argument("--to", dest="end", type=int, default=None, help="last DLQ offset (inclusive)")
    p.add_argument("--limit", type=int, default=0, help="list at most this many")
    p.set_defaults(func=_dlq)

    # Imported here, like the CLI's other commands' packages: the shared core imports nothing above it.
    from mcp_proxy import cli as mcp_proxy_cli

    p = sub.add_parser("proxy", help="the MCP audit proxy: stdio (-- COMMAND ...) or --http HOST:PORT --config FILE")
    mcp_proxy_cli.add_arguments(p)
    p.set_defaults(func=mcp_proxy_cli.run)

    p = sub.add_parser("trace", help="find an event's row and print its trace tree")
    p.add_argument("event_id")
    p.add_argument("--wait", type=float, default=10.0, help="seconds to wait for the row and spans")
    p.set_defaults(func=_trace)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    # The CLI exports its own spans (emit) to the local Jaeger unless told otherwise.
    for key, value in processes.process_env().items():
        if key.startswith("OTEL_"):
            os.environ.setdefault(key, value)
    try:
        return int(args.func(args))
    except stack.ServiceError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
