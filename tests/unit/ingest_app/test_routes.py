"""ingest_app: POST /events end to end against an in-memory publisher, with its spans."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import orjson
import pytest
from flask.testing import FlaskClient
from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.propagators.textmap import TextMapPropagator
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from ingest_app import create_app
from ingest_app.publisher import OutgoingMessage
from sentinel import events, metrics, propagation, semconv
from tests.unit.conftest import FakePublisher

EVENT_ID = "0b8e7d1c-52a4-4b6e-9f0e-3c2d1a0b9e8f"
INCOMING_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
INCOMING_TRACEPARENT = f"00-{INCOMING_TRACE_ID}-00f067aa0ba902b7-01"


def _client(publisher: FakePublisher, **config: Any) -> FlaskClient:
    app = create_app({"TESTING": True, "SENTINEL_PUBLISHER": publisher, "SENTINEL_TOKENS": (), **config})
    return app.test_client()


class BrokenPublisher(FakePublisher):
    def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        raise RuntimeError("librdkafka exploded")


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


EVENT = {"event_id": EVENT_ID, "type": "tool_call", "session_id": "s-1"}
# A streamed body, as a server that de-chunks it says: no Content-Length, the input ends on its own.
CHUNKED = {"CONTENT_LENGTH": None, "HTTP_TRANSFER_ENCODING": "chunked", "wsgi.input_terminated": True}

# name -> (config, method, path, request keyword arguments, status, error, events published)
ANSWERS: dict[str, tuple[dict[str, Any], str, str, dict[str, Any], int, str | None, int]] = {
    "ndjson sent as JSON": ({}, "POST", "/events", {"data": b'{"type": "a"}\n{"type": "b"}'}, 202, None, 2),
    "invalid event": ({}, "POST", "/events", {"json": [EVENT, {"type": 7}]}, 400, "invalid_event", 0),
    "body over the limit": (
        {"MAX_CONTENT_LENGTH": 16},
        "POST",
        "/events",
        {"json": EVENT},
        413,
        "request_entity_too_large",
        0,
    ),
    "body cut short": (
        {},
        "POST",
        "/events",
        {
            "data": orjson.dumps(EVENT),
            "content_type": "application/json",
            "environ_overrides": {"CONTENT_LENGTH": "400"},
        },
        400,
        "bad_request",
        0,
    ),
    "chunked body": ({}, "POST", "/events", {"data": orjson.dumps(EVENT), "environ_overrides": CHUNKED}, 202, None, 1),
    "chunked body over the limit": (
        {"MAX_CONTENT_LENGTH": 32},
        "POST",
        "/events",
        {"data": orjson.dumps(EVENT), "environ_overrides": CHUNKED},
        413,
        "body_too_large",
        0,
    ),
    "invalid Content-Length": (
        {},
        "POST",
        "/events",
        {"data": orjson.dumps(EVENT), "environ_overrides": {"CONTENT_LENGTH": "12abc"}},
        400,
        "invalid_json",
        0,
    ),
    "POST /events/": ({}, "POST", "/events/", {"json": EVENT}, 404, "not_found", 0),
}


@pytest.mark.parametrize("case", sorted(ANSWERS))
def test_odd_requests_get_their_answer_in_json(case: str, publisher: FakePublisher) -> None:
    config, method, path, kwargs, status, error, published = ANSWERS[case]
    response = _client(publisher, **config).open(path, method=method, **kwargs)
    assert response.status_code == status, response.data
    assert response.is_json
    assert response.get_json().get("error") == error
    assert len(publisher.messages) == published


def test_an_unhandled_error_is_a_json_500_recorded_on_the_server_span(spans: InMemorySpanExporter) -> None:
    client = _client(BrokenPublisher(), TESTING=False)
    response = _post(client, {"type": "a"})
    assert response.status_code == 500
    assert response.get_json()["error"] == "internal_server_error"
    (server,) = _servers(spans)
    assert server.status.status_code is StatusCode.ERROR
    assert server.attributes[semconv.HTTP_STATUS_CODE] == 500
    assert _producer_span(spans).status.status_code is StatusCode.ERROR


# -- the server span (the OTel Flask instrumentation) ----------------------------------------------

CALLER_SPAN_ID = "00f067aa0ba902b7"


def _servers(spans: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]


def test_the_server_span_continues_the_callers_trace_with_http_attributes(
    client: FlaskClient, spans: InMemorySpanExporter
) -> None:
    response = client.post(
        "/events?src=proxy",
        json={"type": "tool_call"},
        headers={"traceparent": INCOMING_TRACEPARENT, "User-Agent": "mcp-proxy/1.0"},
    )
    assert response.status_code == 202
    (server,) = _servers(spans)
    assert server.name == semconv.SPAN_INGEST == "POST /events"
    assert f"{server.context.trace_id:032x}" == INCOMING_TRACE_ID
    assert server.parent is not None and f"{server.parent.span_id:016x}" == CALLER_SPAN_ID
    attributes = server.attributes
    assert attributes[semconv.HTTP_METHOD] == "POST"
    assert attributes[semconv.HTTP_ROUTE] == "/events"
    assert attributes[semconv.HTTP_STATUS_CODE] == 202
    assert attributes[semconv.HTTP_USER_AGENT] == "mcp-proxy/1.0"
    assert server.status.status_code is StatusCode.UNSET


def test_probes_and_scrapes_are_not_traced(client: FlaskClient, spans: InMemorySpanExporter) -> None:
    for path in ("/healthz", "/readyz", "/metrics"):
        assert client.get(path).status_code == 200
    assert _servers(spans) == []


def test_a_refused_request_is_recorded_and_only_5xx_marks_the_span_failed(
    client: FlaskClient, publisher: FakePublisher, spans: InMemorySpanExporter
) -> None:
    assert client.post("/events", data=b"{not json", content_type="application/json").status_code == 400
    publisher.fail = True
    assert _post(client, {"type": "a"}).status_code == 503
    bad, unavailable = _servers(spans)
    assert bad.attributes[semconv.HTTP_STATUS_CODE] == 400
    assert bad.status.status_code is StatusCode.UNSET  # the client's mistake, not the server's
    assert unavailable.attributes[semconv.HTTP_STATUS_CODE] == 503
    assert unavailable.status.status_code is StatusCode.ERROR


def test_no_context_outlives_its_request(client: FlaskClient, spans: InMemorySpanExporter) -> None:
    _post(client, {"type": "a"}, headers={"traceparent": INCOMING_TRACEPARENT})
    _post(client, {"type": "a"})
    assert trace.get_current_span() is trace.INVALID_SPAN
    first, second = _servers(spans)
    assert second.parent is None  # not a child of the previous request's span
    assert second.context.trace_id != first.context.trace_id


# -- an event's own trace context (events.TRACEPARENT_FIELD) ---------------------------------------

EVENT_TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
EVENT_PARENT_ID = "b7ad6b7169203331"
EVENT_TRACEPARENT = f"00-{EVENT_TRACE_ID}-{EVENT_PARENT_ID}-01"


def _producers(spans: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in spans.get_finished_spans() if s.name == semconv.SPAN_PUBLISH]


def _carried(message: OutgoingMessage) -> trace.SpanContext:
    context, malformed = propagation.extract(message.headers)
    assert not malformed
    return trace.get_current_span(context).get_span_context()


def _malformed_counted() -> float:
    (family,) = metrics.INGEST_MALFORMED_EVENT_TRACE_CONTEXT.collect()
    return next(sample.value for sample in family.samples if sample.name.endswith("_total"))


def test_an_event_with_its_own_traceparent_gets_its_own_producer_span_in_that_trace(
    client: FlaskClient, publisher: FakePublisher, spans: InMemorySpanExporter
) -> None:
    own = {"type": "tool_call", "event_id": EVENT_ID, "traceparent": EVENT_TRACEPARENT, "tracestate": "mcp=1"}
    response = _post(client, [own, {"type": "a"}, {"type": "b"}], headers={"traceparent": INCOMING_TRACEPARENT})
    assert response.status_code == 202
    (server,) = _servers(spans)
    producers = _producers(spans)
    assert len(producers) == 2
    (per_event,) = [s for s in producers if f"{s.context.trace_id:032x}" == EVENT_TRACE_ID]
    (shared,) = [s for s in producers if s is not per_event]

    # The event's span: a PRODUCER child of the event's context, linked to the request's server span.
    assert per_event.kind is SpanKind.PRODUCER
    assert per_event.parent is not None and f"{per_event.parent.span_id:016x}" == EVENT_PARENT_ID
    assert [link.context.span_id for link in per_event.links] == [server.context.span_id]
    assert per_event.attributes[semconv.MESSAGING_MESSAGE_ID] == EVENT_ID
    assert per_event.attributes[semconv.MESSAGING_DESTINATION_NAME] == publisher.topic
    # The other two share the request's span, in the caller's trace.
    assert shared.parent is not None and shared.parent.span_id == server.context.span_id
    assert shared.attributes[semconv.MESSAGING_BATCH_MESSAGE_COUNT] == 2

    first, *others = publisher.messages
    carried = _carried(first)
    assert (carried.trace_id, carried.span_id) == (per_event.context.trace_id, per_event.context.span_id)
    assert dict(first.headers)[semconv.HEADER_TRACESTATE] == b"mcp=1"
    for message in others:
        assert (_carried(message).trace_id, _carried(message).span_id) == (
            shared.context.trace_id,
            shared.context.span_id,
        )
    # The fields stay in the stored payload.
    stored = orjson.loads(first.value)
    assert stored[events.TRACEPARENT_FIELD] == EVENT_TRACEPARENT
    assert stored[events.TRACESTATE_FIELD] == "mcp=1"


def test_events_that_all_carry_a_traceparent_get_no_shared_span(
    client: FlaskClient, publisher: FakePublisher, spans: InMemorySpanExporter
) -> None:
    other = f"00-{'1' * 32}-{'2' * 16}-01"
    _post(client, [{"type": "a", "traceparent": EVENT_TRACEPARENT}, {"type": "b", "traceparent": other}])
    assert sorted(f"{s.context.trace_id:032x}" for s in _producers(spans)) == sorted([EVENT_TRACE_ID, "1" * 32])
    assert [f"{_carried(m).trace_id:032x}" for m in publisher.messages] == [EVENT_TRACE_ID, "1" * 32]


@pytest.mark.parametrize(
    "traceparent",
    [
        "",
        "not a traceparent",
        f"00-{'0' * 32}-{EVENT_PARENT_ID}-01",
        f"zz-{EVENT_TRACE_ID}-{EVENT_PARENT_ID}-01",
        7,
        None,
        ["x"],
    ],
)
def test_a_malformed_traceparent_is_counted_and_the_event_traced_under_the_request(
    traceparent: Any, client: FlaskClient, publisher: FakePublisher, spans: InMemorySpanExporter
) -> None:
    before = _malformed_counted()
    response = _post(client, {"type": "a", "traceparent": traceparent})
    assert response.status_code == 202
    assert _malformed_counted() == before + 1
    (server,) = _servers(spans)
    producer = _producer_span(spans)
    assert producer.parent is not None and producer.parent.span_id == server.context.span_id
    (message,) = publisher.messages
    assert _carried(message).span_id == producer.context.span_id
    assert orjson.loads(message.value)[events.TRACEPARENT_FIELD] == traceparent


def test_a_tracestate_that_is_not_a_string_is_counted_and_left_out(
    client: FlaskClient, publisher: FakePublisher, spans: InMemorySpanExporter
) -> None:
    before = _malformed_counted()
    assert _post(client, {"type": "a", "traceparent": EVENT_TRACEPARENT, "tracestate": {"a": 1}}).status_code == 202
    assert _malformed_counted() == before + 1
    (message,) = publisher.messages
    assert f"{_carried(message).trace_id:032x}" == EVENT_TRACE_ID
    assert semconv.HEADER_TRACESTATE not in dict(message.headers)


def test_a_failed_publish_marks_every_producer_span_failed(
    client: FlaskClient, publisher: FakePublisher, spans: InMemorySpanExporter
) -> None:
    publisher.fail = True
    assert _post(client, [{"type": "a", "traceparent": EVENT_TRACEPARENT}, {"type": "b"}]).status_code == 503
    producers = _producers(spans)
    assert len(producers) == 2
    assert {s.status.status_code for s in producers} == {StatusCode.ERROR}


class _RaisingPropagator(TextMapPropagator):
    """A propagator (as OTEL_PROPAGATORS may name) that fails on an event's fields, and reads
    nothing from the request's WSGI environ."""

    def extract(self, carrier: Any, context: Context | None = None, getter: Any = None) -> Context:
        if "traceparent" in carrier:
            raise ValueError("unreadable")
        return context if context is not None else Context()

    def inject(self, carrier: Any, context: Context | None = None, setter: Any = None) -> None:
        return None

    @property
    def fields(self) -> set[str]:
        return {"traceparent"}


def test_a_propagator_that_raises_on_an_events_field_does_not_refuse_the_event(
    client: FlaskClient, publisher: FakePublisher
) -> None:
    found = propagate.get_global_textmap()
    propagate.set_global_textmap(_RaisingPropagator())
    try:
        before = _malformed_counted()
        assert _post(client, {"type": "a", "traceparent": EVENT_TRACEPARENT}).status_code == 202
    finally:
        propagate.set_global_textmap(found)
    assert _malformed_counted() == before + 1
    assert len(publisher.messages) == 1
