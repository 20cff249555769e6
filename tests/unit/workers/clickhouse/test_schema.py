"""The DDL holds on current ClickHouse too (chdb embeds it), and behaves: FINAL reads one row per event."""

from __future__ import annotations

import tempfile

import pytest
from chdb import session as chdb_session

from workers.clickhouse.schema import EVENT_COLUMNS, EVENTS_TABLE, events_table_ddl


@pytest.mark.parametrize("dedup_window", [True, False])
def test_events_table_ddl_is_valid_on_current_clickhouse(dedup_window: bool) -> None:
    with tempfile.TemporaryDirectory() as path:
        db = chdb_session.Session(path)
        db.query("CREATE DATABASE IF NOT EXISTS sentinel_chdb")
        db.query(events_table_ddl(dedup_window=dedup_window, database="sentinel_chdb"))
        columns = (
            db.query(
                f"SELECT name FROM system.columns WHERE database = 'sentinel_chdb' AND table = '{EVENTS_TABLE}'", "CSV"
            )
            .bytes()
            .decode()
        )
        for name in EVENT_COLUMNS:
            assert f'"{name}"' in columns
        row = (
            "('6f1c1d2e-8a4b-4c55-9a57-5e4e7d3b2a10', '{t}', '{s}', 'tool_call', '2026-11-25 12:00:00', "
            "'mcp.events', 1, 7, '{t}', '{s}', '{{\"type\":\"tool_call\"}}')"
        ).format(t="a" * 32, s="b" * 16)
        insert = f"INSERT INTO sentinel_chdb.{EVENTS_TABLE} ({', '.join(EVENT_COLUMNS)}) VALUES {row}"
        db.query(insert)
        db.query(insert.replace("'mcp.events', 1, 7", "'mcp.events', 1, 8"))  # the same event, delivered twice
        counted = db.query(f"SELECT count() FROM sentinel_chdb.{EVENTS_TABLE} FINAL", "CSV").bytes().decode()
        assert counted.strip() == "1"
        db.close()
