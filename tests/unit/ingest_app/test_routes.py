"""ingest_app: POST /events end to end against an in-memory publisher, with its spans."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
from flask.testing import FlaskClient
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from ingest_app import create_app
from sentinel import propagation, semconv
from tests.unit.conftest import FakePublisher

EVENT_ID = "0b8e7d1c-52a4-4b6e-9f0e-3c2d1a0b9e8f"
INCOMING_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
INCOMING_TRACEPARENT = f"00-{INCOMING_TRACE_ID}-00f067aa0ba902b7-01"


def _client(publisher: FakePublisher, **config: Any) -> FlaskClient:
    app = create_app({"TESTING": True, "SENTINEL_PUBLISHER": publisher, "SENTINEL_TOKENS": (), **config})
    return app.test_client()


def _post(client: FlaskClient, body: Any, **kwargs: Any) -> Any:
    return client.post("/events", data=orjson.dumps(body), content_type="application/json", **kwargs)


def _producer_span(spans: InMemorySpanExporter) -> ReadableSpan:
    found = [s for s in spans.get_finished_spans() if s.name == semconv.SPAN_PUBLISH]
    assert len(found) == 1
    return found[0]


def _headers(message: Any) -> dict[str, bytes]:
    return dict(message.headers)


def test_one_event_is_accepted(client: FlaskClient, publisher: FakePublisher) -> None:
    response = _post(client, {"type": "tool_call", "tool": "search"})
    assert response.status_code == 202
    body = response.get_json()
    assert body["accepted"] == 1
    assert len(body["event_ids"]) == 1
    assert len(publisher.messages) == 1
    published = orjson.loads(publisher.messages[0].value)
    assert published == {"type": "tool_call", "tool": "search", "event_id": body["event_ids"][0]}


def test_an_array_is_published_in_one_batch(client: FlaskClient, publisher: FakePublisher) -> None:
    response = _post(client, [{"type": "a"}, {"type": "b"}, {"type": "c"}])
    assert response.status_code == 202
    assert response.get_json()["accepted"] == 3
    assert len(publisher.batches) == 1
    assert [orjson.loads(m.value)["type"] for m in publisher.messages] == ["a", "b", "c"]


def test_ndjson_is_accepted(client: FlaskClient, publisher: FakePublisher) -> None:
    response = client.post("/events", data=b'{"type": "a"}\n{"type": "b"}\n', content_type="application/x-ndjson")
    assert response.status_code == 202
    assert response.get_json()["accepted"] == 2


def test_a_valid_event_id_is_kept(client: FlaskClient, publisher: FakePublisher) -> None:
    response = _post(client, [{"type": "a", "event_id": EVENT_ID}, {"type": "b"}])
    assert response.status_code == 202
    ids = response.get_json()["event_ids"]
    assert ids[0] == EVENT_ID
    assert ids[1] != EVENT_ID
    assert uuid.UUID(ids[1])
    assert len(set(ids)) == 2
    assert [orjson.loads(m.value)["event_id"] for m in publisher.messages] == ids
    assert [_headers(m)[semconv.HEADER_EVENT_ID].decode() for m in publisher.messages] == ids


def test_events_without_an_id_after_one_with_an_id_get_distinct_v4_ids(
    client: FlaskClient, publisher: FakePublisher
) -> None:
    response = _post(client, [{"type": "a"}, {"type": "b", "event_id": EVENT_ID}, {"type": "c"}, {"type": "d"}])
    assert response.status_code == 202
    ids = response.get_json()["event_ids"]
    assert ids[1] == EVENT_ID
    fresh = [uuid.UUID(ids[i]) for i in (0, 2, 3)]
    assert [u.version for u in fresh] == [4, 4, 4]
    assert len(set(ids)) == 4
    assert [orjson.loads(m.value)["event_id"] for m in publisher.messages] == ids


def test_the_session_id_is_the_message_key(client: FlaskClient, publisher: FakePublisher) -> None:
    _post(client, [{"type": "a", "session_id": "s-1"}, {"type": "b"}])
    assert [m.key for m in publisher.messages] == [b"s-1", None]


def test_an_invalid_event_names_field_and_index(client: FlaskClient, publisher: FakePublisher) -> None:
    response = _post(client, [{"type": "a"}, {"type": "b", "duration_ms": -5}])
    assert response.status_code == 400
    body = response.get_json()
    assert body["error"] == "invalid_event"
    assert body["index"] == 1
    assert body["field"] == "duration_ms"
    assert "non-negative" in body["reason"]
    assert publisher.messages == []


def test_a_missing_type_is_refused(client: FlaskClient, publisher: FakePublisher) -> None:
    response = _post(client, {"tool": "search"})
    assert response.status_code == 400
    assert response.get_json()["field"] == "type"
    assert response.get_json()["index"] == 0
    assert publisher.messages == []


def test_invalid_json_is_refused(client: FlaskClient, publisher: FakePublisher) -> None:
    response = client.post("/events", data=b'{"type": ', content_type="application/json")
    assert response.status_code == 400
    assert response.get_json()["error"] == "invalid_json"
    assert publisher.messages == []


def test_an_empty_body_and_an_empty_array_are_refused(client: FlaskClient, publisher: FakePublisher) -> None:
    assert client.post("/events", data=b"", content_type="application/json").status_code == 400
    response = _post(client, [])
    assert response.status_code == 400
    assert response.get_json()["error"] == "no_events"
    assert publisher.messages == []


def test_too_many_events_is_413(publisher: FakePublisher) -> None:
    client = _client(publisher, SENTINEL_MAX_EVENTS=2)
    assert _post(client, [{"type": "a"}] * 2).status_code == 202
    response = _post(client, [{"type": "a"}] * 3)
    assert response.status_code == 413
    assert response.get_json()["error"] == "too_many_events"
    assert len(publisher.messages) == 2


def test_an_event_above_the_per_event_limit_is_413(publisher: FakePublisher) -> None:
    client = _client(publisher, SENTINEL_MAX_EVENT_BYTES=200)
    response = _post(client, [{"type": "a"}, {"type": "b", "tool": "x" * 300}])
    assert response.status_code == 413
    assert response.get_json()["error"] == "event_too_large"
    assert response.get_json()["index"] == 1
    assert publisher.messages == []


def test_a_body_above_max_content_length_is_413(publisher: FakePublisher) -> None:
    client = _client(publisher, MAX_CONTENT_LENGTH=64)
    response = _post(client, [{"type": "a", "tool": "x" * 100}])
    assert response.status_code == 413
    assert response.is_json
    assert publisher.messages == []


def test_tokens_are_required_when_configured(publisher: FakePublisher) -> None:
    client = _client(publisher, SENTINEL_TOKENS=(b"s3cret",))
    missing = _post(client, {"type": "a"})
    assert missing.status_code == 401
    assert missing.get_json()["error"] == "unauthorized"
    assert missing.headers["WWW-Authenticate"].startswith("Bearer")
    wrong = _post(client, {"type": "a"}, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert publisher.messages == []
    right = _post(client, {"type": "a"}, headers={"Authorization": "Bearer s3cret"})
    assert right.status_code == 202
    assert len(publisher.messages) == 1


def test_kafka_unavailable_is_503_with_retry_after(
    client: FlaskClient, publisher: FakePublisher, spans: InMemorySpanExporter
) -> None:
    publisher.fail = True
    response = _post(client, {"type": "a"})
    assert response.status_code == 503
    assert response.get_json()["error"] == "kafka_unavailable"
    assert response.headers["Retry-After"] == "5"
    assert _producer_span(spans).status.status_code is StatusCode.ERROR


def test_each_message_carries_the_producer_span_context(
    client: FlaskClient, publisher: FakePublisher, spans: InMemorySpanExporter
) -> None:
    assert _post(client, [{"type": "a"}, {"type": "b"}]).status_code == 202
    producer = _producer_span(spans)
    assert producer.kind is SpanKind.PRODUCER
    for message in publisher.messages:
        headers = _headers(message)
        assert semconv.HEADER_EVENT_ID in headers
        context = propagation.span_context_from_traceparent(headers[semconv.HEADER_TRACEPARENT].decode())
        assert context is not None
        assert context.trace_id == producer.context.trace_id
        assert context.span_id == producer.context.span_id
        _, malformed = propagation.extract(message.headers)
        assert malformed is False


def test_the_producer_span_has_messaging_attributes(
    client: FlaskClient, publisher: FakePublisher, spans: InMemorySpanExporter
) -> None:
    _post(client, [{"type": "a"}, {"type": "b"}, {"type": "c"}])
    attributes = _producer_span(spans).attributes
    assert attributes[semconv.MESSAGING_SYSTEM] == "kafka"
    assert attributes[semconv.MESSAGING_DESTINATION_NAME] == publisher.topic
    assert attributes[semconv.MESSAGING_BATCH_MESSAGE_COUNT] == 3
    assert semconv.MESSAGING_MESSAGE_ID not in attributes  # only on single-message spans


def test_a_single_event_producer_span_names_its_message(
    client: FlaskClient, publisher: FakePublisher, spans: InMemorySpanExporter
) -> None:
    response = _post(client, {"type": "a", "event_id": EVENT_ID})
    assert response.status_code == 202
    assert _producer_span(spans).attributes[semconv.MESSAGING_MESSAGE_ID] == EVENT_ID


def test_the_producer_span_is_a_child_of_the_server_span(client: FlaskClient, spans: InMemorySpanExporter) -> None:
    _post(client, {"type": "a"})
    producer = _producer_span(spans)
    servers = [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]
    assert len(servers) == 1
    assert servers[0].name == semconv.SPAN_INGEST
    assert producer.parent is not None
    assert producer.parent.span_id == servers[0].context.span_id


def test_an_incoming_traceparent_continues_into_kafka(
    client: FlaskClient, publisher: FakePublisher, spans: InMemorySpanExporter
) -> None:
    response = _post(client, {"type": "a"}, headers={"traceparent": INCOMING_TRACEPARENT})
    assert response.status_code == 202
    assert f"{_producer_span(spans).context.trace_id:032x}" == INCOMING_TRACE_ID
    traceparent = _headers(publisher.messages[0])[semconv.HEADER_TRACEPARENT].decode()
    assert traceparent.split("-")[1] == INCOMING_TRACE_ID
    assert traceparent.split("-")[2] != "00f067aa0ba902b7"  # a new span in the caller's trace


def test_only_trace_context_and_event_id_headers_are_sent(client: FlaskClient, publisher: FakePublisher) -> None:
    _post(client, {"type": "a"}, headers={"traceparent": INCOMING_TRACEPARENT, "baggage": "user=42"})
    keys = [k for k, _ in publisher.messages[0].headers]
    assert set(keys) <= {"traceparent", "tracestate", "baggage", "event_id"}
    assert "traceparent" in keys and "event_id" in keys


def test_healthz(client: FlaskClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}


def test_readyz_follows_the_publisher(client: FlaskClient, publisher: FakePublisher) -> None:
    assert client.get("/readyz").status_code == 200
    publisher.is_ready = False
    assert client.get("/readyz").status_code == 503


def test_metrics_is_prometheus_text(client: FlaskClient) -> None:
    _post(client, {"type": "a"})
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain")
    assert b"sentinel_ingest_requests" in response.data


def test_other_http_errors_answer_in_json(client: FlaskClient) -> None:
    response = client.get("/events")
    assert response.status_code == 405
    assert response.is_json
