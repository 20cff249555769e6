"""One event, one trace: HTTP -> Kafka -> bridge -> Celery -> ClickHouse, with the real processes."""

from __future__ import annotations

import random
import time
import uuid

import orjson
import pytest
import requests
from confluent_kafka import Consumer, Producer

from sentinel import events, semconv, settings
from sentinel_cli.jaeger import JaegerClient, Span
from tests.e2e.helpers import committed_offsets, group_reader, wait_until
from workers.clickhouse.client import new_client
from workers.clickhouse.queries import count_events, find_event

pytestmark = pytest.mark.usefixtures("pipeline")


def _post(body: object, headers: dict[str, str] | None = None) -> requests.Response:
    return requests.post(
        f"{settings.INGEST_URL}/events",
        data=orjson.dumps(body),
        headers={"Content-Type": "application/json", **(headers or {})},
        timeout=60,
    )


def _event(**extra: object) -> dict[str, object]:
    return {"type": "tool_call", "tool": "search", "server": "e2e", "session_id": f"s-{uuid.uuid4().hex[:6]}", **extra}


def _only(spans: list[Span], name: str) -> Span:
    matching = [s for s in spans if s.name == name]
    assert len(matching) == 1, f"expected one {name!r} span, got {[s.name for s in spans]}"
    return matching[0]


def test_event_trace_is_continuous_from_http_to_clickhouse() -> None:
    trace_id, parent_id = f"{random.getrandbits(128):032x}", f"{random.getrandbits(64):016x}"
    response = _post(_event(), {"traceparent": f"00-{trace_id}-{parent_id}-01"})
    assert response.status_code == 202, response.text
    (event_id,) = response.json()["event_ids"]

    client = new_client()
    row = wait_until(lambda: find_event(client, event_id), timeout_s=60, what="the event's row")
    assert row.trace_id == trace_id

    jaeger = JaegerClient()
    spans = jaeger.wait_for(trace_id, {semconv.SPAN_INGEST, semconv.SPAN_PUBLISH, semconv.SPAN_CONSUME}, timeout_s=60)
    server = _only(spans, semconv.SPAN_INGEST)
    publish = _only(spans, semconv.SPAN_PUBLISH)
    consume = _only(spans, semconv.SPAN_CONSUME)
    # One parent chain: caller -> POST /events -> send mcp.events -> kafka.consume.
    assert server.parent_id == parent_id and server.service == semconv.SERVICE_INGEST
    assert publish.parent_id == server.span_id and publish.service == semconv.SERVICE_INGEST
    assert consume.parent_id == publish.span_id and consume.service == semconv.SERVICE_BRIDGE
    assert consume.span_id == row.span_id
    assert consume.tags[semconv.MESSAGING_KAFKA_OFFSET] == row.kafka_offset
    assert consume.tags[semconv.MESSAGING_DESTINATION_PARTITION_ID] == str(row.kafka_partition)
    assert consume.tags[semconv.MESSAGING_MESSAGE_ID] == event_id

    # The insert is reachable from the event's trace: its span links to the event's consume span,
    # the row names it, and Jaeger's search for insert spans finds it.
    insert_spans = jaeger.wait_for(row.insert_trace_id, {semconv.SPAN_INSERT}, timeout_s=60)
    insert = _only(insert_spans, semconv.SPAN_INSERT)
    assert insert.span_id == row.insert_span_id and insert.service == semconv.SERVICE_WORKER
    assert (trace_id, consume.span_id) in insert.links
    assert insert.tags[semconv.MESSAGING_DESTINATION_NAME] == settings.EVENTS_TOPIC
    assert insert.tags[semconv.MESSAGING_DESTINATION_PARTITION_ID] == str(row.kafka_partition)
    assert insert.tags[semconv.KAFKA_FIRST_OFFSET] <= row.kafka_offset <= insert.tags[semconv.KAFKA_LAST_OFFSET]
    assert insert.tags[semconv.MESSAGING_BATCH_MESSAGE_COUNT] >= 1
    assert insert.tags[semconv.DB_SYSTEM_NAME] == "clickhouse"
    found = jaeger.find(
        semconv.SERVICE_WORKER,
        semconv.SPAN_INSERT,
        {semconv.MESSAGING_DESTINATION_PARTITION_ID: str(row.kafka_partition)},
    )
    assert any((trace_id, consume.span_id) in span.links for spans_ in found for span in spans_)


