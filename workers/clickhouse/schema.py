"""The ClickHouse tables of `sentinel`: their names and DDL (applied by workers/clickhouse/migrations.py).

The DDL must hold on Debian's ClickHouse 18.16 (no DateTime64, skip indexes, projections or TTL;
LowCardinality only behind `allow_experimental_low_cardinality_type`, so not used) and on current
ClickHouse (checked with chdb in tests/unit/workers/clickhouse/test_schema.py).

`mcp_events` (schema v2) holds one row per event: typed audit columns beside the payload. It is a
ReplacingMergeTree ordered by `(server, tool, event_time, event_id)`, so the questions operators ask
(a server's calls in a time range, one tool's calls, who called it) read a few granules, and a
redelivered event is one row once merged, read exactly once with FINAL. Every column of the sorting
and partition keys comes from the Kafka message (the payload, or its timestamp when the event has
none), so all copies of an event share one key.

18.16 has no skip indexes, so the lookups by event_id, trace_id and session_id go through one
narrow table ordered by (kind, key), filled by a materialized view with three rows per event, each
holding the main table's key of the event (`queries.py` reads the row through that key).
`mcp_calls_minutely` and `mcp_calls_hourly` are the rollups.
"""

from __future__ import annotations

from sentinel import settings
from sentinel.events import ERROR_STATUSES

DATABASE = settings.CLICKHOUSE_DATABASE
EVENTS_TABLE = "mcp_events"
QUALIFIED_EVENTS_TABLE = f"{DATABASE}.{EVENTS_TABLE}"
# Where the migration to schema v2 keeps a v1 table it copied (an operator drops it when satisfied).
V1_EVENTS_TABLE = "mcp_events_v1"
DEDUP_WINDOW = 10_000

