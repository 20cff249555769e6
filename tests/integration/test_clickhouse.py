"""Real ClickHouse: create, insert through clickhouse-driver, select back; and our schema migrates."""

from __future__ import annotations

import uuid

from workers.clickhouse.client import new_client, server_version
from workers.clickhouse.schema import EVENT_COLUMNS, QUALIFIED_EVENTS_TABLE, migrate


def test_create_insert_select() -> None:
    client = new_client()
    table = f"default.sentinel_test_{uuid.uuid4().hex[:8]}"
    client.execute(f"CREATE TABLE {table} (id UInt32, name String) ENGINE = MergeTree() ORDER BY id")
    try:
        client.execute(f"INSERT INTO {table} (id, name) VALUES", [(1, "ä'\"; DROP"), (2, "b")])
        assert client.execute(f"SELECT id, name FROM {table} ORDER BY id") == [(1, "ä'\"; DROP"), (2, "b")]
    finally:
        client.execute(f"DROP TABLE {table}")


def test_migration_is_idempotent_and_has_contract_columns() -> None:
    client = new_client()
    migrate(client)
    migrate(client)
    database, table = QUALIFIED_EVENTS_TABLE.split(".")
    columns = dict(
        client.execute(
            "SELECT name, type FROM system.columns WHERE database = %(d)s AND table = %(t)s",
            {"d": database, "t": table},
        )
    )
    for name in EVENT_COLUMNS:
        assert name in columns
    assert columns["event_id"] == "UUID"
    assert columns["trace_id"] == "FixedString(32)"
    assert columns["span_id"] == "FixedString(16)"
    assert server_version(client) >= (18, 0)


def test_the_bench_sees_an_insert_in_clickhouses_insert_counter() -> None:
    # The bench starts its exact counts when this counter says the rows are in (bench/observe.py).
    from bench.observe import inserted_rows, wait_inserted

    client = new_client()
    table = f"default.sentinel_test_{uuid.uuid4().hex[:8]}"
    client.execute(f"CREATE TABLE {table} (id UInt32) ENGINE = MergeTree() ORDER BY id")
    try:
        before = inserted_rows(client)
        client.execute(f"INSERT INTO {table} (id) VALUES", [(i,) for i in range(1000)])
        assert wait_inserted(client, before, 1000, timeout_s=5.0) >= 1000
    finally:
        client.execute(f"DROP TABLE {table}")
