"""The typed audit columns of one event, taken from its payload and its Kafka timestamp only.

These feed the sorting and partition keys, so they must come out the same for every copy of an
event: nothing here depends on when or how often it was delivered, except `received_at`, the
timestamp of the Kafka message, which is the same for every delivery of that message.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

import orjson

from sentinel.events import (
    ATTRIBUTES_FIELD,
    CLIENT_NAME_FIELD,
    CLIENT_VERSION_FIELD,
    PRINCIPAL_FIELD,
    TIMESTAMP_FIELD,
    parse_timestamp,
)

# ClickHouse's DateTime is an unsigned 32-bit count of seconds: a timestamp outside it (a client's
# broken clock) would not fit, so the event falls back to when ingest produced it.
_MAX_DATETIME_MS = (2**32 - 1) * 1000


class AuditColumns(NamedTuple):
    event_time: int  # epoch seconds
    event_time_ms: int
    session_id: str
    server: str
    method: str
    tool: str
    status: str
    duration_ms: float
    principal: str
    client_name: str
    client_version: str


AUDIT_COLUMN_NAMES: tuple[str, ...] = tuple(AuditColumns.__annotations__)


def _text(event: dict[str, Any], name: str) -> str:
    value = event.get(name)
    return value if type(value) is str else ""


def event_time_ms(event: dict[str, Any], received_at_ms: int) -> int:
    """The event's `timestamp` in epoch milliseconds, else `received_at_ms`."""
    raw = event.get(TIMESTAMP_FIELD)
    if type(raw) is str:
        try:
            ms = int(parse_timestamp(raw).timestamp() * 1000)
        except ValueError:
            return received_at_ms
        if 0 <= ms <= _MAX_DATETIME_MS:
            return ms
    return received_at_ms


def audit_columns(payload: str | bytes, received_at_ms: int) -> AuditColumns:
    """The typed columns of the event JSON `payload` (validated by the bridge, so a JSON object)."""
    event = orjson.loads(payload)
    if type(event) is not dict:
        event = {}
    attributes = event.get(ATTRIBUTES_FIELD)
    if type(attributes) is not dict:
        attributes = {}
    duration = event.get("duration_ms")
    ms = event_time_ms(event, received_at_ms)
    return AuditColumns(
        event_time=ms // 1000,
        event_time_ms=ms,
        session_id=_text(event, "session_id"),
        server=_text(event, "server"),
        method=_text(event, "method"),
        tool=_text(event, "tool"),
        status=_text(event, "status"),
        duration_ms=float(duration) if type(duration) in (int, float) else 0.0,
        principal=_text(event, PRINCIPAL_FIELD),
        client_name=_text(event, CLIENT_NAME_FIELD) or _text(attributes, CLIENT_NAME_FIELD),
        client_version=_text(event, CLIENT_VERSION_FIELD) or _text(attributes, CLIENT_VERSION_FIELD),
    )


def audit_column_lists(payloads: Sequence[str | bytes], received_at_ms: Sequence[int]) -> list[list[Any]]:
    """The typed columns of many events at once, as one list per column in AUDIT_COLUMN_NAMES
    order: what the writer and the migration insert. The same values as `audit_columns` of each
    (a test holds them to it), in one loop that appends to the columns directly, without a tuple per
    event and the transposition after it (the writer's hot path: ~3 µs per event instead of ~5)."""
    cols: list[list[Any]] = [[] for _ in AUDIT_COLUMN_NAMES]
    appends = [col.append for col in cols]
    event_time, event_time_ms_, session_id, server, method, tool, status, duration_ms, principal, c_name, c_version = (
        appends
    )
    loads, fromisoformat, max_ms = orjson.loads, datetime.fromisoformat, _MAX_DATETIME_MS
    for payload, received_ms in zip(payloads, received_at_ms, strict=True):
        event = loads(payload)
        if type(event) is not dict:
            event = {}
        get = event.get
        ms = received_ms
        raw = get(TIMESTAMP_FIELD)
        if type(raw) is str:
            try:  # parse_timestamp, inlined
                parsed = int(fromisoformat(raw.replace("z", "Z").replace("t", "T")).timestamp() * 1000)
            except ValueError:
                parsed = -1
            if 0 <= parsed <= max_ms:
                ms = parsed
        event_time(ms // 1000)
        event_time_ms_(ms)
        for append, name in (
            (session_id, "session_id"),
            (server, "server"),
            (method, "method"),
            (tool, "tool"),
            (status, "status"),
        ):
            value = get(name)
            append(value if type(value) is str else "")
        duration = get("duration_ms")
        duration_ms(float(duration) if type(duration) in (int, float) else 0.0)
        value = get(PRINCIPAL_FIELD)
        principal(value if type(value) is str else "")
        name_value, version_value = get(CLIENT_NAME_FIELD), get(CLIENT_VERSION_FIELD)
        if type(name_value) is not str or not name_value or type(version_value) is not str or not version_value:
            attributes = get(ATTRIBUTES_FIELD)
            if type(attributes) is dict:
                if type(name_value) is not str or not name_value:
                    name_value = attributes.get(CLIENT_NAME_FIELD)
                if type(version_value) is not str or not version_value:
                    version_value = attributes.get(CLIENT_VERSION_FIELD)
        c_name(name_value if type(name_value) is str else "")
        c_version(version_value if type(version_value) is str else "")
    return cols
