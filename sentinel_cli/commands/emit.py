"""Post audit events like the MCP proxy does, through an instrumented HTTP client."""

from __future__ import annotations

import argparse
import json

from sentinel import settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--type", default="tool_call")
    parser.add_argument("--tool", default="search")
    parser.add_argument("--server", default="demo-mcp-server")
    parser.add_argument("--session", default=None)
    parser.add_argument("--count", type=int, default=1)
    parser.add_argument("--json", default=None, help="extra fields, as a JSON object")
    parser.add_argument("--url", default=settings.INGEST_URL)
    parser.add_argument("--token", default=None)


def run(args: argparse.Namespace) -> int:
    from sentinel.telemetry import setup_tracing
    from sentinel_cli.emit import audit_event, emit

    setup_tracing("mcp-proxy")
    extra = json.loads(args.json) if args.json else {}
    events = [
        audit_event(event_type=args.type, tool=args.tool, server=args.server, session_id=args.session, **extra)
        for _ in range(args.count)
    ]
    result = emit(events, url=args.url, token=args.token)
    flush_tracing()
    print(json.dumps({"status": result.status, "trace_id": result.trace_id, **result.body}, indent=2))
    return 0 if result.status == 202 else 1


def flush_tracing() -> None:
    """Export this process's spans now: the command exits before the batch processor's next export."""
    from opentelemetry import trace

    provider = trace.get_tracer_provider()
    if hasattr(provider, "force_flush"):
        provider.force_flush()
