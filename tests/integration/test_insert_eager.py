"""The insert task in eager mode against the real ClickHouse.

Eager mode fires no publish signals (celery/celery#3864), so nothing but the task's own arguments
carries the events' contexts: the links must still be there.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator

import orjson
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from sentinel import semconv, settings
from sentinel.telemetry import span_limits
from workers.acks import AckChannel
from workers.celery_app import app
from workers.chunk import Chunk, ChunkEvent
from workers.clickhouse.client import new_client
from workers.clickhouse.queries import count_events, find_event
from workers.tasks import insert_chunk_task


@pytest.fixture
def eager() -> Iterator[None]:
    app.conf.task_always_eager = True
    app.conf.task_eager_propagates = True
    yield
    app.conf.task_always_eager = False
    app.conf.task_eager_propagates = False


def _chunk(n: int, partition: int = 0) -> Chunk:
    first = random.randrange(10**9)
    events = []
    for i in range(n):
        trace_id, span_id = f"{random.getrandbits(128):032x}", f"{random.getrandbits(64):016x}"
        event_id = str(uuid.uuid4())
        payload = orjson.dumps({"type": "tool_call", "event_id": event_id, "n": i}).decode()
        events.append(
            ChunkEvent(
                first + i, event_id, f"00-{trace_id}-{span_id}-01", "", "tool_call", 1_700_000_000_000 + i, payload
            )
        )
    return Chunk(
        topic=settings.EVENTS_TOPIC,
        partition=partition,
        first_offset=first,
        last_offset=first + n - 1,
        events=tuple(events),
        ack_to=f"sentinel:acks:test-{uuid.uuid4().hex[:8]}",
    )


def _insert_spans(spans: InMemorySpanExporter, name: str = semconv.SPAN_INSERT) -> list:
    return [s for s in spans.get_finished_spans() if s.name == name]


def test_eager_insert_writes_rows_and_links_every_event(eager: None, spans: InMemorySpanExporter) -> None:
    chunk = _chunk(200)  # more than the SDK's default of 128 links
    result = insert_chunk_task.apply_async(args=[chunk.to_wire()]).get()
    assert result == {"token": chunk.token, "rows": 200, "outcome": "inserted"}

    (span,) = _insert_spans(spans)
    assert len(span.links) == 200
    linked = {(f"{link.context.trace_id:032x}", f"{link.context.span_id:016x}") for link in span.links}
    expected = {tuple(e.traceparent.split("-")[1:3]) for e in chunk.events}
    assert linked == expected
    first_link = span.links[0]
    assert first_link.attributes[semconv.MESSAGING_MESSAGE_ID] == chunk.events[0].event_id
    assert first_link.attributes[semconv.MESSAGING_KAFKA_OFFSET] == chunk.events[0].offset
    attributes = span.attributes
    assert attributes[semconv.DB_SYSTEM_NAME] == "clickhouse"
    assert attributes[semconv.MESSAGING_DESTINATION_NAME] == settings.EVENTS_TOPIC
    assert attributes[semconv.MESSAGING_DESTINATION_PARTITION_ID] == "0"
    assert attributes[semconv.KAFKA_FIRST_OFFSET] == chunk.first_offset
    assert attributes[semconv.KAFKA_LAST_OFFSET] == chunk.last_offset
    assert attributes[semconv.MESSAGING_BATCH_MESSAGE_COUNT] == 200

    client = new_client()
    row = find_event(client, chunk.events[5].event_id)
    assert row is not None
    assert row.trace_id == chunk.events[5].traceparent.split("-")[1]
    assert row.span_id == chunk.events[5].traceparent.split("-")[2]
    assert row.kafka_offset == chunk.events[5].offset
    assert row.payload == chunk.events[5].payload
    assert row.insert_trace_id == f"{span.context.trace_id:032x}"
    assert row.insert_span_id == f"{span.context.span_id:016x}"
    assert AckChannel().receive(chunk.ack_to) == [chunk.token]


def test_redelivered_chunk_is_read_once(eager: None) -> None:
    chunk = _chunk(50)
    insert_chunk_task.apply_async(args=[chunk.to_wire()]).get()
    insert_chunk_task.apply_async(args=[chunk.to_wire()]).get()
    ids = [e.event_id for e in chunk.events]
    assert count_events(new_client(), ids) == (50, 50)


def test_chunk_larger_than_link_limit_keeps_every_link(eager: None, spans: InMemorySpanExporter) -> None:
    limit = span_limits().max_links
    chunk = _chunk(limit + 7)
    insert_chunk_task.apply_async(args=[chunk.to_wire()]).get()
    (main,) = _insert_spans(spans)
    overflow = _insert_spans(spans, f"{semconv.SPAN_INSERT}.links")
    assert len(main.links) == limit
    assert sum(len(s.links) for s in overflow) == 7
    assert all(s.parent.span_id == main.context.span_id for s in overflow)
