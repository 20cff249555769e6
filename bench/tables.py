"""The benchmark's own ClickHouse database, emptied before every measured run.

ClickHouse merges inserted parts in the background, for seconds to minutes after the inserts.
When one run followed another on the same table, the second paid for the first one's merges: the
order of the runs, not their configuration, decided part of the figures (the Celery hop's direct
baseline took 1.2-3.8 CPU-s of ClickHouse for the same 200,000 rows, depending on what ran before).
So every measured run starts on empty tables, with no merge left from an earlier one, and pays
only for its own. Emptying tables is safe only in a database nothing else uses: the harness points
ingest, bridge and worker at `sentinel_bench` for the run and puts them back afterwards.
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
