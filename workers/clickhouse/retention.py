"""Retention by whole monthly partitions: what beat's retention job drops.

Every table of audit rows is partitioned by month (`toYYYYMM`), and dropping a partition is a
metadata operation, so this works the same on 18.16, which has no TTL, and on current ClickHouse,
where the tables' TTL also removes single rows as they expire. A partition goes once all of its
month is older than the retention, so up to a month more than `SENTINEL_RETENTION_DAYS` is kept.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from clickhouse_driver import Client

from sentinel import settings
from workers.clickhouse.schema import DATABASE, RETAINED_TABLES


def month_end(partition: str) -> datetime:
    """The first instant after the month of partition id `YYYYMM`."""
    year, month = int(partition[:4]), int(partition[4:6])
    return datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)


def expired(partitions: list[str], *, now: datetime, days: int) -> list[str]:
    """The partition ids (`YYYYMM`) whose whole month is more than `days` before `now`; none when
    `days` is 0 (keep forever)."""
    if days <= 0:
        return []
    cutoff = now - timedelta(days=days)
    return sorted(p for p in partitions if len(p) == 6 and p.isdigit() and month_end(p) <= cutoff)


def drop_expired(
    client: Client, database: str = DATABASE, *, days: int = settings.RETENTION_DAYS, now: datetime | None = None
) -> dict[str, list[str]]:
    """Drop the expired partitions of every retained table; returns them by table."""
    now = now or datetime.now(UTC)
    rows = client.execute(
        "SELECT table, partition FROM system.parts WHERE active AND database = %(d)s AND table IN %(t)s"
        " GROUP BY table, partition",
        {"d": database, "t": RETAINED_TABLES},
    )
    by_table: dict[str, list[str]] = {}
    for table, partition in rows:
        by_table.setdefault(table, []).append(str(partition))
    dropped: dict[str, list[str]] = {}
    for table, partitions in sorted(by_table.items()):
        for partition in expired(partitions, now=now, days=days):
            client.execute(f"ALTER TABLE {database}.{table} DROP PARTITION {int(partition)}")
            dropped.setdefault(table, []).append(partition)
    return dropped
