"""Ingest's SERVER span: the same span whether ingest's hooks (ingest_app/server_span.py, the
default) or the OTel Flask instrumentation record it."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from flask import Flask
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from ingest_app import create_app
from ingest_app.publisher import OutgoingMessage
from sentinel import semconv
from tests.unit.conftest import FakePublisher

RECORDERS = ("hooks", "flask-instrumentation")
CALLER_TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN_ID = "00f067aa0ba902b7"


def _app(recorder: str, publisher: object, *, testing: bool = True) -> Flask:
    return create_app(
        {"TESTING": testing, "SENTINEL_PUBLISHER": publisher, "SENTINEL_TOKENS": (), "SENTINEL_SERVER_SPAN": recorder}
    )


def _servers(spans: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in spans.get_finished_spans() if s.kind is SpanKind.SERVER]


@pytest.mark.parametrize("recorder", RECORDERS)
def test_the_server_span_continues_the_callers_trace_with_http_attributes(
    recorder: str, spans: InMemorySpanExporter
) -> None:
    client = _app(recorder, FakePublisher()).test_client()
    response = client.post(
        "/events?src=proxy",
        json={"type": "tool_call"},
        headers={"traceparent": f"00-{CALLER_TRACE_ID}-{CALLER_SPAN_ID}-01", "User-Agent": "mcp-proxy/1.0"},
    )
    assert response.status_code == 202
    (server,) = _servers(spans)
    assert server.name == semconv.SPAN_INGEST
    assert f"{server.context.trace_id:032x}" == CALLER_TRACE_ID
    assert server.parent is not None and f"{server.parent.span_id:016x}" == CALLER_SPAN_ID
    attributes = server.attributes
    assert attributes[semconv.HTTP_METHOD] == "POST"
    assert attributes[semconv.HTTP_TARGET] == "/events?src=proxy"
    assert attributes[semconv.HTTP_ROUTE] == "/events"
    assert attributes[semconv.HTTP_STATUS_CODE] == 202
    assert attributes[semconv.HTTP_USER_AGENT] == "mcp-proxy/1.0"
    assert attributes[semconv.HTTP_SCHEME] == "http"
    assert server.status.status_code is StatusCode.UNSET
    (producer,) = [s for s in spans.get_finished_spans() if s.kind is SpanKind.PRODUCER]
    assert producer.parent is not None and producer.parent.span_id == server.context.span_id


@pytest.mark.parametrize("recorder", RECORDERS)
def test_probes_and_scrapes_are_not_traced(recorder: str, spans: InMemorySpanExporter) -> None:
    client = _app(recorder, FakePublisher()).test_client()
    for path in ("/healthz", "/readyz", "/metrics"):
        assert client.get(path).status_code == 200
    assert _servers(spans) == []


@pytest.mark.parametrize("recorder", RECORDERS)
def test_a_refused_request_is_recorded_and_only_5xx_marks_the_span_failed(
    recorder: str, spans: InMemorySpanExporter
) -> None:
    publisher = FakePublisher()
    client = _app(recorder, publisher).test_client()
    assert client.post("/events", data=b"{not json", content_type="application/json").status_code == 400
    publisher.fail = True
    assert client.post("/events", json={"type": "a"}).status_code == 503
    bad, unavailable = _servers(spans)
    assert bad.attributes[semconv.HTTP_STATUS_CODE] == 400
    assert bad.status.status_code is StatusCode.UNSET  # the client's mistake, not the server's
    assert unavailable.attributes[semconv.HTTP_STATUS_CODE] == 503
    assert unavailable.status.status_code is StatusCode.ERROR


class _BrokenPublisher(FakePublisher):
    def publish(self, messages: Sequence[OutgoingMessage]) -> None:
        raise RuntimeError("librdkafka exploded")


@pytest.mark.parametrize("recorder", RECORDERS)
def test_an_unhandled_error_is_recorded_on_the_span(recorder: str, spans: InMemorySpanExporter) -> None:
    client = _app(recorder, _BrokenPublisher(), testing=False).test_client()
    assert client.post("/events", json={"type": "a"}).status_code == 500
    (server,) = _servers(spans)
    assert server.status.status_code is StatusCode.ERROR
    assert server.attributes[semconv.HTTP_STATUS_CODE] == 500
    assert [e.attributes["exception.type"] for e in server.events if e.name == "exception"] == ["RuntimeError"]


@pytest.mark.parametrize("recorder", RECORDERS)
def test_no_context_outlives_its_request(recorder: str, spans: InMemorySpanExporter) -> None:
    client = _app(recorder, FakePublisher()).test_client()
    client.post("/events", json={"type": "a"}, headers={"traceparent": f"00-{CALLER_TRACE_ID}-{CALLER_SPAN_ID}-01"})
    client.post("/events", json={"type": "a"})
    assert trace.get_current_span() is trace.INVALID_SPAN
    first, second = _servers(spans)
    assert second.parent is None  # not a child of the previous request's span
    assert second.context.trace_id != first.context.trace_id


def test_a_path_without_a_route_is_named_by_its_method_alone(spans: InMemorySpanExporter) -> None:
    client = _app("hooks", FakePublisher()).test_client()
    assert client.post("/no-such-path/8f1c").status_code == 404
    (server,) = _servers(spans)
    assert server.name == "POST"  # not the raw path: span names stay few
    assert semconv.HTTP_ROUTE not in server.attributes
    assert server.attributes[semconv.HTTP_TARGET] == "/no-such-path/8f1c"


def test_an_unknown_recorder_is_refused_at_start() -> None:
    with pytest.raises(ValueError, match="SENTINEL_INGEST_SERVER_SPAN"):
        _app("opentracing", FakePublisher())
