"""Ingest's Flask app publishing to the real Kafka: an event that carries its own traceparent is
produced with headers in that event's trace, the others with the request's."""

from __future__ import annotations

import random
import uuid

import orjson
from confluent_kafka import Consumer, Message
from confluent_kafka.admin import AdminClient, NewTopic
from opentelemetry import trace

from ingest_app import create_app
from ingest_app.publisher import KafkaPublisher
from sentinel import events, propagation, semconv, settings


def _fresh_topic() -> str:
    topic = f"sentinel.test.{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": settings.KAFKA_BOOTSTRAP})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)
    return topic


def _read(topic: str, count: int) -> list[Message]:
    consumer = Consumer(
        {
            "bootstrap.servers": settings.KAFKA_BOOTSTRAP,
            "group.id": f"sentinel-test-{uuid.uuid4().hex[:8]}",
            "auto.offset.reset": "earliest",
        }
    )
    consumer.subscribe([topic])
    got: list[Message] = []
    try:
        for _ in range(60):
            message = consumer.poll(1.0)
            if message is not None and not message.error():
                got.append(message)
            if len(got) == count:
                break
    finally:
        consumer.close()
    return got


def _carried_trace_id(message: Message) -> str:
    context, malformed = propagation.extract(message.headers())
    assert not malformed
    return f"{trace.get_current_span(context).get_span_context().trace_id:032x}"


def test_an_event_with_its_own_traceparent_is_produced_in_its_trace() -> None:
    topic = _fresh_topic()
    app = create_app({"SENTINEL_PUBLISHER": KafkaPublisher(topic=topic, timeout_s=30), "SENTINEL_TOKENS": ()})
    request_trace, event_trace = f"{random.getrandbits(128):032x}", f"{random.getrandbits(128):032x}"
    own = {"type": "tool_call", events.TRACEPARENT_FIELD: f"00-{event_trace}-{random.getrandbits(64):016x}-01"}
    response = app.test_client().post(
        "/events",
        data=orjson.dumps([own, {"type": "tool_call"}]),
        content_type="application/json",
        headers={"traceparent": f"00-{request_trace}-{random.getrandbits(64):016x}-01"},
    )
    assert response.status_code == 202, response.data
    own_id, other_id = response.get_json()["event_ids"]

    by_id = {dict(m.headers())[semconv.HEADER_EVENT_ID].decode(): m for m in _read(topic, 2)}
    assert set(by_id) == {own_id, other_id}
    assert _carried_trace_id(by_id[own_id]) == event_trace
    assert _carried_trace_id(by_id[other_id]) == request_trace
    assert orjson.loads(by_id[own_id].value())[events.TRACEPARENT_FIELD] == own[events.TRACEPARENT_FIELD]
