"""The operators' questions of the audit rows, as `sentinel audit` asks them.

Tool figures come from the rollups (hourly for whole hours, minutely at the ends of a window);
calls (errors, slow ones, a session's, one tool's) from the events table read with FINAL, so a
redelivered event shows once. Every query filters on a prefix of the events table's key (server,
tool, event_time) or goes through a lookup table.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from clickhouse_driver import Client

from sentinel.events import ERROR_MESSAGE_FIELD
from workers.clickhouse.schema import (
    DATABASE,
    ERROR_STATUS_SQL,
    EVENT_KEY,
    EVENTS_TABLE,
    HOURLY,
    LOOKUP,
    MINUTELY,
    QUANTILE_LEVELS,
)


@dataclass(frozen=True)
class ToolFigures:
    server: str
    tool: str
    calls: int
    errors: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    slowest_trace_id: str  # the trace of the slowest call among them


@dataclass(frozen=True)
class Call:
    time_ms: int  # epoch milliseconds
    server: str
    tool: str
    method: str
    status: str
    duration_ms: float
    principal: str
    session_id: str
    event_id: str
    trace_id: str
    error: str  # the error message the event carries, for failed calls


@dataclass(frozen=True)
class Window:
    """Event times from `since` to `until` (UTC datetimes, naive as clickhouse-driver sends them)."""

    since: datetime
    until: datetime

    def params(self) -> dict[str, datetime]:
        return {"since": self.since, "until": self.until}


_CALL_COLUMNS = (
    "event_time_ms, server, tool, method, status, duration_ms, principal, session_id, toString(event_id), trace_id,"
    f" if(status IN {ERROR_STATUS_SQL}, visitParamExtractString(payload, '{ERROR_MESSAGE_FIELD}'), '')"
)
_TIME = "event_time >= %(since)s AND event_time <= %(until)s"


def _epoch(at: datetime) -> int:
    return int(at.replace(tzinfo=UTC).timestamp())


def rollup_source(window: Window, *, server: str | None = None, database: str = DATABASE) -> str:
    """A subquery of rollup states covering the window's buckets: the hourly rollup for the whole
    hours inside it, the minutely one for the minutes at either end (so a day reads ~24 hourly
    buckets per series instead of 1440). Server names are passed as parameters (`%(server)s`)."""
    since, until = _epoch(window.since), _epoch(window.until)
    first_minute = since - since % MINUTELY.seconds
    first_hour = -(-since // HOURLY.seconds) * HOURLY.seconds  # the first whole hour in the window
    end_hour = until - until % HOURLY.seconds  # ... and the end of the last one
    scope = " AND server = %(server)s" if server is not None else ""
    states = "server, tool, calls, errors, duration, slowest"

    def minutes(start: int, end: int, *, inclusive: bool) -> str:
        last = "<=" if inclusive else "<"
        return (
            f"SELECT {states} FROM {database}.{MINUTELY.table} WHERE minute >= toDateTime({start})"
            f" AND minute {last} toDateTime({end}){scope}"
        )

    if end_hour <= first_hour:
        return minutes(first_minute, until, inclusive=True)
    # One simple range per branch, and no branch for an empty end: each range prunes by the key.
    branches = [
        f"SELECT {states} FROM {database}.{HOURLY.table} WHERE hour >= toDateTime({first_hour})"
        f" AND hour < toDateTime({end_hour}){scope}"
    ]
    if first_minute < first_hour:
        branches.append(minutes(first_minute, first_hour, inclusive=False))
    if end_hour <= until:
        branches.append(minutes(end_hour, until, inclusive=True))
    return " UNION ALL ".join(branches)


def top_tools_sql(window: Window, *, server: str | None = None, database: str = DATABASE) -> str:
    return (
        f"SELECT server, tool, uniqExactMerge(calls) AS n, uniqExactIfMerge(errors),"
        f" quantilesTDigestIfMerge({QUANTILE_LEVELS})(duration), argMaxMerge(slowest)"
        f" FROM ({rollup_source(window, server=server, database=database)})"
        " GROUP BY server, tool ORDER BY n DESC, server, tool LIMIT %(limit)s"
    )


def top_tools(client: Client, window: Window, *, server: str | None = None, limit: int = 20) -> list[ToolFigures]:
    """Tools by calls over the window, with their errors and duration quantiles (from the rollups)."""
    rows = client.execute(top_tools_sql(window, server=server), {"server": server, "limit": limit})
    return [
        ToolFigures(s, t, int(n), int(e), *(round(float(q), 1) for q in quantiles), slowest)
        for s, t, n, e, quantiles, slowest in rows
    ]


def _calls(client: Client, where: str, params: dict[str, object], order: str, limit: int) -> list[Call]:
    rows = client.execute(
        f"SELECT {_CALL_COLUMNS} FROM {DATABASE}.{EVENTS_TABLE} FINAL WHERE {where} ORDER BY {order} LIMIT %(limit)s",
        {**params, "limit": limit},
    )
    return [Call(*row) for row in rows]


def _scope(server: str | None, tool: str | None) -> str:
    return "".join(
        [" AND server = %(server)s" if server is not None else "", " AND tool = %(tool)s" if tool is not None else ""]
    )


def calls(
    client: Client, window: Window, *, server: str | None = None, tool: str | None = None, limit: int = 100
) -> list[Call]:
    """The calls in the window, newest first."""
    return _calls(
        client,
        _TIME + _scope(server, tool),
        {**window.params(), "server": server, "tool": tool},
        "event_time_ms DESC, event_id",
        limit,
    )


def errors(
    client: Client, window: Window, *, server: str | None = None, tool: str | None = None, limit: int = 100
) -> list[Call]:
    """The failed calls in the window, newest first, with the error each carries."""
    return _calls(
        client,
        f"{_TIME}{_scope(server, tool)} AND status IN {ERROR_STATUS_SQL}",
        {**window.params(), "server": server, "tool": tool},
        "event_time_ms DESC, event_id",
        limit,
    )


def slow(
    client: Client, window: Window, *, server: str | None = None, tool: str | None = None, limit: int = 20
) -> list[Call]:
    """The slowest calls in the window, slowest first."""
    return _calls(
        client,
        f"{_TIME}{_scope(server, tool)} AND status != ''",
        {**window.params(), "server": server, "tool": tool},
        "duration_ms DESC, event_id",
        limit,
    )


def session(client: Client, session_id: str, *, limit: int = 1000) -> list[Call]:
    """One session's events in the order they happened (through the lookup table, by session)."""
    key = ", ".join(EVENT_KEY)
    return _calls(
        client,
        f"({key}) IN ({LOOKUP.keys_sql(LOOKUP.SESSION, '%(session)s')})",
        {"session": session_id},
        "event_time_ms, event_id",
        limit,
    )
