"""The typed columns come from the payload and the Kafka timestamp only, the same for every copy."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson

from workers.clickhouse.columns import AUDIT_COLUMN_NAMES, audit_column_lists, audit_columns

RECEIVED_MS = 1_764_000_000_000


def test_fields_of_a_proxy_event() -> None:
    event = {
        "type": "tool_call",
        "timestamp": "2026-11-25T12:00:01.250+01:00",
        "session_id": "s-1",
        "server": "fs",
        "method": "tools/call",
        "tool": "read",
        "status": "tool_error",
        "duration_ms": 7,
        "principal": "alice",
        "attributes": {"client_name": "claude-code", "client_version": "2.0", "server": "not this one"},
    }
    columns = audit_columns(orjson.dumps(event), RECEIVED_MS)
    at = datetime(2026, 11, 25, 11, 0, 1, tzinfo=UTC)  # 12:00:01 at +01:00
    assert columns.event_time_ms == int(at.timestamp()) * 1000 + 250
    assert columns.event_time == int(at.timestamp())
    assert (columns.session_id, columns.server, columns.method, columns.tool, columns.status) == (
        "s-1",
        "fs",
        "tools/call",
        "read",
        "tool_error",
    )
    assert columns.duration_ms == 7.0
    assert (columns.principal, columns.client_name, columns.client_version) == ("alice", "claude-code", "2.0")


def test_top_level_client_fields_win_over_attributes() -> None:
    event = {"type": "x", "client_name": "top", "attributes": {"client_name": "nested", "client_version": "1"}}
    columns = audit_columns(orjson.dumps(event), RECEIVED_MS)
    assert (columns.client_name, columns.client_version) == ("top", "1")


def test_an_event_without_timestamp_takes_the_kafka_timestamp_and_empty_fields() -> None:
    columns = audit_columns(b'{"type":"custom","duration_ms":"slow","server":3}', RECEIVED_MS)
    assert columns.event_time_ms == RECEIVED_MS
    assert columns.event_time == RECEIVED_MS // 1000
    assert columns.server == ""
    assert columns.duration_ms == 0.0
    assert len(columns) == len(AUDIT_COLUMN_NAMES)


def test_a_timestamp_outside_clickhouses_datetime_falls_back_to_the_kafka_timestamp() -> None:
    for stamp in ("1969-12-31T23:59:59Z", "2200-01-01T00:00:00Z"):
        columns = audit_columns(orjson.dumps({"type": "x", "timestamp": stamp}), RECEIVED_MS)
        assert columns.event_time_ms == RECEIVED_MS, stamp


def test_every_copy_gets_the_same_columns() -> None:
    payload = orjson.dumps({"type": "tool_call", "timestamp": "2026-11-25T12:00:01Z", "tool": "t"})
    assert audit_columns(payload, RECEIVED_MS) == audit_columns(payload.decode(), RECEIVED_MS)


def test_the_columns_of_many_events_are_those_of_each() -> None:
    payloads = [
        orjson.dumps(event)
        for event in (
            {"type": "tool_call", "timestamp": "2026-11-25T12:00:01.250Z", "server": "fs", "duration_ms": 3.5},
            {"type": "t", "timestamp": "2026-11-25t12:00:01z", "client_name": "", "attributes": {"client_name": "a"}},
            {"type": "t", "timestamp": "not a time", "client_version": "2", "attributes": {"client_version": "3"}},
            {"type": "t", "timestamp": "1900-01-01T00:00:00Z", "server": 5, "duration_ms": True, "attributes": []},
            {"type": "t", "principal": "p", "attributes": {"client_name": 1, "client_version": "v"}},
        )
    ] + [b"[]"]
    received = [RECEIVED_MS + i for i in range(len(payloads))]
    each = [audit_columns(payload, ms) for payload, ms in zip(payloads, received, strict=True)]
    assert audit_column_lists(payloads, received) == [list(column) for column in zip(*each, strict=True)]
    assert len(AUDIT_COLUMN_NAMES) == len(each[0])
