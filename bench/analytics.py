"""`python -m bench.analytics [--rows N] [--days D] [--servers S] [--repeat R]`: the operators'
questions on schema v1 against schema v2, in one run, on the same generated audit rows.

Generates N audit rows (default 10 million) over the last D days (30) for S servers (50), ten tools
each, into a database of its own (`sentinel_bench_analytics`): first a v1 table (`events_v1`:
event id, trace ids, offsets and the JSON payload, ordered by event_id), then schema v2 made by
the migrations, filled from the v1 rows with the same values (so its lookup table and rollups fill as in
production). Then it times each question R times on both, v1 by JSON extraction from the payload
(`visitParamExtract*`: 18.16 has no JSONExtract) and v2 through its typed columns, lookup table and
rollups; it checks that both answer the same, and prints one JSON document: the median ms of each
question on each schema, v1/v2 as a ratio, the targets, and the bytes per row on disk of each.

The rows are made by ClickHouse itself (INSERT ... SELECT FROM numbers): ten million rows through
Python would take longer than every query of the run together. The insert path of v2 (the worker
deriving the typed columns) is measured by `python -m bench --scenarios batched`.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from clickhouse_driver import Client

from sentinel.events import ERROR_STATUSES, STATUS_CANCELLED, STATUS_OK
from workers.clickhouse.audit import Window, rollup_source
from workers.clickhouse.client import new_client
from workers.clickhouse.migrations import migrate
from workers.clickhouse.schema import (
    ERROR_STATUS_SQL,
    EVENT_COLUMNS,
    EVENT_KEY,
    EVENTS_TABLE,
    HOURLY,
    LOOKUP,
    QUANTILE_LEVELS,
    ROLLUPS,
    v1_events_table_ddl,
)

DATABASE = "sentinel_bench_analytics"
V1_TABLE = "events_v1"
TOOLS_PER_SERVER = 10
EVENTS_PER_SESSION = 20
PRINCIPALS = 200
# Targets of issue 27: one server over one hour, all servers over one day, and v1/v2 at least this.
TARGET_ONE_SERVER_HOUR_MS = 100.0
TARGET_ALL_SERVERS_DAY_MS = 1000.0
TARGET_RATIO = 10.0


def log(message: str) -> None:
    print(f"[bench.analytics] {message}", file=sys.stderr, flush=True)


def generate_v1(
    client: Client, rows: int, days: int, servers: int, end: int, *, table: str = f"{DATABASE}.{V1_TABLE}"
) -> None:
    """`rows` v1 rows spread evenly over the `days` before `end` (epoch seconds); received_at is the
    event's timestamp, so both schemas put an event in the same hour."""
    start = end - days * 86400
    step = days * 86400 / rows
    client.execute(
        f"""INSERT INTO {table}
        (event_id, trace_id, span_id, event_type, received_at, kafka_topic, kafka_partition, kafka_offset,
         insert_trace_id, insert_span_id, payload)
        SELECT id, trace, span, 'tool_call', t, 'mcp.events', toUInt32(number % 4), number, trace, span,
            concat('{{"type":"tool_call","event_id":"', toString(id),
                   '","timestamp":"', formatDateTime(t, '%Y-%m-%dT%H:%M:%SZ'),
                   '","session_id":"session-', toString(intDiv(number, {EVENTS_PER_SESSION})),
                   '","server":"server-', toString(srv),
                   '","method":"tools/call","tool":"tool-', toString(cityHash64(number, 1) % {TOOLS_PER_SERVER}),
                   '","status":"', st,
                   '","duration_ms":', toString(dur),
                   ',"principal":"user-', toString(cityHash64(number, 2) % {PRINCIPALS}),
                   '","attributes":{{"client_name":"bench-client","client_version":"1.0",',
                   '"arguments":{{"path":"/srv/data/file-', toString(number % 1000), '.txt"}}}}}}')
        FROM
        (
            SELECT number, generateUUIDv4() AS id,
                toDateTime({start} + toUInt32(number * {step})) AS t,
                -- a session's events share a server, as one MCP client session talks to one server
                cityHash64(intDiv(number, {EVENTS_PER_SESSION})) % {servers} AS srv,
                lower(hex(cityHash64(number, 3))) AS h,
                toFixedString(concat(h, lower(hex(cityHash64(number, 4)))), 32) AS trace,
                toFixedString(h, 16) AS span,
                multiIf(cityHash64(number, 5) % 100 < 4, '{ERROR_STATUSES[0]}',
                        cityHash64(number, 5) % 100 < 6, '{ERROR_STATUSES[1]}',
                        cityHash64(number, 5) % 1000 < 61, '{STATUS_CANCELLED}', '{STATUS_OK}') AS st,
                round(exp((cityHash64(number, 6) % 1000) / 150.0), 2) AS dur
            FROM numbers({rows})
        )""",
        settings={"max_block_size": 200_000, "max_insert_block_size": 1_000_000},
    )