# Insert order for the writer; one source for both.
EVENT_COLUMNS = (
    "event_id",
    "trace_id",
    "span_id",
    "event_type",
    "event_time",
    "event_time_ms",
    "received_at",
    "session_id",
    "server",
    "method",
    "tool",
    "status",
    "duration_ms",
    "principal",
    "client_name",
    "client_version",
    "kafka_topic",
    "kafka_partition",
    "kafka_offset",
    "insert_trace_id",
    "insert_span_id",
    "payload",
)
# The v1 table's columns (event id, trace ids, offsets, payload), which the migration reads.
V1_EVENT_COLUMNS = (
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
# The main table's sorting key: the lookup tables carry it to reach an event's row.
EVENT_KEY = ("server", "tool", "event_time", "event_id")

# An SQL list of the statuses counted as errors, for the rollup view and the audit queries.
ERROR_STATUS_SQL = "(" + ", ".join(f"'{s}'" for s in ERROR_STATUSES) + ")"


def _ttl(column: str, *, ttl: bool) -> str:
    return f"\nTTL {column} + INTERVAL {settings.RETENTION_DAYS} DAY" if ttl and settings.RETENTION_DAYS > 0 else ""


def _settings(*, dedup_window: bool) -> str:
    return f"\nSETTINGS non_replicated_deduplication_window = {DEDUP_WINDOW}" if dedup_window else ""


def events_table_ddl(*, dedup_window: bool, ttl: bool, database: str = DATABASE, table: str = EVENTS_TABLE) -> str:
    """Schema v2. `event_time` is the event's `timestamp` (to the second; `event_time_ms` in full),
    else when ingest produced it. `duration_ms` is 0 and strings are '' where the event has none."""
    return f"""CREATE TABLE IF NOT EXISTS {database}.{table}
(
    event_id         UUID,
    trace_id         FixedString(32),
    span_id          FixedString(16),
    event_type       String,
    event_time       DateTime,
    event_time_ms    UInt64,
    received_at      DateTime,
    inserted_at      DateTime DEFAULT now(),
    session_id       String,
    server           String,
    method           String,
    tool             String,
    status           String,
    duration_ms      Float64,
    principal        String,
    client_name      String,
    client_version   String,
    kafka_topic      String,
    kafka_partition  UInt32,
    kafka_offset     UInt64,
    insert_trace_id  FixedString(32),
    insert_span_id   FixedString(16),
    payload          String
)
ENGINE = ReplacingMergeTree(inserted_at)
PARTITION BY toYYYYMM(event_time)
ORDER BY ({", ".join(EVENT_KEY)}){_ttl("event_time", ttl=ttl)}{_settings(dedup_window=dedup_window)}"""


def v1_events_table_ddl(*, database: str = DATABASE, table: str = EVENTS_TABLE) -> str:
    """Schema v1, as older installs have it: what the migration to v2 copies from, and the benchmark's
    baseline."""
    return f"""CREATE TABLE IF NOT EXISTS {database}.{table}
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
ORDER BY event_id"""


# -- the lookup: one narrow table for every key the main table is not ordered by ------------------


class Lookup:
    """One table for the lookups by event id, trace id and session: a row per event and kind of
    key, `(kind, key)` first in its order, then the main table's key of the event (its time
    included, so a session's rows come out in order). One materialized view fills it with three
    rows per event (ARRAY JOIN), so an insert writes one part here instead of three."""

    table = "mcp_events_lookup"
    view = "mcp_events_lookup_mv"
    # kind -> how the view derives the key from an events row. `key` is a String for all three:
    # the event id in its canonical text form (`toString`), the trace id's 32 hex digits, the session.
    EVENT_ID = 1
    TRACE_ID = 2
    SESSION = 3
    KEYS = ((EVENT_ID, "toString(event_id)"), (TRACE_ID, "toString(trace_id)"), (SESSION, "session_id"))
    columns = ("kind", "key", "event_time", "server", "tool", "event_id")

    def table_ddl(self, *, ttl: bool, database: str = DATABASE) -> str:
        return f"""CREATE TABLE IF NOT EXISTS {database}.{self.table}
(
    kind        UInt8,
    key         String,
    event_time  DateTime,
    server      String,
    tool        String,
    event_id    UUID
)
ENGINE = ReplacingMergeTree()
PARTITION BY toYYYYMM(event_time)
ORDER BY (kind, key, event_time, event_id){_ttl("event_time", ttl=ttl)}"""

    def view_ddl(self, *, database: str = DATABASE) -> str:
        pairs = ", ".join(f"({kind}, {expr})" for kind, expr in self.KEYS)
        return (
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.{self.view} TO {database}.{self.table}"
            " AS SELECT tupleElement(k, 1) AS kind, tupleElement(k, 2) AS key, event_time, server, tool, event_id"
            f" FROM {database}.{EVENTS_TABLE} ARRAY JOIN [{pairs}] AS k"
        )

    def keys_sql(self, kind: int, key: str, *, database: str = DATABASE) -> str:
        """A subquery of the main table's keys of the events whose `kind` key is the SQL `key`."""
        return f"SELECT {', '.join(EVENT_KEY)} FROM {database}.{self.table} WHERE kind = {int(kind)} AND key = {key}"


LOOKUP = Lookup()


# -- the rollups: per minute, and per hour for questions over days ---------------------------------

# The duration quantiles the rollups keep; a -Merge must name the same levels.
QUANTILE_LEVELS = "0.5, 0.95, 0.99"
# What the rollups count: a 64-bit hash of the event id (its 16 bytes), so a state's set holds 8
# bytes per event instead of 16 and merges faster; exact but for 64-bit collisions (README).
EVENT_HASH_SQL = "cityHash64(reinterpretAsString(event_id))"


class Rollup:
    """An AggregatingMergeTree of calls, errors, duration quantiles and the slowest call's trace per
    server, tool, status and time bucket (`bucket`, the start of its minute or hour), filled by a
    materialized view from the events table. (A view on the per-minute table cannot feed the
    hourly one on 18.16: rows a view writes into its target do not reach the target's own views.)

    Calls and errors are sets of 64-bit hashes of the event ids (uniqExact), so an event inserted
    twice (a re-sent chunk reaches the view again on 18.16) is counted once: the counts equal the
    rows read with FINAL. The duration quantiles are t-digest states, approximate, and weigh a
    twice-inserted event twice. `slowest` is the trace id of the slowest call: a link from a
    figure to a trace."""

    def __init__(self, table: str, bucket: str, start_of: str, seconds: int) -> None:
        self.table = table
        self.view = f"{table}_mv"
        self.bucket = bucket
        self.start_of = start_of
        self.seconds = seconds

    def table_ddl(self, *, ttl: bool, database: str = DATABASE) -> str:
        return f"""CREATE TABLE IF NOT EXISTS {database}.{self.table}
(
    {self.bucket:<10} DateTime,
    server     String,
    tool       String,
    status     String,
    calls      AggregateFunction(uniqExact, UInt64),
    errors     AggregateFunction(uniqExactIf, UInt64, UInt8),
    duration   AggregateFunction(quantilesTDigestIf({QUANTILE_LEVELS}), Float64, UInt8),
    slowest    AggregateFunction(argMax, FixedString(32), Float64)
)
ENGINE = AggregatingMergeTree()
PARTITION BY toYYYYMM({self.bucket})
ORDER BY (server, tool, status, {self.bucket}){_ttl(self.bucket, ttl=ttl)}"""

    def select(self, *, database: str = DATABASE) -> str:
        """What the view adds per insert, and what a backfill adds from the rows already stored.
        Only events with an outcome (a status) have a duration."""
        return f"""SELECT
    {self.start_of}(event_time) AS {self.bucket},
    server,
    tool,
    status,
    uniqExactState({EVENT_HASH_SQL}) AS calls,
    uniqExactIfState({EVENT_HASH_SQL}, status IN {ERROR_STATUS_SQL}) AS errors,
    quantilesTDigestIfState({QUANTILE_LEVELS})(duration_ms, status != '') AS duration,
    argMaxState(trace_id, duration_ms) AS slowest
FROM {database}.{EVENTS_TABLE}
GROUP BY {self.bucket}, server, tool, status"""

    def view_ddl(self, *, database: str = DATABASE) -> str:
        return (
            f"CREATE MATERIALIZED VIEW IF NOT EXISTS {database}.{self.view} TO {database}.{self.table}"
            f" AS {self.select(database=database)}"
        )


MINUTELY = Rollup("mcp_calls_minutely", "minute", "toStartOfMinute", 60)
HOURLY = Rollup("mcp_calls_hourly", "hour", "toStartOfHour", 3600)
ROLLUPS = (MINUTELY, HOURLY)
ROLLUP_TABLE = MINUTELY.table
QUALIFIED_ROLLUP_TABLE = f"{DATABASE}.{ROLLUP_TABLE}"


# -- the canary's and the migrations' own tables ------------------------------------------------

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


MIGRATIONS_TABLE = "schema_migrations"
MIGRATION_LOCK_TABLE = "schema_migrations_lock"


def migrations_table_ddl(*, database: str = DATABASE) -> str:
    """One row per applied migration; a migration recorded twice (a lock taken over from a holder
    that was not dead after all) is one row once merged."""
    return f"""CREATE TABLE IF NOT EXISTS {database}.{MIGRATIONS_TABLE}
(
    version     UInt32,
    name        String,
    applied_at  DateTime DEFAULT now(),
    seconds     Float64,
    notes       String
)
ENGINE = ReplacingMergeTree(applied_at)
ORDER BY version"""


def migration_lock_ddl(*, database: str = DATABASE) -> str:
    """Created without IF NOT EXISTS: the one CREATE that succeeds holds the lock. Its rows are the
    holder's heartbeats."""
    return f"CREATE TABLE {database}.{MIGRATION_LOCK_TABLE} (holder String, beat UInt64) ENGINE = Memory"


# Tables with monthly partitions that retention drops from.
RETAINED_TABLES = (EVENTS_TABLE, *(rollup.table for rollup in ROLLUPS), LOOKUP.table)
