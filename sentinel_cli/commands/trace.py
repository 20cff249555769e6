"""Find an event's row and print its trace tree, with the linked insert."""

from __future__ import annotations

import argparse
import sys
import time

from sentinel import settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("event_id")
    parser.add_argument("--wait", type=float, default=10.0, help="seconds to wait for the row and spans")


def run(args: argparse.Namespace) -> int:
    return print_trace(args.event_id, wait_s=args.wait)


def print_trace(event_id: str, *, wait_s: float) -> int:
    """Print the event's row, then its trace from Jaeger with the insert's trace under the span it
    links to; 1 when the row, the event's spans or the insert are not there within `wait_s`."""
    from sentinel import semconv
    from sentinel_cli.jaeger import JaegerClient
    from sentinel_cli.tracetree import render
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
    # An event with its own trace context (the proxy's) has its own `send mcp.events` span and no
    # `POST /events` in its trace, so only the producer span is waited for.
    path = {semconv.SPAN_PUBLISH, semconv.SPAN_CONSUME}
    if not path <= {span.name for span in spans}:
        spans = jaeger.wait_for(row.trace_id, path, timeout_s=3.0) or spans
    insert = jaeger.wait_for(row.insert_trace_id, {semconv.SPAN_INSERT}, timeout_s=15.0)
    linked = {row.span_id: insert} if insert else {}
    print(f"\ntrace {row.trace_id}  ({settings.JAEGER_QUERY_URL}/trace/{row.trace_id})")
    print(render(spans, linked))
    return 0 if spans and insert else 1
