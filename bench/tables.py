"""The benchmark's own ClickHouse database, emptied before every measured run.

ClickHouse merges inserted parts in the background, for seconds to minutes after the inserts.
When one run followed another on the same table, the second paid for the first one's merges: the
order of the runs, not their configuration, decided part of the figures (the Celery hop's direct
baseline took 1.2-3.8 CPU-s of ClickHouse for the same 200,000 rows, depending on what ran before).
So every measured run starts on empty tables, with no merge left from an earlier one, and pays
only for its own. Emptying tables is safe only in a database nothing else uses: the harness points
ingest, bridge and worker at `sentinel_bench` for the run and puts them back afterwards.

Tables are emptied, never dropped and re-created between runs. A ClickHouse part is a directory
of files, and each insert writes one; in a table created moments before, ext4 placed those files in
a block group full of inodes that the previous table's parts had just freed, and its allocator
skipped them one by one (`find_inode_bit`, `recently_deleted` in a perf profile of ClickHouse).
Inserting the same 200,000 rows cost ClickHouse 3.3 s of system CPU in a re-created table and 0.4 s
in an emptied one: the direct baseline, whose table was re-created every run, was slowed by up to
that much, and by more the more files earlier runs had deleted.
"""

from __future__ import annotations

import os

from clickhouse_driver import Client

DATABASE_ENV = "SENTINEL_CLICKHOUSE_DATABASE"  # read by sentinel.settings at import
BENCH_DATABASE = "sentinel_bench"


def use_bench_database() -> dict[str, str | None]:
    """Point this process, and every process it starts, at the bench database.

    Call before anything imports `sentinel.settings`. Returns the environment found, to restore.
    """
    found = {DATABASE_ENV: os.environ.get(DATABASE_ENV)}
    os.environ[DATABASE_ENV] = BENCH_DATABASE
    return found


def empty(client: Client, *tables: str) -> None:
    """Remove every row (and so every pending merge) of each qualified `tables` that exists."""
    for table in tables:
        database, _, name = table.partition(".")
        if database != BENCH_DATABASE:
            raise ValueError(f"refusing to empty {table}: only tables of {BENCH_DATABASE} are the bench's own")
        exists = client.execute(
            "SELECT count() FROM system.tables WHERE database = %(db)s AND name = %(name)s",
            {"db": database, "name": name},
        )[0][0]
        if exists:
            client.execute(f"TRUNCATE TABLE {table}")


_MERGE_COUNTERS = ("InsertedRows", "MergedRows", "MergesTimeMilliseconds")


def merge_counters(client: Client) -> dict[str, int]:
    """ClickHouse's cumulative insert and merge counters (`system.events`); diff two to see what
    a run cost the server beyond its own inserts."""
    rows = client.execute("SELECT event, value FROM system.events WHERE event IN %(names)s", {"names": _MERGE_COUNTERS})
    found = dict(rows)
    return {name: int(found.get(name, 0)) for name in _MERGE_COUNTERS}


def counters_since(client: Client, before: dict[str, int]) -> dict[str, int]:
    after = merge_counters(client)
    return {name: after[name] - before.get(name, 0) for name in after}


def ensure_like(client: Client, table: str, like: str, ddl: str) -> None:
    """Create `table` with `ddl` unless it exists with the same columns as `like`; a table left by
    an older schema is dropped first. Kept otherwise: see the module's note on re-created tables."""
    columns = _columns(client, table)
    if not columns or columns != _columns(client, like):
        client.execute(f"DROP TABLE IF EXISTS {table}")
        client.execute(ddl)


def _columns(client: Client, table: str) -> list[tuple[str, str]]:
    database, _, name = table.partition(".")
    return client.execute(
        "SELECT name, type FROM system.columns WHERE database = %(db)s AND table = %(name)s ORDER BY name",
        {"db": database, "name": name},
    )
