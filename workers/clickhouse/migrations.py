"""Versioned schema migrations: numbered, each applied once and recorded in `schema_migrations`.

`migrate()` runs at process start (`sentinel up`, and a worker or beat before its first write).
When every migration is recorded it costs one query; otherwise it takes the migration lock
(workers/clickhouse/migration_lock.py), so of several processes starting at once one applies
and the others wait, then finds what is still unrecorded and applies it in order. Each migration
is idempotent, so one cut short (a crash, a restarted server) is simply run again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import orjson
from clickhouse_driver import Client

from workers.clickhouse.client import new_client, server_version, supports_dedup_token, supports_ttl
from workers.clickhouse.columns import AUDIT_COLUMN_NAMES, audit_column_lists
from workers.clickhouse.migration_lock import migration_lock
from workers.clickhouse.schema import (
    DATABASE,
    EVENT_COLUMNS,
    EVENTS_TABLE,
    LOOKUP,
    MIGRATIONS_TABLE,
    ROLLUPS,
    V1_EVENT_COLUMNS,
    V1_EVENTS_TABLE,
    canary_table_ddl,
    events_table_ddl,
    migrations_table_ddl,
)

# Rows per INSERT when copying a v1 table: one block, one part per month it spans.
COPY_BATCH_ROWS = 100_000


class MigrationCheckFailed(RuntimeError):
    """A migration's own check of its result failed; it is not recorded, and runs again next start."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    # Applies the migration to a database; returns notes for the record (row counts, say).
    apply: Callable[[Client, str], dict[str, object]]


def _columns_of(client: Client, database: str, table: str) -> set[str]:
    rows = client.execute(
        "SELECT name FROM system.columns WHERE database = %(d)s AND table = %(t)s", {"d": database, "t": table}
    )
    return {row[0] for row in rows}


def _create_canary(client: Client, database: str) -> dict[str, object]:
    client.execute(canary_table_ddl(database=database))
    return {}


def _events_v2(client: Client, database: str) -> dict[str, object]:
    """Schema v2 and its lookup table; a v1 table in its place is renamed to `mcp_events_v1` first, and
    its rows copied over (and checked: the same count, the same event ids)."""
    version = server_version(client)
    columns = _columns_of(client, database, EVENTS_TABLE)
    if columns and "event_time" not in columns:
        client.execute(f"RENAME TABLE {database}.{EVENTS_TABLE} TO {database}.{V1_EVENTS_TABLE}")
    # The lookup and its view come first, so the copied rows reach it too.
    client.execute(LOOKUP.table_ddl(ttl=supports_ttl(version), database=database))
    client.execute(
        events_table_ddl(dedup_window=supports_dedup_token(version), ttl=supports_ttl(version), database=database)
    )
    client.execute(LOOKUP.view_ddl(database=database))
    if not _columns_of(client, database, V1_EVENTS_TABLE):
        return {}
    return copy_v1_rows(client, database)


def copy_v1_rows(client: Client, database: str) -> dict[str, object]:
    """Copy every event of the v1 table, as read with FINAL (one row per event id), into schema v2,
    deriving the typed columns as the writer does. Run again after an interruption, it copies the
    same rows to the same keys, which the ReplacingMergeTree merges."""
    source = f"{database}.{V1_EVENTS_TABLE}"
    target = f"{database}.{EVENTS_TABLE}"
    started = time.monotonic()
    before = int(client.execute(f"SELECT count() FROM {source} FINAL")[0][0])
    insert_sql = f"INSERT INTO {target} ({', '.join(EVENT_COLUMNS)}) VALUES"
    reader = new_client()  # the copy streams from one connection and inserts on another
    try:
        rows = reader.execute_iter(
            f"SELECT {_V1_SELECT} FROM {source} FINAL", settings={"max_block_size": COPY_BATCH_ROWS}
        )
        batch: list[tuple] = []
        for row in rows:
            batch.append(row)
            if len(batch) >= COPY_BATCH_ROWS:
                client.execute(insert_sql, _v2_columns(batch), columnar=True)
                batch = []
        if batch:
            client.execute(insert_sql, _v2_columns(batch), columnar=True)
    finally:
        reader.disconnect()
    after = int(
        client.execute(f"SELECT count() FROM {target} FINAL WHERE event_id IN (SELECT event_id FROM {source})")[0][0]
    )
    missing = int(
        client.execute(f"SELECT count() FROM {source} WHERE event_id NOT IN (SELECT event_id FROM {target})")[0][0]
    )
    if after != before or missing:
        raise MigrationCheckFailed(f"{source} -> {target}: {before} rows before, {after} after, {missing} ids missing")
    return {"rows_before": before, "rows_after": after, "copy_seconds": round(time.monotonic() - started, 3)}


