"""A lock in ClickHouse itself, so that of several processes starting at once one migrates and the
others wait.

ClickHouse has no locks, but it creates a table name once: of concurrent `CREATE TABLE` without
IF NOT EXISTS exactly one succeeds. The holder then inserts a heartbeat row every few seconds and
drops the table when done. A waiter that sees no new heartbeat for MIGRATION_LOCK_STALE_S takes
the lock over (the holder died mid-migration): it renames the table away, which only one waiter
can do, and competes for the name again. Every migration is idempotent, so even a holder that was
only slow, not dead, and finishes beside its successor leaves the schema right.
"""

from __future__ import annotations

import contextlib
import threading
import time
import uuid
from collections.abc import Callable, Iterator

from clickhouse_driver import Client
from clickhouse_driver import errors as ch_errors

from sentinel import settings
from workers.clickhouse.schema import MIGRATION_LOCK_TABLE, migration_lock_ddl

TABLE_ALREADY_EXISTS = 57
UNKNOWN_TABLE = 60
HEARTBEAT_S = 2.0
POLL_S = 0.5


class MigrationLockTimeout(RuntimeError):
    """The lock was held, with a live heartbeat, for longer than the caller would wait."""


def _heartbeats(client: Client, table: str) -> int | None:
    """How many heartbeats the holder has written; None when nobody holds the lock."""
    try:
        return int(client.execute(f"SELECT count() FROM {table}")[0][0])
    except ch_errors.ServerException as exc:
        if exc.code == UNKNOWN_TABLE:
            return None
        raise


def _try_create(client: Client, database: str) -> bool:
    try:
        client.execute(migration_lock_ddl(database=database))
    except ch_errors.ServerException as exc:
        if exc.code == TABLE_ALREADY_EXISTS:
            return False
        raise
    return True


@contextlib.contextmanager
def migration_lock(
    client: Client,
    new_client: Callable[[], Client],
    *,
    database: str,
    stale_s: float = settings.MIGRATION_LOCK_STALE_S,
    timeout_s: float = 3600.0,
) -> Iterator[None]:
    """Hold the migration lock of `database` for the block. Blocks while another process holds it;
    raises MigrationLockTimeout after `timeout_s`. `new_client` makes the heartbeat thread's own
    connection (a clickhouse-driver client is not thread-safe)."""
    table = f"{database}.{MIGRATION_LOCK_TABLE}"
    deadline = time.monotonic() + timeout_s
    seen: int | None = None
    seen_since = time.monotonic()
    while not _try_create(client, database):
        beats = _heartbeats(client, table)
        now = time.monotonic()
        if beats != seen:
            seen, seen_since = beats, now
        elif beats is not None and now - seen_since > stale_s:
            # Only one waiter's RENAME finds the table; the others' fail and compete again.
            with contextlib.suppress(ch_errors.ServerException):
                client.execute(f"RENAME TABLE {table} TO {table}_stale_{uuid.uuid4().hex[:12]}")
            seen = None
            continue
        if now > deadline:
            raise MigrationLockTimeout(f"{table} held for more than {timeout_s:.0f}s")
        time.sleep(POLL_S)
    holder = uuid.uuid4().hex
    stop = threading.Event()
    beat_client = new_client()

    def beat() -> None:
        n = 0
        while True:
            n += 1
            with contextlib.suppress(Exception):  # a missed beat only makes a waiter wait longer
                beat_client.execute(f"INSERT INTO {table} (holder, beat) VALUES", [(holder, n)])
            if stop.wait(HEARTBEAT_S):
                return

    beater = threading.Thread(target=beat, name="migration-lock-heartbeat", daemon=True)
    beater.start()
    try:
        _drop_stale(client, database)
        yield
    finally:
        stop.set()
        beater.join()
        beat_client.disconnect()
        # Only our own lock: one taken over from us (we were slow, not dead) is the successor's.
        if _holders(client, table) & {holder}:
            client.execute(f"DROP TABLE IF EXISTS {table}")


def _holders(client: Client, table: str) -> set[str]:
    try:
        return {row[0] for row in client.execute(f"SELECT DISTINCT holder FROM {table}")}
    except ch_errors.ServerException as exc:
        if exc.code == UNKNOWN_TABLE:
            return set()
        raise


def _drop_stale(client: Client, database: str) -> None:
    """Drop the locks renamed away from dead holders."""
    rows = client.execute(
        "SELECT name FROM system.tables WHERE database = %(d)s AND startsWith(name, %(p)s)",
        {"d": database, "p": f"{MIGRATION_LOCK_TABLE}_stale_"},
    )
    for (name,) in rows:
        client.execute(f"DROP TABLE IF EXISTS {database}.{name}")
