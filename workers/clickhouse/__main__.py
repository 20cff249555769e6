"""`python -m workers.clickhouse`: create the database and tables if missing, then exit.

The same idempotent `migrate()` the worker runs before its first insert, as a step of its own: the
worker's init container in k8s (k8s/base/worker.yaml), so a schema that cannot be applied (grants,
a bad DDL) stops the rollout before any worker takes a chunk.
"""

from __future__ import annotations

import sys

from sentinel import logs
from workers.clickhouse.client import new_client
from workers.clickhouse.schema import QUALIFIED_EVENTS_TABLE, migrate


def main() -> int:
    logs.setup_logging("sentinel-migrate")
    client = new_client()
    try:
        migrate(client)
    finally:
        client.disconnect()
    print(f"schema applied: {QUALIFIED_EVENTS_TABLE}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
