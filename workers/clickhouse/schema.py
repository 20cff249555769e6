"""The `sentinel.mcp_events` schema and the migration every process runs at start.

The DDL must hold on Debian's ClickHouse 18.16 (no DateTime64, no LowCardinality by default) and on
current ClickHouse (checked with chdb in tests/unit/test_schema.py). Rows are keyed by event_id in a
ReplacingMergeTree, so a redelivered event is one row once merged, and read exactly once with FINAL.
On servers that have it, a non-replicated deduplication window lets a retried chunk's identical
insert (same `insert_deduplication_token`) be dropped outright.
"""

from __future__ import annotations

from clickhouse_driver import Client

from sentinel import settings
from workers.clickhouse.client import server_version, supports_dedup_token

DATABASE = settings.CLICKHOUSE_DATABASE
EVENTS_TABLE = "mcp_events"
QUALIFIED_EVENTS_TABLE = f"{DATABASE}.{EVENTS_TABLE}"
DEDUP_WINDOW = 10_000

# Insert order for the writer; one source for both.
EVENT_COLUMNS = (
    "event_id",
    "trace_id",
    "span_id",
    "event_type",
    "received_at",
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
    "insert_trace_id",
    "insert_span_id",
    "payload",
)


def events_table_ddl(*, dedup_window: bool, database: str = DATABASE) -> str:
    settings_clause = f"\nSETTINGS non_replicated_deduplication_window = {DEDUP_WINDOW}" if dedup_window else ""
    return f"""CREATE TABLE IF NOT EXISTS {database}.{EVENTS_TABLE}
(
    event_id         UUID,
    trace_id         FixedString(32),
    span_id          FixedString(16),
    event_type       String,
    received_at      DateTime,
    inserted_at      DateTime DEFAULT now(),
    kafka_topic      String,
    kafka_partition  UInt32,
    kafka_offset     UInt64,
    insert_trace_id  FixedString(32),
    insert_span_id   FixedString(16),
    payload          String
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(received_at)
ORDER BY event_id{settings_clause}"""


CANARY_TABLE = "pipeline_canary"
QUALIFIED_CANARY_TABLE = f"{DATABASE}.{CANARY_TABLE}"


def canary_table_ddl(*, database: str = DATABASE) -> str:
    """One row per canary run: did a synthetic event posted at ingest arrive, and how fast."""
    return f"""CREATE TABLE IF NOT EXISTS {database}.{CANARY_TABLE}
(
    event_id    UUID,
    trace_id    FixedString(32),
    sent_at     DateTime,
    seconds     Float64,
    success     UInt8,
    error       String
)
ENGINE = MergeTree()
PARTITION BY toYYYYMM(sent_at)
ORDER BY sent_at"""


_migrated: set[int] = set()


def migrate(client: Client) -> None:
    """Create the database and tables if missing. Idempotent; safe from several processes at once."""
    client.execute(f"CREATE DATABASE IF NOT EXISTS {DATABASE}")
    client.execute(events_table_ddl(dedup_window=supports_dedup_token(server_version(client))))
    client.execute(canary_table_ddl())
    _migrated.add(id(client))


def ensure_schema(client: Client) -> None:
    """Migrate once per client. Processes call this before their first write rather than only at
    start, so a process that started while ClickHouse was away still creates the schema."""
    if id(client) not in _migrated:
        migrate(client)
