"""The bench empties tables only in its own database, and says what it changed so it can be put back."""

from __future__ import annotations

import os

import pytest

from bench import tables


class RecordingClient:
    def __init__(self, existing: set[str]) -> None:
        self.existing = existing
        self.statements: list[str] = []

    def execute(self, query: str, params: dict[str, str] | None = None) -> list[tuple[int]]:
        self.statements.append(query)
        if params is not None:
            return [(int(f"{params['db']}.{params['name']}" in self.existing),)]
        return []


def test_empty_refuses_a_table_outside_the_bench_database() -> None:
    client = RecordingClient({"sentinel.mcp_events"})
    with pytest.raises(ValueError, match="sentinel_bench"):
        tables.empty(client, "sentinel.mcp_events")  # type: ignore[arg-type]
    assert client.statements == []


def test_empty_truncates_only_tables_that_exist() -> None:
    client = RecordingClient({"sentinel_bench.mcp_events"})
    tables.empty(client, "sentinel_bench.mcp_events", "sentinel_bench.mcp_events_direct")  # type: ignore[arg-type]
    assert [q for q in client.statements if q.startswith("TRUNCATE")] == ["TRUNCATE TABLE sentinel_bench.mcp_events"]


def test_use_bench_database_returns_what_it_replaced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(tables.DATABASE_ENV, "analytics")
    assert tables.use_bench_database() == {tables.DATABASE_ENV: "analytics"}
    assert os.environ[tables.DATABASE_ENV] == tables.BENCH_DATABASE
    monkeypatch.delenv(tables.DATABASE_ENV)
    assert tables.use_bench_database() == {tables.DATABASE_ENV: None}