# received_at as epoch seconds: the driver's datetimes are naive, in the server's time zone.
_V1_SELECT = ", ".join("toUInt32(received_at)" if c == "received_at" else c for c in V1_EVENT_COLUMNS)


def _v2_columns(rows: list[tuple]) -> list[list]:
    """v1 rows (V1_EVENT_COLUMNS order) as v2 columns (EVENT_COLUMNS order)."""
    v1 = dict(zip(V1_EVENT_COLUMNS, zip(*rows, strict=True), strict=True))
    received_ms = [int(at) * 1000 for at in v1["received_at"]]
    typed = audit_column_lists(v1["payload"], received_ms)
    derived = dict(zip(AUDIT_COLUMN_NAMES, typed, strict=True))
    derived["received_at"] = [ms // 1000 for ms in received_ms]
    return [list(v1[name]) if name in v1 and name != "received_at" else list(derived[name]) for name in EVENT_COLUMNS]


def _rollups(client: Client, database: str) -> dict[str, object]:
    """The rollups and their views, then a backfill from the rows already stored. Rows that arrive
    between a view's creation and the backfill reach the rollup twice, which its sets of event-id
    hashes count once."""
    ttl = supports_ttl(server_version(client))
    for rollup in ROLLUPS:
        client.execute(rollup.table_ddl(ttl=ttl, database=database))
        client.execute(rollup.view_ddl(database=database))
        client.execute(f"INSERT INTO {database}.{rollup.table} {rollup.select(database=database)}")
    return {}


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "pipeline canary table", _create_canary),
    Migration(2, "mcp_events schema v2 (typed columns) with its lookup table; v1 rows copied", _events_v2),
    Migration(3, "per-minute and per-hour rollups of calls, errors and duration by server, tool and status", _rollups),
)


def applied_versions(client: Client, database: str = DATABASE) -> set[int]:
    rows = client.execute(f"SELECT DISTINCT version FROM {database}.{MIGRATIONS_TABLE}")
    return {int(row[0]) for row in rows}


def migrate(client: Client, database: str = DATABASE) -> list[int]:
    """Apply the migrations `database` has not recorded, in order; returns their versions. Blocks
    while another process migrates. Idempotent; safe from several processes at once."""
    client.execute(f"CREATE DATABASE IF NOT EXISTS {database}")
    client.execute(migrations_table_ddl(database=database))
    wanted = {m.version for m in MIGRATIONS}
    if wanted <= applied_versions(client, database):
        _migrated.add(id(client))
        return []
    done: list[int] = []
    with migration_lock(client, new_client, database=database):
        applied = applied_versions(client, database)
        for migration in MIGRATIONS:
            if migration.version in applied:
                continue
            started = time.monotonic()
            notes = migration.apply(client, database)
            client.execute(
                f"INSERT INTO {database}.{MIGRATIONS_TABLE} (version, name, seconds, notes) VALUES",
                [(migration.version, migration.name, time.monotonic() - started, orjson.dumps(notes).decode())],
            )
            done.append(migration.version)
    _migrated.add(id(client))
    return done


def migration_notes(client: Client, version: int, database: str = DATABASE) -> dict[str, object]:
    """What migration `version` recorded (its row counts, say); empty when it is not applied."""
    rows = client.execute(
        f"SELECT notes FROM {database}.{MIGRATIONS_TABLE} FINAL WHERE version = %(v)s", {"v": version}
    )
    return orjson.loads(rows[0][0]) if rows else {}


_migrated: set[int] = set()


def ensure_schema(client: Client) -> None:
    """Migrate once per client. Processes call this before their first write rather than only at
    start, so a process that started while ClickHouse was away still creates the schema."""
    if id(client) not in _migrated:
        migrate(client)