def fill_v2(client: Client) -> None:
    """v2 from the v1 rows, typed columns extracted from the (flat) generated payloads."""
    derived = {
        "event_time": "received_at",
        "event_time_ms": "toUInt64(received_at) * 1000",
        "session_id": "visitParamExtractString(payload, 'session_id')",
        "server": "visitParamExtractString(payload, 'server')",
        "method": "visitParamExtractString(payload, 'method')",
        "tool": "visitParamExtractString(payload, 'tool')",
        "status": "visitParamExtractString(payload, 'status')",
        "duration_ms": "visitParamExtractFloat(payload, 'duration_ms')",
        "principal": "visitParamExtractString(payload, 'principal')",
        "client_name": "visitParamExtractString(payload, 'client_name')",
        "client_version": "visitParamExtractString(payload, 'client_version')",
    }
    select = ", ".join(derived.get(c, c) for c in EVENT_COLUMNS)
    client.execute(
        f"INSERT INTO {DATABASE}.{EVENTS_TABLE} ({', '.join(EVENT_COLUMNS)})"
        f" SELECT {select} FROM {DATABASE}.{V1_TABLE}",
        settings={"max_block_size": 200_000, "max_insert_block_size": 1_000_000},
    )


@dataclass(frozen=True)
class Question:
    name: str
    scope: str  # "one server, one hour" / "all servers, one day" / other
    v1: str
    v2: str


def _v1(field: str) -> str:
    return f"visitParamExtractString(payload, '{field}')"


