"""Real ClickHouse: the versioned migrations apply once, copy a v1 table whole, and of several
processes starting at once one migrates while the others wait."""

from __future__ import annotations

import multiprocessing as mp
import time
import uuid
from collections.abc import Iterator

import orjson
import pytest
from clickhouse_driver import Client

from workers.clickhouse.client import new_client
from workers.clickhouse.migration_lock import MigrationLockTimeout, migration_lock
from workers.clickhouse.migrations import MIGRATIONS, migrate, migration_notes
from workers.clickhouse.schema import (
    EVENTS_TABLE,
    LOOKUP,
    MIGRATION_LOCK_TABLE,
    MIGRATIONS_TABLE,
    RETAINED_TABLES,
    ROLLUPS,
    V1_EVENT_COLUMNS,
    V1_EVENTS_TABLE,
    migration_lock_ddl,
    v1_events_table_ddl,
)


@pytest.fixture
def database() -> Iterator[str]:
    name = f"sentinel_migrations_{uuid.uuid4().hex[:8]}"
    client = new_client()
    client.execute(f"CREATE DATABASE {name}")
    yield name
    client.execute(f"DROP DATABASE IF EXISTS {name}")


def v1_rows(count: int, *, start: int = 0) -> list[tuple]:
    """v1 rows: one event in three has no timestamp (event time then comes from received_at)."""
    rows = []
    for i in range(start, start + count):
        event: dict[str, object] = {
            "type": "tool_call",
            "event_id": str(uuid.uuid4()),
            "server": f"server-{i % 7}",
            "tool": f"tool-{i % 5}",
            "status": "error" if i % 4 == 0 else "ok",
            "duration_ms": i % 100,
        }
        if i % 3:
            event["timestamp"] = f"2026-11-{1 + i % 28:02d}T10:00:00Z"
        rows.append(
            (
                uuid.UUID(str(event["event_id"])),
                "a" * 32,
                "b" * 16,
                "tool_call",
                1_764_000_000 + i,
                "mcp.events",
                i % 2,
                i,
                "c" * 32,
                "d" * 16,
                orjson.dumps(event).decode(),
            )
        )
    return rows


def make_v1_table(client: Client, database: str, rows: list[tuple]) -> None:
    client.execute(v1_events_table_ddl(database=database))
    client.execute(f"INSERT INTO {database}.{EVENTS_TABLE} ({', '.join(V1_EVENT_COLUMNS)}) VALUES", rows)


def ids(client: Client, table: str) -> set[str]:
    return {row[0] for row in client.execute(f"SELECT toString(event_id) FROM {table} FINAL")}


def test_a_fresh_database_gets_every_migration_once(database: str) -> None:
    client = new_client()
    assert migrate(client, database) == [m.version for m in MIGRATIONS]
    assert migrate(client, database) == []
    recorded = client.execute(f"SELECT version FROM {database}.{MIGRATIONS_TABLE} ORDER BY version")
    assert [row[0] for row in recorded] == [m.version for m in MIGRATIONS]
    tables = {row[0] for row in client.execute(f"SHOW TABLES FROM {database}")}
    assert {EVENTS_TABLE, *RETAINED_TABLES} <= tables
    assert MIGRATION_LOCK_TABLE not in tables


def test_a_v1_table_is_migrated_with_all_its_rows(database: str) -> None:
    client = new_client()
    rows = v1_rows(5000)
    # The same event delivered twice (another offset): v1 holds it as two rows until merged.
    rows.append((*rows[0][:7], 99_999, *rows[0][8:]))
    make_v1_table(client, database, rows)
    before = ids(client, f"{database}.{EVENTS_TABLE}")
    assert len(before) == 5000

    migrate(client, database)

    after = ids(client, f"{database}.{EVENTS_TABLE}")
    assert after == before
    assert len(client.execute(f"SELECT event_id FROM {database}.{EVENTS_TABLE} FINAL")) == 5000
    assert migration_notes(client, 2, database)["rows_before"] == 5000
    assert migration_notes(client, 2, database)["rows_after"] == 5000
    assert ids(client, f"{database}.{V1_EVENTS_TABLE}") == before  # kept for the operator
    # The typed columns were filled from the payloads, and the rollup counted every event once.
    servers = client.execute(f"SELECT uniqExact(server) FROM {database}.{EVENTS_TABLE}")[0][0]
    assert servers == 7
    for rollup in ROLLUPS:
        calls = client.execute(f"SELECT uniqExactMerge(calls) FROM {database}.{rollup.table}")[0][0]
        assert calls == 5000, rollup.table