def test_an_event_with_its_own_traceparent_lands_in_the_mcp_calls_trace() -> None:
    request_trace, request_parent = f"{random.getrandbits(128):032x}", f"{random.getrandbits(64):016x}"
    call_trace, call_span = f"{random.getrandbits(128):032x}", f"{random.getrandbits(64):016x}"
    own = _event(**{events.TRACEPARENT_FIELD: f"00-{call_trace}-{call_span}-01"})
    response = _post([own, _event()], {"traceparent": f"00-{request_trace}-{request_parent}-01"})
    assert response.status_code == 202, response.text
    own_id, other_id = response.json()["event_ids"]

    client = new_client()
    own_row = wait_until(lambda: find_event(client, own_id), timeout_s=60, what="the event's row")
    other_row = wait_until(lambda: find_event(client, other_id), timeout_s=60, what="the other event's row")
    # The row's trace is the one its Kafka message's headers carried.
    assert own_row.trace_id == call_trace
    assert other_row.trace_id == request_trace

    jaeger = JaegerClient()
    server = _only(jaeger.wait_for(request_trace, {semconv.SPAN_INGEST}, timeout_s=60), semconv.SPAN_INGEST)
    spans = jaeger.wait_for(call_trace, {semconv.SPAN_PUBLISH, semconv.SPAN_CONSUME}, timeout_s=60)
    publish = _only(spans, semconv.SPAN_PUBLISH)
    consume = _only(spans, semconv.SPAN_CONSUME)
    assert publish.parent_id == call_span and publish.service == semconv.SERVICE_INGEST
    assert (request_trace, server.span_id) in publish.links
    assert consume.parent_id == publish.span_id and consume.span_id == own_row.span_id


def test_offset_is_committed_only_after_the_row_exists() -> None:
    reader = group_reader()
    client = new_client()
    response = _post(_event())
    assert response.status_code == 202
    (event_id,) = response.json()["event_ids"]
    # Each sample: committed offsets first, then whether the row exists. A sample where the
    # commit already passed the event but the row was still missing breaks the guarantee.
    samples: list[tuple[dict[int, int], bool]] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        committed = committed_offsets(reader)
        stored = find_event(client, event_id) is not None
        samples.append((committed, stored))
        if stored and samples[-1][0]:
            row = find_event(client, event_id)
            if committed.get(row.kafka_partition, -1) > row.kafka_offset:
                break
        time.sleep(0.02)
    row = find_event(client, event_id)
    reader.close()
    assert row is not None, "the event never reached ClickHouse"
    passed = [stored for committed, stored in samples if committed.get(row.kafka_partition, -1) > row.kafka_offset]
    assert passed, "the bridge never committed past the event"
    assert all(passed), "an offset was committed before its event's row existed"
    assert not samples[0][1], "the first sample must see the state before the row existed"


def test_thousand_events_in_one_request_arrive_exactly_once() -> None:
    events = [_event(n=i) for i in range(1000)]
    response = _post(events)
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["accepted"] == 1000 and len(set(body["event_ids"])) == 1000
    client = new_client()
    wait_until(
        lambda: count_events(client, body["event_ids"])[0] == 1000, timeout_s=120, what="all 1,000 events in ClickHouse"
    )
    time.sleep(2)  # anything redelivered late would show up as a second row
    assert count_events(client, body["event_ids"]) == (1000, 1000)


def test_poison_message_is_dead_lettered_and_the_next_event_still_arrives() -> None:
    marker = uuid.uuid4().hex
    key = f"poison-{marker}".encode()  # same key -> same partition, so the good event comes after
    good_id = str(uuid.uuid4())
    producer = Producer({"bootstrap.servers": settings.KAFKA_BOOTSTRAP})
    producer.produce(
        settings.EVENTS_TOPIC,
        key=key,
        value=b"\xff not json {",
        headers=[("x-test-marker", marker.encode()), ("traceparent", b"garbage")],
    )
    producer.produce(
        settings.EVENTS_TOPIC,
        key=key,
        value=orjson.dumps(_event(event_id=good_id)),
        headers=[("x-test-marker", marker.encode())],
    )
    assert producer.flush(30) == 0

    client = new_client()
    row = wait_until(lambda: find_event(client, good_id), timeout_s=60, what="the event after the poison message")

    dlq = Consumer(
        {
            "bootstrap.servers": settings.KAFKA_BOOTSTRAP,
            "group.id": f"e2e-dlq-{marker}",
            "auto.offset.reset": "earliest",
            "enable.auto.commit": False,
        }
    )
    dlq.subscribe([settings.DLQ_TOPIC])

    def poison_record() -> dict[str, bytes] | None:
        message = dlq.poll(0.5)
        if message is None or message.error():
            return None
        headers = dict(message.headers() or [])
        if headers.get("x-test-marker") == marker.encode():
            assert message.value() == b"\xff not json {"
            return headers
        return None

    headers = wait_until(poison_record, timeout_s=60, interval_s=0, what="the poison message in the DLQ")
    dlq.close()
    assert b"not UTF-8" in headers[semconv.HEADER_DLQ_REASON] or b"not JSON" in headers[semconv.HEADER_DLQ_REASON]
    assert headers[semconv.HEADER_DLQ_SOURCE_TOPIC] == settings.EVENTS_TOPIC.encode()
    assert int(headers[semconv.HEADER_DLQ_SOURCE_PARTITION]) == row.kafka_partition
    assert int(headers[semconv.HEADER_DLQ_SOURCE_OFFSET]) == row.kafka_offset - 1
    assert headers["traceparent"] == b"garbage"  # original headers kept as they were