def questions(end: int, server: str, tool: str, session: str, event_id: str, trace_id: str) -> list[Question]:
    hour = f"toDateTime({end - 3600}) AND toDateTime({end})"
    today = f"toDateTime({end - 86400}) AND toDateTime({end})"
    two_days = f"toDateTime({end - 2 * 86400}) AND toDateTime({end})"
    v1 = f"{DATABASE}.{V1_TABLE}"
    v2 = f"{DATABASE}.{EVENTS_TABLE}"
    day = Window(
        datetime.fromtimestamp(end - 86400, UTC).replace(tzinfo=None),
        datetime.fromtimestamp(end, UTC).replace(tzinfo=None),
    )
    dur_v1 = "visitParamExtractFloat(payload, 'duration_ms')"
    key = ", ".join(EVENT_KEY)
    return [
        Question(
            "errors of one server, last hour (which tools failed, and why)",
            "one server, one hour",
            f"SELECT {_v1('tool')} AS tool, {_v1('status')} AS status, count() AS n FROM {v1} FINAL"
            f" WHERE received_at BETWEEN {hour} AND {_v1('server')} = '{server}'"
            f" AND {_v1('status')} IN {ERROR_STATUS_SQL} GROUP BY tool, status ORDER BY tool, status",
            f"SELECT tool, status, count() AS n FROM {v2} FINAL WHERE server = '{server}'"
            f" AND event_time BETWEEN {hour} AND status IN {ERROR_STATUS_SQL}"
            " GROUP BY tool, status ORDER BY tool, status",
        ),
        Question(
            "calls of one tool of one server, last hour",
            "one server, one hour",
            f"SELECT toString(event_id) AS id, received_at AS t, {_v1('status')}, {dur_v1}, trace_id FROM {v1} FINAL"
            f" WHERE received_at BETWEEN {hour} AND {_v1('server')} = '{server}' AND {_v1('tool')} = '{tool}'"
            " ORDER BY t, id",
            f"SELECT toString(event_id) AS id, event_time AS t, status, duration_ms, trace_id FROM {v2} FINAL"
            f" WHERE server = '{server}' AND tool = '{tool}' AND event_time BETWEEN {hour} ORDER BY t, id",
        ),
        Question(
            "who called one tool of one server, last day",
            "one server, one day",
            f"SELECT {_v1('principal')} AS p, count() AS n FROM {v1} FINAL WHERE received_at BETWEEN {today}"
            f" AND {_v1('server')} = '{server}' AND {_v1('tool')} = '{tool}' GROUP BY p ORDER BY n DESC, p",
            f"SELECT principal AS p, count() AS n FROM {v2} FINAL WHERE server = '{server}' AND tool = '{tool}'"
            f" AND event_time BETWEEN {today} GROUP BY p ORDER BY n DESC, p",
        ),
        Question(
            "top tools by calls, with their errors, all servers, last day",
            "all servers, one day",
            f"SELECT {_v1('server')} AS s, {_v1('tool')} AS tl, count() AS calls,"
            f" countIf({_v1('status')} IN {ERROR_STATUS_SQL}) AS errors FROM {v1} FINAL"
            f" WHERE received_at BETWEEN {today} GROUP BY s, tl ORDER BY calls DESC, s, tl LIMIT 20",
            f"SELECT server AS s, tool AS tl, uniqExactMerge(calls) AS c, uniqExactIfMerge(errors) AS e"
            f" FROM ({rollup_source(day, database=DATABASE)}) GROUP BY s, tl ORDER BY c DESC, s, tl LIMIT 20",
        ),
        Question(
            "p95 latency per tool, today against yesterday, all servers",
            "all servers, two days",
            f"SELECT {_v1('server')} AS s, {_v1('tool')} AS tl, received_at >= toDateTime({end - 86400}) AS today,"
            f" count() AS n, quantileTDigest(0.95)({dur_v1}) FROM {v1} FINAL WHERE received_at BETWEEN {two_days}"
            " AND " + _v1("status") + " != '' GROUP BY s, tl, today ORDER BY s, tl, today",
            f"SELECT server AS s, tool AS tl, hour >= toDateTime({end - 86400}) AS today,"
            f" uniqExactMerge(calls) AS n, quantilesTDigestIfMerge({QUANTILE_LEVELS})(duration)[2]"
            f" FROM {DATABASE}.{HOURLY.table} WHERE hour >= toDateTime({end - 2 * 86400}) AND hour < toDateTime({end})"
            " GROUP BY s, tl, today ORDER BY s, tl, today",
        ),
        Question(
            "one session's timeline",
            "one session",
            f"SELECT received_at AS t, toString(event_id) AS id, {_v1('tool')}, {_v1('status')} FROM {v1} FINAL"
            f" WHERE {_v1('session_id')} = '{session}' ORDER BY t, id",
            f"SELECT event_time AS t, toString(event_id) AS id, tool, status FROM {v2} FINAL WHERE ({key}) IN"
            f" ({LOOKUP.keys_sql(LOOKUP.SESSION, repr(session), database=DATABASE)}) ORDER BY t, id",
        ),
        Question(
            "one event by event_id (sentinel trace)",
            "one event",
            f"SELECT toString(event_id), trace_id FROM {v1} FINAL WHERE event_id = toUUID('{event_id}')",
            f"SELECT toString(event_id), trace_id FROM {v2} FINAL WHERE ({key}) IN"
            f" ({LOOKUP.keys_sql(LOOKUP.EVENT_ID, repr(event_id), database=DATABASE)})",
        ),
        Question(
            "the events of one trace_id",
            "one trace",
            f"SELECT toString(event_id), trace_id FROM {v1} FINAL WHERE trace_id = '{trace_id}'",
            f"SELECT toString(event_id), trace_id FROM {v2} FINAL WHERE ({key}) IN"
            f" ({LOOKUP.keys_sql(LOOKUP.TRACE_ID, repr(trace_id), database=DATABASE)})"
            f" AND trace_id = '{trace_id}'",
        ),
    ]


def _timed(run: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    run()  # once to warm the caches both schemas get
    times, result = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        result = run()
        times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times), result


def _same(v1: list[tuple], v2: list[tuple]) -> bool:
    """Both schemas gave the same answer; quantiles (t-digest over different blocks) to within 5%."""
    if len(v1) != len(v2):
        return False
    for a, b in zip(v1, v2, strict=True):
        for x, y in zip(a, b, strict=True):
            if isinstance(x, float) or isinstance(y, float):
                if abs(float(x) - float(y)) > 0.05 * max(abs(float(x)), abs(float(y)), 1.0):
                    return False
            elif str(x) != str(y):
                return False
    return True


def wait_for_merges(client: Client, timeout_s: float = 600.0) -> float:
    """Wait until no merge of the database runs: both schemas are timed on settled tables, as a
    server holds them most of the time, not during the merge storm that follows 20 million inserted rows."""
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        running = client.execute("SELECT count() FROM system.merges WHERE database = %(d)s", {"d": DATABASE})[0][0]
        if not running:
            break
        time.sleep(2)
    return time.monotonic() - started


def _load_average() -> list[float]:
    """The host's load: the machine is shared, and a busy one slows both schemas' queries."""
    with open("/proc/loadavg") as fh:
        return [float(x) for x in fh.read().split()[:3]]