def _migrate_in_child(database: str, start: mp.synchronize.Event, out: mp.Queue) -> None:
    start.wait()
    began = time.monotonic()
    applied = migrate(new_client(), database)
    out.put((applied, time.monotonic() - began))


def test_processes_starting_at_once_migrate_once(database: str) -> None:
    client = new_client()
    make_v1_table(client, database, v1_rows(30_000))
    ctx = mp.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    children = [ctx.Process(target=_migrate_in_child, args=(database, start, out)) for _ in range(4)]
    for child in children:
        child.start()
    time.sleep(3)  # the children import and connect first
    start.set()
    results = [out.get(timeout=300) for _ in children]
    for child in children:
        child.join(30)
    applied = sorted(r[0] for r in results)
    assert applied == [[], [], [], [m.version for m in MIGRATIONS]]
    raw = client.execute(f"SELECT count() FROM {database}.{MIGRATIONS_TABLE}")[0][0]
    assert raw == len(MIGRATIONS)  # each recorded once, not once per process
    assert len(ids(client, f"{database}.{EVENTS_TABLE}")) == 30_000


def test_a_dead_holders_lock_is_taken_over(database: str) -> None:
    client = new_client()
    client.execute(migration_lock_ddl(database=database))  # a holder that died before its first beat
    client.execute(f"INSERT INTO {database}.{MIGRATION_LOCK_TABLE} (holder, beat) VALUES", [("dead", 1)])
    began = time.monotonic()
    with migration_lock(client, new_client, database=database, stale_s=1.0, timeout_s=30):
        waited = time.monotonic() - began
    assert 1.0 <= waited < 10
    tables = {row[0] for row in client.execute(f"SHOW TABLES FROM {database}")}
    assert not [t for t in tables if t.startswith(MIGRATION_LOCK_TABLE)]


def test_a_live_holders_lock_is_waited_for(database: str) -> None:
    client = new_client()
    waiter = migration_lock(new_client(), new_client, database=database, stale_s=5.0, timeout_s=3.0)
    with migration_lock(client, new_client, database=database), pytest.raises(MigrationLockTimeout):
        waiter.__enter__()


def test_retention_drops_old_months_from_every_table(database: str) -> None:
    from datetime import UTC, datetime

    from workers.clickhouse.retention import drop_expired
    from workers.clickhouse.schema import EVENT_COLUMNS

    client = new_client()
    migrate(client, database)
    now = datetime.now(UTC)
    old, recent = 1_577_836_800, int(now.timestamp())  # 2020-01-01, now
    rows = []
    for at in (old, recent):
        values = dict.fromkeys(EVENT_COLUMNS, "")
        values |= {
            "event_id": uuid.uuid4(),
            "trace_id": "a" * 32,
            "span_id": "b" * 16,
            "event_time": at,
            "event_time_ms": at * 1000,
            "received_at": at,
            "duration_ms": 1.0,
            "kafka_partition": 0,
            "kafka_offset": 0,
            "insert_trace_id": "c" * 32,
            "insert_span_id": "d" * 16,
        }
        rows.append(tuple(values[c] for c in EVENT_COLUMNS))
    client.execute(f"INSERT INTO {database}.{EVENTS_TABLE} ({', '.join(EVENT_COLUMNS)}) VALUES", rows)
    dropped = drop_expired(client, database, days=30, now=now)
    assert dropped == {table: ["202001"] for table in sorted(RETAINED_TABLES)}
    for table in RETAINED_TABLES:
        times = client.execute(f"SELECT count() FROM {database}.{table}")[0][0]
        # The lookup table holds three rows per event (by event id, trace id and session).
        assert times == (3 if table == LOOKUP.table else 1), table
