"""The DDL holds on current ClickHouse too (chdb embeds it), and behaves there: FINAL reads one row
per event, the lookups find it, and the rollup counts an event inserted twice once."""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Iterator

import pytest
from chdb import session as chdb_session

from workers.clickhouse.schema import (
    EVENT_COLUMNS,
    EVENTS_TABLE,
    LOOKUP,
    ROLLUPS,
    canary_table_ddl,
    events_table_ddl,
    migrations_table_ddl,
    v1_events_table_ddl,
)

DB = "sentinel_chdb"


@pytest.fixture
def db() -> Iterator[chdb_session.Session]:
    with tempfile.TemporaryDirectory() as path:
        session = chdb_session.Session(path)
        session.query(f"CREATE DATABASE IF NOT EXISTS {DB}")
        yield session
        session.close()


def _csv(db: chdb_session.Session, sql: str) -> str:
    return db.query(sql, "CSV").bytes().decode().strip()


def _row(event_id: str, *, server: str, tool: str, status: str, offset: int, second: int) -> str:
    payload = f'{{"type":"tool_call","server":"{server}"}}'
    values = {
        "event_id": f"'{event_id}'",
        "trace_id": f"'{'a' * 32}'",
        "span_id": f"'{'b' * 16}'",
        "event_type": "'tool_call'",
        "event_time": f"toDateTime('2026-11-25 12:00:{second:02d}')",
        "event_time_ms": "0",
        "received_at": "toDateTime('2026-11-25 12:00:00')",
        "session_id": "'s1'",
        "server": f"'{server}'",
        "method": "'tools/call'",
        "tool": f"'{tool}'",
        "status": f"'{status}'",
        "duration_ms": "12.5",
        "principal": "'alice'",
        "client_name": "'cli'",
        "client_version": "'1.0'",
        "kafka_topic": "'mcp.events'",
        "kafka_partition": "1",
        "kafka_offset": str(offset),
        "insert_trace_id": f"'{'c' * 32}'",
        "insert_span_id": f"'{'d' * 16}'",
        "payload": f"'{payload}'",
    }
    return "(" + ", ".join(values[c] for c in EVENT_COLUMNS) + ")"


@pytest.mark.parametrize("dedup_window", [True, False])
@pytest.mark.parametrize("ttl", [True, False])
def test_schema_v2_is_valid_on_current_clickhouse(db: chdb_session.Session, dedup_window: bool, ttl: bool) -> None:
    db.query(LOOKUP.table_ddl(ttl=ttl, database=DB))
    db.query(events_table_ddl(dedup_window=dedup_window, ttl=ttl, database=DB))
    db.query(LOOKUP.view_ddl(database=DB))
    for rollup in ROLLUPS:
        db.query(rollup.table_ddl(ttl=ttl, database=DB))
        db.query(rollup.view_ddl(database=DB))
    db.query(canary_table_ddl(database=DB))
    db.query(migrations_table_ddl(database=DB))
    columns = _csv(db, f"SELECT name FROM system.columns WHERE database = '{DB}' AND table = '{EVENTS_TABLE}'")
    for name in EVENT_COLUMNS:
        assert f'"{name}"' in columns
    sorting_key = _csv(db, f"SELECT sorting_key FROM system.tables WHERE database = '{DB}' AND name = '{EVENTS_TABLE}'")
    assert sorting_key == '"server, tool, event_time, event_id"'

    insert = f"INSERT INTO {DB}.{EVENTS_TABLE} ({', '.join(EVENT_COLUMNS)}) VALUES "
    ok, failed = str(uuid.uuid4()), str(uuid.uuid4())
    chunk = ", ".join(
        [
            _row(ok, server="fs", tool="read", status="ok", offset=7, second=1),
            _row(failed, server="fs", tool="read", status="tool_error", offset=8, second=2),
        ]
    )
    db.query(insert + chunk)
    # The same chunk delivered again (another offset range, so no dedup token can drop it).
    db.query(insert + chunk.replace(", 7, ", ", 17, ").replace(", 8, ", ", 18, "))
    assert _csv(db, f"SELECT count() FROM {DB}.{EVENTS_TABLE} FINAL") == "2"
    key = "(server, tool, event_time, event_id)"
    by_id = LOOKUP.keys_sql(LOOKUP.EVENT_ID, f"'{failed}'", database=DB)
    found = _csv(db, f"SELECT status FROM {DB}.{EVENTS_TABLE} FINAL WHERE {key} IN ({by_id})")
    assert found == '"tool_error"'
    by_trace = LOOKUP.keys_sql(LOOKUP.TRACE_ID, f"'{'a' * 32}'", database=DB)
    assert _csv(db, f"SELECT count() FROM {DB}.{EVENTS_TABLE} FINAL WHERE {key} IN ({by_trace})") == "2"
    by_session = LOOKUP.keys_sql(LOOKUP.SESSION, "'s1'", database=DB)
    assert _csv(db, f"SELECT count() FROM {DB}.{EVENTS_TABLE} FINAL WHERE {key} IN ({by_session})") == "2"
    for rollup in ROLLUPS:
        counted = _csv(
            db,
            f"SELECT uniqExactMerge(calls), uniqExactIfMerge(errors) FROM {DB}.{rollup.table} WHERE server = 'fs'",
        )
        assert counted == "2,1", rollup.table


def test_v1_ddl_is_valid_on_current_clickhouse(db: chdb_session.Session) -> None:
    db.query(v1_events_table_ddl(database=DB))
    sorting_key = _csv(db, f"SELECT sorting_key FROM system.tables WHERE database = '{DB}' AND name = '{EVENTS_TABLE}'")
    assert sorting_key == '"event_id"'
