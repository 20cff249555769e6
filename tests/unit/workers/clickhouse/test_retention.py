"""A monthly partition expires once its whole month is older than the retention."""

from __future__ import annotations

from datetime import UTC, datetime

from workers.clickhouse.retention import expired, month_end

NOW = datetime(2026, 12, 8, 3, 0, tzinfo=UTC)


def test_month_end_rolls_over_the_year() -> None:
    assert month_end("202611") == datetime(2026, 12, 1, tzinfo=UTC)
    assert month_end("202612") == datetime(2027, 1, 1, tzinfo=UTC)


def test_only_months_wholly_past_the_retention_expire() -> None:
    partitions = ["202608", "202609", "202610", "202611", "202612"]
    # 30 days before NOW is 2026-11-08: October ended before it, November did not.
    assert expired(partitions, now=NOW, days=30) == ["202608", "202609", "202610"]
    assert expired(partitions, now=NOW, days=90) == ["202608"]


def test_zero_days_keeps_everything_and_odd_partition_ids_are_left_alone() -> None:
    assert expired(["200001"], now=NOW, days=0) == []
    assert expired(["tuple()", "2001"], now=NOW, days=1) == []
