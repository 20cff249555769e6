"""Answer audit questions from ClickHouse: top tools, errors, slow calls, a session, one tool's calls.

  sentinel audit tools [--since 1d] [--server S]          top tools by calls, with errors and p50/p95/p99
  sentinel audit errors [--since 1h] [--server S] [--tool T]   the failed calls, with their error
  sentinel audit slow [--since 1h] [--server S] [--tool T]     the slowest calls
  sentinel audit session SESSION_ID                       one session's timeline
  sentinel audit calls --server S [--tool T] [--since 1h]  the calls of a server or one of its tools

A readable table by default, `--json` for one JSON document. Each call carries its trace id and a
link to the trace in the trace UI (SENTINEL_JAEGER_QUERY_URL).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
from datetime import UTC, datetime, timedelta
from typing import Any

from sentinel import settings

_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def since(raw: str) -> timedelta:
    """`90s`, `15m`, `1h`, `2d`, `1w` as a timedelta."""
    match = _DURATION.match(raw.strip())
    if not match:
        raise argparse.ArgumentTypeError(f"a duration such as 15m, 1h or 2d, not {raw!r}")
    return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})


def trace_url(trace_id: str) -> str:
    return f"{settings.JAEGER_QUERY_URL.rstrip('/')}/trace/{trace_id}"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    sub = parser.add_subparsers(dest="question", required=True)

    def question(name: str, help_text: str, default_since: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.add_argument("--json", action="store_true", help="one JSON document instead of a table")
        p.add_argument("--limit", type=int, default=None, help="at most this many rows")
        if name != "session":
            p.add_argument(
                "--since", type=since, default=since(default_since), help=f"how far back (default {default_since})"
            )
            p.add_argument("--server", default=None)
        return p

    question("tools", "top tools by calls, with errors and p50/p95/p99 (ms)", "1d")
    for name, text in (("errors", "the failed calls, newest first, with their error"), ("slow", "the slowest calls")):
        question(name, text, "1h").add_argument("--tool", default=None)
    question("session", "one session's timeline", "1h").add_argument("session_id")
    calls = question("calls", "the calls of a server, or of one of its tools, newest first", "1h")
    calls.add_argument("--tool", default=None)


def run(args: argparse.Namespace) -> int:
    from workers.clickhouse import audit
    from workers.clickhouse.client import new_client

    client = new_client()
    if args.question == "session":
        rows: list[Any] = audit.session(client, args.session_id, **_limit(args))
    else:
        until = datetime.now(UTC).replace(tzinfo=None)
        window = audit.Window(until - args.since, until)
        if args.question == "tools":
            rows = audit.top_tools(client, window, server=args.server, **_limit(args))
        else:
            ask = {"errors": audit.errors, "slow": audit.slow, "calls": audit.calls}[args.question]
            rows = ask(client, window, server=args.server, tool=args.tool, **_limit(args))
    print(as_json(rows) if args.json else as_table(rows))
    return 0


def _limit(args: argparse.Namespace) -> dict[str, int]:
    return {"limit": args.limit} if args.limit else {}


def _record(row: Any) -> dict[str, Any]:
    record = dataclasses.asdict(row)
    if "trace_id" in record:
        record["time"] = _time(record.pop("time_ms"))
        record["trace_url"] = trace_url(record["trace_id"])
    if "slowest_trace_id" in record:
        record["slowest_trace_url"] = trace_url(record["slowest_trace_id"])
    return record


def _time(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def as_json(rows: list[Any]) -> str:
    return json.dumps([_record(row) for row in rows], indent=2)


def as_table(rows: list[Any]) -> str:
    from sentinel_cli.table import render

    if not rows:
        return "(no rows)"
    if not hasattr(rows[0], "trace_id"):  # tool figures
        headers = ["server", "tool", "calls", "errors", "p50_ms", "p95_ms", "p99_ms", "slowest call's trace"]
        table = [
            [r.server, r.tool, r.calls, r.errors, r.p50_ms, r.p95_ms, r.p99_ms, trace_url(r.slowest_trace_id)]
            for r in rows
        ]
        return render(headers, table)
    headers = ["time", "server", "tool", "status", "ms", "principal", "session", "error", "trace"]
    table = [
        [
            _time(r.time_ms),
            r.server,
            r.tool or r.method,
            r.status,
            round(r.duration_ms, 1),
            r.principal,
            r.session_id,
            r.error[:60],
            f"{r.trace_id} {trace_url(r.trace_id)}",
        ]
        for r in rows
    ]
    return render(headers, table)