def bytes_per_row(client: Client, tables: list[str]) -> dict[str, float]:
    rows = client.execute(
        "SELECT table, sum(rows), sum(data_compressed_bytes), sum(data_uncompressed_bytes) FROM system.parts"
        " WHERE active AND database = %(d)s AND table IN %(t)s GROUP BY table",
        {"d": DATABASE, "t": tuple(tables)},
    )
    return {table: float(compressed) for table, _, compressed, _ in rows}


def run(rows: int, days: int, servers: int, repeat: int) -> dict[str, Any]:
    client = new_client(send_receive_timeout=3600)
    client.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
    migrate(client, DATABASE)
    client.execute(v1_events_table_ddl(database=DATABASE, table=V1_TABLE))
    end = int(time.time()) // 3600 * 3600
    started = time.monotonic()
    generate_v1(client, rows, days, servers, end)
    generated_v1_s = time.monotonic() - started
    log(f"{rows} v1 rows in {generated_v1_s:.1f}s")
    started = time.monotonic()
    fill_v2(client)
    filled_v2_s = time.monotonic() - started
    log(f"v2 (with lookups and rollup) filled in {filled_v2_s:.1f}s")

    settled_s = wait_for_merges(client)
    log(f"background merges settled after {settled_s:.0f}s")
    load = _load_average()

    server, tool = "server-7", "tool-3"
    session = client.execute(
        f"SELECT session_id FROM {DATABASE}.{EVENTS_TABLE} WHERE event_time > toDateTime({end - 7200}) LIMIT 1"
    )[0][0]
    event_id, trace_id = client.execute(
        f"SELECT toString(event_id), trace_id FROM {DATABASE}.{V1_TABLE} WHERE received_at > toDateTime({end - 7200})"
        " LIMIT 1"
    )[0]
    results = []
    for question in questions(end, server, tool, session, event_id, trace_id):
        v1_ms, v1_rows = _timed(lambda q=question: client.execute(q.v1), repeat)
        v2_ms, v2_rows = _timed(lambda q=question: client.execute(q.v2), repeat)
        result = {
            "question": question.name,
            "scope": question.scope,
            "v1_ms": round(v1_ms, 1),
            "v2_ms": round(v2_ms, 1),
            "v1_over_v2": round(v1_ms / v2_ms, 1) if v2_ms else None,
            "rows": len(v2_rows),
            "same_answer": _same(v1_rows, v2_rows),
        }
        log(json.dumps(result))
        results.append(result)

    v2_tables = [EVENTS_TABLE, *(rollup.table for rollup in ROLLUPS), LOOKUP.table]
    sizes = bytes_per_row(client, [V1_TABLE, *v2_tables])
    disk = {
        "v1_bytes_per_row": round(sizes.get(V1_TABLE, 0) / rows, 1),
        "v2_bytes_per_row": round(sizes.get(EVENTS_TABLE, 0) / rows, 1),
        "v2_with_lookups_and_rollup_bytes_per_row": round(sum(sizes.get(t, 0) for t in v2_tables) / rows, 1),
        "by_table_bytes": sizes,
    }
    return {
        "rows": rows,
        "days": days,
        "servers": servers,
        "repeat": repeat,
        "generate_v1_s": round(generated_v1_s, 1),
        "fill_v2_s": round(filled_v2_s, 1),
        "merges_settled_s": round(settled_s, 1),
        "load_average_before_queries": load,
        "load_average_after_queries": _load_average(),
        "questions": results,
        "targets": targets(results),
        "disk": disk,
    }


def targets(results: list[dict[str, Any]]) -> dict[str, bool]:
    """Issue 27's targets against this run's figures (the lookups by id are not among its questions)."""
    asked = [r for r in results if r["scope"] not in ("one event", "one trace")]
    return {
        "one_server_one_hour_v2_at_most_100_ms": all(
            r["v2_ms"] <= TARGET_ONE_SERVER_HOUR_MS for r in asked if r["scope"] == "one server, one hour"
        ),
        "all_servers_one_day_v2_at_most_1_s": all(
            r["v2_ms"] <= TARGET_ALL_SERVERS_DAY_MS for r in asked if r["scope"].startswith("all servers")
        ),
        "v2_at_least_10x_v1_each_question": all((r["v1_over_v2"] or 0) >= TARGET_RATIO for r in asked),
        "same_answers": all(r["same_answer"] for r in results),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.analytics", description=__doc__)
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--servers", type=int, default=50)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs of each query (the median is kept)")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.rows, args.days, args.servers, args.repeat), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
