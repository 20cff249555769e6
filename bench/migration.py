"""`python -m bench.migration [--rows N]`: time the migration of a v1 table of N rows (default one
million) to schema v2, in a database of its own (`sentinel_bench_migration`).

Makes the v1 table with the rows `bench.analytics` generates (30 days, 50 servers), runs the
migrations as a process starting on an old install would, and prints one JSON document: the
seconds taken, the rows before and after as the migration recorded them (it refuses to finish
when the count or the set of event ids differs), and the same counts read again here.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

from bench.analytics import generate_v1, log
from workers.clickhouse.client import new_client
from workers.clickhouse.migrations import migrate, migration_notes
from workers.clickhouse.schema import EVENTS_TABLE, V1_EVENTS_TABLE, v1_events_table_ddl

DATABASE = "sentinel_bench_migration"


def run(rows: int) -> dict[str, object]:
    client = new_client(send_receive_timeout=3600)
    client.execute(f"DROP DATABASE IF EXISTS {DATABASE}")
    client.execute(f"CREATE DATABASE {DATABASE}")
    client.execute(v1_events_table_ddl(database=DATABASE))
    generate_v1(client, rows, 30, 50, int(time.time()) // 3600 * 3600, table=f"{DATABASE}.{EVENTS_TABLE}")
    before = int(client.execute(f"SELECT count() FROM {DATABASE}.{EVENTS_TABLE} FINAL")[0][0])
    log(f"v1 table of {before} rows; migrating")
    started = time.monotonic()
    applied = migrate(client, DATABASE)
    seconds = time.monotonic() - started
    after = int(client.execute(f"SELECT count() FROM {DATABASE}.{EVENTS_TABLE} FINAL")[0][0])
    v1_left = int(client.execute(f"SELECT count() FROM {DATABASE}.{V1_EVENTS_TABLE} FINAL")[0][0])
    missing = int(
        client.execute(
            f"SELECT count() FROM {DATABASE}.{V1_EVENTS_TABLE}"
            f" WHERE event_id NOT IN (SELECT event_id FROM {DATABASE}.{EVENTS_TABLE})"
        )[0][0]
    )
    return {
        "rows_generated": rows,
        "migrations_applied": applied,
        "migrate_seconds": round(seconds, 1),
        "recorded": migration_notes(client, 2, DATABASE),
        "v1_rows_before": before,
        "v2_rows_after": after,
        "v1_table_kept_rows": v1_left,
        "v1_ids_missing_from_v2": missing,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.migration", description=__doc__)
    parser.add_argument("--rows", type=int, default=1_000_000)
    args = parser.parse_args(argv)
    print(json.dumps(run(args.rows), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
