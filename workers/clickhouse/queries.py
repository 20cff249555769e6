"""Reads an operator (and the tests) make: an event's row, counts read exactly once."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from clickhouse_driver import Client

from workers.clickhouse.schema import QUALIFIED_EVENTS_TABLE


@dataclass(frozen=True)
class EventRow:
    event_id: str
    trace_id: str
    span_id: str
    event_type: str
    received_at: datetime
    kafka_partition: int
    kafka_offset: int
    insert_trace_id: str
    insert_span_id: str
    payload: str


def find_event(client: Client, event_id: str) -> EventRow | None:
    rows = client.execute(
        f"SELECT toString(event_id), trace_id, span_id, event_type, received_at, kafka_partition, kafka_offset,"
        f" insert_trace_id, insert_span_id, payload FROM {QUALIFIED_EVENTS_TABLE} FINAL"
        " WHERE event_id = toUUID(%(event_id)s) LIMIT 1",
        {"event_id": event_id},
    )
    return EventRow(*rows[0]) if rows else None


def find_events_by_trace(client: Client, trace_id: str) -> list[EventRow]:
    """The rows of the events of one trace (an MCP call's events carry the call's trace)."""
    rows = client.execute(
        f"SELECT toString(event_id), trace_id, span_id, event_type, received_at, kafka_partition, kafka_offset,"
        f" insert_trace_id, insert_span_id, payload FROM {QUALIFIED_EVENTS_TABLE} FINAL"
        " WHERE trace_id = %(trace_id)s ORDER BY received_at",
        {"trace_id": trace_id},
    )
    return [EventRow(*row) for row in rows]


def count_events(client: Client, event_ids: list[str]) -> tuple[int, int]:
    """(distinct ids stored, rows read with FINAL) among `event_ids`; equal when nothing is duplicated."""
    if not event_ids:
        return 0, 0
    rows = client.execute(
        f"SELECT uniqExact(event_id), count() FROM {QUALIFIED_EVENTS_TABLE} FINAL"
        " WHERE event_id IN (SELECT toUUID(arrayJoin(%(ids)s)))",
        {"ids": event_ids},
    )
    return int(rows[0][0]), int(rows[0][1])
