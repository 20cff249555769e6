"""Which rollup buckets a window reads: whole hours from the hourly rollup, the ends from the minutely."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from workers.clickhouse.audit import Window, rollup_source


def _bounds(sql: str) -> list[str]:
    return re.findall(r"(hour|minute) (>=|<=|<) toDateTime\((\d+)\)", sql)


def test_a_day_reads_whole_hours_hourly_and_the_ends_minutely() -> None:
    since, until = datetime(2026, 12, 7, 3, 17, 30), datetime(2026, 12, 8, 3, 17, 30)
    sql = rollup_source(Window(since, until))
    h0 = int(datetime(2026, 12, 7, 4, 0, tzinfo=UTC).timestamp())
    assert "mcp_calls_hourly" in sql and "mcp_calls_minutely" in sql
    bounds = _bounds(sql)
    assert bounds[0] == ("hour", ">=", str(h0))
    assert bounds[1] == ("hour", "<", str(h0 + 23 * 3600))
    assert ("minute", ">=", str(h0 - 43 * 60)) in bounds  # 03:17, the minute the window starts in
    assert ("minute", "<=", str(h0 + 23 * 3600 + 17 * 60 + 30)) in bounds


def test_a_window_without_a_whole_hour_reads_minutes_only() -> None:
    sql = rollup_source(Window(datetime(2026, 12, 7, 3, 10), datetime(2026, 12, 7, 3, 50)), server="s")
    assert "mcp_calls_hourly" not in sql
    assert "server = %(server)s" in sql
