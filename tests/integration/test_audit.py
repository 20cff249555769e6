"""Real ClickHouse: rows written by the worker's writer answer `sentinel audit`'s questions, once
each even when their chunk is inserted twice, and each call row links to its trace."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from sentinel import settings
from sentinel_cli.main import main
from tests.audit_sample import store_audit_sample
from workers.clickhouse import audit
from workers.clickhouse.client import new_client


@pytest.fixture(scope="module")
def stored() -> dict[str, object]:
    return store_audit_sample()


def _window() -> audit.Window:
    until = datetime.now(UTC).replace(tzinfo=None) + timedelta(minutes=1)
    return audit.Window(until - timedelta(hours=1), until)


def test_tools_counts_each_event_once(stored: dict) -> None:
    figures = audit.top_tools(new_client(), _window(), server=stored["server"])
    by_tool = {f.tool: f for f in figures}
    assert sorted(by_tool) == ["tool-0", "tool-1"]
    assert by_tool["tool-1"].calls == 6  # 1, 3, 5, 7, 9, 11
    assert by_tool["tool-1"].errors == 3  # 3, 7, 11
    assert by_tool["tool-0"].errors == 0
    assert by_tool["tool-1"].p99_ms > by_tool["tool-0"].p99_ms  # the 1000 ms call is event 5, tool-1
    assert by_tool["tool-1"].slowest_trace_id == stored["traces"][5]


def test_errors_are_the_failed_calls_with_their_message(stored: dict) -> None:
    rows = audit.errors(new_client(), _window(), server=stored["server"])
    assert [r.event_id for r in rows] == [str(stored["events"][n]["event_id"]) for n in (11, 7, 3)]
    assert [r.error for r in rows] == ["disk full 11", "disk full 7", "disk full 3"]
    assert rows[0].trace_id == stored["traces"][11]


def test_slow_puts_the_slowest_first(stored: dict) -> None:
    rows = audit.slow(new_client(), _window(), server=stored["server"], limit=2)
    assert [r.duration_ms for r in rows] == [1000.0, 21.0]


def test_session_is_a_timeline(stored: dict) -> None:
    rows = audit.session(new_client(), stored["session"])
    assert [r.event_id for r in rows] == [str(stored["events"][n]["event_id"]) for n in range(4)]


def test_calls_of_one_tool(stored: dict) -> None:
    rows = audit.calls(new_client(), _window(), server=stored["server"], tool="tool-0")
    assert len(rows) == 6
    assert {r.principal for r in rows} == {"user-0", "user-1", "user-2"}


def test_the_command_prints_json_with_trace_links(stored: dict, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "calls", "--server", stored["server"], "--tool", "tool-1", "--since", "1h", "--json"]) == 0
    records = json.loads(capsys.readouterr().out)
    assert len(records) == 6
    for record in records:
        assert record["trace_url"] == f"{settings.JAEGER_QUERY_URL}/trace/{record['trace_id']}"
        assert record["time"].endswith("Z")


def test_the_command_prints_a_table(stored: dict, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["audit", "session", stored["session"]]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[:4] == ["time", "server", "tool", "status"]
    assert len(lines) == 5
    assert all(f"/trace/{stored['traces'][n]}" in lines[1 + n] for n in range(4))
    assert main(["audit", "tools", "--server", stored["server"]]) == 0
    table = capsys.readouterr().out.splitlines()
    assert table[0].split()[:7] == ["server", "tool", "calls", "errors", "p50_ms", "p95_ms", "p99_ms"]
    assert len(table) == 3
    assert any(line.endswith(f"/trace/{stored['traces'][5]}") for line in table)
