"""bench.analytics and bench.migration on a few thousand rows of the real ClickHouse: both schemas
answer every question alike, the figures are all there, and a migrated table keeps its rows.
Behaviour only; the timings of a small run say nothing."""

from __future__ import annotations

import pytest

from bench import analytics, migration
from workers.clickhouse.client import new_client


@pytest.fixture(autouse=True, scope="module")
def clickhouse() -> None:
    try:
        new_client().execute("SELECT 1")
    except Exception as exc:  # noqa: BLE001 - any failure to reach it means the same to the reader
        pytest.fail(
            f"ClickHouse is not reachable ({exc}). Start the services with `.venv/bin/sentinel stack up`.",
            pytrace=False,
        )


def test_both_schemas_give_the_same_answers() -> None:
    result = analytics.run(rows=20_000, days=3, servers=5, repeat=1)
    assert len(result["questions"]) == 8
    for question in result["questions"]:
        assert question["same_answer"], question
        assert question["v1_ms"] > 0 and question["v2_ms"] > 0
    assert result["targets"]["same_answers"] is True
    disk = result["disk"]
    assert disk["v1_bytes_per_row"] > 0
    assert disk["v2_with_lookups_and_rollup_bytes_per_row"] > disk["v2_bytes_per_row"] > 0


def test_targets_are_judged_per_scope() -> None:
    slow_hour = {"scope": "one server, one hour", "v1_ms": 900.0, "v2_ms": 150.0, "v1_over_v2": 6.0}
    fast_day = {"scope": "all servers, one day", "v1_ms": 9000.0, "v2_ms": 300.0, "v1_over_v2": 30.0}
    lookup = {"scope": "one event", "v1_ms": 1.0, "v2_ms": 2.0, "v1_over_v2": 0.5}
    judged = analytics.targets([{**r, "same_answer": True} for r in (slow_hour, fast_day, lookup)])
    assert judged["one_server_one_hour_v2_at_most_100_ms"] is False
    assert judged["all_servers_one_day_v2_at_most_1_s"] is True
    assert judged["v2_at_least_10x_v1_each_question"] is False  # the hour's 6x; the lookup is not a question


def test_a_migrated_table_keeps_every_row() -> None:
    result = migration.run(rows=20_000)
    assert result["migrations_applied"] == [1, 2, 3]
    assert result["v1_rows_before"] == result["v2_rows_after"] == 20_000
    assert result["recorded"]["rows_before"] == result["recorded"]["rows_after"] == 20_000
    assert result["v1_ids_missing_from_v2"] == 0
