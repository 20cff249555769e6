""" "All these event ids are in ClickHouse, each exactly once": the check every delivery test ends
with, read with FINAL as DESIGN.md says exact counts must be."""

from __future__ import annotations

import time
from collections.abc import Collection

from clickhouse_driver import Client

from workers.clickhouse.client import new_client
from workers.clickhouse.schema import QUALIFIED_EVENTS_TABLE

# Ids per query: an IN list of this many stays well inside ClickHouse's query size limit.
_PER_QUERY = 5000


def stored_counts(client: Client, event_ids: Collection[str]) -> dict[str, int]:
    """Rows read with FINAL per event id, for the ids of `event_ids` that are stored."""
    ids = list(event_ids)
    counts: dict[str, int] = {}
    for start in range(0, len(ids), _PER_QUERY):
        rows = client.execute(
            f"SELECT toString(event_id), count() FROM {QUALIFIED_EVENTS_TABLE} FINAL"
            " WHERE event_id IN (SELECT toUUID(arrayJoin(%(ids)s))) GROUP BY event_id",
            {"ids": ids[start : start + _PER_QUERY]},
        )
        counts.update((event_id, int(count)) for event_id, count in rows)
    return counts


def _found_elsewhere(client: Client, missing: list[str]) -> str:
    """Where missing events are when another database's table has them: a worker started with
    another SENTINEL_CLICKHOUSE_DATABASE (a benchmark's) takes its share of the shared queue."""
    database, _, table = QUALIFIED_EVENTS_TABLE.partition(".")
    others = client.execute(
        "SELECT database FROM system.tables WHERE name = %(table)s AND database != %(database)s",
        {"table": table, "database": database},
    )
    found = []
    for (other,) in others:
        rows = client.execute(
            f"SELECT uniqExact(event_id) FROM {other}.{table} WHERE event_id IN (SELECT toUUID(arrayJoin(%(ids)s)))",
            {"ids": missing[:_PER_QUERY]},
        )
        if rows[0][0]:
            found.append(f"{rows[0][0]} in {other}.{table}")

    return f"; found instead: {', '.join(found)} (a worker writes to another database)" if found else ""


def assert_all_stored(event_ids: Collection[str], *, timeout_s: float = 120.0, client: Client | None = None) -> None:
    """Wait until every one of `event_ids` is in sentinel.mcp_events, then fail unless each is
    read exactly once with FINAL. The failure says how many are missing or doubled, with examples."""
    wanted = set(event_ids)
    client = client or new_client()
    deadline = time.monotonic() + timeout_s
    while True:
        counts = stored_counts(client, wanted)
        if len(counts) == len(wanted) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    missing = sorted(wanted - counts.keys())
    doubled = sorted(event_id for event_id, count in counts.items() if count != 1)
    problems = []
    if missing:
        problems.append(
            f"{len(missing)} of {len(wanted)} events not in ClickHouse after {timeout_s:.0f}s (e.g. {missing[:3]});"
            " is the pipeline running? `.venv/bin/sentinel status`, and `.venv/bin/sentinel up` to start it"
            + _found_elsewhere(client, missing)
        )
    if doubled:
        problems.append(f"{len(doubled)} events read more than once with FINAL (e.g. {doubled[:3]})")
    assert not problems, "; ".join(problems)
